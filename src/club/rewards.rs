//! `/api/v1/club/rewards`: the catalogue members spend points on, with stock and a limit per
//! member. A redemption spends the points and takes the stock in one transaction: with one
//! left and two members at once, one gets it and the other's points are untouched.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use super::MemberRow;
use super::ledger::{self, Debit, Entry, EntryKind};
use crate::auth::{Authorized, ClubManage, ClubRead, ClubWrite};
use crate::db::DbConn;
use crate::db::keyset::older_than;
use crate::db::schema::{club_reward_redemptions, club_rewards};
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::etag::IfMatch;
use crate::http::json::{Field, ValidJson};
use crate::http::pagination::{Page, PageParams};
use crate::http::query::Query;
use crate::kit::ids::{MemberId, RewardId};
use crate::kit::input::{Text, Whole};
use crate::kit::write::{self, Action, Versioned, Writer, created_in, current};

crate::routes!(create, list, get_one, update, remove, redeem);

/// A reward row, and how the API shows it.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize, ToSchema)]
#[diesel(table_name = club_rewards, treat_none_as_null = true)]
pub struct Reward {
    pub id: RewardId,
    #[schema(example = "Shoe-care kit")]
    pub name: String,
    pub description: Option<String>,
    #[schema(example = 800)]
    pub points_cost: i64,
    /// What is left; absent: unlimited.
    pub stock: Option<i32>,
    /// How many one member may redeem; absent: no limit.
    pub per_member_limit: Option<i32>,
    pub active: bool,
    #[serde(skip)]
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub deleted_at: Option<DateTime<Utc>>,
}

crate::soft_deleted_row! {
    impl Versioned for Reward in club_rewards {
        const KIND: &'static str = "club_reward";
        type Id = RewardId;
    }
}

/// Body of `POST /club/rewards`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReward {
    #[validate(nested)]
    pub name: Text<1, 200>,
    #[validate(nested)]
    pub description: Option<Text<1, 2000>>,
    #[validate(nested)]
    pub points_cost: Whole<1, 100_000_000>,
    /// Absent: unlimited.
    #[validate(nested)]
    pub stock: Option<Whole<0, 1_000_000_000>>,
    #[validate(nested)]
    pub per_member_limit: Option<Whole<1, 1000>>,
    /// Default true.
    pub active: Option<bool>,
}

/// Body of `PATCH /club/rewards/{id}`; `null` clears `description`, `stock` (unlimited) and
/// `per_member_limit`.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardPatch {
    #[validate(nested)]
    pub name: Option<Text<1, 200>>,
    #[serde(default)]
    #[validate(nested)]
    #[schema(value_type = Option<Text<1, 2000>>)]
    pub description: Field<Text<1, 2000>>,
    #[validate(nested)]
    pub points_cost: Option<Whole<1, 100_000_000>>,
    #[serde(default)]
    #[validate(nested)]
    #[schema(value_type = Option<Whole<0, 1_000_000_000>>)]
    pub stock: Field<Whole<0, 1_000_000_000>>,
    #[serde(default)]
    #[validate(nested)]
    #[schema(value_type = Option<Whole<1, 1000>>)]
    pub per_member_limit: Field<Whole<1, 1000>>,
    pub active: Option<bool>,
}

