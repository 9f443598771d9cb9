//! `/api/v1/answers`: the library of standard answers (Q&A) to frequent complaints, so that
//! every employee says the same thing. Managers keep it; everyone reads and searches it;
//! citing an answer in a comment counts a use.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Duration, Utc};
use diesel::dsl::{count_star, sql};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use crate::auth::{Authorized, ComplaintsManage, ComplaintsRead};
use crate::db::keyset::page_in;
use crate::db::schema::{answer_uses, answers};
use crate::db::{DbConn, like_pattern};
use crate::error::ApiResult;
use crate::http::etag::{IfMatch, versioned};
use crate::http::json::ValidJson;
use crate::http::pagination::{Page, PageParams};
use crate::http::query::{Query, search_schema, search_term};
use crate::http::sorting::{CreationOrder, SortOrder, SortedCursor};
use crate::kit::ids::AnswerId;
use crate::kit::input::{Items, Text};
use crate::kit::write::{self, Action, Writer, created_in};

crate::routes!(create, list, get_one, update, remove);

/// An answer row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = answers, treat_none_as_null = true)]
pub struct AnswerRow {
    pub id: AnswerId,
    pub question: String,
    pub answer: String,
    pub category: String,
    pub tags: Vec<String>,
    /// Counted by citations, not by edits: the audit leaves it out.
    #[serde(skip)]
    pub use_count: i64,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A standard answer as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Answer {
    pub id: AnswerId,
    #[schema(example = "My sole came off within a month")]
    pub question: String,
    #[schema(example = "We replace the pair at once and check the batch with the supplier.")]
    pub answer: String,
    #[schema(example = "product_quality")]
    pub category: String,
    pub tags: Vec<String>,
    /// Citations in comments, ever.
    pub use_count: i64,
    /// Citations in the last 7 days.
    pub uses_7d: i64,
    /// Citations in the last 30 days.
    pub uses_30d: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl AnswerRow {
    fn view(&self, uses: (i64, i64)) -> Answer {
        Answer {
            id: self.id,
            question: self.question.clone(),
            answer: self.answer.clone(),
            category: self.category.clone(),
            tags: self.tags.clone(),
            use_count: self.use_count,
            uses_7d: uses.0,
            uses_30d: uses.1,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// The 7- and 30-day use counts of these answers.
async fn recent_uses(
    conn: &mut AsyncPgConnection,
    ids: &[AnswerId],
) -> ApiResult<std::collections::HashMap<AnswerId, (i64, i64)>> {
    let now = Utc::now();
    let week = now - Duration::days(7);
    let rows: Vec<(AnswerId, i64, i64)> = answer_uses::table
        .filter(answer_uses::answer_id.eq_any(ids))
        .filter(answer_uses::used_at.ge(now - Duration::days(30)))
        .group_by(answer_uses::answer_id)
        .select((
            answer_uses::answer_id,
            sql::<BigInt>("count(*) FILTER (WHERE used_at >= ")
                .bind::<diesel::sql_types::Timestamptz, _>(week)
                .sql(")"),
            count_star(),
        ))
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|(id, w, m)| (id, (w, m))).collect())
}

async fn views(conn: &mut AsyncPgConnection, rows: &[AnswerRow]) -> ApiResult<Vec<Answer>> {
    let ids: Vec<AnswerId> = rows.iter().map(|r| r.id).collect();
    let uses = recent_uses(conn, &ids).await?;
    Ok(rows
        .iter()
        .map(|r| r.view(uses.get(&r.id).copied().unwrap_or_default()))
        .collect())
}

crate::soft_deleted_row! {
    impl Versioned for AnswerRow in answers {
        const KIND: &'static str = "answer";
        type Id = AnswerId;

        fn view(&self) -> Value {
            serde_json::to_value(AnswerRow::view(self, (0, 0))).unwrap_or_default()
        }
    }
}

/// Body of `POST /answers`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAnswer {
    #[validate(nested)]
    pub question: Text<1, 1000>,
    #[validate(nested)]
    pub answer: Text<1, 10000>,
    /// A complaint category or any grouping the library uses.
    #[validate(nested)]
    pub category: Text<1, 100>,
    #[validate(nested)]
    pub tags: Option<Items<Text<1, 50>, 0, 20>>,
}

/// Body of `PATCH /answers/{id}`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerPatch {
    #[validate(nested)]
    pub question: Option<Text<1, 1000>>,
    #[validate(nested)]
    pub answer: Option<Text<1, 10000>>,
    #[validate(nested)]
    pub category: Option<Text<1, 100>>,
    #[validate(nested)]
    pub tags: Option<Items<Text<1, 50>, 0, 20>>,
}

fn tags(given: Option<Items<Text<1, 50>, 0, 20>>) -> Vec<String> {
    let mut tags: Vec<String> = given
        .map(Items::into_inner)
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.into_inner().to_lowercase())
        .collect();
    tags.sort_unstable();
    tags.dedup();
    tags
}

