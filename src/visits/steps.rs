//! A visit's steps after it is planned: change its facts, confirm, check in and out from a
//! phone (offline captures included), complete with its outcome and follow-ups, cancel, mark
//! a no-show, reschedule. Each is one [`write::change`] of the visit.

use chrono::{DateTime, Duration, Utc};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use super::geo;
use super::planning::{check_complaint, check_times, plan_next, point};
use super::requests::{
    CancelRequest, CaptureInput, CompleteRequest, FollowUpPatch, RescheduleRequest, StepNote,
    VisitPatch,
};
use super::{
    CANCELLED, CHECKED_IN, CHECKED_OUT, COMPLETED, CONFIRMED, Capture, FollowUp, Method, NO_SHOW,
    RESCHEDULED, ScheduleChange, Status, VisitRecord, VisitRow, cadences,
};
use crate::complaints::api::{self as complaint, Channel, NewComplaint};
use crate::error::{ApiError, ApiResult};
use crate::http::etag::IfMatch;
use crate::http::json::Field;
use crate::kit::ids::VisitId;
use crate::kit::input::{CLOCK_SKEW_MINUTES, Items, Latitude, Longitude, Text};
use crate::kit::workflow::ensure_move;
use crate::kit::write::{self, Action, Writer};
use crate::users::ensure_active;

/// A capture received more than this many minutes after the device took it is a late sync.
pub const LATE_SYNC_MINUTES: i64 = 10;

/// How long before its visit was created or scheduled (whichever is earlier: a visit
/// recorded after the fact) a capture may have been taken.
const CAPTURED_EARLY_HOURS: i64 = 24;

/// A capture of the visit `v` as stored: `422` from the future (beyond the clock skew) or
/// from before the visit existed (less a day), so every duration derived from it is
/// bounded; the distance to the visit's location; a late sync flagged. A capture without
/// a position keeps its coordinates `null`.
fn capture(body: &CaptureInput, v: &VisitRow, now: DateTime<Utc>) -> ApiResult<Capture> {
    if body.captured_at > now + Duration::minutes(CLOCK_SKEW_MINUTES) {
        return Err(ApiError::invalid(
            "captured_at",
            "future",
            "cannot be in the future (check the device's clock)",
        ));
    }
    let earliest = v.created_at.min(v.scheduled_start) - Duration::hours(CAPTURED_EARLY_HOURS);
    if body.captured_at < earliest {
        return Err(ApiError::invalid(
            "captured_at",
            "range",
            format!(
                "cannot be more than {CAPTURED_EARLY_HOURS} hours before the visit was created or scheduled"
            ),
        ));
    }
    let at = point(body.latitude, body.longitude)?;
    let target = v.point();
    Ok(Capture {
        latitude: at.map(|p| p.latitude),
        longitude: at.map(|p| p.longitude),
        accuracy_m: body.accuracy_m.map(|a| a.get() as f64),
        captured_at: body.captured_at,
        received_at: now,
        distance_m: at
            .zip(target)
            .map(|(a, b)| (geo::distance_m(a, b) * 10.0).round() / 10.0),
        within_radius: None,
        late_sync: now - body.captured_at > Duration::minutes(LATE_SYNC_MINUTES),
    })
}

/// Whether a stored capture is the same capture sent again (an offline queue replayed).
fn same_capture(stored: Option<&Capture>, body: &CaptureInput) -> bool {
    stored.is_some_and(|c| c.captured_at == body.captured_at)
}

/// The channel a complaint raised at a visit came through.
fn channel_of(method: Method) -> Channel {
    match method {
        Method::Phone => Channel::Phone,
        Method::Email => Channel::Email,
        _ => Channel::InPerson,
    }
}

/// Changes a visit's facts (not its time or status): owner, purpose, method, participants,
/// contacts met, agenda, location, the complaint it follows up.
pub async fn update(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    id: VisitId,
    if_match: &IfMatch,
    p: VisitPatch,
) -> ApiResult<VisitRecord> {
    let (saved, ()) = write::change(
        conn,
        writer,
        id,
        if_match,
        Action::UPDATED,
        async |conn, v: &mut VisitRecord| {
            let r = &mut v.row;
            if let Some(owner) = p.owner_id {
                ensure_active(conn, "owner_id", owner).await?;
                r.owner_id = owner;
            }
            r.purpose = p.purpose.unwrap_or(r.purpose);
            r.method = p.method.unwrap_or(r.method);
            if let Some(reason) = p.reason {
                r.reason = reason.into_inner();
            }
            if let Some(participants) = p.participants {
                for user in participants.iter() {
                    ensure_active(conn, "participants", *user).await?;
                }
                r.participants = participants.into_inner();
            }
            if let Some(contacts) = p.contacts_met {
                r.contacts_met = contacts
                    .into_inner()
                    .into_iter()
                    .map(Text::into_inner)
                    .collect();
            }
            r.agenda = p.agenda.map_value(Text::into_inner).apply(r.agenda.take());
            r.location = p
                .location
                .map_value(Text::into_inner)
                .apply(r.location.take());
            r.latitude = p.latitude.map_value(Latitude::get).apply(r.latitude);
            r.longitude = p.longitude.map_value(Longitude::get).apply(r.longitude);
            if r.latitude.is_some() != r.longitude.is_some() {
                return Err(ApiError::rule(
                    "latitude",
                    "pair",
                    "a visit has both coordinates or neither",
                ));
            }
            match p.complaint_id {
                Field::Absent => {}
                Field::Null => r.complaint_id = None,
                Field::Value(complaint) => {
                    check_complaint(conn, complaint, r.customer_id).await?;
                    r.complaint_id = Some(complaint);
                }
            }
            Ok(())
        },
    )
    .await?;
    Ok(saved)
}

