//! `/api/v1/club/events`: club activities (客户俱乐部: gatherings, seminars, award meetings,
//! the annual service conference, factory visits) with a capacity, the tiers invited and
//! points for attending. Registrations fill the seats, then a waitlist ordered by tier (best
//! first) and arrival; a freed seat is offered to the first in line in the same transaction,
//! and an offer not accepted in time moves on (`jobs`). Checking in twice earns once.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use super::ledger;
use super::settings::SettingsRow;
use super::tiers::Ladder;
use super::{MemberRow, MemberStatus};
use crate::audit::Subject;
use crate::auth::{Authorized, ClubManage, ClubRead, ClubWrite};
use crate::db::DbConn;
use crate::db::keyset::{Direction, past};
use crate::db::schema::{club_events, club_members, club_registrations};
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::etag::{IfMatch, created_in, current};
use crate::http::json::ValidJson;
use crate::http::pagination::{Page, PageParams};
use crate::http::query::Query;
use crate::kit::ids::{ClubEventId, CustomerId, MemberId, RegistrationId, TierId};
use crate::kit::input::{Items, Text, Whole};
use crate::kit::workflow::ensure_move;
use crate::kit::write::{self, Action, Entry, Versioned, Writer};
use crate::text_enum;

crate::routes!(
    create,
    list,
    get_one,
    update,
    remove,
    register,
    registrations,
    cancel,
    accept,
    check_in
);

text_enum! {
    /// What kind of club activity.
    pub enum EventKind as ClubEventKind {
        Gathering = "gathering",
        Seminar = "seminar",
        AwardMeeting = "award_meeting",
        ServiceConference = "service_conference",
        FactoryVisit = "factory_visit",
    }
}

text_enum! {
    /// Where a registration stands.
    pub enum RegistrationStatus {
        /// Holds a seat.
        Registered = "registered",
        /// In line for a seat.
        Waitlisted = "waitlisted",
        /// A freed seat is held for them until `offer_expires_at`.
        Offered = "offered",
        /// Checked in at the event.
        Attended = "attended",
        /// Gave up the seat (or the offer).
        Cancelled = "cancelled",
        /// Left the waitlist.
        Left = "left",
        /// Did not take up the offer in time.
        OfferExpired = "offer_expired",
    }
}

crate::workflow! {
    RegistrationStatus:
        (Registered, Attended | Cancelled)
            | (Waitlisted, Offered | Left)
            | (Offered, Registered | Cancelled | OfferExpired)
}

impl RegistrationStatus {
    /// The statuses that hold a seat.
    const SEATED: [&'static str; 3] = ["registered", "offered", "attended"];
}

/// A club event row, and how the API shows it.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize, ToSchema)]
#[diesel(table_name = club_events, treat_none_as_null = true)]
#[schema(as = ClubEvent)]
pub struct EventRow {
    pub id: ClubEventId,
    #[schema(example = "Annual customer service conference")]
    pub title: String,
    pub kind: EventKind,
    pub description: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    #[schema(example = "Factory hall 2, Ningbo")]
    pub place: String,
    pub capacity: i32,
    /// The tiers invited; empty: every member.
    pub tiers_invited: Vec<TierId>,
    /// Earned once by each member who checks in.
    pub attendance_points: i64,
    #[serde(skip)]
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub deleted_at: Option<DateTime<Utc>>,
}

crate::soft_deleted!(EventRow, club_events);

impl Versioned for EventRow {
    const KIND: &'static str = "club_event";
    type Id = ClubEventId;

    crate::live_row!(club_events);
}

/// Body of `POST /club/events`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    #[validate(nested)]
    pub title: Text<1, 200>,
    pub kind: EventKind,
    #[validate(nested)]
    pub description: Option<Text<1, 5000>>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    #[validate(nested)]
    pub place: Text<1, 500>,
    #[validate(nested)]
    pub capacity: Whole<1, 100_000>,
    #[validate(nested)]
    pub tiers_invited: Option<Items<TierId, 0, 20>>,
    #[validate(nested)]
    pub attendance_points: Option<Whole<0, 1_000_000>>,
}

