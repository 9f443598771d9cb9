//! The visits' background work, safe to run on several instances at once: marking visits
//! `missed` when their end passed the grace period without a check-in, and keeping recurring
//! plans materialised over the horizon. Both lock what they take with `FOR UPDATE SKIP
//! LOCKED`, so two runners share the work and never do it twice.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::plans::{self, PlanRow};
use super::{MISSED, Status, VisitRecord, VisitRow, VisitSettings};
use crate::customers::api::customer_cards;
use crate::db::schema::{visit_plans, visits};
use crate::error::{ApiError, ApiResult};
use crate::kit::write::{self, Writer};

diesel::allow_tables_to_appear_in_same_query!(visit_plans, customer_cards);

/// Visits marked missed per transaction.
const MISSED_BATCH: i64 = 500;
/// Plans materialised per transaction.
const PLAN_BATCH: i64 = 500;

/// Marks every planned or confirmed visit whose end is more than `grace` before `now` as
/// missed, each with its audit entry and `visit.missed` event. Returns how many.
pub async fn mark_missed(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    grace: Duration,
) -> ApiResult<usize> {
    let mut total = 0;
    loop {
        let done = mark_missed_batch(conn, now, grace, MISSED_BATCH).await?;
        total += done;
        if done < MISSED_BATCH as usize {
            return Ok(total);
        }
    }
}

/// One transaction of [`mark_missed`]: up to `limit` visits no other runner holds.
pub async fn mark_missed_batch(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    grace: Duration,
    limit: i64,
) -> ApiResult<usize> {
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let rows: Vec<VisitRow> = visits::table
            .filter(visits::status.eq_any([Status::Planned, Status::Confirmed]))
            .filter(visits::scheduled_end.lt(now - grace))
            .order(visits::scheduled_end)
            .limit(limit)
            .select(VisitRow::as_select())
            .for_update()
            .skip_locked()
            .load(conn)
            .await?;
        let writer = Writer::system();
        let n = rows.len();
        for record in VisitRecord::assemble(conn, rows).await? {
            let locked = write::adopt(&writer, record)?;
            let mut after = locked.to_change();
            after.row.status = Status::Missed;
            write::save(conn, &writer, locked, after, MISSED).await?;
        }
        Ok(n)
    })
    .await
}

/// Materialises every live plan whose occurrences are not yet planned up to `now +
/// horizon`. Returns (plans, visits planned).
pub async fn materialise_due(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    horizon: Duration,
) -> ApiResult<(usize, usize)> {
    let until = now + horizon;
    let (mut plans_done, mut planned) = (0, 0);
    loop {
        let (n, visits) = conn
            .transaction::<_, ApiError, _>(async move |conn| {
                // Plans of customers deleted or merged away plan nothing more.
                let live = customer_cards::table
                    .filter(customer_cards::deleted_at.is_null())
                    .filter(customer_cards::merged_into.is_null())
                    .select(customer_cards::id);
                let mut due: Vec<PlanRow> = visit_plans::table
                    .filter(visit_plans::deleted_at.is_null())
                    .filter(visit_plans::customer_id.eq_any(live))
                    .filter(
                        visit_plans::materialised_until
                            .is_null()
                            .or(visit_plans::materialised_until.lt(until)),
                    )
                    .order(visit_plans::materialised_until.asc().nulls_first())
                    .limit(PLAN_BATCH)
                    .select(PlanRow::as_select())
                    .for_update()
                    .skip_locked()
                    .load(conn)
                    .await?;
                let planned =
                    plans::materialise(conn, &Writer::system(), &mut due, now, until).await?;
                Ok((due.len(), planned))
            })
            .await?;
        plans_done += n;
        planned += visits;
        if n < PLAN_BATCH as usize {
            return Ok((plans_done, planned));
        }
    }
}

/// Both jobs once: what the server runs every tick and `rapport visit-jobs` runs once. The
/// missed visits are marked on the first connection; the plans are materialised on all of
/// them at once, each taking its own batches (`SKIP LOCKED`), so that two connections on two
/// cores share a burst of new plans. Returns (visits marked missed, visits planned).
pub async fn run_due_on(
    conns: &mut [&mut AsyncPgConnection],
    settings: VisitSettings,
    now: DateTime<Utc>,
) -> ApiResult<(usize, usize)> {
    let Some(first) = conns.first_mut() else {
        return Ok((0, 0));
    };
    let missed = mark_missed(first, now, settings.grace).await?;
    let planned = futures_util::future::try_join_all(
        conns
            .iter_mut()
            .map(|conn| materialise_due(conn, now, settings.horizon)),
    )
    .await?;
    Ok((missed, planned.into_iter().map(|(_, visits)| visits).sum()))
}
