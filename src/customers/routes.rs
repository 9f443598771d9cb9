//! `/api/v1/customers`: the customer file over HTTP.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use super::fields::{BatchItem, CustomerFields, CustomerPatch, NewCustomer};
use super::queries::{self, CustomerCursor, ListFilters, Sort, UpsertOutcome};
use super::{Customer, CustomerRow, Level, Stage, Tier};
use super::{merging, personal_data};
use crate::auth::{Authorized, CustomersRead, CustomersWrite};
use crate::db::DbConn;
use crate::db::shared_reads::SharedRead;
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::http::etag::{IfMatch, created, versioned};
use crate::http::json::{self as json_body, ValidJson, Validated};
use crate::http::pagination::{Page, PageParams};
use crate::http::query::{Query, search_schema, search_term};
use crate::kit::audit::{self, AuditEntry};
use crate::kit::documents::CustomerExport;
use crate::kit::ids::{CustomerId, UserId};
use crate::kit::input::Items;
use crate::kit::registry::{self, Registry, TimelineEntry};
use crate::kit::write::Writer;

crate::routes!(
    list, create, batch, merge, get_one, update, remove, timeline, history, export, erase
);

/// Filters and order of `GET /customers`. Custom attributes filter as `attr.<name>=<value>`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomerQuery {
    /// Case-insensitive text found in the name, company, e-mails or phones.
    #[param(schema_with = search_term_schema)]
    pub q: Option<String>,
    pub level: Option<Level>,
    pub tier: Option<Tier>,
    /// Lifecycle stage.
    pub stage: Option<Stage>,
    pub owner_id: Option<UserId>,
    pub region: Option<String>,
    pub tag: Option<String>,
    /// Customers whose birthday falls in this month.
    #[param(schema_with = month_schema)]
    pub birthday_month: Option<i32>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// A field to sort by (`created_at`, `updated_at`, `name`, `total_spent` or
    /// `last_purchase_at`); prefix `-` for descending. Default `-created_at`.
    #[param(schema_with = sort_schema)]
    pub sort: Option<String>,
}

/// The months `birthday_month` names.
const MONTHS: std::ops::RangeInclusive<i32> = 1..=12;

/// The schema of `q`.
fn search_term_schema() -> utoipa::openapi::schema::Schema {
    search_schema("Case-insensitive text found in the name, company, e-mails or phones.")
}

/// The schema of `birthday_month`, from the range the handler checks.
fn month_schema() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Int32,
        )))
        .minimum(Some(*MONTHS.start()))
        .maximum(Some(*MONTHS.end()))
        .description(Some("Customers whose birthday falls in this month."))
        .into()
}

/// The schema of `sort`: the documented fields, each also with a leading `-`.
fn sort_schema() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(format!("^-?({})$", Sort::FIELDS.join("|"))))
        .examples(["-total_spent"])
        .description(Some(format!(
            "A field to sort by ({}); prefix `-` for descending. Default `-created_at`.",
            Sort::FIELDS.join(", ")
        )))
        .into()
}

impl CustomerQuery {
    fn filters(&self, raw_query: &str) -> ApiResult<ListFilters> {
        search_term(self.q.as_deref())?;
        if self.birthday_month.is_some_and(|m| !MONTHS.contains(&m)) {
            return Err(ApiError::BadRequest(format!(
                "birthday_month must be between {} and {}",
                MONTHS.start(),
                MONTHS.end()
            )));
        }
        let pairs: Vec<(String, String)> = crate::http::query::parse(raw_query)?;
        let mut attributes = Vec::new();
        for (key, value) in pairs {
            if let Some(name) = key.strip_prefix("attr.") {
                if !super::fields::is_attribute_name(name) {
                    return Err(ApiError::BadRequest(format!(
                        "`{key}` is not a valid attribute filter"
                    )));
                }
                attributes.push((name.to_owned(), value));
            }
        }
        Ok(ListFilters {
            q: self.q.clone(),
            level: self.level,
            tier: self.tier,
            stage: self.stage,
            owner_id: self.owner_id,
            region: self.region.clone(),
            tag: self.tag.clone(),
            birthday_month: self.birthday_month,
            created_after: self.created_after,
            created_before: self.created_before,
            attributes,
        })
    }
}