/// Body of `PATCH /club/events/{id}`. A larger capacity offers the new seats at once.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventPatch {
    #[validate(nested)]
    pub title: Option<Text<1, 200>>,
    pub kind: Option<EventKind>,
    #[validate(nested)]
    pub description: Option<Text<1, 5000>>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    #[validate(nested)]
    pub place: Option<Text<1, 500>>,
    #[validate(nested)]
    pub capacity: Option<Whole<1, 100_000>>,
    #[validate(nested)]
    pub tiers_invited: Option<Items<TierId, 0, 20>>,
    #[validate(nested)]
    pub attendance_points: Option<Whole<0, 1_000_000>>,
}

fn ensure_times(event: &EventRow) -> ApiResult<()> {
    if event.ends_at <= event.starts_at {
        return Err(ApiError::invalid(
            "ends_at",
            "range",
            "must be after starts_at",
        ));
    }
    Ok(())
}

/// Add a club event.
#[utoipa::path(
    tag = "club-events",
    request_body(content = NewEvent, example = json!({
        "title": "Factory visit", "kind": "factory_visit", "starts_at": "2027-03-06T01:00:00Z", "ends_at": "2027-03-06T06:00:00Z",
        "place": "Factory hall 2", "capacity": 40, "attendance_points": 200
    })),
    responses((status = 201, description = "Added", body = EventRow, headers(("Location" = String), ("ETag" = String))))
)]
#[post("/club/events")]
async fn create(
    caller: Authorized<ClubManage>,
    mut conn: DbConn,
    body: ValidJson<NewEvent>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let now = Utc::now();
    let row = EventRow {
        id: ClubEventId::new(),
        title: b.title.into_inner(),
        kind: b.kind,
        description: b.description.map(Text::into_inner),
        starts_at: b.starts_at,
        ends_at: b.ends_at,
        place: b.place.into_inner(),
        capacity: b.capacity.get() as i32,
        tiers_invited: b.tiers_invited.map(Items::into_inner).unwrap_or_default(),
        attendance_points: b.attendance_points.map_or(0, Whole::get),
        version: 1,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    ensure_times(&row)?;
    let saved = write::create_single(&mut conn, &Writer::of(&caller.principal), row).await?;
    Ok(created_in("club/events", &saved))
}

/// Filters of `GET /club/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilters {
    /// Events starting at or after this time (default: all).
    pub from: Option<DateTime<Utc>>,
    pub kind: Option<EventKind>,
}

#[derive(Serialize, Deserialize)]
struct EventCursor(DateTime<Utc>, Uuid);

/// The club's events, soonest first.
#[utoipa::path(tag = "club-events", params(PageParams, EventFilters), responses((status = 200, body = Page<EventRow>)))]
#[get("/club/events")]
async fn list(
    _: Authorized<ClubRead>,
    mut conn: DbConn,
    page: Query<PageParams>,
    filters: Query<EventFilters>,
) -> ApiResult<web::Json<Page<EventRow>>> {
    let window = page.window::<EventCursor>()?;
    let mut query = club_events::table
        .filter(club_events::deleted_at.is_null())
        .select(EventRow::as_select())
        .order((club_events::starts_at, club_events::id))
        .limit(window.fetch())
        .into_boxed();
    if let Some(EventCursor(at, id)) = window.after {
        query = query.filter(past(
            club_events::starts_at,
            club_events::id,
            (at, id),
            Direction::Ascending,
        ));
    }
    if let Some(from) = filters.from {
        query = query.filter(club_events::starts_at.ge(from));
    }
    if let Some(kind) = filters.kind {
        query = query.filter(club_events::kind.eq(kind));
    }
    let rows = query.load(&mut conn).await?;
    Ok(web::Json(
        window.page(rows, |e| EventCursor(e.starts_at, e.id.get())),
    ))
}

/// A club event.
#[utoipa::path(tag = "club-events", responses((status = 200, body = EventRow, headers(("ETag" = String)))))]
#[get("/club/events/{id}")]
async fn get_one(
    _: Authorized<ClubRead>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let row = write::live::<EventRow>(&mut conn, ClubEventId::from(*id)).await?;
    Ok(current(&row))
}

