//! Visit boards (看板管理): one person's week — per day their visits, follow-ups due and
//! complaint deadlines, with today's, tomorrow's and the week's focus — and their month, in
//! weeks of daily counts against their targets. Days are the owner's local days (their
//! `time_zone`), so a board is right across DST changes.

use std::collections::BTreeMap;

use actix_web::{get, web};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::TryFutureExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::planning::owner_zone;
use super::targets::{self, Target, TargetPeriod};
use super::{Method, Purpose, Status};
use crate::auth::{Authorized, Principal, VisitsRead};
use crate::complaints::api::{self as complaint_api, BoardDeadline};
use crate::customers::api::customer_cards;
use crate::db::DbConn;
use crate::db::schema::{visit_follow_ups, visits};
use crate::error::{ApiError, ApiResult};
use crate::http::query::Query;
use crate::http::timestamps::timestamp;
use crate::kit::ids::{CustomerId, UserId, VisitId};

diesel::joinable!(visits -> customer_cards (customer_id));
diesel::allow_tables_to_appear_in_same_query!(visits, customer_cards);

crate::routes!(weekly, monthly);

/// An ISO 8601 week, `2026-W48`: Monday to Sunday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsoWeek {
    pub year: i32,
    pub week: u32,
}

impl IsoWeek {
    /// The week's Monday.
    pub fn monday(self) -> Option<NaiveDate> {
        NaiveDate::from_isoywd_opt(self.year, self.week, Weekday::Mon)
    }

    /// The week of a date.
    pub fn of(date: NaiveDate) -> Self {
        let week = date.iso_week();
        Self {
            year: week.year(),
            week: week.week(),
        }
    }
}

impl std::fmt::Display for IsoWeek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-W{:02}", self.year, self.week)
    }
}

impl<'de> Deserialize<'de> for IsoWeek {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let parsed = text.split_once("-W").and_then(|(y, w)| {
            let week = Self {
                year: y.parse().ok()?,
                week: w.parse().ok()?,
            };
            (y.len() == 4 && w.len() == 2).then_some(week)
        });
        parsed.filter(|w| w.monday().is_some()).ok_or_else(|| {
            serde::de::Error::custom("must be an ISO week of that year, such as 2026-W48")
        })
    }
}

impl utoipa::PartialSchema for IsoWeek {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::Custom(
                "iso-week".into(),
            )))
            .pattern(Some("^[0-9]{4}-W(0[1-9]|[1-4][0-9]|5[0-3])$"))
            .description(Some(
                "An ISO 8601 week of that year (W53 only in years that have one).",
            ))
            .examples(["2026-W48"])
            .into()
    }
}

impl utoipa::ToSchema for IsoWeek {}

/// A calendar month, `2026-11`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    fn first_day(self) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(self.year, self.month, 1)
    }
}

impl<'de> Deserialize<'de> for Month {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.split_once('-')
            .filter(|(y, m)| y.len() == 4 && m.len() == 2)
            .and_then(|(y, m)| {
                Some(Self {
                    year: y.parse().ok()?,
                    month: m.parse().ok()?,
                })
            })
            .filter(|m| m.first_day().is_some())
            .ok_or_else(|| serde::de::Error::custom("must be a month such as 2026-11"))
    }
}

impl utoipa::PartialSchema for Month {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[0-9]{4}-(0[1-9]|1[0-2])$"))
            .examples(["2026-11"])
            .into()
    }
}

impl utoipa::ToSchema for Month {}

/// The instant a local day starts in `zone` (midnight, or the first moment after a gap).
pub fn day_start(zone: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    (0..4)
        .find_map(|h| {
            zone.from_local_datetime(&(midnight + Duration::hours(h)))
                .earliest()
        })
        .map_or_else(|| midnight.and_utc(), |t| t.with_timezone(&Utc))
}

/// A visit on a board.
#[derive(Debug, Clone, Serialize, ToSchema, Queryable)]
pub struct BoardVisit {
    pub id: VisitId,
    pub customer_id: CustomerId,
    pub customer_name: String,
    #[serde(serialize_with = "timestamp")]
    pub scheduled_start: DateTime<Utc>,
    #[serde(serialize_with = "timestamp")]
    pub scheduled_end: DateTime<Utc>,
    pub status: Status,
    pub purpose: Purpose,
    pub method: Method,
}

/// An open follow-up on a board.
#[derive(Debug, Clone, Serialize, ToSchema, Queryable)]
pub struct BoardFollowUp {
    pub id: Uuid,
    pub visit_id: VisitId,
    pub customer_id: CustomerId,
    pub title: String,
    pub due_on: NaiveDate,
}

