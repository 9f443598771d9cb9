//! The club's background work, safe to run on several instances at once (each takes what
//! it works on with `FOR UPDATE SKIP LOCKED`): lapsed lots expire, tiers are reviewed at the
//! end of their window (announced some days before), waitlist offers not taken up move on,
//! and birthday bonuses are paid. Pending points need no job: they count as spendable from
//! their date on.

use chrono::{DateTime, Datelike, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;

use super::rules::{self, Bonus};
use super::settings::{SettingsRow, year_before};
use super::tiers::{self, Ladder};
use super::{MemberRow, MemberStatus, ledger, seats};
use crate::customers::api::customer_cards;
use crate::db::schema::{club_members, club_rules, points_entries};
use crate::error::{ApiError, ApiResult};
use crate::kit::audit::Subject;
use crate::kit::ids::MemberId;
use crate::kit::write::{Occurrence, Writer};

diesel::joinable!(club_members -> customer_cards (customer_id));
diesel::allow_tables_to_appear_in_same_query!(club_members, customer_cards);
diesel::allow_tables_to_appear_in_same_query!(points_entries, customer_cards);

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClubWork {
    pub lots_expired: i64,
    pub tiers_reviewed: usize,
    pub downgrades_noticed: usize,
    pub offers_expired: usize,
    pub birthday_bonuses: usize,
}

impl ClubWork {
    /// Whether anything was done.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Lapsed lots whose members one expiry transaction takes (with all their lapsed lots).
const EXPIRY_BATCH: i64 = 20_000;
/// Members (or events) per transaction of the other jobs.
const BATCH: i64 = 200;

/// Runs every club job until nothing is left that no one else holds, the expiry on all the
/// connections at once (each takes its own batches) and the rest on the first.
pub async fn run_due_on(
    conns: &mut [&mut AsyncPgConnection],
    now: DateTime<Utc>,
) -> ApiResult<ClubWork> {
    let expired =
        futures_util::future::try_join_all(conns.iter_mut().map(|conn| expire_lots(conn, now)))
            .await?;
    let Some(conn) = conns.first_mut() else {
        return Ok(ClubWork::default());
    };
    let mut work = the_rest(conn, now).await?;
    work.lots_expired = expired.into_iter().sum();
    Ok(work)
}

/// Runs every club job on one connection.
pub async fn run_due(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> ApiResult<ClubWork> {
    run_due_on(&mut [conn], now).await
}

/// Every job but the expiry.
async fn the_rest(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> ApiResult<ClubWork> {
    let mut work = ClubWork::default();
    loop {
        let noticed = notice_downgrades(conn, now).await?;
        work.downgrades_noticed += noticed;
        if noticed < BATCH as usize {
            break;
        }
    }
    loop {
        let reviewed = review_tiers(conn, now).await?;
        work.tiers_reviewed += reviewed;
        if reviewed < BATCH as usize {
            break;
        }
    }
    loop {
        let expired = seats::expire_offers_batch(conn, now, BATCH).await?;
        work.offers_expired += expired;
        if expired == 0 {
            break;
        }
    }
    loop {
        let paid = birthday_bonuses(conn, now).await?;
        work.birthday_bonuses += paid;
        if paid < BATCH as usize {
            break;
        }
    }
    Ok(work)
}

/// Expires every lapsed lot, a batch per transaction. Returns the lots expired.
pub async fn expire_lots(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> ApiResult<i64> {
    let mut total = 0;
    loop {
        let (lots, _) = conn
            .transaction::<_, ApiError, _>(async move |conn| {
                ledger::expire_batch(conn, now, EXPIRY_BATCH).await
            })
            .await?;
        total += lots;
        if lots == 0 {
            return Ok(total);
        }
    }
}

/// Members of this batch, locked: those whose review is due at `until` or before, and not yet
/// noticed when `notice` is set.
async fn lock_reviews(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    notice: bool,
) -> ApiResult<Vec<MemberRow>> {
    // Notices look only ahead, at reviews not yet announced.
    let (after, unnoticed) = if notice {
        (now, "downgrade_noticed_for IS DISTINCT FROM tier_review_at")
    } else {
        (DateTime::<Utc>::UNIX_EPOCH, "true")
    };
    Ok(club_members::table
        .filter(club_members::tier_review_at.le(until))
        .filter(club_members::tier_review_at.gt(after))
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(unnoticed))
        .filter(club_members::status.ne(MemberStatus::Cancelled))
        .order(club_members::tier_review_at)
        .limit(BATCH)
        .select(MemberRow::as_select())
        .for_update()
        .skip_locked()
        .load(conn)
        .await?)
}

/// The data of `member.tier_downgrade_pending`: what the member still needs to keep the tier.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct DowngradeNotice {
    pub member_id: MemberId,
    /// When the tier is reviewed.
    pub review_at: DateTime<Utc>,
    pub tier: tiers::TierSummary,
    /// The tier the member goes down to if nothing changes.
    pub would_become: tiers::TierSummary,
    /// How much more of the metric keeps the tier.
    pub still_needed: i64,
    pub metric: tiers::Metric,
}

/// Announces, `downgrade_notice_days` before a review, the members who would go down a tier
/// if the review were now (`member.tier_downgrade_pending`), once per review.
async fn notice_downgrades(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> ApiResult<usize> {
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let settings = SettingsRow::load(conn).await?;
        let until = now + Duration::days(i64::from(settings.downgrade_notice_days));
        let members = lock_reviews(conn, now, until, true).await?;
        let ladder = Ladder::load(conn).await?;
        let writer = Writer::system();
        for member in &members {
            let review = member.tier_review_at.unwrap_or(now);
            diesel::update(club_members::table.find(member.id))
                .set(club_members::downgrade_noticed_for.eq(review))
                .execute(conn)
                .await?;
            let Some(current) = ladder.get(member.tier_id) else {
                continue;
            };
            let Some(lower) = ladder.below(current) else {
                continue;
            };
            let counted = tiers::qualifying_since(conn, member, year_before(review)).await?;
            let shortfall = current.shortfall(counted);
            if shortfall == 0 {
                continue;
            }
            let data = serde_json::to_value(DowngradeNotice {
                member_id: member.id,
                review_at: review,
                tier: current.summary(),
                would_become: lower.summary(),
                still_needed: shortfall,
                metric: current.qualification_metric,
            })
            .unwrap_or_default();
            Occurrence {
                subject: Subject {
                    entity_type: "member",
                    entity_id: member.id.get(),
                    customer_id: Some(member.customer_id),
                },
                event_type: "member.tier_downgrade_pending".into(),
                audit_action: "downgrade_noticed",
            }
            .record(conn, &writer, json!({}), data)
            .await?;
        }
        Ok(members.len())
    })
    .await
}

/// Reviews the tiers due: kept when the window's count still meets them, else one down.
async fn review_tiers(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> ApiResult<usize> {
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let members = lock_reviews(conn, now, now, false).await?;
        let ladder = Ladder::load(conn).await?;
        let writer = Writer::system();
        let count = members.len();
        for member in members {
            let review = member.tier_review_at.unwrap_or(now);
            tiers::review(conn, &writer, member, &ladder, review).await?;
        }
        Ok(count)
    })
    .await
}

/// Pays the birthday rules' bonus to active members whose birthday is today (UTC), once a
/// year. Returns the members paid.
async fn birthday_bonuses(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> ApiResult<usize> {
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let any_rule: bool = diesel::select(diesel::dsl::exists(
            club_rules::table
                .filter(club_rules::kind.eq(rules::RuleKind::Birthday))
                .filter(club_rules::active.eq(true))
                .filter(club_rules::deleted_at.is_null()),
        ))
        .get_result(conn)
        .await?;
        if !any_rule {
            return Ok(0);
        }
        let today = now.date_naive();
        let reference = format!("birthday:{}", today.year());
        let prefix = format!("{reference}:rule:%");
        let born_today: Vec<crate::kit::ids::MemberId> = club_members::table
            .inner_join(customer_cards::table)
            .filter(club_members::status.eq(MemberStatus::Active))
            .filter(customer_cards::deleted_at.is_null())
            .filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>(
                    "extract(month FROM customer_cards.birthday)::int = ",
                )
                .bind::<diesel::sql_types::Integer, _>(today.month() as i32)
                .sql(" AND extract(day FROM customer_cards.birthday)::int = ")
                .bind::<diesel::sql_types::Integer, _>(today.day() as i32),
            )
            .filter(diesel::dsl::not(diesel::dsl::exists(
                points_entries::table
                    .filter(points_entries::member_id.eq(club_members::id))
                    .filter(points_entries::kind.eq(ledger::EntryKind::Earn))
                    .filter(points_entries::reference.like(prefix)),
            )))
            .limit(BATCH)
            .select(club_members::id)
            .load(conn)
            .await?;
        let mut members: Vec<MemberRow> = club_members::table
            .filter(club_members::id.eq_any(born_today))
            .select(MemberRow::as_select())
            .for_update()
            .skip_locked()
            .load(conn)
            .await?;
        let writer = Writer::system();
        for member in &mut members {
            rules::award_bonus(conn, &writer, member, Bonus::Birthday, &reference, now).await?;
        }
        Ok(members.len())
    })
    .await
}
