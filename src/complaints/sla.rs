//! SLA clocks and the escalation ladder. A complaint has one clock per metric
//! (`first_response`, `resolution`, and `promise` when a time was promised to the customer);
//! each keeps its start, target, pauses, due time, fulfilment and breach, so a report can
//! prove every due time. The clock operations are pure: they take the time and the calendar.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::business_time::{Counting, Span, paused_seconds};
use crate::auth::Role;
use crate::db::schema::complaint_clocks;
use crate::http::timestamps::{optional_timestamp, timestamp};
use crate::kit::ids::{CalendarId, ComplaintId};
use crate::kit::input::Whole;
use crate::text_enum;

text_enum! {
    /// What a clock measures.
    pub enum Metric {
        /// Until the acknowledgement or the first public staff comment.
        FirstResponse = "first_response",
        /// Until the complaint is resolved.
        Resolution = "resolution",
        /// Until the time promised to the customer (承诺时间): never paused.
        Promise = "promise",
    }
}

/// One clock as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = complaint_clocks)]
pub struct ClockRow {
    #[serde(skip)]
    pub complaint_id: ComplaintId,
    pub metric: Metric,
    pub target_minutes: Option<i32>,
    pub calendar_id: Option<CalendarId>,
    pub started_at: DateTime<Utc>,
    pub due_at: Option<DateTime<Utc>>,
    pub pauses: serde_json::Value,
    pub paused_seconds: i64,
    pub fulfilled_at: Option<DateTime<Utc>>,
    pub elapsed_seconds: Option<i64>,
    pub breached_at: Option<DateTime<Utc>>,
}

/// A clock as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Clock {
    pub metric: Metric,
    /// The policy's target; `null` for the promise, whose due time is the promised one.
    #[schema(example = 240)]
    pub target_minutes: Option<i32>,
    /// The calendar whose working time counts; `null` when every minute counts.
    pub calendar_id: Option<CalendarId>,
    #[serde(serialize_with = "timestamp")]
    pub started_at: DateTime<Utc>,
    /// When the target is reached; `null` while the clock is paused.
    #[serde(serialize_with = "optional_timestamp")]
    pub due_at: Option<DateTime<Utc>>,
    /// Every pause (while the complaint awaited the customer; for the resolution clock also
    /// the time it stood resolved before a reopen); the last has no `to` while paused.
    pub pauses: Vec<Span>,
    /// The wall-clock seconds of the pauses that have ended.
    pub paused_seconds: i64,
    #[serde(serialize_with = "optional_timestamp")]
    pub fulfilled_at: Option<DateTime<Utc>>,
    /// Counted seconds from start to fulfilment, pauses left out.
    pub elapsed_seconds: Option<i64>,
    /// Whether the due time passed before the clock was fulfilled (or has passed now).
    pub breached: bool,
    /// When the breach happened: the due time it passed.
    #[serde(serialize_with = "optional_timestamp")]
    pub breached_at: Option<DateTime<Utc>>,
}

impl ClockRow {
    /// A running clock of `target_minutes` from `started_at`.
    pub fn start(
        complaint_id: ComplaintId,
        metric: Metric,
        target: Option<(i32, Option<CalendarId>)>,
        started_at: DateTime<Utc>,
        counting: Counting<'_>,
    ) -> Self {
        let mut clock = Self {
            complaint_id,
            metric,
            target_minutes: target.map(|(minutes, _)| minutes),
            calendar_id: target.and_then(|(_, calendar)| calendar),
            started_at,
            due_at: None,
            pauses: serde_json::json!([]),
            paused_seconds: 0,
            fulfilled_at: None,
            elapsed_seconds: None,
            breached_at: None,
        };
        clock.recompute(counting);
        clock
    }

    /// The promise clock: due at the promised time.
    pub fn promise(
        complaint_id: ComplaintId,
        started_at: DateTime<Utc>,
        due: DateTime<Utc>,
    ) -> Self {
        Self {
            due_at: Some(due),
            ..Self::start(
                complaint_id,
                Metric::Promise,
                None,
                started_at,
                Counting::Always,
            )
        }
    }

