//! The request bodies and filters of `/api/v1/visits`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::{CancelReason, Method, Purpose, Status, VisitRow};
use crate::complaints::api::{
    Category, Channel, Description as ComplaintDescription, Severity,
    SubjectLine as ComplaintSubject,
};
use crate::db::keyset::page_in;
use crate::db::schema::visits;
use crate::http::json::Field;
use crate::http::sorting::{ScheduleOrder, SortOrder};
use crate::kit::ids::{ComplaintId, CustomerId, UserId, VisitId};
use crate::kit::input::{Items, Latitude, LocalDate, Longitude, Text, Whole};

/// Body of `POST /visits`: when, what, who, how and why.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVisit {
    pub customer_id: CustomerId,
    /// Who visits. Default: the caller (an agent plans only their own visits).
    pub owner_id: Option<UserId>,
    pub scheduled_start: DateTime<Utc>,
    /// After `scheduled_start`.
    pub scheduled_end: DateTime<Utc>,
    pub purpose: Purpose,
    pub method: Method,
    /// Why this visit, now.
    #[validate(nested)]
    pub reason: Text<1, 2000>,
    #[validate(nested)]
    pub agenda: Option<Text<0, 5000>>,
    /// Other staff coming along.
    #[validate(nested)]
    pub participants: Option<Items<UserId, 0, 20>>,
    /// The complaint this visit follows up (the customer's).
    pub complaint_id: Option<ComplaintId>,
    /// Default: the customer's first address with coordinates.
    #[validate(nested)]
    pub location: Option<Text<0, 300>>,
    /// Where check-ins are measured from; with `longitude`. Default: that address's.
    #[validate(nested)]
    pub latitude: Option<Latitude>,
    #[validate(nested)]
    pub longitude: Option<Longitude>,
}

/// Body of `PATCH /visits/{id}`: the visit's facts. Times change through `/reschedule`,
/// status through the actions.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct VisitPatch {
    /// Managers hand a visit to someone else; an agent cannot give one away.
    pub owner_id: Option<UserId>,
    pub purpose: Option<Purpose>,
    pub method: Option<Method>,
    #[validate(nested)]
    pub reason: Option<Text<1, 2000>>,
    #[validate(nested)]
    #[schema(nullable)]
    pub agenda: Field<Text<0, 5000>>,
    #[validate(nested)]
    pub participants: Option<Items<UserId, 0, 20>>,
    #[validate(nested)]
    pub contacts_met: Option<Items<Text<1, 200>, 0, 20>>,
    #[schema(nullable)]
    pub complaint_id: Field<ComplaintId>,
    #[validate(nested)]
    #[schema(nullable)]
    pub location: Field<Text<0, 300>>,
    #[validate(nested)]
    #[schema(nullable)]
    pub latitude: Field<Latitude>,
    #[validate(nested)]
    #[schema(nullable)]
    pub longitude: Field<Longitude>,
}

/// A position from the field app. Send both coordinates, or neither (a phone call).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureInput {
    #[validate(nested)]
    pub latitude: Option<Latitude>,
    #[validate(nested)]
    pub longitude: Option<Longitude>,
    /// The device's accuracy radius in metres. Default: 0.
    #[validate(nested)]
    pub accuracy_m: Option<Whole<0, 100_000>>,
    /// When the device captured it: may be hours ago (an offline phone), not in the future.
    pub captured_at: DateTime<Utc>,
}

/// A note kept with a step.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StepNote {
    #[validate(nested)]
    pub note: Option<Text<1, 2000>>,
}

/// Body of `POST /visits/{id}/cancel`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    pub reason: CancelReason,
    #[validate(nested)]
    pub note: Option<Text<1, 2000>>,
}

/// Body of `POST /visits/{id}/reschedule`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleRequest {
    pub scheduled_start: DateTime<Utc>,
    /// After `scheduled_start`.
    pub scheduled_end: DateTime<Utc>,
    #[validate(nested)]
    pub reason: Text<1, 2000>,
}

/// The next visit a follow-up plans: absent fields are proposed from this visit and the
/// customer's cadence (its interval after this visit, at the same local time, as long).
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NextVisit {
    pub scheduled_start: Option<DateTime<Utc>>,
    #[validate(nested)]
    pub duration_minutes: Option<Whole<5, 1440>>,
    pub purpose: Option<Purpose>,
    pub method: Option<Method>,
    #[validate(nested)]
    pub reason: Option<Text<1, 2000>>,
}