/// `200 OK` with the customer and its ETag.
fn customer_ok(row: CustomerRow) -> HttpResponse {
    let version = row.version;
    versioned(StatusCode::OK, &Customer::from(row), version)
}

/// List live customers with filters, search and sort.
#[utoipa::path(
    tag = "customers",
    params(PageParams, CustomerQuery),
    responses((status = 200, body = Page<Customer>))
)]
#[get("/customers")]
async fn list(
    _: Authorized<CustomersRead>,
    mut conn: DbConn,
    req: HttpRequest,
    page: Query<PageParams>,
    query: Query<CustomerQuery>,
) -> ApiResult<web::Json<Page<Customer>>> {
    let window = page.window::<CustomerCursor>()?;
    let sort = query
        .sort
        .as_deref()
        .map(Sort::parse)
        .transpose()?
        .unwrap_or_default();
    let filters = query.filters(req.query_string())?;
    let rows = queries::list_statement(&filters, sort, window.after.as_ref(), window.fetch())?
        .load(&mut conn)
        .await?;
    Ok(web::Json(
        window
            .page(rows, |row| CustomerCursor::after(sort, row))
            .map(Customer::from),
    ))
}

/// Create a customer. Agents become its owner.
#[utoipa::path(
    tag = "customers",
    request_body(content = NewCustomer, example = json!({
        "display_name": "Wang Li", "phones": ["+86 138 0013 8000"], "emails": ["li.wang@example.com"],
        "company": "Huaxin Trading", "level": "registered", "tags": ["vip"], "attributes": {"shoe_size": 42},
        "source": "webshop", "external_ref": "C-10045", "consents": {"email": true}
    })),
    responses(
        (status = 201, body = Customer, headers(("Location" = String), ("ETag" = String))),
        (status = 409, description = "source and external_ref already used, or owner_id / referred_by name no active user / live customer", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/customers")]
async fn create(
    caller: Authorized<CustomersWrite>,
    mut conn: DbConn,
    body: ValidJson<CustomerFields>,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&caller.principal);
    let fields = body.0;
    let row = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            queries::insert_new(conn, &writer, fields).await
        })
        .await?;
    let (location, version) = (format!("/api/v1/customers/{}", row.id), row.version);
    Ok(created(location, &Customer::from(row), version))
}

/// Body of `POST /customers/batch`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// Customers, each with `source` and `external_ref`.
    #[validate(nested)]
    pub items: Items<RawBatchItem, 1, 500>,
}

/// One batch item as received. Items are parsed and checked one by one once the whole batch
/// is read ([`batch_items`]), so that the errors of every item are named together.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct RawBatchItem(Value);

impl Validate for RawBatchItem {
    fn validate(&self) -> Result<(), validator::ValidationErrors> {
        Ok(())
    }
}

impl utoipa::PartialSchema for RawBatchItem {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        BatchItem::schema()
    }
}

impl ToSchema for RawBatchItem {
    fn name() -> std::borrow::Cow<'static, str> {
        BatchItem::name()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        BatchItem::schemas(schemas);
    }
}

/// What happened to one item, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    /// `created`, `updated` or `error`.
    #[schema(example = "created")]
    pub status: &'static str,
    pub id: Option<CustomerId>,
    /// Why the item failed.
    pub problem: Option<Problem>,
}

/// Response of `POST /customers/batch`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    pub results: Vec<BatchResult>,
}

