//! `GET /api/v1/analytics/visits`: who visited whom, how, and against which target — counts
//! by outcome, completion and no-show rates, by method and purpose, average duration, and
//! the share of check-ins made within the radius, per owner and/or per day, week or month.

use actix_web::{get, web};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use diesel::QueryableByName;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Date, Double, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::targets::{Target, TargetPeriod};
use super::{Method, Purpose, Status};
use crate::auth::{AnalyticsRead, Authorized};
use crate::db::DbConn;
use crate::db::schema::visit_targets;
use crate::error::{ApiError, ApiResult};
use crate::http::query::Query;
use crate::kit::ids::UserId;
use crate::kit::input::TimeZoneName;

crate::routes!(visits_report);

/// How the report is grouped: by owner, by period (local days, ISO weeks from Monday,
/// months), or both (`owner,day`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum GroupBy {
    #[serde(rename = "owner")]
    Owner,
    #[serde(rename = "day")]
    Day,
    #[serde(rename = "week")]
    Week,
    #[serde(rename = "month")]
    Month,
    #[serde(rename = "owner,day")]
    OwnerDay,
    #[serde(rename = "owner,week")]
    OwnerWeek,
    #[serde(rename = "owner,month")]
    OwnerMonth,
}

/// The names, as sent.
const GROUPINGS: [(&str, GroupBy); 7] = [
    ("owner", GroupBy::Owner),
    ("day", GroupBy::Day),
    ("week", GroupBy::Week),
    ("month", GroupBy::Month),
    ("owner,day", GroupBy::OwnerDay),
    ("owner,week", GroupBy::OwnerWeek),
    ("owner,month", GroupBy::OwnerMonth),
];

impl<'de> Deserialize<'de> for GroupBy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        GROUPINGS
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, g)| *g)
            .ok_or_else(|| {
                let names: Vec<&str> = GROUPINGS.iter().map(|(n, _)| *n).collect();
                serde::de::Error::custom(format!("group_by must be one of {}", names.join(" | ")))
            })
    }
}

impl utoipa::PartialSchema for GroupBy {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "How the report is grouped: by owner, by period (local days, ISO weeks from \
                 Monday, months), or both.",
            ))
            .enum_values(Some(GROUPINGS.iter().map(|(n, _)| *n)))
            .into()
    }
}

impl ToSchema for GroupBy {}

impl GroupBy {
    fn by_owner(self) -> bool {
        matches!(
            self,
            Self::Owner | Self::OwnerDay | Self::OwnerWeek | Self::OwnerMonth
        )
    }

    fn period(self) -> Option<TargetPeriod> {
        match self {
            Self::Day | Self::OwnerDay => Some(TargetPeriod::Day),
            Self::Week | Self::OwnerWeek => Some(TargetPeriod::Week),
            Self::Month | Self::OwnerMonth => Some(TargetPeriod::Month),
            Self::Owner => None,
        }
    }
}

/// Parameters of the report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// Visits scheduled to start at or after this time. Default: 30 days before `to`.
    pub from: Option<DateTime<Utc>>,
    /// Visits scheduled to start before this time. Default: now.
    pub to: Option<DateTime<Utc>>,
    /// Default: `owner`.
    pub group_by: Option<GroupBy>,
    /// Only this person's visits.
    pub owner_id: Option<UserId>,
    /// The zone periods are counted in. Default: `UTC`.
    #[param(value_type = Option<TimeZoneName>)]
    pub time_zone: Option<String>,
}

/// Figures for one method.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct MethodFigures {
    pub method: Option<Method>,
    pub scheduled: i64,
    pub completed: i64,
    /// The target for this method in the group's period, where one is set.
    pub target: Option<i64>,
}

/// Figures for one purpose.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct PurposeFigures {
    pub purpose: Option<Purpose>,
    pub scheduled: i64,
    pub completed: i64,
}

