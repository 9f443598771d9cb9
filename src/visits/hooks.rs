//! Visits on the customer: the timeline entries and export section they add, how a merge
//! moves visits, plans, follow-ups and a cadence override, and what an erase blanks.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{Method, Purpose, Status, Visit, VisitRecord, VisitRow, refresh_due};
use crate::db::schema::{visit_follow_ups, visits};
use crate::error::ApiResult;
use crate::kit::ids::{CustomerId, UserId};
use crate::kit::registry::{
    CustomerHooks, ERASED, Erase, ExportSection, Timeline, TimelineCursor, TimelineEntry,
    redact_history,
};
use crate::kit::schema_part::SchemaPart;
use crate::kit::write::Writer;

/// Visits on the customer: their timeline and export, a merge moves visits, plans,
/// follow-ups and a cadence override to the survivor, and an erase blanks what staff wrote
/// about the customer (agendas, reasons, outcomes, notes, contacts, locations).
pub fn customer_hooks() -> CustomerHooks {
    CustomerHooks {
        timeline: Some(Timeline {
            kind: "visit",
            source: timeline,
            data: SchemaPart::of::<VisitSummary>,
        }),
        merge: Some(move_to_survivor),
        export: Some(ExportSection {
            section: "visits",
            read: export,
            schema: SchemaPart::list_of::<Visit>,
        }),
        ..CustomerHooks::new(
            "visits",
            &[
                "visits",
                "visit_plans",
                "visit_follow_ups",
                "visit_cadence_overrides",
                "visit_due",
            ],
            Erase::Step(erase),
        )
    }
}

fn timeline<'c>(
    conn: &'c mut AsyncPgConnection,
    customer: CustomerId,
    before: TimelineCursor,
    limit: i64,
) -> BoxFuture<'c, ApiResult<Vec<TimelineEntry>>> {
    Box::pin(async move {
        let rows = crate::timeline_rows!(
            conn,
            visits,
            VisitRow,
            scheduled_start,
            customer,
            before,
            limit
        );
        Ok(rows
            .into_iter()
            .map(|v| {
                let summary = format!(
                    "Visit ({}, {}): {} ({})",
                    v.purpose, v.method, v.reason, v.status
                );
                let data = VisitSummary {
                    status: v.status,
                    purpose: v.purpose,
                    method: v.method,
                    owner_id: v.owner_id,
                    outcome: v.outcome,
                };
                TimelineEntry::new("visit", v.scheduled_start, v.id.get(), summary, &data)
            })
            .collect())
    })
}

/// The `data` of a `visit` timeline entry (at its scheduled start).
#[derive(Debug, Serialize, ToSchema)]
pub struct VisitSummary {
    pub status: Status,
    pub purpose: Purpose,
    pub method: Method,
    pub owner_id: UserId,
    /// What came of it, once completed.
    pub outcome: Option<String>,
}

fn move_to_survivor<'c>(
    conn: &'c mut AsyncPgConnection,
    _writer: &'c Writer,
    survivor: CustomerId,
    duplicate: CustomerId,
) -> BoxFuture<'c, ApiResult<()>> {
    Box::pin(async move {
        use crate::db::schema::{visit_cadence_overrides, visit_plans};
        crate::reassign_rows!(conn, visits, survivor, duplicate);
        crate::reassign_rows!(conn, visit_plans, survivor, duplicate);
        diesel::update(visit_follow_ups::table.filter(visit_follow_ups::customer_id.eq(duplicate)))
            .set(visit_follow_ups::customer_id.eq(survivor))
            .execute(conn)
            .await?;
        // The survivor's own cadence wins; the duplicate's goes.
        diesel::delete(
            visit_cadence_overrides::table
                .filter(visit_cadence_overrides::customer_id.eq(duplicate)),
        )
        .execute(conn)
        .await?;
        refresh_due(conn, &[survivor, duplicate]).await
    })
}

fn export<'c>(
    conn: &'c mut AsyncPgConnection,
    customer: CustomerId,
) -> BoxFuture<'c, ApiResult<Value>> {
    Box::pin(async move {
        let rows = crate::export_rows!(conn, visits, VisitRow, scheduled_start, customer);
        let records = VisitRecord::assemble(conn, rows).await?;
        let all: Vec<Visit> = records.iter().map(VisitRecord::view).collect();
        Ok(serde_json::to_value(all).unwrap_or_default())
    })
}

