//! The member's own visits (`docs/members.md`): the appointments staff planned with the
//! customer, which the customer's app lists, confirms or cancels. The member's view is its own
//! type: when, how, what for and where, never the owner, agenda, reasons, outcome, notes or
//! check-in positions. Confirming and cancelling are the staff's own steps, written as the
//! member.

use actix_web::{get, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use super::requests::CancelRequest;
use super::{CancelReason, Method, Purpose, Status, VisitRecord, VisitRow, steps};
use crate::auth::Me;
use crate::customers::api as customers;
use crate::db::DbConn;
use crate::db::keyset::older_than;
use crate::db::schema::visits;
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::etag::IfMatch;
use crate::http::json::ValidJson;
use crate::http::pagination::{Page, PageParams};
use crate::http::query::Query;
use crate::kit::ids::VisitId;
use crate::kit::input::Text;
use crate::kit::write::Writer;

crate::routes!(list_visits, get_visit, confirm_visit, cancel_visit);

/// A visit as the customer visited sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberVisit {
    pub id: VisitId,
    pub status: Status,
    pub purpose: Purpose,
    pub method: Method,
    pub scheduled_start: DateTime<Utc>,
    pub scheduled_end: DateTime<Utc>,
    /// Where, for a visit in person.
    pub location: Option<String>,
    /// When the appointment was confirmed (by the customer or the staff).
    pub confirmed_at: Option<DateTime<Utc>>,
    /// When it took place.
    pub actual_start: Option<DateTime<Utc>>,
    pub actual_end: Option<DateTime<Utc>>,
    pub cancel_reason: Option<CancelReason>,
    /// How many times it was moved.
    pub reschedule_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<VisitRow> for MemberVisit {
    fn from(v: VisitRow) -> Self {
        Self {
            id: v.id,
            status: v.status,
            purpose: v.purpose,
            method: v.method,
            scheduled_start: v.scheduled_start,
            scheduled_end: v.scheduled_end,
            location: v.location,
            confirmed_at: v.confirmed_at,
            actual_start: v.actual_start,
            actual_end: v.actual_end,
            cancel_reason: v.cancel_reason,
            reschedule_count: v.reschedule_count,
            created_at: v.created_at,
            updated_at: v.updated_at,
        }
    }
}

impl From<VisitRecord> for MemberVisit {
    fn from(record: VisitRecord) -> Self {
        record.row.into()
    }
}

#[derive(Serialize, Deserialize)]
struct VisitCursor(DateTime<Utc>, Uuid);

/// The member's visits, latest scheduled first.
#[utoipa::path(tag = "members", params(PageParams), responses((status = 200, body = Page<MemberVisit>)))]
#[get("/me/visits")]
async fn list_visits(
    me: Me,
    mut conn: DbConn,
    page: Query<PageParams>,
) -> ApiResult<web::Json<Page<MemberVisit>>> {
    customers::member_customer(&conn, &me).await?;
    let window = page.window::<VisitCursor>()?;
    let mut query = visits::table
        .filter(visits::customer_id.eq(me.customer))
        .select(VisitRow::as_select())
        .order((visits::scheduled_start.desc(), visits::id.desc()))
        .limit(window.fetch())
        .into_boxed();
    if let Some(VisitCursor(at, id)) = window.after {
        query = query.filter(older_than(visits::scheduled_start, visits::id, (at, id)));
    }
    let rows = query.load(&mut conn).await?;
    Ok(web::Json(
        window
            .page(rows, |v| VisitCursor(v.scheduled_start, v.id.get()))
            .map(MemberVisit::from),
    ))
}

/// The member's own visit: `404` for anyone else's.
async fn own(conn: &mut AsyncPgConnection, me: &Me, id: Uuid) -> ApiResult<VisitRow> {
    customers::member_customer(conn, me).await?;
    visits::table
        .find(VisitId::from(id))
        .filter(visits::customer_id.eq(me.customer))
        .select(VisitRow::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| ApiError::NotFound("no such visit".into()))
}

/// One of the member's visits.
#[utoipa::path(tag = "members", responses((status = 200, body = MemberVisit)))]
#[get("/me/visits/{id}")]
async fn get_visit(
    me: Me,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<web::Json<MemberVisit>> {
    Ok(web::Json(own(&mut conn, &me, *id).await?.into()))
}

/// Confirm a planned appointment.
#[utoipa::path(
    tag = "members",
    responses(
        (status = 200, body = MemberVisit),
        (status = 409, description = "Not planned (`allowed` lists its possible moves)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/me/visits/{id}/confirm")]
async fn confirm_visit(
    me: Me,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<web::Json<MemberVisit>> {
    let visit = own(&mut conn, &me, *id).await?;
    let writer = Writer::of(&me.principal);
    let saved = steps::confirm(&mut conn, &writer, visit.id, &IfMatch::Absent).await?;
    Ok(web::Json(saved.into()))
}

/// Body of `POST /me/visits/{id}/cancel`.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberCancel {
    /// A word to the staff (why, or when would suit better).
    #[validate(nested)]
    pub note: Option<Text<1, 2000>>,
}

/// Cancel a planned or confirmed appointment (recorded as cancelled by the customer).
#[utoipa::path(
    tag = "members",
    request_body(content = MemberCancel, example = json!({"note": "Away that week; any day after the 20th suits"})),
    responses(
        (status = 200, body = MemberVisit),
        (status = 409, description = "Not planned or confirmed (`allowed` lists its possible moves)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/me/visits/{id}/cancel")]
async fn cancel_visit(
    me: Me,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    body: ValidJson<MemberCancel>,
) -> ApiResult<web::Json<MemberVisit>> {
    let visit = own(&mut conn, &me, *id).await?;
    let writer = Writer::of(&me.principal);
    let request = CancelRequest {
        reason: CancelReason::CustomerCancelled,
        note: body.0.note,
    };
    let saved = steps::cancel(&mut conn, &writer, visit.id, &IfMatch::Absent, request).await?;
    Ok(web::Json(saved.into()))
}
