//! Complaint handling: log a complaint (its SLA policy and clocks applied), change it, move
//! it through its workflow, comment, resolve with compensation, record the rating. Each change
//! is one [`write::change`] of the complaint; the route file only reads requests and answers.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use super::business_time::{Calendar, Counting};
use super::policies::{self, DEFAULT_REOPEN_WINDOW_DAYS, Facts, PolicyRow};
use super::requests::{
    CompensationInput, ComplaintPatch, NewComment, NewComplaint, NewRating, ResolveRequest,
    TransitionRequest,
};
use super::sla::{self, ClockRow, Metric};
use super::{
    Comment, ComplaintRecord, ComplaintRow, Resolution, Satisfaction, Severity, Status, Visibility,
    calendars,
};
use crate::auth::Principal;
use crate::customers::api as customers;
use crate::customers::api::{Level, Tier};
use crate::db::schema::{
    answer_uses, answers, complaint_comments, complaint_resolutions, complaint_satisfaction,
    complaint_sla_policies,
};
use crate::error::{ApiError, ApiResult};
use crate::http::etag::IfMatch;
use crate::http::json::Field;
use crate::kit::audit::Subject;
use crate::kit::ids::{AnswerId, CalendarId, ComplaintId, CustomerId, OrderId, UserId};
use crate::kit::input::{ensure_within, happened_by, present};
use crate::kit::registry::{PointsGrant, Registry};
use crate::kit::workflow::ensure_move;
use crate::kit::write::{self, Action, Occurrence, Versioned, Writer};

/// A status change.
pub const STATUS_CHANGED: Action = Action::named("status_changed", "status_changed");
/// A resolution recorded.
pub const RESOLVED: Action = Action::named("resolved", "resolved");
/// The first response given by a public comment.
pub const RESPONDED: Action = Action::named("responded", "updated");

/// A rating of the resolution recorded.
pub const SATISFACTION_RECORDED: Action =
    Action::named("satisfaction_recorded", "satisfaction_recorded");

/// The calendars a record's clocks count in.
struct Calendars(HashMap<CalendarId, Calendar>);

impl Calendars {
    async fn of(conn: &mut AsyncPgConnection, clocks: &[ClockRow]) -> ApiResult<Self> {
        let mut map = HashMap::new();
        for id in clocks.iter().filter_map(|c| c.calendar_id) {
            if let std::collections::hash_map::Entry::Vacant(slot) = map.entry(id) {
                slot.insert(calendars::load(conn, id).await?);
            }
        }
        Ok(Self(map))
    }

    fn counting(&self, calendar: Option<CalendarId>) -> Counting<'_> {
        calendar
            .and_then(|id| self.0.get(&id))
            .map_or(Counting::Always, Counting::Business)
    }

    /// Applies `change` to every clock with the counting it uses.
    fn each(
        &self,
        record: &mut ComplaintRecord,
        mut change: impl FnMut(&mut ClockRow, Counting<'_>),
    ) {
        for clock in &mut record.clocks {
            let counting = self.counting(clock.calendar_id);
            change(clock, counting);
        }
    }
}

/// Whether the complaint starts one level up the ladder: a key or core customer, or critical.
fn escalation_base(severity: Severity, tier: Option<Tier>, level: Level) -> i32 {
    let important =
        severity == Severity::Critical || tier == Some(Tier::Key) || level == Level::Core;
    i32::from(important)
}

