//! Complaints on the customer: the timeline entries and export section they add, how a
//! merge moves them and what an erase blanks.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{
    Category, Channel, Complaint, ComplaintRecord, ComplaintRow, Resolution, Satisfaction,
    Severity, Status,
};
use crate::db::schema::{
    complaint_comments, complaint_resolutions, complaint_satisfaction, complaints,
};
use crate::error::ApiResult;
use crate::kit::ids::{ComplaintId, CustomerId};
use crate::kit::registry::{
    CustomerHooks, ERASED, Erase, ExportSection, Timeline, TimelineCursor, TimelineEntry,
    redact_history,
};
use crate::kit::schema_part::SchemaPart;
use crate::kit::write::Writer;

fn timeline<'c>(
    conn: &'c mut AsyncPgConnection,
    customer: CustomerId,
    before: TimelineCursor,
    limit: i64,
) -> BoxFuture<'c, ApiResult<Vec<TimelineEntry>>> {
    Box::pin(async move {
        let rows = crate::timeline_rows!(
            conn,
            complaints,
            ComplaintRow,
            created_at,
            customer,
            before,
            limit
        );
        Ok(rows
            .into_iter()
            .map(|c| {
                let summary = format!(
                    "Complaint ({}, {}) by {}: {} ({})",
                    c.category, c.severity, c.channel, c.subject, c.status
                );
                let data = ComplaintSummary {
                    status: c.status,
                    severity: c.severity,
                    category: c.category,
                    channel: c.channel,
                    subject: c.subject,
                };
                TimelineEntry::new("complaint", c.created_at, c.id.get(), summary, &data)
            })
            .collect())
    })
}

/// The `data` of a `complaint` timeline entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComplaintSummary {
    pub status: Status,
    pub severity: Severity,
    pub category: Category,
    pub channel: Channel,
    pub subject: String,
}

/// One complaint in a customer's export: the complaint, every comment (internal ones too:
/// the export is everything held), every resolution and every rating.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComplaintExport {
    pub complaint: Complaint,
    pub comments: Vec<ExportedComment>,
    pub resolutions: Vec<Resolution>,
    pub satisfaction: Vec<Satisfaction>,
}

/// A comment in a customer's export.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportedComment {
    /// `internal` or `public`.
    pub visibility: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

fn move_to_survivor<'c>(
    conn: &'c mut AsyncPgConnection,
    _writer: &'c Writer,
    survivor: CustomerId,
    duplicate: CustomerId,
) -> BoxFuture<'c, ApiResult<()>> {
    Box::pin(async move {
        crate::reassign_rows!(conn, complaints, survivor, duplicate);
        Ok(())
    })
}

fn export<'c>(
    conn: &'c mut AsyncPgConnection,
    customer: CustomerId,
) -> BoxFuture<'c, ApiResult<Value>> {
    Box::pin(async move {
        let rows = crate::export_rows!(conn, complaints, ComplaintRow, created_at, customer);
        let ids: Vec<ComplaintId> = rows.iter().map(|r| r.id).collect();
        let comments: Vec<(ComplaintId, String, String, DateTime<Utc>)> = complaint_comments::table
            .filter(complaint_comments::complaint_id.eq_any(&ids))
            .order((complaint_comments::created_at, complaint_comments::id))
            .select((
                complaint_comments::complaint_id,
                complaint_comments::visibility,
                complaint_comments::body,
                complaint_comments::created_at,
            ))
            .load(conn)
            .await?;
        let resolutions: Vec<Resolution> = complaint_resolutions::table
            .filter(complaint_resolutions::complaint_id.eq_any(&ids))
            .select(Resolution::as_select())
            .load(conn)
            .await?;
        let ratings: Vec<Satisfaction> = complaint_satisfaction::table
            .filter(complaint_satisfaction::complaint_id.eq_any(&ids))
            .select(Satisfaction::as_select())
            .load(conn)
            .await?;
        let records = ComplaintRecord::assemble(conn, rows, false).await?;
        let now = Utc::now();
        let all: Vec<ComplaintExport> = records
            .iter()
            .map(|r| {
                let id = r.row.id;
                ComplaintExport {
                    complaint: r.view(now),
                    comments: comments
                        .iter()
                        .filter(|c| c.0 == id)
                        .map(|(_, visibility, body, created_at)| ExportedComment {
                            visibility: visibility.clone(),
                            body: body.clone(),
                            created_at: *created_at,
                        })
                        .collect(),
                    resolutions: resolutions
                        .iter()
                        .filter(|x| x.complaint_id == id)
                        .cloned()
                        .collect(),
                    satisfaction: ratings
                        .iter()
                        .filter(|x| x.complaint_id == id)
                        .cloned()
                        .collect(),
                }
            })
            .collect();
        Ok(serde_json::to_value(all).unwrap_or_default())
    })
}

