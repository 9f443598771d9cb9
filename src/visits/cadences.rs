//! Revisit cadences (`/visit-cadences`): how often each value tier is visited, with a
//! tolerance and the check-in radius, overridable per customer; and the due list they make
//! (`GET /visits/due`), read from `visit_due`, which the database keeps current.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, patch, put, web};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use super::refresh_due;
use crate::auth::{Authorized, VisitsManage, VisitsRead};
use crate::customers::api::customer_cards;
use crate::customers::api::{Level, Tier};
use crate::db::DbConn;
use crate::db::prepared::Cached;
use crate::db::schema::{visit_cadence_overrides, visit_cadences};
use crate::db::shared_reads::{QUEUE_FOR_COMPOUND_READS, SharedRead};
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::etag::{IfMatch, versioned};
use crate::http::json::ValidJson;
use crate::http::pagination::{Page, PageParams};
use crate::http::query::Query;
use crate::http::timestamps::{optional_timestamp, timestamp};
use crate::kit::ids::{CustomerId, UserId};
use crate::kit::input::{Days, Whole};
use crate::kit::write::{self, Action, Versioned, Writer};
use crate::text_enum;

crate::routes!(
    list,
    update,
    get_override,
    put_override,
    delete_override,
    due_list
);

text_enum! {
    /// A value tier, or `unclassified` for customers without one.
    pub enum CadenceTier {
        Key = "key",
        Major = "major",
        Ordinary = "ordinary",
        LongTail = "long_tail",
        Unclassified = "unclassified",
    }
}

/// How often a tier is visited.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = visit_cadences)]
pub struct Cadence {
    pub tier: CadenceTier,
    /// Days from the last completed visit to the next one due.
    #[schema(example = 30)]
    pub interval_days: i32,
    /// Days either side of the due date that still count as on time.
    #[schema(example = 3)]
    pub tolerance_days: i32,
    /// How far from the visit's location a check-in still counts as there, in metres.
    #[schema(example = 200)]
    pub radius_m: i32,
    #[serde(skip)]
    pub version: i64,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

impl Versioned for Cadence {
    const KIND: &'static str = "visit_cadence";
    type Id = CadenceTier;

    fn id(&self) -> Uuid {
        self.tier.into()
    }

    fn version(&self) -> i64 {
        self.version
    }

    fn stamp(&mut self, version: i64, now: DateTime<Utc>) {
        self.version = version;
        self.updated_at = now;
    }

    async fn lock(conn: &mut AsyncPgConnection, tier: CadenceTier) -> ApiResult<Self> {
        Ok(visit_cadences::table
            .find(tier)
            .select(Cadence::as_select())
            .for_update()
            .first(conn)
            .await?)
    }

    async fn insert(&self, _conn: &mut AsyncPgConnection) -> ApiResult<Self> {
        Err(ApiError::internal(
            "cadences exist for every tier; they are changed, not created",
        ))
    }

    async fn update(&self, conn: &mut AsyncPgConnection) -> ApiResult<Self> {
        Ok(diesel::update(visit_cadences::table.find(self.tier))
            .set((
                visit_cadences::interval_days.eq(self.interval_days),
                visit_cadences::tolerance_days.eq(self.tolerance_days),
                visit_cadences::radius_m.eq(self.radius_m),
                visit_cadences::version.eq(self.version),
                visit_cadences::updated_at.eq(self.updated_at),
            ))
            .returning(Cadence::as_returning())
            .get_result(conn)
            .await?)
    }
}

/// Cadences are keyed by tier: each has a fixed id for the audit log and events.
impl From<CadenceTier> for Uuid {
    fn from(tier: CadenceTier) -> Self {
        let index = CadenceTier::ALL
            .iter()
            .position(|t| *t == tier)
            .unwrap_or_default();
        Uuid::from_u128(0x0000_0000_0000_8000_8000_7669_7369_7400 + index as u128)
    }
}

/// Body of `PATCH /visit-cadences/{tier}`.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CadencePatch {
    #[validate(nested)]
    pub interval_days: Option<Whole<1, 3650>>,
    #[validate(nested)]
    pub tolerance_days: Option<Whole<0, 365>>,
    #[validate(nested)]
    pub radius_m: Option<Whole<1, 100_000>>,
}

/// Body of `PUT /visit-cadences/customers/{customer_id}`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CadenceOverrideInput {
    #[validate(nested)]
    pub interval_days: Whole<1, 3650>,
    #[validate(nested)]
    pub tolerance_days: Whole<0, 365>,
}

