//! `GET /api/v1/analytics/complaints`: what a service centre reports on — volume, response
//! and resolution times (business time where a calendar applies), SLA breaches by policy
//! and by customer tier, reopens, repeat complainants, satisfaction, root causes, and the
//! weekly or monthly summary of faults and improvements.

use actix_web::{get, web};
use chrono::{DateTime, Duration, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Double, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{AnalyticsRead, Authorized};
use crate::db::DbConn;
use crate::error::ApiResult;
use crate::http::query::Query;
use crate::text_enum;

crate::routes!(report);

text_enum! {
    /// The length of each summary period.
    pub enum Period { Week = "week", Month = "month" }
}

/// Parameters of the report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// Complaints received at or after this time. Default: 30 days before `to`.
    pub from: Option<DateTime<Utc>>,
    /// Complaints received before this time. Default: now.
    pub to: Option<DateTime<Utc>>,
    /// Add a summary per week or month (periods start on Monday or the 1st, UTC).
    pub period: Option<Period>,
}

/// A count per value of a dimension.
#[derive(Debug, Serialize, ToSchema, QueryableByName)]
pub struct Count {
    #[diesel(sql_type = Text)]
    #[schema(example = "product_quality")]
    pub key: String,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// Complaints received in the span, by dimension.
#[derive(Debug, Serialize, ToSchema)]
pub struct Volume {
    pub total: i64,
    /// Of those, resolved (at least once).
    pub resolved: i64,
    pub by_category: Vec<Count>,
    pub by_channel: Vec<Count>,
    pub by_severity: Vec<Count>,
}

/// A duration's distribution, in seconds (business seconds for clocks on a calendar).
#[derive(Debug, Serialize, ToSchema, QueryableByName)]
pub struct Durations {
    /// How many complaints were measured.
    #[diesel(sql_type = BigInt)]
    pub count: i64,
    #[diesel(sql_type = Nullable<Double>)]
    pub median_seconds: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub p90_seconds: Option<f64>,
}

/// Breaches among complaints of one group.
#[derive(Debug, Serialize, ToSchema, QueryableByName)]
pub struct BreachRate {
    /// The policy id or the tier; `none` for complaints without one.
    #[diesel(sql_type = Text)]
    pub key: String,
    #[diesel(sql_type = BigInt)]
    pub complaints: i64,
    /// Complaints with at least one breached clock.
    #[diesel(sql_type = BigInt)]
    pub breached: i64,
    #[diesel(sql_type = Double)]
    pub rate: f64,
}

/// Breaches overall, by policy and by the customer's tier.
#[derive(Debug, Serialize, ToSchema)]
pub struct Breaches {
    pub overall: f64,
    pub by_policy: Vec<BreachRate>,
    pub by_tier: Vec<BreachRate>,
}

/// A customer who complained more than once in the span.
#[derive(Debug, Serialize, ToSchema, QueryableByName)]
pub struct RepeatCustomer {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub customer_id: Uuid,
    #[diesel(sql_type = BigInt)]
    pub complaints: i64,
}

/// Customers who complained more than once.
#[derive(Debug, Serialize, ToSchema)]
pub struct Repeats {
    pub customers: i64,
    /// The 20 with the most complaints.
    pub top: Vec<RepeatCustomer>,
}

/// Ratings of the resolutions.
#[derive(Debug, Serialize, ToSchema, QueryableByName)]
pub struct SatisfactionSummary {
    #[diesel(sql_type = BigInt)]
    pub count: i64,
    #[diesel(sql_type = Nullable<Double>)]
    pub average: Option<f64>,
}

/// One week's or month's faults and improvements.
#[derive(Debug, Serialize, ToSchema)]
pub struct PeriodSummary {
    pub starts_at: DateTime<Utc>,
    pub complaints: i64,
    pub resolved: i64,
    pub breached: i64,
    pub by_category: Vec<Count>,
    pub root_causes: Vec<Count>,
    /// The corrective actions decided in the period (the latest 20).
    pub corrective_actions: Vec<String>,
}

/// The complaints report.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComplaintReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub volume: Volume,
    pub first_response: Durations,
    pub resolution: Durations,
    pub breaches: Breaches,
    /// Share of complaints reopened at least once.
    pub reopen_rate: f64,
    pub repeat_customers: Repeats,
    pub satisfaction: SatisfactionSummary,
    /// Root-cause categories of the resolutions, most frequent first.
    pub root_causes: Vec<Count>,
    /// With `period`: one summary per week or month that has complaints, oldest first.
    pub periods: Vec<PeriodSummary>,
}

