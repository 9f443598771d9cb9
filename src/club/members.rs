//! `/api/v1/club/members`: enrol a customer (one membership each), read a member with their
//! balances and tier progress, suspend or cancel, and the ledger: `GET` and `POST
//! /club/members/{id}/points` (earn, redeem, adjust, with `expected_balance` and replayed
//! references).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::future::{try_join, try_join_all};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use super::cache::{Rules, RulesCache};
use super::ledger::{self, Balances, Credit, Debit, Entry, EntryKind, EntryRow, Written};
use super::rules;
use super::settings::SettingsRow;
use super::tiers::{self, Ladder, TierProgress, TierSummary};
use super::{MemberRow, MemberStatus};
use crate::auth::{Authorized, ClubManage, ClubRead, ClubWrite, ensure_not_agent};
use crate::customers::api as customers;
use crate::db::DbConn;
use crate::db::keyset::{older_than, page_in};
use crate::db::schema::{club_members, club_tier_changes, points_entries};
use crate::db::shared_reads::{QUEUE_FOR_COMPOUND_READS, SharedRead};
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::etag::{IfMatch, created, versioned};
use crate::http::json::ValidJson;
use crate::http::pagination::{Page, PageParams};
use crate::http::query::Query;
use crate::http::sorting::{CreationOrder, SortOrder, SortedCursor};
use crate::kit::ids::{CustomerId, EntryId, MemberId, TierId};
use crate::kit::input::{Text, Whole};
use crate::kit::write::{self, Action, Writer};
use futures_util::future::BoxFuture;

crate::routes!(
    enrol,
    list,
    get_one,
    update,
    points_list,
    points_entry,
    points_write,
    tier_changes
);

/// A member as the API shows it: the membership, balances derived from the ledger, and
/// where they stand against the tiers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    pub id: MemberId,
    #[schema(example = "M100001")]
    pub member_number: String,
    pub customer_id: CustomerId,
    pub status: MemberStatus,
    pub joined_at: DateTime<Utc>,
    pub tier: Option<TierSummary>,
    pub tier_since: Option<DateTime<Utc>>,
    /// When the tier is next reviewed (kept, or lowered by one).
    pub tier_review_at: Option<DateTime<Utc>>,
    pub points: Balances,
    pub progress: TierProgress,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The member as the API shows it, now.
pub async fn view(conn: &mut AsyncPgConnection, member: &MemberRow) -> ApiResult<Member> {
    let rules = Rules::load(conn).await?;
    view_with(conn, member, &rules).await
}

/// The member as the API shows it, now, against tiers and settings the caller read (once for
/// a whole page, or from the instance's [`RulesCache`]).
async fn view_with(
    conn: &AsyncPgConnection,
    member: &MemberRow,
    rules: &Rules,
) -> ApiResult<Member> {
    let (ladder, settings) = (&rules.ladder, &rules.settings);
    let (points, progress) = tiers::standing(conn, member, ladder, settings, Utc::now()).await?;
    Ok(Member {
        id: member.id,
        member_number: member.member_number.clone(),
        customer_id: member.customer_id,
        status: member.status,
        joined_at: member.joined_at,
        tier: ladder.get(member.tier_id).map(tiers::TierRow::summary),
        tier_since: member.tier_since,
        tier_review_at: member.tier_review_at,
        points,
        progress,
        created_at: member.created_at,
        updated_at: member.updated_at,
    })
}

/// Body of `POST /club/members`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    pub customer_id: CustomerId,
}

/// A new membership's row, in the entry tier.
async fn enrolment(
    conn: &mut AsyncPgConnection,
    customer: CustomerId,
    now: DateTime<Utc>,
) -> ApiResult<MemberRow> {
    let ladder = Ladder::load(conn).await?;
    let settings = SettingsRow::load(conn).await?;
    let number: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "nextval('club_member_numbers')",
    ))
    .get_result(conn)
    .await?;
    let entry = ladder.entry();
    Ok(MemberRow {
        id: MemberId::new(),
        customer_id: customer,
        member_number: format!("M{number}"),
        status: MemberStatus::Active,
        joined_at: now,
        tier_id: entry.map(|t| t.id),
        tier_since: entry.map(|_| now),
        tier_review_at: entry.map(|_| settings.first_review(now, now)),
        downgrade_noticed_for: None,
        lifetime_earned: 0,
        owed: 0,
        version: 1,
        created_at: now,
        updated_at: now,
    })
}

