//! What the club does for other domains, plugged in through the registry
//! (`kit::registry`), in their transactions: orders earn and reverse points as their status
//! changes (shops push orders; nothing else to call), and a resolved complaint may credit
//! goodwill points.

use chrono::Utc;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::future::BoxFuture;

use super::settings::SettingsRow;
use super::{MemberRow, MemberStatus, ledger, referrals, rules};
use crate::auth::{Access, Principal, Role, Scope};
use crate::db::schema::points_entries;
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
/// active member. Points are club writes: a key needs `club:write` (`403`), and an agent
/// grants at most the settings' `goodwill_points_per_complaint` under one cap (`403` beyond).
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
        ensure_may_grant(conn, writer, &member, &grant).await?;
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

/// `403` unless the writer may grant these points: a key holding `club:write`, a manager or
/// admin, or an agent within the goodwill cap of what was granted under the same cap before.
async fn ensure_may_grant(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    member: &MemberRow,
    grant: &PointsGrant,
) -> ApiResult<()> {
    let Some(principal) = writer.principal() else {
        return Ok(());
    };
    if !principal.may(Access::Scope(Scope::ClubWrite)) {
        return Err(ApiError::Forbidden(
            "granting points is a club write: the key needs `club:write`".into(),
        ));
    }
    if !matches!(
        principal,
        Principal::User {
            role: Role::Agent,
            ..
        }
    ) {
        return Ok(());
    }
    let cap = i64::from(SettingsRow::load(conn).await?.goodwill_points_per_complaint);
    let granted: i64 = points_entries::table
        .filter(points_entries::member_id.eq(member.id))
        .filter(points_entries::reference.like(format!("{}:%", grant.capped_under)))
        .select(sql::<BigInt>("coalesce(sum(points), 0)::bigint"))
        .first(conn)
        .await?;
    if granted + grant.points > cap {
        return Err(ApiError::Forbidden(format!(
            "an agent grants at most {cap} goodwill points a complaint ({granted} granted already); a manager may grant more"
        )));
    }
    Ok(())
}