/// One local day of a weekly board.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct BoardDay {
    pub date: NaiveDate,
    pub visits: Vec<BoardVisit>,
    pub follow_ups: Vec<BoardFollowUp>,
    pub complaint_deadlines: Vec<BoardDeadline>,
}

/// The week at a glance.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct WeekSummary {
    /// Visits scheduled in the week (every status).
    pub visits: i64,
    pub completed: i64,
    /// Still planned or confirmed.
    pub open: i64,
    pub follow_ups_due: i64,
    /// Open follow-ups due before today.
    pub follow_ups_overdue: i64,
    pub complaint_deadlines: i64,
    /// The owner's weekly target, if set (theirs or the default).
    pub target: Option<i32>,
}

/// Today's, tomorrow's and the week's focus.
#[derive(Debug, Serialize, ToSchema)]
pub struct Focus {
    pub today: BoardDay,
    pub tomorrow: BoardDay,
    pub week: WeekSummary,
}

/// `GET /boards/weekly`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WeeklyBoard {
    pub owner_id: UserId,
    /// The zone the days are drawn in (the owner's).
    #[schema(example = "Asia/Shanghai")]
    pub time_zone: String,
    #[schema(value_type = String, example = "2026-W48")]
    pub week: String,
    /// Monday to Sunday.
    pub days: Vec<BoardDay>,
    pub focus: Focus,
}

/// Parameters of `GET /boards/weekly`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WeeklyParams {
    /// Whose board. Default: the caller's.
    pub owner_id: Option<UserId>,
    /// Default: this week in the owner's zone.
    #[param(value_type = Option<IsoWeek>)]
    pub week: Option<IsoWeek>,
}

/// The board's owner: the one asked for, else the caller.
fn board_owner(asked: Option<UserId>, principal: &Principal) -> ApiResult<UserId> {
    asked
        .or_else(|| principal.user_id())
        .ok_or_else(|| ApiError::BadRequest("owner_id is required with an API key".into()))
}

/// What lies on the owner's board between two local dates (exclusive end), by local day,
/// and the target for the board's period.
struct Work {
    days: BTreeMap<NaiveDate, BoardDay>,
    overdue_follow_ups: i64,
    target: Option<Target>,
}

/// The board's five reads, sent together on the one connection (diesel-async pipelines
/// futures polled at once): one round trip instead of five.
async fn work(
    conn: &AsyncPgConnection,
    owner: UserId,
    zone: Tz,
    (first, end): (NaiveDate, NaiveDate),
    today: NaiveDate,
    period: TargetPeriod,
) -> ApiResult<Work> {
    let (from, to) = (day_start(zone, first), day_start(zone, end));
    let (mut visits_conn, mut follow_ups_conn, mut overdue_conn, deadlines_conn) =
        (conn, conn, conn, conn);
    let found = visits::table
        .inner_join(customer_cards::table)
        .filter(visits::owner_id.eq(owner))
        .filter(visits::scheduled_start.ge(from))
        .filter(visits::scheduled_start.lt(to))
        .order((visits::scheduled_start, visits::id))
        .select((
            visits::id,
            visits::customer_id,
            customer_cards::display_name,
            visits::scheduled_start,
            visits::scheduled_end,
            visits::status,
            visits::purpose,
            visits::method,
        ))
        .load::<BoardVisit>(&mut visits_conn);
    let follow_ups = visit_follow_ups::table
        .filter(visit_follow_ups::owner_id.eq(owner))
        .filter(visit_follow_ups::done_at.is_null())
        .filter(visit_follow_ups::due_on.ge(first))
        .filter(visit_follow_ups::due_on.lt(end))
        .order((visit_follow_ups::due_on, visit_follow_ups::id))
        .select((
            visit_follow_ups::id,
            visit_follow_ups::visit_id,
            visit_follow_ups::customer_id,
            visit_follow_ups::title,
            visit_follow_ups::due_on.assume_not_null(),
        ))
        .load::<BoardFollowUp>(&mut follow_ups_conn);
    let overdue_follow_ups = visit_follow_ups::table
        .filter(visit_follow_ups::owner_id.eq(owner))
        .filter(visit_follow_ups::done_at.is_null())
        .filter(visit_follow_ups::due_on.lt(today))
        .count()
        .get_result::<i64>(&mut overdue_conn);
    let deadlines = complaint_api::deadlines(deadlines_conn, owner, (from, to));
    let (found, follow_ups, overdue_follow_ups, deadlines, target) =
        futures_util::future::try_join5(
            found.err_into::<ApiError>(),
            follow_ups.err_into(),
            overdue_follow_ups.err_into(),
            deadlines.err_into(),
            targets::applying(conn, owner, period),
        )
        .await?;
    let mut days: BTreeMap<NaiveDate, BoardDay> = first
        .iter_days()
        .take_while(|d| *d < end)
        .map(|date| {
            (
                date,
                BoardDay {
                    date,
                    ..BoardDay::default()
                },
            )
        })
        .collect();
    let local = |t: DateTime<Utc>| t.with_timezone(&zone).date_naive();
    for v in found {
        if let Some(day) = days.get_mut(&local(v.scheduled_start)) {
            day.visits.push(v);
        }
    }
    for f in follow_ups {
        if let Some(day) = days.get_mut(&f.due_on) {
            day.follow_ups.push(f);
        }
    }
    for d in deadlines {
        if let Some(day) = days.get_mut(&local(d.due_at)) {
            day.complaint_deadlines.push(d);
        }
    }
    Ok(Work {
        days,
        overdue_follow_ups,
        target,
    })
}