/// Enrol a customer in the club, in the entry tier (with the enrolment bonus, if a rule
/// gives one).
#[utoipa::path(
    tag = "club-members",
    request_body(content = NewMember, example = json!({"customer_id": "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"})),
    responses(
        (status = 201, description = "Enrolled", body = Member, headers(("Location" = String), ("ETag" = String))),
        (status = 409, description = "No such customer, or the customer is already a member", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/club/members")]
async fn enrol(
    caller: Authorized<ClubWrite>,
    mut conn: DbConn,
    body: ValidJson<NewMember>,
) -> ApiResult<HttpResponse> {
    let customer = body.0.customer_id;
    let writer = Writer::of(&caller.principal);
    let (saved, view) = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            customers::find_referenced(conn, customer).await?;
            if let Some(existing) = MemberRow::lock_of_customer(conn, customer).await? {
                return Err(ApiError::rule(
                    "customer_id",
                    "already_member",
                    format!("the customer is already member {}", existing.member_number),
                ));
            }
            let now = Utc::now();
            let row = enrolment(conn, customer, now).await?;
            let mut saved = write::create(conn, &writer, row, ENROLLED).await?;
            rules::award_bonus(
                conn,
                &writer,
                &mut saved,
                rules::Bonus::Enrolment,
                "enrolment",
                now,
            )
            .await?;
            let view = view(conn, &saved).await?;
            Ok((saved, view))
        })
        .await?;
    Ok(created(
        format!("/api/v1/club/members/{}", saved.id),
        &view,
        saved.version,
    ))
}

/// An enrolment: `member.enrolled`.
const ENROLLED: Action = Action::named("enrolled", "enrolled");

/// Filters of `GET /club/members`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MemberFilters {
    pub status: Option<MemberStatus>,
    pub tier_id: Option<TierId>,
    pub customer_id: Option<CustomerId>,
    /// The order: `-created_at` (newest first, the default) or `created_at` (oldest first).
    pub sort: Option<CreationOrder>,
}

/// The key of the last member served: when the membership was created, and its id.
type MemberCursor = SortedCursor<CreationOrder, (DateTime<Utc>, Uuid)>;

/// The members, newest first unless `sort` says otherwise.
#[utoipa::path(tag = "club-members", params(PageParams, MemberFilters), responses((status = 200, body = Page<Member>)))]
#[get("/club/members")]
async fn list(
    _: Authorized<ClubRead>,
    mut conn: DbConn,
    cache: web::Data<RulesCache>,
    page: Query<PageParams>,
    filters: Query<MemberFilters>,
) -> ApiResult<web::Json<Page<Member>>> {
    let sort = filters.sort.unwrap_or_default();
    let window = page.window::<MemberCursor>()?;
    let mut query = page_in(
        club_members::table
            .select(MemberRow::as_select())
            .limit(window.fetch())
            .into_boxed(),
        (club_members::created_at, club_members::id),
        window.after_in(sort)?,
        sort.direction(),
    );
    if let Some(status) = filters.status {
        query = query.filter(club_members::status.eq(status));
    }
    if let Some(tier) = filters.tier_id {
        query = query.filter(club_members::tier_id.eq(tier));
    }
    if let Some(customer) = filters.customer_id {
        query = query.filter(club_members::customer_id.eq(customer));
    }
    let rows = query.load(&mut conn).await?;
    let page = window.page(rows, |m| SortedCursor(sort, (m.created_at, m.id.get())));
    let rules = cache.get(&conn).await?;
    // Pipelined: the page's standings leave together and come back in order.
    let data = try_join_all(page.data.iter().map(|row| view_with(&conn, row, &rules))).await?;
    Ok(web::Json(Page {
        data,
        next_cursor: page.next_cursor,
    }))
}

