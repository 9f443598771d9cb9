//! `/api/v1/webhooks`: subscriptions (admins, or keys with `webhooks:manage`), their secret's
//! rotation and their delivery log.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::requests::{
    DeliveryFilters, DeliveryStatus, NewWebhook, WebhookPatch, checked_patterns, checked_url,
};
use super::{ROTATION_OVERLAP, Webhook, WebhookRow, WebhookSettings, signing};
use crate::auth::{Authorized, WebhooksManage};
use crate::db::DbConn;
use crate::db::schema::webhook_deliveries;
use crate::error::{ApiError, ApiResult};
use crate::http::etag::{IfMatch, created, versioned};
use crate::http::json::ValidJson;
use crate::http::pagination::{Page, PageParams};
use crate::http::query::Query;
use crate::kit::event_types::Catalogue;
use crate::kit::ids::{DeliveryId, WebhookId};
use crate::kit::input::present;
use crate::kit::write::{self, Action, Writer};

crate::routes!(
    create,
    list,
    get_one,
    update,
    remove,
    rotate_secret,
    deliveries,
    delivery,
    redeliver
);

/// A rotation: a new secret signs beside the old one for a day.
const SECRET_ROTATED: Action = Action::named("secret_rotated", "secret_rotated");

/// A subscription with its secret: the answer to its creation and to a rotation, the only
/// times the secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The signing secret (`whsec_` and base64). Store it now: it is never shown again.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

impl WebhookRow {
    fn with_secret(&self) -> WebhookWithSecret {
        WebhookWithSecret {
            webhook: self.view(),
            secret: self.secret.clone(),
        }
    }
}