/// Change a club event; added seats go to the waitlist at once.
#[utoipa::path(
    tag = "club-events",
    request_body = EventPatch,
    responses(
        (status = 200, body = EventRow, headers(("ETag" = String))),
        (status = 409, description = "The capacity is below the seats taken", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/club/events/{id}")]
async fn update(
    caller: Authorized<ClubManage>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<EventPatch>,
) -> ApiResult<HttpResponse> {
    let p = body.0;
    let writer = Writer::of(&caller.principal);
    let id = ClubEventId::from(*id);
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let locked = write::lock::<EventRow>(conn, &writer, id, &if_match).await?;
            let mut after = locked.to_change();
            if let Some(t) = p.title {
                after.title = t.into_inner();
            }
            if let Some(k) = p.kind {
                after.kind = k;
            }
            if let Some(d) = p.description {
                after.description = Some(d.into_inner());
            }
            if let Some(s) = p.starts_at {
                after.starts_at = s;
            }
            if let Some(e) = p.ends_at {
                after.ends_at = e;
            }
            if let Some(place) = p.place {
                after.place = place.into_inner();
            }
            if let Some(c) = p.capacity {
                after.capacity = c.get() as i32;
                let taken = seats_taken(conn, id).await?;
                if i64::from(after.capacity) < taken {
                    return Err(ApiError::rule(
                        "capacity",
                        "below_taken",
                        format!("{taken} seats are taken"),
                    ));
                }
            }
            if let Some(t) = p.tiers_invited {
                after.tiers_invited = t.into_inner();
            }
            if let Some(points) = p.attendance_points {
                after.attendance_points = points.get();
            }
            ensure_times(&after)?;
            let saved = write::save(conn, &writer, locked, after, Action::UPDATED).await?;
            offer_free_seats(conn, &writer, &saved, Utc::now()).await?;
            Ok(saved)
        })
        .await?;
    Ok(current(&saved))
}

/// Cancel a club event (its registrations stay, for the record).
#[utoipa::path(tag = "club-events", responses((status = 204, description = "Cancelled")))]
#[delete("/club/events/{id}")]
async fn remove(
    caller: Authorized<ClubManage>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&caller.principal);
    write::remove_single::<EventRow>(&mut conn, &writer, ClubEventId::from(*id), &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A registration row, and how the API shows it.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = club_registrations)]
