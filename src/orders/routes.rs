//! `/api/v1/orders`: shops and staff record orders; status changes keep figures right.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{IntoParams, PartialSchema, ToSchema};
use validator::Validate;

use super::{
    Order, OrderLine, OrderRecord, OrderRow, OrderStatus, lines_of, recompute_figures, with_lines,
};
use crate::auth::{Authorized, OrdersRead, OrdersWrite};
use crate::customers::api::{self as customers, CustomerRow, ReferencedCustomer};
use crate::db::keyset::older_than;
use crate::db::schema::orders;
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::etag::{IfMatch, created, versioned};
use crate::http::json::ValidJson;
use crate::http::pagination::{Page, PageParams};
use crate::http::query::Query;
use crate::kit::input::{ensure_within, happened_by};
use uuid::Uuid;

/// 1900-01-01T00:00:00Z, the earliest `ordered_at` accepted, in seconds since the epoch.
const EARLIEST_ORDER_SECONDS: i64 = -2_208_988_800;

use crate::kit::ids::{CustomerId, OrderId};
use crate::kit::input::{Currency, Email, Items, Phone, Text, Whole, present};
use crate::kit::registry::Registry;
use crate::kit::write::{self, Action, Writer};

crate::routes!(create, list, get_one, update);

/// The customer of a new order: an existing one by `id`, or by the shop's own reference
/// (`source` with `external_ref`), in which case a `registered` customer is created when none
/// exists yet.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[validate(schema(function = "one_customer_reference"))]
pub struct OrderCustomer {
    pub id: Option<CustomerId>,
    #[validate(nested)]
    pub source: Option<Text<1, 50>>,
    #[validate(nested)]
    pub external_ref: Option<Text<1, 200>>,
    /// Used only when the customer is created (checked always).
    #[validate(nested)]
    pub display_name: Option<Text<1, 200>>,
    /// Used only when the customer is created (checked always).
    #[validate(nested)]
    pub email: Option<Email>,
    /// Used only when the customer is created (checked always); international format, as
    /// customers' phones.
    #[validate(nested)]
    pub phone: Option<Phone>,
}

/// One line of a new order.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrderLine {
    #[validate(nested)]
    pub sku: Text<1, 100>,
    #[validate(nested)]
    pub name: Text<1, 200>,
    #[validate(nested)]
    pub category: Option<Text<0, 100>>,
    /// Size or specification.
    #[validate(nested)]
    pub spec: Option<Text<0, 100>>,
    #[validate(nested)]
    pub colour: Option<Text<0, 50>>,
    #[validate(nested)]
    pub quantity: Whole<1, 100_000>,
    /// Up to 10^10 minor units, so an order's sum cannot overflow.
    #[validate(nested)]
    pub unit_price_minor: Whole<0, 10_000_000_000>,
}

impl NewOrderLine {
    /// The stored line `line_no` of order `order_id`.
    fn into_line(self, order_id: OrderId, line_no: i32) -> OrderLine {
        OrderLine {
            order_id,
            line_no,
            sku: self.sku.into_inner(),
            name: self.name.into_inner(),
            category: present(self.category),
            spec: present(self.spec),
            colour: present(self.colour),
            // Within the type's limits, so the conversion holds.
            quantity: self.quantity.get() as i32,
            unit_price_minor: self.unit_price_minor.get(),
        }
    }

    /// What the line costs: bounded by the limits (100,000 × 10^10), so it cannot overflow.
    fn amount_minor(&self) -> i64 {
        self.quantity.get() * self.unit_price_minor.get()
    }
}

/// The largest amount an order may state, in minor units (10^15: ten trillion in major
/// units), so that a customer's figures, which add orders up, stay far from overflowing.
const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000_000;

/// Body of `POST /orders`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    /// The system the order comes from; with `external_id` it identifies the order, so a
    /// repeat is recognised and not counted twice.
    #[validate(nested)]
    pub source: Text<1, 50>,
    #[validate(nested)]
    pub external_id: Text<1, 200>,
    #[validate(nested)]
    #[schema(schema_with = order_customer_schema)]
    pub customer: OrderCustomer,
    /// Default `placed`.
    pub status: Option<OrderStatus>,
    /// ISO 4217, upper case.
    #[validate(nested)]
    pub currency: Currency,
    #[validate(nested)]
    pub lines: Items<NewOrderLine, 1, 500>,
    #[validate(nested)]
    pub discount_minor: Option<Whole<0, { MAX_AMOUNT_MINOR }>>,
    #[validate(nested)]
    pub shipping_minor: Option<Whole<0, { MAX_AMOUNT_MINOR }>>,
    /// What the customer paid, as the shop computed it (taxes, rounding and vouchers
    /// included); it is what the customer's figures add up.
    #[validate(nested)]
    pub total_minor: Whole<0, { MAX_AMOUNT_MINOR }>,
    /// Not in the future (five minutes of clock skew are allowed).
    pub ordered_at: DateTime<Utc>,
}

