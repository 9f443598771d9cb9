//! `GET /me/changes`: a member's own slice of the change feed, for an app's offline copy.
//! The same walk as `/changes`, narrowed to the member's customer and to the types each
//! domain declares for members (`EventType::for_members`). An entry names what changed and
//! the `/me` path to read it from, never the staff's `data`: the member's views are the
//! `/me` types, so the feed cannot show an owner, an internal comment or a policy.

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{FeedParams, limit, page, position, types_named};
use crate::auth::Me;
use crate::customers::api as customers;
use crate::db::DbConn;
use crate::error::ApiResult;
use crate::http::query::Query;
use crate::kit::event_types::Catalogue;

crate::routes!(list_changes);

/// One change to what the member can see.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberChange {
    /// The position just after this change: resuming here gives the changes after it.
    pub cursor: String,
    /// The event's id.
    pub id: Uuid,
    #[serde(rename = "type")]
    #[schema(example = "complaint.status_changed")]
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    #[schema(example = "complaint")]
    pub subject_type: String,
    pub subject_id: Uuid,
    /// Where the member reads the resource as it is now (`GET` with the member token).
    #[schema(example = "/api/v1/me/complaints/0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub href: String,
}

/// A page of the member's feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberChangePage {
    pub data: Vec<MemberChange>,
    /// Where to resume, always (as in `/changes`).
    pub next_cursor: String,
}

/// The member's own changes in commit order: their profile, complaints, visits, points and
/// registrations. Keep `next_cursor` and pass it as `since`; read each `href` to refresh the
/// app's copy.
#[utoipa::path(
    tag = "members",
    params(FeedParams),
    responses(
        (status = 200, body = MemberChangePage),
        (status = 422, description = "`types` names an unknown event type", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/me/changes")]
async fn list_changes(
    me: Me,
    mut conn: DbConn,
    catalogue: web::Data<Catalogue>,
    params: Query<FeedParams>,
) -> ApiResult<web::Json<MemberChangePage>> {
    customers::member_customer(&conn, &me).await?;
    let limit = limit(params.limit)?;
    let members = catalogue.member_types();
    let types: Vec<String> = types_named(&catalogue, params.types.as_deref())?
        .into_iter()
        .filter(|t| members.contains(t))
        .collect();
    let after = position(&mut conn, params.since.as_deref()).await?;
    let found = page(&mut conn, after, &types, limit, Some(me.customer.get())).await?;
    let data = found
        .data
        .into_iter()
        .filter_map(|c| {
            let href = catalogue.member_link(&c.event_type, c.subject_id, &c.data)?;
            Some(MemberChange {
                cursor: c.cursor,
                id: c.id,
                event_type: c.event_type,
                occurred_at: c.occurred_at,
                subject_type: c.subject_type,
                subject_id: c.subject_id,
                href,
            })
        })
        .collect();
    Ok(web::Json(MemberChangePage {
        data,
        next_cursor: found.next_cursor,
    }))
}
