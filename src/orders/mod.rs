//! The transaction file (成交档案): orders pushed by shops and staff. Recording, cancelling
//! or refunding an order updates its customer's value figures in the same transaction.

pub mod api;
pub mod routes;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::customers::api::{self as customers, CustomerRow, Figures};
use crate::db::schema::{order_lines, orders};
use crate::error::ApiResult;
use crate::kit::Money;
use crate::kit::ids::{CustomerId, OrderId};
use crate::kit::registry::TimelineCursor;
use crate::kit::registry::{
    CustomerHooks, Erase, ExportSection, OrderFacts, Timeline, TimelineEntry,
};
use crate::kit::schema_part::SchemaPart;
use crate::kit::write::{Versioned, Writer};
use crate::text_enum;
use futures_util::future::BoxFuture;

/// The tables this domain owns: other domains name none of them, and reach what they hold
/// through `orders::api` (a test reads the source to keep it so).
pub const TABLES: [&str; 2] = ["orders", "order_lines"];

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

    /// Whether an order in this status counts as a purchase (and earns club points).
    pub fn counted(self) -> bool {
        Self::COUNTED.contains(&self.as_str())
    }

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
    pub id: OrderId,
    pub source: String,
    pub external_id: String,
    pub customer_id: CustomerId,
    pub status: OrderStatus,
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
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, Queryable, Selectable, Insertable)]
#[diesel(table_name = order_lines)]
pub struct OrderLine {
    #[serde(skip)]
    pub order_id: OrderId,
    #[serde(skip)]
    pub line_no: i32,
    #[schema(example = "SH-4021-42")]
    pub sku: String,
    #[schema(example = "Leather loafer")]
    pub name: String,
    #[schema(example = "shoes")]
    pub category: Option<String>,
    /// Size or specification.
    #[schema(example = "EU 42")]
    pub spec: Option<String>,
    #[schema(example = "brown")]
    pub colour: Option<String>,
    #[schema(example = 1)]
    pub quantity: i32,
    #[schema(example = 12500)]
    pub unit_price_minor: i64,
}

/// An order as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Order {
    pub id: OrderId,
    #[schema(example = "webshop")]
    pub source: String,
    #[schema(example = "10045")]
    pub external_id: String,
    pub customer_id: CustomerId,
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
            status: row.status,
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

/// An order with its lines: what the write path stores, audits (the order's own columns) and
/// announces (the order as the API shows it).
#[derive(Debug, Clone, Serialize)]
pub struct OrderRecord {
    #[serde(flatten)]
    pub row: OrderRow,
    #[serde(skip)]
    pub lines: Vec<OrderLine>,
}

impl Versioned for OrderRecord {
    const KIND: &'static str = "order";
    type Id = OrderId;

    crate::versioned_columns!(id: row.id, version: row.version, updated_at: row.updated_at);

    fn customer_id(&self) -> Option<CustomerId> {
        Some(self.row.customer_id)
    }

    fn view(&self) -> Value {
        serde_json::to_value(Order::new(&self.row, self.lines.clone())).unwrap_or_default()
    }

    async fn lock(conn: &mut AsyncPgConnection, id: OrderId) -> ApiResult<Self> {
        let row: OrderRow = orders::table
            .find(id)
            .select(OrderRow::as_select())
            .for_update()
            .first(conn)
            .await?;
        let lines = lines_of(conn, &[id]).await?.remove(&id).unwrap_or_default();
        Ok(Self { row, lines })
    }

    async fn insert(&self, conn: &mut AsyncPgConnection) -> ApiResult<Self> {
        let row = &self.row;
        let saved: OrderRow = diesel::insert_into(orders::table)
            .values((
                orders::id.eq(row.id),
                orders::source.eq(&row.source),
                orders::external_id.eq(&row.external_id),
                orders::customer_id.eq(row.customer_id),
                orders::status.eq(&row.status),
                orders::currency.eq(&row.currency),
                orders::subtotal_minor.eq(row.subtotal_minor),
                orders::discount_minor.eq(row.discount_minor),
                orders::shipping_minor.eq(row.shipping_minor),
                orders::total_minor.eq(row.total_minor),
                orders::ordered_at.eq(row.ordered_at),
            ))
            .returning(OrderRow::as_returning())
            .get_result(conn)
            .await?;
        diesel::insert_into(order_lines::table)
            .values(&self.lines)
            .execute(conn)
            .await?;
        Ok(Self {
            row: saved,
            lines: self.lines.clone(),
        })
    }

    /// Only the status changes once an order is recorded.
    async fn update(&self, conn: &mut AsyncPgConnection) -> ApiResult<Self> {
        let saved: OrderRow = diesel::update(orders::table.find(self.row.id))
            .set((
                orders::status.eq(&self.row.status),
                orders::version.eq(self.row.version),
                orders::updated_at.eq(self.row.updated_at),
            ))
            .returning(OrderRow::as_returning())
            .get_result(conn)
            .await?;
        Ok(Self {
            row: saved,
            lines: self.lines.clone(),
        })
    }
}

impl OrderRecord {
    /// What other domains learn of the order when its status changes.
    pub fn facts(&self) -> OrderFacts {
        let mut categories: Vec<String> = self
            .lines
            .iter()
            .filter_map(|l| l.category.as_ref().map(|c| c.to_lowercase()))
            .collect();
        categories.sort_unstable();
        categories.dedup();
        OrderFacts {
            id: self.row.id,
            external_id: self.row.external_id.clone(),
            customer_id: self.row.customer_id,
            currency: self.row.currency.clone(),
            total_minor: self.row.total_minor,
            ordered_at: self.row.ordered_at,
            categories,
        }
    }
}

