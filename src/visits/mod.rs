//! Visits (客户拜访制度): a visit's five elements — when, what, who, how, why — worked through
//! one state machine from plan to outcome, with geo check-ins that may arrive late from an
//! offline phone, recurring plans, revisit cadences per value tier and the due list they
//! make, boards and targets. `docs/visits.md` describes the whole of it.

pub mod analytics;
pub mod boards;
pub mod cadences;
pub mod geo;
mod hooks;
pub mod jobs;
pub mod me;
pub mod planning;
pub mod plans;
pub mod recurrence;
pub mod requests;
pub mod routes;
pub mod steps;
pub mod targets;

pub use hooks::{VisitSummary, customer_hooks, event_types};

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use self::geo::Point;
use crate::auth::Ownership;
use crate::db::schema::{visit_follow_ups, visits};
use crate::error::ApiResult;
use crate::http::timestamps::{optional_timestamp, timestamp};
use crate::kit::ids::{ComplaintId, CustomerId, PlanId, UserId, VisitId};
use crate::kit::workflow::Workflow;
use crate::kit::write::{Action, Versioned};
use crate::text_enum;

/// The tables this domain owns: other domains name none of them, and reach what they hold
/// through `visits::api` (a test reads the source to keep it so).
pub const TABLES: [&str; 7] = [
    "visit_plans",
    "visits",
    "visit_follow_ups",
    "visit_cadences",
    "visit_cadence_overrides",
    "visit_due",
    "visit_targets",
];

text_enum! {
    /// What the visit is for (何事).
    pub enum Purpose {
        AfterSalesFollowUp = "after_sales_follow_up",
        RelationshipMaintenance = "relationship_maintenance",
        Sales = "sales",
        ComplaintFollowUp = "complaint_follow_up",
        Greeting = "greeting",
        SatisfactionSurvey = "satisfaction_survey",
        ReferralRequest = "referral_request",
        EventInvitation = "event_invitation",
        Other = "other",
    }
}

text_enum! {
    /// How the customer is met (何种方法).
    pub enum Method { InPerson = "in_person", Phone = "phone", Video = "video", Email = "email", Message = "message" }
}

text_enum! {
    /// Where a visit stands.
    pub enum Status as VisitStatus {
        Planned = "planned",
        /// The appointment is agreed with the customer.
        Confirmed = "confirmed",
        CheckedIn = "checked_in",
        Completed = "completed",
        Cancelled = "cancelled",
        NoShow = "no_show",
        /// Its end passed the grace period without a check-in (set by the missed-visit job).
        Missed = "missed",
    }
}

/// A visit planned (its event is `visit.planned`).
pub const PLANNED: Action = Action::named("created", "planned");
pub const CONFIRMED: Action = Action::named("confirmed", "confirmed");
pub const CHECKED_IN: Action = Action::named("checked_in", "checked_in");
pub const CHECKED_OUT: Action = Action::named("checked_out", "checked_out");
pub const COMPLETED: Action = Action::named("completed", "completed");
pub const CANCELLED: Action = Action::named("cancelled", "cancelled");
pub const NO_SHOW: Action = Action::named("no_show", "no_show");
pub const RESCHEDULED: Action = Action::named("rescheduled", "rescheduled");
/// A visit marked missed by the job.
pub const MISSED: Action = Action::named("missed", "missed");

/// The visits' settings (`--visit-grace`, `--visit-horizon-days`), shared with the handlers
/// and the jobs.
#[derive(Debug, Clone, Copy)]
pub struct VisitSettings {
    /// How long after its end an unchecked visit becomes `missed`.
    pub grace: chrono::Duration,
    /// How far ahead plans are materialised.
    pub horizon: chrono::Duration,
}