/// Subscribe a URL to event types.
#[utoipa::path(
    tag = "webhooks",
    request_body(content = NewWebhook, example = json!({
        "url": "https://shop.example/hooks/rapport", "event_types": ["customer.*", "points.changed"],
        "description": "Loyalty sync"
    })),
    responses((status = 201, description = "Subscribed", body = WebhookWithSecret, headers(("Location" = String), ("ETag" = String))))
)]
#[post("/webhooks")]
async fn create(
    caller: Authorized<WebhooksManage>,
    mut conn: DbConn,
    settings: web::Data<WebhookSettings>,
    catalogue: web::Data<Catalogue>,
    body: ValidJson<NewWebhook>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let event_types = checked_patterns(&catalogue, b.event_types)?;
    let url = checked_url(b.url, settings.allow_private).await?;
    let now = Utc::now();
    let row = WebhookRow {
        id: WebhookId::new(),
        url,
        description: present(b.description),
        event_types,
        secret: signing::new_secret(),
        previous_secret: None,
        previous_secret_until: None,
        active: true,
        disabled_reason: None,
        failing_since: None,
        version: 1,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    let saved = write::create_single(&mut conn, &Writer::of(&caller.principal), row).await?;
    Ok(created(
        format!("/api/v1/webhooks/{}", saved.id),
        &saved.with_secret(),
        saved.version,
    ))
}

/// List subscriptions, oldest first.
#[utoipa::path(tag = "webhooks", params(PageParams), responses((status = 200, body = Page<Webhook>)))]
#[get("/webhooks")]
async fn list(
    _: Authorized<WebhooksManage>,
    mut conn: DbConn,
    page: Query<PageParams>,
) -> ApiResult<web::Json<Page<Webhook>>> {
    use crate::db::schema::webhooks;
    let window = page.window::<Uuid>()?;
    let mut query = webhooks::table
        .filter(webhooks::deleted_at.is_null())
        .select(WebhookRow::as_select())
        .order(webhooks::id)
        .limit(window.fetch())
        .into_boxed();
    if let Some(after) = window.after {
        query = query.filter(webhooks::id.gt(after));
    }
    let rows = query.load(&mut conn).await?;
    Ok(web::Json(
        window.page(rows, |w| w.id.get()).map(|w| w.view()),
    ))
}

/// Get a subscription (never its secret).
#[utoipa::path(tag = "webhooks", responses((status = 200, body = Webhook, headers(("ETag" = String)))))]
#[get("/webhooks/{id}")]
async fn get_one(
    _: Authorized<WebhooksManage>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let row = write::live::<WebhookRow>(&mut conn, WebhookId::from(*id)).await?;
    Ok(write::current(&row))
}

/// Change a subscription: its URL, event types or description; pause or resume it.
#[utoipa::path(tag = "webhooks", request_body = WebhookPatch, responses((status = 200, body = Webhook, headers(("ETag" = String)))))]
#[patch("/webhooks/{id}")]
async fn update(
    caller: Authorized<WebhooksManage>,
    mut conn: DbConn,
    settings: web::Data<WebhookSettings>,
    catalogue: web::Data<Catalogue>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<WebhookPatch>,
) -> ApiResult<HttpResponse> {
    let p = body.0;
    let event_types = match p.event_types {
        Some(given) => Some(checked_patterns(&catalogue, Some(given))?),
        None => None,
    };
    let url = match p.url {
        Some(url) => Some(checked_url(url, settings.allow_private).await?),
        None => None,
    };
    let writer = Writer::of(&caller.principal);
    let (saved, ()) = write::change(
        &mut conn,
        &writer,
        WebhookId::from(*id),
        &if_match,
        Action::UPDATED,
        async |_, after: &mut WebhookRow| {
            if let Some(url) = url {
                after.url = url;
            }
            if let Some(types) = event_types {
                after.event_types = types;
            }
            if p.description.is_some() {
                after.description = present(p.description);
            }
            match p.active {
                Some(true) if !after.active => {
                    after.active = true;
                    after.disabled_reason = None;
                    after.failing_since = None;
                }
                Some(false) => after.active = false,
                _ => {}
            }
            Ok(())
        },
    )
    .await?;
    Ok(write::current(&saved))
}

/// Delete a subscription. Nothing more is delivered to it; its delivery log goes with it.
#[utoipa::path(tag = "webhooks", responses((status = 204, description = "Deleted")))]
#[delete("/webhooks/{id}")]
async fn remove(
    caller: Authorized<WebhooksManage>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&caller.principal);
    write::remove_single::<WebhookRow>(&mut conn, &writer, WebhookId::from(*id), &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Rotate the signing secret. The answer shows the new secret, once; for the next 24 hours
/// every delivery carries a signature by each secret (space-separated, as the Standard
/// Webhooks specification allows), so receivers can switch without losing a delivery.
#[utoipa::path(tag = "webhooks", responses((status = 200, body = WebhookWithSecret, headers(("ETag" = String)))))]
#[post("/webhooks/{id}/rotate-secret")]
async fn rotate_secret(
    caller: Authorized<WebhooksManage>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&caller.principal);
    let (saved, ()) = write::change(
        &mut conn,
        &writer,
        WebhookId::from(*id),
        &if_match,
        SECRET_ROTATED,
        async |_, after: &mut WebhookRow| {
            let now = Utc::now();
            after.previous_secret =
                Some(std::mem::replace(&mut after.secret, signing::new_secret()));
            after.previous_secret_until = Some(now + ROTATION_OVERLAP);
            Ok(())
        },
    )
    .await?;
    Ok(versioned(
        StatusCode::OK,
        &saved.with_secret(),
        saved.version,
    ))
}

/// One attempt to deliver.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    /// The endpoint's status code; `null` when none came (timeout, refused address, ...).
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    /// Why the attempt failed, when it did.
    pub error: Option<String>,
    /// The start of the endpoint's answer (at most 512 bytes).
    pub response_excerpt: Option<String>,
}

/// One event's delivery to one subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    /// The event's id: the `webhook-id` header of every attempt.
    pub event_id: Uuid,
    #[schema(example = "points.changed")]
    pub event_type: String,
    pub status: DeliveryStatus,
    /// Every attempt, oldest first.
    pub attempts: Vec<Attempt>,
    /// When the next attempt is due, while `pending`.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A delivery row.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries)]
