//! `/api/v1/club/tiers`: the club's tiers and their privileges, and how a member moves
//! between them. A tier is reached by qualifying points or by spend within the club's window
//! (`settings::TierWindow`). Upgrades happen the moment a member qualifies; a tier is
//! reviewed at the end of its window and then kept or lowered by one step, announced some
//! days before (`jobs`). Qualifying points are counted apart from spendable ones, so
//! redeeming never costs a tier.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use super::MemberRow;
use super::ledger::Balances;
use super::settings::{RulesChanges, SettingsRow, year_after, year_before};
use crate::auth::{Authorized, ClubManage, ClubRead};
use crate::db::DbConn;
use crate::db::prepared::Cached;
use crate::db::schema::{club_members, club_tier_changes, club_tiers};
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::etag::IfMatch;
use crate::http::json::ValidJson;
use crate::http::pagination::Page;
use crate::kit::ids::TierId;
use crate::kit::input::{Items, Text, Whole};
use crate::kit::write::{self, Action, Writer, created_in, current};
use crate::text_enum;

crate::routes!(create, list, get_one, update, remove);

text_enum! {
    /// What a tier is qualified by.
    pub enum Metric as QualificationMetric {
        /// Qualifying points earned in the window (purchases and bonuses; reversed on refunds).
        Points = "points",
        /// Paid orders' totals in the window, in minor units of the customer's currency.
        Spend = "spend",
    }
}

/// A tier row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = club_tiers, treat_none_as_null = true)]
pub struct TierRow {
    pub id: TierId,
    pub name: String,
    pub rank: i32,
    pub qualification_metric: Metric,
    pub qualification_threshold: i64,
    pub discount_percent: i32,
    pub multiplier_percent: i32,
    pub priority_service: bool,
    pub benefits: Vec<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// What qualifies a member for a tier.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Qualification {
    pub metric: Metric,
    /// Points, or spend in minor units, needed within the window.
    #[validate(nested)]
    #[schema(value_type = Whole<0, 1_000_000_000_000>, example = 5000)]
    pub threshold: Whole<0, 1_000_000_000_000>,
}

/// A tier's privileges.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Benefits {
    /// Discount on purchases, in percent.
    #[validate(nested)]
    #[schema(example = 10)]
    pub discount_percent: Option<Whole<0, 100>>,
    /// Points earned on purchases, in percent of the base rate (150 = 1.5×).
    #[validate(nested)]
    #[schema(example = 150)]
    pub points_multiplier_percent: Option<Whole<0, 1000>>,
    /// Complaints and requests are served first.
    pub priority_service: Option<bool>,
    /// Other privileges, in words ("new products first", "birthday gift").
    #[validate(nested)]
    pub other: Option<Items<Text<1, 200>, 0, 20>>,
}

/// A tier's privileges as shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct BenefitsView {
    pub discount_percent: i32,
    pub points_multiplier_percent: i32,
    pub priority_service: bool,
    pub other: Vec<String>,
}

/// What qualifies for a tier, as shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct QualificationView {
    pub metric: Metric,
    pub threshold: i64,
}