/// Whether a complaint breached, in SQL (`c` is the complaint).
const BREACHED: &str = "EXISTS (SELECT 1 FROM complaint_clocks k WHERE k.complaint_id = c.id AND \
    (k.breached_at IS NOT NULL OR k.fulfilled_at > k.due_at OR (k.fulfilled_at IS NULL AND k.due_at < now())))";

/// The complaints in `[$1, $2)`.
const IN_SPAN: &str = "c.received_at >= $1 AND c.received_at < $2";

async fn counts(
    conn: &mut AsyncPgConnection,
    key: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> ApiResult<Vec<Count>> {
    Ok(diesel::sql_query(format!(
        "SELECT {key}::text AS key, count(*) AS count FROM complaints c WHERE {IN_SPAN} GROUP BY 1 ORDER BY 2 DESC, 1"
    ))
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .load(conn)
    .await?)
}

async fn durations(
    conn: &mut AsyncPgConnection,
    metric: &str,
    wall: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> ApiResult<Durations> {
    Ok(diesel::sql_query(format!(
        "SELECT count(d) AS count, percentile_cont(0.5) WITHIN GROUP (ORDER BY d) AS median_seconds, \
                percentile_cont(0.9) WITHIN GROUP (ORDER BY d) AS p90_seconds \
         FROM (SELECT coalesce(k.elapsed_seconds::float8, extract(epoch FROM {wall} - c.received_at)::float8) AS d \
               FROM complaints c LEFT JOIN complaint_clocks k ON k.complaint_id = c.id AND k.metric = '{metric}' \
               WHERE {IN_SPAN} AND {wall} IS NOT NULL) t"
    ))
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .get_result(conn)
    .await?)
}

async fn breach_rates(
    conn: &mut AsyncPgConnection,
    key: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> ApiResult<Vec<BreachRate>> {
    Ok(diesel::sql_query(format!(
        "SELECT coalesce({key}::text, 'none') AS key, count(*) AS complaints, \
                count(*) FILTER (WHERE {BREACHED}) AS breached, \
                (count(*) FILTER (WHERE {BREACHED}))::float8 / count(*) AS rate \
         FROM complaints c WHERE {IN_SPAN} GROUP BY 1 ORDER BY 1"
    ))
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .load(conn)
    .await?)
}

#[derive(QueryableByName)]
struct Totals {
    #[diesel(sql_type = BigInt)]
    total: i64,
    #[diesel(sql_type = BigInt)]
    breached: i64,
    #[diesel(sql_type = BigInt)]
    reopened: i64,
    #[diesel(sql_type = BigInt)]
    resolved: i64,
}

async fn totals(
    conn: &mut AsyncPgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> ApiResult<Totals> {
    Ok(diesel::sql_query(format!(
        "SELECT count(*) AS total, count(*) FILTER (WHERE {BREACHED}) AS breached, \
                count(*) FILTER (WHERE c.reopen_count > 0) AS reopened, \
                count(*) FILTER (WHERE c.resolved_at IS NOT NULL) AS resolved \
         FROM complaints c WHERE {IN_SPAN}"
    ))
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .get_result(conn)
    .await?)
}

async fn root_causes(
    conn: &mut AsyncPgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> ApiResult<Vec<Count>> {
    Ok(diesel::sql_query(format!(
        "SELECT r.root_cause_category AS key, count(*) AS count FROM complaint_resolutions r \
         JOIN complaints c ON c.id = r.complaint_id WHERE {IN_SPAN} GROUP BY 1 ORDER BY 2 DESC, 1"
    ))
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .load(conn)
    .await?)
}

/// The start of the week or month of a complaint's reception, in SQL.
fn period_of(period: Period) -> String {
    format!(
        "(date_trunc('{}', c.received_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')",
        period.as_str()
    )
}

#[derive(QueryableByName)]
struct PeriodTotals {
    #[diesel(sql_type = Timestamptz)]
    starts_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    total: i64,
    #[diesel(sql_type = BigInt)]
    resolved: i64,
    #[diesel(sql_type = BigInt)]
    breached: i64,
}

#[derive(QueryableByName)]
struct PeriodCount {
    #[diesel(sql_type = Timestamptz)]
    starts_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(QueryableByName)]
struct PeriodAction {
    #[diesel(sql_type = Timestamptz)]
    starts_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    corrective_action: String,
}

/// One summary per week or month with complaints, oldest first: four grouped queries
/// whatever the span.
async fn period_summaries(
    conn: &mut AsyncPgConnection,
    period: Period,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> ApiResult<Vec<PeriodSummary>> {
    let p = period_of(period);
    let totals: Vec<PeriodTotals> = diesel::sql_query(format!(
        "SELECT {p} AS starts_at, count(*) AS total, count(*) FILTER (WHERE c.resolved_at IS NOT NULL) AS resolved, \
                count(*) FILTER (WHERE {BREACHED}) AS breached \
         FROM complaints c WHERE {IN_SPAN} GROUP BY 1 ORDER BY 1"
    ))
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .load(conn)
    .await?;
    let categories: Vec<PeriodCount> = diesel::sql_query(format!(
        "SELECT {p} AS starts_at, c.category AS key, count(*) AS count FROM complaints c WHERE {IN_SPAN} \
         GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2"
    ))
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .load(conn)
    .await?;
    let causes: Vec<PeriodCount> = diesel::sql_query(format!(
        "SELECT {p} AS starts_at, r.root_cause_category AS key, count(*) AS count FROM complaint_resolutions r \
         JOIN complaints c ON c.id = r.complaint_id WHERE {IN_SPAN} GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2"
    ))
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .load(conn)
    .await?;
    let actions: Vec<PeriodAction> = diesel::sql_query(format!(
        "SELECT starts_at, corrective_action FROM ( \
           SELECT {p} AS starts_at, r.corrective_action, r.created_at, \
                  row_number() OVER (PARTITION BY {p} ORDER BY r.created_at DESC) AS n \
           FROM complaint_resolutions r JOIN complaints c ON c.id = r.complaint_id WHERE {IN_SPAN}) t \
         WHERE n <= 20 ORDER BY starts_at, created_at DESC"
    ))
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .load(conn)
    .await?;
    let of = |rows: &[PeriodCount], at: DateTime<Utc>| -> Vec<Count> {
        rows.iter()
            .filter(|r| r.starts_at == at)
            .map(|r| Count {
                key: r.key.clone(),
                count: r.count,
            })
            .collect()
    };
    Ok(totals
        .iter()
        .map(|t| PeriodSummary {
            starts_at: t.starts_at,
            complaints: t.total,
            resolved: t.resolved,
            breached: t.breached,
            by_category: of(&categories, t.starts_at),
            root_causes: of(&causes, t.starts_at),
            corrective_actions: actions
                .iter()
                .filter(|a| a.starts_at == t.starts_at)
                .map(|a| a.corrective_action.clone())
                .collect(),
        })
        .collect())
}

/// Report on the complaints received in a span.
#[utoipa::path(tag = "analytics", params(ReportParams), responses((status = 200, body = ComplaintReport)))]
#[get("/analytics/complaints")]
async fn report(
    _: Authorized<AnalyticsRead>,
    mut conn: DbConn,
    params: Query<ReportParams>,
) -> ApiResult<web::Json<ComplaintReport>> {
    let to = params.to.unwrap_or_else(Utc::now);
    let from = params.from.unwrap_or(to - Duration::days(30));
    let c = &mut *conn;
    let t = totals(c, from, to).await?;
    let rate = |part: i64| {
        if t.total == 0 {
            0.0
        } else {
            part as f64 / t.total as f64
        }
    };
    let repeats: Vec<RepeatCustomer> = diesel::sql_query(format!(
        "SELECT c.customer_id, count(*) AS complaints FROM complaints c WHERE {IN_SPAN} \
         GROUP BY 1 HAVING count(*) > 1 ORDER BY 2 DESC, 1"
    ))
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .load(c)
    .await?;
    let satisfaction: SatisfactionSummary = diesel::sql_query(format!(
        "SELECT count(*) AS count, avg(s.rating)::float8 AS average FROM complaint_satisfaction s \
         JOIN complaints c ON c.id = s.complaint_id WHERE {IN_SPAN}"
    ))
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .get_result(c)
    .await?;
    let periods = match params.period {
        Some(period) => period_summaries(c, period, from, to).await?,
        None => Vec::new(),
    };
    Ok(web::Json(ComplaintReport {
        from,
        to,
        volume: Volume {
            total: t.total,
            resolved: t.resolved,
            by_category: counts(c, "c.category", from, to).await?,
            by_channel: counts(c, "c.channel", from, to).await?,
            by_severity: counts(c, "c.severity", from, to).await?,
        },
        first_response: durations(c, "first_response", "c.first_response_at", from, to).await?,
        resolution: durations(c, "resolution", "c.resolved_at", from, to).await?,
        breaches: Breaches {
            overall: rate(t.breached),
            by_policy: breach_rates(c, "c.sla_policy_id", from, to).await?,
            by_tier: breach_rates(c, "c.customer_tier", from, to).await?,
        },
        reopen_rate: rate(t.reopened),
        repeat_customers: Repeats {
            customers: repeats.len() as i64,
            top: repeats.into_iter().take(20).collect(),
        },
        satisfaction,
        root_causes: root_causes(c, from, to).await?,
        periods,
    }))
}