/// Applies the first matching policy to the record: targets for the response and resolution
/// clocks (new ones start at `received_at`; existing ones keep their start and pauses), the
/// policy recorded, and the ladder scheduled. With no match the record keeps what it has.
async fn apply_policy(conn: &mut AsyncPgConnection, record: &mut ComplaintRecord) -> ApiResult<()> {
    let facts = Facts {
        severity: record.row.severity,
        channel: record.row.channel,
        tier: record.row.customer_tier,
        level: record.row.customer_level,
    };
    record.row.escalation_base = escalation_base(facts.severity, facts.tier, facts.level);
    let Some(policy) = policies::first_match(conn, &facts).await? else {
        return schedule(conn, record).await;
    };
    let calendar = match policy.calendar_id {
        Some(id) => Some(calendars::load(conn, id).await?),
        None => None,
    };
    let counting = calendar
        .as_ref()
        .map_or(Counting::Always, Counting::Business);
    for metric in [Metric::FirstResponse, Metric::Resolution] {
        let minutes = policy.target_minutes(metric).unwrap_or(1);
        match record.clock_mut(metric) {
            Some(clock) => clock.retarget(minutes, policy.calendar_id, counting),
            None => record.clocks.push(ClockRow::start(
                record.row.id,
                metric,
                Some((minutes, policy.calendar_id)),
                record.row.received_at,
                counting,
            )),
        }
    }
    record.row.sla_policy_id = Some(policy.id);
    record.row.sla_policy_version = Some(policy.version);
    record.row.reopen_window_days = policy.reopen_window_days;
    record.ladder = Some(ladder_of(Some(&policy), record));
    Ok(())
}

/// The ladder of the record's clocks under its recorded policy.
fn ladder_of(policy: Option<&PolicyRow>, record: &ComplaintRecord) -> Vec<sla::Scheduled> {
    let steps = policy.map(PolicyRow::ladder).unwrap_or_default();
    let metrics: Vec<Metric> = record.clocks.iter().map(|c| c.metric).collect();
    sla::ladder(&steps, &metrics, record.row.escalation_base)
}

/// Schedules the ladder of the record's clocks under the policy it records (a clock was
/// added or removed).
async fn schedule(conn: &mut AsyncPgConnection, record: &mut ComplaintRecord) -> ApiResult<()> {
    let policy: Option<PolicyRow> = match record.row.sla_policy_id {
        Some(id) => complaint_sla_policies::table
            .find(id)
            .select(PolicyRow::as_select())
            .first(conn)
            .await
            .optional()?,
        None => None,
    };
    record.ladder = Some(ladder_of(policy.as_ref(), record));
    Ok(())
}

/// `409` unless the order exists and is this customer's.
async fn check_order(
    conn: &mut AsyncPgConnection,
    order: OrderId,
    customer: CustomerId,
) -> ApiResult<()> {
    let owner = crate::orders::api::customer_of(conn, order).await?;
    customers::ensure_customers("order_id", "order", owner, customer)
}

/// Logs a complaint in the caller's transaction (a visit's follow-up opens one too): checks
/// the customer, order and assignee, applies the first matching SLA policy, and writes it
/// with its audit entry and `complaint.created` event.
pub async fn open(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    b: NewComplaint,
    assignee: Option<UserId>,
) -> ApiResult<ComplaintRecord> {
    let now = Utc::now();
    let received_at = b.received_at.unwrap_or(now);
    // A complaint logged late was received within the year, not further back.
    ensure_within(
        "received_at",
        received_at,
        now - Duration::days(366),
        happened_by(),
    )?;

    let customer = customers::find_referenced(conn, b.customer_id).await?;
    if let Some(order) = b.order_id {
        check_order(conn, order, customer.id).await?;
    }
    if let Some(user) = assignee {
        crate::users::ensure_active(conn, "assignee_id", user).await?;
    }
    let id = ComplaintId::new();
    let mut record = ComplaintRecord {
        row: ComplaintRow {
            id,
            customer_id: customer.id,
            order_id: b.order_id,
            sku: present(b.sku),
            channel: b.channel,
            category: b.category,
            severity: b.severity,
            subject: b.subject.into_inner(),
            description: b.description.into_inner(),
            assignee_id: assignee,
            status: Status::New,
            promised_by: b.promised_by,
            reopen_count: 0,
            cycle: 1,
            customer_tier: customer.tier,
            customer_level: customer.level,
            sla_policy_id: None,
            sla_policy_version: None,
            escalation_base: 0,
            reopen_window_days: DEFAULT_REOPEN_WINDOW_DAYS,
            next_due_at: None,
            received_at,
            first_response_at: None,
            resolved_at: None,
            closed_at: None,
            version: 1,
            created_at: now,
            updated_at: now,
        },
        clocks: Vec::new(),
        ladder: None,
        resolution: None,
        satisfaction: None,
    };
    if let Some(promise) = b.promised_by {
        record
            .clocks
            .push(ClockRow::promise(id, received_at, promise));
    }
    apply_policy(conn, &mut record).await?;
    write::create(conn, writer, record, Action::CREATED).await
}

