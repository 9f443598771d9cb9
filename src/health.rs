//! Probes for orchestrators and monitoring: liveness, readiness and Prometheus metrics.

use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::{self, Pool};
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::metrics::Metrics;

/// Whether start-up work (migrations, bootstrap admin) has finished.
pub struct Readiness {
    started: AtomicBool,
    latest_migration: String,
}

impl Readiness {
    /// Not yet ready.
    pub fn new() -> Self {
        Self {
            started: AtomicBool::new(false),
            latest_migration: db::latest_migration_version(),
        }
    }

    /// Marks start-up work as done.
    pub fn mark_started(&self) {
        self.started.store(true, Ordering::Release);
    }

    /// Whether start-up work is done (background jobs wait for the migrations).
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

crate::routes!(healthz, readyz, metrics);

/// A probe's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProbeStatus {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process is up and answering.
#[utoipa::path(tag = "operations", security(()), responses((status = 200, body = ProbeStatus)))]
#[get("/healthz")]
async fn healthz() -> web::Json<ProbeStatus> {
    web::Json(ProbeStatus { status: "ok" })
}

/// Readiness: the database is reachable and fully migrated.
#[utoipa::path(
    tag = "operations",
    security(()),
    responses(
        (status = 200, body = ProbeStatus),
        (status = 503, description = "Not ready", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/readyz")]
async fn readyz(
    pool: web::Data<Pool>,
    readiness: web::Data<Readiness>,
) -> ApiResult<web::Json<ProbeStatus>> {
    if !readiness.started.load(Ordering::Acquire) {
        return Err(ApiError::Starting);
    }
    let mut conn = pool.get().await?;
    let migrated = db::is_migrated(&mut conn, &readiness.latest_migration).await?;
    if !migrated {
        return Err(ApiError::Unavailable(
            "the database schema is not up to date".into(),
        ));
    }
    Ok(web::Json(ProbeStatus { status: "ready" }))
}

/// Prometheus metrics: requests and latency by route and status, pool usage, the change
/// feed's lag.
#[utoipa::path(
    tag = "operations",
    security(()),
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"))
)]
#[get("/metrics")]
async fn metrics(metrics: web::Data<Metrics>, pool: web::Data<Pool>) -> HttpResponse {
    let lag = match pool.get().await {
        Ok(mut conn) => crate::changes::lag_seconds(&mut conn).await.ok(),
        Err(_) => None,
    };
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render(&pool, lag))
}