/// Confirms the appointment with the customer.
pub async fn confirm(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    id: VisitId,
    if_match: &IfMatch,
) -> ApiResult<VisitRecord> {
    let (saved, ()) = write::change(
        conn,
        writer,
        id,
        if_match,
        CONFIRMED,
        async |_, v: &mut VisitRecord| {
            ensure_move("a visit", v.row.status, Status::Confirmed)?;
            v.row.status = Status::Confirmed;
            v.row.confirmed_at = Some(Utc::now());
            Ok(())
        },
    )
    .await?;
    Ok(saved)
}

/// Checks in: the capture's distance to the visit's location decides `within_radius`; the
/// same capture sent again leaves the visit as it is.
pub async fn check_in(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    id: VisitId,
    if_match: &IfMatch,
    b: CaptureInput,
) -> ApiResult<VisitRecord> {
    let (saved, ()) = write::change(
        conn,
        writer,
        id,
        if_match,
        CHECKED_IN,
        async |conn, v: &mut VisitRecord| {
            // The same capture again: an offline queue replayed, even once the visit moved on.
            if same_capture(v.row.check_in().as_ref(), &b) {
                return Ok(());
            }
            ensure_move("a visit", v.row.status, Status::CheckedIn)?;
            let mut c = capture(&b, &v.row, Utc::now())?;
            let radius = cadences::radius_m(conn, v.row.customer_id).await?;
            c.within_radius = c
                .distance_m
                .map(|d| geo::within_radius(d, c.accuracy_m.unwrap_or(0.0), f64::from(radius)));
            v.row.within_radius = c.within_radius;
            v.row.late_sync |= c.late_sync;
            v.row.actual_start = Some(c.captured_at);
            v.row.check_in = Some(serde_json::to_value(&c).map_err(ApiError::internal)?);
            v.row.status = Status::CheckedIn;
            Ok(())
        },
    )
    .await?;
    Ok(saved)
}

/// Checks out: the visit's actual end; the same capture sent again leaves the visit as it is.
pub async fn check_out(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    id: VisitId,
    if_match: &IfMatch,
    b: CaptureInput,
) -> ApiResult<VisitRecord> {
    let (saved, ()) = write::change(
        conn,
        writer,
        id,
        if_match,
        CHECKED_OUT,
        async |_, v: &mut VisitRecord| {
            if same_capture(v.row.check_out().as_ref(), &b) {
                return Ok(());
            }
            if v.row.status != Status::CheckedIn {
                return Err(ApiError::IllegalMove {
                    detail: format!(
                        "a visit that is {} cannot check out; check in first",
                        v.row.status
                    ),
                    allowed: Vec::new(),
                });
            }
            let c = capture(&b, &v.row, Utc::now())?;
            if v.row
                .actual_start
                .is_some_and(|start| c.captured_at < start)
            {
                return Err(ApiError::rule(
                    "captured_at",
                    "before_check_in",
                    "is before the check-in",
                ));
            }
            v.row.late_sync |= c.late_sync;
            v.row.actual_end = Some(c.captured_at);
            v.row.check_out = Some(serde_json::to_value(&c).map_err(ApiError::internal)?);
            Ok(())
        },
    )
    .await?;
    Ok(saved)
}