/// Records an internal or public comment by the writer in the caller's transaction; a use of
/// a standard answer is counted.
async fn add_comment(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    record: &ComplaintRecord,
    visibility: super::Visibility,
    body: String,
    answer: Option<AnswerId>,
) -> ApiResult<Comment> {
    if let Some(answer) = answer {
        let cited = diesel::update(
            answers::table
                .find(answer)
                .filter(answers::deleted_at.is_null()),
        )
        .set(answers::use_count.eq(answers::use_count + 1))
        .execute(conn)
        .await?;
        if cited == 0 {
            return Err(ApiError::rule(
                "answer_id",
                "not_found",
                "no such standard answer",
            ));
        }
        diesel::insert_into(answer_uses::table)
            .values(answer_uses::answer_id.eq(answer))
            .execute(conn)
            .await?;
    }
    let (author_type, author_id) = writer.actor().parts();
    let comment: Comment = diesel::insert_into(complaint_comments::table)
        .values((
            complaint_comments::id.eq(Uuid::now_v7()),
            complaint_comments::complaint_id.eq(record.row.id),
            complaint_comments::visibility.eq(visibility),
            complaint_comments::author_type.eq(author_type),
            complaint_comments::author_id.eq(author_id),
            complaint_comments::body.eq(body),
            complaint_comments::answer_id.eq(answer),
        ))
        .returning(Comment::as_returning())
        .get_result(conn)
        .await?;
    let data = serde_json::to_value(&comment).unwrap_or_default();
    Occurrence {
        subject: subject(record),
        event_type: "complaint.commented".into(),
        audit_action: "commented",
    }
    .record(
        conn,
        writer,
        json!({"comment": {"old": null, "new": data}}),
        data.clone(),
    )
    .await?;
    Ok(comment)
}

fn subject(record: &ComplaintRecord) -> Subject {
    Subject {
        entity_type: ComplaintRecord::KIND,
        entity_id: record.row.id.get(),
        customer_id: Some(record.row.customer_id),
    }
}

/// Fulfils the first-response clock (the acknowledgement, or a public staff comment).
fn first_response(record: &mut ComplaintRecord, calendars: &Calendars, now: DateTime<Utc>) {
    record.row.first_response_at.get_or_insert(now);
    calendars.each(record, |clock, counting| {
        if clock.metric == Metric::FirstResponse {
            clock.fulfil(now, counting);
        }
    });
}

/// Changes a complaint's facts, assignee or promise. A change of severity or channel
/// re-applies the SLA policies, keeping the time already elapsed and paused.
pub async fn update(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    id: ComplaintId,
    if_match: &IfMatch,
    p: ComplaintPatch,
) -> ApiResult<ComplaintRecord> {
    let (saved, ()) = write::change(
        conn,
        writer,
        id,
        if_match,
        Action::UPDATED,
        async |conn, after: &mut ComplaintRecord| {
            let row = &mut after.row;
            let reapply = p.severity.is_some_and(|s| s != row.severity)
                || p.channel.is_some_and(|c| c != row.channel);
            row.severity = p.severity.unwrap_or(row.severity);
            row.channel = p.channel.unwrap_or(row.channel);
            row.category = p.category.unwrap_or(row.category);
            if let Some(subject) = p.subject {
                row.subject = subject.into_inner();
            }
            if let Some(description) = p.description {
                row.description = description.into_inner();
            }
            match p.order_id {
                Field::Absent => {}
                Field::Null => row.order_id = None,
                Field::Value(order) => {
                    check_order(conn, order, row.customer_id).await?;
                    row.order_id = Some(order);
                }
            }
            match p.sku {
                Field::Absent => {}
                Field::Null => row.sku = None,
                Field::Value(sku) => row.sku = present(Some(sku)),
            }
            match p.assignee_id {
                Field::Absent => {}
                Field::Null => row.assignee_id = None,
                Field::Value(user) => {
                    crate::users::ensure_active(conn, "assignee_id", user).await?;
                    row.assignee_id = Some(user);
                }
            }
            let mut reschedule = false;
            match p.promised_by {
                Field::Absent => {}
                Field::Null => {
                    row.promised_by = None;
                    after.clocks.retain(|c| c.metric != Metric::Promise);
                    reschedule = true;
                }
                Field::Value(promise) => {
                    row.promised_by = Some(promise);
                    let (complaint, received) = (row.id, row.received_at);
                    match after.clock_mut(Metric::Promise) {
                        Some(clock) if clock.fulfilled_at.is_none() => clock.due_at = Some(promise),
                        Some(_) => {}
                        None => {
                            after
                                .clocks
                                .push(ClockRow::promise(complaint, received, promise));
                            reschedule = true;
                        }
                    }
                }
            }
            if reapply {
                apply_policy(conn, after).await?;
            } else if reschedule {
                schedule(conn, after).await?;
            }
            Ok(())
        },
    )
    .await?;
    Ok(saved)
}

