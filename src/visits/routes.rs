//! `/api/v1/visits`: plan a visit, confirm it, check in and out from a phone (offline
//! captures included), complete it with its outcome and follow-ups, cancel, mark a no-show,
//! reschedule keeping the same id.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use super::geo::{self, Point};
use super::{
    CancelReason, Capture, FollowUp, Method, Purpose, ScheduleChange, Status, Visit, VisitRecord,
    VisitRow, cadences,
};
use crate::auth::{Authorized, Principal, VisitsRead, VisitsWrite};
use crate::complaints::api::{
    self as complaint, Category, Channel, Description as ComplaintDescription, NewComplaint,
    Severity, SubjectLine as ComplaintSubject,
};
use crate::customers::api as customers;
use crate::db::DbConn;
use crate::db::keyset::{Direction, past};
use crate::db::schema::{complaints, users, visits};
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::etag::{IfMatch, created, versioned};
use crate::http::json::{Field, ValidJson};
use crate::http::pagination::{Page, PageParams};
use crate::http::query::Query;
use crate::kit::ids::{ComplaintId, CustomerId, UserId, VisitId};
use crate::kit::input::{CLOCK_SKEW_MINUTES, Items, Latitude, LocalDate, Longitude, Text, Whole};
use crate::kit::workflow::ensure_move;
use crate::kit::write::{self, Action, Writer};
use crate::users::ensure_active;

crate::routes!(
    create,
    list,
    get_one,
    update,
    confirm,
    check_in,
    check_out,
    complete,
    cancel,
    no_show,
    reschedule,
    update_follow_up
);

/// A capture received more than this many minutes after the device took it is a late sync.
pub const LATE_SYNC_MINUTES: i64 = 10;

/// A visit planned (its event is `visit.planned`).
pub const PLANNED: Action = Action::named("created", "planned");
const CONFIRMED: Action = Action::named("confirmed", "confirmed");
const CHECKED_IN: Action = Action::named("checked_in", "checked_in");
const CHECKED_OUT: Action = Action::named("checked_out", "checked_out");
const COMPLETED: Action = Action::named("completed", "completed");
const CANCELLED: Action = Action::named("cancelled", "cancelled");
const NO_SHOW: Action = Action::named("no_show", "no_show");
const RESCHEDULED: Action = Action::named("rescheduled", "rescheduled");
/// A visit marked missed by the job.
pub const MISSED: Action = Action::named("missed", "missed");

/// Body of `POST /visits`: when, what, who, how and why.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVisit {
    pub customer_id: CustomerId,
    /// Who visits. Default: the caller (an agent plans only their own visits).
    pub owner_id: Option<UserId>,
    pub scheduled_start: DateTime<Utc>,
    /// After `scheduled_start`.
    pub scheduled_end: DateTime<Utc>,
    pub purpose: Purpose,
    pub method: Method,
    /// Why this visit, now.
    #[validate(nested)]
    pub reason: Text<1, 2000>,
    #[validate(nested)]
    pub agenda: Option<Text<0, 5000>>,
    /// Other staff coming along.
    #[validate(nested)]
    pub participants: Option<Items<UserId, 0, 20>>,
    /// The complaint this visit follows up (the customer's).
    pub complaint_id: Option<ComplaintId>,
    /// Default: the customer's first address with coordinates.
    #[validate(nested)]
    pub location: Option<Text<0, 300>>,
    /// Where check-ins are measured from; with `longitude`. Default: that address's.
    #[validate(nested)]
    pub latitude: Option<Latitude>,
    #[validate(nested)]
    pub longitude: Option<Longitude>,
}

/// Body of `PATCH /visits/{id}`: the visit's facts. Times change through `/reschedule`,
/// status through the actions.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct VisitPatch {
    /// Managers hand a visit to someone else; an agent cannot give one away.
    pub owner_id: Option<UserId>,
    pub purpose: Option<Purpose>,
    pub method: Option<Method>,
    #[validate(nested)]
    pub reason: Option<Text<1, 2000>>,
    #[validate(nested)]
    #[schema(nullable)]
    pub agenda: Field<Text<0, 5000>>,
    #[validate(nested)]
    pub participants: Option<Items<UserId, 0, 20>>,
    #[validate(nested)]
    pub contacts_met: Option<Items<Text<1, 200>, 0, 20>>,
    #[schema(nullable)]
    pub complaint_id: Field<ComplaintId>,
    #[validate(nested)]
    #[schema(nullable)]
    pub location: Field<Text<0, 300>>,
    #[validate(nested)]
    #[schema(nullable)]
    pub latitude: Field<Latitude>,
    #[validate(nested)]
    #[schema(nullable)]
    pub longitude: Field<Longitude>,
}