/// `customer` of a new order, as one of two shapes: `id` alone, or `source` with
/// `external_ref` (and what a new customer starts with). The fields keep the limits
/// `OrderCustomer` declares; the identifying ones are required and never `null` here.
fn order_customer_schema() -> Schema {
    let RefOr::T(Schema::Object(all)) = OrderCustomer::schema() else {
        unreachable!("a derived struct schema is an object")
    };
    let shape = |fields: &[&str], identifying: &[&str]| {
        fields.iter().fold(
            ObjectBuilder::new().additional_properties(Some(AdditionalProperties::FreeForm(false))),
            |shape, name| {
                let field = all.properties[*name].clone();
                if identifying.contains(name) {
                    shape.property(*name, never_null(field)).required(*name)
                } else {
                    shape.property(*name, field)
                }
            },
        )
    };
    OneOfBuilder::new()
        .description(all.description.clone())
        .item(shape(&["id"], &["id"]))
        .item(shape(
            &["source", "external_ref", "display_name", "email", "phone"],
            &["source", "external_ref"],
        ))
        .into()
}

/// An optional field's schema without its `null`: a string for `type: [string, null]`, the
/// other branch of `oneOf: [X, null]`.
fn never_null(field: RefOr<Schema>) -> RefOr<Schema> {
    match field {
        RefOr::T(Schema::Object(mut object)) => {
            object.schema_type = Type::String.into();
            RefOr::T(Schema::Object(object))
        }
        RefOr::T(Schema::OneOf(one_of)) => one_of
            .items
            .iter()
            .find(|item| !matches!(item, RefOr::T(Schema::Object(o)) if o.schema_type == Type::Null.into()))
            .cloned()
            .unwrap_or(RefOr::T(Schema::OneOf(one_of))),
        other => other,
    }
}

/// `id` alone, or `source` with `external_ref`: the rule `order_customer_schema` states.
fn one_customer_reference(who: &OrderCustomer) -> Result<(), validator::ValidationError> {
    match (&who.id, &who.source, &who.external_ref) {
        (Some(_), None, None) | (None, Some(_), Some(_)) => Ok(()),
        _ => Err(validator::ValidationError::new("required").with_message(
            "give either customer.id, or customer.source with customer.external_ref".into(),
        )),
    }
}

/// Body of `PATCH /orders/{id}`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderPatch {
    /// placed → paid | cancelled; paid → fulfilled | refunded | cancelled; fulfilled → refunded.
    pub status: OrderStatus,
}

/// Filters of `GET /orders`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderFilters {
    pub customer_id: Option<CustomerId>,
    pub source: Option<String>,
    pub status: Option<OrderStatus>,
    /// Orders placed at or after this time.
    pub ordered_after: Option<DateTime<Utc>>,
    /// Orders placed before this time.
    pub ordered_before: Option<DateTime<Utc>>,
}

#[derive(Serialize, Deserialize)]
struct OrderCursor(DateTime<Utc>, OrderId);