impl VisitSettings {
    /// From the command line or environment.
    pub fn from(settings: &crate::config::Settings) -> Self {
        Self {
            grace: chrono::Duration::from_std(settings.visit_grace)
                .unwrap_or(chrono::Duration::hours(2)),
            horizon: chrono::Duration::days(i64::from(settings.visit_horizon_days)),
        }
    }
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

crate::workflow! {
    /// planned → confirmed → checked_in → completed (an agent at the door may check in to a
    /// visit nobody confirmed: `confirmed_at` stays null); planned or confirmed → cancelled,
    /// no_show or missed; a reschedule brings a confirmed, missed or no-show visit back to
    /// planned (the same id).
    Status:
        (Planned, Confirmed | CheckedIn)
            | (Confirmed, CheckedIn)
            | (CheckedIn, Completed)
            | (Planned | Confirmed, Cancelled | NoShow | Missed)
            | (Confirmed | Missed | NoShow, Planned)
}

impl Status {
    /// Whether a reschedule may move the visit (it returns to `planned`).
    pub fn may_reschedule(self) -> bool {
        self == Self::Planned || self.may_become(Self::Planned)
    }

    /// Whether the visit still lies ahead: it keeps its customer off the due list.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Planned | Self::Confirmed | Self::CheckedIn)
    }
}

text_enum! {
    /// Why a visit was cancelled.
    pub enum CancelReason {
        CustomerChangedPlans = "customer_changed_plans",
        CustomerCancelled = "customer_cancelled",
        NotAtHome = "not_at_home",
        StaffUnavailable = "staff_unavailable",
        Other = "other",
    }
}

/// A position reported by the field app at check-in or check-out, with both clocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Capture {
    /// `null` when the device sent no position (a phone call, no fix).
    pub latitude: Option<f64>,
    /// `null` when the device sent no position.
    pub longitude: Option<f64>,
    /// The device's reported accuracy radius, in metres; `null` when it sent none.
    pub accuracy_m: Option<f64>,
    /// When the device took it (it may sync hours later).
    pub captured_at: DateTime<Utc>,
    /// When the server received it.
    pub received_at: DateTime<Utc>,
    /// Metres to the visit's location; `null` when either has no coordinates.
    pub distance_m: Option<f64>,
    /// At check-in: distance − accuracy ≤ the radius (the customer tier's cadence, default
    /// 200 m). `null` at check-out or without a distance.
    pub within_radius: Option<bool>,
    /// Received more than 10 minutes (`LATE_SYNC_MINUTES`) after it was captured.
    pub late_sync: bool,
}

/// One move of a visit's time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleChange {
    pub old_start: DateTime<Utc>,
    pub old_end: DateTime<Utc>,
    pub new_start: DateTime<Utc>,
    pub new_end: DateTime<Utc>,
    /// Who moved it: `user:<id>`, `api_key:<id>` or `system`.
    pub by: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// A visit row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = visits, treat_none_as_null = true)]
pub struct VisitRow {
    pub id: VisitId,
    pub customer_id: CustomerId,
    pub owner_id: UserId,
    pub complaint_id: Option<ComplaintId>,
    pub plan_id: Option<PlanId>,
    pub occurrence_at: Option<DateTime<Utc>>,
    pub scheduled_start: DateTime<Utc>,
    pub scheduled_end: DateTime<Utc>,
    pub purpose: Purpose,
    pub method: Method,
    pub agenda: Option<String>,
    pub reason: String,
    pub participants: Vec<UserId>,
    pub contacts_met: Vec<String>,
    pub location: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub status: Status,
    pub cancel_reason: Option<CancelReason>,
    pub cancel_note: Option<String>,
    pub outcome: Option<String>,
    pub next_steps: Option<String>,
    pub actual_start: Option<DateTime<Utc>>,
    pub actual_end: Option<DateTime<Utc>>,
    pub check_in: Option<Value>,
    pub check_out: Option<Value>,
    pub within_radius: Option<bool>,
    pub late_sync: bool,
    pub reschedule_count: i32,
    pub schedule_history: Value,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the appointment was confirmed with the customer; `None` while it is not.
    pub confirmed_at: Option<DateTime<Utc>>,
}

