//! `Idempotency-Key` for every `POST`. The request runs inside one database transaction that
//! also stores its response, so a retry after any failure either replays the committed
//! result or finds nothing committed and runs afresh. A transaction-scoped advisory lock
//! makes a concurrent duplicate answer `409` instead of running twice. Keys are scoped to
//! the principal and kept 24 hours, in PostgreSQL so they hold across restarts and instances.

use actix_web::body::{BoxBody, MessageBody, to_bytes};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_TYPE, ETAG, HeaderName, HeaderValue, LOCATION};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError, web};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text, Timestamptz};
use diesel::upsert::excluded;
use diesel_async::{AnsiTransactionManager, AsyncPgConnection, RunQueryDsl, TransactionManager};
use sha2::{Digest, Sha256};

use super::json::{BodyLimits, read_body};
use crate::db::prepared::Cached;
use crate::db::schema::idempotency_keys::dsl;
use crate::db::{Pool, PooledConn, RequestTransaction};
use crate::error::{ApiError, ApiResult};

/// The request header.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on a replayed response.
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// How long a key is remembered, in hours.
pub const RETENTION_HOURS: u32 = 24;
/// Response headers stored with the body and replayed.
const KEPT_HEADERS: [HeaderName; 3] = [CONTENT_TYPE, LOCATION, ETAG];

#[derive(Queryable)]
struct Stored {
    request_hash: Vec<u8>,
    status: i16,
    headers: serde_json::Value,
    body: Vec<u8>,
}

/// The authenticated caller as authentication left it in the request's extensions: keys are
/// kept per caller. (A trait, so that this plumbing knows no principal type.)
pub trait Caller: 'static {
    /// A stable key naming the caller.
    fn key(&self) -> String;
}

/// Middleware: applies `Idempotency-Key` to `POST` requests that carry one, scoped to the
/// caller `C` found in the request's extensions.
pub async fn idempotency<C: Caller>(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let key = match req.headers().get(&IDEMPOTENCY_KEY) {
        Some(value) if req.method() == Method::POST => value.to_str().ok().map(str::to_owned),
        _ => {
            return next
                .call(req)
                .await
                .map(ServiceResponse::map_into_boxed_body);
        }
    };
    let prepared = prepare::<C>(&mut req, key).await;
    let (scope, key, hash, mut conn) = match prepared {
        Ok(parts) => parts,
        Err(error) => return Ok(req.error_response(error).map_into_boxed_body()),
    };
    match begin(&mut conn, &scope, &key, &hash).await {
        Ok(None) => {}
        Ok(Some(replay)) => return Ok(req.into_response(replay)),
        Err(error) => return Ok(req.error_response(error).map_into_boxed_body()),
    }

    let shared = RequestTransaction::default();
    shared.put(conn);
    req.extensions_mut().insert(shared.clone());
    let response = next.call(req).await?;
    let (http_request, response) = response.into_parts();
    let status = response.status();
    let kept = kept_headers(response.headers());
    let body = match to_bytes(response.into_body()).await {
        Ok(body) => body,
        Err(_) => {
            return Ok(ServiceResponse::new(
                http_request,
                ApiError::internal("unreadable response body").error_response(),
            ));
        }
    };
    let Some(mut conn) = shared.take() else {
        let error = ApiError::internal("the request transaction was not returned");
        return Ok(ServiceResponse::new(http_request, error.error_response()));
    };
    let finished = finish(&mut conn, &scope, &key, &hash, status, &kept, &body).await;
    let response = match finished {
        Ok(()) => rebuild(status, &kept, body, false),
        Err(error) => error.error_response(),
    };
    Ok(ServiceResponse::new(http_request, response))
}

/// Validates the key, reads and hashes the body (putting it back for the handler), and
/// takes a connection.
async fn prepare<C: Caller>(
    req: &mut ServiceRequest,
    key: Option<String>,
) -> ApiResult<(String, String, Vec<u8>, PooledConn)> {
    let key = key
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::BadRequest(
                "Idempotency-Key must be 1 to 255 printable ASCII characters".into(),
            )
        })?;
    let scope = req
        .extensions()
        .get::<C>()
        .map(C::key)
        .unwrap_or_else(|| "anonymous".to_owned());
    let limit = req
        .app_data::<web::Data<BodyLimits>>()
        .map(|l| l.large)
        .unwrap_or(8 << 20);
    let body = read_body(req.take_payload(), limit).await?;
    let mut hasher = Sha256::new();
    hasher.update(req.method().as_str());
    hasher.update([0]);
    hasher.update(req.uri().to_string());
    hasher.update([0]);
    hasher.update(&body);
    let hash = hasher.finalize().to_vec();
    req.set_payload(actix_web::dev::Payload::from(body));
    let pool = req
        .app_data::<web::Data<Pool>>()
        .ok_or_else(|| ApiError::internal("no database pool configured"))?;
    Ok((scope, key, hash, pool.get().await?))
}

/// Opens the transaction and takes the key's lock. `Some(response)` when the request must
/// not run: a replay, a mismatch (`422`) or a concurrent duplicate (`409`).
async fn begin(
    conn: &mut AsyncPgConnection,
    scope: &str,
    key: &str,
    hash: &[u8],
) -> ApiResult<Option<HttpResponse>> {
    AnsiTransactionManager::begin_transaction(conn).await?;
    let result = lookup(conn, scope, key, hash).await;
    if !matches!(result, Ok(None)) {
        AnsiTransactionManager::rollback_transaction(conn).await?;
    }
    result
}