fn erase<'c>(
    conn: &'c mut AsyncPgConnection,
    _writer: &'c Writer,
    customer: CustomerId,
) -> BoxFuture<'c, ApiResult<()>> {
    Box::pin(async move {
        let ids = complaints::table
            .filter(complaints::customer_id.eq(customer))
            .select(complaints::id);
        diesel::update(complaints::table.filter(complaints::customer_id.eq(customer)))
            .set((
                complaints::subject.eq(ERASED),
                complaints::description.eq(ERASED),
                complaints::sku.eq(None::<String>),
            ))
            .execute(conn)
            .await?;
        diesel::update(
            complaint_comments::table.filter(complaint_comments::complaint_id.eq_any(ids)),
        )
        .set(complaint_comments::body.eq(ERASED))
        .execute(conn)
        .await?;
        diesel::update(
            complaint_resolutions::table.filter(complaint_resolutions::complaint_id.eq_any(ids)),
        )
        .set((
            complaint_resolutions::description.eq(ERASED),
            complaint_resolutions::root_cause.eq(ERASED),
            complaint_resolutions::corrective_action.eq(ERASED),
            complaint_resolutions::compensation_description.eq(None::<String>),
        ))
        .execute(conn)
        .await?;
        diesel::update(
            complaint_satisfaction::table.filter(complaint_satisfaction::complaint_id.eq_any(ids)),
        )
        .set(complaint_satisfaction::comment.eq(None::<String>))
        .execute(conn)
        .await?;
        redact_history(conn, customer, "complaint", ERASED_FIELDS).await
    })
}

/// The fields of complaint audit entries and events that hold what the customer said.
const ERASED_FIELDS: &[&str] = &[
    "subject",
    "description",
    "sku",
    "comment",
    "body",
    "note",
    "resolution",
    "satisfaction",
];

/// Complaints on the customer: their timeline and export, a merge moves them to the
/// survivor, and an erase blanks what they say (subjects, descriptions, comments,
/// resolutions, rating comments) while keeping the figures reports count.
pub fn customer_hooks() -> CustomerHooks {
    CustomerHooks {
        timeline: Some(Timeline {
            kind: "complaint",
            source: timeline,
            data: SchemaPart::of::<ComplaintSummary>,
        }),
        merge: Some(move_to_survivor),
        export: Some(ExportSection {
            section: "complaints",
            read: export,
            schema: SchemaPart::list_of::<ComplaintExport>,
        }),
        ..CustomerHooks::new("complaints", &["complaints"], Erase::Step(erase))
    }
}

/// The events the complaint system records.
/// The member's view of their complaint, for their feed.
fn own_complaint(id: uuid::Uuid, _: &serde_json::Value) -> Option<String> {
    Some(format!("/api/v1/me/complaints/{id}"))
}

/// A public comment shows in the member's feed; an internal one never does.
fn public_comment(id: uuid::Uuid, comment: &serde_json::Value) -> Option<String> {
    (comment["visibility"] == "public").then(|| format!("/api/v1/me/complaints/{id}"))
}

pub fn event_types() -> Vec<crate::kit::event_types::EventType> {
    use crate::kit::event_types::EventType;
    let complaint = SchemaPart::of::<super::Complaint>;
    let mut types = vec![
        EventType::new(
            "complaint.created",
            "A complaint was logged (from any window).",
            complaint,
        )
        .for_members(own_complaint),
        EventType::new(
            "complaint.updated",
            "A complaint's details, assignee or first response changed.",
            complaint,
        )
        .for_members(own_complaint),
        EventType::new(
            "complaint.status_changed",
            "A complaint moved in its workflow.",
            complaint,
        )
        .for_members(own_complaint),
        EventType::new(
            "complaint.resolved",
            "A complaint was resolved, with its resolution and any compensation.",
            complaint,
        )
        .for_members(own_complaint),
        EventType::new(
            "complaint.satisfaction_recorded",
            "The customer's satisfaction with the handling was recorded.",
            complaint,
        )
        .for_members(own_complaint),
        EventType::new(
            "complaint.commented",
            "A comment was added (internal or public).",
            SchemaPart::of::<super::Comment>,
        )
        .for_members(public_comment),
        EventType::new(
            "complaint.sla_warning",
            "A complaint's SLA clock is close to its target.",
            SchemaPart::of::<super::escalation::StepFired>,
        ),
        EventType::new(
            "complaint.sla_breached",
            "A complaint's SLA clock passed its target.",
            SchemaPart::of::<super::escalation::StepFired>,
        ),
        EventType::new(
            "complaint.escalated",
            "A step of a complaint's escalation ladder fired.",
            SchemaPart::of::<super::escalation::StepFired>,
        ),
    ];
    types.extend(EventType::lifecycle::<super::answers::Answer>(
        "answer",
        "standard answer",
    ));
    types.extend(EventType::lifecycle::<super::policies::SlaPolicy>(
        "complaint_sla_policy",
        "SLA policy",
    ));
    types.extend(EventType::lifecycle::<super::calendars::BusinessCalendar>(
        "business_calendar",
        "business calendar",
    ));
    types
}
