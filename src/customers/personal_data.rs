//! A customer's personal data as a whole: the export of everything Rapport holds about them,
//! and erasure (their personal fields blanked here and in every domain, and in the history).

use chrono::Utc;
use diesel_async::AsyncPgConnection;
use serde_json::Value;

use super::CustomerRow;
use super::queries::find_live;
use crate::error::{ApiError, ApiResult};
use crate::http::etag::IfMatch;
use crate::kit::audit;
use crate::kit::ids::CustomerId;
use crate::kit::outbox;
use crate::kit::registry::Registry;
use crate::kit::write::{self, Action, Locked, Versioned, Writer};

/// An erasure.
const ERASED: Action = Action::named("erased", "erased");

/// The fields an erase replaces; their values are also blanked in the audit history.
pub const PERSONAL_FIELDS: [&str; 22] = [
    "display_name",
    "given_name",
    "family_name",
    "company",
    "position",
    "phones",
    "emails",
    "addresses",
    "gender",
    "birthday",
    "hobbies",
    "personality",
    "family_situation",
    "occupation",
    "income_band",
    "likes",
    "dislikes",
    "important_dates",
    "notes",
    "attributes",
    "consents",
    "tags",
];

/// Replaces the customer's personal data with placeholders, keeps orders and figures, and
/// blanks the erased values in the history. Irreversible.
pub async fn erase(
    conn: &mut AsyncPgConnection,
    registry: &Registry,
    writer: &Writer,
    id: CustomerId,
) -> ApiResult<CustomerRow> {
    let current: Locked<CustomerRow> = write::lock(conn, writer, id, &IfMatch::Absent).await?;
    if current.row().erased_at.is_some() {
        return Err(ApiError::Conflict(
            "this customer's personal data was already erased".into(),
        ));
    }
    let now = Utc::now();
    let mut blank = CustomerRow::new(now);
    blank.id = id;
    blank.display_name = "Erased customer".into();
    let was = current.row();
    let kept = CustomerRow {
        kind: was.kind,
        level: was.level,
        tier: was.tier,
        lifecycle_stage: was.lifecycle_stage,
        churn_reason: was.churn_reason,
        owner_id: was.owner_id,
        region: was.region.clone(),
        referred_by: was.referred_by,
        source: was.source.clone(),
        external_ref: was.external_ref.clone(),
        currency: was.currency.clone(),
        order_count: was.order_count,
        total_spent_minor: was.total_spent_minor,
        first_purchase_at: was.first_purchase_at,
        last_purchase_at: was.last_purchase_at,
        erased_at: Some(now),
        erased_by: Some(writer.actor().label()),
        created_at: was.created_at,
        ..blank
    };
    let saved = write::save(conn, writer, current, kept, ERASED).await?;
    audit::redact_customer(conn, id, &PERSONAL_FIELDS).await?;
    let view = saved.view();
    let erased: serde_json::Map<String, Value> = PERSONAL_FIELDS
        .iter()
        .filter_map(|field| Some(((*field).to_owned(), view.get(*field)?.clone())))
        .collect();
    outbox::redact_customer(conn, id, CustomerRow::KIND, Value::Object(erased)).await?;
    crate::http::idempotency::redact_responses_naming(conn, id.get()).await?;
    for step in registry.erase_steps() {
        step(conn, writer, id).await?;
    }
    Ok(saved)
}

/// Everything held on a customer, for a data-subject access request.
pub async fn export(
    conn: &mut AsyncPgConnection,
    registry: &Registry,
    id: CustomerId,
) -> ApiResult<Value> {
    let row = find_live(conn, id).await?;
    let mut bundle = serde_json::Map::new();
    bundle.insert(
        "customer".into(),
        serde_json::to_value(super::Customer::from(row)).unwrap_or_default(),
    );
    for section in registry.export_sections() {
        let value = (section.read)(conn, id).await?;
        bundle.insert(section.section.into(), value);
    }
    bundle.insert(
        "exported_at".into(),
        serde_json::to_value(Utc::now()).unwrap_or_default(),
    );
    Ok(Value::Object(bundle))
}