/// The complaint a follow-up opens, assigned to the visit's owner.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUpComplaint {
    /// Default: how the visit met the customer (`phone`, `email`, otherwise `in_person`).
    pub channel: Option<Channel>,
    pub category: Category,
    pub severity: Severity,
    #[validate(nested)]
    pub subject: ComplaintSubject,
    #[validate(nested)]
    pub description: ComplaintDescription,
}

/// A task agreed at the visit.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFollowUp {
    #[validate(nested)]
    pub title: Text<1, 500>,
    pub due_on: Option<LocalDate>,
    /// Plans the next visit, in the same transaction.
    #[validate(nested)]
    pub next_visit: Option<NextVisit>,
    /// Opens a complaint, in the same transaction.
    #[validate(nested)]
    pub complaint: Option<FollowUpComplaint>,
}

/// Body of `POST /visits/{id}/complete`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    #[validate(nested)]
    pub outcome: Text<1, 5000>,
    #[validate(nested)]
    pub next_steps: Option<Text<0, 5000>>,
    /// The customer's people met.
    #[validate(nested)]
    pub contacts_met: Option<Items<Text<1, 200>, 0, 20>>,
    #[validate(nested)]
    pub follow_ups: Option<Items<NewFollowUp, 0, 20>>,
}

/// Body of `PATCH /visits/{id}/follow-ups/{follow_up_id}`.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FollowUpPatch {
    /// `true` marks it done now; `false` opens it again.
    pub done: Option<bool>,
    #[validate(nested)]
    pub title: Option<Text<1, 500>>,
    #[schema(nullable, value_type = Option<String>, format = Date)]
    pub due_on: Field<LocalDate>,
}

/// Filters of `GET /visits`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VisitFilters {
    pub owner_id: Option<UserId>,
    pub customer_id: Option<CustomerId>,
    pub status: Option<Status>,
    pub purpose: Option<Purpose>,
    pub method: Option<Method>,
    /// Scheduled to start at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Scheduled to start before this time.
    pub to: Option<DateTime<Utc>>,
    /// `false`: the check-ins outside the radius (flagged for managers).
    pub within_radius: Option<bool>,
    /// `true`: visits with a check-in or check-out that reached the server late.
    pub late_sync: Option<bool>,
    /// The order: `scheduled_start` (soonest first, the default) or `-scheduled_start`.
    pub sort: Option<ScheduleOrder>,
}

/// A page of `GET /visits`, by scheduled start in the filters' order (public so that tests
/// can `EXPLAIN` it).
pub fn list_query(
    f: &VisitFilters,
    after: Option<(DateTime<Utc>, VisitId)>,
    limit: i64,
) -> diesel::helper_types::IntoBoxed<
    'static,
    diesel::helper_types::Select<
        visits::table,
        diesel::helper_types::AsSelect<VisitRow, diesel::pg::Pg>,
    >,
    diesel::pg::Pg,
> {
    let direction = f.sort.unwrap_or_default().direction();
    let mut query = page_in(
        visits::table
            .select(VisitRow::as_select())
            .limit(limit)
            .into_boxed(),
        (visits::scheduled_start, visits::id),
        after.map(|(at, id)| (at, id.get())),
        direction,
    );
    if let Some(owner) = f.owner_id {
        query = query.filter(visits::owner_id.eq(owner));
    }
    if let Some(customer) = f.customer_id {
        query = query.filter(visits::customer_id.eq(customer));
    }
    if let Some(status) = f.status {
        query = query.filter(visits::status.eq(status));
    }
    if let Some(purpose) = f.purpose {
        query = query.filter(visits::purpose.eq(purpose));
    }
    if let Some(method) = f.method {
        query = query.filter(visits::method.eq(method));
    }
    if let Some(from) = f.from {
        query = query.filter(visits::scheduled_start.ge(from));
    }
    if let Some(to) = f.to {
        query = query.filter(visits::scheduled_start.lt(to));
    }
    if let Some(within) = f.within_radius {
        query = query.filter(visits::within_radius.eq(within));
    }
    if let Some(late) = f.late_sync {
        query = query.filter(visits::late_sync.eq(late));
    }
    query
}
