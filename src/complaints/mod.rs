//! Complaints (客户投诉制度): a complaint from any window, worked through one state machine
//! to a resolution that fixes its cause, with SLA clocks on business calendars, an
//! escalation ladder, compensation and satisfaction per resolution cycle, and the library of
//! standard answers. `docs/complaints.md` describes the whole of it.

pub mod analytics;
pub mod answers;
pub mod api;
pub mod business_time;
pub mod calendars;
pub mod escalation;
pub mod handling;
mod hooks;
pub mod me;
pub mod policies;
pub mod requests;
pub mod routes;
pub mod sla;

pub use hooks::{ComplaintExport, ComplaintSummary, ExportedComment, customer_hooks, event_types};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use self::sla::{ClockRow, Metric, Scheduled};
use crate::auth::Ownership;
use crate::customers::api::{Level, Tier};
use crate::db::schema::{
    complaint_clocks, complaint_comments, complaint_escalations, complaint_resolutions,
    complaint_satisfaction, complaints,
};
use crate::error::ApiResult;
use crate::http::timestamps::{optional_timestamp, timestamp};
use crate::kit::ids::{AnswerId, ComplaintId, CustomerId, OrderId, PolicyId, UserId};
use crate::kit::write::Versioned;
use crate::text_enum;

/// The tables this domain owns: other domains name none of them, and reach what they hold
/// through `complaints::api` (a test reads the source to keep it so).
pub const TABLES: [&str; 10] = [
    "business_calendars",
    "complaint_sla_policies",
    "answers",
    "answer_uses",
    "complaints",
    "complaint_clocks",
    "complaint_escalations",
    "complaint_comments",
    "complaint_resolutions",
    "complaint_satisfaction",
];

text_enum! {
    /// The window a complaint came through (投诉窗口).
    pub enum Channel {
        Phone = "phone",
        Email = "email",
        Web = "web",
        MobileApp = "mobile_app",
        Shop = "shop",
        InPerson = "in_person",
        /// The customer mailbox (意见箱).
        Mailbox = "mailbox",
        Social = "social",
    }
}

text_enum! {
    /// What the complaint is about.
    pub enum Category {
        ProductQuality = "product_quality",
        Delivery = "delivery",
        Price = "price",
        Service = "service",
        Billing = "billing",
        Other = "other",
    }
}

text_enum! {
    /// How serious the complaint is; with the customer's tier it picks the SLA policy.
    pub enum Severity { Low = "low", Medium = "medium", High = "high", Critical = "critical" }
}

text_enum! {
    /// Where a complaint stands internally.
    pub enum Status {
        New = "new",
        Acknowledged = "acknowledged",
        InProgress = "in_progress",
        /// Clocks paused until the customer answers.
        AwaitingCustomer = "awaiting_customer",
        Resolved = "resolved",
        Closed = "closed",
        Reopened = "reopened",
    }
}

crate::workflow! {
    /// new → acknowledged → in_progress ⇄ awaiting_customer → resolved → closed; resolved or
    /// closed → reopened (within the reopen window) → in_progress.
    Status:
        (New, Acknowledged)
            | (Acknowledged, InProgress)
            | (InProgress, AwaitingCustomer | Resolved)
            | (AwaitingCustomer, InProgress | Resolved)
            | (Resolved, Closed | Reopened)
            | (Closed, Reopened)
            | (Reopened, InProgress)
}

text_enum! {
    /// What a customer may be shown of the status (the internal steps stay internal).
    pub enum CustomerStatus {
        Received = "received",
        BeingHandled = "being_handled",
        WaitingForYou = "waiting_for_you",
        Resolved = "resolved",
        Closed = "closed",
    }
}

impl Status {
    /// The label a customer sees.
    pub fn for_customer(self) -> CustomerStatus {
        match self {
            Self::New | Self::Acknowledged => CustomerStatus::Received,
            Self::InProgress | Self::Reopened => CustomerStatus::BeingHandled,
            Self::AwaitingCustomer => CustomerStatus::WaitingForYou,
            Self::Resolved => CustomerStatus::Resolved,
            Self::Closed => CustomerStatus::Closed,
        }
    }
}