/// A task agreed at a visit.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, ToSchema)]
#[diesel(table_name = visit_follow_ups)]
pub struct FollowUp {
    pub id: Uuid,
    #[serde(skip)]
    pub visit_id: VisitId,
    #[serde(skip)]
    pub owner_id: UserId,
    #[serde(skip)]
    pub customer_id: CustomerId,
    #[schema(example = "Send the spring catalogue")]
    pub title: String,
    pub due_on: Option<NaiveDate>,
    /// When it was done; `null` while open.
    pub done_at: Option<DateTime<Utc>>,
    /// The visit it planned.
    pub next_visit_id: Option<VisitId>,
    /// The complaint it opened.
    pub complaint_id: Option<ComplaintId>,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
}

/// A visit as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Visit {
    pub id: VisitId,
    pub customer_id: CustomerId,
    /// Who makes the visit (何人).
    pub owner_id: UserId,
    /// Other staff coming along.
    pub participants: Vec<UserId>,
    /// The customer's people met.
    #[schema(example = json!(["Mrs Li (purchasing)"]))]
    pub contacts_met: Vec<String>,
    /// The complaint the visit follows up.
    pub complaint_id: Option<ComplaintId>,
    /// The recurring plan it is an occurrence of, and that occurrence's original start.
    pub plan_id: Option<PlanId>,
    #[serde(serialize_with = "optional_timestamp")]
    pub occurrence_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "timestamp")]
    pub scheduled_start: DateTime<Utc>,
    #[serde(serialize_with = "timestamp")]
    pub scheduled_end: DateTime<Utc>,
    pub purpose: Purpose,
    pub method: Method,
    pub agenda: Option<String>,
    /// Why this visit, now (何种理由).
    pub reason: String,
    pub location: Option<String>,
    /// Where check-ins are measured from (by default the customer's address coordinates).
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub status: Status,
    /// When the appointment was confirmed with the customer; `null` for a visit not (or no
    /// longer, after a reschedule) confirmed, including one checked in without confirmation.
    #[serde(serialize_with = "optional_timestamp")]
    pub confirmed_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<CancelReason>,
    pub cancel_note: Option<String>,
    pub outcome: Option<String>,
    pub next_steps: Option<String>,
    /// When the visit actually began and ended (the check-in and check-out, as captured).
    #[serde(serialize_with = "optional_timestamp")]
    pub actual_start: Option<DateTime<Utc>>,
    #[serde(serialize_with = "optional_timestamp")]
    pub actual_end: Option<DateTime<Utc>>,
    /// Minutes from the actual start to the actual end.
    pub duration_minutes: Option<i64>,
    pub check_in: Option<Capture>,
    pub check_out: Option<Capture>,
    /// Whether the check-in was within the radius (distance − accuracy ≤ radius); `false`
    /// check-ins are accepted but flagged. `null` before a check-in or without coordinates.
    pub within_radius: Option<bool>,
    /// A check-in or check-out reached the server late (an offline phone).
    pub late_sync: bool,
    pub reschedule_count: i32,
    pub schedule_history: Vec<ScheduleChange>,
    pub follow_ups: Vec<FollowUp>,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

/// A visit with its follow-ups: what the write path stores, audits and announces.
#[derive(Debug, Clone, Serialize)]
pub struct VisitRecord {
    #[serde(flatten)]
    pub row: VisitRow,
    pub follow_ups: Vec<FollowUp>,
}

