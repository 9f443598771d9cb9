//! What the club does for other domains, plugged in through the registry
//! (`kit::registry`), in their transactions: orders earn and reverse points as their status
//! changes (shops push orders; nothing else to call), and a resolved complaint may credit
//! goodwill points.

use chrono::Utc;
use diesel_async::AsyncPgConnection;
use futures_util::future::BoxFuture;

use super::{MemberRow, MemberStatus, ledger, referrals, rules};
use crate::error::{ApiError, ApiResult};
use crate::kit::registry::{OrderFacts, PointsGrant};
use crate::kit::write::Writer;

/// The club's [`crate::kit::registry::OrderStep`]: an order counted now earns for its
/// customer's active membership by the rules (and a referral it completes pays the
/// referrer); an order no longer counted has everything it earned reversed (voided while
/// unspent, owed once spent).
pub fn order_changed<'c>(
    conn: &'c mut AsyncPgConnection,
    writer: &'c Writer,
    order: &'c OrderFacts,
    counted: bool,
) -> BoxFuture<'c, ApiResult<()>> {
    Box::pin(async move {
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
    })
}

/// The club's [`crate::kit::registry::PointsCredit`]: goodwill points to the customer's
/// active membership, once per reference; `409` on the grant's field when the customer is no
/// active member.
pub fn compensate<'c>(
    conn: &'c mut AsyncPgConnection,
    writer: &'c Writer,
    grant: PointsGrant,
) -> BoxFuture<'c, ApiResult<()>> {
    Box::pin(async move {
        let member = MemberRow::lock_of_customer(conn, grant.customer).await?;
        let Some(mut member) = member.filter(|m| m.status == MemberStatus::Active) else {
            return Err(ApiError::rule(
                grant.field,
                "no_membership",
                "points go to the customer's club membership, and the customer has no active one; enrol them or give a gift",
            ));
        };
        ledger::credit_bonus(
            conn,
            writer,
            &mut member,
            grant.points,
            grant.reason,
            grant.reference,
            Utc::now(),
        )
        .await?;
        Ok(())
    })
}
