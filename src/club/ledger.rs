//! The points ledger. Entries are appended and never changed (a trigger refuses it); every
//! earning forms a **lot** with a date it becomes spendable (pending before, e.g. a returns
//! window) and a date it lapses. Debits take from the soonest-expiring spendable lots first
//! and record the lots they used. A refund reverses what its order earned: what is left of
//! the lots is voided, what was spent becomes **owed**, and later earnings pay the debt
//! first. So for every member, at every commit:
//!
//! `sum(entries.points) = sum(lots.remaining) − owed`, and the spendable balance ≥ 0.
//!
//! Every write runs under the member's row lock, which serialises a member's writes (the
//! till, the app and the shop writing at once) while other members go in parallel. The
//! ledger is its own audit trail: each entry names its principal; each also announces
//! `points.changed`.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::MemberRow;
use super::settings::SettingsRow;
use crate::db::prepared::Cached;
use crate::db::schema::{club_members, points_entries, points_lots};
use crate::error::{ApiError, ApiResult};
use crate::kit::audit::Subject;
use crate::kit::ids::{EntryId, MemberId, OrderId, RuleId};
use crate::kit::outbox::{self, Message};
use crate::kit::write::Writer;
use crate::text_enum;

/// The events' subject type for ledger entries.
pub const SUBJECT: &str = "points_entry";

text_enum! {
    /// What a ledger entry does.
    pub enum EntryKind {
        /// Points earned (a purchase, a bonus, a goodwill credit): a new lot.
        Earn = "earn",
        /// Points spent.
        Redeem = "redeem",
        /// A correction by staff, up (a lot) or down (a debit).
        Adjust = "adjust",
        /// What remained of lapsed lots (the expiry job).
        Expire = "expire",
        /// An earning taken back (its order refunded or cancelled).
        Reverse = "reverse",
    }
}

/// A ledger entry row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = points_entries)]
pub struct EntryRow {
    pub id: EntryId,
    pub member_id: MemberId,
    pub kind: EntryKind,
    pub points: i64,
    pub qualifying: i64,
    pub balance_after: i64,
    pub reason: String,
    pub reference: Option<String>,
    pub order_id: Option<OrderId>,
    pub rule_id: Option<RuleId>,
    pub lots: Value,
    pub debt_paid: i64,
    pub owed_added: i64,
    pub available_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub actor_type: String,
    pub actor_id: Option<Uuid>,
    /// Taken by the database as the entry is written (`clock_timestamp()`), under the
    /// member's lock: a member's entries are in the order they took effect.
    #[diesel(skip_insertion)]
    pub created_at: DateTime<Utc>,
}

/// Part of a lot a debit used, or an expiry took.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LotUse {
    pub lot_id: Uuid,
    pub points: i64,
}

/// Who wrote an entry.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EntryActor {
    /// `user`, `api_key`, `member` or `system`.
    #[schema(example = "api_key")]
    pub r#type: String,
    pub id: Option<Uuid>,
}

/// A ledger entry as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Entry {
    pub id: EntryId,
    pub member_id: MemberId,
    pub kind: EntryKind,
    /// The change to the member's points (negative for debits, expiries and reversals).
    #[schema(example = 120)]
    pub points: i64,
    /// What the entry adds to (or takes from) the count for tiers.
    pub qualifying: i64,
    /// The spendable balance right after the entry.
    #[schema(example = 1520)]
    pub balance_after: i64,
    #[schema(example = "Order 10045")]
    pub reason: String,
    /// The source reference, unique per member and kind: the same reference replays this
    /// entry.
    #[schema(example = "order:0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub reference: Option<String>,
    pub order_id: Option<OrderId>,
    pub rule_id: Option<RuleId>,
    /// Debits and expiries: the lots they took from, soonest-expiring first.
    pub lots: Vec<LotUse>,
    /// Earnings: the part that paid what the member owed first.
    pub debt_paid: i64,
    /// Reversals: the part already spent, now owed.
    pub owed_added: i64,
    /// Earnings: when the lot becomes spendable (pending until then).
    pub available_at: Option<DateTime<Utc>>,
    /// Earnings: when the lot lapses.
    pub expires_at: Option<DateTime<Utc>>,
    pub actor: EntryActor,
    pub created_at: DateTime<Utc>,
}