text_enum! {
    /// How a complaint was resolved.
    pub enum ResolutionType {
        Repair = "repair",
        Replace = "replace",
        Refund = "refund",
        Return = "return",
        /// Not a fault: explained fully.
        Explanation = "explanation",
        Compensation = "compensation",
        None = "none",
    }
}

text_enum! {
    /// Where the fault came from: what the weekly and monthly summaries group by.
    pub enum RootCause {
        ProductDefect = "product_defect",
        Design = "design",
        Supplier = "supplier",
        Logistics = "logistics",
        StaffConduct = "staff_conduct",
        Process = "process",
        Communication = "communication",
        Pricing = "pricing",
        CustomerMisunderstanding = "customer_misunderstanding",
        Other = "other",
    }
}

text_enum! {
    /// A goodwill gift, or a points credit to the customer's club membership.
    pub enum CompensationKind { Points = "points", Gift = "gift" }
}

text_enum! {
    /// Who sees a comment: staff only, or the customer too.
    pub enum Visibility { Internal = "internal", Public = "public" }
}

/// A complaint row, stored as it is held: insert and update write every field.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = complaints, treat_none_as_null = true)]
pub struct ComplaintRow {
    pub id: ComplaintId,
    pub customer_id: CustomerId,
    pub order_id: Option<OrderId>,
    pub sku: Option<String>,
    pub channel: Channel,
    pub category: Category,
    pub severity: Severity,
    pub subject: String,
    pub description: String,
    pub assignee_id: Option<UserId>,
    pub status: Status,
    pub promised_by: Option<DateTime<Utc>>,
    pub reopen_count: i32,
    pub cycle: i32,
    pub customer_tier: Option<Tier>,
    pub customer_level: Level,
    pub sla_policy_id: Option<PolicyId>,
    pub sla_policy_version: Option<i64>,
    pub escalation_base: i32,
    pub reopen_window_days: i32,
    pub next_due_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The resolution of one cycle, with its compensation.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, ToSchema)]
#[diesel(table_name = complaint_resolutions)]
pub struct Resolution {
    #[serde(skip)]
    pub complaint_id: ComplaintId,
    /// The resolution cycle it closes (1, then one more per reopen).
    pub cycle: i32,
    #[serde(rename = "type")]
    pub resolution_type: ResolutionType,
    pub description: String,
    pub root_cause_category: RootCause,
    pub root_cause: String,
    /// What was changed so that it does not happen again.
    pub corrective_action: String,
    pub compensation_kind: Option<CompensationKind>,
    pub compensation_points: Option<i32>,
    /// The gift, or the reason for the points.
    pub compensation_description: Option<String>,
    #[serde(skip)]
    pub resolved_by_type: String,
    #[serde(skip)]
    pub resolved_by_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// A comment on a complaint.
#[derive(Debug, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = complaint_comments)]
pub struct Comment {
    pub id: Uuid,
    pub complaint_id: ComplaintId,
    pub visibility: Visibility,
    /// `user`, `api_key` or `system`.
    pub author_type: String,
    pub author_id: Option<Uuid>,
    pub body: String,
    pub answer_id: Option<AnswerId>,
    pub created_at: DateTime<Utc>,
}

/// The customer's rating of one resolution cycle.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, ToSchema)]
#[diesel(table_name = complaint_satisfaction)]
pub struct Satisfaction {
    #[serde(skip)]
    pub complaint_id: ComplaintId,
    pub cycle: i32,
    #[schema(minimum = 1, maximum = 5, example = 4)]
    pub rating: i32,
    pub comment: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The policy a complaint's clocks follow, as recorded when it was applied.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AppliedPolicy {
    pub id: PolicyId,
    pub version: i64,
}

/// A complaint as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Complaint {
    pub id: ComplaintId,
    pub customer_id: CustomerId,
    pub order_id: Option<OrderId>,
    #[schema(example = "SH-4021-42")]
    pub sku: Option<String>,
    pub channel: Channel,
    pub category: Category,
    pub severity: Severity,
    #[schema(example = "Sole came off after a week")]
    pub subject: String,
    pub description: String,
    pub assignee_id: Option<UserId>,
    pub status: Status,
    /// What the customer is shown instead of `status`.
    pub customer_status_label: CustomerStatus,
    /// The time promised to the customer (承诺时间); missing it is a breach.
    #[serde(serialize_with = "optional_timestamp")]
    pub promised_by: Option<DateTime<Utc>>,
    pub reopen_count: i32,
    /// The resolution cycle: 1, and one more per reopen.
    pub cycle: i32,
    /// The customer's value tier when the complaint came in, which the policy matched on.
    pub customer_tier: Option<Tier>,
    pub customer_level: Level,
    /// `null` when no policy matched: no response or resolution targets then.
    pub sla_policy: Option<AppliedPolicy>,
    /// 1 when the complaint started one level up the escalation ladder (a key or core
    /// customer, or critical).
    pub escalation_base: i32,
    /// Every clock (first response, resolution, promise), not only the nearest.
    pub sla: Vec<sla::Clock>,
    /// When the complaint reached the company (a letter may be logged later).
    #[serde(serialize_with = "timestamp")]
    pub received_at: DateTime<Utc>,
    #[serde(serialize_with = "optional_timestamp")]
    pub first_response_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "optional_timestamp")]
    pub resolved_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "optional_timestamp")]
    pub closed_at: Option<DateTime<Utc>>,
    /// This cycle's resolution, once resolved (lists leave it out).
    pub resolution: Option<Resolution>,
    /// This cycle's rating, once given (lists leave it out).
    pub satisfaction: Option<Satisfaction>,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

