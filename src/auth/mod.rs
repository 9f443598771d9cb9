//! Who is calling and what they may do. The `authenticate` middleware turns the
//! `Authorization` header into a [`Principal`]; handlers declare what they need with
//! [`Authorized<R>`], so every rule lives in [`Role::grants`] and the requirement types.

pub mod cache;
pub mod passwords;
pub mod routes;
pub mod tokens;

use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use self::cache::TtlCache;
use self::tokens::TokenKeys;
use crate::db::{Pool, schema};
use crate::error::{ApiError, ApiResult};
use crate::http::rate_limit::{RateLimiter, apply_headers};
use crate::kit::ids::{ApiKeyId, UserId};
use crate::secrets;

pub use crate::kit::rights::*;

/// Every API key starts with this, so a bearer token is told apart from a JWT at a glance
/// (and secret scanners can recognise leaked keys).
pub const KEY_PREFIX: &str = "rpk_";

/// How long a credential look-up is trusted before the database is asked again.
const CREDENTIAL_CACHE_TTL: Duration = Duration::from_secs(10);
/// `last_used_at` of an API key is written at most this often.
const LAST_USED_GRANULARITY: Duration = Duration::from_secs(60);

/// What an API key grants, as cached.
#[derive(Clone)]
struct KeyGrant {
    id: ApiKeyId,
    scopes: Vec<Scope>,
}

/// Token keys and credential caches, shared by all workers.
pub struct AuthState {
    /// Signs and verifies access tokens.
    pub keys: TokenKeys,
    /// Lifetime of refresh tokens.
    pub refresh_ttl: Duration,
    users: TtlCache<UserId, Option<Role>>,
    api_keys: TtlCache<Vec<u8>, Option<KeyGrant>>,
    key_uses: TtlCache<ApiKeyId, ()>,
}

impl AuthState {
    /// State for the given signing secret and token lifetimes.
    pub fn new(
        secret: &[u8],
        access_ttl: Duration,
        refresh_ttl: Duration,
        member_ttl: Duration,
    ) -> Self {
        Self {
            keys: TokenKeys::new(secret, access_ttl, member_ttl),
            refresh_ttl,
            users: TtlCache::new(CREDENTIAL_CACHE_TTL),
            api_keys: TtlCache::new(CREDENTIAL_CACHE_TTL),
            key_uses: TtlCache::new(LAST_USED_GRANULARITY),
        }
    }

    /// Forgets what is cached about a user (after a role change or deactivation).
    pub fn forget_user(&self, id: UserId) {
        self.users.remove(&id);
    }

    /// Forgets what is cached about an API key (after it is revoked).
    pub fn forget_api_key(&self, id: ApiKeyId) {
        self.api_keys
            .remove_where(|grant| grant.as_ref().is_some_and(|g| g.id == id));
    }

    async fn resolve(&self, pool: &Pool, token: &str) -> ApiResult<Principal> {
        let rejected =
            || ApiError::Unauthorized("the credential is invalid, expired or revoked".into());
        if token.starts_with(KEY_PREFIX) {
            let grant = self
                .api_key_grant(pool, token)
                .await?
                .ok_or_else(rejected)?;
            self.record_key_use(pool, grant.id);
            return Ok(Principal::ApiKey {
                id: grant.id,
                scopes: grant.scopes,
            });
        }
        if let Some(id) = self.keys.subject(token) {
            let role = self.current_role(pool, id).await?.ok_or_else(rejected)?;
            return Ok(Principal::User { id, role });
        }
        // A member token: whether its customer is still there (not deleted, merged away or
        // erased) is checked by every `/me` handler as it reads them, so it stops at once.
        let customer = self.keys.member_subject(token).ok_or_else(rejected)?;
        Ok(Principal::Member { customer })
    }

