//! The rights vocabulary: who a caller is ([`Principal`]), what a route requires
//! ([`Authorized<R>`]) and who may write a row ([`Ownership`], [`ensure_may_write`]). It sits
//! in the kit, below both the write path (which checks a writer's right to each row) and
//! `auth` (which turns a credential into a principal), so neither has to import the other.

use std::future::{Ready, ready};
use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::{ApiKeyId, CustomerId, UserId};
use crate::error::{ApiError, ApiResult};

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
            (_, Access::AdminOnly | Access::AdminOrKey(_)) => false,
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
    /// Subscribe webhooks and read their delivery logs.
    #[serde(rename = "webhooks:manage")]
    WebhooksManage,
    /// Read the change feed.
    #[serde(rename = "changes:read")]
    ChangesRead,
    /// Exchange member tokens for customers (a shop's or app's backend).
    #[serde(rename = "members:token")]
    MembersToken,
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
    /// Admins, or an API key holding the scope (an integration's own set-up).
    AdminOrKey(Scope),
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A staff user, with their current role.
    User { id: UserId, role: Role },
    /// An integration's API key, with its scopes.
    ApiKey { id: ApiKeyId, scopes: Vec<Scope> },
    /// A customer using a shop's or brand's app with a member token: only `/me` routes,
    /// and only their own data there ([`Me`]).
    Member { customer: CustomerId },
}

impl Principal {
    /// Whether this caller may do what `access` describes.
    pub fn may(&self, access: Access) -> bool {
        match (self, access) {
            (Self::User { role, .. }, access) => role.grants(access),
            (Self::ApiKey { .. }, Access::AdminOnly) => false,
            (Self::ApiKey { scopes, .. }, Access::Scope(scope) | Access::AdminOrKey(scope)) => {
                scopes.contains(&scope)
            }
            // No staff route is a member's.
            (Self::Member { .. }, _) => false,
        }
    }

    /// A stable key naming the caller, for rate limits and idempotency records.
    pub fn key(&self) -> String {
        match self {
            Self::User { id, .. } => format!("user:{id}"),
            Self::ApiKey { id, .. } => format!("key:{id}"),
            Self::Member { customer } => format!("member:{customer}"),
        }
    }

    /// The user behind the request, if it is a user.
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Self::User { id, .. } => Some(*id),
            Self::ApiKey { .. } | Self::Member { .. } => None,
        }
    }
}

impl crate::http::idempotency::Caller for Principal {
    fn key(&self) -> String {
        Principal::key(self)
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

/// The member behind a `/me` request: the customer a member token names. Staff tokens and
/// API keys get `403` (a staff member acts on a customer through the staff routes).
pub struct Me {
    pub customer: CustomerId,
    /// The caller, for the write path.
    pub principal: Principal,
}

impl FromRequest for Me {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let result = Principal::from_request(req, payload)
            .into_inner()
            .and_then(|principal| match principal {
                Principal::Member { customer } => Ok(Self {
                    customer,
                    principal,
                }),
                _ => Err(ApiError::Forbidden(
                    "`/me` is a member's: exchange a member token at `POST /member-tokens`".into(),
                )),
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
    /// Webhook subscriptions and their delivery logs (admins, keys with `webhooks:manage`).
    WebhooksManage => Access::AdminOrKey(Scope::WebhooksManage);
    /// The change feed (managers, admins, keys with `changes:read`).
    ChangesRead => Access::Scope(Scope::ChangesRead);
    /// Member tokens for a customer's app (managers, admins, keys with `members:token`).
    MemberTokens => Access::Scope(Scope::MembersToken);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_table() {
        let admin_only = Access::AdminOnly;
        let read = Access::Scope(Scope::CustomersRead);
        let hooks = Access::AdminOrKey(Scope::WebhooksManage);
        let feed = Access::Scope(Scope::ChangesRead);
        assert!(Role::Admin.grants(admin_only));
        assert!(!Role::Manager.grants(admin_only));
        assert!(Role::Admin.grants(hooks));
        assert!(
            !Role::Manager.grants(hooks),
            "webhooks are an admin's or a key's"
        );
        assert!(Role::Manager.grants(feed));
        assert!(!Role::Agent.grants(feed));
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
        let hooks = Principal::ApiKey {
            id: ApiKeyId::new(),
            scopes: vec![Scope::WebhooksManage],
        };
        assert!(hooks.may(Access::AdminOrKey(Scope::WebhooksManage)));
        assert!(!key.may(Access::AdminOrKey(Scope::WebhooksManage)));
    }

    #[test]
    fn scope_names_round_trip() {
        assert_eq!(Scope::CustomersRead.as_str(), "customers:read");
        assert_eq!(Scope::parse("webhooks:manage"), Some(Scope::WebhooksManage));
        assert_eq!(Scope::parse("everything"), None);
        assert_eq!(Role::parse("agent"), Some(Role::Agent));
    }
}