async fn lookup(
    conn: &mut AsyncPgConnection,
    scope: &str,
    key: &str,
    hash: &[u8],
) -> ApiResult<Option<HttpResponse>> {
    let locked: bool = Cached::fixed(diesel::select(
        diesel::dsl::sql::<Bool>("pg_try_advisory_xact_lock(hashtextextended(")
            .bind::<Text, _>(format!("{scope}\n{key}"))
            .sql(", 0))"),
    ))
    .get_result(conn)
    .await?;
    if !locked {
        return Err(ApiError::Conflict(
            "a request with this Idempotency-Key is still being processed; retry when it has finished".into(),
        ));
    }
    let stored: Option<Stored> = Cached::fixed(
        dsl::idempotency_keys
            .filter(dsl::principal.eq(scope))
            .filter(dsl::key.eq(key))
            .filter(dsl::created_at.gt(retention_cutoff()))
            .select((dsl::request_hash, dsl::status, dsl::headers, dsl::body))
            .limit(1),
    )
    .get_result(conn)
    .await
    .optional()?;
    match stored {
        None => Ok(None),
        Some(stored) if stored.request_hash != hash => Err(ApiError::Unprocessable(
            "this Idempotency-Key was used with a different request; use a new key for a new request".into(),
        )),
        Some(stored) => {
            let status = StatusCode::from_u16(stored.status as u16).unwrap_or(StatusCode::OK);
            let headers: Vec<(String, String)> = serde_json::from_value(stored.headers).unwrap_or_default();
            Ok(Some(rebuild(status, &headers, web::Bytes::from(stored.body), true)))
        }
    }
}

/// Stores the response and commits, or rolls everything back when the outcome should not
/// be remembered (server errors, auth failures, conflicts, rate limits).
async fn finish(
    conn: &mut AsyncPgConnection,
    scope: &str,
    key: &str,
    hash: &[u8],
    status: StatusCode,
    headers: &[(String, String)],
    body: &[u8],
) -> ApiResult<()> {
    let remembered =
        !status.is_server_error() && !matches!(status.as_u16(), 401 | 403 | 409 | 412 | 429);
    if !remembered {
        AnsiTransactionManager::rollback_transaction(conn).await?;
        return Ok(());
    }
    // An expired record of the same key may still be there: replace it.
    let stored = diesel::insert_into(dsl::idempotency_keys)
        .values((
            dsl::principal.eq(scope),
            dsl::key.eq(key),
            dsl::request_hash.eq(hash),
            dsl::status.eq(status.as_u16() as i16),
            dsl::headers.eq(serde_json::to_value(headers).unwrap_or_default()),
            dsl::body.eq(body),
        ))
        .on_conflict((dsl::principal, dsl::key))
        .do_update()
        .set((
            dsl::request_hash.eq(excluded(dsl::request_hash)),
            dsl::status.eq(excluded(dsl::status)),
            dsl::headers.eq(excluded(dsl::headers)),
            dsl::body.eq(excluded(dsl::body)),
            dsl::created_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await;
    match stored {
        Ok(_) => Ok(AnsiTransactionManager::commit_transaction(conn).await?),
        Err(error) => {
            let _ = AnsiTransactionManager::rollback_transaction(conn).await;
            Err(error.into())
        }
    }
}

fn kept_headers(headers: &actix_web::http::header::HeaderMap) -> Vec<(String, String)> {
    KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            Some((
                name.to_string(),
                headers.get(name)?.to_str().ok()?.to_owned(),
            ))
        })
        .collect()
}

fn rebuild(
    status: StatusCode,
    headers: &[(String, String)],
    body: web::Bytes,
    replayed: bool,
) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(value),
        ) {
            response.insert_header((name, value));
        }
    }
    if replayed {
        response.insert_header((REPLAYED, "true"));
    }
    response.body(body)
}

/// The moment before which stored keys are forgotten.
fn retention_cutoff() -> diesel::expression::SqlLiteral<Timestamptz> {
    diesel::dsl::sql(&format!(
        "now() - make_interval(hours => {RETENTION_HOURS})"
    ))
}

/// Deletes keys older than the retention period; run periodically.
pub async fn purge_expired(pool: &Pool) -> ApiResult<usize> {
    let mut conn = pool.get().await?;
    Ok(diesel::delete(dsl::idempotency_keys)
        .filter(dsl::created_at.lt(retention_cutoff()))
        .execute(&mut conn)
        .await?)
}

/// Replaces every stored response that names `id` with `{"id": ..., "erased": true}`: after
/// a customer's erasure a replay must not hand back what was erased, and must still not run
/// the request again. Scans the table, which holds a day of keys (erasures are rare).
pub async fn redact_responses_naming(
    conn: &mut AsyncPgConnection,
    id: uuid::Uuid,
) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE idempotency_keys \
         SET body = convert_to(json_build_object('id', $1, 'erased', true)::text, 'UTF8') \
         WHERE position(convert_to($1::text, 'UTF8') IN body) > 0",
    )
    .bind::<diesel::sql_types::Uuid, _>(id)
    .execute(conn)
    .await
}