    /// The user's role if the user exists and is active.
    async fn current_role(&self, pool: &Pool, id: UserId) -> ApiResult<Option<Role>> {
        if let Some(cached) = self.users.get(&id) {
            return Ok(cached);
        }
        use schema::users::dsl;
        let mut conn = pool.get().await?;
        let row: Option<(String, bool)> = dsl::users
            .find(id)
            .select((dsl::role, dsl::active))
            .first(&mut conn)
            .await
            .optional()?;
        let role = row
            .filter(|(_, active)| *active)
            .and_then(|(role, _)| Role::parse(&role));
        self.users.insert(id, role);
        Ok(role)
    }

    async fn api_key_grant(&self, pool: &Pool, token: &str) -> ApiResult<Option<KeyGrant>> {
        let digest = secrets::digest(token);
        if let Some(cached) = self.api_keys.get(&digest) {
            return Ok(cached);
        }
        use schema::api_keys::dsl;
        let mut conn = pool.get().await?;
        let row: Option<(ApiKeyId, Vec<String>)> = dsl::api_keys
            .filter(dsl::key_hash.eq(&digest))
            .filter(dsl::revoked_at.is_null())
            .select((dsl::id, dsl::scopes))
            .first(&mut conn)
            .await
            .optional()?;
        let grant = row.map(|(id, scopes)| KeyGrant {
            id,
            scopes: scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
        });
        self.api_keys.insert(digest, grant.clone());
        Ok(grant)
    }

    /// Records `last_used_at` in the background, at most once a minute per key.
    fn record_key_use(&self, pool: &Pool, id: ApiKeyId) {
        if self.key_uses.get(&id).is_some() {
            return;
        }
        self.key_uses.insert(id, ());
        let pool = pool.clone();
        actix_web::rt::spawn(async move {
            use schema::api_keys::dsl;
            let Ok(mut conn) = pool.get().await else {
                return;
            };
            let result = diesel::update(dsl::api_keys.find(id))
                .set(dsl::last_used_at.eq(Utc::now()))
                .execute(&mut conn)
                .await;
            if let Err(error) = result {
                tracing::warn!(%error, "could not record API key use");
            }
        });
    }
}

/// Middleware: authenticates the `Authorization` header when present and applies the rate
/// limit, keyed by the principal (or by client IP when there is no valid credential, so
/// that guessing tokens is limited too). A request without the header passes on
/// unauthenticated (public routes accept it; others answer `401`); a header that does not
/// authenticate is refused here with `401`.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let credential = match req.headers().get(AUTHORIZATION) {
        None => None,
        Some(header) => Some(resolve_header(&req, header.to_str().ok()).await),
    };
    // The key is built only when limiting is on: it is a formatted string per request.
    let decision = req
        .app_data::<web::Data<RateLimiter>>()
        .filter(|limiter| limiter.is_enabled())
        .and_then(|limiter| {
            let key = match &credential {
                Some(Ok(principal)) => principal.key(),
                _ => format!(
                    "ip:{}",
                    req.peer_addr()
                        .map(|a| a.ip().to_string())
                        .unwrap_or_default()
                ),
            };
            limiter.check(&key)
        });
    let outcome = match (decision, credential) {
        (Some(d), _) if !d.allowed => Err(ApiError::TooManyRequests {
            retry_after: d.reset,
        }),
        (_, Some(Err(error))) => Err(error),
        (_, Some(Ok(principal))) => {
            req.extensions_mut().insert(principal);
            Ok(())
        }
        (_, None) => Ok(()),
    };
    let mut response = match outcome {
        Ok(()) => next.call(req).await?.map_into_left_body(),
        Err(error) => req.error_response(error).map_into_right_body(),
    };
    if let Some(decision) = decision {
        apply_headers(&decision, response.headers_mut());
    }
    Ok(response)
}

async fn resolve_header(req: &ServiceRequest, header: Option<&str>) -> ApiResult<Principal> {
    let token = header
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
        })?;
    match (
        req.app_data::<web::Data<AuthState>>(),
        req.app_data::<web::Data<Pool>>(),
    ) {
        (Some(state), Some(pool)) => state.resolve(pool, token).await,
        _ => Err(ApiError::internal("authentication is not configured")),
    }
}
