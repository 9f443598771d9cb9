//! `/api/v1/business-calendars` (managers): working hours and holidays that SLA policies
//! count in. A change applies to due times computed from then on; clocks already running
//! keep theirs until their complaint next changes.

use std::collections::BTreeSet;

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;
use validator::{Validate, ValidationError};

use super::business_time::Calendar;
use crate::auth::{Authorized, ComplaintsManage, ComplaintsRead};
use crate::db::DbConn;
use crate::db::keyset::{Direction, past};
use crate::db::schema::{business_calendars, complaint_sla_policies};
use crate::error::{ApiError, ApiResult};
use crate::http::etag::IfMatch;
use crate::http::json::ValidJson;
use crate::http::pagination::{Page, PageParams};
use crate::http::query::Query;
use crate::kit::ids::CalendarId;
use crate::kit::input::{Items, LocalDate, Text, TimeZoneName};
use crate::kit::write::{self, Action, Writer, created_in, current};
use crate::text_enum;

crate::routes!(create, list, get_one, update, remove);

text_enum! {
    /// A day of the week.
    pub enum Weekday {
        Monday = "monday",
        Tuesday = "tuesday",
        Wednesday = "wednesday",
        Thursday = "thursday",
        Friday = "friday",
        Saturday = "saturday",
        Sunday = "sunday",
    }
}

/// `HH:MM`, 00:00 to 24:00.
const TIME_PATTERN: &str = "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$";

/// Minutes after midnight of `HH:MM`.
fn minutes(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (text.len() == 5 && m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

/// A local time of day, `HH:MM` from 00:00 to 24:00 (the end of the day).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LocalTime(String);

impl LocalTime {
    /// Minutes after midnight, once valid.
    fn minutes(&self) -> Option<u32> {
        minutes(&self.0)
    }
}

impl Validate for LocalTime {
    fn validate(&self) -> Result<(), validator::ValidationErrors> {
        if self.minutes().is_some() {
            return Ok(());
        }
        let mut errors = validator::ValidationErrors::new();
        errors.add(
            "__all__",
            ValidationError::new("pattern")
                .with_message("must be a time HH:MM from 00:00 to 24:00".into()),
        );
        Err(errors)
    }
}

impl utoipa::PartialSchema for LocalTime {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(TIME_PATTERN))
            .examples(["09:00"])
            .into()
    }
}

impl ToSchema for LocalTime {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("LocalTime")
    }
}

/// One working interval starting on a weekday, local time; a lunch break is two intervals.
/// An `end` at or before `start` runs past midnight into the next day (a night shift;
/// `00:00` to `00:00` is the whole day). Overlapping intervals count once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct Hours {
    pub day: Weekday,
    #[validate(nested)]
    pub start: LocalTime,
    #[validate(nested)]
    pub end: LocalTime,
}

/// Body of `POST /business-calendars`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCalendar {
    #[validate(nested)]
    pub name: Text<1, 200>,
    #[validate(nested)]
    pub time_zone: TimeZoneName,
    /// Working intervals.
    #[validate(nested)]
    pub hours: Items<Hours, 0, 70>,
    /// Dates on which no interval counts.
    #[validate(nested)]
    pub holidays: Option<Items<LocalDate, 0, 1000>>,
}

/// Body of `PATCH /business-calendars/{id}`: what is sent replaces what is stored.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarPatch {
    #[validate(nested)]
    pub name: Option<Text<1, 200>>,
    #[validate(nested)]
    pub time_zone: Option<TimeZoneName>,
    #[validate(nested)]
    pub hours: Option<Items<Hours, 0, 70>>,
    #[validate(nested)]
    pub holidays: Option<Items<LocalDate, 0, 1000>>,
}