/// A complaint with its clocks, and (when read for one) this cycle's resolution and rating:
/// what the write path stores, audits (the complaint's own columns and its rating) and
/// announces.
#[derive(Debug, Clone, Serialize)]
pub struct ComplaintRecord {
    #[serde(flatten)]
    pub row: ComplaintRow,
    #[serde(skip)]
    pub clocks: Vec<ClockRow>,
    /// A new escalation ladder to schedule with the next store (a policy was applied).
    #[serde(skip)]
    pub ladder: Option<Vec<Scheduled>>,
    #[serde(skip)]
    pub resolution: Option<Resolution>,
    /// This cycle's rating: audited, so that recording it is a change like any other.
    pub satisfaction: Option<Satisfaction>,
}

impl ComplaintRecord {
    /// The view at `now`.
    pub fn view(&self, now: DateTime<Utc>) -> Complaint {
        let r = &self.row;
        Complaint {
            id: r.id,
            customer_id: r.customer_id,
            order_id: r.order_id,
            sku: r.sku.clone(),
            channel: r.channel,
            category: r.category,
            severity: r.severity,
            subject: r.subject.clone(),
            description: r.description.clone(),
            assignee_id: r.assignee_id,
            status: r.status,
            customer_status_label: r.status.for_customer(),
            promised_by: r.promised_by,
            reopen_count: r.reopen_count,
            cycle: r.cycle,
            customer_tier: r.customer_tier,
            customer_level: r.customer_level,
            sla_policy: r.sla_policy_id.map(|id| AppliedPolicy {
                id,
                version: r.sla_policy_version.unwrap_or(1),
            }),
            escalation_base: r.escalation_base,
            sla: self.clocks.iter().map(|c| c.view(now)).collect(),
            received_at: r.received_at,
            first_response_at: r.first_response_at,
            resolved_at: r.resolved_at,
            closed_at: r.closed_at,
            resolution: self.resolution.clone(),
            satisfaction: self.satisfaction.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }

    /// Sets the complaint's earliest running due time from its clocks.
    fn set_next_due(&mut self) {
        self.row.next_due_at = sla::next_due(&self.clocks);
    }

    /// The clock of a metric, if the complaint has one.
    pub fn clock_mut(&mut self, metric: Metric) -> Option<&mut ClockRow> {
        self.clocks.iter_mut().find(|c| c.metric == metric)
    }
}

impl Versioned for ComplaintRecord {
    const KIND: &'static str = "complaint";
    type Id = ComplaintId;

    crate::versioned_columns!(id: row.id, version: row.version, updated_at: row.updated_at);

    fn customer_id(&self) -> Option<CustomerId> {
        Some(self.row.customer_id)
    }

    /// Agents change the complaints assigned to them.
    fn ownership(&self) -> Ownership {
        Ownership::Owned {
            owner: self.row.assignee_id,
            what: "the complaints assigned to them",
        }
    }

