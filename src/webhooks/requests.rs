//! Request bodies and filters of `/webhooks`, and the checks they need beyond their types: a
//! URL that deliveries may reach and event types the catalogue knows.

use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::addresses;
use crate::error::{ApiError, ApiResult};
use crate::kit::event_types::Catalogue;
use crate::kit::input::{Items, Text};

/// A subscription's URL.
pub type WebhookUrl = Text<1, 2000>;
/// Event type patterns: `customer.created`, or `points.*` for a family.
pub type EventPatterns = Items<Text<1, 100>, 0, 100>;
/// What a subscription is for.
pub type Description = Text<0, 500>;

/// Body of `POST /webhooks`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where deliveries are `POST`ed: `http` or `https`, on a public address.
    #[validate(nested)]
    pub url: WebhookUrl,
    /// The event types wanted (`points.*` names a family); none or empty: every type.
    #[validate(nested)]
    pub event_types: Option<EventPatterns>,
    #[validate(nested)]
    pub description: Option<Description>,
}

/// Body of `PATCH /webhooks/{id}`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    #[validate(nested)]
    pub url: Option<WebhookUrl>,
    /// Replaces the event types; empty: every type.
    #[validate(nested)]
    pub event_types: Option<EventPatterns>,
    #[validate(nested)]
    pub description: Option<Description>,
    /// `false` pauses deliveries; `true` resumes them, also after the server disabled the
    /// endpoint (its failure record starts over).
    pub active: Option<bool>,
}

crate::text_enum! {
    /// Where a delivery stands.
    pub enum DeliveryStatus {
        /// Not yet delivered; `next_attempt_at` says when it is tried.
        Pending = "pending",
        /// An attempt was answered `2xx`.
        Delivered = "delivered",
        /// Every attempt of the retry schedule failed (`redeliver` starts over).
        Failed = "failed",
    }
}

/// Filters of `GET /webhooks/{id}/deliveries`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryFilters {
    pub status: Option<DeliveryStatus>,
}

/// The URL, checked: `422` naming `url` unless deliveries may reach it. A name is resolved
/// now and every address it has must be public (unless private addresses are allowed); it
/// is checked again at each delivery.
pub async fn checked_url(url: WebhookUrl, allow_private: bool) -> ApiResult<String> {
    let invalid = |why: String| ApiError::invalid("url", "url", why);
    let parsed = addresses::check_url(url.as_str(), allow_private).map_err(invalid)?;
    if !allow_private && addresses::literal_ip(&parsed).is_none() {
        let (host, port) = (
            parsed.host_str().unwrap_or_default(),
            parsed.port_or_known_default(),
        );
        addresses::resolve(host, port.unwrap_or(443))
            .await
            .map_err(invalid)?;
    }
    Ok(parsed.to_string())
}

/// The patterns, checked against the catalogue: `422` naming the first unknown one.
pub fn checked_patterns(
    catalogue: &Catalogue,
    given: Option<EventPatterns>,
) -> ApiResult<Vec<String>> {
    let given: Vec<String> = given
        .map(Items::into_inner)
        .unwrap_or_default()
        .into_iter()
        .map(Text::into_inner)
        .collect();
    catalogue.patterns(&given).map_err(|unknown| {
        ApiError::invalid(
            &format!("event_types[{}]", unknown.index),
            "unknown_event_type",
            format!(
                "`{}` names no event type; see the document's `webhooks` for the types, or use `<family>.*`",
                unknown.pattern
            ),
        )
    })
}
