//! What other domains may ask of complaints: open one in their own transaction (a visit's
//! follow-up does), with the body and the values a complaint is described by; whose a
//! complaint is; the deadlines a board shows.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::schema::complaints;
use crate::error::ApiResult;
use crate::http::timestamps::timestamp;
use crate::kit::ids::{ComplaintId, CustomerId, UserId};

pub use super::handling::open;
pub use super::requests::{Description, NewComplaint, SubjectLine};
pub use super::{Category, Channel, Severity, Status};

/// The customer of the complaint, if the complaint exists.
pub async fn customer_of(
    conn: &mut AsyncPgConnection,
    complaint: ComplaintId,
) -> ApiResult<Option<CustomerId>> {
    Ok(complaints::table
        .find(complaint)
        .select(complaints::customer_id)
        .first(conn)
        .await
        .optional()?)
}

/// A complaint of the owner's whose next SLA deadline falls on the day.
#[derive(Debug, Clone, Serialize, ToSchema, Queryable)]
pub struct BoardDeadline {
    pub complaint_id: ComplaintId,
    pub customer_id: CustomerId,
    pub subject: String,
    pub severity: Severity,
    pub status: Status,
    #[serde(serialize_with = "timestamp")]
    pub due_at: DateTime<Utc>,
}

/// The complaints assigned to `owner` whose next deadline falls in `[from, to)`, soonest
/// first (a board's deadlines; read on a shared connection beside the board's other reads).
pub async fn deadlines(
    mut conn: &AsyncPgConnection,
    owner: UserId,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> QueryResult<Vec<BoardDeadline>> {
    complaints::table
        .filter(complaints::assignee_id.eq(owner))
        .filter(complaints::next_due_at.ge(from))
        .filter(complaints::next_due_at.lt(to))
        .order((complaints::next_due_at, complaints::id))
        .select((
            complaints::id,
            complaints::customer_id,
            complaints::subject,
            complaints::severity,
            complaints::status,
            complaints::next_due_at.assume_not_null(),
        ))
        .load(&mut conn)
        .await
}
