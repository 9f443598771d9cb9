//! The member's own club routes (`docs/members.md`), with a customer's app's member token:
//! their points, the rewards on sale and redeeming them, the events open to their tier and
//! their registrations. Views are the member's own types: a ledger entry shows what happened
//! to the points, never who on the staff wrote it; an event shows seats left, not who holds
//! them. Writes go through the same functions as the staff's, so the rules are one.

use actix_web::{get, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;

use std::collections::HashMap;

use actix_web::HttpResponse;
use diesel::dsl::count_star;
use diesel_async::AsyncConnection;
use serde::Deserialize;
use uuid::Uuid;
use validator::Validate;

use super::MemberRow;
use super::events::{EventKind, EventRow};
use super::ledger::{self, Balances, EntryKind, EntryRow};
use super::registrations::{accept_offer, cancel_registration, seat};
use super::rewards::{Reward, redeem_for};
use super::seats::{Registration, RegistrationStatus};
use crate::auth::Me;
use crate::customers::api as customers;
use crate::db::DbConn;
use crate::db::keyset::{Direction, past};
use crate::db::schema::{
    club_events, club_members, club_registrations, club_reward_redemptions, club_rewards,
};
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::json::ValidJson;
use crate::http::pagination::{Page, PageParams};
use crate::http::query::Query;
use crate::kit::ids::{ClubEventId, EntryId, RegistrationId, RewardId, TierId};
use crate::kit::input::Whole;
use crate::kit::write::{self, Versioned, Writer};

crate::routes!(
    points,
    list_rewards,
    redeem_reward,
    list_events,
    get_event,
    register_for_event,
    cancel_my_registration,
    accept_offered_seat
);

/// The member's membership: `404` for a customer who is not in the club.
pub(super) async fn membership(conn: &mut AsyncPgConnection, me: &Me) -> ApiResult<MemberRow> {
    customers::member_customer(conn, me).await?;
    club_members::table
        .filter(club_members::customer_id.eq(me.customer))
        .select(MemberRow::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or_else(not_a_member)
}

/// The member's membership, locked for a write in the caller's transaction.
pub(super) async fn locked_membership(
    conn: &mut AsyncPgConnection,
    me: &Me,
) -> ApiResult<MemberRow> {
    customers::member_customer(conn, me).await?;
    MemberRow::lock_of_customer(conn, me.customer)
        .await?
        .ok_or_else(not_a_member)
}

fn not_a_member() -> ApiError {
    ApiError::NotFound("you are not a member of the club".into())
}

/// A ledger entry as its member sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberEntry {
    pub id: EntryId,
    pub kind: EntryKind,
    /// The change to the points (negative for spending, expiries and reversals).
    #[schema(example = 120)]
    pub points: i64,
    /// The spendable balance right after it.
    pub balance_after: i64,
    #[schema(example = "Order 10045")]
    pub reason: String,
    /// Earnings: when the points become spendable.
    pub available_at: Option<DateTime<Utc>>,
    /// Earnings: when they lapse.
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<EntryRow> for MemberEntry {
    fn from(row: EntryRow) -> Self {
        ledger::Entry::from(row).into()
    }
}

impl From<ledger::Entry> for MemberEntry {
    fn from(entry: ledger::Entry) -> Self {
        Self {
            id: entry.id,
            kind: entry.kind,
            points: entry.points,
            balance_after: entry.balance_after,
            reason: entry.reason,
            available_at: entry.available_at,
            expires_at: entry.expires_at,
            created_at: entry.created_at,
        }
    }
}

/// The member's points: balances now and the ledger, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberPoints {
    pub balances: Balances,
    /// The page of entries.
    pub data: Vec<MemberEntry>,
    pub next_cursor: Option<String>,
}

/// The member's balances and points ledger (`404` for a customer who is not in the club).
#[utoipa::path(tag = "members", params(PageParams), responses((status = 200, body = MemberPoints)))]
#[get("/me/points")]
async fn points(
    me: Me,
    mut conn: DbConn,
    page: Query<PageParams>,
) -> ApiResult<web::Json<MemberPoints>> {
    let member = membership(&mut conn, &me).await?;
    let balances = ledger::balances(&mut conn, &member, Utc::now()).await?;
    let page = super::members::ledger_page(&mut conn, member.id, &page, None)
        .await?
        .map(MemberEntry::from);
    Ok(web::Json(MemberPoints {
        balances,
        data: page.data,
        next_cursor: page.next_cursor,
    }))
}

/// A reward on sale, as a member sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberReward {
    pub id: RewardId,
    #[schema(example = "Shoe-care kit")]
    pub name: String,
    pub description: Option<String>,
    #[schema(example = 800)]
    pub points_cost: i64,
    /// Whether any is left.
    pub in_stock: bool,
    /// How many one member may redeem; absent: no limit.
    pub per_member_limit: Option<i32>,
    /// How many this member has redeemed.
    pub redeemed: i64,
}