async fn find(mut conn: &AsyncPgConnection, id: MemberId) -> ApiResult<MemberRow> {
    Ok(club_members::table
        .find(id)
        .select(MemberRow::as_select())
        .first(&mut conn)
        .await?)
}

/// A member with their balances and tier progress.
#[utoipa::path(tag = "club-members", responses((status = 200, body = Member, headers(("ETag" = String)))))]
#[get("/club/members/{id}")]
async fn get_one(
    _: Authorized<ClubRead>,
    read: SharedRead,
    cache: web::Data<RulesCache>,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let id = MemberId::from(*id);
    let (view, version) = read
        .run_queued(QUEUE_FOR_COMPOUND_READS, async |conn| {
            let (row, rules) = try_join(find(conn, id), cache.get(conn)).await?;
            Ok((view_with(conn, &row, &rules).await?, row.version))
        })
        .await?;
    Ok(versioned(StatusCode::OK, &view, version))
}

/// Body of `PATCH /club/members/{id}`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberPatch {
    /// `suspended` stops earning, spending and registering until `active` again;
    /// `cancelled` is final.
    pub status: MemberStatus,
}

/// Suspend, reactivate or cancel a membership.
#[utoipa::path(
    tag = "club-members",
    request_body = MemberPatch,
    responses(
        (status = 200, body = Member, headers(("ETag" = String))),
        (status = 409, description = "A cancelled membership stays cancelled", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/club/members/{id}")]
async fn update(
    caller: Authorized<ClubManage>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<MemberPatch>,
) -> ApiResult<HttpResponse> {
    let next = body.0.status;
    let writer = Writer::of(&caller.principal);
    let id = MemberId::from(*id);
    let (saved, ()) = write::change(
        &mut conn,
        &writer,
        id,
        &if_match,
        STATUS_CHANGED,
        async |_, after: &mut MemberRow| {
            if after.status == MemberStatus::Cancelled && next != MemberStatus::Cancelled {
                return Err(ApiError::Conflict(
                    "a cancelled membership stays cancelled; enrol again is not possible either"
                        .into(),
                ));
            }
            after.status = next;
            Ok(())
        },
    )
    .await?;
    let view = view(&mut conn, &saved).await?;
    Ok(versioned(StatusCode::OK, &view, saved.version))
}

/// A membership's status change.
const STATUS_CHANGED: Action = Action::named("status_changed", "updated");

/// Filters of the ledger.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntryFilters {
    pub kind: Option<EntryKind>,
}

#[derive(Serialize, Deserialize)]
struct EntryCursor(DateTime<Utc>, Uuid);

/// The member's ledger, newest first.
#[utoipa::path(tag = "club-members", params(PageParams, EntryFilters), responses((status = 200, body = Page<Entry>)))]
#[get("/club/members/{id}/points")]
async fn points_list(
    _: Authorized<ClubRead>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    page: Query<PageParams>,
    filters: Query<EntryFilters>,
) -> ApiResult<web::Json<Page<Entry>>> {
    let member = find(&conn, MemberId::from(*id)).await?;
    let page = ledger_page(&mut conn, member.id, &page, filters.kind).await?;
    Ok(web::Json(page.map(Entry::from)))
}

/// A page of a member's ledger, newest first (of one kind, if given): the staff's and the
/// member's own view of it read the same rows.
pub(super) async fn ledger_page(
    conn: &mut AsyncPgConnection,
    member: MemberId,
    page: &PageParams,
    kind: Option<EntryKind>,
) -> ApiResult<Page<EntryRow>> {
    let window = page.window::<EntryCursor>()?;
    let mut query = points_entries::table
        .filter(points_entries::member_id.eq(member))
        .select(EntryRow::as_select())
        .order((points_entries::created_at.desc(), points_entries::id.desc()))
        .limit(window.fetch())
        .into_boxed();
    if let Some(EntryCursor(at, id)) = window.after {
        query = query.filter(older_than(
            points_entries::created_at,
            points_entries::id,
            (at, id),
        ));
    }
    if let Some(kind) = kind {
        query = query.filter(points_entries::kind.eq(kind));
    }
    let rows = query.load(conn).await?;
    Ok(window.page(rows, |e| EntryCursor(e.created_at, e.id.get())))
}

crate::text_enum! {
    /// What a points write does.
    pub enum PointsKind as PointsWriteKind {
        /// Add points (a lot, spendable after `pending_days`).
        Earn = "earn",
        /// Spend points from the soonest-expiring lots.
        Redeem = "redeem",
        /// A correction: positive adds a lot, negative takes from the lots.
        Adjust = "adjust",
    }
}

/// Body of `POST /club/members/{id}/points`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointsRequest {
    pub kind: PointsKind,
    /// Positive for `earn` and `redeem`; an `adjust` may be negative. Never 0.
    #[validate(nested)]
    #[schema(example = 100)]
    pub points: Whole<-10_000_000, 10_000_000>,
    #[validate(nested)]
    #[schema(example = "Birthday voucher")]
    pub reason: Text<1, 500>,
    /// The source's own reference (an order number, a till receipt): a second write of the
    /// same kind with it returns the first entry instead of writing again.
    #[validate(nested)]
    pub reference: Option<Text<1, 200>>,
    /// The spendable balance the caller last read: `409` when it has changed since.
    #[validate(nested)]
    pub expected_balance: Option<Whole<0, { i64::MAX }>>,
    /// Earnings: days before the points can be spent (a returns window). Default 0.
    #[validate(nested)]
    pub pending_days: Option<Whole<0, 365>>,
    /// Earnings: whether they count for tiers (default: `earn` does, `adjust` does not).
    pub qualifies: Option<bool>,
}