/// One person's week: per local day their visits, open follow-ups due and complaint
/// deadlines; and the focus — today, tomorrow, the week against its target.
#[utoipa::path(tag = "boards", params(WeeklyParams), responses((status = 200, body = WeeklyBoard)))]
#[get("/boards/weekly")]
async fn weekly(
    caller: Authorized<VisitsRead>,
    mut conn: DbConn,
    params: Query<WeeklyParams>,
) -> ApiResult<web::Json<WeeklyBoard>> {
    let owner = board_owner(params.owner_id, &caller.principal)?;
    let zone = owner_zone(&mut conn, owner).await?;
    let today = Utc::now().with_timezone(&zone).date_naive();
    let week = params.week.unwrap_or_else(|| IsoWeek::of(today));
    let monday = week.monday().unwrap_or(today);
    let sunday_end = monday + Duration::days(7);
    let tomorrow = today + Duration::days(1);
    let first = monday.min(today);
    let end = sunday_end.max(tomorrow + Duration::days(1));
    let mut work = work(&conn, owner, zone, (first, end), today, TargetPeriod::Week).await?;
    let target = work.target.take();
    let days: Vec<BoardDay> = monday
        .iter_days()
        .take(7)
        .filter_map(|d| work.days.get(&d).cloned())
        .collect();
    let mut summary = WeekSummary {
        follow_ups_overdue: work.overdue_follow_ups,
        target: target.as_ref().map(|t: &Target| t.total),
        ..WeekSummary::default()
    };
    for day in &days {
        summary.visits += day.visits.len() as i64;
        summary.completed += day
            .visits
            .iter()
            .filter(|v| v.status == Status::Completed)
            .count() as i64;
        summary.open += day
            .visits
            .iter()
            .filter(|v| matches!(v.status, Status::Planned | Status::Confirmed))
            .count() as i64;
        summary.follow_ups_due += day.follow_ups.len() as i64;
        summary.complaint_deadlines += day.complaint_deadlines.len() as i64;
    }
    let mut take = |d: NaiveDate| {
        work.days.remove(&d).unwrap_or(BoardDay {
            date: d,
            ..BoardDay::default()
        })
    };
    let focus = Focus {
        today: take(today),
        tomorrow: take(tomorrow),
        week: summary,
    };
    Ok(web::Json(WeeklyBoard {
        owner_id: owner,
        time_zone: zone.name().to_owned(),
        week: week.to_string(),
        days,
        focus,
    }))
}

/// A local day's counts on a monthly board.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct DayCounts {
    pub date: NaiveDate,
    /// Visits scheduled (every status).
    pub visits: i64,
    pub completed: i64,
    /// Still planned or confirmed.
    pub open: i64,
    pub cancelled: i64,
    pub no_show: i64,
    pub missed: i64,
    pub follow_ups_due: i64,
    pub complaint_deadlines: i64,
}

/// The month's days of one ISO week.
#[derive(Debug, Serialize, ToSchema)]
pub struct MonthWeek {
    #[schema(example = "2026-W45")]
    pub week: String,
    pub days: Vec<DayCounts>,
}

/// `GET /boards/monthly`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MonthlyBoard {
    pub owner_id: UserId,
    pub time_zone: String,
    #[schema(example = "2026-11")]
    pub month: String,
    /// The weeks the month spans, each with its days in the month.
    pub weeks: Vec<MonthWeek>,
    pub totals: DayCountsTotal,
    /// The owner's monthly target, if set (theirs or the default).
    pub target: Option<i32>,
}

