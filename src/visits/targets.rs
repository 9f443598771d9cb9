//! Visit targets (`/visit-targets`): how many visits a person — or, with no owner, everyone
//! by default — should make per day, week or month, in all and by method ("7 + 3": seven in
//! person and three by phone a day). Boards and the visits report compare against them.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use crate::auth::{Authorized, VisitsManage, VisitsRead};
use crate::db::DbConn;
use crate::db::schema::visit_targets;
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::etag::IfMatch;
use crate::http::json::ValidJson;
use crate::http::query::Query;
use crate::http::timestamps::timestamp;
use crate::kit::ids::{TargetId, UserId};
use crate::kit::input::Whole;
use crate::kit::write::{self, Action, Versioned, Writer, created_in, current};
use crate::text_enum;
use crate::users::ensure_active;

crate::routes!(list, create, get_one, update, remove);

text_enum! {
    /// The period a target counts over.
    pub enum TargetPeriod { Day = "day", Week = "week", Month = "month" }
}

/// Visits per method within a target (each optional: no target for that method).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MethodCounts {
    #[validate(nested)]
    pub in_person: Option<Whole<0, 10_000>>,
    #[validate(nested)]
    pub phone: Option<Whole<0, 10_000>>,
    #[validate(nested)]
    pub video: Option<Whole<0, 10_000>>,
    #[validate(nested)]
    pub email: Option<Whole<0, 10_000>>,
    #[validate(nested)]
    pub message: Option<Whole<0, 10_000>>,
}

/// A visit target.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = visit_targets)]
pub struct Target {
    pub id: TargetId,
    /// `null`: everyone's default, where a person has no target of their own.
    pub owner_id: Option<UserId>,
    pub period: TargetPeriod,
    /// Visits in all.
    #[schema(example = 10)]
    pub total: i32,
    /// Visits by method: `{"in_person": 7, "phone": 3}`.
    #[schema(value_type = MethodCounts)]
    pub by_method: Value,
    #[serde(skip)]
    pub version: i64,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

impl Versioned for Target {
    const KIND: &'static str = "visit_target";
    type Id = TargetId;

    crate::versioned_columns!(id: id, version: version, updated_at: updated_at);

    async fn lock(conn: &mut AsyncPgConnection, id: TargetId) -> ApiResult<Self> {
        Ok(visit_targets::table
            .find(id)
            .select(Target::as_select())
            .for_update()
            .first(conn)
            .await?)
    }

    async fn insert(&self, conn: &mut AsyncPgConnection) -> ApiResult<Self> {
        diesel::insert_into(visit_targets::table)
            .values((
                visit_targets::id.eq(self.id),
                visit_targets::owner_id.eq(self.owner_id),
                visit_targets::period.eq(self.period),
                visit_targets::total.eq(self.total),
                visit_targets::by_method.eq(&self.by_method),
            ))
            .returning(Target::as_returning())
            .get_result(conn)
            .await
            .map_err(|e| match ApiError::from(e) {
                ApiError::Conflict(_) => ApiError::Conflict(
                    "there is a target for this owner and period already: change it instead".into(),
                ),
                other => other,
            })
    }

    async fn update(&self, conn: &mut AsyncPgConnection) -> ApiResult<Self> {
        Ok(diesel::update(visit_targets::table.find(self.id))
            .set((
                visit_targets::total.eq(self.total),
                visit_targets::by_method.eq(&self.by_method),
                visit_targets::version.eq(self.version),
                visit_targets::updated_at.eq(self.updated_at),
            ))
            .returning(Target::as_returning())
            .get_result(conn)
            .await?)
    }

    async fn delete(&self, conn: &mut AsyncPgConnection) -> ApiResult<()> {
        diesel::delete(visit_targets::table.find(self.id))
            .execute(conn)
            .await?;
        Ok(())
    }
}

impl Target {
    /// The target for one method, if set.
    pub fn for_method(&self, method: super::Method) -> Option<i64> {
        self.by_method.get(method.as_str()).and_then(Value::as_i64)
    }
}

/// The target that applies to `owner` for `period`: their own, else everyone's default.
/// (On a shared connection reference, so that a board sends it with its other reads.)
pub async fn applying(
    mut conn: &AsyncPgConnection,
    owner: UserId,
    period: TargetPeriod,
) -> ApiResult<Option<Target>> {
    let mut targets: Vec<Target> = visit_targets::table
        .filter(visit_targets::period.eq(period))
        .filter(
            visit_targets::owner_id
                .eq(owner)
                .or(visit_targets::owner_id.is_null()),
        )
        .select(Target::as_select())
        .load(&mut conn)
        .await?;
    targets.sort_by_key(|t| t.owner_id.is_none());
    Ok(targets.into_iter().next())
}

/// Body of `POST /visit-targets`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTarget {
    /// Whose target; absent for everyone's default.
    pub owner_id: Option<UserId>,
    pub period: TargetPeriod,
    #[validate(nested)]
    pub total: Whole<0, 10_000>,
    #[validate(nested)]
    pub by_method: Option<MethodCounts>,
}