/// One customer's own cadence, in place of their tier's.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = visit_cadence_overrides)]
pub struct CadenceOverride {
    pub customer_id: CustomerId,
    pub interval_days: i32,
    pub tolerance_days: i32,
    #[serde(skip)]
    pub version: i64,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

impl Versioned for CadenceOverride {
    const KIND: &'static str = "visit_cadence_override";
    type Id = CustomerId;

    crate::versioned_columns!(id: customer_id, version: version, updated_at: updated_at);

    fn customer_id(&self) -> Option<CustomerId> {
        Some(self.customer_id)
    }

    async fn lock(conn: &mut AsyncPgConnection, customer: CustomerId) -> ApiResult<Self> {
        Ok(visit_cadence_overrides::table
            .find(customer)
            .select(CadenceOverride::as_select())
            .for_update()
            .first(conn)
            .await?)
    }

    async fn insert(&self, conn: &mut AsyncPgConnection) -> ApiResult<Self> {
        let saved = diesel::insert_into(visit_cadence_overrides::table)
            .values((
                visit_cadence_overrides::customer_id.eq(self.customer_id),
                visit_cadence_overrides::interval_days.eq(self.interval_days),
                visit_cadence_overrides::tolerance_days.eq(self.tolerance_days),
            ))
            .returning(CadenceOverride::as_returning())
            .get_result(conn)
            .await?;
        refresh_due(conn, &[self.customer_id]).await?;
        Ok(saved)
    }

    async fn delete(&self, conn: &mut AsyncPgConnection) -> ApiResult<()> {
        diesel::delete(visit_cadence_overrides::table.find(self.customer_id))
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn update(&self, conn: &mut AsyncPgConnection) -> ApiResult<Self> {
        let saved = diesel::update(visit_cadence_overrides::table.find(self.customer_id))
            .set((
                visit_cadence_overrides::interval_days.eq(self.interval_days),
                visit_cadence_overrides::tolerance_days.eq(self.tolerance_days),
                visit_cadence_overrides::version.eq(self.version),
                visit_cadence_overrides::updated_at.eq(self.updated_at),
            ))
            .returning(CadenceOverride::as_returning())
            .get_result(conn)
            .await?;
        refresh_due(conn, &[self.customer_id]).await?;
        Ok(saved)
    }
}

/// The cadence tier of a customer's value tier.
fn cadence_tier(tier: Option<Tier>) -> CadenceTier {
    match tier {
        Some(Tier::Key) => CadenceTier::Key,
        Some(Tier::Major) => CadenceTier::Major,
        Some(Tier::Ordinary) => CadenceTier::Ordinary,
        Some(Tier::LongTail) => CadenceTier::LongTail,
        None => CadenceTier::Unclassified,
    }
}

async fn cadence_of(conn: &mut AsyncPgConnection, customer: CustomerId) -> ApiResult<Cadence> {
    let tier: Option<Option<Tier>> = customer_cards::table
        .find(customer)
        .select(customer_cards::tier)
        .first(conn)
        .await
        .optional()?;
    Ok(visit_cadences::table
        .find(cadence_tier(tier.flatten()))
        .select(Cadence::as_select())
        .first(conn)
        .await?)
}

/// The check-in radius for a visit to this customer: their tier's.
pub async fn radius_m(conn: &mut AsyncPgConnection, customer: CustomerId) -> ApiResult<i32> {
    Ok(cadence_of(conn, customer).await?.radius_m)
}

/// Days between visits to this customer: their own cadence, else their tier's.
pub async fn interval_days(conn: &mut AsyncPgConnection, customer: CustomerId) -> ApiResult<i32> {
    let own: Option<i32> = visit_cadence_overrides::table
        .find(customer)
        .select(visit_cadence_overrides::interval_days)
        .first(conn)
        .await
        .optional()?;
    match own {
        Some(days) => Ok(days),
        None => Ok(cadence_of(conn, customer).await?.interval_days),
    }
}

/// The cadence of every tier.
#[utoipa::path(tag = "visit-cadences", responses((status = 200, body = Vec<Cadence>)))]
#[get("/visit-cadences")]
async fn list(_: Authorized<VisitsRead>, mut conn: DbConn) -> ApiResult<web::Json<Vec<Cadence>>> {
    let mut all: Vec<Cadence> = visit_cadences::table
        .select(Cadence::as_select())
        .load(&mut conn)
        .await?;
    all.sort_by_key(|c| CadenceTier::ALL.iter().position(|t| *t == c.tier));
    Ok(web::Json(all))
}

/// Change a tier's cadence; every customer of the tier gets its new due date.
#[utoipa::path(
    tag = "visit-cadences",
    params(("tier" = CadenceTier, Path, description = "The value tier, or `unclassified`")),
    request_body = CadencePatch,
    responses((status = 200, body = Cadence, headers(("ETag" = String))))
)]
#[patch("/visit-cadences/{tier}")]
async fn update(
    caller: Authorized<VisitsManage>,
    mut conn: DbConn,
    tier: web::Path<CadenceTier>,
    if_match: IfMatch,
    body: ValidJson<CadencePatch>,
) -> ApiResult<HttpResponse> {
    let p = body.0;
    let tier = *tier;
    let writer = Writer::of(&caller.principal);
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let (saved, ()) = write::change(
                conn,
                &writer,
                tier,
                &if_match,
                Action::UPDATED,
                async |_, after: &mut Cadence| {
                    after.interval_days = p
                        .interval_days
                        .map_or(after.interval_days, |d| d.get() as i32);
                    after.tolerance_days = p
                        .tolerance_days
                        .map_or(after.tolerance_days, |d| d.get() as i32);
                    after.radius_m = p.radius_m.map_or(after.radius_m, |d| d.get() as i32);
                    Ok(())
                },
            )
            .await?;
            // In the same transaction: the tier's customers get their new due dates.
            let mut query = customer_cards::table
                .select(customer_cards::id)
                .into_boxed();
            query = match tier {
                CadenceTier::Unclassified => query.filter(customer_cards::tier.is_null()),
                other => query.filter(customer_cards::tier.eq(other.as_str())),
            };
            let ids: Vec<CustomerId> = query.load(conn).await?;
            refresh_due(conn, &ids).await?;
            Ok(saved)
        })
        .await?;
    Ok(versioned(StatusCode::OK, &saved, saved.version))
}