/// Upsert up to 500 customers by `(source, external_ref)`. A malformed item refuses the whole
/// batch (`422`, fields named `items[i].field`); otherwise each item commits or fails on its
/// own (a conflict with stored data) and the response lists every item's outcome.
#[utoipa::path(tag = "customers", request_body = BatchRequest, responses((status = 200, body = BatchResponse)))]
#[post("/customers/batch")]
async fn batch(
    caller: Authorized<CustomersWrite>,
    mut conn: DbConn,
    body: ValidJson<BatchRequest, true>,
) -> ApiResult<web::Json<BatchResponse>> {
    let writer = Writer::of(&caller.principal);
    let items = batch_items(body.0.items)?;
    let mut results = Vec::with_capacity(items.len());
    for fields in items {
        let writer = &writer;
        let outcome = conn
            .transaction::<_, ApiError, _>(async move |conn| {
                queries::upsert_by_reference(conn, writer, fields).await
            })
            .await;
        results.push(match outcome {
            Ok((UpsertOutcome::Created, row)) => BatchResult {
                status: "created",
                id: Some(row.id),
                problem: None,
            },
            Ok((UpsertOutcome::Updated, row)) => BatchResult {
                status: "updated",
                id: Some(row.id),
                problem: None,
            },
            Err(ApiError::Unavailable(detail)) => return Err(ApiError::Unavailable(detail)),
            Err(error) => BatchResult {
                status: "error",
                id: None,
                problem: Some(error.problem()),
            },
        });
    }
    Ok(web::Json(BatchResponse { results }))
}

/// Parses and validates every batch item before any is written: a malformed item refuses the
/// whole batch with `422` naming `items[i].field`, so only outcomes that depend on stored
/// data are reported per item.
fn batch_items(items: Items<RawBatchItem, 1, 500>) -> ApiResult<Vec<CustomerFields>> {
    let mut errors = Vec::new();
    let items = items.into_inner();
    let mut parsed = Vec::with_capacity(items.len());
    for (i, RawBatchItem(item)) in items.into_iter().enumerate() {
        let fields = json_body::parse::<CustomerFields>(item.to_string().as_bytes())
            .and_then(|f| f.validated().map_err(ApiError::Validation));
        let item_errors = match fields {
            Ok(fields)
                if fields.source.value().is_some() && fields.external_ref.value().is_some() =>
            {
                parsed.push(fields);
                continue;
            }
            Ok(_) => vec![FieldError::new(
                "external_ref",
                "required",
                "source and external_ref identify the customer to upsert",
            )],
            Err(ApiError::Validation(item_errors)) => item_errors,
            Err(other) => vec![FieldError::new("body", "invalid", other.problem().detail)],
        };
        let parent = format!("items[{i}]");
        errors.extend(item_errors.into_iter().map(|e| e.within(&parent)));
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Body of `POST /customers/merge`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The customer that remains.
    pub survivor_id: CustomerId,
    /// The customer folded into the survivor and then deleted.
    pub duplicate_id: CustomerId,
}

/// Fold a duplicate into a survivor: its orders and everything else attached move over,
/// gaps in the survivor are filled from it, and it is deleted with a pointer to the survivor.
#[utoipa::path(
    tag = "customers",
    request_body = MergeRequest,
    responses(
        (status = 200, description = "The survivor after the merge", body = Customer, headers(("ETag" = String))),
        (status = 404, description = "The survivor or the duplicate is not a live customer (the detail names which)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "survivor_id and duplicate_id name the same customer", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/customers/merge")]
async fn merge(
    caller: Authorized<CustomersWrite>,
    mut conn: DbConn,
    registry: web::Data<Registry>,
    body: ValidJson<MergeRequest>,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&caller.principal);
    let MergeRequest {
        survivor_id,
        duplicate_id,
    } = body.0;
    let row = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            merging::merge(conn, &registry, &writer, survivor_id, duplicate_id).await
        })
        .await?;
    Ok(customer_ok(row))
}

/// Get a customer.
#[utoipa::path(
    tag = "customers",
    responses(
        (status = 200, body = Customer, headers(("ETag" = String))),
        (status = 404, description = "No such customer (or deleted, or merged away)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/customers/{id}")]
async fn get_one(
    _: Authorized<CustomersRead>,
    read: SharedRead,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let id = CustomerId::from(*id);
    let row = read
        .run(async |conn| queries::find_live(conn, id).await)
        .await?;
    Ok(customer_ok(row))
}

/// Change a customer (merge patch: absent fields stay, `null` clears).
#[utoipa::path(
    tag = "customers",
    request_body = CustomerPatch,
    responses(
        (status = 200, body = Customer, headers(("ETag" = String))),
        (status = 409, description = "source and external_ref already used; owner_id / referred_by name no active user / live customer; or the changed customer would break a rule between fields given what is stored (churned without churn_reason, source without external_ref, referring to itself)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/customers/{id}")]