/// Write to the ledger: earn, redeem or adjust. Agents cannot (shops, tills and managers
/// write points).
#[utoipa::path(
    tag = "club-members",
    request_body(content = PointsRequest, example = json!({
        "kind": "redeem", "points": 500, "reason": "Till 4, receipt 2211", "reference": "till-4-2211", "expected_balance": 1520
    })),
    responses(
        (status = 201, description = "Written", body = Entry, headers(("Location" = String))),
        (status = 200, description = "The reference was used before for this kind: the first entry", body = Entry),
        (status = 409, description = "Not enough spendable points, a stale `expected_balance`, or the membership is not active", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/club/members/{id}/points")]
async fn points_write(
    caller: Authorized<ClubWrite>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    body: ValidJson<PointsRequest>,
) -> ApiResult<HttpResponse> {
    ensure_not_agent(
        &caller.principal,
        "write points; shops, tills and managers do",
    )?;
    let b = body.0;
    let points = b.points.get();
    if points == 0 || (points < 0 && b.kind != PointsKind::Adjust) {
        return Err(ApiError::invalid(
            "points",
            "range",
            "must be positive (only an adjust may be negative)",
        ));
    }
    let writer = Writer::of(&caller.principal);
    let id = MemberId::from(*id);
    let expected = b.expected_balance.map(Whole::get);
    let reason = b.reason.into_inner();
    let reference = b.reference.map(Text::into_inner);
    let written = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let mut member = MemberRow::lock(conn, id).await?;
            member.ensure_active()?;
            let now = Utc::now();
            let kind = match b.kind {
                PointsKind::Earn => EntryKind::Earn,
                PointsKind::Redeem => EntryKind::Redeem,
                PointsKind::Adjust => EntryKind::Adjust,
            };
            if points > 0 && b.kind != PointsKind::Redeem {
                let settings = SettingsRow::load(conn).await?;
                let credit = Credit {
                    kind,
                    points,
                    qualifies: b.qualifies.unwrap_or(kind == EntryKind::Earn),
                    reason,
                    reference,
                    order_id: None,
                    rule_id: None,
                    pending_days: b.pending_days.map_or(0, Whole::get),
                };
                let written =
                    ledger::credit(conn, &writer, &mut member, credit, expected, &settings, now)
                        .await?;
                if matches!(written, Written::New(_)) {
                    let ladder = Ladder::load(conn).await?;
                    tiers::upgrade_if_qualified(conn, &writer, member, &ladder, &settings, now)
                        .await?;
                }
                Ok(written)
            } else {
                let debit = Debit {
                    kind,
                    points: points.abs(),
                    reason,
                    reference,
                };
                ledger::debit(conn, &writer, &member, debit, expected, now).await
            }
        })
        .await?;
    Ok(match written {
        Written::New(entry) => HttpResponse::Created()
            .insert_header((
                "Location",
                format!(
                    "/api/v1/club/members/{}/points/{}",
                    entry.member_id, entry.id
                ),
            ))
            .json(Entry::from(entry)),
        Written::Replayed(entry) => HttpResponse::Ok().json(Entry::from(entry)),
    })
}