fn erase<'c>(
    conn: &'c mut AsyncPgConnection,
    _writer: &'c Writer,
    customer: CustomerId,
) -> BoxFuture<'c, ApiResult<()>> {
    Box::pin(async move {
        use crate::db::schema::visit_plans;
        diesel::update(visits::table.filter(visits::customer_id.eq(customer)))
            .set((
                visits::agenda.eq(None::<String>),
                visits::reason.eq(ERASED),
                visits::contacts_met.eq(Vec::<String>::new()),
                visits::location.eq(None::<String>),
                visits::latitude.eq(None::<f64>),
                visits::longitude.eq(None::<f64>),
                visits::check_in.eq(None::<Value>),
                visits::check_out.eq(None::<Value>),
                visits::cancel_note.eq(None::<String>),
                visits::outcome.eq(None::<String>),
                visits::next_steps.eq(None::<String>),
                visits::schedule_history.eq(json!([])),
            ))
            .execute(conn)
            .await?;
        diesel::update(visit_plans::table.filter(visit_plans::customer_id.eq(customer)))
            .set((
                visit_plans::reason.eq(ERASED),
                visit_plans::agenda.eq(None::<String>),
                visit_plans::deleted_at.eq(Some(Utc::now())),
            ))
            .execute(conn)
            .await?;
        diesel::update(visit_follow_ups::table.filter(visit_follow_ups::customer_id.eq(customer)))
            .set(visit_follow_ups::title.eq(ERASED))
            .execute(conn)
            .await?;
        redact_history(conn, customer, "visit", ERASED_FIELDS).await
    })
}

/// The fields of visit audit entries and events that hold what staff wrote about the
/// customer, or where they were.
const ERASED_FIELDS: &[&str] = &[
    "agenda",
    "reason",
    "contacts_met",
    "location",
    "latitude",
    "longitude",
    "check_in",
    "check_out",
    "cancel_note",
    "outcome",
    "next_steps",
    "schedule_history",
    "follow_ups",
    "title",
];

/// The events the visit system records.
pub fn event_types() -> Vec<crate::kit::event_types::EventType> {
    use crate::kit::event_types::EventType;
    let visit = SchemaPart::of::<super::Visit>;
    let mut types = vec![
        EventType::new(
            "visit.planned",
            "A visit was planned (by hand or from a recurring plan).",
            visit,
        ),
        EventType::new("visit.updated", "A visit's details changed.", visit),
        EventType::new(
            "visit.confirmed",
            "The customer confirmed an appointment.",
            visit,
        ),
        EventType::new("visit.checked_in", "The visitor checked in on site.", visit),
        EventType::new("visit.checked_out", "The visitor checked out.", visit),
        EventType::new(
            "visit.completed",
            "A visit was completed, with its outcome and follow-ups.",
            visit,
        ),
        EventType::new("visit.cancelled", "A visit was cancelled.", visit),
        EventType::new("visit.no_show", "The customer was not there.", visit),
        EventType::new(
            "visit.rescheduled",
            "A visit was moved to another time.",
            visit,
        ),
        EventType::new(
            "visit.missed",
            "A planned visit passed without a check-in.",
            visit,
        ),
        EventType::deleted(
            "visit.deleted",
            "A planned occurrence of a recurring plan was withdrawn with its plan.",
        ),
    ]
    .into_iter()
    .map(|t| t.for_members(|id, _| Some(format!("/api/v1/me/visits/{id}"))))
    .collect::<Vec<_>>();
    types.extend(EventType::lifecycle::<super::plans::Plan>(
        "visit_plan",
        "recurring visit plan",
    ));
    types.extend(EventType::lifecycle::<super::cadences::Cadence>(
        "visit_cadence",
        "revisit cadence",
    ));
    types.extend(EventType::lifecycle::<super::cadences::CadenceOverride>(
        "visit_cadence_override",
        "customer's own revisit cadence",
    ));
    types.extend(EventType::lifecycle::<super::targets::Target>(
        "visit_target",
        "visit target",
    ));
    types
}