impl From<EntryRow> for Entry {
    fn from(row: EntryRow) -> Self {
        Self {
            id: row.id,
            member_id: row.member_id,
            kind: row.kind,
            points: row.points,
            qualifying: row.qualifying,
            balance_after: row.balance_after,
            reason: row.reason,
            reference: row.reference,
            order_id: row.order_id,
            rule_id: row.rule_id,
            lots: serde_json::from_value(row.lots).unwrap_or_default(),
            debt_paid: row.debt_paid,
            owed_added: row.owed_added,
            available_at: row.available_at,
            expires_at: row.expires_at,
            actor: EntryActor {
                r#type: row.actor_type,
                id: row.actor_id,
            },
            created_at: row.created_at,
        }
    }
}

/// A member's points now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Balances {
    /// Spendable now.
    #[schema(example = 1520)]
    pub balance: i64,
    /// Earned but not yet spendable (a returns window).
    pub pending: i64,
    /// Ever earned, less what was reversed.
    pub lifetime_earned: i64,
    /// Spent points whose earning was reversed, paid off by the next earnings.
    pub owed: i64,
}

#[derive(QueryableByName)]
struct Sums {
    #[diesel(sql_type = BigInt)]
    available: i64,
    #[diesel(sql_type = BigInt)]
    pending: i64,
}

/// The query of a member's spendable and pending points (`available`, `pending`) at a time,
/// from their live lots; `$member` and `$now` name its parameters, so that the member read
/// (`tiers::STANDING_SQL`) can join it to other sums in one statement.
macro_rules! live_lot_sums {
    ($member:literal, $now:literal) => {
        concat!(
            "SELECT coalesce(sum(remaining) FILTER (WHERE available_at <= ",
            $now,
            "), 0)::bigint AS available, \
                    coalesce(sum(remaining) FILTER (WHERE available_at > ",
            $now,
            "), 0)::bigint AS pending \
             FROM points_lots WHERE member_id = ",
            $member,
            " AND remaining > 0 AND expires_at > ",
            $now
        )
    };
}
pub(crate) use live_lot_sums;

/// A member's (`$1`) spendable and pending points at `$2`.
pub const BALANCES_SQL: &str = live_lot_sums!("$1", "$2");

/// The member's balances at `now`, from their lots.
pub async fn balances(
    conn: &mut AsyncPgConnection,
    member: &MemberRow,
    now: DateTime<Utc>,
) -> ApiResult<Balances> {
    // Kept prepared, as the member read's statement: a look-up by member whatever the values.
    let sums: Sums = Cached::fixed(
        diesel::sql_query(BALANCES_SQL)
            .bind::<diesel::sql_types::Uuid, _>(member.id.get())
            .bind::<Timestamptz, _>(now),
    )
    .get_result(conn)
    .await?;
    Ok(Balances::of(member, sums.available, sums.pending))
}

impl Balances {
    /// The member's balances from the sums of their live lots.
    pub fn of(member: &MemberRow, available: i64, pending: i64) -> Self {
        Self {
            balance: available,
            pending,
            lifetime_earned: member.lifetime_earned,
            owed: member.owed,
        }
    }
}

/// A live lot, as a debit sees it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = points_lots)]
struct Lot {
    id: Uuid,
    remaining: i64,
    available_at: DateTime<Utc>,
}

/// Points in.
#[derive(Debug, Clone)]
pub struct Credit {
    /// `earn` or `adjust`.
    pub kind: EntryKind,
    pub points: i64,
    /// Whether the points count for tiers.
    pub qualifies: bool,
    pub reason: String,
    pub reference: Option<String>,
    pub order_id: Option<OrderId>,
    pub rule_id: Option<RuleId>,
    /// Days before the points become spendable.
    pub pending_days: i64,
}

/// Points out.
#[derive(Debug, Clone)]
pub struct Debit {
    /// `redeem` or `adjust`.
    pub kind: EntryKind,
    pub points: i64,
    pub reason: String,
    pub reference: Option<String>,
}

/// A ledger write's result: the new entry, or the first one with the same reference.
#[derive(Debug)]
pub enum Written {
    New(EntryRow),
    Replayed(EntryRow),
}

impl Written {
    /// The entry either way.
    pub fn into_entry(self) -> EntryRow {
        match self {
            Self::New(e) | Self::Replayed(e) => e,
        }
    }
}

