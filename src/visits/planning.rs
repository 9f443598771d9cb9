//! Planning visits: a new visit checked against its customer, owner, participants and
//! complaint (by hand, from a follow-up, or as a plan's occurrence), and the local time a
//! cadence puts the next one at.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::geo::Point;
use super::requests::NextVisit;
use super::{PLANNED, Planned, VisitRecord, VisitRow, cadences};
use crate::complaints::api as complaint_api;
use crate::customers::api as customers;
use crate::db::schema::users;
use crate::error::{ApiError, ApiResult};
use crate::kit::ids::{ComplaintId, CustomerId, UserId};
use crate::kit::input::{Latitude, Longitude, Text};
use crate::kit::write::{self, Writer};
use crate::users::ensure_active;

/// `409` unless the complaint exists and is this customer's.
pub async fn check_complaint(
    conn: &mut AsyncPgConnection,
    complaint: ComplaintId,
    customer: CustomerId,
) -> ApiResult<()> {
    let owner = complaint_api::customer_of(conn, complaint).await?;
    customers::ensure_customers("complaint_id", "complaint", owner, customer)
}

/// How far back a visit may be scheduled (a visit recorded after the fact).
const SCHEDULED_DAYS_BACK: i64 = 366;
/// How far ahead a visit may be scheduled.
const SCHEDULED_DAYS_AHEAD: i64 = 5 * 366;
/// The longest a visit may be scheduled to last.
const LONGEST_VISIT_DAYS: i64 = 7;

/// `422` naming the field unless the times make a visit: the start within a year back and
/// five years ahead, the end after the start and at most a week later. These are checks of
/// the body, whatever is stored.
pub fn check_times(start: DateTime<Utc>, end: DateTime<Utc>) -> ApiResult<()> {
    let now = Utc::now();
    if start < now - Duration::days(SCHEDULED_DAYS_BACK)
        || start > now + Duration::days(SCHEDULED_DAYS_AHEAD)
    {
        return Err(ApiError::invalid(
            "scheduled_start",
            "range",
            format!(
                "must be within {SCHEDULED_DAYS_BACK} days back and {SCHEDULED_DAYS_AHEAD} days ahead"
            ),
        ));
    }
    if end <= start {
        return Err(ApiError::invalid(
            "scheduled_end",
            "after_start",
            "must be after scheduled_start",
        ));
    }
    if end - start > Duration::days(LONGEST_VISIT_DAYS) {
        return Err(ApiError::invalid(
            "scheduled_end",
            "range",
            format!("a visit lasts at most {LONGEST_VISIT_DAYS} days"),
        ));
    }
    Ok(())
}

/// Both coordinates or neither: `409` for one alone.
pub fn point(latitude: Option<Latitude>, longitude: Option<Longitude>) -> ApiResult<Option<Point>> {
    match (latitude, longitude) {
        (Some(lat), Some(lng)) => Ok(Some(Point {
            latitude: lat.get(),
            longitude: lng.get(),
        })),
        (None, None) => Ok(None),
        _ => Err(ApiError::rule(
            "latitude",
            "pair",
            "send latitude and longitude together",
        )),
    }
}

/// The customer's first address with coordinates, as a location and a point.
fn customer_location(customer: &customers::CustomerRow) -> Option<(String, Point)> {
    let addresses: Vec<crate::customers::api::Address> =
        serde_json::from_value(customer.addresses.clone()).unwrap_or_default();
    addresses.into_iter().find_map(|a| {
        let (lat, lng) = (a.latitude?, a.longitude?);
        let city = a
            .city
            .map(|c| format!(", {}", c.into_inner()))
            .unwrap_or_default();
        Some((
            format!("{}{city}", a.line1.into_inner()),
            Point {
                latitude: lat.get(),
                longitude: lng.get(),
            },
        ))
    })
}

/// A new visit in the caller's transaction: the customer live, owner and participants
/// active, the complaint the customer's; the location defaults to the customer's address.
pub async fn plan(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    p: Planned,
) -> ApiResult<VisitRecord> {
    check_times(p.scheduled_start, p.scheduled_end)?;
    let customer = customers::find_referenced(conn, p.customer_id).await?;
    ensure_active(conn, "owner_id", p.owner_id).await?;
    for user in &p.participants {
        ensure_active(conn, "participants", *user).await?;
    }
    if let Some(complaint) = p.complaint_id {
        check_complaint(conn, complaint, customer.id).await?;
    }
    let (location, coordinates) = match (p.location, p.coordinates) {
        (location, Some(point)) => (location, Some(point)),
        (location, None) => match customer_location(&customer) {
            Some((line, point)) => (location.or(Some(line)), Some(point)),
            None => (location, None),
        },
    };
    let record = VisitRecord {
        row: VisitRow::planned(
            Planned {
                location,
                coordinates,
                ..p
            },
            None,
            Utc::now(),
        ),
        follow_ups: Vec::new(),
    };
    write::create(conn, writer, record, PLANNED).await
}

/// The next visit after `this`: what the follow-up gives, the rest proposed from this visit
/// and the customer's cadence.
pub async fn plan_next(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    this: &VisitRow,
    next: NextVisit,
) -> ApiResult<VisitRecord> {
    let length = next
        .duration_minutes
        .map_or(this.scheduled_end - this.scheduled_start, |m| {
            Duration::minutes(m.get())
        });
    let start = match next.scheduled_start {
        Some(start) => start,
        None => {
            let interval = cadences::interval_days(conn, this.customer_id).await?;
            let zone = owner_zone(conn, this.owner_id).await?;
            same_local_time_after(this.scheduled_start, interval, zone)
        }
    };
    plan(
        conn,
        writer,
        Planned {
            customer_id: this.customer_id,
            owner_id: this.owner_id,
            scheduled_start: start,
            scheduled_end: start + length,
            purpose: next.purpose.unwrap_or(this.purpose),
            method: next.method.unwrap_or(this.method),
            reason: next.reason.map_or_else(
                || {
                    format!(
                        "Follow-up of the visit of {}",
                        this.scheduled_start.date_naive()
                    )
                },
                Text::into_inner,
            ),
            agenda: None,
            participants: Vec::new(),
            complaint_id: this.complaint_id,
            location: this.location.clone(),
            coordinates: this.point(),
        },
    )
    .await
}

/// The owner's time zone (`UTC` when unknown).
pub async fn owner_zone(conn: &mut AsyncPgConnection, owner: UserId) -> ApiResult<chrono_tz::Tz> {
    let name: Option<String> = users::table
        .find(owner.get())
        .select(users::time_zone)
        .first(conn)
        .await
        .optional()?;
    Ok(name
        .and_then(|n| n.parse().ok())
        .unwrap_or(chrono_tz::Tz::UTC))
}

/// `days` after `at`, at the same local time in `zone` (the earlier instant when that time
/// happens twice, an hour later when it does not exist).
pub fn same_local_time_after(at: DateTime<Utc>, days: i32, zone: chrono_tz::Tz) -> DateTime<Utc> {
    use chrono::TimeZone;
    let local = at.with_timezone(&zone).naive_local() + Duration::days(i64::from(days));
    zone.from_local_datetime(&local)
        .earliest()
        .or_else(|| {
            zone.from_local_datetime(&(local + Duration::hours(1)))
                .earliest()
        })
        .map_or(at + Duration::days(i64::from(days)), |t| {
            t.with_timezone(&Utc)
        })
}
