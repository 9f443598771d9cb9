//! Domain events (`customer.created`, `order.updated`, ...): one row per change, written by
//! the write path in the transaction that makes the change. A change that rolls back leaves
//! no event, and a committed change always has its event: webhook delivery and the change
//! feed read this table as a transactional outbox, in commit order (`docs/architecture.md`).

use std::collections::HashSet;
use std::sync::OnceLock;

use diesel::prelude::*;
use diesel::sql_types::{Array, Jsonb, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use crate::db::prepared::Cached;
use crate::kit::audit::{Actor, Subject};
use crate::kit::event_types::Catalogue;
use crate::kit::ids::CustomerId;

/// One domain event about to be recorded in the outbox.
#[derive(Debug, Clone)]
pub struct Message {
    /// `<subject kind>.<what happened>`: `customer.updated`.
    pub event_type: String,
    pub subject: Subject,
    pub actor: Actor,
    /// The resource after the change as the API shows it; for a deletion `{"id": ...}`.
    pub data: Value,
}

/// The catalogued type names, once the app is built: debug builds refuse to record any other
/// (a type no subscription could ask for and the document does not describe), so the test
/// suite finds an event a domain forgot to declare.
static DECLARED: OnceLock<HashSet<String>> = OnceLock::new();

/// Declares the catalogue the outbox records (the app does it where it is built).
pub fn declare(catalogue: &Catalogue) {
    let _ = DECLARED.set(catalogue.all().map(str::to_owned).collect());
}

fn ensure_declared(event_type: &str) {
    if let Some(declared) = DECLARED.get() {
        assert!(
            declared.contains(event_type),
            "event type `{event_type}` is not in the catalogue: declare it in its domain's `event_types()`"
        );
    }
}

/// Records an event in the caller's transaction.
pub async fn record(conn: &mut AsyncPgConnection, event: Message) -> QueryResult<()> {
    record_many(conn, vec![event]).await
}

/// The insert of [`record_many`]: the events travel as one array per column, so the
/// statement's text is the same for one event or thousands and stays prepared (a
/// row-per-parameter insert was parsed and planned anew on every write, and a job's batch of
/// thousands spent more time binding its parameters than inserting). `unnest` keeps the
/// arrays' order, so `seq` numbers the events in the order they were given.
const INSERT_SQL: &str = "INSERT INTO events \
     (id, type, subject_type, subject_id, customer_id, actor_type, actor_id, data) \
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::uuid[], \
                          $6::text[], $7::uuid[], $8::jsonb[])";

/// Records many events in the caller's transaction, in one statement (a job planning
/// thousands of visits).
pub async fn record_many(conn: &mut AsyncPgConnection, all: Vec<Message>) -> QueryResult<()> {
    if all.is_empty() {
        return Ok(());
    }
    let n = all.len();
    let (mut ids, mut types, mut subject_types, mut subject_ids) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut customers, mut actor_types, mut actor_ids, mut data) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for event in all {
        if cfg!(debug_assertions) {
            ensure_declared(&event.event_type);
        }
        let (actor_type, actor_id) = event.actor.parts();
        ids.push(Uuid::now_v7());
        types.push(event.event_type);
        subject_types.push(event.subject.entity_type);
        subject_ids.push(event.subject.entity_id);
        customers.push(event.subject.customer_id.map(CustomerId::get));
        actor_types.push(actor_type);
        actor_ids.push(actor_id);
        data.push(event.data);
    }
    Cached::fixed(
        diesel::sql_query(INSERT_SQL)
            .bind::<Array<SqlUuid>, _>(ids)
            .bind::<Array<Text>, _>(types)
            .bind::<Array<Text>, _>(subject_types)
            .bind::<Array<SqlUuid>, _>(subject_ids)
            .bind::<Array<Nullable<SqlUuid>>, _>(customers)
            .bind::<Array<Text>, _>(actor_types)
            .bind::<Array<Nullable<SqlUuid>>, _>(actor_ids)
            .bind::<Array<Jsonb>, _>(data),
    )
    .execute(conn)
    .await?;
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