/// A position from the field app. Send both coordinates, or neither (a phone call).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureInput {
    #[validate(nested)]
    pub latitude: Option<Latitude>,
    #[validate(nested)]
    pub longitude: Option<Longitude>,
    /// The device's accuracy radius in metres. Default: 0.
    #[validate(nested)]
    pub accuracy_m: Option<Whole<0, 100_000>>,
    /// When the device captured it: may be hours ago (an offline phone), not in the future.
    pub captured_at: DateTime<Utc>,
}

/// A note kept with a step.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StepNote {
    #[validate(nested)]
    pub note: Option<Text<1, 2000>>,
}

/// Body of `POST /visits/{id}/cancel`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    pub reason: CancelReason,
    #[validate(nested)]
    pub note: Option<Text<1, 2000>>,
}

/// Body of `POST /visits/{id}/reschedule`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleRequest {
    pub scheduled_start: DateTime<Utc>,
    /// After `scheduled_start`.
    pub scheduled_end: DateTime<Utc>,
    #[validate(nested)]
    pub reason: Text<1, 2000>,
}

/// The next visit a follow-up plans: absent fields are proposed from this visit and the
/// customer's cadence (its interval after this visit, at the same local time, as long).
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NextVisit {
    pub scheduled_start: Option<DateTime<Utc>>,
    #[validate(nested)]
    pub duration_minutes: Option<Whole<5, 1440>>,
    pub purpose: Option<Purpose>,
    pub method: Option<Method>,
    #[validate(nested)]
    pub reason: Option<Text<1, 2000>>,
}

/// The complaint a follow-up opens, assigned to the visit's owner.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUpComplaint {
    /// Default: how the visit met the customer (`phone`, `email`, otherwise `in_person`).
    pub channel: Option<Channel>,
    pub category: Category,
    pub severity: Severity,
    #[validate(nested)]
    pub subject: ComplaintSubject,
    #[validate(nested)]
    pub description: ComplaintDescription,
}

/// A task agreed at the visit.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFollowUp {
    #[validate(nested)]
    pub title: Text<1, 500>,
    pub due_on: Option<LocalDate>,
    /// Plans the next visit, in the same transaction.
    #[validate(nested)]
    pub next_visit: Option<NextVisit>,
    /// Opens a complaint, in the same transaction.
    #[validate(nested)]
    pub complaint: Option<FollowUpComplaint>,
}

/// Body of `POST /visits/{id}/complete`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    #[validate(nested)]
    pub outcome: Text<1, 5000>,
    #[validate(nested)]
    pub next_steps: Option<Text<0, 5000>>,
    /// The customer's people met.
    #[validate(nested)]
    pub contacts_met: Option<Items<Text<1, 200>, 0, 20>>,
    #[validate(nested)]
    pub follow_ups: Option<Items<NewFollowUp, 0, 20>>,
}

/// Body of `PATCH /visits/{id}/follow-ups/{follow_up_id}`.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FollowUpPatch {
    /// `true` marks it done now; `false` opens it again.
    pub done: Option<bool>,
    #[validate(nested)]
    pub title: Option<Text<1, 500>>,
    #[schema(nullable, value_type = Option<String>, format = Date)]
    pub due_on: Field<LocalDate>,
}

/// Filters of `GET /visits`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VisitFilters {
    pub owner_id: Option<UserId>,
    pub customer_id: Option<CustomerId>,
    pub status: Option<Status>,
    pub purpose: Option<Purpose>,
    pub method: Option<Method>,
    /// Scheduled to start at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Scheduled to start before this time.
    pub to: Option<DateTime<Utc>>,
    /// `false`: the check-ins outside the radius (flagged for managers).
    pub within_radius: Option<bool>,
    /// `true`: visits with a check-in or check-out that reached the server late.
    pub late_sync: Option<bool>,
}

/// What a visit is planned with, from `POST /visits`, a follow-up or a plan.
pub struct Planned {
    pub customer_id: CustomerId,
    pub owner_id: UserId,
    pub scheduled_start: DateTime<Utc>,
    pub scheduled_end: DateTime<Utc>,
    pub purpose: Purpose,
    pub method: Method,
    pub reason: String,
    pub agenda: Option<String>,
    pub participants: Vec<UserId>,
    pub complaint_id: Option<ComplaintId>,
    pub location: Option<String>,
    pub coordinates: Option<Point>,
}

/// `409` unless the complaint exists and is this customer's.
async fn check_complaint(
    conn: &mut AsyncPgConnection,
    complaint: ComplaintId,
    customer: CustomerId,
) -> ApiResult<()> {
    let owner: Option<CustomerId> = complaints::table
        .find(complaint)
        .select(complaints::customer_id)
        .first(conn)
        .await
        .optional()?;
    customers::ensure_customers("complaint_id", "complaint", owner, customer)
}