/// Body of `PATCH /visit-targets/{id}`.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TargetPatch {
    #[validate(nested)]
    pub total: Option<Whole<0, 10_000>>,
    /// Replaces the counts by method.
    #[validate(nested)]
    pub by_method: Option<MethodCounts>,
}

/// Filters of `GET /visit-targets`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TargetFilters {
    /// This person's targets (not the defaults).
    pub owner_id: Option<UserId>,
}

/// Every target (a short list: one per person and period at most).
#[utoipa::path(tag = "visit-targets", params(TargetFilters), responses((status = 200, body = Vec<Target>)))]
#[get("/visit-targets")]
async fn list(
    _: Authorized<VisitsRead>,
    mut conn: DbConn,
    filters: Query<TargetFilters>,
) -> ApiResult<web::Json<Vec<Target>>> {
    let mut query = visit_targets::table
        .select(Target::as_select())
        .order((
            visit_targets::owner_id.asc().nulls_first(),
            visit_targets::period,
            visit_targets::id,
        ))
        .into_boxed();
    if let Some(owner) = filters.owner_id {
        query = query.filter(visit_targets::owner_id.eq(owner));
    }
    Ok(web::Json(query.load(&mut conn).await?))
}

fn counts(by_method: Option<MethodCounts>) -> ApiResult<Value> {
    serde_json::to_value(by_method.unwrap_or_default())
        .map(|v| match v {
            Value::Object(map) => {
                Value::Object(map.into_iter().filter(|(_, n)| !n.is_null()).collect())
            }
            other => other,
        })
        .map_err(ApiError::internal)
}

/// Set a target; one per person (or default) and period.
#[utoipa::path(
    tag = "visit-targets",
    request_body(content = NewTarget, example = json!({"period": "day", "total": 10, "by_method": {"in_person": 7, "phone": 3}})),
    responses(
        (status = 201, body = Target, headers(("Location" = String), ("ETag" = String))),
        (status = 409, description = "A target for this owner and period exists, or no such user", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/visit-targets")]
async fn create(
    caller: Authorized<VisitsManage>,
    mut conn: DbConn,
    body: ValidJson<NewTarget>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let writer = Writer::of(&caller.principal);
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            if let Some(owner) = b.owner_id {
                ensure_active(conn, "owner_id", owner).await?;
            }
            let now = Utc::now();
            let target = Target {
                id: TargetId::new(),
                owner_id: b.owner_id,
                period: b.period,
                total: b.total.get() as i32,
                by_method: counts(b.by_method)?,
                version: 1,
                created_at: now,
                updated_at: now,
            };
            write::create(conn, &writer, target, Action::CREATED).await
        })
        .await?;
    Ok(created_in("visit-targets", &saved))
}

/// Get a target.
#[utoipa::path(tag = "visit-targets", responses((status = 200, body = Target, headers(("ETag" = String)))))]
#[get("/visit-targets/{id}")]
async fn get_one(
    _: Authorized<VisitsRead>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let target: Target = visit_targets::table
        .find(TargetId::from(*id))
        .select(Target::as_select())
        .first(&mut conn)
        .await?;
    Ok(current(&target))
}

/// Change a target.
#[utoipa::path(tag = "visit-targets", request_body = TargetPatch, responses((status = 200, body = Target, headers(("ETag" = String)))))]
#[patch("/visit-targets/{id}")]
async fn update(
    caller: Authorized<VisitsManage>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<TargetPatch>,
) -> ApiResult<HttpResponse> {
    let p = body.0;
    let writer = Writer::of(&caller.principal);
    let id = TargetId::from(*id);
    let (saved, ()) = write::change(
        &mut conn,
        &writer,
        id,
        &if_match,
        Action::UPDATED,
        async |_, after: &mut Target| {
            after.total = p.total.map_or(after.total, |t| t.get() as i32);
            if p.by_method.is_some() {
                after.by_method = counts(p.by_method)?;
            }
            Ok(())
        },
    )
    .await?;
    Ok(current(&saved))
}

/// Remove a target.
#[utoipa::path(tag = "visit-targets", responses((status = 204, description = "Removed")))]
#[delete("/visit-targets/{id}")]
async fn remove(
    caller: Authorized<VisitsManage>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&caller.principal);
    let id = TargetId::from(*id);
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let locked = write::lock::<Target>(conn, &writer, id, &if_match).await?;
        write::delete(conn, &writer, locked).await
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