/// The lines of several orders, by order.
pub async fn lines_of(
    conn: &mut AsyncPgConnection,
    ids: &[OrderId],
) -> QueryResult<HashMap<OrderId, Vec<OrderLine>>> {
    let lines: Vec<OrderLine> = order_lines::table
        .filter(order_lines::order_id.eq_any(ids))
        .order((order_lines::order_id, order_lines::line_no))
        .select(OrderLine::as_select())
        .load(conn)
        .await?;
    let mut by_order: HashMap<OrderId, Vec<OrderLine>> = HashMap::new();
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
    let ids: Vec<OrderId> = rows.iter().map(|r| r.id).collect();
    let mut lines = lines_of(conn, &ids).await?;
    Ok(rows
        .iter()
        .map(|r| Order::new(r, lines.remove(&r.id).unwrap_or_default()))
        .collect())
}

#[derive(QueryableByName)]
struct CountedOrders {
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
/// a merge can never double-count; the total saturates rather than overflow) and stores them through the customer's rules. The
/// caller holds the customer's row lock.
pub async fn recompute_figures(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    customer: CustomerRow,
) -> ApiResult<CustomerRow> {
    let counted: CountedOrders = diesel::sql_query(
        "SELECT count(*)::int AS order_count, least(coalesce(sum(total_minor), 0), 9223372036854775807)::bigint AS total_minor, \
         min(ordered_at) AS first_at, max(ordered_at) AS last_at, min(currency) AS currency \
         FROM orders WHERE customer_id = $1 AND status IN ('paid', 'fulfilled')",
    )
    .bind::<diesel::sql_types::Uuid, _>(customer.id)
    .get_result(conn)
    .await?;
    let figures = Figures {
        order_count: counted.order_count,
        total_spent_minor: counted.total_minor,
        first_purchase_at: counted.first_at,
        last_purchase_at: counted.last_at,
        currency: counted.currency,
    };
    customers::set_figures(conn, writer, customer, figures).await
}

/// Orders on the customer: their timeline and export sections, and a merge moves them.
/// Nothing to erase: an order says what was bought, when, for how much and from which shop,
/// and the figures stay as aggregates.
pub fn customer_hooks() -> CustomerHooks {
    CustomerHooks {
        timeline: Some(Timeline {
            kind: "order",
            source: timeline,
            data: SchemaPart::of::<OrderSummary>,
        }),
        merge: Some(move_orders),
        export: Some(ExportSection {
            section: "orders",
            read: export,
            schema: SchemaPart::list_of::<Order>,
        }),
        ..CustomerHooks::new(
            "orders",
            &["orders"],
            Erase::NothingPersonal(
                "orders and their lines hold products, amounts, times and shop references only",
            ),
        )
    }
}

/// Timeline source: the customer's orders.
fn timeline<'c>(
    conn: &'c mut AsyncPgConnection,
    customer: CustomerId,
    before: TimelineCursor,
    limit: i64,
) -> BoxFuture<'c, ApiResult<Vec<TimelineEntry>>> {
    Box::pin(async move {
        let rows =
            crate::timeline_rows!(conn, orders, OrderRow, ordered_at, customer, before, limit);
        Ok(rows
            .into_iter()
            .map(|o| {
                let summary = format!(
                    "Order {} from {}: {}.{:02} {}, {}",
                    o.external_id,
                    o.source,
                    o.total_minor / 100,
                    o.total_minor % 100,
                    o.currency,
                    o.status
                );
                let data = OrderSummary {
                    source: o.source,
                    external_id: o.external_id,
                    status: o.status,
                    total: Money {
                        amount_minor: o.total_minor,
                        currency: o.currency,
                    },
                };
                TimelineEntry::new("order", o.ordered_at, o.id.get(), summary, &data)
            })
            .collect())
    })
}

/// The `data` of an `order` timeline entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderSummary {
    /// The shop the order came from.
    pub source: String,
    /// The shop's order number.
    pub external_id: String,
    pub status: OrderStatus,
    pub total: Money,
}

/// Merge step: the duplicate's orders move to the survivor, whose figures now count them.
fn move_orders<'c>(
    conn: &'c mut AsyncPgConnection,
    writer: &'c Writer,
    survivor: CustomerId,
    duplicate: CustomerId,
) -> BoxFuture<'c, ApiResult<()>> {
    Box::pin(async move {
        crate::reassign_rows!(conn, orders, survivor, duplicate);
        let survivor = customers::lock_live(conn, survivor).await?;
        recompute_figures(conn, writer, survivor).await?;
        Ok(())
    })
}

/// Export section: every order of the customer with its lines.
fn export<'c>(
    conn: &'c mut AsyncPgConnection,
    customer: CustomerId,
) -> BoxFuture<'c, ApiResult<Value>> {
    Box::pin(async move {
        let rows = crate::export_rows!(conn, orders, OrderRow, ordered_at, customer);
        let orders = with_lines(conn, &rows).await?;
        Ok(serde_json::to_value(orders).unwrap_or_default())
    })
}

/// The events orders record.
pub fn event_types() -> Vec<crate::kit::event_types::EventType> {
    use crate::kit::event_types::EventType;
    vec![
        EventType::new(
            "order.created",
            "An order was recorded (by a shop or staff).",
            SchemaPart::of::<Order>,
        ),
        EventType::new(
            "order.updated",
            "An order's status changed.",
            SchemaPart::of::<Order>,
        ),
    ]
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