/// `409` unless the end comes after the start.
fn check_times(start: DateTime<Utc>, end: DateTime<Utc>) -> ApiResult<()> {
    if end > start {
        Ok(())
    } else {
        Err(ApiError::rule(
            "scheduled_end",
            "before_start",
            "must be after scheduled_start",
        ))
    }
}

/// Both coordinates or neither: `409` for one alone.
fn point(latitude: Option<Latitude>, longitude: Option<Longitude>) -> ApiResult<Option<Point>> {
    match (latitude, longitude) {
        (Some(lat), Some(lng)) => Ok(Some(Point {
            latitude: lat.get(),
            longitude: lng.get(),
        })),
        (None, None) => Ok(None),
        _ => Err(ApiError::rule(
            "latitude",
            "pair",
            "send latitude and longitude together",
        )),
    }
}

/// The customer's first address with coordinates, as a location and a point.
fn customer_location(customer: &customers::CustomerRow) -> Option<(String, Point)> {
    let addresses: Vec<crate::customers::api::Address> =
        serde_json::from_value(customer.addresses.clone()).unwrap_or_default();
    addresses.into_iter().find_map(|a| {
        let (lat, lng) = (a.latitude?, a.longitude?);
        let city = a
            .city
            .map(|c| format!(", {}", c.into_inner()))
            .unwrap_or_default();
        Some((
            format!("{}{city}", a.line1.into_inner()),
            Point {
                latitude: lat.get(),
                longitude: lng.get(),
            },
        ))
    })
}

/// A new visit in the caller's transaction: the customer live, owner and participants
/// active, the complaint the customer's; the location defaults to the customer's address.
pub async fn plan(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    p: Planned,
) -> ApiResult<VisitRecord> {
    check_times(p.scheduled_start, p.scheduled_end)?;
    let customer = customers::find_referenced(conn, p.customer_id).await?;
    ensure_active(conn, "owner_id", p.owner_id).await?;
    for user in &p.participants {
        ensure_active(conn, "participants", *user).await?;
    }
    if let Some(complaint) = p.complaint_id {
        check_complaint(conn, complaint, customer.id).await?;
    }
    let (location, coordinates) = match (p.location, p.coordinates) {
        (location, Some(point)) => (location, Some(point)),
        (location, None) => match customer_location(&customer) {
            Some((line, point)) => (location.or(Some(line)), Some(point)),
            None => (location, None),
        },
    };
    let now = Utc::now();
    let record = VisitRecord {
        row: VisitRow {
            id: VisitId::new(),
            customer_id: customer.id,
            owner_id: p.owner_id,
            complaint_id: p.complaint_id,
            plan_id: None,
            occurrence_at: None,
            scheduled_start: p.scheduled_start,
            scheduled_end: p.scheduled_end,
            purpose: p.purpose,
            method: p.method,
            agenda: p.agenda,
            reason: p.reason,
            participants: p.participants,
            contacts_met: Vec::new(),
            location,
            latitude: coordinates.map(|c| c.latitude),
            longitude: coordinates.map(|c| c.longitude),
            status: Status::Planned,
            cancel_reason: None,
            cancel_note: None,
            outcome: None,
            next_steps: None,
            actual_start: None,
            actual_end: None,
            check_in: None,
            check_out: None,
            within_radius: None,
            late_sync: false,
            reschedule_count: 0,
            schedule_history: json!([]),
            version: 1,
            created_at: now,
            updated_at: now,
        },
        follow_ups: Vec::new(),
    };
    write::create(conn, writer, record, PLANNED).await
}

