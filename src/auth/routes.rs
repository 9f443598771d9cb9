//! `/api/v1/auth`: sign in, rotate refresh tokens, sign out, and who am I.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use chrono::{Duration as ChronoDuration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use super::passwords::PASSWORD_MAX;
use super::{AuthState, Principal, Role, Scope, passwords};
use crate::db::DbConn;
use crate::db::schema::{api_keys, refresh_tokens, users};
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::etag::versioned;
use crate::http::json::ValidJson;
use crate::http::rate_limit::RateLimiter;
use crate::kit::ids::{ApiKeyId, UserId};
use crate::kit::input::{EMAIL_MAX, Secret, Text};
use crate::secrets;

/// Limits login attempts per e-mail address, against password guessing.
pub struct LoginThrottle(pub RateLimiter);

crate::routes!(login, refresh, logout, me);

/// The fields of a refresh token that decide whether it may be exchanged.
#[derive(Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
struct RefreshTokenRow {
    id: Uuid,
    family_id: Uuid,
    user_id: UserId,
    expires_at: chrono::DateTime<Utc>,
    rotated_at: Option<chrono::DateTime<Utc>>,
    revoked_at: Option<chrono::DateTime<Utc>>,
}

/// Body of `POST /auth/login`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct LoginRequest {
    #[validate(nested)]
    pub email: Text<1, { EMAIL_MAX }>,
    #[validate(nested)]
    pub password: Secret<1, { PASSWORD_MAX }>,
}

/// Body of `POST /auth/refresh` and `POST /auth/logout`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct RefreshRequest {
    #[validate(nested)]
    pub refresh_token: Secret<1, 200>,
}

/// A fresh access token and the refresh token to get the next one.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque; exchange it once at `/auth/refresh`. Reusing a spent one signs the session out.
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: u64,
}

/// The caller, as `GET /auth/me` shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Me {
    /// A staff user.
    User {
        id: UserId,
        email: String,
        /// The name the user goes by; `null` until set.
        display_name: Option<String>,
        role: Role,
        active: bool,
        /// The IANA zone the user's day is planned in.
        time_zone: String,
    },
    /// An integration's API key.
    ApiKey {
        id: ApiKeyId,
        name: String,
        scopes: Vec<Scope>,
    },
}

fn unauthorized() -> ApiError {
    ApiError::Unauthorized("invalid e-mail or password".into())
}

fn invalid_refresh() -> ApiError {
    ApiError::Unauthorized("the refresh token is invalid, expired, revoked or already used".into())
}