/// A customer's own cadence, if set.
#[utoipa::path(tag = "visit-cadences", responses((status = 200, body = CadenceOverride, headers(("ETag" = String)))))]
#[get("/visit-cadences/customers/{customer_id}")]
async fn get_override(
    _: Authorized<VisitsRead>,
    mut conn: DbConn,
    customer: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let own: CadenceOverride = visit_cadence_overrides::table
        .find(CustomerId::from(*customer))
        .select(CadenceOverride::as_select())
        .first(&mut conn)
        .await?;
    Ok(versioned(StatusCode::OK, &own, own.version))
}

/// Set a customer's own cadence (in place of their tier's).
#[utoipa::path(
    tag = "visit-cadences",
    request_body = CadenceOverrideInput,
    responses(
        (status = 200, body = CadenceOverride, headers(("ETag" = String))),
        (status = 409, description = "No such customer", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/visit-cadences/customers/{customer_id}")]
async fn put_override(
    caller: Authorized<VisitsManage>,
    mut conn: DbConn,
    customer: web::Path<Uuid>,
    body: ValidJson<CadenceOverrideInput>,
) -> ApiResult<HttpResponse> {
    let (interval, tolerance) = (
        body.0.interval_days.get() as i32,
        body.0.tolerance_days.get() as i32,
    );
    let customer = CustomerId::from(*customer);
    let writer = Writer::of(&caller.principal);
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            crate::customers::api::find_referenced(conn, customer).await?;
            let existing = visit_cadence_overrides::table
                .find(customer)
                .select(CadenceOverride::as_select())
                .for_update()
                .first(conn)
                .await
                .optional()?;
            match existing {
                Some(row) => {
                    let locked = write::adopt(&writer, row)?;
                    let mut after = locked.to_change();
                    after.interval_days = interval;
                    after.tolerance_days = tolerance;
                    write::save(conn, &writer, locked, after, Action::UPDATED).await
                }
                None => {
                    let now = Utc::now();
                    let row = CadenceOverride {
                        customer_id: customer,
                        interval_days: interval,
                        tolerance_days: tolerance,
                        version: 1,
                        created_at: now,
                        updated_at: now,
                    };
                    write::create(conn, &writer, row, Action::CREATED).await
                }
            }
        })
        .await?;
    Ok(versioned(StatusCode::OK, &saved, saved.version))
}

