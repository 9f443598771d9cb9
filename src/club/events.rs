//! `/api/v1/club/events`: club activities (客户俱乐部: gatherings, seminars, award meetings,
//! the annual service conference, factory visits) with a capacity, the tiers invited and
//! points for attending. Registrations fill the seats, then a waitlist ordered by tier (best
//! first) and arrival; a freed seat is offered to the first in line in the same transaction,
//! and an offer not accepted in time moves on (`jobs`). Checking in twice earns once.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use super::seats::{offer_free_seats, seats_taken};
use crate::auth::{Authorized, ClubManage, ClubRead};
use crate::db::DbConn;
use crate::db::keyset::{Direction, past};
use crate::db::schema::club_events;
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::etag::IfMatch;
use crate::http::json::ValidJson;
use crate::http::pagination::{Page, PageParams};
use crate::http::query::Query;
use crate::kit::ids::{ClubEventId, TierId};
use crate::kit::input::ensure_within;
use crate::kit::input::{Items, Text, Whole};
use crate::kit::write::{self, Action, Writer, created_in, current};
use crate::text_enum;

crate::routes!(create, list, get_one, update, remove);

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

impl EventRow {
    /// Whether the event is open to the member: its tiers include theirs, or it invites every
    /// member. Registration checks it; a member's own event list shows only these.
    pub fn invites(&self, member: &super::MemberRow) -> bool {
        self.tiers_invited.is_empty()
            || member
                .tier_id
                .is_some_and(|t| self.tiers_invited.contains(&t))
    }
}

crate::soft_deleted_row! {
    impl Versioned for EventRow in club_events {
        const KIND: &'static str = "club_event";
        type Id = ClubEventId;
    }
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

/// The longest a club event may last.
const LONGEST_EVENT_DAYS: i64 = 31;

/// `422` naming the field unless the event's times make one: the start within a year back
/// and five years ahead, the end after it and at most a month later.
fn ensure_times(event: &EventRow) -> ApiResult<()> {
    let now = Utc::now();
    ensure_within(
        "starts_at",
        event.starts_at,
        now - Duration::days(366),
        now + Duration::days(5 * 366),
    )?;
    if event.ends_at <= event.starts_at {
        return Err(ApiError::invalid(
            "ends_at",
            "range",
            "must be after starts_at",
        ));
    }
    if event.ends_at - event.starts_at > Duration::days(LONGEST_EVENT_DAYS) {
        return Err(ApiError::invalid(
            "ends_at",
            "range",
            format!("an event lasts at most {LONGEST_EVENT_DAYS} days"),
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
    let (saved, ()) = write::change(
        &mut conn,
        &writer,
        id,
        &if_match,
        Action::UPDATED,
        async |conn, after: &mut EventRow| {
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
            ensure_times(after)?;
            // A larger capacity offers the freed seats in the same transaction.
            offer_free_seats(conn, &writer, id, after.capacity, Utc::now()).await?;
            Ok(())
        },
    )
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