/// The member's entry of this kind with this reference, if any.
pub async fn find_reference(
    conn: &mut AsyncPgConnection,
    member: MemberId,
    kind: EntryKind,
    reference: &str,
) -> ApiResult<Option<EntryRow>> {
    Ok(points_entries::table
        .filter(points_entries::member_id.eq(member))
        .filter(points_entries::kind.eq(kind))
        .filter(points_entries::reference.eq(reference))
        .select(EntryRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// `409` when the caller's view of the balance is stale.
fn check_expected(expected: Option<i64>, available: i64) -> ApiResult<()> {
    match expected {
        Some(expected) if expected != available => Err(ApiError::rule(
            "expected_balance",
            "stale",
            format!("the balance is {available}, not {expected}; read it again"),
        )),
        _ => Ok(()),
    }
}

impl EntryRow {
    fn new(member: &MemberRow, kind: EntryKind, writer: &Writer, now: DateTime<Utc>) -> Self {
        let (actor_type, actor_id) = writer.actor().parts();
        Self {
            id: EntryId::new(),
            member_id: member.id,
            kind,
            points: 0,
            qualifying: 0,
            balance_after: 0,
            reason: String::new(),
            reference: None,
            order_id: None,
            rule_id: None,
            lots: json!([]),
            debt_paid: 0,
            owed_added: 0,
            available_at: None,
            expires_at: None,
            actor_type: actor_type.to_owned(),
            actor_id,
            created_at: now,
        }
    }
}

/// Appends the entry and announces it.
async fn append(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    member: &MemberRow,
    entry: EntryRow,
) -> ApiResult<EntryRow> {
    let saved: EntryRow = diesel::insert_into(points_entries::table)
        .values(&entry)
        .returning(EntryRow::as_returning())
        .get_result(conn)
        .await?;
    outbox::record(
        conn,
        Message {
            event_type: "points.changed".into(),
            subject: Subject {
                entity_type: SUBJECT,
                entity_id: saved.id.get(),
                customer_id: Some(member.customer_id),
            },
            actor: writer.actor(),
            data: serde_json::to_value(Entry::from(saved.clone())).unwrap_or_default(),
        },
    )
    .await?;
    Ok(saved)
}

/// Adds points to a locked member: a lot (after paying what they owe), spendable after
/// `pending_days`, lapsing by the club's policy.
pub async fn credit(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    member: &mut MemberRow,
    credit: Credit,
    expected_balance: Option<i64>,
    settings: &SettingsRow,
    now: DateTime<Utc>,
) -> ApiResult<Written> {
    if let Some(reference) = &credit.reference
        && let Some(first) = find_reference(conn, member.id, credit.kind, reference).await?
    {
        return Ok(Written::Replayed(first));
    }
    let before = balances(conn, member, now).await?;
    check_expected(expected_balance, before.balance)?;
    let debt_paid = credit.points.min(member.owed);
    let lot_points = credit.points - debt_paid;
    let available_at = now + Duration::days(credit.pending_days);
    let expires_at = settings.expiry_of(now);
    let mut entry = EntryRow::new(member, credit.kind, writer, now);
    entry.points = credit.points;
    entry.qualifying = if credit.qualifies { credit.points } else { 0 };
    entry.balance_after = before.balance
        + if credit.pending_days == 0 {
            lot_points
        } else {
            0
        };
    entry.reason = credit.reason;
    entry.reference = credit.reference;
    entry.order_id = credit.order_id;
    entry.rule_id = credit.rule_id;
    entry.debt_paid = debt_paid;
    entry.available_at = Some(available_at);
    entry.expires_at = Some(expires_at);
    let entry = append(conn, writer, member, entry).await?;
    if lot_points > 0 {
        diesel::insert_into(points_lots::table)
            .values((
                points_lots::id.eq(Uuid::now_v7()),
                points_lots::member_id.eq(member.id),
                points_lots::entry_id.eq(entry.id),
                points_lots::order_id.eq(entry.order_id),
                points_lots::points.eq(lot_points),
                points_lots::remaining.eq(lot_points),
                points_lots::available_at.eq(available_at),
                points_lots::expires_at.eq(expires_at),
            ))
            .execute(conn)
            .await?;
    }
    let earned = if credit.kind == EntryKind::Earn {
        credit.points
    } else {
        0
    };
    adjust_member(conn, member, -debt_paid, earned).await?;
    Ok(Written::New(entry))
}

/// Credits a locked member a fixed bonus that is spendable at once and does not count for
/// tiers (goodwill, attendance), once per `reference`: the entry, new or the first one.
pub async fn credit_bonus(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    member: &mut MemberRow,
    points: i64,
    reason: String,
    reference: String,
    now: DateTime<Utc>,
) -> ApiResult<EntryRow> {
    let settings = SettingsRow::load(conn).await?;
    let bonus = Credit {
        kind: EntryKind::Earn,
        points,
        qualifies: false,
        reason,
        reference: Some(reference),
        order_id: None,
        rule_id: None,
        pending_days: 0,
    };
    Ok(credit(conn, writer, member, bonus, None, &settings, now)
        .await?
        .into_entry())
}

/// Changes what a locked member owes and has earned.
async fn adjust_member(
    conn: &mut AsyncPgConnection,
    member: &mut MemberRow,
    owed_change: i64,
    earned_change: i64,
) -> ApiResult<()> {
    if owed_change == 0 && earned_change == 0 {
        return Ok(());
    }
    let (owed, earned): (i64, i64) = diesel::update(club_members::table.find(member.id))
        .set((
            club_members::owed.eq(club_members::owed + owed_change),
            club_members::lifetime_earned.eq(diesel::dsl::sql::<BigInt>(
                "greatest(lifetime_earned + ",
            )
            .bind::<BigInt, _>(earned_change)
            .sql(", 0)")),
        ))
        .returning((club_members::owed, club_members::lifetime_earned))
        .get_result(conn)
        .await?;
    member.owed = owed;
    member.lifetime_earned = earned;
    Ok(())
}

/// Takes points from a locked member's soonest-expiring spendable lots; `409` when the
/// balance is short or `expected_balance` is stale.
pub async fn debit(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    member: &MemberRow,
    debit: Debit,
    expected_balance: Option<i64>,
    now: DateTime<Utc>,
) -> ApiResult<Written> {
    if let Some(reference) = &debit.reference
        && let Some(first) = find_reference(conn, member.id, debit.kind, reference).await?
    {
        return Ok(Written::Replayed(first));
    }
    let lots: Vec<Lot> = points_lots::table
        .filter(points_lots::member_id.eq(member.id))
        .filter(points_lots::remaining.gt(0))
        .filter(points_lots::expires_at.gt(now))
        .filter(points_lots::available_at.le(now))
        .order((points_lots::expires_at, points_lots::id))
        .select(Lot::as_select())
        .for_update()
        .load(conn)
        .await?;
    let available: i64 = lots.iter().map(|l| l.remaining).sum();
    check_expected(expected_balance, available)?;
    if debit.points > available {
        return Err(ApiError::rule(
            "points",
            "insufficient",
            format!("{available} points are spendable"),
        ));
    }
    let used = take_soonest(&lots, debit.points, now);
    let mut entry = EntryRow::new(member, debit.kind, writer, now);
    entry.points = -debit.points;
    entry.balance_after = available - debit.points;
    entry.reason = debit.reason;
    entry.reference = debit.reference;
    entry.lots = serde_json::to_value(&used).unwrap_or_default();
    let entry = append(conn, writer, member, entry).await?;
    let ids: Vec<Uuid> = used.iter().map(|u| u.lot_id).collect();
    let taken: Vec<i64> = used.iter().map(|u| u.points).collect();
    diesel::sql_query(
        "UPDATE points_lots l SET remaining = l.remaining - u.points \
         FROM unnest($1::uuid[], $2::bigint[]) AS u(id, points) WHERE l.id = u.id",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(ids)
    .bind::<diesel::sql_types::Array<BigInt>, _>(taken)
    .execute(conn)
    .await?;
    Ok(Written::New(entry))
}

/// The parts of `lots` (spendable, soonest-expiring first) that make up `points`.
fn take_soonest(lots: &[Lot], points: i64, now: DateTime<Utc>) -> Vec<LotUse> {
    let mut left = points;
    let mut used = Vec::new();
    for lot in lots.iter().filter(|l| l.available_at <= now) {
        if left == 0 {
            break;
        }
        let part = lot.remaining.min(left);
        used.push(LotUse {
            lot_id: lot.id,
            points: part,
        });
        left -= part;
    }
    used
}

/// What an earning's lot holds now.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = points_lots)]
struct EarnedLot {
    id: Uuid,
    remaining: i64,
    expired: i64,
}

/// Reverses everything the order earned, on the locked member who now holds it: for each
/// earning, what is left of its lot is voided and what was spent (or paid debt) becomes owed. Replays write
/// nothing. Returns the reversals written.
pub async fn reverse_order(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    member: &mut MemberRow,
    order: OrderId,
    reason: &str,
    now: DateTime<Utc>,
) -> ApiResult<Vec<EntryRow>> {
    // By order alone: after a customer merge the earnings stay in the duplicate's ledger
    // while their lots (and the order) belong to the survivor, whose membership reverses them.
    let earnings: Vec<EntryRow> = points_entries::table
        .filter(points_entries::order_id.eq(order))
        .filter(points_entries::kind.eq(EntryKind::Earn))
        .order(points_entries::created_at)
        .select(EntryRow::as_select())
        .load(conn)
        .await?;
    let mut written = Vec::new();
    for earning in earnings {
        let reference = format!("entry:{}", earning.id);
        if find_reference(conn, member.id, EntryKind::Reverse, &reference)
            .await?
            .is_some()
        {
            continue;
        }
        let lot: Option<EarnedLot> = points_lots::table
            .filter(points_lots::entry_id.eq(earning.id))
            .select(EarnedLot::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?;
        let (voided, expired) = lot.as_ref().map_or((0, 0), |l| (l.remaining, l.expired));
        let owed_added = earning.points - voided - expired;
        if let Some(lot) = &lot {
            diesel::update(points_lots::table.find(lot.id))
                .set(points_lots::remaining.eq(0))
                .execute(conn)
                .await?;
        }
        adjust_member(conn, member, owed_added, -earning.points).await?;
        let after = balances(conn, member, now).await?;
        let mut entry = EntryRow::new(member, EntryKind::Reverse, writer, now);
        entry.points = -(voided + owed_added);
        entry.qualifying = -earning.qualifying;
        entry.balance_after = after.balance;
        entry.reason = reason.to_owned();
        entry.reference = Some(reference);
        entry.order_id = Some(order);
        entry.rule_id = earning.rule_id;
        entry.owed_added = owed_added;
        entry.lots = serde_json::to_value(
            lot.iter()
                .map(|l| LotUse {
                    lot_id: l.id,
                    points: l.remaining,
                })
                .collect::<Vec<_>>(),
        )
        .unwrap_or_default();
        written.push(append(conn, writer, member, entry).await?);
    }
    Ok(written)
}

/// Moves everything a locked member holds (their live lots, debt and lifetime count) to
/// another locked member, with an `adjust` entry on each side so that both ledgers still add
/// up (a customer merge).
pub async fn transfer_all(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    from: &mut MemberRow,
    to: &mut MemberRow,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let moved: Vec<i64> = diesel::update(
        points_lots::table
            .filter(points_lots::member_id.eq(from.id))
            .filter(points_lots::remaining.gt(0)),
    )
    .set(points_lots::member_id.eq(to.id))
    .returning(points_lots::remaining)
    .get_results(conn)
    .await?;
    let (owed, earned) = (from.owed, from.lifetime_earned);
    let net = moved.iter().sum::<i64>() - owed;
    adjust_member(conn, from, -owed, -earned).await?;
    adjust_member(conn, to, owed, earned).await?;
    if net == 0 && owed == 0 {
        return Ok(());
    }
    for (member, other, points) in [(&*from, &*to, -net), (&*to, &*from, net)] {
        let mut entry = EntryRow::new(member, EntryKind::Adjust, writer, now);
        entry.points = points;
        entry.balance_after = balances(conn, member, now).await?.balance;
        entry.reason = format!(
            "customers merged: membership {} folded into the survivor's",
            from.member_number
        );
        entry.reference = Some(format!("merge:{}", other.id));
        append(conn, writer, member, entry).await?;
    }
    Ok(())
}

#[derive(QueryableByName)]
struct Expired {
    #[diesel(sql_type = BigInt)]
    lots: i64,
    #[diesel(sql_type = BigInt)]
    entries: i64,
}

/// One transaction of the expiry job: the members of the `limit` soonest-lapsed lots that no
/// other runner or writer holds have every lapsed lot expired, as one `expire` entry per
/// member (listing the lots), with its `points.changed` event, in one statement. Returns
/// (lots, entries).
pub async fn expire_batch(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> ApiResult<(i64, i64)> {
    let done: Expired = diesel::sql_query(EXPIRE_SQL)
        .bind::<Timestamptz, _>(now)
        .bind::<BigInt, _>(limit)
        .get_result(conn)
        .await?;
    Ok((done.lots, done.entries))
}

/// The expiry statement (also run by `benches/run` through pgbench).
pub const EXPIRE_SQL: &str = "\
WITH candidates AS (
    SELECT member_id FROM points_lots
    WHERE expires_at <= $1 AND remaining > 0
    ORDER BY expires_at LIMIT $2
), holders AS (
    -- Ids from arrays here and below: joined to the CTEs, the planner hashed whole tables.
    SELECT m.id, m.customer_id FROM club_members m
    WHERE m.id = ANY (ARRAY(SELECT DISTINCT member_id FROM candidates))
    FOR UPDATE SKIP LOCKED
), lapsed AS (
    -- Every lapsed lot of each member held, not only the batch's: a member's expiry is one
    -- entry per run however its lots fall into batches or runners. Lots are written only
    -- under their member's lock, so waiting here waits for nobody.
    SELECT l.id, l.member_id, l.remaining FROM points_lots l
    WHERE l.member_id = ANY (ARRAY(SELECT id FROM holders)) AND l.expires_at <= $1
      AND l.remaining > 0
    FOR UPDATE
), taken AS (
    UPDATE points_lots l SET expired = l.expired + l.remaining, remaining = 0
    WHERE l.id = ANY (ARRAY(SELECT x.id FROM lapsed x))
    RETURNING l.member_id, l.id
), per_member AS (
    SELECT t.member_id, min(h.customer_id::text)::uuid AS customer_id, uuid_v7() AS entry_id,
           sum(x.remaining)::bigint AS points,
           jsonb_agg(jsonb_build_object('lot_id', t.id, 'points', x.remaining)) AS lots
    FROM taken t JOIN lapsed x ON x.id = t.id JOIN holders h ON h.id = t.member_id
    GROUP BY t.member_id
), balances AS (
    SELECT p.*, coalesce((SELECT sum(b.remaining) FROM points_lots b
                          WHERE b.member_id = p.member_id AND b.remaining > 0
                            AND b.available_at <= $1 AND b.expires_at > $1), 0)::bigint AS balance
    FROM per_member p
), entries AS (
    INSERT INTO points_entries (id, member_id, kind, points, balance_after, reason, lots, actor_type, created_at)
    SELECT entry_id, member_id, 'expire', -points, balance, 'points expired', lots, 'system', clock_timestamp()
    FROM balances
    RETURNING id, member_id, points, balance_after, lots, created_at
), announced AS (
    INSERT INTO events (id, type, subject_type, subject_id, customer_id, actor_type, data)
    SELECT uuid_v7(), 'points.changed', 'points_entry', e.id, b.customer_id, 'system',
           jsonb_build_object('id', e.id, 'member_id', e.member_id, 'kind', 'expire',
               'points', e.points, 'qualifying', 0, 'balance_after', e.balance_after,
               'reason', 'points expired', 'reference', NULL, 'order_id', NULL, 'rule_id', NULL,
               'lots', e.lots, 'debt_paid', 0, 'owed_added', 0, 'available_at', NULL,
               'expires_at', NULL, 'actor', jsonb_build_object('type', 'system', 'id', NULL),
               'created_at', e.created_at)
    FROM entries e JOIN balances b ON b.entry_id = e.id
    RETURNING 1
)
SELECT (SELECT count(*) FROM taken)::bigint AS lots, (SELECT count(*) FROM announced)::bigint AS entries";

#[cfg(test)]
mod tests {
    use super::*;

    fn lot(remaining: i64, available_in_days: i64, now: DateTime<Utc>) -> Lot {
        Lot {
            id: Uuid::now_v7(),
            remaining,
            available_at: now + Duration::days(available_in_days),
        }
    }

    #[test]
    fn debits_take_the_soonest_expiring_spendable_lots_first() {
        let now = Utc::now();
        // In expiry order, as the query sorts them; the second is still pending.
        let lots = vec![
            lot(5, -1, now),
            lot(100, 3, now),
            lot(7, -10, now),
            lot(9, 0, now),
        ];
        let used = take_soonest(&lots, 10, now);
        let taken: Vec<(Uuid, i64)> = used.iter().map(|u| (u.lot_id, u.points)).collect();
        assert_eq!(taken, vec![(lots[0].id, 5), (lots[2].id, 5)]);
        let used = take_soonest(&lots, 21, now);
        assert_eq!(used.iter().map(|u| u.points).sum::<i64>(), 21);
        assert_eq!(used.last().map(|u| u.lot_id), Some(lots[3].id));
    }

    #[test]
    fn a_stale_expected_balance_is_a_conflict() {
        assert!(check_expected(None, 5).is_ok());
        assert!(check_expected(Some(5), 5).is_ok());
        assert!(matches!(
            check_expected(Some(4), 5),
            Err(ApiError::Rules(_))
        ));
    }
}
