//! The seats of a club event: registrations and their statuses, the waitlist ordered by tier
//! and arrival, offers of freed seats and their expiry. The event's handlers and the
//! registrations' share it; the caller holds the event's lock.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::settings::SettingsRow;
use crate::db::schema::{club_events, club_members, club_registrations};
use crate::error::{ApiError, ApiResult};
use crate::kit::audit::Subject;
use crate::kit::ids::{ClubEventId, CustomerId, MemberId, RegistrationId};
use crate::kit::write::{Occurrence, Writer};
use crate::text_enum;

text_enum! {
    /// Where a registration stands.
    pub enum RegistrationStatus {
        /// Holds a seat.
        Registered = "registered",
        /// In line for a seat.
        Waitlisted = "waitlisted",
        /// A freed seat is held for them until `offer_expires_at`.
        Offered = "offered",
        /// Checked in at the event.
        Attended = "attended",
        /// Gave up the seat (or the offer).
        Cancelled = "cancelled",
        /// Left the waitlist.
        Left = "left",
        /// Did not take up the offer in time.
        OfferExpired = "offer_expired",
    }
}

crate::workflow! {
    RegistrationStatus:
        (Registered, Attended | Cancelled)
            | (Waitlisted, Offered | Left)
            | (Offered, Registered | Cancelled | OfferExpired)
}

impl RegistrationStatus {
    /// The statuses that hold a seat.
    pub const SEATED: [&'static str; 3] = ["registered", "offered", "attended"];
}

/// A registration row, and how the API shows it.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = club_registrations)]
pub struct Registration {
    pub id: RegistrationId,
    pub event_id: ClubEventId,
    pub member_id: MemberId,
    pub status: RegistrationStatus,
    /// Waitlist order: the member's tier rank (higher first), then arrival.
    pub priority: i32,
    /// While `offered`: the seat is held until then.
    pub offer_expires_at: Option<DateTime<Utc>>,
    pub checked_in_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The seats of the event that are held (registered, offered, attended).
pub async fn seats_taken(conn: &mut AsyncPgConnection, event: ClubEventId) -> ApiResult<i64> {
    Ok(club_registrations::table
        .filter(club_registrations::event_id.eq(event))
        .filter(club_registrations::status.eq_any(RegistrationStatus::SEATED))
        .count()
        .get_result(conn)
        .await?)
}

/// Moves a registration (the event is locked by the caller), announced as
/// `registration.<status>`.
pub async fn set_status(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    registration: &Registration,
    status: RegistrationStatus,
    offer_expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> ApiResult<Registration> {
    let saved: Registration = diesel::update(club_registrations::table.find(registration.id))
        .set((
            club_registrations::status.eq(status),
            club_registrations::offer_expires_at.eq(offer_expires_at),
            club_registrations::checked_in_at.eq(if status == RegistrationStatus::Attended {
                Some(now)
            } else {
                registration.checked_in_at
            }),
            club_registrations::version.eq(registration.version + 1),
            club_registrations::updated_at.eq(now),
        ))
        .returning(Registration::as_returning())
        .get_result(conn)
        .await?;
    announce(
        conn,
        writer,
        &saved,
        status.as_str(),
        json!({"status": {"old": registration.status, "new": status}}),
    )
    .await?;
    Ok(saved)
}

/// Records a registration's change (`registration.<what>`) with its audit entry, on the
/// member's customer.
pub async fn announce(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    registration: &Registration,
    what: &'static str,
    changes: Value,
) -> ApiResult<()> {
    let customer: CustomerId = club_members::table
        .find(registration.member_id)
        .select(club_members::customer_id)
        .first(conn)
        .await?;
    Occurrence {
        subject: Subject {
            entity_type: "registration",
            entity_id: registration.id.get(),
            customer_id: Some(customer),
        },
        event_type: format!("registration.{what}"),
        audit_action: what,
    }
    .record(
        conn,
        writer,
        changes,
        serde_json::to_value(registration).unwrap_or_default(),
    )
    .await
}

/// Offers the event's free seats to the waitlist, best tier then first come, each held for
/// the club's offer time. The caller holds the event's lock.
pub async fn offer_free_seats(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    event: ClubEventId,
    capacity: i32,
    now: DateTime<Utc>,
) -> ApiResult<usize> {
    let free = i64::from(capacity) - seats_taken(conn, event).await?;
    if free <= 0 {
        return Ok(0);
    }
    let next: Vec<Registration> = club_registrations::table
        .filter(club_registrations::event_id.eq(event))
        .filter(club_registrations::status.eq(RegistrationStatus::Waitlisted))
        .order((
            club_registrations::priority.desc(),
            club_registrations::created_at,
            club_registrations::id,
        ))
        .limit(free)
        .select(Registration::as_select())
        .for_update()
        .load(conn)
        .await?;
    let hold = SettingsRow::load(conn).await?.offer_hold();
    for registration in &next {
        set_status(
            conn,
            writer,
            registration,
            RegistrationStatus::Offered,
            Some(now + hold),
            now,
        )
        .await?;
    }
    Ok(next.len())
}

/// One transaction of the offer job: expires up to `limit` offers past their time whose
/// events no one else holds, and offers the seats on. Returns how many expired.
pub async fn expire_offers_batch(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> ApiResult<usize> {
    let writer = Writer::system();
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let events: Vec<ClubEventId> = club_events::table
            .filter(club_events::deleted_at.is_null())
            .filter(diesel::dsl::exists(
                club_registrations::table
                    .filter(club_registrations::event_id.eq(club_events::id))
                    .filter(club_registrations::status.eq(RegistrationStatus::Offered))
                    .filter(club_registrations::offer_expires_at.le(now)),
            ))
            .select(club_events::id)
            .limit(limit)
            .for_update()
            .skip_locked()
            .load(conn)
            .await?;
        let mut expired = 0;
        for id in events {
            let capacity: i32 = club_events::table
                .find(id)
                .select(club_events::capacity)
                .first(conn)
                .await?;
            let lapsed: Vec<Registration> = club_registrations::table
                .filter(club_registrations::event_id.eq(id))
                .filter(club_registrations::status.eq(RegistrationStatus::Offered))
                .filter(club_registrations::offer_expires_at.le(now))
                .select(Registration::as_select())
                .for_update()
                .load(conn)
                .await?;
            for registration in &lapsed {
                set_status(
                    conn,
                    &writer,
                    registration,
                    RegistrationStatus::OfferExpired,
                    None,
                    now,
                )
                .await?;
            }
            expired += lapsed.len();
            offer_free_seats(conn, &writer, id, capacity, now).await?;
        }
        Ok(expired)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::RegistrationStatus::{self, *};
    use crate::kit::workflow::Workflow;

    #[test]
    fn registration_moves() {
        let allowed = |s: RegistrationStatus| s.allowed();
        assert_eq!(allowed(Registered), vec![Attended, Cancelled]);
        assert_eq!(allowed(Waitlisted), vec![Offered, Left]);
        assert_eq!(allowed(Offered), vec![Registered, Cancelled, OfferExpired]);
        for done in [Attended, Cancelled, Left, OfferExpired] {
            assert!(allowed(done).is_empty(), "{done} is final");
        }
    }
}
