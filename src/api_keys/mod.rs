//! `/api/v1/api-keys`: credentials for integrations (shops, back-office jobs). The secret is
//! shown once at creation and stored only as a SHA-256 digest.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::auth::{AdminOnly, AuthState, Authorized, KEY_PREFIX, Scope};
use crate::db::DbConn;
use crate::db::schema::api_keys;
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::etag::{IfMatch, created, versioned};
use crate::http::json::ValidJson;
use crate::http::pagination::{Page, PageParams};
use crate::http::query::Query;
use crate::kit::ids::{ApiKeyId, UserId};
use crate::kit::input::{Items, Text};
use crate::kit::write::{self, Action, Versioned, Writer};
use crate::secrets;

/// Characters of the key kept in clear to identify it in lists.
const SHOWN_PREFIX_LEN: usize = 12;

crate::routes!(create, list, get_one, revoke);

/// A key row. Its digest is never serialised, so never audited or announced.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = api_keys)]
struct ApiKeyRow {
    id: ApiKeyId,
    name: String,
    prefix: String,
    #[serde(skip)]
    key_hash: Vec<u8>,
    scopes: Vec<String>,
    version: i64,
    created_by: Option<UserId>,
    created_at: DateTime<Utc>,
    #[serde(skip)]
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl Versioned for ApiKeyRow {
    const KIND: &'static str = "api_key";
    type Id = ApiKeyId;

    // Keys have no `updated_at`: a revocation is stamped by `revoked_at`.
    crate::versioned_columns!(id: id, version: version);

    fn view(&self) -> serde_json::Value {
        serde_json::to_value(ApiKey::from(self.clone())).unwrap_or_default()
    }

    async fn lock(conn: &mut AsyncPgConnection, id: ApiKeyId) -> ApiResult<Self> {
        Ok(api_keys::table
            .find(id)
            .select(ApiKeyRow::as_select())
            .for_update()
            .first(conn)
            .await?)
    }

    async fn insert(&self, conn: &mut AsyncPgConnection) -> ApiResult<Self> {
        Ok(diesel::insert_into(api_keys::table)
            .values((
                api_keys::id.eq(self.id),
                api_keys::name.eq(&self.name),
                api_keys::prefix.eq(&self.prefix),
                api_keys::key_hash.eq(&self.key_hash),
                api_keys::scopes.eq(&self.scopes),
                api_keys::created_by.eq(self.created_by),
            ))
            .returning(ApiKeyRow::as_returning())
            .get_result(conn)
            .await?)
    }

    /// Only a revocation changes a key.
    async fn update(&self, conn: &mut AsyncPgConnection) -> ApiResult<Self> {
        Ok(diesel::update(api_keys::table.find(self.id))
            .set((
                api_keys::revoked_at.eq(self.revoked_at),
                api_keys::version.eq(self.version),
            ))
            .returning(ApiKeyRow::as_returning())
            .get_result(conn)
            .await?)
    }
}

/// The events API keys record: kept inside (the audit log), never delivered.
pub fn event_types() -> Vec<crate::kit::event_types::EventType> {
    use crate::kit::event_types::EventType;
    use crate::kit::schema_part::SchemaPart;
    vec![
        EventType::internal(
            "api_key.created",
            "An API key was created.",
            SchemaPart::of::<ApiKey>,
        ),
        EventType::internal(
            "api_key.revoked",
            "An API key was revoked.",
            SchemaPart::of::<ApiKey>,
        ),
    ]
}

/// A revocation.
const REVOKED: Action = Action::named("revoked", "revoked");

/// An API key, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: ApiKeyId,
    #[schema(example = "Web shop")]
    pub name: String,
    pub scopes: Vec<Scope>,
    /// The first characters of the key, to recognise it.
    #[schema(example = "rpk_Xy3kQ9aB")]
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    /// When the key last authenticated a request (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Set once the key is revoked; it no longer authenticates.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(row: ApiKeyRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            scopes: row.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
            prefix: row.prefix,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// The response to `POST /api-keys`: the key and, this once, its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The full secret. Store it now: it is never shown again.
    #[schema(example = "rpk_Xy3kQ9aBc1d2e3f4g5h6i7j8k9l0m1n2o3p4q5r6s7t")]
    pub key: String,
}