pub struct Registration {
    pub id: RegistrationId,
    pub event_id: ClubEventId,
    pub member_id: MemberId,
    pub status: RegistrationStatus,
    /// Waitlist order: the member's tier rank (higher first), then arrival.
    pub priority: i32,
    /// While `offered`: the seat is held until then.
    pub offer_expires_at: Option<DateTime<Utc>>,
    pub checked_in_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

async fn seats_taken(conn: &mut AsyncPgConnection, event: ClubEventId) -> ApiResult<i64> {
    Ok(club_registrations::table
        .filter(club_registrations::event_id.eq(event))
        .filter(club_registrations::status.eq_any(RegistrationStatus::SEATED))
        .count()
        .get_result(conn)
        .await?)
}

/// Moves a registration (the event is locked by the caller), announced as
/// `registration.<status>`.
async fn set_status(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    registration: &Registration,
    status: RegistrationStatus,
    offer_expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> ApiResult<Registration> {
    let saved: Registration = diesel::update(club_registrations::table.find(registration.id))
        .set((
            club_registrations::status.eq(status),
            club_registrations::offer_expires_at.eq(offer_expires_at),
            club_registrations::checked_in_at.eq(if status == RegistrationStatus::Attended {
                Some(now)
            } else {
                registration.checked_in_at
            }),
            club_registrations::version.eq(registration.version + 1),
            club_registrations::updated_at.eq(now),
        ))
        .returning(Registration::as_returning())
        .get_result(conn)
        .await?;
    announce(
        conn,
        writer,
        &saved,
        status.as_str(),
        json!({"status": {"old": registration.status, "new": status}}),
    )
    .await?;
    Ok(saved)
}

async fn announce(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    registration: &Registration,
    what: &'static str,
    changes: Value,
) -> ApiResult<()> {
    let customer: CustomerId = club_members::table
        .find(registration.member_id)
        .select(club_members::customer_id)
        .first(conn)
        .await?;
    Entry {
        subject: Subject {
            entity_type: "registration",
            entity_id: registration.id.get(),
            customer_id: Some(customer),
        },
        event_type: format!("registration.{what}"),
        audit_action: what,
    }
    .record(
        conn,
        writer,
        changes,
        serde_json::to_value(registration).unwrap_or_default(),
    )
    .await
}

/// Offers the event's free seats to the waitlist, best tier then first come, each held for
/// the club's offer time. The caller holds the event's lock.
pub async fn offer_free_seats(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    event: &EventRow,
    now: DateTime<Utc>,
) -> ApiResult<usize> {
    let free = i64::from(event.capacity) - seats_taken(conn, event.id).await?;
    if free <= 0 {
        return Ok(0);
    }
    let next: Vec<Registration> = club_registrations::table
        .filter(club_registrations::event_id.eq(event.id))
        .filter(club_registrations::status.eq(RegistrationStatus::Waitlisted))
        .order((
            club_registrations::priority.desc(),
            club_registrations::created_at,
            club_registrations::id,
        ))
        .limit(free)
        .select(Registration::as_select())
        .for_update()
        .load(conn)
        .await?;
    let hold = SettingsRow::load(conn).await?.offer_hold();
    for registration in &next {
        set_status(
            conn,
            writer,
            registration,
            RegistrationStatus::Offered,
            Some(now + hold),
            now,
        )
        .await?;
    }
    Ok(next.len())
}

/// Body of `POST /club/events/{id}/registrations`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRegistration {
    pub member_id: MemberId,
}

/// Register a member: a seat while there are any (`registered`), else the waitlist
/// (`waitlisted`).
#[utoipa::path(
    tag = "club-events",
    request_body(content = NewRegistration, example = json!({"member_id": "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"})),
    responses(
        (status = 201, description = "Registered or waitlisted", body = Registration),
        (status = 409, description = "No such member, the membership is not active, the member's tier is not invited, the event is over, or the member is registered already", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/club/events/{id}/registrations")]
async fn register(
    caller: Authorized<ClubWrite>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    body: ValidJson<NewRegistration>,
) -> ApiResult<HttpResponse> {
    let member_id = body.0.member_id;
    let writer = Writer::of(&caller.principal);
    let id = ClubEventId::from(*id);
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let event = <EventRow as Versioned>::lock(conn, id).await?;
            let now = Utc::now();
            if event.ends_at <= now {
                return Err(ApiError::Conflict("the event is over".into()));
            }
            let member = MemberRow::lock_referenced(conn, member_id, "member_id").await?;
            if member.status != MemberStatus::Active {
                return Err(ApiError::rule(
                    "member_id",
                    "not_active",
                    format!("the membership is {}", member.status),
                ));
            }
            if !event.tiers_invited.is_empty()
                && !member
                    .tier_id
                    .is_some_and(|t| event.tiers_invited.contains(&t))
            {
                return Err(ApiError::rule(
                    "member_id",
                    "not_invited",
                    "the member's tier is not invited to this event",
                ));
            }
            let taken = seats_taken(conn, id).await?;
            let status = if taken < i64::from(event.capacity) {
                RegistrationStatus::Registered
            } else {
                RegistrationStatus::Waitlisted
            };
            let rank = Ladder::load(conn)
                .await?
                .get(member.tier_id)
                .map_or(0, |t| t.rank);
            let registration: Registration = diesel::insert_into(club_registrations::table)
                .values((
                    club_registrations::id.eq(RegistrationId::new()),
                    club_registrations::event_id.eq(id),
                    club_registrations::member_id.eq(member.id),
                    club_registrations::status.eq(status),
                    club_registrations::priority.eq(rank),
                    club_registrations::created_at.eq(now),
                    club_registrations::updated_at.eq(now),
                ))
                .returning(Registration::as_returning())
                .get_result(conn)
                .await
                .map_err(|e| match ApiError::from(e) {
                    ApiError::Conflict(_) => ApiError::rule(
                        "member_id",
                        "already_registered",
                        "the member is registered or waitlisted for this event already",
                    ),
                    other => other,
                })?;
            announce(
                conn,
                &writer,
                &registration,
                status.as_str(),
                json!({"status": {"old": null, "new": status}}),
            )
            .await?;
            Ok(registration)
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            "Location",
            format!(
                "/api/v1/club/events/{}/registrations/{}",
                saved.event_id, saved.id
            ),
        ))
        .json(saved))
}

/// Filters of the registrations.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RegistrationFilters {
    pub status: Option<RegistrationStatus>,
}

#[derive(Serialize, Deserialize)]
struct RegistrationCursor(DateTime<Utc>, Uuid);

