//! What other domains may ask of the orders: whose an order is (a complaint about an order
//! must be the same customer's), and the read model of the sales that count.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::orders;
use crate::error::ApiResult;
use crate::kit::ids::{CustomerId, OrderId};

/// The read models the orders publish: views other domains may name in their own queries
/// instead of the orders' tables. `paid_orders` (`id`, `customer_id`, `total_minor`,
/// `ordered_at`) holds the orders whose sales count, paid or fulfilled, for the club's tiers
/// and earning rules.
pub const READ_MODELS: [&str; 1] = ["paid_orders"];

/// The customer of the order, if the order exists.
pub async fn customer_of(
    conn: &mut AsyncPgConnection,
    order: OrderId,
) -> ApiResult<Option<CustomerId>> {
    Ok(orders::table
        .find(order)
        .select(orders::customer_id)
        .first(conn)
        .await
        .optional()?)
}
