//! Recurring visit plans (`/visit-plans`): an RFC 5545 recurrence whose occurrences become
//! planned visits over a rolling horizon, each with a stable identity (plan, original start).
//! One occurrence is edited as the visit it is; the whole series with `PATCH`; "this and
//! following" with `/split`, which ends the series before the occurrence and starts a new one.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use super::recurrence::Recurrence;
use super::{
    Method, PLANNED, Planned, Purpose, Status, VisitRecord, VisitRow, VisitSettings, refresh_due,
};
use crate::auth::{Authorized, Ownership, VisitsRead, VisitsWrite};
use crate::db::DbConn;
use crate::db::keyset::older_than;
use crate::db::schema::{visit_plans, visits};
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::etag::{IfMatch, versioned};
use crate::http::json::{Field, ValidJson};
use crate::http::pagination::{Page, PageParams};
use crate::http::query::Query;
use crate::http::timestamps::{optional_timestamp, timestamp};
use crate::kit::audit::Subject;
use crate::kit::ids::{CustomerId, PlanId, UserId, VisitId};
use crate::kit::input::{Text, Whole, present};
use crate::kit::outbox::{self, Message};
use crate::kit::write::{self, Action, Occurrence, Versioned, Writer, created_in};
use crate::users::ensure_active;

crate::routes!(create, list, get_one, update, split, remove);

/// Occurrences planned at most per plan and horizon (a daily plan over a year).
const MAX_PER_PLAN: usize = 400;

/// A visit the materialisation inserted.
#[derive(QueryableByName)]
struct Inserted {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// A plan row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = visit_plans, treat_none_as_null = true)]
pub struct PlanRow {
    pub id: PlanId,
    pub customer_id: CustomerId,
    pub owner_id: UserId,
    pub recurrence: String,
    pub duration_minutes: i32,
    pub purpose: Purpose,
    pub method: Method,
    pub reason: String,
    pub agenda: Option<String>,
    pub split_from: Option<PlanId>,
    #[serde(skip)]
    pub materialised_until: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A recurring plan as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Plan {
    pub id: PlanId,
    pub customer_id: CustomerId,
    pub owner_id: UserId,
    /// The RFC 5545 recurrence: `DTSTART;TZID=...`, `RRULE:...`, any `EXDATE` lines.
    #[schema(
        example = "DTSTART;TZID=Asia/Shanghai:20261207T100000\nRRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=10"
    )]
    pub rrule: String,
    pub duration_minutes: i32,
    pub purpose: Purpose,
    pub method: Method,
    pub reason: String,
    pub agenda: Option<String>,
    /// The series this one continues after a "this and following" split.
    pub split_from: Option<PlanId>,
    /// Occurrences are planned visits up to here.
    #[serde(serialize_with = "optional_timestamp")]
    pub materialised_until: Option<DateTime<Utc>>,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

impl PlanRow {
    fn view(&self) -> Plan {
        Plan {
            id: self.id,
            customer_id: self.customer_id,
            owner_id: self.owner_id,
            rrule: self.recurrence.clone(),
            duration_minutes: self.duration_minutes,
            purpose: self.purpose,
            method: self.method,
            reason: self.reason.clone(),
            agenda: self.agenda.clone(),
            split_from: self.split_from,
            materialised_until: self.materialised_until,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    fn recurrence(&self) -> ApiResult<Recurrence> {
        Recurrence::parse(&self.recurrence).map_err(ApiError::internal)
    }
}

crate::soft_deleted_row! {
    impl Versioned for PlanRow in visit_plans {
        const KIND: &'static str = "visit_plan";
        type Id = PlanId;

        fn customer_id(&self) -> Option<CustomerId> {
            Some(self.customer_id)
        }

        /// Agents plan their own visits.
        fn ownership(&self) -> Ownership {
            Ownership::Owned {
                owner: Some(self.owner_id),
                what: "their own visit plans",
            }
        }

        fn view(&self) -> Value {
            serde_json::to_value(PlanRow::view(self)).unwrap_or_default()
        }
    }
}

/// An RFC 5545 recurrence as received: checked by [`Recurrence::parse`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecurrenceText(String);

impl Validate for RecurrenceText {
    fn validate(&self) -> Result<(), validator::ValidationErrors> {
        let refused = |message: String| {
            let mut errors = validator::ValidationErrors::new();
            errors.add(
                "__all__",
                validator::ValidationError::new("rrule").with_message(message.into()),
            );
            errors
        };
        if self.0.chars().count() > 2000 {
            return Err(refused("must be at most 2000 characters".into()));
        }
        Recurrence::parse(&self.0).map(|_| ()).map_err(refused)
    }
}

impl utoipa::PartialSchema for RecurrenceText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::kit::input::text_schema(1, 2000)
            .format(Some(utoipa::openapi::SchemaFormat::Custom("rrule".into())))
            .description(Some(
                "RFC 5545: one `DTSTART;TZID=<IANA zone>:<local time>` line (a time that exists \
                 exactly once in the zone), one `RRULE` repeating daily or less often, any \
                 `EXDATE` lines, separated by newlines.",
            ))
            .examples([
                "DTSTART;TZID=Asia/Shanghai:20261207T100000\nRRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=10",
            ])
            .into()
    }
}

impl utoipa::ToSchema for RecurrenceText {}

/// Body of `POST /visit-plans`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlan {
    pub customer_id: CustomerId,
    /// Default: the caller (an agent plans only their own).
    pub owner_id: Option<UserId>,
    #[validate(nested)]
    pub rrule: RecurrenceText,
    #[validate(nested)]
    pub duration_minutes: Whole<5, 1440>,
    pub purpose: Purpose,
    pub method: Method,
    #[validate(nested)]
    pub reason: Text<1, 2000>,
    #[validate(nested)]
    pub agenda: Option<Text<0, 5000>>,
}

