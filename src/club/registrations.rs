//! `/api/v1/club/events/{id}/registrations`: register a member (a seat, or the waitlist when
//! the event is full), list, cancel, accept an offered seat, check in (once: attending earns
//! the event's points once).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use super::events::EventRow;
use super::ledger;
use super::seats::{
    Registration, RegistrationStatus, announce, offer_free_seats, seats_taken, set_status,
};
use super::tiers::Ladder;
use super::{MemberRow, MemberStatus};
use crate::auth::{Authorized, ClubRead, ClubWrite};
use crate::db::DbConn;
use crate::db::keyset::{Direction, past};
use crate::db::schema::club_registrations;
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::etag::{created, versioned};
use crate::http::json::ValidJson;
use crate::http::pagination::{Page, PageParams};
use crate::http::query::Query;
use crate::kit::ids::{ClubEventId, MemberId, RegistrationId};
use crate::kit::workflow::ensure_move;
use crate::kit::write::{Versioned, Writer};

crate::routes!(
    register,
    registrations,
    get_registration,
    cancel,
    accept,
    check_in
);

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
        (status = 201, description = "Registered or waitlisted", body = Registration, headers(("Location" = String), ("ETag" = String))),
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
            let member = MemberRow::lock_referenced(conn, member_id, "member_id").await?;
            seat(conn, &writer, &event, &member, "member_id").await
        })
        .await?;
    let location = format!(
        "/api/v1/club/events/{}/registrations/{}",
        saved.event_id, saved.id
    );
    Ok(created(location, &saved, saved.version))
}

/// One registration of the event.
#[utoipa::path(tag = "club-events", responses((status = 200, body = Registration, headers(("ETag" = String)))))]
#[get("/club/events/{id}/registrations/{registration_id}")]
async fn get_registration(
    _: Authorized<ClubRead>,
    mut conn: DbConn,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (event, registration) = path.into_inner();
    let found: Registration = club_registrations::table
        .find(RegistrationId::from(registration))
        .filter(club_registrations::event_id.eq(ClubEventId::from(event)))
        .select(Registration::as_select())
        .first(&mut conn)
        .await
        .optional()?
        .ok_or_else(|| ApiError::NotFound("no such registration for this event".into()))?;
    Ok(versioned(StatusCode::OK, &found, found.version))
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
    let saved = cancel_registration(&mut conn, &writer, event.into(), rid.into()).await?;
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
    let saved = accept_offer(&mut conn, &writer, event.into(), rid.into()).await?;
    Ok(web::Json(saved))
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

/// Registers `member` for `event` (both locked by the caller): a seat while there are any,
/// else the waitlist. A rule broken is a `409` naming `field` (the body's member, or the
/// member's own event).
pub(super) async fn seat(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    event: &EventRow,
    member: &MemberRow,
    field: &str,
) -> ApiResult<Registration> {
    let now = Utc::now();
    if event.ends_at <= now {
        return Err(ApiError::Conflict("the event is over".into()));
    }
    if member.status != MemberStatus::Active {
        return Err(ApiError::rule(
            field,
            "not_active",
            format!("the membership is {}", member.status),
        ));
    }
    if !event.invites(member) {
        return Err(ApiError::rule(
            field,
            "not_invited",
            "the member's tier is not invited to this event",
        ));
    }
    let taken = seats_taken(conn, event.id).await?;
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
            club_registrations::event_id.eq(event.id),
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
                field,
                "already_registered",
                "the member is registered or waitlisted for this event already",
            ),
            other => other,
        })?;
    announce(
        conn,
        writer,
        &registration,
        status.as_str(),
        json!({"status": {"old": null, "new": status}}),
    )
    .await?;
    Ok(registration)
}

/// Cancels a registration in its own transaction: a seat (or an offer) given up goes to the
/// next in line; a waitlisted member leaves the waitlist.
pub(super) async fn cancel_registration(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    event: ClubEventId,
    rid: RegistrationId,
) -> ApiResult<Registration> {
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let (event, registration) = lock_registration(conn, event, rid).await?;
        let next = if registration.status == RegistrationStatus::Waitlisted {
            RegistrationStatus::Left
        } else {
            RegistrationStatus::Cancelled
        };
        ensure_move("a registration", registration.status, next)?;
        let now = Utc::now();
        let saved = set_status(conn, writer, &registration, next, None, now).await?;
        offer_free_seats(conn, writer, event.id, event.capacity, now).await?;
        Ok(saved)
    })
    .await
}

/// Takes up an offered seat in its own transaction; an offer found expired is committed as
/// such (the seat moves on) and answered `409`.
pub(super) async fn accept_offer(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    event: ClubEventId,
    rid: RegistrationId,
) -> ApiResult<Registration> {
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let (event, registration) = lock_registration(conn, event, rid).await?;
            let now = Utc::now();
            if registration.status == RegistrationStatus::Offered
                && registration.offer_expires_at.is_some_and(|at| at <= now)
            {
                let expired = set_status(
                    conn,
                    writer,
                    &registration,
                    RegistrationStatus::OfferExpired,
                    None,
                    now,
                )
                .await?;
                offer_free_seats(conn, writer, event.id, event.capacity, now).await?;
                return Ok(Err(expired));
            }
            ensure_move(
                "a registration",
                registration.status,
                RegistrationStatus::Registered,
            )?;
            set_status(
                conn,
                writer,
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
        Ok(registration) => Ok(registration),
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