impl VisitRow {
    /// A visit as planned (by hand, from a follow-up, or as the `occurrence` of a plan at a
    /// time): what planning decided, and nothing yet of what happens at it.
    pub fn planned(
        p: Planned,
        occurrence: Option<(PlanId, DateTime<Utc>)>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: VisitId::new(),
            customer_id: p.customer_id,
            owner_id: p.owner_id,
            complaint_id: p.complaint_id,
            plan_id: occurrence.map(|(plan, _)| plan),
            occurrence_at: occurrence.map(|(_, at)| at),
            scheduled_start: p.scheduled_start,
            scheduled_end: p.scheduled_end,
            purpose: p.purpose,
            method: p.method,
            agenda: p.agenda,
            reason: p.reason,
            participants: p.participants,
            contacts_met: Vec::new(),
            location: p.location,
            latitude: p.coordinates.map(|c| c.latitude),
            longitude: p.coordinates.map(|c| c.longitude),
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
            confirmed_at: None,
        }
    }

    /// The visit's location as a point, when it has coordinates.
    pub fn point(&self) -> Option<Point> {
        self.latitude
            .zip(self.longitude)
            .map(|(latitude, longitude)| Point {
                latitude,
                longitude,
            })
    }

    /// The stored check-in, read back.
    pub fn check_in(&self) -> Option<Capture> {
        parsed(&self.check_in)
    }

    /// The stored check-out, read back.
    pub fn check_out(&self) -> Option<Capture> {
        parsed(&self.check_out)
    }

    /// The schedule history, read back.
    pub fn history(&self) -> Vec<ScheduleChange> {
        parsed(&Some(self.schedule_history.clone())).unwrap_or_default()
    }
}

fn parsed<T: serde::de::DeserializeOwned>(value: &Option<Value>) -> Option<T> {
    value
        .as_ref()
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

impl VisitRecord {
    /// The view.
    pub fn view(&self) -> Visit {
        let r = &self.row;
        Visit {
            id: r.id,
            customer_id: r.customer_id,
            owner_id: r.owner_id,
            participants: r.participants.clone(),
            contacts_met: r.contacts_met.clone(),
            complaint_id: r.complaint_id,
            plan_id: r.plan_id,
            occurrence_at: r.occurrence_at,
            scheduled_start: r.scheduled_start,
            scheduled_end: r.scheduled_end,
            purpose: r.purpose,
            method: r.method,
            agenda: r.agenda.clone(),
            reason: r.reason.clone(),
            location: r.location.clone(),
            latitude: r.latitude,
            longitude: r.longitude,
            status: r.status,
            confirmed_at: r.confirmed_at,
            cancel_reason: r.cancel_reason,
            cancel_note: r.cancel_note.clone(),
            outcome: r.outcome.clone(),
            next_steps: r.next_steps.clone(),
            actual_start: r.actual_start,
            actual_end: r.actual_end,
            duration_minutes: r
                .actual_start
                .zip(r.actual_end)
                .map(|(start, end)| (end - start).num_minutes()),
            check_in: r.check_in(),
            check_out: r.check_out(),
            within_radius: r.within_radius,
            late_sync: r.late_sync,
            reschedule_count: r.reschedule_count,
            schedule_history: r.history(),
            follow_ups: self.follow_ups.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }

    /// Records of these rows with their follow-ups.
    pub async fn assemble(
        conn: &mut AsyncPgConnection,
        rows: Vec<VisitRow>,
    ) -> ApiResult<Vec<Self>> {
        let ids: Vec<VisitId> = rows.iter().map(|r| r.id).collect();
        let follow_ups: Vec<FollowUp> = visit_follow_ups::table
            .filter(visit_follow_ups::visit_id.eq_any(&ids))
            .order((visit_follow_ups::created_at, visit_follow_ups::id))
            .select(FollowUp::as_select())
            .load(conn)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| Self {
                follow_ups: follow_ups
                    .iter()
                    .filter(|f| f.visit_id == row.id)
                    .cloned()
                    .collect(),
                row,
            })
            .collect())
    }

    /// The visit, read for one.
    pub async fn find(conn: &mut AsyncPgConnection, id: VisitId) -> ApiResult<Self> {
        let row: VisitRow = visits::table
            .find(id)
            .select(VisitRow::as_select())
            .first(conn)
            .await?;
        Ok(Self::assemble(conn, vec![row]).await?.remove(0))
    }
}

/// Rewrites the customers' rows of the due list (`visit_due_refresh` in the migration).
pub async fn refresh_due(conn: &mut AsyncPgConnection, customers: &[CustomerId]) -> ApiResult<()> {
    let ids: Vec<Uuid> = customers.iter().map(|c| c.get()).collect();
    diesel::sql_query("SELECT visit_due_refresh($1)")
        .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(ids)
        .execute(conn)
        .await?;
    Ok(())
}