/// A tier as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ClubTier)]
pub struct Tier {
    pub id: TierId,
    #[schema(example = "Gold")]
    pub name: String,
    /// 0 for the tier new members start in; higher is better.
    pub rank: i32,
    pub qualification: QualificationView,
    pub benefits: BenefitsView,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A tier named in a member or a change: its id, name and rank.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TierSummary {
    pub id: TierId,
    #[schema(example = "Gold")]
    pub name: String,
    pub rank: i32,
}

impl TierRow {
    /// The tier as the API shows it.
    pub fn view(&self) -> Tier {
        Tier {
            id: self.id,
            name: self.name.clone(),
            rank: self.rank,
            qualification: QualificationView {
                metric: self.qualification_metric,
                threshold: self.qualification_threshold,
            },
            benefits: BenefitsView {
                discount_percent: self.discount_percent,
                points_multiplier_percent: self.multiplier_percent,
                priority_service: self.priority_service,
                other: self.benefits.clone(),
            },
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// Its id, name and rank.
    pub fn summary(&self) -> TierSummary {
        TierSummary {
            id: self.id,
            name: self.name.clone(),
            rank: self.rank,
        }
    }

    /// What is still missing for this tier (0 when met).
    pub fn shortfall(&self, counted: Qualifying) -> i64 {
        let have = match self.qualification_metric {
            Metric::Points => counted.points,
            Metric::Spend => counted.spend_minor,
        };
        (self.qualification_threshold - have).max(0)
    }
}

crate::soft_deleted_row! {
    impl Versioned for TierRow in club_tiers {
        const KIND: &'static str = "club_tier";
        type Id = TierId;

        fn view(&self) -> Value {
            serde_json::to_value(TierRow::view(self)).unwrap_or_default()
        }
    }
}

/// Points and spend counted for tiers over a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Qualifying {
    pub points: i64,
    pub spend_minor: i64,
}

#[derive(QueryableByName)]
struct Counted {
    #[diesel(sql_type = BigInt)]
    points: i64,
    #[diesel(sql_type = BigInt)]
    spend: i64,
}

/// Two select-list items: the qualifying points of member `$member` and the paid spend of
/// customer `$customer` since `$since`, named `$points` and `$spend` (a `NULL` since counts
/// nothing).
macro_rules! qualifying_sums {
    ($member:literal, $customer:literal, $since:literal, $points:literal, $spend:literal) => {
        concat!(
            "(SELECT coalesce(sum(qualifying), 0)::bigint FROM points_entries \
               WHERE member_id = ",
            $member,
            " AND created_at >= ",
            $since,
            ") AS ",
            $points,
            ", \
             (SELECT least(coalesce(sum(total_minor), 0), 9223372036854775807)::bigint \
               FROM paid_orders WHERE customer_id = ",
            $customer,
            " \
                 AND ordered_at >= ",
            $since,
            ") AS ",
            $spend
        )
    };
}

/// What member `$1` (customer `$2`) qualified with since `$3`.
const QUALIFYING_SQL: &str = concat!(
    "SELECT ",
    qualifying_sums!("$1", "$2", "$3", "points", "spend")
);

/// Everything a member read counts, in one statement: member `$1` (customer `$2`), the live
/// lots at `$3`, the qualifying sums of the upgrade window from `$4` and of the review
/// window from `$5` (`NULL` when no tier is to keep).
pub const STANDING_SQL: &str = concat!(
    "SELECT lots.available, lots.pending, ",
    qualifying_sums!("$1", "$2", "$4", "window_points", "window_spend"),
    ", ",
    qualifying_sums!("$1", "$2", "$5", "kept_points", "kept_spend"),
    " FROM (",
    super::ledger::live_lot_sums!("$1", "$3"),
    ") AS lots"
);

/// What the member qualified with from `from` to now.
pub async fn qualifying_since(
    conn: &mut AsyncPgConnection,
    member: &MemberRow,
    from: DateTime<Utc>,
) -> ApiResult<Qualifying> {
    let counted: Counted = Cached::fixed(
        diesel::sql_query(QUALIFYING_SQL)
            .bind::<diesel::sql_types::Uuid, _>(member.id.get())
            .bind::<diesel::sql_types::Uuid, _>(member.customer_id.get())
            .bind::<Timestamptz, _>(from),
    )
    .get_result(conn)
    .await?;
    Ok(Qualifying {
        points: counted.points,
        spend_minor: counted.spend,
    })
}

/// The live tiers, lowest rank first.
#[derive(Debug, Clone, Default)]
pub struct Ladder(Vec<TierRow>);

impl Ladder {
    /// The tiers as stored.
    pub async fn load(mut conn: &AsyncPgConnection) -> ApiResult<Self> {
        Ok(Self(
            club_tiers::table
                .filter(club_tiers::deleted_at.is_null())
                .order(club_tiers::rank)
                .select(TierRow::as_select())
                .load(&mut conn)
                .await?,
        ))
    }

    /// The tier with this id, if it is live.
    pub fn get(&self, id: Option<TierId>) -> Option<&TierRow> {
        id.and_then(|id| self.0.iter().find(|t| t.id == id))
    }

    /// The tier a new member starts in: the lowest.
    pub fn entry(&self) -> Option<&TierRow> {
        self.0.as_slice().first()
    }

    /// The next tier up from `current` (from none: the lowest).
    pub fn above(&self, current: Option<&TierRow>) -> Option<&TierRow> {
        match current {
            None => self.0.as_slice().first(),
            Some(c) => self.0.iter().find(|t| t.rank > c.rank),
        }
    }

    /// The next tier down from `current`.
    pub fn below(&self, current: &TierRow) -> Option<&TierRow> {
        self.0.iter().rev().find(|t| t.rank < current.rank)
    }

    /// The best tier these counts meet, at least the entry tier.
    pub fn best_met(&self, counted: Qualifying) -> Option<&TierRow> {
        self.0
            .iter()
            .rev()
            .find(|t| t.shortfall(counted) == 0)
            .or_else(|| self.entry())
    }