/// The event's registrations, first come first.
#[utoipa::path(tag = "club-events", params(PageParams, RegistrationFilters), responses((status = 200, body = Page<Registration>)))]
#[get("/club/events/{id}/registrations")]
async fn registrations(
    _: Authorized<ClubRead>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    page: Query<PageParams>,
    filters: Query<RegistrationFilters>,
) -> ApiResult<web::Json<Page<Registration>>> {
    let window = page.window::<RegistrationCursor>()?;
    let mut query = club_registrations::table
        .filter(club_registrations::event_id.eq(ClubEventId::from(*id)))
        .select(Registration::as_select())
        .order((club_registrations::created_at, club_registrations::id))
        .limit(window.fetch())
        .into_boxed();
    if let Some(RegistrationCursor(at, rid)) = window.after {
        query = query.filter(past(
            club_registrations::created_at,
            club_registrations::id,
            (at, rid),
            Direction::Ascending,
        ));
    }
    if let Some(status) = filters.status {
        query = query.filter(club_registrations::status.eq(status));
    }
    let rows = query.load(&mut conn).await?;
    Ok(web::Json(window.page(rows, |r| {
        RegistrationCursor(r.created_at, r.id.get())
    })))
}

/// The event (locked) and one of its registrations (locked).
async fn lock_registration(
    conn: &mut AsyncPgConnection,
    event: ClubEventId,
    registration: RegistrationId,
) -> ApiResult<(EventRow, Registration)> {
    let event = <EventRow as Versioned>::lock(conn, event).await?;
    let registration: Registration = club_registrations::table
        .find(registration)
        .filter(club_registrations::event_id.eq(event.id))
        .select(Registration::as_select())
        .for_update()
        .first(conn)
        .await?;
    Ok((event, registration))
}

/// Cancel a registration: a seat (or an offer) is given up and offered to the next in line
/// in the same transaction; a waitlisted member leaves the waitlist.
#[utoipa::path(
    tag = "club-events",
    params(("id" = Uuid, Path, description = "The event"), ("rid" = Uuid, Path, description = "The registration")),
    responses(
        (status = 200, body = Registration),
        (status = 409, description = "Attended, cancelled or left already (`allowed` lists the moves it can make)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/club/events/{id}/registrations/{rid}/cancel")]
async fn cancel(
    caller: Authorized<ClubWrite>,
    mut conn: DbConn,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<Registration>> {
    let (event, rid) = path.into_inner();
    let writer = Writer::of(&caller.principal);
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let (event, registration) = lock_registration(conn, event.into(), rid.into()).await?;
            let next = if registration.status == RegistrationStatus::Waitlisted {
                RegistrationStatus::Left
            } else {
                RegistrationStatus::Cancelled
            };
            ensure_move("a registration", registration.status, next)?;
            let now = Utc::now();
            let saved = set_status(conn, &writer, &registration, next, None, now).await?;
            offer_free_seats(conn, &writer, &event, now).await?;
            Ok(saved)
        })
        .await?;
    Ok(web::Json(saved))
}

/// Take up an offered seat before the offer expires.
#[utoipa::path(
    tag = "club-events",
    params(("id" = Uuid, Path, description = "The event"), ("rid" = Uuid, Path, description = "The registration")),
    responses(
        (status = 200, body = Registration),
        (status = 409, description = "No seat is offered (or the offer expired; `allowed` lists the moves it can make)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/club/events/{id}/registrations/{rid}/accept")]
async fn accept(
    caller: Authorized<ClubWrite>,
    mut conn: DbConn,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<Registration>> {
    let (event, rid) = path.into_inner();
    let writer = Writer::of(&caller.principal);
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let (event, registration) = lock_registration(conn, event.into(), rid.into()).await?;
            let now = Utc::now();
            if registration.status == RegistrationStatus::Offered
                && registration.offer_expires_at.is_some_and(|at| at <= now)
            {
                let expired = set_status(
                    conn,
                    &writer,
                    &registration,
                    RegistrationStatus::OfferExpired,
                    None,
                    now,
                )
                .await?;
                offer_free_seats(conn, &writer, &event, now).await?;
                return Ok(Err(expired));
            }
            ensure_move(
                "a registration",
                registration.status,
                RegistrationStatus::Registered,
            )?;
            set_status(
                conn,
                &writer,
                &registration,
                RegistrationStatus::Registered,
                None,
                now,
            )
            .await
            .map(Ok)
        })
        .await?;
    match saved {
        Ok(registration) => Ok(web::Json(registration)),
        // The expiry is committed (the seat moved on); the caller learns it was too late.
        Err(expired) => Err(ApiError::IllegalMove {
            detail: format!(
                "the offer expired at {}; the seat went to the next in line",
                expired.offer_expires_at.unwrap_or(expired.updated_at)
            ),
            allowed: Vec::new(),
        }),
    }
}

