//! Webhooks: subscriptions that receive the outbox's events as Standard Webhooks 1.0
//! deliveries (`docs/integrations.md`). A subscription is a versioned row written through the
//! kit's write path; the [`delivery`] worker fans each committed event out to the matching
//! subscriptions, in commit order, and delivers it at least once with retries.

pub mod addresses;
pub mod delivery;
mod requests;
pub mod routes;
pub mod signing;

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::config::Settings;
use crate::db::schema::webhooks;
use crate::kit::event_types::EventType;
use crate::kit::ids::WebhookId;
use crate::kit::schema_part::SchemaPart;

/// The tables this module owns.
pub const TABLES: [&str; 3] = ["webhooks", "webhook_deliveries", "webhook_dispatch"];

/// How long the previous secret keeps signing after a rotation, so receivers can switch.
pub const ROTATION_OVERLAP: chrono::Duration = chrono::Duration::hours(24);

/// How deliveries are made: the configuration's webhook settings.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The wait before each retry; a delivery fails after the last.
    pub retry_schedule: Vec<Duration>,
    /// An endpoint that has failed for this long without a success is disabled.
    pub disable_after: Duration,
    /// Whether URLs may point at loopback, private and other special-purpose addresses.
    pub allow_private: bool,
    /// The connect and total timeout of an attempt.
    pub timeout: Duration,
    /// Attempts in flight at once, per instance.
    pub concurrency: usize,
}

impl From<&Settings> for WebhookSettings {
    fn from(s: &Settings) -> Self {
        Self {
            retry_schedule: s.webhook_retry_schedule.clone(),
            disable_after: s.webhook_disable_after,
            allow_private: s.webhook_allow_private,
            timeout: s.webhook_timeout,
            concurrency: s.webhook_concurrency.max(1),
        }
    }
}

/// A subscription row. Its secrets are never serialised, so never audited or announced.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = webhooks, treat_none_as_null = true)]
pub struct WebhookRow {
    pub id: WebhookId,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    #[serde(skip)]
    pub secret: String,
    #[serde(skip)]
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub active: bool,
    pub disabled_reason: Option<String>,
    /// Operational state the worker keeps: not audited.
    #[serde(skip)]
    pub failing_since: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A webhook subscription as the API shows it (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct Webhook {
    pub id: WebhookId,
    #[schema(example = "https://shop.example/hooks/rapport")]
    pub url: String,
    pub description: Option<String>,
    /// The event types delivered (`points.*` names a family); empty: every type.
    #[schema(example = json!(["customer.*", "points.changed"]))]
    pub event_types: Vec<String>,
    /// Whether deliveries are made. A user pauses with `PATCH {"active": false}`; the server
    /// disables an endpoint that answers `410` or fails for too long (`disabled_reason`).
    pub active: bool,
    /// Why the server stopped delivering; `null` when active or paused by a user.
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed; `null` after a success.
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when the previous secret still signs, after a rotation.
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl WebhookRow {
    /// The API's view.
    pub fn view(&self) -> Webhook {
        Webhook {
            id: self.id,
            url: self.url.clone(),
            description: self.description.clone(),
            event_types: self.event_types.clone(),
            active: self.active,
            disabled_reason: self.disabled_reason.clone(),
            failing_since: self.failing_since,
            previous_secret_until: self.previous_secret_until,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

crate::soft_deleted_row! {
    impl Versioned for WebhookRow in webhooks {
        const KIND: &'static str = "webhook";
        type Id = WebhookId;

        fn view(&self) -> Value {
            serde_json::to_value(WebhookRow::view(self)).unwrap_or_default()
        }
    }
}

/// The event types webhooks themselves record: `webhook.disabled` goes out (to the other
/// subscriptions and the feed); the configuration's changes stay in the audit log.
pub fn event_types() -> Vec<EventType> {
    let webhook = SchemaPart::of::<Webhook>;
    vec![
        EventType::new(
            "webhook.disabled",
            "The server stopped delivering to an endpoint: it answered 410 Gone, or failed for longer than RAPPORT_WEBHOOK_DISABLE_AFTER.",
            webhook,
        ),
        EventType::internal("webhook.created", "A subscription was made.", webhook),
        EventType::internal(
            "webhook.updated",
            "A subscription was changed, paused or resumed.",
            webhook,
        ),
        EventType::internal(
            "webhook.secret_rotated",
            "A subscription's secret was rotated.",
            webhook,
        ),
        EventType {
            public: false,
            ..EventType::deleted("webhook.deleted", "A subscription was deleted.")
        },
    ]
}