/// Moves a complaint along its workflow (a resolution goes through [`resolve`]): the clocks
/// pause, resume, re-arm on a reopen within the window; a note is kept as an internal
/// comment.
pub async fn transition(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    id: ComplaintId,
    if_match: &IfMatch,
    TransitionRequest { to, note }: TransitionRequest,
) -> ApiResult<ComplaintRecord> {
    let (saved, ()) = write::change(
        conn,
        writer,
        id,
        if_match,
        STATUS_CHANGED,
        async |conn, after: &mut ComplaintRecord| {
            ensure_move("a complaint", after.row.status, to)?;
            if to == Status::Resolved {
                return Err(ApiError::rule(
                    "to",
                    "resolve",
                    "resolve with POST /complaints/{id}/resolve, which records the resolution",
                ));
            }
            let now = Utc::now();
            let calendars = Calendars::of(conn, &after.clocks).await?;
            match to {
                Status::Acknowledged => first_response(after, &calendars, now),
                Status::AwaitingCustomer => calendars.each(after, |c, _| c.pause(now)),
                Status::InProgress => calendars.each(after, |c, counting| c.resume(now, counting)),
                Status::Closed => after.row.closed_at = Some(now),
                Status::Reopened => {
                    let resolved = after.row.resolved_at.unwrap_or(now);
                    let window = Duration::days(after.row.reopen_window_days.into());
                    if now > resolved + window {
                        return Err(ApiError::rule(
                            "to",
                            "reopen_window",
                            format!(
                                "the reopen window of {} days after resolution has passed; log a new complaint",
                                after.row.reopen_window_days
                            ),
                        ));
                    }
                    after.row.reopen_count += 1;
                    after.row.cycle += 1;
                    after.row.closed_at = None;
                    calendars.each(after, |c, counting| {
                        if c.metric == Metric::Resolution {
                            c.rearm(now, counting);
                        }
                    });
                    after.resolution = None;
                    after.satisfaction = None;
                }
                Status::New | Status::Resolved => {}
            }
            after.row.status = to;
            if let Some(note) = note {
                add_comment(conn, writer, after, Visibility::Internal, note.into_inner(), None)
                    .await?;
            }
            Ok(())
        },
    )
    .await?;
    Ok(saved)
}

/// Comments on a complaint. The first public comment by a staff user fulfils the
/// first-response clock; internal notes do not.
pub async fn comment(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    id: ComplaintId,
    if_match: &IfMatch,
    b: NewComment,
) -> ApiResult<Comment> {
    let by_staff = matches!(writer.principal(), Some(Principal::User { .. }));
    let (_, comment) = write::change(
        conn,
        writer,
        id,
        if_match,
        RESPONDED,
        async |conn, after: &mut ComplaintRecord| {
            let comment = add_comment(
                conn,
                writer,
                after,
                b.visibility,
                b.body.into_inner(),
                b.answer_id,
            )
            .await?;
            let responds = b.visibility == Visibility::Public
                && by_staff
                && after.row.first_response_at.is_none();
            if responds {
                let calendars = Calendars::of(conn, &after.clocks).await?;
                first_response(after, &calendars, comment.created_at);
            }
            Ok(comment)
        },
    )
    .await?;
    Ok(comment)
}