/// Remove a customer's own cadence: their tier's applies again.
#[utoipa::path(tag = "visit-cadences", responses((status = 204, description = "Removed")))]
#[delete("/visit-cadences/customers/{customer_id}")]
async fn delete_override(
    caller: Authorized<VisitsManage>,
    mut conn: DbConn,
    customer: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let customer = CustomerId::from(*customer);
    let writer = Writer::of(&caller.principal);
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let locked =
            write::lock::<CadenceOverride>(conn, &writer, customer, &IfMatch::Absent).await?;
        write::delete(conn, &writer, locked).await?;
        refresh_due(conn, &[customer]).await
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

text_enum! {
    /// Where a customer stands against their cadence.
    pub enum DueState {
        /// Next visit due later than the window.
        OnTrack = "on_track",
        /// Due within the window, or within the tolerance of the due date.
        DueSoon = "due_soon",
        /// Past the due date and its tolerance.
        Overdue = "overdue",
        /// Never visited: due since they became a customer.
        NeverVisited = "never_visited",
    }
}

/// Where a customer stands, `now`, looking `within` ahead.
pub fn due_state(
    last_visit_at: Option<DateTime<Utc>>,
    due_at: DateTime<Utc>,
    tolerance_days: i32,
    now: DateTime<Utc>,
    within: Duration,
) -> DueState {
    if last_visit_at.is_none() {
        DueState::NeverVisited
    } else if now > due_at + Duration::days(i64::from(tolerance_days)) {
        DueState::Overdue
    } else if due_at - Duration::days(i64::from(tolerance_days)) <= now + within {
        DueState::DueSoon
    } else {
        DueState::OnTrack
    }
}

/// The customer a due-list entry is about.
#[derive(Debug, Serialize, ToSchema, QueryableByName)]
pub struct DueCustomer {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: CustomerId,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub display_name: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub tier: Option<Tier>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub level: Level,
}

/// A customer due (or overdue) a visit.
#[derive(Debug, Serialize, ToSchema)]
pub struct DueEntry {
    pub customer: DueCustomer,
    pub owner_id: Option<UserId>,
    #[serde(serialize_with = "optional_timestamp")]
    pub last_visit_at: Option<DateTime<Utc>>,
    /// The last completed visit (or, never visited, becoming a customer) + the interval.
    #[serde(serialize_with = "timestamp")]
    pub due_at: DateTime<Utc>,
    /// Whole days past `due_at`, rounded down (negative: days still to go).
    pub overdue_days: i64,
    pub tolerance_days: i32,
    pub due_state: DueState,
}

/// Filters of `GET /visits/due`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DueFilters {
    /// The customers this user owns. Default: everyone's.
    pub owner_id: Option<UserId>,
    /// How far ahead to look. Default: `14d`.
    #[param(value_type = Option<Days>)]
    pub within: Option<Days>,
}

#[derive(Serialize, Deserialize)]
struct DueCursor(DateTime<Utc>, CustomerId);

/// A due-list row: the due entry and the customer it names.
#[derive(QueryableByName)]
struct DueRow {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
    owner_id: Option<UserId>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    last_visit_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    due_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    tolerance_days: i32,
    #[diesel(embed)]
    customer: DueCustomer,
}

/// The statement of a due-list page.
pub type DueQuery =
    diesel::query_builder::BoxedSqlQuery<'static, diesel::pg::Pg, diesel::query_builder::SqlQuery>;