    fn view(&self) -> Value {
        serde_json::to_value(ComplaintRecord::view(self, Utc::now())).unwrap_or_default()
    }

    async fn lock(conn: &mut AsyncPgConnection, id: ComplaintId) -> ApiResult<Self> {
        let row: ComplaintRow = complaints::table
            .find(id)
            .select(ComplaintRow::as_select())
            .for_update()
            .first(conn)
            .await?;
        let mut record = Self::assemble(conn, vec![row], true).await?;
        Ok(record.remove(0))
    }

    async fn insert(&self, conn: &mut AsyncPgConnection) -> ApiResult<Self> {
        let mut new = self.clone();
        new.set_next_due();
        diesel::insert_into(complaints::table)
            .values(&new.row)
            .execute(conn)
            .await?;
        store_clocks(conn, &new).await?;
        new.ladder = None;
        Ok(new)
    }

    async fn update(&self, conn: &mut AsyncPgConnection) -> ApiResult<Self> {
        let mut new = self.clone();
        new.set_next_due();
        diesel::update(complaints::table.find(new.row.id))
            .set(&new.row)
            .execute(conn)
            .await?;
        store_clocks(conn, &new).await?;
        new.ladder = None;
        Ok(new)
    }
}

/// Stores the record's clocks (dropping those it no longer has), a newly applied ladder,
/// and moves every step not yet fired to its clock's current time (`sla::fire_at`): steps
/// already due keep their time, so a pause or a fulfilment never cancels a breach that has
/// happened.
async fn store_clocks(conn: &mut AsyncPgConnection, record: &ComplaintRecord) -> ApiResult<()> {
    use diesel::upsert::excluded;
    let id = record.row.id;
    let metrics: Vec<Metric> = record.clocks.iter().map(|c| c.metric).collect();
    diesel::delete(
        complaint_clocks::table
            .filter(complaint_clocks::complaint_id.eq(id))
            .filter(complaint_clocks::metric.ne_all(&metrics)),
    )
    .execute(conn)
    .await?;
    diesel::insert_into(complaint_clocks::table)
        .values(&record.clocks)
        .on_conflict((complaint_clocks::complaint_id, complaint_clocks::metric))
        .do_update()
        .set((
            complaint_clocks::target_minutes.eq(excluded(complaint_clocks::target_minutes)),
            complaint_clocks::calendar_id.eq(excluded(complaint_clocks::calendar_id)),
            complaint_clocks::due_at.eq(excluded(complaint_clocks::due_at)),
            complaint_clocks::pauses.eq(excluded(complaint_clocks::pauses)),
            complaint_clocks::paused_seconds.eq(excluded(complaint_clocks::paused_seconds)),
            complaint_clocks::fulfilled_at.eq(excluded(complaint_clocks::fulfilled_at)),
            complaint_clocks::elapsed_seconds.eq(excluded(complaint_clocks::elapsed_seconds)),
            complaint_clocks::breached_at.eq(excluded(complaint_clocks::breached_at)),
        ))
        .execute(conn)
        .await?;
    let unfired = complaint_escalations::table
        .filter(complaint_escalations::complaint_id.eq(id))
        .filter(complaint_escalations::fired_at.is_null());
    if let Some(ladder) = &record.ladder {
        diesel::delete(unfired).execute(conn).await?;
        let rows: Vec<_> = ladder
            .iter()
            .filter(|s| metrics.contains(&s.metric))
            .map(|s| {
                (
                    complaint_escalations::complaint_id.eq(id),
                    complaint_escalations::metric.eq(s.metric),
                    complaint_escalations::step.eq(s.step),
                    complaint_escalations::kind.eq(s.kind),
                    complaint_escalations::level.eq(s.level),
                    complaint_escalations::notify.eq(json!(s.notify)),
                    complaint_escalations::offset_minutes.eq(s.offset_minutes),
                    complaint_escalations::fire_at.eq(far_future()),
                )
            })
            .collect();
        diesel::insert_into(complaint_escalations::table)
            .values(&rows)
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
    } else {
        diesel::delete(unfired.filter(complaint_escalations::metric.ne_all(&metrics)))
            .execute(conn)
            .await?;
    }
    // `sla::fire_at` in SQL: 'infinity' stands for "not while the clock stands still".
    diesel::sql_query(
        "UPDATE complaint_escalations e SET fire_at = CASE \
           WHEN k.due_at IS NULL THEN 'infinity'::timestamptz \
           WHEN k.fulfilled_at IS NOT NULL AND k.due_at + e.offset_minutes * interval '1 minute' > k.fulfilled_at THEN 'infinity'::timestamptz \
           ELSE k.due_at + e.offset_minutes * interval '1 minute' END \
         FROM complaint_clocks k \
         WHERE e.complaint_id = $1 AND e.fired_at IS NULL AND e.fire_at > now() \
           AND k.complaint_id = e.complaint_id AND k.metric = e.metric",
    )
    .bind::<diesel::sql_types::Uuid, _>(id.get())
    .execute(conn)
    .await?;
    Ok(())
}

/// The time of a step that is not scheduled yet (the update after the insert sets it).
fn far_future() -> DateTime<Utc> {
    use chrono::TimeZone;
    Utc.with_ymd_and_hms(9999, 12, 31, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl ComplaintRecord {
    /// Records of these rows with their clocks, and with this cycle's resolution and rating
    /// when `full`.
    pub async fn assemble(
        mut conn: &AsyncPgConnection,
        rows: Vec<ComplaintRow>,
        full: bool,
    ) -> ApiResult<Vec<Self>> {
        let ids: Vec<ComplaintId> = rows.iter().map(|r| r.id).collect();
        let mut clocks: Vec<ClockRow> = complaint_clocks::table
            .filter(complaint_clocks::complaint_id.eq_any(&ids))
            .select(ClockRow::as_select())
            .load(&mut conn)
            .await?;
        clocks.sort_by_key(|c| Metric::ALL.iter().position(|m| *m == c.metric));
        let (mut resolutions, mut ratings) = (Vec::new(), Vec::new());
        if full {
            resolutions = complaint_resolutions::table
                .filter(complaint_resolutions::complaint_id.eq_any(&ids))
                .select(Resolution::as_select())
                .load(&mut conn)
                .await?;
            ratings = complaint_satisfaction::table
                .filter(complaint_satisfaction::complaint_id.eq_any(&ids))
                .select(Satisfaction::as_select())
                .load(&mut conn)
                .await?;
        }
        Ok(rows
            .into_iter()
            .map(|row| Self {
                clocks: clocks
                    .iter()
                    .filter(|c| c.complaint_id == row.id)
                    .cloned()
                    .collect(),
                ladder: None,
                resolution: resolutions
                    .iter()
                    .find(|r| r.complaint_id == row.id && r.cycle == row.cycle)
                    .cloned(),
                satisfaction: ratings
                    .iter()
                    .find(|s| s.complaint_id == row.id && s.cycle == row.cycle)
                    .cloned(),
                row,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::Status::*;
    use crate::kit::workflow::{Workflow, ensure_move};

    /// Every pair of states, legal or not, against the table the issue gives.
    #[test]
    fn every_transition_legal_and_illegal() {
        let legal = [
            (New, Acknowledged),
            (Acknowledged, InProgress),
            (InProgress, AwaitingCustomer),
            (AwaitingCustomer, InProgress),
            (InProgress, Resolved),
            (AwaitingCustomer, Resolved),
            (Resolved, Closed),
            (Resolved, Reopened),
            (Closed, Reopened),
            (Reopened, InProgress),
        ];
        crate::kit::workflow::assert_exactly("a complaint", &legal);
    }

    #[test]
    fn an_illegal_move_lists_the_allowed_targets() {
        let error = ensure_move("a complaint", New, Resolved).unwrap_err();
        let problem = error.problem();
        assert_eq!(problem.status, 409);
        assert_eq!(problem.allowed, ["acknowledged"]);
        assert_eq!(InProgress.allowed(), [AwaitingCustomer, Resolved]);
    }

    #[test]
    fn customers_see_labels_not_internal_steps() {
        assert_eq!(New.for_customer(), Acknowledged.for_customer());
        assert_eq!(Reopened.for_customer(), InProgress.for_customer());
    }
}
