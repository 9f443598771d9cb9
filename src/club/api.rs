//! What other domains ask of the club, in their own transactions: orders earn and reverse
//! points as their status changes (shops push orders; nothing else to call), and a resolved
//! complaint may credit goodwill points.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;

use super::ledger::{self, EntryRow};
use super::{MemberRow, MemberStatus, referrals, rules};
use crate::error::{ApiError, ApiResult};
use crate::kit::ids::{CustomerId, OrderId};
use crate::kit::write::Writer;

/// What the club needs to know of an order.
#[derive(Debug, Clone)]
pub struct OrderFacts {
    pub id: OrderId,
    /// The shop's order number, for the entries' reasons.
    pub external_id: String,
    pub customer_id: CustomerId,
    pub currency: String,
    pub total_minor: i64,
    pub ordered_at: DateTime<Utc>,
    /// The categories of its lines.
    pub categories: Vec<String>,
}

/// Follows an order into or out of the counted statuses (paid, fulfilled), in the order's
/// transaction: counted now and not before, its customer's active membership earns by the
/// rules (and a referral it completes pays the referrer); no longer counted, everything it
/// earned is reversed (voided while unspent, owed once spent).
pub async fn order_changed(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    order: &OrderFacts,
    was_counted: bool,
    counted: bool,
) -> ApiResult<()> {
    if was_counted == counted {
        return Ok(());
    }
    let now = Utc::now();
    if counted {
        referrals::complete(conn, writer, order.customer_id, now).await?;
    }
    let Some(mut member) = MemberRow::lock_of_customer(conn, order.customer_id).await? else {
        return Ok(());
    };
    if counted {
        if member.status == MemberStatus::Active {
            rules::earn_for_order(conn, writer, member, order, now).await?;
        }
    } else {
        let reason = format!("order {} refunded or cancelled", order.external_id);
        ledger::reverse_order(conn, writer, &mut member, order.id, &reason, now).await?;
    }
    Ok(())
}

/// Credits goodwill points to the customer's active membership (a complaint's
/// compensation), once per `reference`; `409` on `field` when the customer is no active
/// member.
pub async fn compensate(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    customer: CustomerId,
    points: i64,
    reason: String,
    reference: String,
    field: &str,
) -> ApiResult<EntryRow> {
    let member = MemberRow::lock_of_customer(conn, customer).await?;
    let Some(mut member) = member.filter(|m| m.status == MemberStatus::Active) else {
        return Err(ApiError::rule(
            field,
            "no_membership",
            "points go to the customer's club membership, and the customer has no active one; enrol them or give a gift",
        ));
    };
    ledger::credit_bonus(
        conn,
        writer,
        &mut member,
        points,
        reason,
        reference,
        Utc::now(),
    )
    .await
}