    /// The points multiplier of a member's tier, in percent.
    pub fn multiplier_percent(&self, tier: Option<TierId>) -> i64 {
        self.get(tier)
            .map_or(100, |t| i64::from(t.multiplier_percent))
    }
}

/// Why a member's tier changed.
pub const TIER_CHANGED: Action = Action::named("tier_changed", "tier_changed");

/// Moves a locked member to `to` (the next review a year of window later), with the change
/// in the tier history and a `member.tier_changed` event.
pub async fn change_tier(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    member: MemberRow,
    to: Option<&TierRow>,
    review_at: Option<DateTime<Utc>>,
    reason: &str,
    now: DateTime<Utc>,
) -> ApiResult<MemberRow> {
    let locked = write::adopt(writer, member)?;
    let from = locked.row().tier_id;
    let mut after = locked.to_change();
    after.tier_id = to.map(|t| t.id);
    after.tier_since = Some(now);
    after.tier_review_at = review_at;
    after.downgrade_noticed_for = None;
    let saved = write::save(conn, writer, locked, after, TIER_CHANGED).await?;
    if from != saved.tier_id {
        diesel::insert_into(club_tier_changes::table)
            .values((
                club_tier_changes::id.eq(Uuid::now_v7()),
                club_tier_changes::member_id.eq(saved.id),
                club_tier_changes::from_tier.eq(from),
                club_tier_changes::to_tier.eq(saved.tier_id),
                club_tier_changes::reason.eq(reason),
                club_tier_changes::changed_at.eq(now),
            ))
            .execute(conn)
            .await?;
    }
    Ok(saved)
}

/// Moves a locked member up at once to the best tier they now qualify for (never down:
/// downgrades wait for the review). Returns the member as it stands.
pub async fn upgrade_if_qualified(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    member: MemberRow,
    ladder: &Ladder,
    settings: &SettingsRow,
    now: DateTime<Utc>,
) -> ApiResult<MemberRow> {
    let current_rank = ladder.get(member.tier_id).map_or(-1, |t| t.rank);
    let Some(next) = ladder.above(ladder.get(member.tier_id)) else {
        return Ok(member);
    };
    let counted =
        qualifying_since(conn, &member, settings.window_start(member.joined_at, now)).await?;
    if next.shortfall(counted) > 0 {
        return Ok(member);
    }
    let best = ladder.best_met(counted).filter(|t| t.rank > current_rank);
    match best {
        Some(best) => {
            let review = settings.first_review(member.joined_at, now);
            change_tier(
                conn,
                writer,
                member,
                Some(best),
                Some(review),
                "qualified",
                now,
            )
            .await
        }
        None => Ok(member),
    }
}

/// A member's distance to the next tier, and what keeps the current one at its review.
#[derive(Debug, Serialize, ToSchema)]
pub struct TierProgress {
    /// What is counted for an upgrade in the current window.
    pub qualifying_points: i64,
    pub qualifying_spend_minor: i64,
    /// The next tier up and what is still missing for it (points, or spend in minor units).
    pub next_tier: Option<TierSummary>,
    pub to_next_tier: Option<i64>,
    /// What is still missing, by the review, to keep the current tier (0: kept).
    pub to_keep_tier: Option<i64>,
}

#[derive(QueryableByName)]
struct Standing {
    #[diesel(sql_type = BigInt)]
    available: i64,
    #[diesel(sql_type = BigInt)]
    pending: i64,
    #[diesel(sql_type = BigInt)]
    window_points: i64,
    #[diesel(sql_type = BigInt)]
    window_spend: i64,
    #[diesel(sql_type = BigInt)]
    kept_points: i64,
    #[diesel(sql_type = BigInt)]
    kept_spend: i64,
}

/// The member's balances and tier progress at `now`, in one round trip
/// ([`STANDING_SQL`]).
pub async fn standing(
    mut conn: &AsyncPgConnection,
    member: &MemberRow,
    ladder: &Ladder,
    settings: &SettingsRow,
    now: DateTime<Utc>,
) -> ApiResult<(Balances, TierProgress)> {
    let current = ladder.get(member.tier_id);
    let next = ladder.above(current);
    let kept_tier = current.filter(|tier| ladder.below(tier).is_some());
    let review_from = kept_tier.and(member.tier_review_at).map(year_before);
    // Kept prepared: its plan (index look-ups by member and customer) does not depend on the
    // values, and parsing and planning it anew was most of a member read's database time.
    let sums: Standing = Cached::fixed(
        diesel::sql_query(STANDING_SQL)
            .bind::<diesel::sql_types::Uuid, _>(member.id.get())
            .bind::<diesel::sql_types::Uuid, _>(member.customer_id.get())
            .bind::<Timestamptz, _>(now)
            .bind::<Timestamptz, _>(settings.window_start(member.joined_at, now))
            .bind::<Nullable<Timestamptz>, _>(review_from),
    )
    .get_result(&mut conn)
    .await?;
    let counted = Qualifying {
        points: sums.window_points,
        spend_minor: sums.window_spend,
    };
    let kept = Qualifying {
        points: sums.kept_points,
        spend_minor: sums.kept_spend,
    };
    let progress = TierProgress {
        qualifying_points: counted.points,
        qualifying_spend_minor: counted.spend_minor,
        next_tier: next.map(TierRow::summary),
        to_next_tier: next.map(|t| t.shortfall(counted)),
        to_keep_tier: review_from.and(kept_tier).map(|tier| tier.shortfall(kept)),
    };
    Ok((Balances::of(member, sums.available, sums.pending), progress))
}

/// What a tier review decides for a member whose review is due at `review`.
pub async fn review(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    member: MemberRow,
    ladder: &Ladder,
    review: DateTime<Utc>,
) -> ApiResult<MemberRow> {
    let next_review = year_after(review);
    let Some(current) = ladder.get(member.tier_id) else {
        // A tier that was withdrawn: the member starts again from the entry tier.
        return change_tier(
            conn,
            writer,
            member,
            ladder.entry(),
            Some(next_review),
            "tier withdrawn",
            review,
        )
        .await;
    };
    let counted = qualifying_since(conn, &member, year_before(review)).await?;
    match ladder.below(current) {
        Some(lower) if current.shortfall(counted) > 0 => {
            change_tier(
                conn,
                writer,
                member,
                Some(lower),
                Some(next_review),
                "review",
                review,
            )
            .await
        }
        _ => {
            let locked = write::adopt(writer, member)?;
            let mut after = locked.to_change();
            after.tier_review_at = Some(next_review);
            after.downgrade_noticed_for = None;
            write::save(conn, writer, locked, after, TIER_KEPT).await
        }
    }
}

/// A review that kept the tier.
const TIER_KEPT: Action = Action::named("tier_kept", "tier_kept");

/// Body of `POST /club/tiers`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTier {
    #[validate(nested)]
    pub name: Text<1, 100>,
    /// 0 for the tier new members start in; ranks are unique.
    #[validate(nested)]
    pub rank: Whole<0, 100>,
    #[validate(nested)]
    pub qualification: Qualification,
    #[validate(nested)]
    pub benefits: Option<Benefits>,
}

/// Body of `PATCH /club/tiers/{id}`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierPatch {
    #[validate(nested)]
    pub name: Option<Text<1, 100>>,
    #[validate(nested)]
    pub rank: Option<Whole<0, 100>>,
    #[validate(nested)]
    pub qualification: Option<Qualification>,
    #[validate(nested)]
    pub benefits: Option<Benefits>,
}

