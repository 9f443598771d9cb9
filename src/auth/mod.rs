//! Who is calling and what they may do. The `authenticate` middleware turns the
//! `Authorization` header into a [`Principal`]; handlers declare what they need with
//! [`Authorized<R>`], so every rule lives in [`Role::grants`] and the requirement types.

pub mod cache;
pub mod passwords;
pub mod routes;
pub mod secrets;
pub mod tokens;

use std::future::{Ready, ready};
use std::marker::PhantomData;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use self::cache::TtlCache;
use self::tokens::TokenKeys;
use crate::db::{Pool, schema};
use crate::error::{ApiError, ApiResult};
use crate::http::rate_limit::{RateLimiter, apply_headers};
use crate::kit::ids::{ApiKeyId, UserId};

crate::text_enum! {
    /// A staff user's role.
    pub enum Role {
        /// Everything, including users and API keys.
        Admin = "admin",
        /// Everything in the business domains, but not users and API keys.
        Manager = "manager",
        /// Reads customers; writes the customers they own, their visits and assigned complaints.
        Agent = "agent",
    }
}

impl Role {
    /// The one table of role rights.
    pub fn grants(self, access: Access) -> bool {
        match (self, access) {
            (Self::Admin, _) => true,
            (_, Access::AdminOnly) => false,
            (Self::Manager, Access::Scope(_)) => true,
            (Self::Agent, Access::Scope(scope)) => AGENT_SCOPES.contains(&scope),
        }
    }
}

/// What an API key may be granted. Staff roles map onto the same scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Scope {
    #[serde(rename = "customers:read")]
    CustomersRead,
    #[serde(rename = "customers:write")]
    CustomersWrite,
    #[serde(rename = "orders:read")]
    OrdersRead,
    #[serde(rename = "orders:write")]
    OrdersWrite,
    #[serde(rename = "complaints:read")]
    ComplaintsRead,
    #[serde(rename = "complaints:write")]
    ComplaintsWrite,
    /// Business calendars, SLA policies and the standard answers (managers).
    #[serde(rename = "complaints:manage")]
    ComplaintsManage,
    #[serde(rename = "visits:read")]
    VisitsRead,
    #[serde(rename = "visits:write")]
    VisitsWrite,
    /// Revisit cadences and visit targets (managers).
    #[serde(rename = "visits:manage")]
    VisitsManage,
    #[serde(rename = "club:read")]
    ClubRead,
    /// Enrol members, register them for events, record referrals; earn and redeem points.
    #[serde(rename = "club:write")]
    ClubWrite,
    /// Tiers, earning rules, rewards, club events and the club's settings (managers).
    #[serde(rename = "club:manage")]
    ClubManage,
    #[serde(rename = "analytics:read")]
    AnalyticsRead,
    #[serde(rename = "webhooks:manage")]
    WebhooksManage,
}

impl Scope {
    /// The stored and serialised name (`customers:read`).
    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// The scope with this name.
    pub fn parse(name: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
    }
}

/// A scope is valid by construction (unknown names are refused while the body is read); this
/// lets scope lists carry their length limits as [`crate::kit::input::Items`].
impl validator::Validate for Scope {
    fn validate(&self) -> Result<(), validator::ValidationErrors> {
        Ok(())
    }
}

/// The scopes an agent's role carries (their ownership limits are checked by each domain).
const AGENT_SCOPES: [Scope; 9] = [
    Scope::CustomersRead,
    Scope::CustomersWrite,
    Scope::OrdersRead,
    Scope::ComplaintsRead,
    Scope::ComplaintsWrite,
    Scope::VisitsRead,
    Scope::VisitsWrite,
    Scope::ClubRead,
    Scope::ClubWrite,
];

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Only admins; never an API key.
    AdminOnly,
    /// A role that grants the scope, or an API key holding it.
    Scope(Scope),
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A staff user, with their current role.
    User { id: UserId, role: Role },
    /// An integration's API key, with its scopes.
    ApiKey { id: ApiKeyId, scopes: Vec<Scope> },
}

impl Principal {
    /// Whether this caller may do what `access` describes.
    pub fn may(&self, access: Access) -> bool {
        match (self, access) {
            (Self::User { role, .. }, access) => role.grants(access),
            (Self::ApiKey { .. }, Access::AdminOnly) => false,
            (Self::ApiKey { scopes, .. }, Access::Scope(scope)) => scopes.contains(&scope),
        }
    }

    /// A stable key naming the caller, for rate limits and idempotency records.
    pub fn key(&self) -> String {
        match self {
            Self::User { id, .. } => format!("user:{id}"),
            Self::ApiKey { id, .. } => format!("key:{id}"),
        }
    }

    /// The user behind the request, if it is a user.
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Self::User { id, .. } => Some(*id),
            Self::ApiKey { .. } => None,
        }
    }
}

/// Who may write a row beyond what the route's scope grants: the one ownership rule, which
/// every domain states per row and [`ensure_may_write`] enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// Whoever the route admits.
    Anyone,
    /// Managers, admins and keys; agents only when they are `owner` (an unowned row is not
    /// theirs). `what` names the rows agents may write, for the `403`: "the customers they own".
    Owned {
        owner: Option<UserId>,
        what: &'static str,
    },
}

/// `403` unless `principal` may write a row of this ownership. `None` is the system itself
/// (CSV import, seeding, background jobs), which may write anything.
pub fn ensure_may_write(principal: Option<&Principal>, ownership: Ownership) -> ApiResult<()> {
    match (principal, ownership) {
        (
            Some(Principal::User {
                id,
                role: Role::Agent,
            }),
            Ownership::Owned { owner, what },
        ) if owner != Some(*id) => Err(ApiError::Forbidden(format!(
            "agents may only change {what}"
        ))),
        _ => Ok(()),
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(req.extensions().get::<Principal>().cloned().ok_or_else(|| {
            ApiError::Unauthorized(
                "send an access token or API key as `Authorization: Bearer <token>`".into(),
            )
        }))
    }
}