/// Record an order. A repeat of a known `(source, external_id)` returns the recorded order
/// with `200` and changes nothing.
#[utoipa::path(
    tag = "orders",
    request_body(content = NewOrder, example = json!({
        "source": "webshop", "external_id": "10045",
        "customer": {"source": "webshop", "external_ref": "C-10045", "display_name": "Wang Li", "email": "li.wang@example.com"},
        "status": "paid", "currency": "CNY", "total_minor": 12500, "ordered_at": "2026-11-20T09:30:00Z",
        "lines": [{"sku": "SH-4021-42", "name": "Leather loafer", "category": "shoes", "spec": "EU 42", "colour": "brown", "quantity": 1, "unit_price_minor": 12500}]
    })),
    responses(
        (status = 201, description = "Recorded", body = Order, headers(("Location" = String), ("ETag" = String))),
        (status = 200, description = "Already recorded: the existing order", body = Order, headers(("ETag" = String))),
        (status = 409, description = "customer.id names no live customer, or the customer's figures are kept in another currency", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/orders")]
async fn create(
    caller: Authorized<OrdersWrite>,
    mut conn: DbConn,
    registry: web::Data<Registry>,
    body: ValidJson<NewOrder>,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&caller.principal);
    let order = body.0;
    let (OrderRecord { row, lines }, is_new) = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            record(conn, &writer, &registry, order).await
        })
        .await?;
    let version = row.version;
    let view = Order::new(&row, lines);
    if is_new {
        Ok(created(
            format!("/api/v1/orders/{}", row.id),
            &view,
            version,
        ))
    } else {
        Ok(versioned(StatusCode::OK, &view, version))
    }
}

async fn record(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    registry: &Registry,
    order: NewOrder,
) -> ApiResult<(OrderRecord, bool)> {
    let (source, external_id) = (order.source.into_inner(), order.external_id.into_inner());
    db::lock_key(conn, &format!("order\n{source}\n{external_id}")).await?;
    let existing: Option<OrderRow> = orders::table
        .filter(orders::source.eq(&source))
        .filter(orders::external_id.eq(&external_id))
        .select(OrderRow::as_select())
        .first(conn)
        .await
        .optional()?;
    if let Some(row) = existing {
        let lines = lines_of(conn, &[row.id])
            .await?
            .remove(&row.id)
            .unwrap_or_default();
        return Ok((OrderRecord { row, lines }, false));
    }
    // Bounded by the line limits (500 × 100,000 × 10^10 < 2^63), so it cannot overflow.
    let subtotal: i64 = order.lines.iter().map(NewOrderLine::amount_minor).sum();
    // History imported from a shop goes back decades, not centuries: 1900-01-01 at the earliest.
    let earliest = DateTime::from_timestamp(EARLIEST_ORDER_SECONDS, 0).unwrap_or_default();
    ensure_within("ordered_at", order.ordered_at, earliest, happened_by())?;
    let customer = resolve_customer(conn, writer, order.customer).await?;
    let status = order.status.unwrap_or(OrderStatus::Placed);
    let currency = order.currency.into_inner();
    let counted_elsewhere =
        customer.order_count > 0 && customer.currency.as_deref() != Some(currency.as_str());
    if counted_elsewhere && status.counted() {
        return Err(ApiError::rule(
            "currency",
            "currency",
            format!(
                "this customer's figures are kept in {}",
                customer.currency.unwrap_or_default()
            ),
        ));
    }
    let id = OrderId::new();
    let now = Utc::now();
    let lines = order
        .lines
        .into_inner()
        .into_iter()
        .zip(1..)
        .map(|(line, line_no)| line.into_line(id, line_no))
        .collect();
    let new = OrderRecord {
        row: OrderRow {
            id,
            source,
            external_id,
            customer_id: customer.id,
            status,
            currency,
            subtotal_minor: subtotal,
            discount_minor: order.discount_minor.map_or(0, Whole::get),
            shipping_minor: order.shipping_minor.map_or(0, Whole::get),
            total_minor: order.total_minor.get(),
            ordered_at: order.ordered_at,
            version: 1,
            created_at: now,
            updated_at: now,
        },
        lines,
    };
    let saved = write::create(conn, writer, new, Action::CREATED).await?;
    recompute_figures(conn, writer, customer).await?;
    registry
        .order_changed(conn, writer, &saved.facts(), false, status.counted())
        .await?;
    Ok((saved, true))
}

/// The order's customer, locked; created as `registered` when named by an unknown reference.
async fn resolve_customer(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    who: OrderCustomer,
) -> ApiResult<CustomerRow> {
    match (who.id, who.source, who.external_ref) {
        (Some(id), None, None) => customers::lock_live(conn, id).await.map_err(|e| match e {
            ApiError::NotFound(_) => ApiError::rule("customer.id", "not_found", "no such customer"),
            other => other,
        }),
        (None, Some(source), Some(external_ref)) => {
            let named = ReferencedCustomer {
                source: source.into_inner(),
                external_ref: external_ref.into_inner(),
                display_name: who.display_name.map(Text::into_inner),
                email: who.email.map(Email::into_inner),
                phone: who.phone.map(Phone::into_inner),
            };
            customers::lock_or_create(conn, writer, named, "customer").await
        }
        // `one_customer_reference` refused every other shape when the body was read.
        _ => Err(ApiError::invalid(
            "customer",
            "required",
            "give either customer.id, or customer.source with customer.external_ref",
        )),
    }
}