fn apply_benefits(row: &mut TierRow, benefits: Benefits) {
    if let Some(d) = benefits.discount_percent {
        row.discount_percent = d.get() as i32;
    }
    if let Some(m) = benefits.points_multiplier_percent {
        row.multiplier_percent = m.get() as i32;
    }
    if let Some(p) = benefits.priority_service {
        row.priority_service = p;
    }
    if let Some(other) = benefits.other {
        row.benefits = other
            .into_inner()
            .into_iter()
            .map(Text::into_inner)
            .collect();
    }
}

/// Add a tier.
#[utoipa::path(
    tag = "club-tiers",
    request_body(content = NewTier, example = json!({
        "name": "Gold", "rank": 2, "qualification": {"metric": "points", "threshold": 5000},
        "benefits": {"discount_percent": 10, "points_multiplier_percent": 150, "priority_service": true, "other": ["new products first"]}
    })),
    responses(
        (status = 201, description = "Added", body = Tier, headers(("Location" = String), ("ETag" = String))),
        (status = 409, description = "Another tier has this rank", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/club/tiers")]
async fn create(
    caller: Authorized<ClubManage>,
    mut conn: DbConn,
    changes: web::Data<RulesChanges>,
    body: ValidJson<NewTier>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let now = Utc::now();
    let mut row = TierRow {
        id: TierId::new(),
        name: b.name.into_inner(),
        rank: b.rank.get() as i32,
        qualification_metric: b.qualification.metric,
        qualification_threshold: b.qualification.threshold.get(),
        discount_percent: 0,
        multiplier_percent: 100,
        priority_service: false,
        benefits: Vec::new(),
        version: 1,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    if let Some(benefits) = b.benefits {
        apply_benefits(&mut row, benefits);
    }
    let writer = Writer::of(&caller.principal);
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            ensure_rank_free(conn, row.rank, None).await?;
            write::create(conn, &writer, row, Action::CREATED).await
        })
        .await?;
    changes.record();
    Ok(created_in("club/tiers", &saved))
}

async fn ensure_rank_free(
    conn: &mut AsyncPgConnection,
    rank: i32,
    except: Option<TierId>,
) -> ApiResult<()> {
    let taken: Option<TierId> = club_tiers::table
        .filter(club_tiers::rank.eq(rank))
        .filter(club_tiers::deleted_at.is_null())
        .select(club_tiers::id)
        .first(conn)
        .await
        .optional()?;
    match taken {
        Some(id) if Some(id) != except => Err(ApiError::rule(
            "rank",
            "taken",
            format!("tier {id} has rank {rank}"),
        )),
        _ => Ok(()),
    }
}

/// The tiers, lowest rank first (a short list: one page).
#[utoipa::path(tag = "club-tiers", responses((status = 200, body = Page<Tier>)))]
#[get("/club/tiers")]
async fn list(_: Authorized<ClubRead>, conn: DbConn) -> ApiResult<web::Json<Page<Tier>>> {
    let ladder = Ladder::load(&conn).await?;
    Ok(web::Json(Page {
        data: ladder.0.iter().map(TierRow::view).collect(),
        next_cursor: None,
    }))
}

/// A tier.
#[utoipa::path(tag = "club-tiers", responses((status = 200, body = Tier, headers(("ETag" = String)))))]
#[get("/club/tiers/{id}")]
async fn get_one(
    _: Authorized<ClubRead>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let row = write::live::<TierRow>(&mut conn, TierId::from(*id)).await?;
    Ok(current(&row))
}

/// Change a tier (members move by the new rules from their next upgrade or review).
#[utoipa::path(
    tag = "club-tiers",
    request_body = TierPatch,
    responses(
        (status = 200, body = Tier, headers(("ETag" = String))),
        (status = 409, description = "Another tier has this rank", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/club/tiers/{id}")]
async fn update(
    caller: Authorized<ClubManage>,
    mut conn: DbConn,
    changes: web::Data<RulesChanges>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<TierPatch>,
) -> ApiResult<HttpResponse> {
    let p = body.0;
    let writer = Writer::of(&caller.principal);
    let id = TierId::from(*id);
    let (saved, ()) = write::change(
        &mut conn,
        &writer,
        id,
        &if_match,
        Action::UPDATED,
        async |conn, after: &mut TierRow| {
            if let Some(name) = p.name {
                after.name = name.into_inner();
            }
            if let Some(rank) = p.rank {
                after.rank = rank.get() as i32;
                ensure_rank_free(conn, after.rank, Some(id)).await?;
            }
            if let Some(q) = p.qualification {
                after.qualification_metric = q.metric;
                after.qualification_threshold = q.threshold.get();
            }
            if let Some(benefits) = p.benefits {
                apply_benefits(after, benefits);
            }
            Ok(())
        },
    )
    .await?;
    changes.record();
    Ok(current(&saved))
}

/// Withdraw a tier; `409` while members hold it.
#[utoipa::path(
    tag = "club-tiers",
    responses(
        (status = 204, description = "Withdrawn"),
        (status = 409, description = "Members hold the tier", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/club/tiers/{id}")]
async fn remove(
    caller: Authorized<ClubManage>,
    mut conn: DbConn,
    changes: web::Data<RulesChanges>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&caller.principal);
    let id = TierId::from(*id);
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let locked = write::lock::<TierRow>(conn, &writer, id, &if_match).await?;
        let held: bool = diesel::select(diesel::dsl::exists(
            club_members::table.filter(club_members::tier_id.eq(id)),
        ))
        .get_result(conn)
        .await?;
        if held {
            return Err(ApiError::Conflict(
                "members hold this tier; move them first or change the tier instead".into(),
            ));
        }
        write::soft_delete(conn, &writer, locked).await
    })
    .await?;
    changes.record();
    Ok(HttpResponse::NoContent().finish())
}