    /// The pauses, oldest first.
    pub fn spans(&self) -> Vec<Span> {
        serde_json::from_value(self.pauses.clone()).unwrap_or_default()
    }

    fn set_spans(&mut self, spans: &[Span]) {
        self.paused_seconds = paused_seconds(spans);
        self.pauses = serde_json::to_value(spans).unwrap_or_default();
    }

    /// Whether a pause is open.
    pub fn is_paused(&self) -> bool {
        self.spans().last().is_some_and(|s| s.to.is_none())
    }

    /// Whether the clock still counts towards its due time.
    pub fn is_running(&self) -> bool {
        self.fulfilled_at.is_none() && !self.is_paused()
    }

    /// The due time from the target, the start and the pauses (the promise keeps its own).
    fn recompute(&mut self, counting: Counting<'_>) {
        if let Some(minutes) = self.target_minutes {
            self.due_at = counting.due(self.started_at, i64::from(minutes) * 60, &self.spans());
        }
    }

    /// Stops the clock while the complaint awaits the customer (the promise never stops).
    pub fn pause(&mut self, at: DateTime<Utc>) {
        if self.metric == Metric::Promise || !self.is_running() {
            return;
        }
        let mut spans = self.spans();
        spans.push(Span { from: at, to: None });
        self.set_spans(&spans);
        self.due_at = None;
    }

    /// Restarts a paused clock; its due time moves by the counted time the pause covered.
    pub fn resume(&mut self, at: DateTime<Utc>, counting: Counting<'_>) {
        let mut spans = self.spans();
        if let Some(open) = spans.last_mut().filter(|s| s.to.is_none()) {
            open.to = Some(at.max(open.from));
            self.set_spans(&spans);
            self.recompute(counting);
        }
    }

    /// Fulfils the clock at `at` (once): a late fulfilment is a breach at the due time.
    pub fn fulfil(&mut self, at: DateTime<Utc>, counting: Counting<'_>) {
        if self.fulfilled_at.is_some() {
            return;
        }
        self.resume(at, counting);
        self.fulfilled_at = Some(at);
        self.elapsed_seconds = Some(counting.elapsed(self.started_at, at, &self.spans()));
        if let Some(due) = self.due_at.filter(|due| *due < at) {
            self.breached_at.get_or_insert(due);
        }
    }

    /// Re-arms a fulfilled resolution clock after a reopen: the time the complaint stood
    /// resolved counts as a pause, so the time already used is kept.
    pub fn rearm(&mut self, at: DateTime<Utc>, counting: Counting<'_>) {
        let Some(fulfilled) = self.fulfilled_at.take() else {
            return;
        };
        let mut spans = self.spans();
        spans.push(Span {
            from: fulfilled,
            to: Some(at.max(fulfilled)),
        });
        self.set_spans(&spans);
        self.elapsed_seconds = None;
        self.recompute(counting);
    }

    /// Applies a new target (a severity change re-applied the policy), keeping the start and
    /// the pauses: the time already elapsed and paused still counts. A breach stays a breach.
    pub fn retarget(&mut self, minutes: i32, calendar: Option<CalendarId>, counting: Counting<'_>) {
        self.target_minutes = Some(minutes);
        self.calendar_id = calendar;
        if self.fulfilled_at.is_none() {
            self.recompute(counting);
        }
    }

    /// The clock as the API shows it at `now`.
    pub fn view(&self, now: DateTime<Utc>) -> Clock {
        let overdue = |due: DateTime<Utc>| match self.fulfilled_at {
            Some(done) => done > due,
            None => now > due,
        };
        Clock {
            metric: self.metric,
            target_minutes: self.target_minutes,
            calendar_id: self.calendar_id,
            started_at: self.started_at,
            due_at: self.due_at,
            pauses: self.spans(),
            paused_seconds: self.paused_seconds,
            fulfilled_at: self.fulfilled_at,
            elapsed_seconds: self.elapsed_seconds,
            breached: self.breached_at.is_some() || self.due_at.is_some_and(overdue),
            breached_at: self.breached_at,
        }
    }
}