/// The month's totals.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct DayCountsTotal {
    pub visits: i64,
    pub completed: i64,
    pub open: i64,
    pub cancelled: i64,
    pub no_show: i64,
    pub missed: i64,
    pub follow_ups_due: i64,
    pub complaint_deadlines: i64,
}

/// Parameters of `GET /boards/monthly`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MonthlyParams {
    /// Whose board. Default: the caller's.
    pub owner_id: Option<UserId>,
    /// Default: this month in the owner's zone.
    #[param(value_type = Option<Month>)]
    pub month: Option<Month>,
}

/// One person's month: the weeks it spans, each day's visits by outcome, follow-ups due and
/// complaint deadlines, against the monthly target.
#[utoipa::path(tag = "boards", params(MonthlyParams), responses((status = 200, body = MonthlyBoard)))]
#[get("/boards/monthly")]
async fn monthly(
    caller: Authorized<VisitsRead>,
    mut conn: DbConn,
    params: Query<MonthlyParams>,
) -> ApiResult<web::Json<MonthlyBoard>> {
    let owner = board_owner(params.owner_id, &caller.principal)?;
    let zone = owner_zone(&mut conn, owner).await?;
    let today = Utc::now().with_timezone(&zone).date_naive();
    let month = params.month.unwrap_or(Month {
        year: today.year(),
        month: today.month(),
    });
    let first = month.first_day().unwrap_or(today);
    let end = first
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(first + Duration::days(31));
    let mut work = work(&conn, owner, zone, (first, end), today, TargetPeriod::Month).await?;
    let target = work.target.take();
    let mut totals = DayCountsTotal::default();
    let mut weeks: Vec<MonthWeek> = Vec::new();
    for day in work.days.values() {
        let count = |s: Status| day.visits.iter().filter(|v| v.status == s).count() as i64;
        let counts = DayCounts {
            date: day.date,
            visits: day.visits.len() as i64,
            completed: count(Status::Completed),
            open: count(Status::Planned) + count(Status::Confirmed),
            cancelled: count(Status::Cancelled),
            no_show: count(Status::NoShow),
            missed: count(Status::Missed),
            follow_ups_due: day.follow_ups.len() as i64,
            complaint_deadlines: day.complaint_deadlines.len() as i64,
        };
        totals.visits += counts.visits;
        totals.completed += counts.completed;
        totals.open += counts.open;
        totals.cancelled += counts.cancelled;
        totals.no_show += counts.no_show;
        totals.missed += counts.missed;
        totals.follow_ups_due += counts.follow_ups_due;
        totals.complaint_deadlines += counts.complaint_deadlines;
        let week = IsoWeek::of(day.date).to_string();
        match weeks.last_mut() {
            Some(last) if last.week == week => last.days.push(counts),
            _ => weeks.push(MonthWeek {
                week,
                days: vec![counts],
            }),
        }
    }
    Ok(web::Json(MonthlyBoard {
        owner_id: owner,
        time_zone: zone.name().to_owned(),
        month: format!("{:04}-{:02}", month.year, month.month),
        weeks,
        totals,
        target: target.map(|t| t.total),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_and_days_follow_iso_and_the_zone() {
        let week: IsoWeek = serde_json::from_value(serde_json::json!("2026-W48")).unwrap();
        assert_eq!(week.monday(), NaiveDate::from_ymd_opt(2026, 11, 23));
        assert!(serde_json::from_value::<IsoWeek>(serde_json::json!("2027-W53")).is_err());
        assert!(serde_json::from_value::<IsoWeek>(serde_json::json!("2026-W53")).is_ok());
        assert!(serde_json::from_value::<IsoWeek>(serde_json::json!("2026-48")).is_err());
        let long: IsoWeek = serde_json::from_value(serde_json::json!("2026-W01")).unwrap();
        assert_eq!(long.monday(), NaiveDate::from_ymd_opt(2025, 12, 29));
        assert!(serde_json::from_value::<IsoWeek>(serde_json::json!("2020-W53")).is_ok());
        // Berlin's 2026-10-25 has 25 hours: the day after starts 25 hours later.
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let d = NaiveDate::from_ymd_opt(2026, 10, 25).unwrap();
        assert_eq!(
            day_start(berlin, d + Duration::days(1)) - day_start(berlin, d),
            Duration::hours(25)
        );
        // Santiago skips midnight on 2026-09-06: the day starts at 01:00.
        let santiago: Tz = "America/Santiago".parse().unwrap();
        let start = day_start(santiago, NaiveDate::from_ymd_opt(2026, 9, 6).unwrap());
        assert_eq!(
            start.with_timezone(&santiago).date_naive(),
            NaiveDate::from_ymd_opt(2026, 9, 6).unwrap()
        );
    }
}
