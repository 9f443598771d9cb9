//! `/api/v1/complaints`: log a complaint from any window, work it through the state machine,
//! comment, resolve with compensation, record the customer's rating.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::handling;
use super::requests::{
    ComplaintFilters, ComplaintPatch, NewComment, NewComplaint, NewRating, ResolveRequest,
    TransitionRequest, list_query,
};
use super::{Comment, Complaint, ComplaintRecord, ComplaintRow, Resolution, Satisfaction};
use crate::auth::{Authorized, ComplaintsRead, ComplaintsWrite, Principal, Role};
use crate::db::DbConn;
use crate::db::keyset::{Direction, past};
use crate::db::schema::{complaint_comments, complaint_resolutions, complaints};
use crate::db::shared_reads::SharedRead;
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::etag::{IfMatch, created, versioned};
use crate::http::json::ValidJson;
use crate::http::pagination::{Page, PageParams};
use crate::http::query::Query;
use crate::http::sorting::{CreationOrder, SortedCursor};
use crate::kit::ids::ComplaintId;
use crate::kit::registry::Registry;
use crate::kit::write::Writer;

crate::routes!(
    create,
    list,
    get_one,
    update,
    transition,
    post_comment,
    list_comments,
    resolve,
    get_resolution,
    rate
);

/// Log a complaint. The first matching SLA policy sets its clocks, all in one transaction
/// with the audit entry and the `complaint.created` event.
#[utoipa::path(
    tag = "complaints",
    request_body(content = NewComplaint, example = json!({
        "customer_id": "0192f0c1-7a2b-7c3d-8e4f-5a6b7c8d9e0f", "channel": "phone", "category": "product_quality",
        "severity": "high", "subject": "Sole came off after a week", "description": "The left shoe's sole came off on the sixth day."
    })),
    responses(
        (status = 201, description = "Logged", body = Complaint, headers(("Location" = String), ("ETag" = String))),
        (status = 409, description = "The customer, order or assignee does not exist (or does not fit)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/complaints")]
async fn create(
    caller: Authorized<ComplaintsWrite>,
    mut conn: DbConn,
    body: ValidJson<NewComplaint>,
) -> ApiResult<HttpResponse> {
    let assignee = body.0.assignee_id.or(match &caller.principal {
        Principal::User {
            id,
            role: Role::Agent,
        } => Some(*id),
        _ => None,
    });
    let writer = Writer::of(&caller.principal);
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            handling::open(conn, &writer, body.0, assignee).await
        })
        .await?;
    Ok(created(
        format!("/api/v1/complaints/{}", saved.row.id),
        &saved.view(Utc::now()),
        saved.row.version,
    ))
}

/// The key of the last complaint served: when it was logged, and its id.
type ComplaintCursor = SortedCursor<CreationOrder, (DateTime<Utc>, ComplaintId)>;

/// List complaints, newest first unless `sort` says otherwise.
#[utoipa::path(tag = "complaints", params(PageParams, ComplaintFilters), responses((status = 200, body = Page<Complaint>)))]
#[get("/complaints")]
async fn list(
    _: Authorized<ComplaintsRead>,
    read: SharedRead,
    page: Query<PageParams>,
    filters: Query<ComplaintFilters>,
) -> ApiResult<web::Json<Page<Complaint>>> {
    let sort = filters.sort.unwrap_or_default();
    let window = page.window::<ComplaintCursor>()?;
    let after = window.after_in(sort)?;
    let (records, next_cursor) = read
        .run_when(filters.walks_one_index(), async |mut conn| {
            let query = list_query(&filters, after, window.fetch(), Utc::now())?;
            let rows = query.load(&mut conn).await?;
            let page = window.page(rows, |c| SortedCursor(sort, (c.created_at, c.id)));
            let records = ComplaintRecord::assemble(conn, page.data, false).await?;
            Ok((records, page.next_cursor))
        })
        .await?;
    let now = Utc::now();
    Ok(web::Json(Page {
        data: records.iter().map(|r| r.view(now)).collect(),
        next_cursor,
    }))
}

/// Get a complaint with every clock, this cycle's resolution and rating.
#[utoipa::path(tag = "complaints", responses((status = 200, body = Complaint, headers(("ETag" = String)))))]
#[get("/complaints/{id}")]
async fn get_one(
    _: Authorized<ComplaintsRead>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let row: ComplaintRow = complaints::table
        .find(ComplaintId::from(*id))
        .select(ComplaintRow::as_select())
        .first(&mut conn)
        .await?;
    let record = ComplaintRecord::assemble(&conn, vec![row], true)
        .await?
        .remove(0);
    Ok(versioned(
        StatusCode::OK,
        &record.view(Utc::now()),
        record.row.version,
    ))
}

/// A complaint as a write response shows it.
fn respond(record: &ComplaintRecord) -> HttpResponse {
    versioned(StatusCode::OK, &record.view(Utc::now()), record.row.version)
}

/// Change a complaint's facts, assignee or promise.
#[utoipa::path(
    tag = "complaints",
    request_body = ComplaintPatch,
    responses(
        (status = 200, body = Complaint, headers(("ETag" = String))),
        (status = 409, description = "The order or assignee does not exist (or does not fit)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/complaints/{id}")]
async fn update(
    caller: Authorized<ComplaintsWrite>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<ComplaintPatch>,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&caller.principal);
    let id = ComplaintId::from(*id);
    let saved = handling::update(&mut conn, &writer, id, &if_match, body.0).await?;
    Ok(respond(&saved))
}