/// The earliest due time of the running clocks: what `overdue=true` compares with now.
pub fn next_due(clocks: &[ClockRow]) -> Option<DateTime<Utc>> {
    clocks
        .iter()
        .filter(|c| c.fulfilled_at.is_none())
        .filter_map(|c| c.due_at)
        .min()
}

text_enum! {
    /// Who an escalation step tells.
    pub enum Recipient {
        /// The complaint's assignee.
        Assignee = "assignee",
        /// The assignee's manager (`manager_id` of the user).
        Manager = "manager",
        /// Every admin.
        Admins = "admins",
        /// Every manager.
        Managers = "managers",
    }
}

impl Recipient {
    /// The role told, for the recipients that are a whole role.
    pub fn role(self) -> Option<Role> {
        match self {
            Self::Admins => Some(Role::Admin),
            Self::Managers => Some(Role::Manager),
            Self::Assignee | Self::Manager => None,
        }
    }
}

/// One step of a policy's escalation ladder: at `offset_minutes` from a clock's due time
/// (negative: a warning before the breach), tell someone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct LadderStep {
    /// `first_response` or `resolution`.
    pub metric: Metric,
    /// Minutes from the due time, at most a week either way: negative warns before the
    /// breach, zero or more escalates after it.
    #[validate(nested)]
    pub offset_minutes: Whole<-10080, 10080>,
    pub notify: Recipient,
}

text_enum! {
    /// What a scheduled step announces.
    pub enum StepKind {
        /// `complaint.sla_warning`: the due time is near.
        Warning = "warning",
        /// `complaint.sla_breached`: the due time passed unfulfilled.
        Breach = "breach",
        /// `complaint.escalated`: a level up the ladder after the breach.
        Escalation = "escalation",
    }
}

impl StepKind {
    /// The event the step fires.
    pub fn event_type(self) -> &'static str {
        match self {
            Self::Warning => "complaint.sla_warning",
            Self::Breach => "complaint.sla_breached",
            Self::Escalation => "complaint.escalated",
        }
    }
}

/// A step scheduled for one complaint's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    pub metric: Metric,
    pub step: i32,
    pub kind: StepKind,
    pub level: i32,
    pub notify: Recipient,
    pub offset_minutes: i32,
}

/// The steps of a complaint's ladder: for each clock a breach (step 0, telling the
/// assignee), then the policy's steps for that metric in offset order. Warnings are at the
/// complaint's base level, escalations one level each above it. A complaint that starts one
/// level up (`base` 1) tells at each step whom the policy's next step tells (the last step's
/// people stay the top).
pub fn ladder(steps: &[LadderStep], metrics: &[Metric], base: i32) -> Vec<Scheduled> {
    let mut scheduled = Vec::new();
    for &metric in metrics {
        scheduled.push(Scheduled {
            metric,
            step: 0,
            kind: StepKind::Breach,
            level: base,
            notify: Recipient::Assignee,
            offset_minutes: 0,
        });
        let mut own: Vec<&LadderStep> = steps.iter().filter(|s| s.metric == metric).collect();
        own.sort_by_key(|s| s.offset_minutes.get());
        let mut escalations = 0;
        for (k, step) in own.iter().enumerate() {
            let offset_minutes = step.offset_minutes.get() as i32;
            let kind = if offset_minutes < 0 {
                StepKind::Warning
            } else {
                escalations += 1;
                StepKind::Escalation
            };
            let told = own[(k + base as usize).min(own.len() - 1)];
            scheduled.push(Scheduled {
                metric,
                step: k as i32 + 1,
                kind,
                level: base
                    + if kind == StepKind::Warning {
                        0
                    } else {
                        escalations
                    },
                notify: told.notify,
                offset_minutes,
            });
        }
    }
    scheduled
}