/// Resolves a complaint: the resolution and an optional compensation (points through the
/// registry's club step) in one transaction; every clock is fulfilled.
pub async fn resolve(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    registry: &Registry,
    id: ComplaintId,
    if_match: &IfMatch,
    ResolveRequest {
        resolution: r,
        compensation,
    }: ResolveRequest,
) -> ApiResult<ComplaintRecord> {
    let (saved, ()) = write::change(
        conn,
        writer,
        id,
        if_match,
        RESOLVED,
        async |conn, after: &mut ComplaintRecord| {
            ensure_move("a complaint", after.row.status, Status::Resolved)?;
            let now = Utc::now();
            if let Some(CompensationInput::Points {
                points,
                description,
            }) = &compensation
            {
                let row = &after.row;
                let grant = PointsGrant {
                    customer: row.customer_id,
                    points: points.get(),
                    reason: format!("complaint compensation: {}", description.as_str()),
                    reference: format!("complaint:{}:{}", row.id, row.cycle),
                    capped_under: format!("complaint:{}", row.id),
                    field: "compensation.kind",
                };
                registry.credit_points(conn, writer, grant).await?;
            }
            let (actor_type, actor_id) = writer.actor().parts();
            let resolution = Resolution {
                complaint_id: id,
                cycle: after.row.cycle,
                resolution_type: r.resolution_type,
                description: r.description.into_inner(),
                root_cause_category: r.root_cause_category,
                root_cause: r.root_cause.into_inner(),
                corrective_action: r.corrective_action.into_inner(),
                compensation_kind: compensation.as_ref().map(CompensationInput::kind),
                compensation_points: compensation.as_ref().and_then(CompensationInput::points),
                compensation_description: compensation.map(CompensationInput::into_description),
                resolved_by_type: actor_type.to_owned(),
                resolved_by_id: actor_id,
                created_at: now,
            };
            let stored: Resolution = diesel::insert_into(complaint_resolutions::table)
                .values(&resolution)
                .returning(Resolution::as_returning())
                .get_result(conn)
                .await?;
            let calendars = Calendars::of(conn, &after.clocks).await?;
            // The resolution answers the customer too, if nothing had yet.
            first_response(after, &calendars, now);
            calendars.each(after, |clock, counting| clock.fulfil(now, counting));
            after.row.status = Status::Resolved;
            after.row.resolved_at = Some(now);
            after.resolution = Some(stored);
            Ok(())
        },
    )
    .await?;
    Ok(saved)
}

/// Records the customer's rating of the resolution: once per resolution cycle, after it is
/// resolved (a reopen starts a new cycle). Staff record it only for complaints they may
/// write (the assignee, managers, keys), through the write path like any change.
pub async fn rate(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    id: ComplaintId,
    if_match: &IfMatch,
    b: NewRating,
) -> ApiResult<Satisfaction> {
    let (_, stored) = write::change(
        conn,
        writer,
        id,
        if_match,
        SATISFACTION_RECORDED,
        async |conn, after: &mut ComplaintRecord| {
            if !matches!(after.row.status, Status::Resolved | Status::Closed) {
                return Err(ApiError::Conflict(format!(
                    "a complaint that is {} has no resolution to rate yet",
                    after.row.status
                )));
            }
            if after.satisfaction.is_some() {
                return Err(ApiError::Conflict(
                    "this resolution is already rated; a reopened complaint can be rated again after its next resolution".into(),
                ));
            }
            let rating = Satisfaction {
                complaint_id: id,
                cycle: after.row.cycle,
                rating: b.rating.get() as i32,
                comment: present(b.comment),
                created_at: Utc::now(),
            };
            let stored: Satisfaction = diesel::insert_into(complaint_satisfaction::table)
                .values(&rating)
                .returning(Satisfaction::as_returning())
                .get_result(conn)
                .await?;
            after.satisfaction = Some(stored.clone());
            Ok(stored)
        },
    )
    .await?;
    Ok(stored)
}