impl Versioned for VisitRecord {
    const KIND: &'static str = "visit";
    type Id = VisitId;

    crate::versioned_columns!(id: row.id, version: row.version, updated_at: row.updated_at);

    fn customer_id(&self) -> Option<CustomerId> {
        Some(self.row.customer_id)
    }

    /// Agents change their own visits.
    fn ownership(&self) -> Ownership {
        Ownership::Owned {
            owner: Some(self.row.owner_id),
            what: "their own visits",
        }
    }

    fn view(&self) -> Value {
        serde_json::to_value(VisitRecord::view(self)).unwrap_or_default()
    }

    async fn lock(conn: &mut AsyncPgConnection, id: VisitId) -> ApiResult<Self> {
        let row: VisitRow = visits::table
            .find(id)
            .select(VisitRow::as_select())
            .for_update()
            .first(conn)
            .await?;
        Ok(Self::assemble(conn, vec![row]).await?.remove(0))
    }

    async fn insert(&self, conn: &mut AsyncPgConnection) -> ApiResult<Self> {
        diesel::insert_into(visits::table)
            .values(&self.row)
            .execute(conn)
            .await?;
        store_follow_ups(conn, &self.follow_ups).await?;
        refresh_due(conn, &[self.row.customer_id]).await?;
        Ok(self.clone())
    }

    async fn update(&self, conn: &mut AsyncPgConnection) -> ApiResult<Self> {
        let r = &self.row;
        diesel::update(visits::table.find(r.id))
            .set(r)
            .execute(conn)
            .await?;
        store_follow_ups(conn, &self.follow_ups).await?;
        refresh_due(conn, &[r.customer_id]).await?;
        Ok(self.clone())
    }
}

async fn store_follow_ups(conn: &mut AsyncPgConnection, follow_ups: &[FollowUp]) -> ApiResult<()> {
    use diesel::upsert::excluded;
    if follow_ups.is_empty() {
        return Ok(());
    }
    diesel::insert_into(visit_follow_ups::table)
        .values(follow_ups)
        .on_conflict(visit_follow_ups::id)
        .do_update()
        .set((
            visit_follow_ups::title.eq(excluded(visit_follow_ups::title)),
            visit_follow_ups::due_on.eq(excluded(visit_follow_ups::due_on)),
            visit_follow_ups::done_at.eq(excluded(visit_follow_ups::done_at)),
            visit_follow_ups::owner_id.eq(excluded(visit_follow_ups::owner_id)),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Status::{self, *};
    use crate::kit::workflow::ensure_move;

    /// Every pair of states, legal or not, against the table the issue gives.
    #[test]
    fn every_transition_legal_and_illegal() {
        let legal = [
            (Planned, Confirmed),
            (Confirmed, CheckedIn),
            (CheckedIn, Completed),
            (Planned, CheckedIn),
            (Planned, Cancelled),
            (Confirmed, Cancelled),
            (Planned, NoShow),
            (Confirmed, NoShow),
            (Planned, Missed),
            (Confirmed, Missed),
            (Confirmed, Planned),
            (Missed, Planned),
            (NoShow, Planned),
        ];
        crate::kit::workflow::assert_exactly("a visit", &legal);
    }

    #[test]
    fn reschedules_and_the_due_list() {
        let reschedulable: Vec<Status> = Status::ALL
            .iter()
            .copied()
            .filter(|s| s.may_reschedule())
            .collect();
        assert_eq!(reschedulable, [Planned, Confirmed, NoShow, Missed]);
        let open: Vec<Status> = Status::ALL
            .iter()
            .copied()
            .filter(|s| s.is_open())
            .collect();
        assert_eq!(open, [Planned, Confirmed, CheckedIn]);
        let problem = ensure_move("a visit", Completed, Planned)
            .unwrap_err()
            .problem();
        assert_eq!(problem.status, 409);
        assert!(problem.allowed.is_empty());
    }
}