/// One entry of a member's ledger: where a points write's `Location` points. Entries never
/// change, so the ETag is fixed.
#[utoipa::path(tag = "club-members", responses((status = 200, body = Entry, headers(("ETag" = String)))))]
#[get("/club/members/{id}/points/{entry_id}")]
async fn points_entry(
    _: Authorized<ClubRead>,
    mut conn: DbConn,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (member, entry) = path.into_inner();
    let row: EntryRow = points_entries::table
        .filter(points_entries::member_id.eq(MemberId::from(member)))
        .filter(points_entries::id.eq(EntryId::from(entry)))
        .select(EntryRow::as_select())
        .first(&mut conn)
        .await
        .optional()?
        .ok_or_else(|| ApiError::NotFound("no such entry in this member's ledger".into()))?;
    Ok(versioned(StatusCode::OK, &Entry::from(row), 1))
}

/// A change of tier.
#[derive(Debug, Serialize, ToSchema, Queryable)]
pub struct TierChange {
    pub id: Uuid,
    pub from_tier: Option<TierId>,
    pub to_tier: Option<TierId>,
    /// `qualified` (an upgrade), `review` (a downgrade at the window's end) or
    /// `tier withdrawn`.
    pub reason: String,
    pub changed_at: DateTime<Utc>,
}

/// The member's tier history, oldest first.
#[utoipa::path(tag = "club-members", responses((status = 200, body = Page<TierChange>)))]
#[get("/club/members/{id}/tier-changes")]
async fn tier_changes(
    _: Authorized<ClubRead>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<web::Json<Page<TierChange>>> {
    let member = find(&conn, MemberId::from(*id)).await?;
    let data = club_tier_changes::table
        .filter(club_tier_changes::member_id.eq(member.id))
        .order((club_tier_changes::changed_at, club_tier_changes::id))
        .select((
            club_tier_changes::id,
            club_tier_changes::from_tier,
            club_tier_changes::to_tier,
            club_tier_changes::reason,
            club_tier_changes::changed_at,
        ))
        .limit(1000)
        .load(&mut conn)
        .await?;
    Ok(web::Json(Page {
        data,
        next_cursor: None,
    }))
}

/// Merge step: the duplicate's membership becomes the survivor's; when both are members,
/// the duplicate's lots and debt move to the survivor's membership (an `adjust` entry on
/// each side keeps both ledgers adding up) and the duplicate's membership is cancelled.
pub fn merge<'c>(
    conn: &'c mut AsyncPgConnection,
    writer: &'c Writer,
    survivor: CustomerId,
    duplicate: CustomerId,
) -> BoxFuture<'c, ApiResult<()>> {
    Box::pin(async move {
        let Some(mut from) = MemberRow::lock_of_customer(conn, duplicate).await? else {
            return Ok(());
        };
        let Some(mut to) = MemberRow::lock_of_customer(conn, survivor).await? else {
            let locked = write::adopt(writer, from)?;
            let mut after = locked.to_change();
            after.customer_id = survivor;
            write::save(conn, writer, locked, after, MERGED).await?;
            return Ok(());
        };
        let now = Utc::now();
        ledger::transfer_all(conn, writer, &mut from, &mut to, now).await?;
        let locked = write::adopt(writer, from)?;
        let mut after = locked.to_change();
        after.status = MemberStatus::Cancelled;
        write::save(conn, writer, locked, after, MERGED).await?;
        Ok(())
    })
}

/// A membership moved or folded into the survivor's by a customer merge.
const MERGED: Action = Action::named("merged", "updated");