#[derive(Serialize, Deserialize)]
struct RewardCursor(i64, Uuid);

/// The rewards on sale, cheapest first, with how many the member has redeemed of each.
#[utoipa::path(tag = "members", params(PageParams), responses((status = 200, body = Page<MemberReward>)))]
#[get("/me/rewards")]
async fn list_rewards(
    me: Me,
    mut conn: DbConn,
    page: Query<PageParams>,
) -> ApiResult<web::Json<Page<MemberReward>>> {
    let member = membership(&mut conn, &me).await?;
    let window = page.window::<RewardCursor>()?;
    let mut query = club_rewards::table
        .filter(club_rewards::deleted_at.is_null())
        .filter(club_rewards::active.eq(true))
        .select(Reward::as_select())
        .order((club_rewards::points_cost, club_rewards::id))
        .limit(window.fetch())
        .into_boxed();
    if let Some(RewardCursor(cost, id)) = window.after {
        query = query.filter(past(
            club_rewards::points_cost,
            club_rewards::id,
            (cost, id),
            Direction::Ascending,
        ));
    }
    let rows = query.load(&mut conn).await?;
    let ids: Vec<RewardId> = rows.iter().map(|r| r.id).collect();
    let taken: HashMap<RewardId, i64> = club_reward_redemptions::table
        .filter(club_reward_redemptions::member_id.eq(member.id))
        .filter(club_reward_redemptions::reward_id.eq_any(&ids))
        .group_by(club_reward_redemptions::reward_id)
        .select((club_reward_redemptions::reward_id, count_star()))
        .load::<(RewardId, i64)>(&mut conn)
        .await?
        .into_iter()
        .collect();
    Ok(web::Json(
        window
            .page(rows, |r| RewardCursor(r.points_cost, r.id.get()))
            .map(|r| MemberReward {
                in_stock: r.stock != Some(0),
                redeemed: taken.get(&r.id).copied().unwrap_or(0),
                id: r.id,
                name: r.name,
                description: r.description,
                points_cost: r.points_cost,
                per_member_limit: r.per_member_limit,
            }),
    ))
}

/// Body of `POST /me/rewards/{id}/redemptions`.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRedemptionRequest {
    /// The spendable balance the app last showed: `409` when it has changed since (another
    /// till or device spent or earned meanwhile).
    #[validate(nested)]
    pub expected_balance: Option<Whole<0, { i64::MAX }>>,
}

/// A reward the member redeemed.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberRedemption {
    pub id: Uuid,
    pub reward_id: RewardId,
    pub points: i64,
    /// The ledger's debit.
    pub entry: MemberEntry,
    pub created_at: DateTime<Utc>,
}

/// Spend points on a reward: the points and the stock in one transaction.
#[utoipa::path(
    tag = "members",
    request_body(content = MemberRedemptionRequest, example = json!({"expected_balance": 1520})),
    responses(
        (status = 201, description = "Redeemed", body = MemberRedemption),
        (status = 409, description = "Out of stock, not on sale, over the limit per member, not enough points, a stale `expected_balance`, or the membership is not active", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/me/rewards/{id}/redemptions")]
async fn redeem_reward(
    me: Me,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    body: ValidJson<MemberRedemptionRequest>,
) -> ApiResult<HttpResponse> {
    let expected = body.0.expected_balance.map(Whole::get);
    let writer = Writer::of(&me.principal);
    let id = RewardId::from(*id);
    let me = &me;
    let redemption = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let member = locked_membership(conn, me).await?;
            redeem_for(conn, &writer, &member, id, expected).await
        })
        .await?;
    Ok(HttpResponse::Created().json(MemberRedemption {
        id: redemption.id,
        reward_id: redemption.reward_id,
        points: redemption.points,
        entry: redemption.entry.into(),
        created_at: redemption.created_at,
    }))
}

