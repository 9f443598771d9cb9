//! What other domains attach to a customer. The timeline, a merge and the data export walk
//! these lists, so a new domain (complaints, visits, the club) joins by adding one entry
//! here instead of editing the customer handlers.

use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel_async::AsyncPgConnection;
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit;

/// One event in a customer's timeline.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    /// `order`, `audit`, ... (one per domain).
    #[schema(example = "order")]
    pub kind: String,
    /// The id of the order, audit entry, ... the entry is about.
    pub id: Uuid,
    #[schema(example = "Order 10045 from webshop: 125.00 CNY, paid")]
    pub summary: String,
    #[schema(value_type = Object)]
    pub data: Value,
}

/// Position in a timeline: entries strictly older than `(at, id)`.
pub type TimelineCursor = Option<(DateTime<Utc>, Uuid)>;

/// Up to `limit` entries of one domain for a customer, newest first, before the cursor.
pub type TimelineSource = for<'c> fn(
    &'c mut AsyncPgConnection,
    Uuid,
    TimelineCursor,
    i64,
) -> BoxFuture<'c, QueryResult<Vec<TimelineEntry>>>;

/// Moves one domain's records from a duplicate customer to the survivor of a merge.
pub type MergeStep =
    for<'c> fn(&'c mut AsyncPgConnection, Uuid, Uuid) -> BoxFuture<'c, QueryResult<()>>;

/// One named section of a customer's data export.
pub type ExportSection = for<'c> fn(
    &'c mut AsyncPgConnection,
    Uuid,
) -> BoxFuture<'c, QueryResult<(&'static str, Value)>>;

/// Every domain's timeline.
pub const TIMELINE: &[TimelineSource] = &[crate::orders::timeline, audit_timeline];

/// Every domain's merge step.
pub const MERGE: &[MergeStep] = &[
    crate::orders::move_to_survivor,
    super::queries::move_referrals,
];

/// Every domain's export section.
pub const EXPORT: &[ExportSection] = &[crate::orders::export, audit_export];

fn audit_timeline<'c>(
    conn: &'c mut AsyncPgConnection,
    customer: Uuid,
    before: TimelineCursor,
    limit: i64,
) -> BoxFuture<'c, QueryResult<Vec<TimelineEntry>>> {
    Box::pin(async move {
        let entries = audit::for_customer(conn, customer, before, limit).await?;
        Ok(entries
            .into_iter()
            .map(|e| TimelineEntry {
                at: e.created_at,
                kind: "audit".into(),
                id: e.id,
                summary: format!("{} {} by {}", e.entity_type, e.action, e.actor_type),
                data: serde_json::json!({"entity_type": e.entity_type, "entity_id": e.entity_id, "action": e.action, "changes": e.changes}),
            })
            .collect())
    })
}

fn audit_export<'c>(
    conn: &'c mut AsyncPgConnection,
    customer: Uuid,
) -> BoxFuture<'c, QueryResult<(&'static str, Value)>> {
    Box::pin(async move {
        let entries = audit::for_customer(conn, customer, None, i64::MAX).await?;
        Ok(("history", serde_json::to_value(entries).unwrap_or_default()))
    })
}

/// Merges the newest-first lists of every source and keeps the first `limit`.
pub fn merge_newest_first(mut lists: Vec<Vec<TimelineEntry>>, limit: usize) -> Vec<TimelineEntry> {
    let mut all: Vec<TimelineEntry> = lists.drain(..).flatten().collect();
    all.sort_by_key(|e| std::cmp::Reverse((e.at, e.id)));
    all.truncate(limit);
    all
}
