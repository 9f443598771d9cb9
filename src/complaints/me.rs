//! The member's own complaints (`docs/members.md`): file one from the app (channel
//! `mobile_app`, severity `medium` until staff triage it), follow it by the status a customer
//! is shown, and read the public comments. The member's views are their own types: no
//! assignee, internal status, SLA policy or clocks, severity or internal comments.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use super::requests::{Description, NewComment, NewComplaint, NewRating, SubjectLine};
use super::{
    Category, Channel, Comment, ComplaintRow, CustomerStatus, Severity, Visibility, handling,
};
use crate::auth::Me;
use crate::customers::api as customers;
use crate::db::DbConn;
use crate::db::keyset::older_than;
use crate::db::schema::{complaint_comments, complaints};
use crate::error::{ApiError, ApiResult};
use crate::http::etag::IfMatch;
use crate::http::json::ValidJson;
use crate::http::pagination::{Page, PageParams};
use crate::http::query::Query;
use crate::kit::ids::{ComplaintId, OrderId};
use crate::kit::input::Text;
use crate::kit::write::Writer;

crate::routes!(
    list_complaints,
    file_complaint,
    get_complaint,
    comment_on_complaint,
    rate_complaint
);

/// A complaint as the customer who made it sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberComplaint {
    pub id: ComplaintId,
    pub order_id: Option<OrderId>,
    pub category: Category,
    #[schema(example = "Sole came off after a week")]
    pub subject: String,
    pub description: String,
    /// Where it stands, as a customer is told.
    pub status: CustomerStatus,
    /// The resolution cycle: 1, and one more per reopen.
    pub cycle: i32,
    pub received_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ComplaintRow> for MemberComplaint {
    fn from(row: ComplaintRow) -> Self {
        Self {
            id: row.id,
            order_id: row.order_id,
            category: row.category,
            subject: row.subject,
            description: row.description,
            status: row.status.for_customer(),
            cycle: row.cycle,
            received_at: row.received_at,
            resolved_at: row.resolved_at,
            closed_at: row.closed_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A public comment on the member's complaint.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberComment {
    pub id: Uuid,
    /// Whether the member wrote it (otherwise the company did).
    pub yours: bool,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// The member's complaint with its public comments, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberComplaintDetail {
    #[serde(flatten)]
    pub complaint: MemberComplaint,
    pub comments: Vec<MemberComment>,
}

/// Body of `POST /me/complaints`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMemberComplaint {
    pub category: Category,
    #[validate(nested)]
    pub subject: SubjectLine,
    #[validate(nested)]
    pub description: Description,
    /// One of the member's own orders that the complaint is about.
    pub order_id: Option<OrderId>,
}

#[derive(Serialize, Deserialize)]
struct ComplaintCursor(DateTime<Utc>, Uuid);

/// The member's complaints, newest first.
#[utoipa::path(tag = "members", params(PageParams), responses((status = 200, body = Page<MemberComplaint>)))]
#[get("/me/complaints")]
async fn list_complaints(
    me: Me,
    mut conn: DbConn,
    page: Query<PageParams>,
) -> ApiResult<web::Json<Page<MemberComplaint>>> {
    customers::member_customer(&conn, &me).await?;
    let window = page.window::<ComplaintCursor>()?;
    let mut query = complaints::table
        .filter(complaints::customer_id.eq(me.customer))
        .select(ComplaintRow::as_select())
        .order((complaints::created_at.desc(), complaints::id.desc()))
        .limit(window.fetch())
        .into_boxed();
    if let Some(ComplaintCursor(at, id)) = window.after {
        query = query.filter(older_than(complaints::created_at, complaints::id, (at, id)));
    }
    let rows = query.load(&mut conn).await?;
    Ok(web::Json(
        window
            .page(rows, |c| ComplaintCursor(c.created_at, c.id.get()))
            .map(MemberComplaint::from),
    ))
}

/// File a complaint from the app: channel `mobile_app`, severity `medium` until staff triage
/// it; the SLA policies apply as to any complaint.
#[utoipa::path(
    tag = "members",
    request_body = NewMemberComplaint,
    responses((status = 201, description = "Filed", body = MemberComplaintDetail, headers(("Location" = String))))
)]
#[post("/me/complaints")]
async fn file_complaint(
    me: Me,
    mut conn: DbConn,
    body: ValidJson<NewMemberComplaint>,
) -> ApiResult<HttpResponse> {
    customers::member_customer(&conn, &me).await?;
    let b = body.0;
    let new = NewComplaint {
        customer_id: me.customer,
        channel: Channel::MobileApp,
        category: b.category,
        severity: Severity::Medium,
        subject: b.subject,
        description: b.description,
        order_id: b.order_id,
        sku: None,
        assignee_id: None,
        promised_by: None,
        received_at: None,
    };
    let writer = Writer::of(&me.principal);
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            handling::open(conn, &writer, new, None).await
        })
        .await?;
    let id = saved.row.id;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/me/complaints/{id}")))
        .json(MemberComplaintDetail {
            complaint: saved.row.into(),
            comments: Vec::new(),
        }))
}