/// A calendar row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = business_calendars, treat_none_as_null = true)]
pub struct CalendarRow {
    pub id: CalendarId,
    pub name: String,
    pub time_zone: String,
    pub hours: Value,
    pub holidays: Vec<NaiveDate>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A business calendar as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BusinessCalendar {
    pub id: CalendarId,
    #[schema(example = "Shanghai service centre")]
    pub name: String,
    #[schema(example = "Asia/Shanghai")]
    pub time_zone: String,
    pub hours: Vec<Hours>,
    pub holidays: Vec<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl CalendarRow {
    fn hours(&self) -> Vec<Hours> {
        serde_json::from_value(self.hours.clone()).unwrap_or_default()
    }

    /// The API's view.
    pub fn view(&self) -> BusinessCalendar {
        BusinessCalendar {
            id: self.id,
            name: self.name.clone(),
            time_zone: self.time_zone.clone(),
            hours: self.hours(),
            holidays: self.holidays.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// The calendar the clocks count in.
    pub fn calendar(&self) -> Calendar {
        let spans: Vec<(u32, u32)> = self
            .hours()
            .iter()
            .filter_map(|h| {
                let day = Weekday::ALL.iter().position(|d| *d == h.day)? as u32;
                let (start, end) = (h.start.minutes()?, h.end.minutes()?);
                let length = if end > start {
                    end - start
                } else {
                    end + DAY - start
                };
                Some((day * DAY + start, day * DAY + start + length))
            })
            .collect();
        Calendar {
            time_zone: self.time_zone.parse().unwrap_or(chrono_tz::Tz::UTC),
            week: by_start_day(union_over_week(spans)),
            holidays: self.holidays.iter().copied().collect::<BTreeSet<_>>(),
        }
    }
}

/// Minutes in a day and in a week.
const DAY: u32 = 24 * 60;
const WEEK: u32 = 7 * DAY;

/// The union of intervals in minutes from Monday 00:00, on a week that wraps around
/// (Sunday night runs into Monday): sorted, disjoint, each starting within the week.
fn union_over_week(mut spans: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    spans.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::new();
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    // An interval running past the week's end may reach into the first ones.
    while merged.len() > 1 {
        let (first, last) = (merged[0], merged[merged.len() - 1]);
        if last.1 < first.0 + WEEK {
            break;
        }
        merged.remove(0);
        let last = merged.last_mut().expect("one is left");
        last.1 = last.1.max(first.1 + WEEK);
    }
    if let Some(only) = merged.first_mut().filter(|s| s.1 - s.0 >= WEEK) {
        *only = (only.0, only.0 + WEEK);
    }
    merged
}

/// Week intervals as each start day's `(start, end)` in minutes after its midnight (the end
/// may lie in a later day).
fn by_start_day(spans: Vec<(u32, u32)>) -> [Vec<(u32, u32)>; 7] {
    let mut week: [Vec<(u32, u32)>; 7] = Default::default();
    for (start, end) in spans {
        let day = (start / DAY) as usize;
        week[day].push((start % DAY, start % DAY + (end - start)));
    }
    week
}

crate::soft_deleted_row! {
    impl Versioned for CalendarRow in business_calendars {
        const KIND: &'static str = "business_calendar";
        type Id = CalendarId;

        fn view(&self) -> Value {
            serde_json::to_value(CalendarRow::view(self)).unwrap_or_default()
        }
    }
}

fn stored_holidays(holidays: Option<Items<LocalDate, 0, 1000>>) -> Vec<NaiveDate> {
    let mut dates: Vec<NaiveDate> = holidays
        .map(Items::into_inner)
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.0)
        .collect();
    dates.sort_unstable();
    dates.dedup();
    dates
}

/// The live calendar with this id, for a policy that names it: `409` naming `field` when
/// there is none.
pub async fn require(
    conn: &mut AsyncPgConnection,
    id: CalendarId,
    field: &str,
) -> ApiResult<CalendarRow> {
    business_calendars::table
        .find(id)
        .filter(business_calendars::deleted_at.is_null())
        .select(CalendarRow::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| ApiError::rule(field, "not_found", "no such business calendar"))
}

/// The calendar clocks count in, by id (deleted ones still count for clocks that use them).
pub async fn load(conn: &mut AsyncPgConnection, id: CalendarId) -> ApiResult<Calendar> {
    let row: CalendarRow = business_calendars::table
        .find(id)
        .select(CalendarRow::as_select())
        .first(conn)
        .await?;
    Ok(row.calendar())
}

/// Create a business calendar.
#[utoipa::path(
    tag = "business-calendars",
    request_body(content = NewCalendar, example = json!({
        "name": "Shanghai service centre", "time_zone": "Asia/Shanghai",
        "hours": [{"day": "monday", "start": "09:00", "end": "12:00"}, {"day": "monday", "start": "13:00", "end": "18:00"}],
        "holidays": ["2026-10-01"]
    })),
    responses((status = 201, description = "Created", body = BusinessCalendar, headers(("Location" = String), ("ETag" = String))))
)]
#[post("/business-calendars")]
async fn create(
    caller: Authorized<ComplaintsManage>,
    mut conn: DbConn,
    body: ValidJson<NewCalendar>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let hours = body.hours.into_inner();
    let now = Utc::now();
    let row = CalendarRow {
        id: CalendarId::new(),
        name: body.name.into_inner(),
        time_zone: body.time_zone.into_inner(),
        hours: serde_json::to_value(&hours).unwrap_or_default(),
        holidays: stored_holidays(body.holidays),
        version: 1,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    let saved = write::create_single(&mut conn, &Writer::of(&caller.principal), row).await?;
    Ok(created_in("business-calendars", &saved))
}

#[derive(Serialize, Deserialize)]
struct NameCursor(String, CalendarId);

/// List business calendars by name.
#[utoipa::path(tag = "business-calendars", params(PageParams), responses((status = 200, body = Page<BusinessCalendar>)))]
#[get("/business-calendars")]
async fn list(
    _: Authorized<ComplaintsRead>,
    mut conn: DbConn,
    page: Query<PageParams>,
) -> ApiResult<web::Json<Page<BusinessCalendar>>> {
    let window = page.window::<NameCursor>()?;
    let mut query = business_calendars::table
        .filter(business_calendars::deleted_at.is_null())
        .select(CalendarRow::as_select())
        .order((business_calendars::name, business_calendars::id))
        .limit(window.fetch())
        .into_boxed();
    if let Some(NameCursor(name, id)) = window.after.as_ref() {
        query = query.filter(past(
            business_calendars::name,
            business_calendars::id,
            (name.clone(), id.get()),
            Direction::Ascending,
        ));
    }
    let rows = query.load(&mut conn).await?;
    let page = window.page(rows, |c| NameCursor(c.name.clone(), c.id));
    Ok(web::Json(page.map(|c| c.view())))
}

/// Get a business calendar.
#[utoipa::path(tag = "business-calendars", responses((status = 200, body = BusinessCalendar, headers(("ETag" = String)))))]
#[get("/business-calendars/{id}")]
async fn get_one(
    _: Authorized<ComplaintsRead>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let row = write::live::<CalendarRow>(&mut conn, CalendarId::from(*id)).await?;
    Ok(current(&row))
}

/// Change a business calendar.
#[utoipa::path(tag = "business-calendars", request_body = CalendarPatch, responses((status = 200, body = BusinessCalendar, headers(("ETag" = String)))))]
#[patch("/business-calendars/{id}")]
async fn update(
    caller: Authorized<ComplaintsManage>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<CalendarPatch>,
) -> ApiResult<HttpResponse> {
    let patch = body.0;
    let writer = Writer::of(&caller.principal);
    let id = CalendarId::from(*id);
    let saved = write::change(
        &mut conn,
        &writer,
        id,
        &if_match,
        Action::UPDATED,
        async |_, after: &mut CalendarRow| {
            if let Some(name) = patch.name {
                after.name = name.into_inner();
            }
            if let Some(zone) = patch.time_zone {
                after.time_zone = zone.into_inner();
            }
            if let Some(hours) = patch.hours {
                after.hours = serde_json::to_value(hours.into_inner()).unwrap_or_default();
            }
            if patch.holidays.is_some() {
                after.holidays = stored_holidays(patch.holidays);
            }
            Ok(())
        },
    )
    .await?
    .0;
    Ok(current(&saved))
}

/// Delete a business calendar no live policy uses.
#[utoipa::path(
    tag = "business-calendars",
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "A policy still counts in this calendar", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/business-calendars/{id}")]
async fn remove(
    caller: Authorized<ComplaintsManage>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&caller.principal);
    let id = CalendarId::from(*id);
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let locked = write::lock::<CalendarRow>(conn, &writer, id, &if_match).await?;
        let used: i64 = complaint_sla_policies::table
            .filter(complaint_sla_policies::calendar_id.eq(id))
            .filter(complaint_sla_policies::deleted_at.is_null())
            .count()
            .get_result(conn)
            .await?;
        if used > 0 {
            return Err(ApiError::Conflict(format!(
                "{used} SLA polic{} still count in this calendar; change them first",
                if used == 1 { "y" } else { "ies" }
            )));
        }
        write::soft_delete(conn, &writer, locked).await
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_as_minutes() {
        assert_eq!(minutes("09:30"), Some(570));
        assert_eq!(minutes("24:00"), Some(1440));
        assert_eq!(minutes("24:01"), None);
        assert_eq!(minutes("9:30"), None);
        assert_eq!(minutes("12:60"), None);
        assert!(LocalTime("7:00".into()).validate().is_err());
        assert!(LocalTime("07:00".into()).validate().is_ok());
    }

    #[test]
    fn overlaps_merge_and_night_shifts_run_past_midnight() {
        // Monday 09:00–12:00 and 11:00–13:00 are one interval; Sunday 22:00–06:00 runs into
        // Monday and meets Monday's 06:00–08:00.
        let merged = union_over_week(vec![
            (9 * 60, 12 * 60),
            (11 * 60, 13 * 60),
            (6 * DAY + 22 * 60, 6 * DAY + 30 * 60),
            (6 * 60, 8 * 60),
        ]);
        assert_eq!(
            merged,
            [(9 * 60, 13 * 60), (6 * DAY + 22 * 60, 6 * DAY + 32 * 60)]
        );
        let week = by_start_day(merged);
        assert_eq!(week[0], [(9 * 60, 13 * 60)]);
        assert_eq!(week[6], [(22 * 60, 32 * 60)]);
    }

    #[test]
    fn every_day_all_day_is_the_whole_week() {
        let all: Vec<(u32, u32)> = (0..7).map(|d| (d * DAY, d * DAY + DAY)).collect();
        assert_eq!(union_over_week(all), [(0, WEEK)]);
    }
}