/// Body of `POST /api-keys`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// What the key is for.
    #[validate(nested)]
    pub name: Text<1, 100>,
    /// What the key may do (at least one).
    #[validate(nested)]
    pub scopes: Items<Scope, 1, 12>,
}

/// Create an API key.
#[utoipa::path(
    tag = "api-keys",
    request_body = NewApiKey,
    responses((status = 201, body = CreatedApiKey, headers(("Location" = String), ("ETag" = String))))
)]
#[post("/api-keys")]
async fn create(
    caller: Authorized<AdminOnly>,
    mut conn: DbConn,
    body: ValidJson<NewApiKey>,
) -> ApiResult<HttpResponse> {
    let (name, mut scopes) = (body.0.name.into_inner(), body.0.scopes.into_inner());
    scopes.sort_by_key(|s| s.as_str());
    scopes.dedup();
    let key = format!("{KEY_PREFIX}{}", secrets::random_token(32));
    let new = ApiKeyRow {
        id: ApiKeyId::new(),
        name,
        prefix: key[..SHOWN_PREFIX_LEN].to_owned(),
        key_hash: secrets::digest(&key),
        scopes: scopes.iter().map(|s| s.as_str()).collect(),
        version: 1,
        created_by: caller.principal.user_id(),
        created_at: Utc::now(),
        last_used_at: None,
        revoked_at: None,
    };
    let writer = Writer::of(&caller.principal);
    let row = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            write::create(conn, &writer, new, Action::CREATED).await
        })
        .await?;
    let (id, version) = (row.id, row.version);
    let body = CreatedApiKey {
        api_key: row.into(),
        key,
    };
    Ok(created(format!("/api/v1/api-keys/{id}"), &body, version))
}

/// List API keys, oldest first (revoked ones included).
#[utoipa::path(tag = "api-keys", params(PageParams), responses((status = 200, body = Page<ApiKey>)))]
#[get("/api-keys")]
async fn list(
    _: Authorized<AdminOnly>,
    mut conn: DbConn,
    page: Query<PageParams>,
) -> ApiResult<web::Json<Page<ApiKey>>> {
    let window = page.window::<Uuid>()?;
    let mut query = api_keys::table
        .select(ApiKeyRow::as_select())
        .order(api_keys::id)
        .limit(window.fetch())
        .into_boxed();
    if let Some(after) = window.after {
        query = query.filter(api_keys::id.gt(after));
    }
    let rows = query.load(&mut conn).await?;
    Ok(web::Json(window.page(rows, |k| k.id).map(ApiKey::from)))
}

/// Get an API key. A revoked key is gone (`404`); the list keeps it, with `revoked_at`, for
/// the record.
#[utoipa::path(
    tag = "api-keys",
    responses(
        (status = 200, body = ApiKey, headers(("ETag" = String))),
        (status = 404, description = "No such API key, or it was revoked", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/api-keys/{id}")]
async fn get_one(
    _: Authorized<AdminOnly>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let row: ApiKeyRow = api_keys::table
        .find(*id)
        .filter(api_keys::revoked_at.is_null())
        .select(ApiKeyRow::as_select())
        .first(&mut conn)
        .await?;
    let version = row.version;
    Ok(versioned(StatusCode::OK, &ApiKey::from(row), version))
}

/// Revoke an API key. It stops authenticating at once; revoking twice is harmless.
#[utoipa::path(
    tag = "api-keys",
    responses(
        (status = 204, description = "Revoked"),
    )
)]
#[delete("/api-keys/{id}")]
async fn revoke(
    caller: Authorized<AdminOnly>,
    mut conn: DbConn,
    auth: web::Data<AuthState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let (writer, id) = (Writer::of(&caller.principal), ApiKeyId::from(*id));
    write::change(
        &mut conn,
        &writer,
        id,
        &if_match,
        REVOKED,
        async |_, key: &mut ApiKeyRow| {
            key.revoked_at = key.revoked_at.or(Some(Utc::now()));
            Ok(())
        },
    )
    .await?;
    auth.forget_api_key(id);
    Ok(HttpResponse::NoContent().finish())
}