/// Body of `POST /me/complaints/{id}/comments`: a member's comments are always public.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMemberComment {
    #[validate(nested)]
    pub body: Text<1, 10000>,
}

/// The member's own complaint, by id: `404` for anyone else's (no existence leak).
async fn own(
    conn: &mut diesel_async::AsyncPgConnection,
    me: &Me,
    id: Uuid,
) -> ApiResult<ComplaintRow> {
    customers::member_customer(conn, me).await?;
    complaints::table
        .find(ComplaintId::from(id))
        .filter(complaints::customer_id.eq(me.customer))
        .select(ComplaintRow::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| ApiError::NotFound("no such complaint".into()))
}

/// Add a comment to the member's complaint (public: the company sees it beside its own).
#[utoipa::path(tag = "members", request_body = NewMemberComment, responses((status = 201, description = "Added", body = MemberComment)))]
#[post("/me/complaints/{id}/comments")]
async fn comment_on_complaint(
    me: Me,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    body: ValidJson<NewMemberComment>,
) -> ApiResult<HttpResponse> {
    let row = own(&mut conn, &me, *id).await?;
    let new = NewComment {
        visibility: Visibility::Public,
        body: body.0.body,
        answer_id: None,
    };
    let writer = Writer::of(&me.principal);
    let saved = handling::comment(&mut conn, &writer, row.id, &IfMatch::Absent, new).await?;
    Ok(HttpResponse::Created().json(MemberComment {
        id: saved.id,
        yours: true,
        body: saved.body,
        created_at: saved.created_at,
    }))
}

/// Rate how the complaint was handled: once per resolution cycle, after it is resolved (a
/// reopen starts a new cycle).
#[utoipa::path(
    tag = "members",
    request_body(content = NewRating, example = json!({"rating": 5, "comment": "Quick and friendly"})),
    responses(
        (status = 201, description = "Recorded", body = super::Satisfaction),
        (status = 409, description = "Not resolved yet, or this cycle is already rated", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/me/complaints/{id}/satisfaction")]
async fn rate_complaint(
    me: Me,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    body: ValidJson<NewRating>,
) -> ApiResult<HttpResponse> {
    let row = own(&mut conn, &me, *id).await?;
    let writer = Writer::of(&me.principal);
    let stored = handling::rate(&mut conn, &writer, row.id, &IfMatch::Absent, body.0).await?;
    Ok(HttpResponse::Created().json(stored))
}

/// One of the member's complaints with its public comments (`404` for anyone else's).
#[utoipa::path(tag = "members", responses((status = 200, body = MemberComplaintDetail)))]
#[get("/me/complaints/{id}")]
async fn get_complaint(
    me: Me,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<web::Json<MemberComplaintDetail>> {
    let row = own(&mut conn, &me, *id).await?;
    let comments: Vec<Comment> = complaint_comments::table
        .filter(complaint_comments::complaint_id.eq(row.id))
        .filter(complaint_comments::visibility.eq(Visibility::Public))
        .order((complaint_comments::created_at, complaint_comments::id))
        .select(Comment::as_select())
        .load(&mut conn)
        .await?;
    let member = me.customer.get();
    Ok(web::Json(MemberComplaintDetail {
        complaint: row.into(),
        comments: comments
            .into_iter()
            .map(|c| MemberComment {
                id: c.id,
                yours: c.author_type == "member" && c.author_id == Some(member),
                body: c.body,
                created_at: c.created_at,
            })
            .collect(),
    }))
}