/// Move a complaint along its workflow.
#[utoipa::path(
    tag = "complaints",
    request_body(content = TransitionRequest, example = json!({"to": "acknowledged", "note": "Called the customer back"})),
    responses(
        (status = 200, body = Complaint, headers(("ETag" = String))),
        (status = 409, description = "The move is not allowed from the current status (`allowed` lists those that are), or the reopen window has passed", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/complaints/{id}/transitions")]
async fn transition(
    caller: Authorized<ComplaintsWrite>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<TransitionRequest>,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&caller.principal);
    let id = ComplaintId::from(*id);
    let saved = handling::transition(&mut conn, &writer, id, &if_match, body.0).await?;
    Ok(respond(&saved))
}

/// Comment on a complaint. The first public comment by a staff user fulfils the
/// first-response clock; internal notes do not.
#[utoipa::path(
    tag = "complaints",
    request_body(content = NewComment, example = json!({"visibility": "public", "body": "We are sorry; a replacement pair is on its way."})),
    responses(
        (status = 201, description = "Added", body = Comment),
        (status = 409, description = "`answer_id` names no standard answer", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/complaints/{id}/comments")]
async fn post_comment(
    caller: Authorized<ComplaintsWrite>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<NewComment>,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&caller.principal);
    let id = ComplaintId::from(*id);
    let added = handling::comment(&mut conn, &writer, id, &if_match, body.0).await?;
    Ok(HttpResponse::Created().json(added))
}

#[derive(Serialize, Deserialize)]
struct CommentCursor(DateTime<Utc>, Uuid);

/// A complaint's comments, oldest first.
#[utoipa::path(tag = "complaints", params(PageParams), responses((status = 200, body = Page<Comment>)))]
#[get("/complaints/{id}/comments")]
async fn list_comments(
    _: Authorized<ComplaintsRead>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    page: Query<PageParams>,
) -> ApiResult<web::Json<Page<Comment>>> {
    let id = ComplaintId::from(*id);
    complaints::table
        .find(id)
        .select(complaints::id)
        .first::<ComplaintId>(&mut conn)
        .await?;
    let window = page.window::<CommentCursor>()?;
    let mut query = complaint_comments::table
        .filter(complaint_comments::complaint_id.eq(id))
        .select(Comment::as_select())
        .order((complaint_comments::created_at, complaint_comments::id))
        .limit(window.fetch())
        .into_boxed();
    if let Some(CommentCursor(at, last)) = window.after {
        query = query.filter(past(
            complaint_comments::created_at,
            complaint_comments::id,
            (at, last),
            Direction::Ascending,
        ));
    }
    let rows = query.load(&mut conn).await?;
    Ok(web::Json(
        window.page(rows, |c| CommentCursor(c.created_at, c.id)),
    ))
}

/// Resolve a complaint: the resolution (with its root cause and corrective action) and an
/// optional compensation in one transaction; `complaint.resolved` is the signal to send the
/// satisfaction survey.
#[utoipa::path(
    tag = "complaints",
    request_body(content = ResolveRequest, example = json!({
        "resolution": {"type": "replace", "description": "Sent a new pair", "root_cause_category": "supplier",
            "root_cause": "Glue batch 2611 from the sole supplier", "corrective_action": "Batch recalled; incoming checks on glue strength"},
        "compensation": {"kind": "gift", "description": "Shoe-care kit"}
    })),
    responses(
        (status = 200, body = Complaint, headers(("ETag" = String))),
        (status = 409, description = "The complaint cannot be resolved from its status (`allowed` lists the moves it can make), or points cannot be credited", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/complaints/{id}/resolve")]
async fn resolve(
    caller: Authorized<ComplaintsWrite>,
    mut conn: DbConn,
    registry: web::Data<Registry>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<ResolveRequest>,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&caller.principal);
    let id = ComplaintId::from(*id);
    let saved = handling::resolve(&mut conn, &writer, &registry, id, &if_match, body.0).await?;
    Ok(respond(&saved))
}

/// This cycle's resolution.
#[utoipa::path(tag = "complaints", responses((status = 200, body = Resolution)))]
#[get("/complaints/{id}/resolution")]
async fn get_resolution(
    _: Authorized<ComplaintsRead>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<web::Json<Resolution>> {
    let id = ComplaintId::from(*id);
    let cycle: i32 = complaints::table
        .find(id)
        .select(complaints::cycle)
        .first(&mut conn)
        .await?;
    let found: Option<Resolution> = complaint_resolutions::table
        .find((id, cycle))
        .select(Resolution::as_select())
        .first(&mut conn)
        .await
        .optional()?;
    found
        .map(web::Json)
        .ok_or_else(|| ApiError::NotFound("the complaint is not resolved in this cycle".into()))
}

/// Record the customer's rating of the resolution: once per resolution cycle, after it is
/// resolved (a reopen starts a new cycle).
#[utoipa::path(
    tag = "complaints",
    request_body(content = NewRating, example = json!({"rating": 4, "comment": "Quick and friendly"})),
    responses(
        (status = 201, description = "Recorded", body = Satisfaction),
        (status = 409, description = "Not resolved yet, or this cycle is already rated", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/complaints/{id}/satisfaction")]
async fn rate(
    caller: Authorized<ComplaintsWrite>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<NewRating>,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&caller.principal);
    let id = ComplaintId::from(*id);
    let stored = handling::rate(&mut conn, &writer, id, &if_match, body.0).await?;
    Ok(HttpResponse::Created().json(stored))
}