struct DeliveryRow {
    id: DeliveryId,
    webhook_id: WebhookId,
    event_id: Uuid,
    event_type: String,
    status: DeliveryStatus,
    attempts: serde_json::Value,
    next_attempt_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl From<DeliveryRow> for Delivery {
    fn from(row: DeliveryRow) -> Self {
        Self {
            id: row.id,
            webhook_id: row.webhook_id,
            event_id: row.event_id,
            event_type: row.event_type,
            status: row.status,
            attempts: serde_json::from_value(row.attempts).unwrap_or_default(),
            next_attempt_at: row.next_attempt_at,
            created_at: row.created_at,
        }
    }
}

/// The delivery log of a subscription, newest first (kept 30 days).
#[utoipa::path(tag = "webhooks", params(PageParams, DeliveryFilters), responses((status = 200, body = Page<Delivery>)))]
#[get("/webhooks/{id}/deliveries")]
async fn deliveries(
    _: Authorized<WebhooksManage>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    page: Query<PageParams>,
    filters: Query<DeliveryFilters>,
) -> ApiResult<web::Json<Page<Delivery>>> {
    let webhook = write::live::<WebhookRow>(&mut conn, WebhookId::from(*id)).await?;
    let window = page.window::<Uuid>()?;
    let mut query = webhook_deliveries::table
        .filter(webhook_deliveries::webhook_id.eq(webhook.id))
        .select(DeliveryRow::as_select())
        .order(webhook_deliveries::id.desc())
        .limit(window.fetch())
        .into_boxed();
    if let Some(after) = window.after {
        query = query.filter(webhook_deliveries::id.lt(after));
    }
    if let Some(status) = filters.status {
        query = query.filter(webhook_deliveries::status.eq(status));
    }
    let rows = query.load(&mut conn).await?;
    Ok(web::Json(
        window.page(rows, |d| d.id.get()).map(Delivery::from),
    ))
}

async fn find_delivery(
    conn: &mut AsyncPgConnection,
    webhook: WebhookId,
    id: DeliveryId,
) -> ApiResult<DeliveryRow> {
    Ok(webhook_deliveries::table
        .find(id)
        .filter(webhook_deliveries::webhook_id.eq(webhook))
        .select(DeliveryRow::as_select())
        .first(conn)
        .await?)
}

/// One delivery with its attempts.
#[utoipa::path(tag = "webhooks", responses((status = 200, body = Delivery)))]
#[get("/webhooks/{id}/deliveries/{delivery_id}")]
async fn delivery(
    _: Authorized<WebhooksManage>,
    mut conn: DbConn,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<Delivery>> {
    let (webhook, id) = path.into_inner();
    let webhook = write::live::<WebhookRow>(&mut conn, WebhookId::from(webhook)).await?;
    let row = find_delivery(&mut conn, webhook.id, DeliveryId::from(id)).await?;
    Ok(web::Json(row.into()))
}

/// Deliver again: the delivery is due at once and gets the whole retry schedule anew. Its
/// `webhook-id` stays the event's id, so a receiver that has it already can tell.
#[utoipa::path(
    tag = "webhooks",
    responses(
        (status = 202, description = "Queued for delivery", body = Delivery),
        (status = 409, description = "The subscription is paused or disabled", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/webhooks/{id}/deliveries/{delivery_id}/redeliver")]
async fn redeliver(
    _: Authorized<WebhooksManage>,
    mut conn: DbConn,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (webhook, id) = path.into_inner();
    let webhook = write::live::<WebhookRow>(&mut conn, WebhookId::from(webhook)).await?;
    if !webhook.active {
        return Err(ApiError::Conflict(
            "the webhook is not active; resume it with PATCH {\"active\": true} first".into(),
        ));
    }
    let id = DeliveryId::from(id);
    find_delivery(&mut conn, webhook.id, id).await?;
    let row: DeliveryRow = diesel::update(webhook_deliveries::table.find(id))
        .set((
            webhook_deliveries::status.eq(DeliveryStatus::Pending),
            webhook_deliveries::retries.eq(0),
            webhook_deliveries::next_attempt_at.eq(diesel::dsl::now),
        ))
        .returning(DeliveryRow::as_returning())
        .get_result(&mut conn)
        .await?;
    Ok(HttpResponse::Accepted().json(Delivery::from(row)))
}
