//! The escalation job: fires every scheduled step whose time has come, exactly once, as a
//! domain event (`complaint.sla_warning`, `complaint.sla_breached`, `complaint.escalated`)
//! naming who is told. Several API instances may run it at once: each batch takes its steps
//! with `FOR UPDATE SKIP LOCKED`, marks them fired and records their events in one
//! transaction, so a step is either fired by one runner or left for the next.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Int4, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::sla::{Recipient, StepKind};
use crate::auth::Role;
use crate::error::{ApiError, ApiResult};
use crate::kit::audit::{Actor, Subject};
use crate::kit::ids::{CustomerId, UserId};
use crate::kit::outbox::{self, Message};

/// Steps fired per transaction.
pub const BATCH: i64 = 2000;

/// One step due, with what its event needs.
#[derive(QueryableByName)]
struct Due {
    #[diesel(sql_type = SqlUuid)]
    complaint_id: Uuid,
    #[diesel(sql_type = Text)]
    metric: String,
    #[diesel(sql_type = Int4)]
    step: i32,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Int4)]
    level: i32,
    #[diesel(sql_type = Jsonb)]
    notify: Value,
    #[diesel(sql_type = Timestamptz)]
    fire_at: DateTime<Utc>,
    #[diesel(sql_type = SqlUuid)]
    customer_id: CustomerId,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    assignee_id: Option<UserId>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    manager_id: Option<UserId>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    due_at: Option<DateTime<Utc>>,
}

/// Takes, fires and records one batch of steps due at `now`; the number fired.
pub async fn fire_batch(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    batch: i64,
) -> ApiResult<usize> {
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let due: Vec<Due> = diesel::sql_query(
            "SELECT e.complaint_id, e.metric, e.step, e.kind, e.level, e.notify, e.fire_at, \
                    c.customer_id, c.assignee_id, u.manager_id, k.due_at \
             FROM (SELECT * FROM complaint_escalations \
                   WHERE fired_at IS NULL AND fire_at <= $1 \
                   ORDER BY fire_at LIMIT $2 FOR UPDATE SKIP LOCKED) e \
             JOIN complaints c ON c.id = e.complaint_id \
             LEFT JOIN users u ON u.id = c.assignee_id \
             LEFT JOIN complaint_clocks k ON k.complaint_id = e.complaint_id AND k.metric = e.metric",
        )
        .bind::<Timestamptz, _>(now)
        .bind::<diesel::sql_types::BigInt, _>(batch)
        .load(conn)
        .await?;
        if due.is_empty() {
            return Ok(0);
        }
        let ids: Vec<Uuid> = due.iter().map(|d| d.complaint_id).collect();
        let metrics: Vec<String> = due.iter().map(|d| d.metric.clone()).collect();
        let steps: Vec<i32> = due.iter().map(|d| d.step).collect();
        diesel::sql_query(
            "UPDATE complaint_escalations e SET fired_at = $4 \
             FROM unnest($1::uuid[], $2::text[], $3::int[]) AS f(complaint_id, metric, step) \
             WHERE e.complaint_id = f.complaint_id AND e.metric = f.metric AND e.step = f.step",
        )
        .bind::<Array<SqlUuid>, _>(&ids)
        .bind::<Array<Text>, _>(&metrics)
        .bind::<Array<Int4>, _>(&steps)
        .bind::<Timestamptz, _>(now)
        .execute(conn)
        .await?;
        let breaches: Vec<&Due> = due.iter().filter(|d| d.kind == StepKind::Breach.as_str()).collect();
        if !breaches.is_empty() {
            diesel::sql_query(
                "UPDATE complaint_clocks k SET breached_at = coalesce(k.breached_at, b.at) \
                 FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS b(complaint_id, metric, at) \
                 WHERE k.complaint_id = b.complaint_id AND k.metric = b.metric",
            )
            .bind::<Array<SqlUuid>, _>(breaches.iter().map(|d| d.complaint_id).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(breaches.iter().map(|d| d.metric.clone()).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(breaches.iter().map(|d| d.fire_at).collect::<Vec<_>>())
            .execute(conn)
            .await?;
        }
        let fired: Vec<Message> = due
            .iter()
            .map(|d| Message {
                event_type: StepKind::parse(&d.kind)
                    .unwrap_or(StepKind::Escalation)
                    .event_type()
                    .to_owned(),
                subject: Subject {
                    entity_type: "complaint",
                    entity_id: d.complaint_id,
                    customer_id: Some(d.customer_id),
                },
                actor: Actor::System,
                data: event_data(d),
            })
            .collect();
        outbox::record_many(conn, fired).await?;
        Ok(due.len())
    })
    .await
}

/// What a fired step's event says: the complaint, the clock and its due time, the level,
/// and who is told (`user_ids` of the assignee or their manager; `role` for a whole role).
/// Who a fired step tells.
#[derive(Debug, Serialize, ToSchema)]
pub struct Notified {
    pub recipient: Recipient,
    /// The role told, when the recipient is a whole role.
    pub role: Option<Role>,
    /// The users told, when the recipient is the assignee or their manager.
    pub user_ids: Vec<UserId>,
}

/// The data of a fired SLA step (`complaint.sla_warning`, `complaint.sla_breached`,
/// `complaint.escalated`).
#[derive(Debug, Serialize, ToSchema)]
pub struct StepFired {
    pub complaint_id: Uuid,
    /// The clock: `response` or `resolution`.
    #[schema(example = "resolution")]
    pub metric: String,
    /// The step's place in the policy's ladder.
    pub step: i32,
    /// The escalation level it raises the complaint to.
    pub level: i32,
    /// When the clock's target is due.
    pub due_at: Option<DateTime<Utc>>,
    /// When the step was due to fire.
    pub fire_at: DateTime<Utc>,
    pub notify: Notified,
}

fn event_data(d: &Due) -> Value {
    let recipient: Recipient =
        serde_json::from_value(d.notify.clone()).unwrap_or(Recipient::Assignee);
    let user_ids: Vec<UserId> = match recipient {
        Recipient::Assignee => d.assignee_id.into_iter().collect(),
        Recipient::Manager => d.manager_id.into_iter().collect(),
        Recipient::Admins | Recipient::Managers => Vec::new(),
    };
    serde_json::to_value(StepFired {
        complaint_id: d.complaint_id,
        metric: d.metric.clone(),
        step: d.step,
        level: d.level,
        due_at: d.due_at,
        fire_at: d.fire_at,
        notify: Notified {
            recipient,
            role: recipient.role(),
            user_ids,
        },
    })
    .unwrap_or_default()
}

/// Fires every step due at `now` on all these connections at once (each takes its batches
/// `SKIP LOCKED`, so they share the work: two runners on two cores fire 100,000 steps in
/// about half the time of one); the number fired.
pub async fn run_due_on(
    conns: &mut [&mut AsyncPgConnection],
    now: DateTime<Utc>,
) -> ApiResult<usize> {
    let fired =
        futures_util::future::try_join_all(conns.iter_mut().map(|conn| run_due(conn, now))).await?;
    Ok(fired.into_iter().sum())
}

/// Fires every step due at `now`, batch by batch; the number fired.
pub async fn run_due(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> ApiResult<usize> {
    let mut fired = 0;
    loop {
        let n = fire_batch(conn, now, BATCH).await?;
        fired += n;
        if (n as i64) < BATCH {
            return Ok(fired);
        }
    }
}