/// A route requirement, declared as a type so that a handler's signature states it.
pub trait Requirement {
    /// What the route needs.
    const ACCESS: Access;
}

/// An authenticated caller who meets the requirement `R`; `401` or `403` otherwise.
pub struct Authorized<R> {
    /// The caller.
    pub principal: Principal,
    _requirement: PhantomData<R>,
}

impl<R: Requirement> FromRequest for Authorized<R> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let result = Principal::from_request(req, payload)
            .into_inner()
            .and_then(|principal| {
                if principal.may(R::ACCESS) {
                    Ok(Self {
                        principal,
                        _requirement: PhantomData,
                    })
                } else {
                    Err(ApiError::Forbidden(
                        "your credentials do not grant access to this operation".into(),
                    ))
                }
            });
        ready(result)
    }
}

macro_rules! requirements {
    ($($(#[$doc:meta])* $name:ident => $access:expr;)*) => {$(
        $(#[$doc])*
        pub struct $name;
        impl Requirement for $name {
            const ACCESS: Access = $access;
        }
    )*};
}

requirements! {
    /// Admins only: users and API keys.
    AdminOnly => Access::AdminOnly;
    /// Read customers (every staff role; keys with `customers:read`).
    CustomersRead => Access::Scope(Scope::CustomersRead);
    /// Write customers (agents only those they own; keys with `customers:write`).
    CustomersWrite => Access::Scope(Scope::CustomersWrite);
    /// Read orders.
    OrdersRead => Access::Scope(Scope::OrdersRead);
    /// Record orders and change their status (managers, admins, keys with `orders:write`).
    OrdersWrite => Access::Scope(Scope::OrdersWrite);
    /// Read complaints, calendars, policies and answers.
    ComplaintsRead => Access::Scope(Scope::ComplaintsRead);
    /// Log and work complaints (agents only those assigned to them).
    ComplaintsWrite => Access::Scope(Scope::ComplaintsWrite);
    /// Set up calendars, SLA policies and standard answers (managers, admins, keys with
    /// `complaints:manage`).
    ComplaintsManage => Access::Scope(Scope::ComplaintsManage);
    /// Read visits, plans, cadences, the due list, boards and targets.
    VisitsRead => Access::Scope(Scope::VisitsRead);
    /// Plan and work visits (agents only their own).
    VisitsWrite => Access::Scope(Scope::VisitsWrite);
    /// Set revisit cadences and visit targets (managers, admins, keys with `visits:manage`).
    VisitsManage => Access::Scope(Scope::VisitsManage);
    /// Read the club: tiers, members and their ledgers, rules, rewards, events, referrals.
    ClubRead => Access::Scope(Scope::ClubRead);
    /// Enrol, register, refer; earn and redeem (agents enrol and register, but write no
    /// points: [`ensure_not_agent`]).
    ClubWrite => Access::Scope(Scope::ClubWrite);
    /// Run the club: tiers, rules, rewards, events, settings, memberships' status (managers,
    /// admins, keys with `club:manage`).
    ClubManage => Access::Scope(Scope::ClubManage);
    /// Reports.
    AnalyticsRead => Access::Scope(Scope::AnalyticsRead);
}

/// `403` for agents on a route their scopes open but their role does not (`what`: "write
/// points; shops, tills and managers do").
pub fn ensure_not_agent(principal: &Principal, what: &str) -> ApiResult<()> {
    match principal {
        Principal::User {
            role: Role::Agent, ..
        } => Err(ApiError::Forbidden(format!("agents may not {what}"))),
        _ => Ok(()),
    }
}

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
    pub fn new(secret: &[u8], access_ttl: Duration, refresh_ttl: Duration) -> Self {
        Self {
            keys: TokenKeys::new(secret, access_ttl),
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
        if token.starts_with(crate::api_keys::KEY_PREFIX) {
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
        let id = self.keys.subject(token).ok_or_else(rejected)?;
        let role = self.current_role(pool, id).await?.ok_or_else(rejected)?;
        Ok(Principal::User { id, role })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_table() {
        let admin_only = Access::AdminOnly;
        let read = Access::Scope(Scope::CustomersRead);
        let hooks = Access::Scope(Scope::WebhooksManage);
        assert!(Role::Admin.grants(admin_only));
        assert!(!Role::Manager.grants(admin_only));
        assert!(Role::Manager.grants(hooks));
        assert!(Role::Agent.grants(read));
        assert!(!Role::Agent.grants(hooks));
        assert!(!Role::Agent.grants(admin_only));
    }

    #[test]
    fn api_keys_carry_only_their_scopes() {
        let key = Principal::ApiKey {
            id: ApiKeyId::new(),
            scopes: vec![Scope::CustomersRead],
        };
        assert!(key.may(Access::Scope(Scope::CustomersRead)));
        assert!(!key.may(Access::Scope(Scope::CustomersWrite)));
        assert!(!key.may(Access::AdminOnly));
    }

    #[test]
    fn scope_names_round_trip() {
        assert_eq!(Scope::CustomersRead.as_str(), "customers:read");
        assert_eq!(Scope::parse("webhooks:manage"), Some(Scope::WebhooksManage));
        assert_eq!(Scope::parse("everything"), None);
        assert_eq!(Role::parse("agent"), Some(Role::Agent));
    }
}