/// Body of `PATCH /visit-plans/{id}` (the whole series) and of `/split` (this and
/// following). Occurrences already changed one by one keep their changes.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PlanPatch {
    pub owner_id: Option<UserId>,
    #[validate(nested)]
    pub rrule: Option<RecurrenceText>,
    #[validate(nested)]
    pub duration_minutes: Option<Whole<5, 1440>>,
    pub purpose: Option<Purpose>,
    pub method: Option<Method>,
    #[validate(nested)]
    pub reason: Option<Text<1, 2000>>,
    #[validate(nested)]
    #[schema(nullable)]
    pub agenda: Field<Text<0, 5000>>,
}

/// Body of `POST /visit-plans/{id}/split`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitRequest {
    /// The original start (`occurrence_at`) of the first occurrence of the new series.
    pub from: DateTime<Utc>,
    /// What changes from there on (with no `rrule`, the rule continues as it was).
    #[validate(nested)]
    #[serde(default)]
    pub changes: PlanPatch,
}

/// Filters of `GET /visit-plans`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlanFilters {
    pub customer_id: Option<CustomerId>,
    pub owner_id: Option<UserId>,
}

/// Plans each occurrence of `plans` starting in `[from, until)` (and after each plan's own
/// horizon so far) as a visit, skipping those already planned, with a `visit.planned` event
/// each; records the new horizon. Returns how many visits were planned.
pub async fn materialise(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    plans: &mut [PlanRow],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> ApiResult<usize> {
    let now = Utc::now();
    let mut records: Vec<VisitRecord> = Vec::new();
    // How far each plan is planned now: the horizon, or, when the per-run cap cut its
    // occurrences short, just past the last one planned (the next run resumes there).
    let mut reached: Vec<(PlanId, DateTime<Utc>)> = Vec::new();
    for plan in plans.iter_mut() {
        let start = plan.materialised_until.map_or(from, |m| m.max(from));
        let length = Duration::minutes(i64::from(plan.duration_minutes));
        let occurrences = plan.recurrence()?.between(start, until, MAX_PER_PLAN);
        let horizon = match occurrences.last() {
            Some(last) if occurrences.len() == MAX_PER_PLAN => *last + Duration::seconds(1),
            _ => until,
        };
        for at in occurrences {
            records.push(occurrence(plan, at, length, now));
        }
        reached.push((plan.id, horizon));
        plan.materialised_until = Some(horizon);
    }
    // One statement for all: the plan's columns are joined in by PostgreSQL, so only three
    // arrays travel (a row-per-parameter insert spent more time parsing and binding its tens
    // of thousands of parameters than inserting).
    let planned: Vec<VisitId> = diesel::sql_query(
        "INSERT INTO visits (id, customer_id, owner_id, plan_id, occurrence_at, scheduled_start, \
             scheduled_end, purpose, method, agenda, reason, status, created_at, updated_at) \
         SELECT o.id, p.customer_id, p.owner_id, p.id, o.at, o.at, \
                o.at + make_interval(mins => p.duration_minutes), p.purpose, p.method, p.agenda, \
                p.reason, 'planned', $4, $4 \
         FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) AS o (id, plan_id, at) \
         JOIN visit_plans p ON p.id = o.plan_id \
         ON CONFLICT (plan_id, occurrence_at) DO NOTHING RETURNING id",
    )
    .bind::<Array<SqlUuid>, _>(records.iter().map(|r| r.row.id.get()).collect::<Vec<_>>())
    .bind::<Array<SqlUuid>, _>(
        records
            .iter()
            .filter_map(|r| r.row.plan_id.map(PlanId::get))
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Timestamptz>, _>(
        records
            .iter()
            .map(|r| r.row.scheduled_start)
            .collect::<Vec<_>>(),
    )
    .bind::<Timestamptz, _>(now)
    .load::<Inserted>(conn)
    .await?
    .into_iter()
    .map(|i| VisitId::from(i.id))
    .collect();
    let kept: std::collections::HashSet<VisitId> = planned.iter().copied().collect();
    let new_events: Vec<Message> = records
        .iter()
        .filter(|r| kept.contains(&r.row.id))
        .map(|r| Message {
            event_type: format!("{}.{}", VisitRecord::KIND, PLANNED.event),
            subject: Subject {
                entity_type: VisitRecord::KIND,
                entity_id: r.row.id.get(),
                customer_id: Some(r.row.customer_id),
            },
            actor: writer.actor(),
            data: serde_json::to_value(r.view()).unwrap_or_default(),
        })
        .collect();
    outbox::record_many(conn, new_events).await?;
    diesel::sql_query(
        "UPDATE visit_plans p SET materialised_until = r.until \
         FROM unnest($1::uuid[], $2::timestamptz[]) AS r (id, until) WHERE p.id = r.id",
    )
    .bind::<Array<SqlUuid>, _>(reached.iter().map(|(id, _)| id.get()).collect::<Vec<_>>())
    .bind::<Array<Timestamptz>, _>(reached.iter().map(|(_, at)| *at).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    let mut customers: Vec<CustomerId> = plans.iter().map(|p| p.customer_id).collect();
    customers.sort();
    customers.dedup();
    refresh_due(conn, &customers).await?;
    Ok(planned.len())
}

/// The planned visit of one occurrence.
fn occurrence(
    plan: &PlanRow,
    at: DateTime<Utc>,
    length: Duration,
    now: DateTime<Utc>,
) -> VisitRecord {
    let planned = Planned {
        customer_id: plan.customer_id,
        owner_id: plan.owner_id,
        scheduled_start: at,
        scheduled_end: at + length,
        purpose: plan.purpose,
        method: plan.method,
        reason: plan.reason.clone(),
        agenda: plan.agenda.clone(),
        participants: Vec::new(),
        complaint_id: None,
        location: None,
        coordinates: None,
    };
    VisitRecord {
        row: VisitRow::planned(planned, Some((plan.id, at)), now),
        follow_ups: Vec::new(),
    }
}

/// Removes the plan's occurrences from `from` on that nobody has touched (still planned,
/// never changed), each announced as `visit.deleted`: a changed series plans them anew.
async fn withdraw(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    plan: &PlanRow,
    from: DateTime<Utc>,
) -> ApiResult<()> {
    let gone: Vec<(VisitId, CustomerId)> = diesel::delete(
        visits::table
            .filter(visits::plan_id.eq(plan.id))
            .filter(visits::occurrence_at.ge(from))
            .filter(visits::status.eq(Status::Planned))
            .filter(visits::version.eq(1)),
    )
    .returning((visits::id, visits::customer_id))
    .get_results(conn)
    .await?;
    for (id, customer) in gone {
        Occurrence {
            subject: Subject {
                entity_type: VisitRecord::KIND,
                entity_id: id.get(),
                customer_id: Some(customer),
            },
            event_type: format!("{}.deleted", VisitRecord::KIND),
            audit_action: "deleted",
        }
        .record(
            conn,
            writer,
            json!({"plan_changed": plan.id}),
            json!({"id": id}),
        )
        .await?;
    }
    Ok(())
}

/// The plan after `patch`, its owner checked.
async fn patched(
    conn: &mut AsyncPgConnection,
    mut plan: PlanRow,
    patch: PlanPatch,
) -> ApiResult<PlanRow> {
    if let Some(owner) = patch.owner_id {
        ensure_active(conn, "owner_id", owner).await?;
        plan.owner_id = owner;
    }
    if let Some(rule) = patch.rrule {
        plan.recurrence = Recurrence::parse(&rule.0)
            .map_err(|e| ApiError::invalid("rrule", "rrule", e))?
            .text()
            .to_owned();
    }
    plan.duration_minutes = patch
        .duration_minutes
        .map_or(plan.duration_minutes, |d| d.get() as i32);
    plan.purpose = patch.purpose.unwrap_or(plan.purpose);
    plan.method = patch.method.unwrap_or(plan.method);
    if let Some(reason) = patch.reason {
        plan.reason = reason.into_inner();
    }
    plan.agenda = patch
        .agenda
        .map_value(Text::into_inner)
        .apply(plan.agenda.take());
    Ok(plan)
}

fn respond(plan: &PlanRow) -> HttpResponse {
    versioned(StatusCode::OK, &plan.view(), plan.version)
}

/// Plan recurring visits. The occurrences within the horizon are planned at once, in the same
/// transaction; a job keeps the horizon rolling.
#[utoipa::path(
    tag = "visit-plans",
    request_body(content = NewPlan, example = json!({
        "customer_id": "0192f0c1-7a2b-7c3d-8e4f-5a6b7c8d9e0f",
        "rrule": "DTSTART;TZID=Asia/Shanghai:20261207T100000\nRRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=10",
        "duration_minutes": 60, "purpose": "relationship_maintenance", "method": "in_person",
        "reason": "Key account: weekly review"
    })),
    responses(
        (status = 201, description = "Planned", body = Plan, headers(("Location" = String), ("ETag" = String))),
        (status = 409, description = "The customer or owner does not exist", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/visit-plans")]
async fn create(
    caller: Authorized<VisitsWrite>,
    settings: web::Data<VisitSettings>,
    mut conn: DbConn,
    body: ValidJson<NewPlan>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let owner = b
        .owner_id
        .or_else(|| caller.principal.user_id())
        .ok_or_else(|| ApiError::rule("owner_id", "required", "an API key must name the owner"))?;
    let horizon = settings.horizon;
    let writer = Writer::of(&caller.principal);
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            crate::customers::api::find_referenced(conn, b.customer_id).await?;
            ensure_active(conn, "owner_id", owner).await?;
            let now = Utc::now();
            let recurrence = Recurrence::parse(&b.rrule.0)
                .map_err(|e| ApiError::invalid("rrule", "rrule", e))?;
            let plan = PlanRow {
                id: PlanId::new(),
                customer_id: b.customer_id,
                owner_id: owner,
                recurrence: recurrence.text().to_owned(),
                duration_minutes: b.duration_minutes.get() as i32,
                purpose: b.purpose,
                method: b.method,
                reason: b.reason.into_inner(),
                agenda: present(b.agenda),
                split_from: None,
                materialised_until: None,
                version: 1,
                created_at: now,
                updated_at: now,
                deleted_at: None,
            };
            let mut plan = write::create(conn, &writer, plan, Action::CREATED).await?;
            materialise(
                conn,
                &writer,
                std::slice::from_mut(&mut plan),
                now,
                now + horizon,
            )
            .await?;
            Ok(plan)
        })
        .await?;
    Ok(created_in("visit-plans", &saved))
}

#[derive(Serialize, Deserialize)]
struct PlanCursor(DateTime<Utc>, PlanId);

/// List live plans, newest first.
#[utoipa::path(tag = "visit-plans", params(PageParams, PlanFilters), responses((status = 200, body = Page<Plan>)))]
#[get("/visit-plans")]
async fn list(
    _: Authorized<VisitsRead>,
    mut conn: DbConn,
    page: Query<PageParams>,
    filters: Query<PlanFilters>,
) -> ApiResult<web::Json<Page<Plan>>> {
    let window = page.window::<PlanCursor>()?;
    let mut query = visit_plans::table
        .filter(visit_plans::deleted_at.is_null())
        .select(PlanRow::as_select())
        .order((visit_plans::created_at.desc(), visit_plans::id.desc()))
        .limit(window.fetch())
        .into_boxed();
    if let Some(PlanCursor(at, id)) = &window.after {
        query = query.filter(older_than(
            visit_plans::created_at,
            visit_plans::id,
            (*at, id.get()),
        ));
    }
    if let Some(customer) = filters.customer_id {
        query = query.filter(visit_plans::customer_id.eq(customer));
    }
    if let Some(owner) = filters.owner_id {
        query = query.filter(visit_plans::owner_id.eq(owner));
    }
    let rows = query.load(&mut conn).await?;
    Ok(web::Json(
        window
            .page(rows, |p| PlanCursor(p.created_at, p.id))
            .map(|p| p.view()),
    ))
}

/// Get a plan.
#[utoipa::path(tag = "visit-plans", responses((status = 200, body = Plan, headers(("ETag" = String)))))]
#[get("/visit-plans/{id}")]
async fn get_one(
    _: Authorized<VisitsRead>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let plan = write::live::<PlanRow>(&mut conn, PlanId::from(*id)).await?;
    Ok(respond(&plan))
}

/// Change the whole series: its untouched future occurrences are planned anew; occurrences
/// changed one by one keep their changes.
#[utoipa::path(tag = "visit-plans", request_body = PlanPatch, responses((status = 200, body = Plan, headers(("ETag" = String)))))]
#[patch("/visit-plans/{id}")]
async fn update(
    caller: Authorized<VisitsWrite>,
    settings: web::Data<VisitSettings>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<PlanPatch>,
) -> ApiResult<HttpResponse> {
    let p = body.0;
    let horizon = settings.horizon;
    let writer = Writer::of(&caller.principal);
    let id = PlanId::from(*id);
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let now = Utc::now();
            let (mut saved, ()) = write::change(
                conn,
                &writer,
                id,
                &if_match,
                Action::UPDATED,
                async |conn, after: &mut PlanRow| {
                    let before = after.clone();
                    *after = patched(conn, before.clone(), p).await?;
                    after.materialised_until = None;
                    // The old series' untouched future occurrences go; they are planned anew
                    // below, from the changed series.
                    withdraw(conn, &writer, &before, now).await
                },
            )
            .await?;
            materialise(
                conn,
                &writer,
                std::slice::from_mut(&mut saved),
                now,
                now + horizon,
            )
            .await?;
            Ok(saved)
        })
        .await?;
    Ok(respond(&saved))
}

/// Change this occurrence and the following ones: the series ends before `from` and a new
/// one, with the changes, starts there (a `COUNT` is shared out between the two). Answers
/// the new series.
#[utoipa::path(
    tag = "visit-plans",
    request_body = SplitRequest,
    responses(
        (status = 201, description = "The new series", body = Plan, headers(("Location" = String), ("ETag" = String))),
        (status = 409, description = "No occurrence starts at `from`, or it is the first (change the whole series instead)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/visit-plans/{id}/split")]
async fn split(
    caller: Authorized<VisitsWrite>,
    settings: web::Data<VisitSettings>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<SplitRequest>,
) -> ApiResult<HttpResponse> {
    let SplitRequest { from, changes } = body.0;
    let horizon = settings.horizon;
    let writer = Writer::of(&caller.principal);
    let id = PlanId::from(*id);
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let now = Utc::now();
            // The old series ends before `from`; its untouched occurrences from there go.
            let (ended, new) = write::change(
                conn,
                &writer,
                id,
                &if_match,
                Action::UPDATED,
                async |conn, ended: &mut PlanRow| {
                    let (old, new) = ended.recurrence()?.split(from).ok_or_else(|| {
                        ApiError::rule(
                            "from",
                            "no_occurrence",
                            "no occurrence after the first starts at this time",
                        )
                    })?;
                    withdraw(conn, &writer, ended, from).await?;
                    ended.recurrence = old.text().to_owned();
                    Ok(new)
                },
            )
            .await?;
            let mut next = ended.clone();
            next.id = PlanId::new();
            next.recurrence = new.text().to_owned();
            next.split_from = Some(ended.id);
            next.materialised_until = None;
            next.version = 1;
            next.created_at = now;
            next.updated_at = now;
            let next = patched(conn, next, changes).await?;
            let mut next = write::create(conn, &writer, next, Action::CREATED).await?;
            // Occurrences from `from` on that were changed one by one belong to the new series
            // (which then skips planning them again).
            diesel::update(
                visits::table
                    .filter(visits::plan_id.eq(ended.id))
                    .filter(visits::occurrence_at.ge(from)),
            )
            .set(visits::plan_id.eq(next.id))
            .execute(conn)
            .await?;
            materialise(
                conn,
                &writer,
                std::slice::from_mut(&mut next),
                now,
                now + horizon,
            )
            .await?;
            Ok(next)
        })
        .await?;
    Ok(created_in("visit-plans", &saved))
}

/// End a plan: its untouched future occurrences are removed; visits already worked stay.
#[utoipa::path(tag = "visit-plans", responses((status = 204, description = "Ended")))]
#[delete("/visit-plans/{id}")]
async fn remove(
    caller: Authorized<VisitsWrite>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&caller.principal);
    let id = PlanId::from(*id);
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let locked = write::lock::<PlanRow>(conn, &writer, id, &if_match).await?;
        withdraw(conn, &writer, locked.row(), Utc::now()).await?;
        let customer = locked.row().customer_id;
        write::soft_delete(conn, &writer, locked).await?;
        refresh_due(conn, &[customer]).await
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