/// Sign in with e-mail and password.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    security(()),
    responses(
        (status = 200, body = TokenPair),
        (status = 401, description = "Wrong e-mail or password, or inactive user", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/login")]
async fn login(
    mut conn: DbConn,
    state: web::Data<AuthState>,
    throttle: web::Data<LoginThrottle>,
    body: ValidJson<LoginRequest>,
) -> ApiResult<web::Json<TokenPair>> {
    let (email, password) = (body.0.email.into_inner(), body.0.password.into_inner());
    let email = email.trim().to_lowercase();
    if let Some(decision) = throttle.0.check(&email).filter(|d| !d.allowed) {
        return Err(ApiError::TooManyRequests {
            retry_after: decision.reset,
        });
    }
    let row: Option<(UserId, String, String, bool)> = users::table
        .filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("lower(email) = ")
                .bind::<diesel::sql_types::Text, _>(&email),
        )
        .select((users::id, users::password_hash, users::role, users::active))
        .first(&mut conn)
        .await
        .optional()?;
    let (id, role, active, hash) = match row {
        Some((id, hash, role, active)) => (Some(id), Role::parse(&role), active, Some(hash)),
        None => (None, None, false, None),
    };
    let verified = passwords::verify(password, hash).await;
    match (id, role) {
        (Some(id), Some(role)) if verified && active => {
            let pair = issue_pair(&mut conn, &state, id, role, Uuid::now_v7()).await?;
            Ok(web::Json(pair))
        }
        _ => Err(unauthorized()),
    }
}

/// Exchange a refresh token for a new pair (the old refresh token stops working).
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    security(()),
    responses(
        (status = 200, body = TokenPair),
        (status = 401, description = "Invalid, expired, revoked or reused token", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/refresh")]
async fn refresh(
    mut conn: DbConn,
    state: web::Data<AuthState>,
    body: ValidJson<RefreshRequest>,
) -> ApiResult<web::Json<TokenPair>> {
    let digest = secrets::digest(body.0.refresh_token.as_str());
    let state = state.into_inner();
    let outcome = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            {
                let token: Option<RefreshTokenRow> = refresh_tokens::table
                    .filter(refresh_tokens::token_hash.eq(&digest))
                    .select(RefreshTokenRow::as_select())
                    .for_update()
                    .first(conn)
                    .await
                    .optional()?;
                let Some(RefreshTokenRow {
                    id,
                    family_id: family,
                    user_id,
                    expires_at,
                    rotated_at,
                    revoked_at,
                }) = token
                else {
                    return Ok(None);
                };
                if rotated_at.is_some() {
                    // A spent token came back: someone holds a copy. End the whole session.
                    tracing::warn!(%family, "refresh token reuse detected; revoking the family");
                    revoke_family(conn, family).await?;
                    return Ok(None);
                }
                if revoked_at.is_some() || expires_at <= Utc::now() {
                    return Ok(None);
                }
                let user: Option<(String, bool)> = users::table
                    .find(user_id)
                    .select((users::role, users::active))
                    .first(conn)
                    .await
                    .optional()?;
                let Some(role) = user
                    .filter(|(_, active)| *active)
                    .and_then(|(role, _)| Role::parse(&role))
                else {
                    return Ok(None);
                };
                diesel::update(refresh_tokens::table.find(id))
                    .set(refresh_tokens::rotated_at.eq(Utc::now()))
                    .execute(conn)
                    .await?;
                issue_pair(conn, &state, user_id, role, family)
                    .await
                    .map(Some)
            }
        })
        .await?;
    outcome.map(web::Json).ok_or_else(invalid_refresh)
}

/// Sign out: the refresh token's whole session is revoked.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    security(()),
    responses((status = 204, description = "Signed out (also when the token was unknown)"))
)]
#[post("/auth/logout")]
async fn logout(mut conn: DbConn, body: ValidJson<RefreshRequest>) -> ApiResult<HttpResponse> {
    let digest = secrets::digest(body.0.refresh_token.as_str());
    let family: Option<Uuid> = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(&digest))
        .select(refresh_tokens::family_id)
        .first(&mut conn)
        .await
        .optional()?;
    if let Some(family) = family {
        revoke_family(&mut conn, family).await?;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Who the caller is: a user or an API key. A user changes their own profile with
/// `PATCH /auth/me` (in `users::routes`, beside the other user writes).
#[utoipa::path(tag = "auth", responses((status = 200, body = Me, headers(("ETag" = String)))))]
#[get("/auth/me")]
async fn me(principal: Principal, mut conn: DbConn) -> ApiResult<HttpResponse> {
    let (me, version) = match principal {
        Principal::User { id, .. } => {
            let (email, display_name, role, active, time_zone, version) = users::table
                .find(id)
                .select((
                    users::email,
                    users::display_name,
                    users::role,
                    users::active,
                    users::time_zone,
                    users::version,
                ))
                .first(&mut conn)
                .await?;
            (
                Me::User {
                    id,
                    email,
                    display_name,
                    role,
                    active,
                    time_zone,
                },
                version,
            )
        }
        Principal::ApiKey { id, scopes } => {
            let (name, version): (String, i64) = api_keys::table
                .find(id)
                .select((api_keys::name, api_keys::version))
                .first(&mut conn)
                .await?;
            (Me::ApiKey { id, name, scopes }, version)
        }
        Principal::Member { .. } => {
            return Err(ApiError::Forbidden(
                "a member token is for `/me` only".into(),
            ));
        }
    };
    Ok(versioned(StatusCode::OK, &me, version))
}

async fn revoke_family(conn: &mut AsyncPgConnection, family: Uuid) -> QueryResult<usize> {
    diesel::update(refresh_tokens::table)
        .filter(refresh_tokens::family_id.eq(family))
        .filter(refresh_tokens::revoked_at.is_null())
        .set(refresh_tokens::revoked_at.eq(Utc::now()))
        .execute(conn)
        .await
}

/// Stores a new refresh token in `family` and signs an access token.
async fn issue_pair(
    conn: &mut AsyncPgConnection,
    state: &AuthState,
    user_id: UserId,
    role: Role,
    family: Uuid,
) -> ApiResult<TokenPair> {
    let refresh_token = secrets::random_token(32);
    let expires_at = Utc::now()
        + ChronoDuration::from_std(state.refresh_ttl).unwrap_or(ChronoDuration::days(30));
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::id.eq(Uuid::now_v7()),
            refresh_tokens::family_id.eq(family),
            refresh_tokens::user_id.eq(user_id),
            refresh_tokens::token_hash.eq(secrets::digest(&refresh_token)),
            refresh_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .await?;
    let access_token = state
        .keys
        .issue(user_id, role)
        .map_err(ApiError::internal)?;
    Ok(TokenPair {
        access_token,
        refresh_token,
        token_type: "Bearer",
        expires_in: state.keys.ttl().as_secs(),
    })
}
