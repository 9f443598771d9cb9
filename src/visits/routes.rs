//! `/api/v1/visits`: plan a visit, confirm it, check in and out from a phone (offline
//! captures included), complete it with its outcome and follow-ups, cancel, mark a no-show,
//! reschedule keeping the same id.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use super::planning::{self, point};
use super::requests::{
    CancelRequest, CaptureInput, CompleteRequest, FollowUpPatch, NewVisit, RescheduleRequest,
    StepNote, VisitFilters, VisitPatch, list_query,
};
use super::{Planned, Visit, VisitRecord, steps};
use crate::auth::{Authorized, VisitsRead, VisitsWrite};
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::etag::{IfMatch, created, versioned};
use crate::http::json::{OptionalJson, ValidJson};
use crate::http::pagination::{Page, PageParams};
use crate::http::query::Query;
use crate::http::sorting::{ScheduleOrder, SortedCursor};
use crate::kit::ids::VisitId;
use crate::kit::input::Items;
use crate::kit::write::Writer;

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
        .transaction::<_, ApiError, _>(async move |conn| {
            planning::plan(conn, &writer, planned).await
        })
        .await?;
    Ok(created(
        format!("/api/v1/visits/{}", saved.row.id),
        &saved.view(),
        saved.row.version,
    ))
}

/// The key of the last visit served: its scheduled start, and its id.
type VisitCursor = SortedCursor<ScheduleOrder, (DateTime<Utc>, VisitId)>;

/// List visits by scheduled start, earliest first unless `sort` says otherwise.
#[utoipa::path(tag = "visits", params(PageParams, VisitFilters), responses((status = 200, body = Page<Visit>)))]
#[get("/visits")]
async fn list(
    _: Authorized<VisitsRead>,
    mut conn: DbConn,
    page: Query<PageParams>,
    filters: Query<VisitFilters>,
) -> ApiResult<web::Json<Page<Visit>>> {
    let sort = filters.sort.unwrap_or_default();
    let window = page.window::<VisitCursor>()?;
    let after = window.after_in(sort)?;
    let rows = list_query(&filters, after, window.fetch())
        .load(&mut conn)
        .await?;
    let page = window.page(rows, |v| SortedCursor(sort, (v.scheduled_start, v.id)));
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
    let writer = Writer::of(&caller.principal);
    let saved = steps::update(&mut conn, &writer, VisitId::from(*id), &if_match, body.0).await?;
    Ok(respond(&saved))
}

/// Confirm the appointment with the customer.
#[utoipa::path(
    tag = "visits",
    request_body(content = Option<StepNote>, description = "Optional: an empty body or none at all is the same as `{}`."),
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
    // The note is read and validated, and not kept.
    _note: OptionalJson<StepNote>,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&caller.principal);
    let saved = steps::confirm(&mut conn, &writer, VisitId::from(*id), &if_match).await?;
    Ok(respond(&saved))
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
    let writer = Writer::of(&caller.principal);
    let saved = steps::check_in(&mut conn, &writer, VisitId::from(*id), &if_match, body.0).await?;
    Ok(respond(&saved))
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
    let writer = Writer::of(&caller.principal);
    let saved = steps::check_out(&mut conn, &writer, VisitId::from(*id), &if_match, body.0).await?;
    Ok(respond(&saved))
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
    let writer = Writer::of(&caller.principal);
    let saved = steps::complete(&mut conn, &writer, VisitId::from(*id), &if_match, body.0).await?;
    Ok(respond(&saved))
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
    let writer = Writer::of(&caller.principal);
    let saved = steps::cancel(&mut conn, &writer, VisitId::from(*id), &if_match, body.0).await?;
    Ok(respond(&saved))
}

/// The customer was not there, or did not take the call.
#[utoipa::path(
    tag = "visits",
    request_body(content = Option<StepNote>, description = "Optional: an empty body or none at all is the same as `{}`."),
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
    body: OptionalJson<StepNote>,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&caller.principal);
    let saved = steps::no_show(&mut conn, &writer, VisitId::from(*id), &if_match, body.0).await?;
    Ok(respond(&saved))
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
    let writer = Writer::of(&caller.principal);
    let saved =
        steps::reschedule(&mut conn, &writer, VisitId::from(*id), &if_match, body.0).await?;
    Ok(respond(&saved))
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
    let writer = Writer::of(&caller.principal);
    let saved = steps::update_follow_up(
        &mut conn,
        &writer,
        VisitId::from(id),
        follow_up,
        &if_match,
        body.0,
    )
    .await?;
    Ok(respond(&saved))
}