/// Plan a visit. Its customer leaves the due list while it is planned.
#[utoipa::path(
    tag = "visits",
    request_body(content = NewVisit, example = json!({
        "customer_id": "0192f0c1-7a2b-7c3d-8e4f-5a6b7c8d9e0f", "scheduled_start": "2026-12-03T02:00:00Z",
        "scheduled_end": "2026-12-03T03:00:00Z", "purpose": "after_sales_follow_up", "method": "in_person",
        "reason": "Two weeks after the new sofa was delivered"
    })),
    responses(
        (status = 201, description = "Planned", body = Visit, headers(("Location" = String), ("ETag" = String))),
        (status = 409, description = "The customer, owner, participant or complaint does not exist (or does not fit), or the end is not after the start", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/visits")]
async fn create(
    caller: Authorized<VisitsWrite>,
    mut conn: DbConn,
    body: ValidJson<NewVisit>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let owner = b
        .owner_id
        .or_else(|| caller.principal.user_id())
        .ok_or_else(|| ApiError::rule("owner_id", "required", "an API key must name the owner"))?;
    let planned = Planned {
        customer_id: b.customer_id,
        owner_id: owner,
        scheduled_start: b.scheduled_start,
        scheduled_end: b.scheduled_end,
        purpose: b.purpose,
        method: b.method,
        reason: b.reason.into_inner(),
        agenda: crate::kit::input::present(b.agenda),
        participants: b.participants.map(Items::into_inner).unwrap_or_default(),
        complaint_id: b.complaint_id,
        location: crate::kit::input::present(b.location),
        coordinates: point(b.latitude, b.longitude)?,
    };
    let writer = Writer::of(&caller.principal);
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| plan(conn, &writer, planned).await)
        .await?;
    Ok(created(
        format!("/api/v1/visits/{}", saved.row.id),
        &saved.view(),
        saved.row.version,
    ))
}

#[derive(Serialize, Deserialize)]
struct VisitCursor(DateTime<Utc>, VisitId);

/// A page of `GET /visits`, by scheduled start (public so that tests can `EXPLAIN` it).
pub fn list_query(
    f: &VisitFilters,
    after: Option<(DateTime<Utc>, VisitId)>,
    limit: i64,
) -> diesel::helper_types::IntoBoxed<
    'static,
    diesel::helper_types::Select<
        visits::table,
        diesel::helper_types::AsSelect<VisitRow, diesel::pg::Pg>,
    >,
    diesel::pg::Pg,
> {
    let mut query = visits::table
        .select(VisitRow::as_select())
        .order((visits::scheduled_start, visits::id))
        .limit(limit)
        .into_boxed();
    if let Some((at, id)) = after {
        query = query.filter(past(
            visits::scheduled_start,
            visits::id,
            (at, id.get()),
            Direction::Ascending,
        ));
    }
    if let Some(owner) = f.owner_id {
        query = query.filter(visits::owner_id.eq(owner));
    }
    if let Some(customer) = f.customer_id {
        query = query.filter(visits::customer_id.eq(customer));
    }
    if let Some(status) = f.status {
        query = query.filter(visits::status.eq(status));
    }
    if let Some(purpose) = f.purpose {
        query = query.filter(visits::purpose.eq(purpose));
    }
    if let Some(method) = f.method {
        query = query.filter(visits::method.eq(method));
    }
    if let Some(from) = f.from {
        query = query.filter(visits::scheduled_start.ge(from));
    }
    if let Some(to) = f.to {
        query = query.filter(visits::scheduled_start.lt(to));
    }
    if let Some(within) = f.within_radius {
        query = query.filter(visits::within_radius.eq(within));
    }
    if let Some(late) = f.late_sync {
        query = query.filter(visits::late_sync.eq(late));
    }
    query
}

/// List visits by scheduled start, earliest first.
#[utoipa::path(tag = "visits", params(PageParams, VisitFilters), responses((status = 200, body = Page<Visit>)))]
#[get("/visits")]
async fn list(
    _: Authorized<VisitsRead>,
    mut conn: DbConn,
    page: Query<PageParams>,
    filters: Query<VisitFilters>,
) -> ApiResult<web::Json<Page<Visit>>> {
    let window = page.window::<VisitCursor>()?;
    let after = window.after.as_ref().map(|VisitCursor(at, id)| (*at, *id));
    let rows = list_query(&filters, after, window.fetch())
        .load(&mut conn)
        .await?;
    let page = window.page(rows, |v| VisitCursor(v.scheduled_start, v.id));
    let records = VisitRecord::assemble(&mut conn, page.data).await?;
    Ok(web::Json(Page {
        data: records.iter().map(VisitRecord::view).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Get a visit with its follow-ups and schedule history.
#[utoipa::path(tag = "visits", responses((status = 200, body = Visit, headers(("ETag" = String)))))]
#[get("/visits/{id}")]
async fn get_one(
    _: Authorized<VisitsRead>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let record = VisitRecord::find(&mut conn, VisitId::from(*id)).await?;
    Ok(respond(&record))
}

fn respond(record: &VisitRecord) -> HttpResponse {
    versioned(StatusCode::OK, &record.view(), record.row.version)
}

/// Locks the visit, applies `change` and saves it as `action`, in one transaction.
async fn step(
    principal: &Principal,
    conn: &mut DbConn,
    id: Uuid,
    if_match: &IfMatch,
    action: Action,
    change: impl for<'c> FnOnce(
        &'c mut AsyncPgConnection,
        &'c mut VisitRecord,
    ) -> BoxFuture<'c, ApiResult<bool>>
    + Send,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(principal);
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let locked =
                write::lock::<VisitRecord>(conn, &writer, VisitId::from(id), if_match).await?;
            let mut after = locked.to_change();
            if !change(conn, &mut after).await? {
                // A replay of a capture already stored: the visit as it is.
                return Ok(locked.row().clone());
            }
            write::save(conn, &writer, locked, after, action).await
        })
        .await?;
    Ok(respond(&saved))
}

/// Change a visit's facts (not its time or status).
#[utoipa::path(
    tag = "visits",
    request_body = VisitPatch,
    responses(
        (status = 200, body = Visit, headers(("ETag" = String))),
        (status = 409, description = "The owner, participant or complaint does not exist (or does not fit)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/visits/{id}")]
async fn update(
    caller: Authorized<VisitsWrite>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<VisitPatch>,
) -> ApiResult<HttpResponse> {
    let p = body.0;
    step(
        &caller.principal,
        &mut conn,
        *id,
        &if_match,
        Action::UPDATED,
        |conn, v| {
            Box::pin(async move {
                let r = &mut v.row;
                if let Some(owner) = p.owner_id {
                    ensure_active(conn, "owner_id", owner).await?;
                    r.owner_id = owner;
                }
                r.purpose = p.purpose.unwrap_or(r.purpose);
                r.method = p.method.unwrap_or(r.method);
                if let Some(reason) = p.reason {
                    r.reason = reason.into_inner();
                }
                if let Some(participants) = p.participants {
                    for user in participants.iter() {
                        ensure_active(conn, "participants", *user).await?;
                    }
                    r.participants = participants.into_inner();
                }
                if let Some(contacts) = p.contacts_met {
                    r.contacts_met = contacts
                        .into_inner()
                        .into_iter()
                        .map(Text::into_inner)
                        .collect();
                }
                r.agenda = p.agenda.map_value(Text::into_inner).apply(r.agenda.take());
                r.location = p
                    .location
                    .map_value(Text::into_inner)
                    .apply(r.location.take());
                r.latitude = p.latitude.map_value(Latitude::get).apply(r.latitude);
                r.longitude = p.longitude.map_value(Longitude::get).apply(r.longitude);
                if r.latitude.is_some() != r.longitude.is_some() {
                    return Err(ApiError::rule(
                        "latitude",
                        "pair",
                        "a visit has both coordinates or neither",
                    ));
                }
                match p.complaint_id {
                    Field::Absent => {}
                    Field::Null => r.complaint_id = None,
                    Field::Value(complaint) => {
                        check_complaint(conn, complaint, r.customer_id).await?;
                        r.complaint_id = Some(complaint);
                    }
                }
                Ok(true)
            })
        },
    )
    .await
}

/// Confirm the appointment with the customer.
#[utoipa::path(
    tag = "visits",
    request_body = StepNote,
    responses(
        (status = 200, body = Visit, headers(("ETag" = String))),
        (status = 409, description = "Not a planned visit; `allowed` lists its possible moves", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/visits/{id}/confirm")]
async fn confirm(
    caller: Authorized<VisitsWrite>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<StepNote>,
) -> ApiResult<HttpResponse> {
    let _note = body.0.note;
    step(
        &caller.principal,
        &mut conn,
        *id,
        &if_match,
        CONFIRMED,
        |_, v| {
            Box::pin(async move {
                ensure_move("a visit", v.row.status, Status::Confirmed)?;
                v.row.status = Status::Confirmed;
                Ok(true)
            })
        },
    )
    .await
}

/// A capture as stored: `422` from the future (beyond the clock skew), the distance to the
/// visit's location, a late sync flagged.
fn capture(body: &CaptureInput, target: Option<Point>, now: DateTime<Utc>) -> ApiResult<Capture> {
    if body.captured_at > now + Duration::minutes(CLOCK_SKEW_MINUTES) {
        return Err(ApiError::invalid(
            "captured_at",
            "future",
            "cannot be in the future (check the device's clock)",
        ));
    }
    let at = point(body.latitude, body.longitude)?;
    Ok(Capture {
        latitude: at.map_or(0.0, |p| p.latitude),
        longitude: at.map_or(0.0, |p| p.longitude),
        accuracy_m: body.accuracy_m.map_or(0.0, |a| a.get() as f64),
        captured_at: body.captured_at,
        received_at: now,
        distance_m: at
            .zip(target)
            .map(|(a, b)| (geo::distance_m(a, b) * 10.0).round() / 10.0),
        within_radius: None,
        late_sync: now - body.captured_at > Duration::minutes(LATE_SYNC_MINUTES),
    })
}

/// Whether a stored capture is the same capture sent again (an offline queue replayed).
fn same_capture(stored: Option<&Capture>, body: &CaptureInput) -> bool {
    stored.is_some_and(|c| c.captured_at == body.captured_at)
}

fn visit_point(row: &VisitRow) -> Option<Point> {
    row.latitude
        .zip(row.longitude)
        .map(|(latitude, longitude)| Point {
            latitude,
            longitude,
        })
}

/// Check in at the customer's (or on the call). The server measures the distance to the
/// visit's location: within the radius when distance − accuracy ≤ radius (the tier's
/// cadence, default 200 m); outside it is accepted and flagged. Sending the same capture
/// again (same `captured_at`) answers the visit unchanged.
#[utoipa::path(
    tag = "visits",
    request_body(content = CaptureInput, example = json!({"latitude": 31.2304, "longitude": 121.4737, "accuracy_m": 25, "captured_at": "2026-12-03T02:01:00Z"})),
    responses(
        (status = 200, body = Visit, headers(("ETag" = String))),
        (status = 409, description = "Not a confirmed visit; `allowed` lists its possible moves", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/visits/{id}/check-in")]
async fn check_in(
    caller: Authorized<VisitsWrite>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<CaptureInput>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    step(
        &caller.principal,
        &mut conn,
        *id,
        &if_match,
        CHECKED_IN,
        |conn, v| {
            Box::pin(async move {
                // The same capture again: an offline queue replayed, even once the visit moved on.
                if same_capture(v.row.check_in().as_ref(), &b) {
                    return Ok(false);
                }
                ensure_move("a visit", v.row.status, Status::CheckedIn)?;
                let mut c = capture(&b, visit_point(&v.row), Utc::now())?;
                let radius = cadences::radius_m(conn, v.row.customer_id).await?;
                c.within_radius = c
                    .distance_m
                    .map(|d| geo::within_radius(d, c.accuracy_m, f64::from(radius)));
                v.row.within_radius = c.within_radius;
                v.row.late_sync |= c.late_sync;
                v.row.actual_start = Some(c.captured_at);
                v.row.check_in = Some(serde_json::to_value(&c).map_err(ApiError::internal)?);
                v.row.status = Status::CheckedIn;
                Ok(true)
            })
        },
    )
    .await
}

/// Check out: the visit's actual end. Sending the same capture again answers the visit
/// unchanged.
#[utoipa::path(
    tag = "visits",
    request_body = CaptureInput,
    responses(
        (status = 200, body = Visit, headers(("ETag" = String))),
        (status = 409, description = "Not checked in, or captured before the check-in", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/visits/{id}/check-out")]
async fn check_out(
    caller: Authorized<VisitsWrite>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<CaptureInput>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    step(
        &caller.principal,
        &mut conn,
        *id,
        &if_match,
        CHECKED_OUT,
        |_, v| {
            Box::pin(async move {
                if same_capture(v.row.check_out().as_ref(), &b) {
                    return Ok(false);
                }
                if v.row.status != Status::CheckedIn {
                    return Err(ApiError::IllegalMove {
                        detail: format!(
                            "a visit that is {} cannot check out; check in first",
                            v.row.status
                        ),
                        allowed: Vec::new(),
                    });
                }
                let c = capture(&b, visit_point(&v.row), Utc::now())?;
                if v.row
                    .actual_start
                    .is_some_and(|start| c.captured_at < start)
                {
                    return Err(ApiError::rule(
                        "captured_at",
                        "before_check_in",
                        "is before the check-in",
                    ));
                }
                v.row.late_sync |= c.late_sync;
                v.row.actual_end = Some(c.captured_at);
                v.row.check_out = Some(serde_json::to_value(&c).map_err(ApiError::internal)?);
                Ok(true)
            })
        },
    )
    .await
}

/// The channel a complaint raised at a visit came through.
fn channel_of(method: Method) -> Channel {
    match method {
        Method::Phone => Channel::Phone,
        Method::Email => Channel::Email,
        _ => Channel::InPerson,
    }
}

/// Complete the visit with its outcome, next steps and follow-ups; a follow-up may plan the
/// next visit (proposed from the cadence) or open a complaint, all in one transaction.
#[utoipa::path(
    tag = "visits",
    request_body(content = CompleteRequest, example = json!({
        "outcome": "Sofa fine; wants a matching footstool", "next_steps": "Quote the footstool",
        "follow_ups": [{"title": "Send the quote", "due_on": "2026-12-05", "next_visit": {}}]
    })),
    responses(
        (status = 200, body = Visit, headers(("ETag" = String))),
        (status = 409, description = "Not checked in; `allowed` lists its possible moves", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/visits/{id}/complete")]
async fn complete(
    caller: Authorized<VisitsWrite>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<CompleteRequest>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let writer = Writer::of(&caller.principal);
    step(
        &caller.principal,
        &mut conn,
        *id,
        &if_match,
        COMPLETED,
        |conn, v| {
            Box::pin(async move {
                ensure_move("a visit", v.row.status, Status::Completed)?;
                let now = Utc::now();
                v.row.status = Status::Completed;
                v.row.actual_end = v.row.actual_end.or(Some(now));
                v.row.outcome = Some(b.outcome.into_inner());
                v.row.next_steps = crate::kit::input::present(b.next_steps);
                if let Some(contacts) = b.contacts_met {
                    v.row.contacts_met = contacts
                        .into_inner()
                        .into_iter()
                        .map(Text::into_inner)
                        .collect();
                }
                for f in b.follow_ups.map(Items::into_inner).unwrap_or_default() {
                    let next_visit_id = match f.next_visit {
                        Some(next) => Some(plan_next(conn, &writer, &v.row, next).await?.row.id),
                        None => None,
                    };
                    let complaint_id = match f.complaint {
                        Some(c) => {
                            let new = NewComplaint {
                                customer_id: v.row.customer_id,
                                channel: c.channel.unwrap_or(channel_of(v.row.method)),
                                category: c.category,
                                severity: c.severity,
                                subject: c.subject,
                                description: c.description,
                                order_id: None,
                                sku: None,
                                assignee_id: Some(v.row.owner_id),
                                promised_by: None,
                                received_at: None,
                            };
                            Some(
                                complaint::open(conn, &writer, new, Some(v.row.owner_id))
                                    .await?
                                    .row
                                    .id,
                            )
                        }
                        None => None,
                    };
                    v.follow_ups.push(FollowUp {
                        id: Uuid::now_v7(),
                        visit_id: v.row.id,
                        owner_id: v.row.owner_id,
                        customer_id: v.row.customer_id,
                        title: f.title.into_inner(),
                        due_on: f.due_on.map(|d| d.0),
                        done_at: None,
                        next_visit_id,
                        complaint_id,
                        created_at: now,
                    });
                }
                Ok(true)
            })
        },
    )
    .await
}

/// The next visit after `this`: what the follow-up gives, the rest proposed from this visit
/// and the customer's cadence.
async fn plan_next(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    this: &VisitRow,
    next: NextVisit,
) -> ApiResult<VisitRecord> {
    let length = next
        .duration_minutes
        .map_or(this.scheduled_end - this.scheduled_start, |m| {
            Duration::minutes(m.get())
        });
    let start = match next.scheduled_start {
        Some(start) => start,
        None => {
            let interval = cadences::interval_days(conn, this.customer_id).await?;
            let zone = owner_zone(conn, this.owner_id).await?;
            same_local_time_after(this.scheduled_start, interval, zone)
        }
    };
    plan(
        conn,
        writer,
        Planned {
            customer_id: this.customer_id,
            owner_id: this.owner_id,
            scheduled_start: start,
            scheduled_end: start + length,
            purpose: next.purpose.unwrap_or(this.purpose),
            method: next.method.unwrap_or(this.method),
            reason: next.reason.map_or_else(
                || {
                    format!(
                        "Follow-up of the visit of {}",
                        this.scheduled_start.date_naive()
                    )
                },
                Text::into_inner,
            ),
            agenda: None,
            participants: Vec::new(),
            complaint_id: this.complaint_id,
            location: this.location.clone(),
            coordinates: visit_point(this),
        },
    )
    .await
}

/// The owner's time zone (`UTC` when unknown).
pub async fn owner_zone(conn: &mut AsyncPgConnection, owner: UserId) -> ApiResult<chrono_tz::Tz> {
    let name: Option<String> = users::table
        .find(owner.get())
        .select(users::time_zone)
        .first(conn)
        .await
        .optional()?;
    Ok(name
        .and_then(|n| n.parse().ok())
        .unwrap_or(chrono_tz::Tz::UTC))
}

/// `days` after `at`, at the same local time in `zone` (the earlier instant when that time
/// happens twice, an hour later when it does not exist).
pub fn same_local_time_after(at: DateTime<Utc>, days: i32, zone: chrono_tz::Tz) -> DateTime<Utc> {
    use chrono::TimeZone;
    let local = at.with_timezone(&zone).naive_local() + Duration::days(i64::from(days));
    zone.from_local_datetime(&local)
        .earliest()
        .or_else(|| {
            zone.from_local_datetime(&(local + Duration::hours(1)))
                .earliest()
        })
        .map_or(at + Duration::days(i64::from(days)), |t| {
            t.with_timezone(&Utc)
        })
}

/// Cancel a planned or confirmed visit, saying why.
#[utoipa::path(
    tag = "visits",
    request_body = CancelRequest,
    responses(
        (status = 200, body = Visit, headers(("ETag" = String))),
        (status = 409, description = "Not planned or confirmed; `allowed` lists its possible moves", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/visits/{id}/cancel")]
async fn cancel(
    caller: Authorized<VisitsWrite>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<CancelRequest>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    step(
        &caller.principal,
        &mut conn,
        *id,
        &if_match,
        CANCELLED,
        |_, v| {
            Box::pin(async move {
                ensure_move("a visit", v.row.status, Status::Cancelled)?;
                v.row.status = Status::Cancelled;
                v.row.cancel_reason = Some(b.reason);
                v.row.cancel_note = b.note.map(Text::into_inner);
                Ok(true)
            })
        },
    )
    .await
}

/// The customer was not there, or did not take the call.
#[utoipa::path(
    tag = "visits",
    request_body = StepNote,
    responses(
        (status = 200, body = Visit, headers(("ETag" = String))),
        (status = 409, description = "Not planned or confirmed; `allowed` lists its possible moves", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/visits/{id}/no-show")]
async fn no_show(
    caller: Authorized<VisitsWrite>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<StepNote>,
) -> ApiResult<HttpResponse> {
    let note = body.0.note;
    step(
        &caller.principal,
        &mut conn,
        *id,
        &if_match,
        NO_SHOW,
        |_, v| {
            Box::pin(async move {
                ensure_move("a visit", v.row.status, Status::NoShow)?;
                v.row.status = Status::NoShow;
                v.row.cancel_note = note.map(Text::into_inner);
                Ok(true)
            })
        },
    )
    .await
}

/// Move the visit to a new time, keeping its id: the move joins its schedule history and
/// count, and the visit is `planned` again (a confirmed one needs confirming anew).
#[utoipa::path(
    tag = "visits",
    request_body = RescheduleRequest,
    responses(
        (status = 200, body = Visit, headers(("ETag" = String))),
        (status = 409, description = "Checked in, completed or cancelled; or the end is not after the start", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/visits/{id}/reschedule")]
async fn reschedule(
    caller: Authorized<VisitsWrite>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<RescheduleRequest>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let by = crate::audit::Actor::from(&caller.principal).label();
    step(
        &caller.principal,
        &mut conn,
        *id,
        &if_match,
        RESCHEDULED,
        |_, v| {
            Box::pin(async move {
                if !v.row.status.may_reschedule() {
                    ensure_move("a visit", v.row.status, Status::Planned)?;
                }
                check_times(b.scheduled_start, b.scheduled_end)?;
                let mut history: Vec<ScheduleChange> = v.row.history();
                history.push(ScheduleChange {
                    old_start: v.row.scheduled_start,
                    old_end: v.row.scheduled_end,
                    new_start: b.scheduled_start,
                    new_end: b.scheduled_end,
                    by,
                    reason: b.reason.into_inner(),
                    at: Utc::now(),
                });
                v.row.schedule_history =
                    serde_json::to_value(history).map_err(ApiError::internal)?;
                v.row.reschedule_count += 1;
                v.row.scheduled_start = b.scheduled_start;
                v.row.scheduled_end = b.scheduled_end;
                v.row.status = Status::Planned;
                Ok(true)
            })
        },
    )
    .await
}

/// Tick off a follow-up (or change it).
#[utoipa::path(
    tag = "visits",
    request_body = FollowUpPatch,
    responses((status = 200, body = Visit, headers(("ETag" = String))))
)]
#[patch("/visits/{id}/follow-ups/{follow_up_id}")]
async fn update_follow_up(
    caller: Authorized<VisitsWrite>,
    mut conn: DbConn,
    path: web::Path<(Uuid, Uuid)>,
    if_match: IfMatch,
    body: ValidJson<FollowUpPatch>,
) -> ApiResult<HttpResponse> {
    let (id, follow_up) = path.into_inner();
    let p = body.0;
    step(
        &caller.principal,
        &mut conn,
        id,
        &if_match,
        Action::UPDATED,
        |_, v| {
            Box::pin(async move {
                let f = v
                    .follow_ups
                    .iter_mut()
                    .find(|f| f.id == follow_up)
                    .ok_or_else(|| ApiError::NotFound("no such follow-up on this visit".into()))?;
                match p.done {
                    Some(true) if f.done_at.is_none() => f.done_at = Some(Utc::now()),
                    Some(false) => f.done_at = None,
                    _ => {}
                }
                if let Some(title) = p.title {
                    f.title = title.into_inner();
                }
                f.due_on = p.due_on.map_value(|d| d.0).apply(f.due_on);
                Ok(true)
            })
        },
    )
    .await
}
