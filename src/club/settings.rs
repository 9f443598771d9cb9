//! `/api/v1/club/settings`: the club's policies, one record: when earned points expire, the
//! window tiers qualify in, how long a waitlist offer holds, how early a coming downgrade is
//! announced. Every write of the club reads them in its own transaction, so all instances
//! apply a change at once.

use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, patch, web};
use chrono::{DateTime, Datelike, Duration, Months, TimeZone, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::auth::{Authorized, ClubManage, ClubRead};
use crate::db::DbConn;
use crate::db::schema::club_settings;
use crate::error::{ApiError, ApiResult};
use crate::http::etag::{IfMatch, versioned};
use crate::http::json::ValidJson;
use crate::kit::input::Whole;
use crate::kit::write::{self, Action, Versioned, Writer};
use crate::text_enum;

crate::routes!(get_settings, update_settings);

/// Counts the changes to the tiers and settings made through this instance (called after
/// each has committed): the member reads' copy of both (`cache::RulesCache`) is good only
/// while the count it was read at is current.
#[derive(Debug, Default)]
pub struct RulesChanges(AtomicU64);

impl RulesChanges {
    /// The changes counted so far.
    pub fn count(&self) -> u64 {
        AtomicU64::load(&self.0, Ordering::Acquire)
    }

    /// Counts a committed change.
    pub fn record(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

text_enum! {
    /// When earned points lapse.
    pub enum ExpiryPolicy {
        /// `expiry_months` after they are earned.
        AfterMonths = "after_months",
        /// At the end of the year after the one they are earned in.
        EndOfFollowingYear = "end_of_following_year",
    }
}

text_enum! {
    /// The window qualifying points and spend are counted in for tiers. Every tier is reviewed
    /// twelve months after its last review; the window decides when the first review falls
    /// and where the count for an upgrade starts.
    pub enum TierWindow {
        /// The last twelve months.
        RollingYear = "rolling_year",
        /// The calendar year so far (UTC).
        CalendarYear = "calendar_year",
        /// The membership year so far, from the last anniversary of joining.
        Anniversary = "anniversary",
    }
}

/// The club's policies.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = club_settings)]
#[schema(as = ClubSettings)]
pub struct SettingsRow {
    #[serde(skip)]
    pub id: bool,
    pub expiry_policy: ExpiryPolicy,
    /// Months after earning that points lapse, under `after_months`.
    #[schema(example = 12)]
    pub expiry_months: i32,
    pub tier_window: TierWindow,
    /// How long a seat offered from an event's waitlist is held.
    #[schema(example = 24)]
    pub offer_hold_hours: i32,
    /// How many days before a tier review a coming downgrade is announced
    /// (`member.tier_downgrade_pending`).
    #[schema(example = 14)]
    pub downgrade_notice_days: i32,
    /// The most goodwill points an agent may grant with a complaint's resolutions, over all
    /// its cycles (a complaint's compensation); managers, admins and keys with `club:write`
    /// grant more. Default 500.
    #[schema(example = 500)]
    pub goodwill_points_per_complaint: i32,
    #[serde(skip)]
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

impl SettingsRow {
    /// The policies as stored.
    pub async fn load(mut conn: &AsyncPgConnection) -> ApiResult<Self> {
        Ok(club_settings::table
            .select(Self::as_select())
            .first(&mut conn)
            .await?)
    }

    /// When points earned at `earned_at` lapse.
    pub fn expiry_of(&self, earned_at: DateTime<Utc>) -> DateTime<Utc> {
        match self.expiry_policy {
            ExpiryPolicy::AfterMonths => earned_at
                .checked_add_months(Months::new(self.expiry_months.unsigned_abs()))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            ExpiryPolicy::EndOfFollowingYear => Utc
                .with_ymd_and_hms(earned_at.year() + 2, 1, 1, 0, 0, 0)
                .single()
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }

    /// Where the count for an upgrade starts at `now`.
    pub fn window_start(&self, joined_at: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
        match self.tier_window {
            TierWindow::RollingYear => year_before(now),
            TierWindow::CalendarYear => Utc
                .with_ymd_and_hms(now.year(), 1, 1, 0, 0, 0)
                .single()
                .unwrap_or(now),
            TierWindow::Anniversary => {
                let mut start = joined_at;
                while let Some(next) = start.checked_add_months(Months::new(12)) {
                    if next > now {
                        break;
                    }
                    start = next;
                }
                start
            }
        }
    }

    /// The first review of a tier reached at `since`: the end of the window it counts in.
    pub fn first_review(&self, joined_at: DateTime<Utc>, since: DateTime<Utc>) -> DateTime<Utc> {
        match self.tier_window {
            TierWindow::RollingYear => year_after(since),
            TierWindow::CalendarYear => Utc
                .with_ymd_and_hms(since.year() + 1, 1, 1, 0, 0, 0)
                .single()
                .unwrap_or(since),
            TierWindow::Anniversary => year_after(self.window_start(joined_at, since)),
        }
    }

    /// How long a waitlist offer holds.
    pub fn offer_hold(&self) -> Duration {
        Duration::hours(i64::from(self.offer_hold_hours))
    }
}

/// Twelve months before.
pub fn year_before(at: DateTime<Utc>) -> DateTime<Utc> {
    at.checked_sub_months(Months::new(12)).unwrap_or(at)
}

/// Twelve months after.
pub fn year_after(at: DateTime<Utc>) -> DateTime<Utc> {
    at.checked_add_months(Months::new(12)).unwrap_or(at)
}

impl Versioned for SettingsRow {
    const KIND: &'static str = "club_settings";
    type Id = Uuid;

    /// The one record's id in the audit log and events: the nil UUID.
    fn id(&self) -> Uuid {
        Uuid::nil()
    }

    fn version(&self) -> i64 {
        self.version
    }

    fn stamp(&mut self, version: i64, now: DateTime<Utc>) {
        self.version = version;
        self.updated_at = now;
    }

    async fn lock(conn: &mut AsyncPgConnection, _id: Uuid) -> ApiResult<Self> {
        Ok(club_settings::table
            .select(Self::as_select())
            .for_update()
            .first(conn)
            .await?)
    }

    async fn insert(&self, _conn: &mut AsyncPgConnection) -> ApiResult<Self> {
        Err(ApiError::internal(
            "the club's settings are one row, created by the migration",
        ))
    }

    async fn update(&self, conn: &mut AsyncPgConnection) -> ApiResult<Self> {
        Ok(diesel::update(club_settings::table)
            .set((
                club_settings::expiry_policy.eq(self.expiry_policy),
                club_settings::expiry_months.eq(self.expiry_months),
                club_settings::tier_window.eq(self.tier_window),
                club_settings::offer_hold_hours.eq(self.offer_hold_hours),
                club_settings::downgrade_notice_days.eq(self.downgrade_notice_days),
                club_settings::goodwill_points_per_complaint.eq(self.goodwill_points_per_complaint),
                club_settings::version.eq(self.version),
                club_settings::updated_at.eq(self.updated_at),
            ))
            .returning(Self::as_returning())
            .get_result(conn)
            .await?)
    }
}

/// Body of `PATCH /club/settings`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    pub expiry_policy: Option<ExpiryPolicy>,
    #[validate(nested)]
    pub expiry_months: Option<Whole<1, 120>>,
    pub tier_window: Option<TierWindow>,
    #[validate(nested)]
    pub offer_hold_hours: Option<Whole<1, 720>>,
    #[validate(nested)]
    pub downgrade_notice_days: Option<Whole<0, 90>>,
    #[validate(nested)]
    pub goodwill_points_per_complaint: Option<Whole<0, 1_000_000>>,
}

/// The club's policies.
#[utoipa::path(tag = "club-settings", responses((status = 200, body = SettingsRow, headers(("ETag" = String)))))]
#[get("/club/settings")]
async fn get_settings(_: Authorized<ClubRead>, conn: DbConn) -> ApiResult<HttpResponse> {
    let row = SettingsRow::load(&conn).await?;
    Ok(versioned(StatusCode::OK, &row, row.version))
}

/// Change the club's policies (points already earned keep the expiry they were given).
#[utoipa::path(tag = "club-settings", request_body = SettingsPatch, responses((status = 200, body = SettingsRow, headers(("ETag" = String)))))]
#[patch("/club/settings")]
async fn update_settings(
    caller: Authorized<ClubManage>,
    mut conn: DbConn,
    changes: web::Data<RulesChanges>,
    if_match: IfMatch,
    body: ValidJson<SettingsPatch>,
) -> ApiResult<HttpResponse> {
    let p = body.0;
    let writer = Writer::of(&caller.principal);
    let (saved, ()) = write::change(
        &mut conn,
        &writer,
        Uuid::nil(),
        &if_match,
        Action::UPDATED,
        async |_, after: &mut SettingsRow| {
            if let Some(policy) = p.expiry_policy {
                after.expiry_policy = policy;
            }
            if let Some(months) = p.expiry_months {
                after.expiry_months = months.get() as i32;
            }
            if let Some(window) = p.tier_window {
                after.tier_window = window;
            }
            if let Some(hours) = p.offer_hold_hours {
                after.offer_hold_hours = hours.get() as i32;
            }
            if let Some(days) = p.downgrade_notice_days {
                after.downgrade_notice_days = days.get() as i32;
            }
            if let Some(points) = p.goodwill_points_per_complaint {
                after.goodwill_points_per_complaint = points.get() as i32;
            }
            Ok(())
        },
    )
    .await?;
    changes.record();
    Ok(versioned(StatusCode::OK, &saved, saved.version))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(policy: ExpiryPolicy, window: TierWindow) -> SettingsRow {
        SettingsRow {
            id: true,
            expiry_policy: policy,
            expiry_months: 12,
            tier_window: window,
            offer_hold_hours: 24,
            downgrade_notice_days: 14,
            goodwill_points_per_complaint: 500,
            version: 1,
            updated_at: Utc::now(),
        }
    }

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
    }

    #[test]
    fn expiry_after_months_or_at_the_end_of_the_following_year() {
        let s = settings(ExpiryPolicy::AfterMonths, TierWindow::RollingYear);
        assert_eq!(s.expiry_of(at(2026, 2, 28)), at(2027, 2, 28));
        let s = settings(ExpiryPolicy::EndOfFollowingYear, TierWindow::RollingYear);
        assert_eq!(
            s.expiry_of(at(2026, 3, 5)),
            Utc.with_ymd_and_hms(2028, 1, 1, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn windows_start_and_first_reviews() {
        let joined = at(2024, 6, 10);
        let now = at(2026, 12, 3);
        let rolling = settings(ExpiryPolicy::AfterMonths, TierWindow::RollingYear);
        assert_eq!(rolling.window_start(joined, now), at(2025, 12, 3));
        assert_eq!(rolling.first_review(joined, now), at(2027, 12, 3));
        let calendar = settings(ExpiryPolicy::AfterMonths, TierWindow::CalendarYear);
        assert_eq!(
            calendar.window_start(joined, now),
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            calendar.first_review(joined, now),
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
        );
        let anniversary = settings(ExpiryPolicy::AfterMonths, TierWindow::Anniversary);
        assert_eq!(anniversary.window_start(joined, now), at(2026, 6, 10));
        assert_eq!(anniversary.first_review(joined, now), at(2027, 6, 10));
    }
}