/// List orders, newest first.
#[utoipa::path(tag = "orders", params(PageParams, OrderFilters), responses((status = 200, body = Page<Order>)))]
#[get("/orders")]
async fn list(
    _: Authorized<OrdersRead>,
    mut conn: DbConn,
    page: Query<PageParams>,
    filters: Query<OrderFilters>,
) -> ApiResult<web::Json<Page<Order>>> {
    let window = page.window::<OrderCursor>()?;
    let mut query = orders::table
        .select(OrderRow::as_select())
        .order((orders::ordered_at.desc(), orders::id.desc()))
        .limit(window.fetch())
        .into_boxed();
    if let Some(OrderCursor(at, id)) = window.after {
        query = query.filter(older_than(orders::ordered_at, orders::id, (at, id.get())));
    }
    if let Some(customer) = filters.customer_id {
        query = query.filter(orders::customer_id.eq(customer));
    }
    if let Some(source) = &filters.source {
        query = query.filter(orders::source.eq(source.clone()));
    }
    if let Some(status) = filters.status {
        query = query.filter(orders::status.eq(status.as_str()));
    }
    if let Some(after) = filters.ordered_after {
        query = query.filter(orders::ordered_at.ge(after));
    }
    if let Some(before) = filters.ordered_before {
        query = query.filter(orders::ordered_at.lt(before));
    }
    let rows = query.load(&mut conn).await?;
    let page = window.page(rows, |o| OrderCursor(o.ordered_at, o.id));
    let data = with_lines(&mut conn, &page.data).await?;
    Ok(web::Json(Page {
        data,
        next_cursor: page.next_cursor,
    }))
}

/// Get an order with its lines.
#[utoipa::path(
    tag = "orders",
    responses(
        (status = 200, body = Order, headers(("ETag" = String))),
    )
)]
#[get("/orders/{id}")]
async fn get_one(
    _: Authorized<OrdersRead>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let row: OrderRow = orders::table
        .find(OrderId::from(*id))
        .select(OrderRow::as_select())
        .first(&mut conn)
        .await?;
    let order = with_lines(&mut conn, std::slice::from_ref(&row))
        .await?
        .remove(0);
    Ok(versioned(StatusCode::OK, &order, row.version))
}

/// Change an order's status; the customer's figures follow in the same transaction.
#[utoipa::path(
    tag = "orders",
    request_body = OrderPatch,
    responses(
        (status = 200, body = Order, headers(("ETag" = String))),
        (status = 409, description = "The status cannot make this move", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/orders/{id}")]
async fn update(
    caller: Authorized<OrdersWrite>,
    mut conn: DbConn,
    registry: web::Data<Registry>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<OrderPatch>,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&caller.principal);
    let (id, next) = (OrderId::from(*id), body.0.status);
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let (saved, moved) = write::change(
                conn,
                &writer,
                id,
                &if_match,
                STATUS_CHANGED,
                async |conn, changed: &mut OrderRecord| {
                    let status = changed.row.status;
                    if status == next {
                        return Ok(None);
                    }
                    if !status.may_become(next) {
                        return Err(ApiError::Conflict(format!(
                            "an order that is {status} cannot become {next}"
                        )));
                    }
                    // The customer is locked after the order, before the save, as every
                    // order write does.
                    let customer = customers::lock_row(conn, changed.row.customer_id).await?;
                    changed.row.status = next;
                    Ok(Some((customer, status)))
                },
            )
            .await?;
            // In the same transaction: the figures and the other domains follow the move.
            if let Some((customer, was)) = moved {
                recompute_figures(conn, &writer, customer).await?;
                registry
                    .order_changed(conn, &writer, &saved.facts(), was.counted(), next.counted())
                    .await?;
            }
            Ok(saved)
        })
        .await?;
    let version = saved.row.version;
    Ok(versioned(
        StatusCode::OK,
        &Order::new(&saved.row, saved.lines),
        version,
    ))
}

/// A change of an order's status.
const STATUS_CHANGED: Action = Action::named("status_changed", "updated");
