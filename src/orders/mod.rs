//! The transaction file (成交档案): orders pushed by shops and staff. Recording, cancelling
//! or refunding an order updates its customer's value figures in the same transaction.

pub mod routes;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::audit::{self, Actor, Subject};
use crate::customers::attached::{TimelineCursor, TimelineEntry};
use crate::customers::{CustomerRow, Level, Money};
use crate::db::keyset::older_than;
use crate::db::schema::{customers, order_lines, orders};
use crate::text_enum;

text_enum! {
    /// Where an order stands. Paid and fulfilled orders count in the customer's figures.
    pub enum OrderStatus {
        Placed = "placed",
        Paid = "paid",
        Fulfilled = "fulfilled",
        Cancelled = "cancelled",
        Refunded = "refunded",
    }
}

impl OrderStatus {
    /// Statuses whose orders count as purchases.
    pub const COUNTED: [&'static str; 2] = ["paid", "fulfilled"];

    /// The moves an order may make.
    pub fn may_become(self, next: Self) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Placed, Paid | Cancelled)
                | (Paid, Fulfilled | Refunded | Cancelled)
                | (Fulfilled, Refunded)
        )
    }
}

/// An order row.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = orders)]
pub struct OrderRow {
    pub id: Uuid,
    pub source: String,
    pub external_id: String,
    pub customer_id: Uuid,
    pub status: String,
    pub currency: String,
    pub subtotal_minor: i64,
    pub discount_minor: i64,
    pub shipping_minor: i64,
    pub total_minor: i64,
    pub ordered_at: DateTime<Utc>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One line of an order: what was bought, in which size and colour, at what price.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Serialize,
    Deserialize,
    Validate,
    ToSchema,
    Queryable,
    Selectable,
    Insertable,
)]
#[diesel(table_name = order_lines)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    #[serde(skip)]
    pub order_id: Uuid,
    #[serde(skip)]
    pub line_no: i32,
    #[validate(length(min = 1, max = 100))]
    #[schema(min_length = 1, max_length = 100, example = "SH-4021-42")]
    pub sku: String,
    #[validate(length(min = 1, max = 200))]
    #[schema(min_length = 1, max_length = 200, example = "Leather loafer")]
    pub name: String,
    #[validate(length(max = 100))]
    #[schema(max_length = 100, example = "shoes")]
    pub category: Option<String>,
    /// Size or specification.
    #[validate(length(max = 100))]
    #[schema(max_length = 100, example = "EU 42")]
    pub spec: Option<String>,
    #[validate(length(max = 50))]
    #[schema(max_length = 50, example = "brown")]
    pub colour: Option<String>,
    #[validate(range(min = 1, max = 100_000))]
    #[schema(minimum = 1, maximum = 100_000, example = 1)]
    #[serde(deserialize_with = "crate::http::json::whole_number")]
    pub quantity: i32,
    /// Up to 10^10 minor units, so an order's sum cannot overflow.
    #[validate(range(min = 0, max = 10_000_000_000i64))]
    #[schema(minimum = 0, maximum = 10_000_000_000i64, example = 12500)]
    #[serde(deserialize_with = "crate::http::json::whole_number")]
    pub unit_price_minor: i64,
}