/// Completes a checked-in visit with its outcome, and its follow-ups: each may plan the next
/// visit or open a complaint, in the same transaction.
pub async fn complete(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    id: VisitId,
    if_match: &IfMatch,
    b: CompleteRequest,
) -> ApiResult<VisitRecord> {
    let (saved, ()) = write::change(
        conn,
        writer,
        id,
        if_match,
        COMPLETED,
        async |conn, v: &mut VisitRecord| {
            ensure_move("a visit", v.row.status, Status::Completed)?;
            let now = Utc::now();
            v.row.status = Status::Completed;
            v.row.actual_end = v.row.actual_end.or(Some(now));
            v.row.outcome = Some(b.outcome.into_inner());
            v.row.next_steps = crate::kit::input::present(b.next_steps);
            if let Some(contacts) = b.contacts_met {
                v.row.contacts_met = contacts
                    .into_inner()
                    .into_iter()
                    .map(Text::into_inner)
                    .collect();
            }
            for f in b.follow_ups.map(Items::into_inner).unwrap_or_default() {
                let next_visit_id = match f.next_visit {
                    Some(next) => Some(plan_next(conn, writer, &v.row, next).await?.row.id),
                    None => None,
                };
                let complaint_id = match f.complaint {
                    Some(c) => {
                        let new = NewComplaint {
                            customer_id: v.row.customer_id,
                            channel: c.channel.unwrap_or(channel_of(v.row.method)),
                            category: c.category,
                            severity: c.severity,
                            subject: c.subject,
                            description: c.description,
                            order_id: None,
                            sku: None,
                            assignee_id: Some(v.row.owner_id),
                            promised_by: None,
                            received_at: None,
                        };
                        Some(
                            complaint::open(conn, writer, new, Some(v.row.owner_id))
                                .await?
                                .row
                                .id,
                        )
                    }
                    None => None,
                };
                v.follow_ups.push(FollowUp {
                    id: Uuid::now_v7(),
                    visit_id: v.row.id,
                    owner_id: v.row.owner_id,
                    customer_id: v.row.customer_id,
                    title: f.title.into_inner(),
                    due_on: f.due_on.map(|d| d.0),
                    done_at: None,
                    next_visit_id,
                    complaint_id,
                    created_at: now,
                });
            }
            Ok(())
        },
    )
    .await?;
    Ok(saved)
}

/// Cancels a planned or confirmed visit with its reason.
pub async fn cancel(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    id: VisitId,
    if_match: &IfMatch,
    b: CancelRequest,
) -> ApiResult<VisitRecord> {
    let (saved, ()) = write::change(
        conn,
        writer,
        id,
        if_match,
        CANCELLED,
        async |_, v: &mut VisitRecord| {
            ensure_move("a visit", v.row.status, Status::Cancelled)?;
            v.row.status = Status::Cancelled;
            v.row.cancel_reason = Some(b.reason);
            v.row.cancel_note = b.note.map(Text::into_inner);
            Ok(())
        },
    )
    .await?;
    Ok(saved)
}

/// Records that the customer was not there.
pub async fn no_show(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    id: VisitId,
    if_match: &IfMatch,
    StepNote { note }: StepNote,
) -> ApiResult<VisitRecord> {
    let (saved, ()) = write::change(
        conn,
        writer,
        id,
        if_match,
        NO_SHOW,
        async |_, v: &mut VisitRecord| {
            ensure_move("a visit", v.row.status, Status::NoShow)?;
            v.row.status = Status::NoShow;
            v.row.cancel_note = note.map(Text::into_inner);
            Ok(())
        },
    )
    .await?;
    Ok(saved)
}

/// Moves a visit to a new time, keeping its id and recording the change in its history.
pub async fn reschedule(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    id: VisitId,
    if_match: &IfMatch,
    b: RescheduleRequest,
) -> ApiResult<VisitRecord> {
    let by = writer.actor().label();
    let (saved, ()) = write::change(
        conn,
        writer,
        id,
        if_match,
        RESCHEDULED,
        async |_, v: &mut VisitRecord| {
            if !v.row.status.may_reschedule() {
                ensure_move("a visit", v.row.status, Status::Planned)?;
            }
            check_times(b.scheduled_start, b.scheduled_end)?;
            let mut history: Vec<ScheduleChange> = v.row.history();
            history.push(ScheduleChange {
                old_start: v.row.scheduled_start,
                old_end: v.row.scheduled_end,
                new_start: b.scheduled_start,
                new_end: b.scheduled_end,
                by,
                reason: b.reason.into_inner(),
                at: Utc::now(),
            });
            v.row.schedule_history = serde_json::to_value(history).map_err(ApiError::internal)?;
            v.row.reschedule_count += 1;
            v.row.scheduled_start = b.scheduled_start;
            v.row.scheduled_end = b.scheduled_end;
            v.row.status = Status::Planned;
            v.row.confirmed_at = None;
            Ok(())
        },
    )
    .await?;
    Ok(saved)
}

/// Changes one follow-up of a visit: done or not, its title, its due date.
pub async fn update_follow_up(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    id: VisitId,
    follow_up: Uuid,
    if_match: &IfMatch,
    p: FollowUpPatch,
) -> ApiResult<VisitRecord> {
    let (saved, ()) = write::change(
        conn,
        writer,
        id,
        if_match,
        Action::UPDATED,
        async |_, v: &mut VisitRecord| {
            let f = v
                .follow_ups
                .iter_mut()
                .find(|f| f.id == follow_up)
                .ok_or_else(|| ApiError::NotFound("no such follow-up on this visit".into()))?;
            match p.done {
                Some(true) if f.done_at.is_none() => f.done_at = Some(Utc::now()),
                Some(false) => f.done_at = None,
                _ => {}
            }
            if let Some(title) = p.title {
                f.title = title.into_inner();
            }
            f.due_on = p.due_on.map_value(|d| d.0).apply(f.due_on);
            Ok(())
        },
    )
    .await?;
    Ok(saved)
}