/// Check a registered member in: once, earning the event's attendance points once (a second
/// check-in answers the same registration).
#[utoipa::path(
    tag = "club-events",
    params(("id" = Uuid, Path, description = "The event"), ("rid" = Uuid, Path, description = "The registration")),
    responses(
        (status = 200, body = Registration),
        (status = 409, description = "Not registered (`allowed` lists the moves it can make)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/club/events/{id}/registrations/{rid}/check-in")]
async fn check_in(
    caller: Authorized<ClubWrite>,
    mut conn: DbConn,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<Registration>> {
    let (event, rid) = path.into_inner();
    let writer = Writer::of(&caller.principal);
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let (event, registration) = lock_registration(conn, event.into(), rid.into()).await?;
            if registration.status == RegistrationStatus::Attended {
                return Ok(registration);
            }
            ensure_move(
                "a registration",
                registration.status,
                RegistrationStatus::Attended,
            )?;
            let now = Utc::now();
            let saved = set_status(
                conn,
                &writer,
                &registration,
                RegistrationStatus::Attended,
                None,
                now,
            )
            .await?;
            if event.attendance_points > 0 {
                let mut member = MemberRow::lock(conn, registration.member_id).await?;
                if member.status == MemberStatus::Active {
                    let reason = format!("attended {}", event.title);
                    let reference = format!("event:{}", event.id);
                    ledger::credit_bonus(
                        conn,
                        &writer,
                        &mut member,
                        event.attendance_points,
                        reason,
                        reference,
                        now,
                    )
                    .await?;
                }
            }
            Ok(saved)
        })
        .await?;
    Ok(web::Json(saved))
}

/// One transaction of the offer job: expires up to `limit` offers past their time whose
/// events no one else holds, and offers the seats on. Returns how many expired.
pub async fn expire_offers_batch(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> ApiResult<usize> {
    let writer = Writer::system();
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let events: Vec<ClubEventId> = club_events::table
            .filter(club_events::deleted_at.is_null())
            .filter(diesel::dsl::exists(
                club_registrations::table
                    .filter(club_registrations::event_id.eq(club_events::id))
                    .filter(club_registrations::status.eq(RegistrationStatus::Offered))
                    .filter(club_registrations::offer_expires_at.le(now)),
            ))
            .select(club_events::id)
            .limit(limit)
            .for_update()
            .skip_locked()
            .load(conn)
            .await?;
        let mut expired = 0;
        for id in events {
            let event: EventRow = club_events::table
                .find(id)
                .select(EventRow::as_select())
                .first(conn)
                .await?;
            let lapsed: Vec<Registration> = club_registrations::table
                .filter(club_registrations::event_id.eq(id))
                .filter(club_registrations::status.eq(RegistrationStatus::Offered))
                .filter(club_registrations::offer_expires_at.le(now))
                .select(Registration::as_select())
                .for_update()
                .load(conn)
                .await?;
            for registration in &lapsed {
                set_status(
                    conn,
                    &writer,
                    registration,
                    RegistrationStatus::OfferExpired,
                    None,
                    now,
                )
                .await?;
            }
            expired += lapsed.len();
            offer_free_seats(conn, &writer, &event, now).await?;
        }
        Ok(expired)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::RegistrationStatus::{self, *};
    use crate::kit::workflow::Workflow;

    #[test]
    fn registration_moves() {
        let allowed = |s: RegistrationStatus| s.allowed();
        assert_eq!(allowed(Registered), vec![Attended, Cancelled]);
        assert_eq!(allowed(Waitlisted), vec![Offered, Left]);
        assert_eq!(allowed(Offered), vec![Registered, Cancelled, OfferExpired]);
        for done in [Attended, Cancelled, Left, OfferExpired] {
            assert!(allowed(done).is_empty(), "{done} is final");
        }
    }
}