/// The due-list page query (public so that tests and benchmarks can `EXPLAIN` it): customers
/// without an open visit whose due date falls before `until`, earliest due first, each with
/// the customer's name and classification.
///
/// One statement, shaped so that PostgreSQL keeps one generic plan for it: the page is cut
/// from the due index first and only its rows are joined to their customers, so the plan's
/// cost no longer depends on how many rows the owner has (with the join outside, the
/// estimate for an owner of thousands made every run's own plan look cheaper, and each run
/// was planned anew: twice the database time). `NOT planned` and the limit are written
/// into the text: a bound `planned = $n` cannot match the indexes' `WHERE NOT planned`, and
/// a bound limit is planned as a tenth of the rows. Four texts, times the page sizes.
pub fn due_query(
    owner: Option<UserId>,
    until: DateTime<Utc>,
    after: Option<(DateTime<Utc>, CustomerId)>,
    limit: i64,
) -> DueQuery {
    use diesel::sql_types::{Timestamptz, Uuid as SqlUuid};
    // Parameters in bind order: `until`, then the owner, then the cursor.
    let (owner_condition, cursor_at) = match owner {
        Some(_) => (" AND owner_id = $2", 3),
        None => ("", 2),
    };
    let cursor_condition = match after {
        Some(_) => format!(
            " AND (due_at, customer_id) > (${cursor_at}, ${})",
            cursor_at + 1
        ),
        None => String::new(),
    };
    let sql = format!(
        "SELECT d.owner_id, d.last_visit_at, d.due_at, d.tolerance_days, \
                c.id, c.display_name, c.tier, c.level \
         FROM (SELECT customer_id, owner_id, last_visit_at, due_at, tolerance_days \
               FROM visit_due \
               WHERE NOT planned AND due_at <= $1{owner_condition}{cursor_condition} \
               ORDER BY due_at, customer_id LIMIT {limit}) AS d \
         JOIN customer_cards c ON c.id = d.customer_id \
         ORDER BY d.due_at, d.customer_id"
    );
    let mut query = diesel::sql_query(sql)
        .into_boxed()
        .bind::<Timestamptz, _>(until);
    if let Some(owner) = owner {
        query = query.bind::<SqlUuid, _>(owner);
    }
    if let Some((at, id)) = after {
        query = query.bind::<Timestamptz, _>(at).bind::<SqlUuid, _>(id);
    }
    query
}

/// The customers due a visit by their cadence, most overdue first: never visited ones are
/// due from the day they became customers. A customer with a planned, confirmed or
/// checked-in visit is off the list.
#[utoipa::path(tag = "visits", params(PageParams, DueFilters), responses((status = 200, body = Page<DueEntry>)))]
#[get("/visits/due")]
async fn due_list(
    _: Authorized<VisitsRead>,
    read: SharedRead,
    page: Query<PageParams>,
    filters: Query<DueFilters>,
) -> ApiResult<web::Json<Page<DueEntry>>> {
    let window = page.window::<DueCursor>()?;
    let within = Duration::days(i64::from(filters.within.map_or(14, |d| d.0)));
    let now = Utc::now();
    let after = window.after.as_ref().map(|DueCursor(at, id)| (*at, *id));
    // Kept prepared: whoever the owner and wherever the cursor, the best plan is the same
    // walk of the owner's (or everyone's) due index, so its generic plan loses nothing (see
    // `due_query` for what makes PostgreSQL settle on it); and as that walk reads only the
    // rows it shows, it shares the read connection (while few reads queue there).
    let rows: Vec<DueRow> = read
        .run_queued(QUEUE_FOR_COMPOUND_READS, async |mut conn| {
            let page_query = due_query(filters.owner_id, now + within, after, window.fetch());
            Ok(Cached::fixed(page_query).load(&mut conn).await?)
        })
        .await?;
    let page = window.page(rows, |r| DueCursor(r.due_at, r.customer.id));
    let data = page
        .data
        .into_iter()
        .map(|row| DueEntry {
            overdue_days: (now - row.due_at).num_seconds().div_euclid(86_400),
            due_state: due_state(
                row.last_visit_at,
                row.due_at,
                row.tolerance_days,
                now,
                within,
            ),
            customer: row.customer,
            owner_id: row.owner_id,
            last_visit_at: row.last_visit_at,
            due_at: row.due_at,
            tolerance_days: row.tolerance_days,
        })
        .collect();
    Ok(web::Json(Page {
        data,
        next_cursor: page.next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn due_states_count_the_tolerance_and_the_window() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let window = Duration::days(14);
        let last = Some(now - Duration::days(40));
        let state = |due: DateTime<Utc>| due_state(last, due, 3, now, window);
        assert_eq!(state(now - Duration::days(4)), DueState::Overdue);
        assert_eq!(
            state(now - Duration::days(2)),
            DueState::DueSoon,
            "within the tolerance"
        );
        assert_eq!(state(now + Duration::days(10)), DueState::DueSoon);
        assert_eq!(
            state(now + Duration::days(17)),
            DueState::DueSoon,
            "tolerance reaches into the window"
        );
        assert_eq!(state(now + Duration::days(18)), DueState::OnTrack);
        assert_eq!(due_state(None, now, 3, now, window), DueState::NeverVisited);
    }
}
