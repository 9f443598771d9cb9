//! The member's own club routes (`docs/members.md`): their points, with a customer's app's
//! member token. Views are the member's own types: a ledger entry shows what happened to the
//! points, never who on the staff wrote it.

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Serialize;
use utoipa::ToSchema;

use super::MemberRow;
use super::ledger::{self, Balances, EntryKind, EntryRow};
use crate::auth::Me;
use crate::customers::api as customers;
use crate::db::DbConn;
use crate::db::schema::club_members;
use crate::error::{ApiError, ApiResult};
use crate::http::pagination::PageParams;
use crate::http::query::Query;
use crate::kit::ids::EntryId;

crate::routes!(points);

/// A ledger entry as its member sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberEntry {
    pub id: EntryId,
    pub kind: EntryKind,
    /// The change to the points (negative for spending, expiries and reversals).
    #[schema(example = 120)]
    pub points: i64,
    /// The spendable balance right after it.
    pub balance_after: i64,
    #[schema(example = "Order 10045")]
    pub reason: String,
    /// Earnings: when the points become spendable.
    pub available_at: Option<DateTime<Utc>>,
    /// Earnings: when they lapse.
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<EntryRow> for MemberEntry {
    fn from(row: EntryRow) -> Self {
        let entry = ledger::Entry::from(row);
        Self {
            id: entry.id,
            kind: entry.kind,
            points: entry.points,
            balance_after: entry.balance_after,
            reason: entry.reason,
            available_at: entry.available_at,
            expires_at: entry.expires_at,
            created_at: entry.created_at,
        }
    }
}

/// The member's points: balances now and the ledger, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberPoints {
    pub balances: Balances,
    /// The page of entries.
    pub data: Vec<MemberEntry>,
    pub next_cursor: Option<String>,
}

/// The member's balances and points ledger (`404` for a customer who is not in the club).
#[utoipa::path(tag = "members", params(PageParams), responses((status = 200, body = MemberPoints)))]
#[get("/me/points")]
async fn points(
    me: Me,
    mut conn: DbConn,
    page: Query<PageParams>,
) -> ApiResult<web::Json<MemberPoints>> {
    customers::member_customer(&conn, &me).await?;
    let member: MemberRow = club_members::table
        .filter(club_members::customer_id.eq(me.customer))
        .select(MemberRow::as_select())
        .first(&mut conn)
        .await
        .optional()?
        .ok_or_else(|| ApiError::NotFound("you are not a member of the club".into()))?;
    let balances = ledger::balances(&mut conn, &member, Utc::now()).await?;
    let page = super::members::ledger_page(&mut conn, member.id, &page, None)
        .await?
        .map(MemberEntry::from);
    Ok(web::Json(MemberPoints {
        balances,
        data: page.data,
        next_cursor: page.next_cursor,
    }))
}
