//! Domain events (`customer.created`, `order.updated`, ...): one row per change, written by
//! the write path in the transaction that makes the change. A change that rolls back leaves
//! no event, and a committed change always has its event: webhook delivery and the change
//! feed read this table as a transactional outbox, in commit order (`docs/architecture.md`).

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use crate::audit::{Actor, Subject};
use crate::db::schema::events;
use crate::kit::ids::CustomerId;

/// One event about to be recorded.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// `<subject kind>.<what happened>`: `customer.updated`.
    pub event_type: String,
    pub subject: Subject,
    pub actor: Actor,
    /// The resource after the change as the API shows it; for a deletion `{"id": ...}`.
    pub data: Value,
}

/// Records an event in the caller's transaction.
pub async fn record(conn: &mut AsyncPgConnection, event: NewEvent) -> QueryResult<()> {
    record_many(conn, vec![event]).await
}

/// Events per statement of [`record_many`] (8 parameters each, under PostgreSQL's 65,535).
const BATCH: usize = 8000;

/// Records many events in the caller's transaction, a few statements in all (a job planning
/// thousands of visits).
pub async fn record_many(conn: &mut AsyncPgConnection, all: Vec<NewEvent>) -> QueryResult<()> {
    for chunk in all.chunks(BATCH) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|event| {
                let (actor_type, actor_id) = event.actor.parts();
                (
                    events::id.eq(Uuid::now_v7()),
                    events::event_type.eq(&event.event_type),
                    events::subject_type.eq(event.subject.entity_type),
                    events::subject_id.eq(event.subject.entity_id),
                    events::customer_id.eq(event.subject.customer_id),
                    events::actor_type.eq(actor_type),
                    events::actor_id.eq(actor_id),
                    events::data.eq(&event.data),
                )
            })
            .collect();
        diesel::insert_into(events::table)
            .values(rows)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Overwrites, in every event of `subject_type` about a customer, the keys of `erased` with
/// their erased values: events keep what happened, not what was erased.
pub async fn redact_customer(
    conn: &mut AsyncPgConnection,
    customer_id: CustomerId,
    subject_type: &str,
    erased: Value,
) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE events SET data = data || $3 \
         WHERE customer_id = $1 AND subject_type = $2 AND jsonb_typeof(data) = 'object'",
    )
    .bind::<diesel::sql_types::Uuid, _>(customer_id)
    .bind::<diesel::sql_types::Text, _>(subject_type)
    .bind::<diesel::sql_types::Jsonb, _>(erased)
    .execute(conn)
    .await
}