async fn update(
    caller: Authorized<CustomersWrite>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<CustomerFields>,
) -> ApiResult<HttpResponse> {
    let (writer, id, fields) = (Writer::of(&caller.principal), CustomerId::from(*id), body.0);
    let row = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            queries::patch(conn, &writer, id, &if_match, fields).await
        })
        .await?;
    Ok(customer_ok(row))
}

/// Delete a customer (soft: kept for orders and history, gone from lists and reads).
#[utoipa::path(
    tag = "customers",
    responses(
        (status = 204, description = "Deleted"),
    )
)]
#[delete("/customers/{id}")]
async fn remove(
    caller: Authorized<CustomersWrite>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let (writer, id) = (Writer::of(&caller.principal), CustomerId::from(*id));
    conn.transaction::<_, ApiError, _>(async move |conn| {
        queries::soft_delete(conn, &writer, id, &if_match).await
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, Deserialize)]
struct EventCursor(DateTime<Utc>, Uuid);

/// Everything that happened with a customer — orders and changes now, and what later
/// domains attach — merged, newest first.
#[utoipa::path(
    tag = "customers",
    params(PageParams),
    responses(
        (status = 200, body = Page<TimelineEntry>),
    )
)]
#[get("/customers/{id}/timeline")]
async fn timeline(
    _: Authorized<CustomersRead>,
    mut conn: DbConn,
    registry: web::Data<Registry>,
    id: web::Path<Uuid>,
    page: Query<PageParams>,
) -> ApiResult<web::Json<Page<TimelineEntry>>> {
    let id = CustomerId::from(*id);
    let window = page.window::<EventCursor>()?;
    let before = window.after.as_ref().map(|EventCursor(at, id)| (*at, *id));
    queries::find_live(&conn, id).await?;
    let mut lists = Vec::new();
    for timeline in registry.timelines() {
        lists.push((timeline.source)(&mut conn, id, before, window.fetch()).await?);
    }
    let entries = registry::merge_newest_first(lists, window.fetch() as usize);
    Ok(web::Json(window.page(entries, |e| EventCursor(e.at, e.id))))
}

/// The audit history of a customer, newest first.
#[utoipa::path(
    tag = "customers",
    params(PageParams),
    responses(
        (status = 200, body = Page<AuditEntry>),
    )
)]
#[get("/customers/{id}/history")]
async fn history(
    _: Authorized<CustomersRead>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    page: Query<PageParams>,
) -> ApiResult<web::Json<Page<AuditEntry>>> {
    let id = CustomerId::from(*id);
    let window = page.window::<EventCursor>()?;
    let before = window.after.as_ref().map(|EventCursor(at, id)| (*at, *id));
    queries::find_live(&conn, id).await?;
    let entries = audit::for_customer(&mut conn, id, before, window.fetch()).await?;
    Ok(web::Json(
        window.page(entries, |e| EventCursor(e.created_at, e.id)),
    ))
}

/// Everything held on a customer as one JSON document (data-subject access request).
#[utoipa::path(
    tag = "customers",
    responses(
        (status = 200, description = "The customer and every domain's section", body = CustomerExport),
    )
)]
#[get("/customers/{id}/export")]
async fn export(
    _: Authorized<CustomersRead>,
    mut conn: DbConn,
    registry: web::Data<Registry>,
    id: web::Path<Uuid>,
) -> ApiResult<web::Json<Value>> {
    Ok(web::Json(
        personal_data::export(&mut conn, &registry, CustomerId::from(*id)).await?,
    ))
}

/// Erase a customer's personal data: replaced by placeholders here and in the history,
/// orders and figures kept. Irreversible; recorded with who and when.
#[utoipa::path(
    tag = "customers",
    responses(
        (status = 200, body = Customer, headers(("ETag" = String))),
        (status = 409, description = "Already erased", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/customers/{id}/erase")]
async fn erase(
    caller: Authorized<CustomersWrite>,
    mut conn: DbConn,
    registry: web::Data<Registry>,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let (writer, id) = (Writer::of(&caller.principal), CustomerId::from(*id));
    let row = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            personal_data::erase(conn, &registry, &writer, id).await
        })
        .await?;
    Ok(customer_ok(row))
}