/// Filters of `GET /answers`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnswerFilters {
    /// Words in the question or the answer.
    #[param(schema_with = q_schema)]
    pub q: Option<String>,
    pub category: Option<String>,
    pub tag: Option<String>,
    /// The order: `-created_at` (newest first, the default) or `created_at` (oldest first).
    pub sort: Option<CreationOrder>,
}

fn q_schema() -> utoipa::openapi::schema::Schema {
    search_schema("Case-insensitive words in the question or the answer")
}

/// Add a standard answer.
#[utoipa::path(
    tag = "answers",
    request_body(content = NewAnswer, example = json!({
        "question": "My sole came off within a month", "answer": "We replace the pair at once and check the batch with the supplier.",
        "category": "product_quality", "tags": ["shoes", "soles"]
    })),
    responses((status = 201, description = "Added", body = Answer, headers(("Location" = String), ("ETag" = String))))
)]
#[post("/answers")]
async fn create(
    caller: Authorized<ComplaintsManage>,
    mut conn: DbConn,
    body: ValidJson<NewAnswer>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let now = Utc::now();
    let row = AnswerRow {
        id: AnswerId::new(),
        question: b.question.into_inner(),
        answer: b.answer.into_inner(),
        category: b.category.into_inner(),
        tags: tags(b.tags),
        use_count: 0,
        version: 1,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    let saved = write::create_single(&mut conn, &Writer::of(&caller.principal), row).await?;
    Ok(created_in("answers", &saved))
}

/// The key of the last answer served: when it was written, and its id.
type AnswerCursor = SortedCursor<CreationOrder, (DateTime<Utc>, AnswerId)>;

/// Search the standard answers, newest first unless `sort` says otherwise.
#[utoipa::path(tag = "answers", params(PageParams, AnswerFilters), responses((status = 200, body = Page<Answer>)))]
#[get("/answers")]
async fn list(
    _: Authorized<ComplaintsRead>,
    mut conn: DbConn,
    page: Query<PageParams>,
    filters: Query<AnswerFilters>,
) -> ApiResult<web::Json<Page<Answer>>> {
    let sort = filters.sort.unwrap_or_default();
    let window = page.window::<AnswerCursor>()?;
    let mut query = page_in(
        answers::table
            .filter(answers::deleted_at.is_null())
            .select(AnswerRow::as_select())
            .limit(window.fetch())
            .into_boxed(),
        (answers::created_at, answers::id),
        window.after_in(sort)?.map(|(at, id)| (at, id.get())),
        sort.direction(),
    );
    if let Some(q) = search_term(filters.q.as_deref())? {
        query = query.filter(answers::search.like(like_pattern(q)));
    }
    if let Some(category) = &filters.category {
        query = query.filter(answers::category.eq(category.clone()));
    }
    if let Some(tag) = &filters.tag {
        query = query.filter(answers::tags.contains(vec![tag.to_lowercase()]));
    }
    let rows = query.load(&mut conn).await?;
    let page = window.page(rows, |a| SortedCursor(sort, (a.created_at, a.id)));
    let data = views(&mut conn, &page.data).await?;
    Ok(web::Json(Page {
        data,
        next_cursor: page.next_cursor,
    }))
}

/// Get a standard answer with its use counts.
#[utoipa::path(tag = "answers", responses((status = 200, body = Answer, headers(("ETag" = String)))))]
#[get("/answers/{id}")]
async fn get_one(
    _: Authorized<ComplaintsRead>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let row = write::live::<AnswerRow>(&mut conn, AnswerId::from(*id)).await?;
    let view = views(&mut conn, std::slice::from_ref(&row))
        .await?
        .remove(0);
    Ok(versioned(StatusCode::OK, &view, row.version))
}

/// Change a standard answer.
#[utoipa::path(tag = "answers", request_body = AnswerPatch, responses((status = 200, body = Answer, headers(("ETag" = String)))))]
#[patch("/answers/{id}")]
async fn update(
    caller: Authorized<ComplaintsManage>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<AnswerPatch>,
) -> ApiResult<HttpResponse> {
    let p = body.0;
    let writer = Writer::of(&caller.principal);
    let id = AnswerId::from(*id);
    let (saved, ()) = write::change(
        &mut conn,
        &writer,
        id,
        &if_match,
        Action::UPDATED,
        async |_, after: &mut AnswerRow| {
            if let Some(q) = p.question {
                after.question = q.into_inner();
            }
            if let Some(a) = p.answer {
                after.answer = a.into_inner();
            }
            if let Some(c) = p.category {
                after.category = c.into_inner();
            }
            if p.tags.is_some() {
                after.tags = tags(p.tags);
            }
            Ok(())
        },
    )
    .await?;
    let view = views(&mut conn, std::slice::from_ref(&saved))
        .await?
        .remove(0);
    Ok(versioned(StatusCode::OK, &view, saved.version))
}

/// Withdraw a standard answer (comments that cited it keep the reference).
#[utoipa::path(tag = "answers", responses((status = 204, description = "Withdrawn")))]
#[delete("/answers/{id}")]
async fn remove(
    caller: Authorized<ComplaintsManage>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&caller.principal);
    write::remove_single::<AnswerRow>(&mut conn, &writer, AnswerId::from(*id), &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}
