//! `/api/v1/complaint-sla-policies` (managers): which targets a complaint gets. Policies
//! are an ordered list; the first whose conditions all hold (severity, the customer's value
//! tier and ladder level, the channel; an empty condition holds always) applies, and its id
//! and version are recorded on the complaint.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use super::sla::{LadderStep, Metric};
use super::{Channel, Severity, calendars};
use crate::auth::{Authorized, ComplaintsManage, ComplaintsRead};
use crate::customers::api::{Level, Tier};
use crate::db::DbConn;
use crate::db::keyset::{Direction, past};
use crate::db::schema::complaint_sla_policies;
use crate::error::{ApiError, ApiResult};
use crate::http::etag::IfMatch;
use crate::http::json::{Field, ValidJson};
use crate::http::pagination::{Page, PageParams};
use crate::http::query::Query;
use crate::kit::ids::{CalendarId, PolicyId};
use crate::kit::input::{Items, Text, Whole};
use crate::kit::write::{self, Action, Writer, created_in, current};

crate::routes!(create, list, get_one, update, remove);

/// The default reopen window, in days.
pub const DEFAULT_REOPEN_WINDOW_DAYS: i32 = 14;

/// A policy row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = complaint_sla_policies, treat_none_as_null = true)]
pub struct PolicyRow {
    pub id: PolicyId,
    pub name: String,
    pub position: i32,
    pub severities: Vec<String>,
    pub tiers: Vec<String>,
    pub levels: Vec<String>,
    pub channels: Vec<String>,
    pub first_response_minutes: i32,
    pub resolution_minutes: i32,
    pub calendar_id: Option<CalendarId>,
    pub reopen_window_days: i32,
    pub escalation: Value,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A policy as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlaPolicy {
    pub id: PolicyId,
    #[schema(example = "Key customers, high or critical")]
    pub name: String,
    /// Policies are tried in ascending position; the first that matches applies.
    pub position: i32,
    /// Conditions: each empty list matches anything.
    pub severities: Vec<Severity>,
    pub tiers: Vec<Tier>,
    pub levels: Vec<Level>,
    pub channels: Vec<Channel>,
    #[schema(example = 60)]
    pub first_response_minutes: i32,
    #[schema(example = 480)]
    pub resolution_minutes: i32,
    /// The calendar whose working time counts; `null` counts every minute.
    pub calendar_id: Option<CalendarId>,
    /// Days after resolution within which a complaint may be reopened.
    pub reopen_window_days: i32,
    pub escalation: Vec<LadderStep>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn parsed<T: Copy>(names: &[String], parse: fn(&str) -> Option<T>) -> Vec<T> {
    names.iter().filter_map(|n| parse(n)).collect()
}

impl PolicyRow {
    /// The ladder's steps.
    pub fn ladder(&self) -> Vec<LadderStep> {
        serde_json::from_value(self.escalation.clone()).unwrap_or_default()
    }

    /// The API's view.
    pub fn view(&self) -> SlaPolicy {
        SlaPolicy {
            id: self.id,
            name: self.name.clone(),
            position: self.position,
            severities: parsed(&self.severities, Severity::parse),
            tiers: parsed(&self.tiers, Tier::parse),
            levels: parsed(&self.levels, Level::parse),
            channels: parsed(&self.channels, Channel::parse),
            first_response_minutes: self.first_response_minutes,
            resolution_minutes: self.resolution_minutes,
            calendar_id: self.calendar_id,
            reopen_window_days: self.reopen_window_days,
            escalation: self.ladder(),
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// Whether every condition holds for a complaint of this severity and channel from a
    /// customer of this tier and level.
    pub fn matches(&self, facts: &Facts) -> bool {
        let holds = |allowed: &[String], value: Option<&str>| {
            allowed.is_empty() || value.is_some_and(|v| allowed.iter().any(|x| x == v))
        };
        holds(&self.severities, Some(facts.severity.as_str()))
            && holds(&self.tiers, facts.tier.map(Tier::as_str))
            && holds(&self.levels, Some(facts.level.as_str()))
            && holds(&self.channels, Some(facts.channel.as_str()))
    }

    /// The target of a metric.
    pub fn target_minutes(&self, metric: Metric) -> Option<i32> {
        match metric {
            Metric::FirstResponse => Some(self.first_response_minutes),
            Metric::Resolution => Some(self.resolution_minutes),
            Metric::Promise => None,
        }
    }
}

/// What a policy matches on.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    pub severity: Severity,
    pub channel: Channel,
    pub tier: Option<Tier>,
    pub level: Level,
}

/// The first live policy that matches, in position order.
pub async fn first_match(
    conn: &mut AsyncPgConnection,
    facts: &Facts,
) -> ApiResult<Option<PolicyRow>> {
    let policies: Vec<PolicyRow> = complaint_sla_policies::table
        .filter(complaint_sla_policies::deleted_at.is_null())
        .order((complaint_sla_policies::position, complaint_sla_policies::id))
        .select(PolicyRow::as_select())
        .load(conn)
        .await?;
    Ok(policies.into_iter().find(|p| p.matches(facts)))
}

crate::soft_deleted_row! {
    impl Versioned for PolicyRow in complaint_sla_policies {
        const KIND: &'static str = "complaint_sla_policy";
        type Id = PolicyId;

        fn view(&self) -> Value {
            serde_json::to_value(PolicyRow::view(self)).unwrap_or_default()
        }
    }
}

/// A year, in minutes: the longest response target.
const YEAR_MINUTES: i64 = 525_600;

/// Body of `POST /complaint-sla-policies`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPolicy {
    #[validate(nested)]
    pub name: Text<1, 200>,
    /// Where the policy stands in the list (lower first).
    #[validate(nested)]
    pub position: Whole<0, 1_000_000>,
    #[validate(nested)]
    pub severities: Option<Items<Severity, 0, 4>>,
    #[validate(nested)]
    pub tiers: Option<Items<Tier, 0, 4>>,
    #[validate(nested)]
    pub levels: Option<Items<Level, 0, 5>>,
    #[validate(nested)]
    pub channels: Option<Items<Channel, 0, 8>>,
    #[validate(nested)]
    pub first_response_minutes: Whole<1, { YEAR_MINUTES }>,
    #[validate(nested)]
    pub resolution_minutes: Whole<1, { YEAR_MINUTES }>,
    /// Count working time of this calendar; absent or `null` counts every minute.
    pub calendar_id: Option<CalendarId>,
    /// Default 14.
    #[validate(nested)]
    pub reopen_window_days: Option<Whole<0, 365>>,
    #[validate(nested)]
    pub escalation: Option<Items<LadderStep, 0, 20>>,
}

/// Body of `PATCH /complaint-sla-policies/{id}`: what is sent replaces what is stored.
/// Complaints keep the targets they were given; a complaint whose severity changes later
/// takes the policy as it is then.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyPatch {
    #[validate(nested)]
    pub name: Option<Text<1, 200>>,
    #[validate(nested)]
    pub position: Option<Whole<0, 1_000_000>>,
    #[validate(nested)]
    pub severities: Option<Items<Severity, 0, 4>>,
    #[validate(nested)]
    pub tiers: Option<Items<Tier, 0, 4>>,
    #[validate(nested)]
    pub levels: Option<Items<Level, 0, 5>>,
    #[validate(nested)]
    pub channels: Option<Items<Channel, 0, 8>>,
    #[validate(nested)]
    pub first_response_minutes: Option<Whole<1, { YEAR_MINUTES }>>,
    #[validate(nested)]
    pub resolution_minutes: Option<Whole<1, { YEAR_MINUTES }>>,
    /// `null` counts every minute.
    #[serde(default)]
    #[schema(nullable)]
    pub calendar_id: Field<CalendarId>,
    #[validate(nested)]
    pub reopen_window_days: Option<Whole<0, 365>>,
    #[validate(nested)]
    pub escalation: Option<Items<LadderStep, 0, 20>>,
}

fn names<T: std::fmt::Display, const MIN: usize, const MAX: usize>(
    given: Option<Items<T, MIN, MAX>>,
) -> Vec<String> {
    let mut names: Vec<String> = given
        .map(Items::into_inner)
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

fn ladder_json(steps: Option<Items<LadderStep, 0, 20>>) -> Value {
    serde_json::to_value(steps.map(Items::into_inner).unwrap_or_default()).unwrap_or_default()
}

/// Create an SLA policy.
#[utoipa::path(
    tag = "sla-policies",
    request_body(content = NewPolicy, example = json!({
        "name": "Key customers", "position": 10, "tiers": ["key"],
        "first_response_minutes": 30, "resolution_minutes": 240,
        "escalation": [
            {"metric": "resolution", "offset_minutes": -30, "notify": "assignee"},
            {"metric": "resolution", "offset_minutes": 60, "notify": "manager"},
            {"metric": "resolution", "offset_minutes": 240, "notify": "admins"}
        ]
    })),
    responses(
        (status = 201, description = "Created", body = SlaPolicy, headers(("Location" = String), ("ETag" = String))),
        (status = 409, description = "`calendar_id` names no calendar", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/complaint-sla-policies")]
async fn create(
    caller: Authorized<ComplaintsManage>,
    mut conn: DbConn,
    body: ValidJson<NewPolicy>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let now = Utc::now();
    let row = PolicyRow {
        id: PolicyId::new(),
        name: b.name.into_inner(),
        position: b.position.get() as i32,
        severities: names(b.severities),
        tiers: names(b.tiers),
        levels: names(b.levels),
        channels: names(b.channels),
        first_response_minutes: b.first_response_minutes.get() as i32,
        resolution_minutes: b.resolution_minutes.get() as i32,
        calendar_id: b.calendar_id,
        reopen_window_days: b
            .reopen_window_days
            .map_or(DEFAULT_REOPEN_WINDOW_DAYS, |d| d.get() as i32),
        escalation: ladder_json(b.escalation),
        version: 1,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    let writer = Writer::of(&caller.principal);
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            if let Some(calendar) = row.calendar_id {
                calendars::require(conn, calendar, "calendar_id").await?;
            }
            write::create(conn, &writer, row, Action::CREATED).await
        })
        .await?;
    Ok(created_in("complaint-sla-policies", &saved))
}

#[derive(Serialize, Deserialize)]
struct PositionCursor(i32, PolicyId);

/// List SLA policies in the order they are tried.
#[utoipa::path(tag = "sla-policies", params(PageParams), responses((status = 200, body = Page<SlaPolicy>)))]
#[get("/complaint-sla-policies")]
async fn list(
    _: Authorized<ComplaintsRead>,
    mut conn: DbConn,
    page: Query<PageParams>,
) -> ApiResult<web::Json<Page<SlaPolicy>>> {
    let window = page.window::<PositionCursor>()?;
    let mut query = complaint_sla_policies::table
        .filter(complaint_sla_policies::deleted_at.is_null())
        .select(PolicyRow::as_select())
        .order((complaint_sla_policies::position, complaint_sla_policies::id))
        .limit(window.fetch())
        .into_boxed();
    if let Some(PositionCursor(position, id)) = window.after {
        query = query.filter(past(
            complaint_sla_policies::position,
            complaint_sla_policies::id,
            (position, id.get()),
            Direction::Ascending,
        ));
    }
    let rows = query.load(&mut conn).await?;
    let page = window.page(rows, |p| PositionCursor(p.position, p.id));
    Ok(web::Json(page.map(|p| p.view())))
}

/// Get an SLA policy.
#[utoipa::path(tag = "sla-policies", responses((status = 200, body = SlaPolicy, headers(("ETag" = String)))))]
#[get("/complaint-sla-policies/{id}")]
async fn get_one(
    _: Authorized<ComplaintsRead>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let row = write::live::<PolicyRow>(&mut conn, PolicyId::from(*id)).await?;
    Ok(current(&row))
}

/// Change an SLA policy (its version grows; complaints record the version they follow).
#[utoipa::path(
    tag = "sla-policies",
    request_body = PolicyPatch,
    responses(
        (status = 200, body = SlaPolicy, headers(("ETag" = String))),
        (status = 409, description = "`calendar_id` names no calendar", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/complaint-sla-policies/{id}")]
async fn update(
    caller: Authorized<ComplaintsManage>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<PolicyPatch>,
) -> ApiResult<HttpResponse> {
    let p = body.0;
    let writer = Writer::of(&caller.principal);
    let id = PolicyId::from(*id);
    let (saved, ()) = write::change(
        &mut conn,
        &writer,
        id,
        &if_match,
        Action::UPDATED,
        async |conn, after: &mut PolicyRow| {
            if let Some(name) = p.name {
                after.name = name.into_inner();
            }
            if let Some(position) = p.position {
                after.position = position.get() as i32;
            }
            if p.severities.is_some() {
                after.severities = names(p.severities);
            }
            if p.tiers.is_some() {
                after.tiers = names(p.tiers);
            }
            if p.levels.is_some() {
                after.levels = names(p.levels);
            }
            if p.channels.is_some() {
                after.channels = names(p.channels);
            }
            if let Some(m) = p.first_response_minutes {
                after.first_response_minutes = m.get() as i32;
            }
            if let Some(m) = p.resolution_minutes {
                after.resolution_minutes = m.get() as i32;
            }
            match p.calendar_id {
                Field::Absent => {}
                Field::Null => after.calendar_id = None,
                Field::Value(calendar) => {
                    calendars::require(conn, calendar, "calendar_id").await?;
                    after.calendar_id = Some(calendar);
                }
            }
            if let Some(days) = p.reopen_window_days {
                after.reopen_window_days = days.get() as i32;
            }
            if p.escalation.is_some() {
                after.escalation = ladder_json(p.escalation);
            }
            Ok(())
        },
    )
    .await?;
    Ok(current(&saved))
}

/// Delete an SLA policy: new complaints no longer match it; those that did keep its targets.
#[utoipa::path(tag = "sla-policies", responses((status = 204, description = "Deleted")))]
#[delete("/complaint-sla-policies/{id}")]
async fn remove(
    caller: Authorized<ComplaintsManage>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&caller.principal);
    write::remove_single::<PolicyRow>(&mut conn, &writer, PolicyId::from(*id), &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}