/// One group's figures.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct VisitGroup {
    /// With `owner` grouping.
    pub owner_id: Option<UserId>,
    /// The period's first local day, with day, week or month grouping.
    pub period_start: Option<NaiveDate>,
    /// Visits scheduled in the group, whatever became of them.
    pub scheduled: i64,
    pub completed: i64,
    pub missed: i64,
    pub no_show: i64,
    pub cancelled: i64,
    /// Still planned, confirmed or checked in.
    pub open: i64,
    /// The visits the owner should make in the group (their target, else the default: for
    /// the period grouped by, or with `owner` alone the daily target times the days).
    pub target: Option<i64>,
    /// completed ÷ target.
    pub target_attainment: Option<f64>,
    /// completed ÷ (scheduled − cancelled).
    pub completion_rate: Option<f64>,
    /// no_show ÷ (scheduled − cancelled).
    pub no_show_rate: Option<f64>,
    /// Over completed visits with both an actual start and end.
    pub average_duration_minutes: Option<f64>,
    /// Check-ins within the radius ÷ check-ins measured.
    pub within_radius_share: Option<f64>,
    pub by_method: Vec<MethodFigures>,
    pub by_purpose: Vec<PurposeFigures>,
}

/// The report.
#[derive(Debug, Serialize, ToSchema)]
pub struct VisitReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub group_by: GroupBy,
    pub time_zone: String,
    pub groups: Vec<VisitGroup>,
}

#[derive(QueryableByName)]
struct Cell {
    #[diesel(sql_type = Nullable<SqlUuid>)]
    owner_id: Option<UserId>,
    #[diesel(sql_type = Nullable<Date>)]
    bucket: Option<NaiveDate>,
    #[diesel(sql_type = Text)]
    method: String,
    #[diesel(sql_type = Text)]
    purpose: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Double)]
    minutes: f64,
    #[diesel(sql_type = BigInt)]
    timed: i64,
    #[diesel(sql_type = BigInt)]
    within: i64,
    #[diesel(sql_type = BigInt)]
    measured: i64,
}

const CELLS: &str = "\
SELECT CASE WHEN $1 THEN owner_id END AS owner_id,
       CASE WHEN $2 IS NULL THEN NULL ELSE date_trunc($2, scheduled_start AT TIME ZONE $3)::date END AS bucket,
       method, purpose, status, count(*) AS n,
       coalesce(sum(extract(epoch FROM actual_end - actual_start) / 60)
                FILTER (WHERE status = 'completed' AND actual_end IS NOT NULL AND actual_start IS NOT NULL), 0)::float8 AS minutes,
       count(*) FILTER (WHERE status = 'completed' AND actual_end IS NOT NULL AND actual_start IS NOT NULL) AS timed,
       count(*) FILTER (WHERE within_radius) AS within,
       count(*) FILTER (WHERE within_radius IS NOT NULL) AS measured
  FROM visits
 WHERE scheduled_start >= $4 AND scheduled_start < $5 AND ($6::uuid IS NULL OR owner_id = $6)
 GROUP BY 1, 2, 3, 4, 5
 ORDER BY 1, 2";

fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The visits report.
#[utoipa::path(tag = "analytics", params(ReportParams), responses((status = 200, body = VisitReport)))]
#[get("/analytics/visits")]
async fn visits_report(
    _: Authorized<AnalyticsRead>,
    mut conn: DbConn,
    params: Query<ReportParams>,
) -> ApiResult<web::Json<VisitReport>> {
    let to = params.to.unwrap_or_else(Utc::now);
    let from = params.from.unwrap_or(to - Duration::days(30));
    let group_by = params.group_by.unwrap_or(GroupBy::Owner);
    let zone: chrono_tz::Tz = match &params.time_zone {
        None => chrono_tz::Tz::UTC,
        Some(name) => name
            .parse()
            .map_err(|_| ApiError::BadRequest("time_zone must be an IANA time zone name".into()))?,
    };
    let unit = group_by.period().map(|p| p.as_str());
    let cells: Vec<Cell> = diesel::sql_query(CELLS)
        .bind::<Bool, _>(group_by.by_owner())
        .bind::<Nullable<Text>, _>(unit)
        .bind::<Text, _>(zone.name())
        .bind::<Timestamptz, _>(from)
        .bind::<Timestamptz, _>(to)
        .bind::<Nullable<SqlUuid>, _>(params.owner_id)
        .load(&mut conn)
        .await?;
    let targets: Vec<Target> = visit_targets::table
        .select(Target::as_select())
        .load(&mut conn)
        .await?;
    let days = (to - from).num_days().max(1);
    let mut groups: Vec<VisitGroup> = Vec::new();
    let mut extras: Vec<(f64, i64, i64, i64)> = Vec::new();
    for cell in cells {
        let key = (cell.owner_id, cell.bucket);
        if groups
            .last()
            .is_none_or(|g| (g.owner_id, g.period_start) != key)
        {
            groups.push(VisitGroup {
                owner_id: key.0,
                period_start: key.1,
                ..VisitGroup::default()
            });
            extras.push((0.0, 0, 0, 0));
        }
        let (Some(g), Some(x)) = (groups.last_mut(), extras.last_mut()) else {
            continue;
        };
        let status = Status::parse(&cell.status);
        g.scheduled += cell.n;
        match status {
            Some(Status::Completed) => g.completed += cell.n,
            Some(Status::Missed) => g.missed += cell.n,
            Some(Status::NoShow) => g.no_show += cell.n,
            Some(Status::Cancelled) => g.cancelled += cell.n,
            _ => g.open += cell.n,
        }
        *x = (
            x.0 + cell.minutes,
            x.1 + cell.timed,
            x.2 + cell.within,
            x.3 + cell.measured,
        );
        let completed = if status == Some(Status::Completed) {
            cell.n
        } else {
            0
        };
        let method = Method::parse(&cell.method);
        match g.by_method.iter_mut().find(|m| m.method == method) {
            Some(m) => {
                m.scheduled += cell.n;
                m.completed += completed;
            }
            None => g.by_method.push(MethodFigures {
                method,
                scheduled: cell.n,
                completed,
                target: None,
            }),
        }
        let purpose = Purpose::parse(&cell.purpose);
        match g.by_purpose.iter_mut().find(|p| p.purpose == purpose) {
            Some(p) => {
                p.scheduled += cell.n;
                p.completed += completed;
            }
            None => g.by_purpose.push(PurposeFigures {
                purpose,
                scheduled: cell.n,
                completed,
            }),
        }
    }
    for (g, (minutes, timed, within, measured)) in groups.iter_mut().zip(extras) {
        let worked = g.scheduled - g.cancelled;
        g.completion_rate = ratio(g.completed, worked);
        g.no_show_rate = ratio(g.no_show, worked);
        g.average_duration_minutes = (timed > 0).then(|| minutes / timed as f64);
        g.within_radius_share = ratio(within, measured);
        if let Some(owner) = g.owner_id {
            let (period, times) = group_by
                .period()
                .map_or((TargetPeriod::Day, days), |p| (p, 1));
            let target = targets
                .iter()
                .filter(|t| t.period == period)
                .min_by_key(|t| t.owner_id != Some(owner))
                .filter(|t| t.owner_id.is_none_or(|o| o == owner));
            if let Some(t) = target {
                g.target = Some(i64::from(t.total) * times);
                g.target_attainment = ratio(g.completed, i64::from(t.total) * times);
                for m in &mut g.by_method {
                    m.target = m
                        .method
                        .and_then(|method| t.for_method(method))
                        .map(|n| n * times);
                }
            }
        }
    }
    Ok(web::Json(VisitReport {
        from,
        to,
        group_by,
        time_zone: zone.name().to_owned(),
        groups,
    }))
}