/// An order as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Order {
    pub id: Uuid,
    #[schema(example = "webshop")]
    pub source: String,
    #[schema(example = "10045")]
    pub external_id: String,
    pub customer_id: Uuid,
    pub status: OrderStatus,
    pub lines: Vec<OrderLine>,
    pub subtotal: Money,
    pub discount: Money,
    pub shipping: Money,
    pub total: Money,
    pub ordered_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Order {
    /// The view of a row and its lines.
    pub fn new(row: &OrderRow, lines: Vec<OrderLine>) -> Self {
        let money = |amount_minor| Money {
            amount_minor,
            currency: row.currency.clone(),
        };
        Self {
            id: row.id,
            source: row.source.clone(),
            external_id: row.external_id.clone(),
            customer_id: row.customer_id,
            status: OrderStatus::from_column(&row.status),
            lines,
            subtotal: money(row.subtotal_minor),
            discount: money(row.discount_minor),
            shipping: money(row.shipping_minor),
            total: money(row.total_minor),
            ordered_at: row.ordered_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// The lines of several orders, by order.
pub async fn lines_of(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> QueryResult<HashMap<Uuid, Vec<OrderLine>>> {
    let lines: Vec<OrderLine> = order_lines::table
        .filter(order_lines::order_id.eq_any(ids))
        .order((order_lines::order_id, order_lines::line_no))
        .select(OrderLine::as_select())
        .load(conn)
        .await?;
    let mut by_order: HashMap<Uuid, Vec<OrderLine>> = HashMap::new();
    for line in lines {
        by_order.entry(line.order_id).or_default().push(line);
    }
    Ok(by_order)
}

/// Orders with their lines.
pub async fn with_lines(
    conn: &mut AsyncPgConnection,
    rows: &[OrderRow],
) -> QueryResult<Vec<Order>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut lines = lines_of(conn, &ids).await?;
    Ok(rows
        .iter()
        .map(|r| Order::new(r, lines.remove(&r.id).unwrap_or_default()))
        .collect())
}

#[derive(QueryableByName)]
struct Figures {
    #[diesel(sql_type = Integer)]
    order_count: i32,
    #[diesel(sql_type = BigInt)]
    total_minor: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    first_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    currency: Option<String>,
}

/// Recomputes a customer's value figures from their counted orders (so a replay, a refund or
/// a merge can never double-count), moves a first-time buyer up to `active`, and records
/// the change in the audit log. The caller holds the customer's row lock.
pub async fn recompute_figures(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    customer: &CustomerRow,
) -> QueryResult<CustomerRow> {
    let figures: Figures = diesel::sql_query(
        "SELECT count(*)::int AS order_count, coalesce(sum(total_minor), 0)::bigint AS total_minor, \
         min(ordered_at) AS first_at, max(ordered_at) AS last_at, min(currency) AS currency \
         FROM orders WHERE customer_id = $1 AND status IN ('paid', 'fulfilled')",
    )
    .bind::<diesel::sql_types::Uuid, _>(customer.id)
    .get_result(conn)
    .await?;
    let mut after = customer.clone();
    after.order_count = figures.order_count;
    after.total_spent_minor = figures.total_minor;
    after.first_purchase_at = figures.first_at;
    after.last_purchase_at = figures.last_at;
    after.currency = figures.currency.or(after.currency);
    let first_time_buyer = [Level::Potential, Level::Prospect, Level::Registered]
        .iter()
        .any(|l| l.as_str() == after.level);
    if figures.order_count > 0 && first_time_buyer {
        after.level = Level::Active.as_str().to_owned();
    }
    let before = serde_json::to_value(customer).unwrap_or_default();
    let changes = audit::diff(
        Some(&before),
        &serde_json::to_value(&after).unwrap_or_default(),
    );
    if changes.as_object().is_none_or(|c| c.is_empty()) {
        return Ok(after);
    }
    // Only the figures change: update those columns alone (no rewrite of the whole card).
    let saved: CustomerRow = diesel::update(customers::table.find(customer.id))
        .set((
            customers::order_count.eq(after.order_count),
            customers::total_spent_minor.eq(after.total_spent_minor),
            customers::first_purchase_at.eq(after.first_purchase_at),
            customers::last_purchase_at.eq(after.last_purchase_at),
            customers::currency.eq(&after.currency),
            customers::level.eq(&after.level),
            customers::version.eq(customers::version + 1),
            customers::updated_at.eq(Utc::now()),
        ))
        .returning(CustomerRow::as_returning())
        .get_result(conn)
        .await?;
    let subject = Subject {
        entity_type: "customer",
        entity_id: customer.id,
        customer_id: Some(customer.id),
    };
    audit::record(conn, actor, subject, "figures_updated", changes).await?;
    Ok(saved)
}

/// Timeline source: the customer's orders.
pub fn timeline<'c>(
    conn: &'c mut AsyncPgConnection,
    customer: Uuid,
    before: TimelineCursor,
    limit: i64,
) -> BoxFuture<'c, QueryResult<Vec<TimelineEntry>>> {
    Box::pin(async move {
        let mut query = orders::table
            .filter(orders::customer_id.eq(customer))
            .select(OrderRow::as_select())
            .order((orders::ordered_at.desc(), orders::id.desc()))
            .limit(limit)
            .into_boxed();
        if let Some(cursor) = before {
            query = query.filter(older_than(orders::ordered_at, orders::id, cursor));
        }
        let rows = query.load(conn).await?;
        Ok(rows
            .into_iter()
            .map(|o| TimelineEntry {
                at: o.ordered_at,
                kind: "order".into(),
                id: o.id,
                summary: format!(
                    "Order {} from {}: {}.{:02} {}, {}",
                    o.external_id,
                    o.source,
                    o.total_minor / 100,
                    o.total_minor % 100,
                    o.currency,
                    o.status
                ),
                data: serde_json::json!({
                    "source": o.source, "external_id": o.external_id, "status": o.status,
                    "total": {"amount_minor": o.total_minor, "currency": o.currency},
                }),
            })
            .collect())
    })
}

/// Merge step: the duplicate's orders move to the survivor.
pub fn move_to_survivor<'c>(
    conn: &'c mut AsyncPgConnection,
    survivor: Uuid,
    duplicate: Uuid,
) -> BoxFuture<'c, QueryResult<()>> {
    Box::pin(async move {
        diesel::update(orders::table.filter(orders::customer_id.eq(duplicate)))
            .set((
                orders::customer_id.eq(survivor),
                orders::updated_at.eq(Utc::now()),
            ))
            .execute(conn)
            .await
            .map(|_| ())
    })
}

/// Export section: every order of the customer with its lines.
pub fn export<'c>(
    conn: &'c mut AsyncPgConnection,
    customer: Uuid,
) -> BoxFuture<'c, QueryResult<(&'static str, Value)>> {
    Box::pin(async move {
        let rows: Vec<OrderRow> = orders::table
            .filter(orders::customer_id.eq(customer))
            .order((orders::ordered_at, orders::id))
            .select(OrderRow::as_select())
            .load(conn)
            .await?;
        let orders = with_lines(conn, &rows).await?;
        Ok(("orders", serde_json::to_value(orders).unwrap_or_default()))
    })
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::*;

    #[test]
    fn status_moves() {
        assert!(Placed.may_become(Paid));
        assert!(Paid.may_become(Refunded));
        assert!(Fulfilled.may_become(Refunded));
        assert!(!Cancelled.may_become(Paid));
        assert!(!Refunded.may_become(Paid));
        assert!(!Placed.may_become(Refunded));
        assert!(!Paid.may_become(Placed));
    }
}