/// The fire time of a step of a clock: at due + offset while the clock runs; not before
/// the clock restarts while it is paused; never when it was fulfilled before the step's time.
pub fn fire_at(clock: &ClockRow, offset_minutes: i32) -> Option<DateTime<Utc>> {
    let at = clock.due_at? + Duration::minutes(offset_minutes.into());
    match clock.fulfilled_at {
        Some(done) if at > done => None,
        _ => Some(at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::complaints::business_time::Calendar;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn office() -> Calendar {
        let day = vec![(9 * 60, 12 * 60), (13 * 60, 18 * 60)];
        Calendar {
            time_zone: chrono_tz::Tz::UTC,
            week: [
                day.clone(),
                day.clone(),
                day.clone(),
                day.clone(),
                day,
                vec![],
                vec![],
            ],
            holidays: Default::default(),
        }
    }

    fn clock(minutes: i32, start: &str) -> ClockRow {
        ClockRow::start(
            ComplaintId::new(),
            Metric::Resolution,
            Some((minutes, None)),
            at(start),
            Counting::Always,
        )
    }

    #[test]
    fn pauses_sum_to_paused_seconds_and_move_the_due_time() {
        let mut c = clock(120, "2026-11-30T09:00:00Z");
        assert_eq!(c.due_at, Some(at("2026-11-30T11:00:00Z")));
        c.pause(at("2026-11-30T09:30:00Z"));
        assert_eq!(c.due_at, None);
        assert!(c.is_paused());
        c.resume(at("2026-11-30T10:00:00Z"), Counting::Always);
        c.pause(at("2026-11-30T10:15:00Z"));
        c.resume(at("2026-11-30T10:30:00Z"), Counting::Always);
        assert_eq!(c.paused_seconds, 45 * 60);
        let summed: i64 = c
            .spans()
            .iter()
            .map(|s| (s.to.unwrap() - s.from).num_seconds())
            .sum();
        assert_eq!(summed, c.paused_seconds);
        assert_eq!(c.due_at, Some(at("2026-11-30T11:45:00Z")));
    }

    #[test]
    fn a_severity_change_keeps_elapsed_and_paused_time() {
        let mut c = clock(480, "2026-11-30T09:00:00Z");
        c.pause(at("2026-11-30T10:00:00Z"));
        c.resume(at("2026-11-30T11:00:00Z"), Counting::Always);
        // Made critical at 11:00: the new target of 2 h counts from 09:00, less the pause.
        c.retarget(120, None, Counting::Always);
        assert_eq!(c.due_at, Some(at("2026-11-30T12:00:00Z")));
        assert_eq!(c.paused_seconds, 3600);
        assert_eq!(c.started_at, at("2026-11-30T09:00:00Z"));
    }

    #[test]
    fn retargeting_onto_a_calendar_counts_its_hours() {
        let calendar = office();
        let mut c = clock(60, "2026-12-04T17:30:00Z");
        c.retarget(120, Some(CalendarId::new()), Counting::Business(&calendar));
        // Friday 17:30–18:00, then Monday 09:00–10:30.
        assert_eq!(c.due_at, Some(at("2026-12-07T10:30:00Z")));
    }

    #[test]
    fn a_late_fulfilment_is_a_breach_at_the_due_time() {
        let mut c = clock(60, "2026-11-30T09:00:00Z");
        c.fulfil(at("2026-11-30T10:30:00Z"), Counting::Always);
        assert_eq!(c.breached_at, Some(at("2026-11-30T10:00:00Z")));
        assert_eq!(c.elapsed_seconds, Some(5400));
        assert!(c.view(at("2026-11-30T11:00:00Z")).breached);
        let mut on_time = clock(60, "2026-11-30T09:00:00Z");
        on_time.fulfil(at("2026-11-30T09:30:00Z"), Counting::Always);
        assert!(!on_time.view(at("2026-12-30T09:30:00Z")).breached);
    }

    #[test]
    fn a_reopen_rearms_the_resolution_clock_keeping_time_used() {
        let mut c = clock(120, "2026-11-30T09:00:00Z");
        c.fulfil(at("2026-11-30T10:00:00Z"), Counting::Always);
        c.rearm(at("2026-11-30T15:00:00Z"), Counting::Always);
        assert_eq!(c.fulfilled_at, None);
        assert_eq!(c.paused_seconds, 5 * 3600);
        assert_eq!(c.due_at, Some(at("2026-11-30T16:00:00Z")));
    }

    #[test]
    fn the_promise_never_pauses() {
        let mut p = ClockRow::promise(
            ComplaintId::new(),
            at("2026-11-30T09:00:00Z"),
            at("2026-12-01T09:00:00Z"),
        );
        p.pause(at("2026-11-30T10:00:00Z"));
        assert!(p.is_running());
        assert_eq!(p.due_at, Some(at("2026-12-01T09:00:00Z")));
        assert!(p.view(at("2026-12-01T10:00:00Z")).breached);
    }

    #[test]
    fn next_due_is_the_earliest_running_clock() {
        let a = clock(60, "2026-11-30T09:00:00Z");
        let mut b = clock(30, "2026-11-30T09:00:00Z");
        assert_eq!(
            next_due(&[a.clone(), b.clone()]),
            Some(at("2026-11-30T09:30:00Z"))
        );
        b.fulfil(at("2026-11-30T09:10:00Z"), Counting::Always);
        assert_eq!(next_due(&[a, b]), Some(at("2026-11-30T10:00:00Z")));
    }

    fn step(metric: Metric, offset: i32, notify: Recipient) -> LadderStep {
        LadderStep {
            metric,
            offset_minutes: Whole::from_checked(offset.into()),
            notify,
        }
    }

    #[test]
    fn the_ladder_orders_steps_and_levels() {
        let steps = [
            step(Metric::Resolution, 60, Recipient::Manager),
            step(Metric::Resolution, -30, Recipient::Assignee),
            step(Metric::Resolution, 240, Recipient::Admins),
        ];
        let plain = ladder(&steps, &[Metric::Resolution], 0);
        let kinds: Vec<_> = plain
            .iter()
            .map(|s| (s.step, s.kind, s.level, s.notify))
            .collect();
        assert_eq!(
            kinds,
            [
                (0, StepKind::Breach, 0, Recipient::Assignee),
                (1, StepKind::Warning, 0, Recipient::Assignee),
                (2, StepKind::Escalation, 1, Recipient::Manager),
                (3, StepKind::Escalation, 2, Recipient::Admins),
            ]
        );
        // One level up: each step tells whom the next one would, the top stays the top.
        let up = ladder(&steps, &[Metric::Resolution], 1);
        let told: Vec<_> = up.iter().map(|s| (s.level, s.notify)).collect();
        assert_eq!(
            told,
            [
                (1, Recipient::Assignee),
                (1, Recipient::Manager),
                (2, Recipient::Admins),
                (3, Recipient::Admins),
            ]
        );
    }

    #[test]
    fn steps_fire_from_the_due_time_and_not_after_fulfilment() {
        let mut c = clock(60, "2026-11-30T09:00:00Z");
        assert_eq!(fire_at(&c, -15), Some(at("2026-11-30T09:45:00Z")));
        c.pause(at("2026-11-30T09:20:00Z"));
        assert_eq!(fire_at(&c, -15), None);
        c.resume(at("2026-11-30T09:30:00Z"), Counting::Always);
        assert_eq!(fire_at(&c, 0), Some(at("2026-11-30T10:10:00Z")));
        c.fulfil(at("2026-11-30T10:00:00Z"), Counting::Always);
        assert_eq!(fire_at(&c, -15), Some(at("2026-11-30T09:55:00Z")));
        assert_eq!(fire_at(&c, 0), None);
    }
}