/// Add a reward.
#[utoipa::path(
    tag = "club-rewards",
    request_body(content = NewReward, example = json!({"name": "Shoe-care kit", "points_cost": 800, "stock": 50, "per_member_limit": 2})),
    responses((status = 201, description = "Added", body = Reward, headers(("Location" = String), ("ETag" = String))))
)]
#[post("/club/rewards")]
async fn create(
    caller: Authorized<ClubManage>,
    mut conn: DbConn,
    body: ValidJson<NewReward>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let now = Utc::now();
    let row = Reward {
        id: RewardId::new(),
        name: b.name.into_inner(),
        description: b.description.map(Text::into_inner),
        points_cost: b.points_cost.get(),
        stock: b.stock.map(|s| s.get() as i32),
        per_member_limit: b.per_member_limit.map(|l| l.get() as i32),
        active: b.active.unwrap_or(true),
        version: 1,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    let saved = write::create_single(&mut conn, &Writer::of(&caller.principal), row).await?;
    Ok(created_in("club/rewards", &saved))
}

#[derive(Serialize, Deserialize)]
struct RewardCursor(DateTime<Utc>, Uuid);

/// The catalogue, newest first.
#[utoipa::path(tag = "club-rewards", params(PageParams), responses((status = 200, body = Page<Reward>)))]
#[get("/club/rewards")]
async fn list(
    _: Authorized<ClubRead>,
    mut conn: DbConn,
    page: Query<PageParams>,
) -> ApiResult<web::Json<Page<Reward>>> {
    let window = page.window::<RewardCursor>()?;
    let mut query = club_rewards::table
        .filter(club_rewards::deleted_at.is_null())
        .select(Reward::as_select())
        .order((club_rewards::created_at.desc(), club_rewards::id.desc()))
        .limit(window.fetch())
        .into_boxed();
    if let Some(RewardCursor(at, id)) = window.after {
        query = query.filter(older_than(
            club_rewards::created_at,
            club_rewards::id,
            (at, id),
        ));
    }
    let rows = query.load(&mut conn).await?;
    Ok(web::Json(
        window.page(rows, |r| RewardCursor(r.created_at, r.id.get())),
    ))
}

/// A reward.
#[utoipa::path(tag = "club-rewards", responses((status = 200, body = Reward, headers(("ETag" = String)))))]
#[get("/club/rewards/{id}")]
async fn get_one(
    _: Authorized<ClubRead>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let row = write::live::<Reward>(&mut conn, RewardId::from(*id)).await?;
    Ok(current(&row))
}

/// Change a reward (restock, reprice, withdraw from sale with `active: false`).
#[utoipa::path(tag = "club-rewards", request_body = RewardPatch, responses((status = 200, body = Reward, headers(("ETag" = String)))))]
#[patch("/club/rewards/{id}")]
async fn update(
    caller: Authorized<ClubManage>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<RewardPatch>,
) -> ApiResult<HttpResponse> {
    let p = body.0;
    let writer = Writer::of(&caller.principal);
    let id = RewardId::from(*id);
    let saved = write::change(
        &mut conn,
        &writer,
        id,
        &if_match,
        Action::UPDATED,
        async |_, after: &mut Reward| {
            if let Some(name) = p.name {
                after.name = name.into_inner();
            }
            after.description = p
                .description
                .map_value(Text::into_inner)
                .apply(after.description.take());
            if let Some(cost) = p.points_cost {
                after.points_cost = cost.get();
            }
            after.stock = p.stock.map_value(|s| s.get() as i32).apply(after.stock);
            after.per_member_limit = p
                .per_member_limit
                .map_value(|l| l.get() as i32)
                .apply(after.per_member_limit);
            if let Some(active) = p.active {
                after.active = active;
            }
            Ok(())
        },
    )
    .await?
    .0;
    Ok(current(&saved))
}

/// Withdraw a reward from the catalogue (redemptions keep it).
#[utoipa::path(tag = "club-rewards", responses((status = 204, description = "Withdrawn")))]
#[delete("/club/rewards/{id}")]
async fn remove(
    caller: Authorized<ClubManage>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&caller.principal);
    write::remove_single::<Reward>(&mut conn, &writer, RewardId::from(*id), &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Body of `POST /club/rewards/{id}/redemptions`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedemptionRequest {
    pub member_id: MemberId,
    /// The spendable balance the caller last read: `409` when it has changed since.
    #[validate(nested)]
    pub expected_balance: Option<Whole<0, { i64::MAX }>>,
}

/// A reward redeemed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Redemption {
    pub id: Uuid,
    pub reward_id: RewardId,
    pub member_id: MemberId,
    pub points: i64,
    /// The ledger's debit.
    pub entry: Entry,
    /// What is left of the stock afterwards (absent: unlimited).
    pub stock_left: Option<i32>,
    pub created_at: DateTime<Utc>,
}

/// Redeem a reward for a member: the points and the stock in one transaction.
#[utoipa::path(
    tag = "club-rewards",
    request_body(content = RedemptionRequest, example = json!({"member_id": "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b", "expected_balance": 1520})),
    responses(
        (status = 201, description = "Redeemed", body = Redemption),
        (status = 409, description = "Out of stock, not on sale, over the member's limit, not enough points, a stale `expected_balance`, or the membership is not active", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/club/rewards/{id}/redemptions")]
async fn redeem(
    caller: Authorized<ClubWrite>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    body: ValidJson<RedemptionRequest>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let writer = Writer::of(&caller.principal);
    let id = RewardId::from(*id);
    let expected = b.expected_balance.map(Whole::get);
    let redemption = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let member = MemberRow::lock_referenced(conn, b.member_id, "member_id").await?;
            redeem_for(conn, &writer, &member, id, expected).await
        })
        .await?;
    Ok(HttpResponse::Created().json(redemption))
}

/// Redeems reward `id` for `member` (locked by the caller): the points and the stock in the
/// caller's transaction. Staff name the member; a member's app redeems for its own.
pub(super) async fn redeem_for(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    member: &MemberRow,
    id: RewardId,
    expected: Option<i64>,
) -> ApiResult<Redemption> {
    member.ensure_active()?;
    let reward = <Reward as Versioned>::lock(conn, id).await?;
    if !reward.active {
        return Err(ApiError::Conflict("the reward is not on sale".into()));
    }
    if reward.stock == Some(0) {
        return Err(ApiError::Conflict("the reward is out of stock".into()));
    }
    if let Some(limit) = reward.per_member_limit {
        let taken: i64 = club_reward_redemptions::table
            .filter(club_reward_redemptions::reward_id.eq(id))
            .filter(club_reward_redemptions::member_id.eq(member.id))
            .count()
            .get_result(conn)
            .await?;
        if taken >= i64::from(limit) {
            return Err(ApiError::Conflict(format!(
                "the member has redeemed this reward {taken} times, its limit"
            )));
        }
    }
    let redemption_id = Uuid::now_v7();
    let now = Utc::now();
    let debit = Debit {
        kind: EntryKind::Redeem,
        points: reward.points_cost,
        reason: format!("reward: {}", reward.name),
        reference: Some(format!("reward-redemption:{redemption_id}")),
    };
    let entry = ledger::debit(conn, writer, member, debit, expected, now)
        .await?
        .into_entry();
    let stock_left: Option<Option<i32>> = diesel::update(club_rewards::table.find(id))
        .set(club_rewards::stock.eq(club_rewards::stock - 1))
        .filter(club_rewards::stock.is_not_null())
        .returning(club_rewards::stock)
        .get_result(conn)
        .await
        .optional()?;
    diesel::insert_into(club_reward_redemptions::table)
        .values((
            club_reward_redemptions::id.eq(redemption_id),
            club_reward_redemptions::reward_id.eq(id),
            club_reward_redemptions::member_id.eq(member.id),
            club_reward_redemptions::entry_id.eq(entry.id),
            club_reward_redemptions::points.eq(reward.points_cost),
            club_reward_redemptions::created_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(Redemption {
        id: redemption_id,
        reward_id: id,
        member_id: member.id,
        points: reward.points_cost,
        entry: Entry::from(entry),
        stock_left: stock_left.flatten(),
        created_at: now,
    })
}