/// A registration as its member sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberRegistration {
    pub id: RegistrationId,
    pub event_id: ClubEventId,
    pub status: RegistrationStatus,
    /// While `offered`: accept before then, or the seat goes to the next in line.
    pub offer_expires_at: Option<DateTime<Utc>>,
    pub checked_in_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Registration> for MemberRegistration {
    fn from(r: Registration) -> Self {
        Self {
            id: r.id,
            event_id: r.event_id,
            status: r.status,
            offer_expires_at: r.offer_expires_at,
            checked_in_at: r.checked_in_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A club event open to the member, with their registration.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberEvent {
    pub id: ClubEventId,
    #[schema(example = "Annual customer service conference")]
    pub title: String,
    pub kind: EventKind,
    pub description: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub place: String,
    /// Points for checking in.
    pub attendance_points: i64,
    /// Seats not yet taken (registering when none are left joins the waitlist).
    pub seats_left: i64,
    /// The member's latest registration for it, if any.
    pub registration: Option<MemberRegistration>,
}

/// The member's views of `rows`: seats left and the member's registration, in two queries.
async fn member_events(
    conn: &mut AsyncPgConnection,
    member: &MemberRow,
    rows: Vec<EventRow>,
) -> ApiResult<Vec<MemberEvent>> {
    let ids: Vec<ClubEventId> = rows.iter().map(|e| e.id).collect();
    let taken: HashMap<ClubEventId, i64> = club_registrations::table
        .filter(club_registrations::event_id.eq_any(&ids))
        .filter(club_registrations::status.eq_any(RegistrationStatus::SEATED))
        .group_by(club_registrations::event_id)
        .select((club_registrations::event_id, count_star()))
        .load::<(ClubEventId, i64)>(conn)
        .await?
        .into_iter()
        .collect();
    let mut mine: HashMap<ClubEventId, Registration> = HashMap::new();
    let registrations: Vec<Registration> = club_registrations::table
        .filter(club_registrations::event_id.eq_any(&ids))
        .filter(club_registrations::member_id.eq(member.id))
        .order((club_registrations::created_at, club_registrations::id))
        .select(Registration::as_select())
        .load(conn)
        .await?;
    for r in registrations {
        mine.insert(r.event_id, r);
    }
    Ok(rows
        .into_iter()
        .map(|e| MemberEvent {
            seats_left: (i64::from(e.capacity) - taken.get(&e.id).copied().unwrap_or(0)).max(0),
            registration: mine.remove(&e.id).map(MemberRegistration::from),
            id: e.id,
            title: e.title,
            kind: e.kind,
            description: e.description,
            starts_at: e.starts_at,
            ends_at: e.ends_at,
            place: e.place,
            attendance_points: e.attendance_points,
        })
        .collect())
}

#[derive(Serialize, Deserialize)]
struct EventCursor(DateTime<Utc>, Uuid);

/// The club events open to the member's tier that have not ended, soonest first, each with
/// the member's registration.
#[utoipa::path(tag = "members", params(PageParams), responses((status = 200, body = Page<MemberEvent>)))]
#[get("/me/events")]
async fn list_events(
    me: Me,
    mut conn: DbConn,
    page: Query<PageParams>,
) -> ApiResult<web::Json<Page<MemberEvent>>> {
    let member = membership(&mut conn, &me).await?;
    let window = page.window::<EventCursor>()?;
    let mut query = club_events::table
        .filter(club_events::deleted_at.is_null())
        .filter(club_events::ends_at.gt(Utc::now()))
        .select(EventRow::as_select())
        .order((club_events::starts_at, club_events::id))
        .limit(window.fetch())
        .into_boxed();
    let every_member = club_events::tiers_invited.eq(Vec::<TierId>::new());
    query = match member.tier_id {
        Some(tier) => {
            query.filter(every_member.or(club_events::tiers_invited.contains(vec![tier])))
        }
        None => query.filter(every_member),
    };
    if let Some(EventCursor(at, id)) = window.after {
        query = query.filter(past(
            club_events::starts_at,
            club_events::id,
            (at, id),
            Direction::Ascending,
        ));
    }
    let rows = query.load(&mut conn).await?;
    let page = window.page(rows, |e| EventCursor(e.starts_at, e.id.get()));
    let data = member_events(&mut conn, &member, page.data).await?;
    Ok(web::Json(Page {
        data,
        next_cursor: page.next_cursor,
    }))
}

/// An event open to the member (past ones too), with their registration; `404` for one not
/// open to their tier.
#[utoipa::path(tag = "members", responses((status = 200, body = MemberEvent)))]
#[get("/me/events/{id}")]
async fn get_event(
    me: Me,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<web::Json<MemberEvent>> {
    let member = membership(&mut conn, &me).await?;
    let row = write::live::<EventRow>(&mut conn, ClubEventId::from(*id)).await?;
    if !row.invites(&member) {
        return Err(no_such_event());
    }
    let mut views = member_events(&mut conn, &member, vec![row]).await?;
    Ok(web::Json(views.remove(0)))
}

fn no_such_event() -> ApiError {
    ApiError::NotFound("no such event".into())
}

/// Register for an event: a seat while there are any (`registered`), else the waitlist
/// (`waitlisted`, ordered by tier, then arrival).
#[utoipa::path(
    tag = "members",
    responses(
        (status = 201, description = "Registered or waitlisted", body = MemberRegistration, headers(("Location" = String))),
        (status = 409, description = "The event is over, the membership is not active, or the member is registered already", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/me/events/{id}/registrations")]
async fn register_for_event(
    me: Me,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&me.principal);
    let id = ClubEventId::from(*id);
    let me = &me;
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let row = <EventRow as Versioned>::lock(conn, id).await?;
            let member = locked_membership(conn, me).await?;
            if !row.invites(&member) {
                return Err(no_such_event());
            }
            seat(conn, &writer, &row, &member, "membership").await
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/me/events/{}", saved.event_id)))
        .json(MemberRegistration::from(saved)))
}

/// The member's own registration: `404` for anyone else's.
async fn own_registration(
    conn: &mut AsyncPgConnection,
    me: &Me,
    id: Uuid,
) -> ApiResult<Registration> {
    let member = membership(conn, me).await?;
    club_registrations::table
        .find(RegistrationId::from(id))
        .filter(club_registrations::member_id.eq(member.id))
        .select(Registration::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| ApiError::NotFound("no such registration".into()))
}

/// Cancel a registration: the seat (or the offer) goes to the next in line; a waitlisted
/// member leaves the waitlist.
#[utoipa::path(
    tag = "members",
    responses(
        (status = 200, body = MemberRegistration),
        (status = 409, description = "Attended, cancelled or left already (`allowed` lists the moves it can make)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/me/registrations/{id}/cancel")]
async fn cancel_my_registration(
    me: Me,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<web::Json<MemberRegistration>> {
    let found = own_registration(&mut conn, &me, *id).await?;
    let writer = Writer::of(&me.principal);
    let saved = cancel_registration(&mut conn, &writer, found.event_id, found.id).await?;
    Ok(web::Json(saved.into()))
}

/// Take up an offered seat before the offer expires.
#[utoipa::path(
    tag = "members",
    responses(
        (status = 200, body = MemberRegistration),
        (status = 409, description = "No seat is offered, or the offer expired (the seat went to the next in line)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/me/registrations/{id}/accept")]
async fn accept_offered_seat(
    me: Me,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<web::Json<MemberRegistration>> {
    let found = own_registration(&mut conn, &me, *id).await?;
    let writer = Writer::of(&me.principal);
    let saved = accept_offer(&mut conn, &writer, found.event_id, found.id).await?;
    Ok(web::Json(saved.into()))
}
