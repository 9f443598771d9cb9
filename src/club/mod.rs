//! The membership club (客户俱乐部): tiers and their privileges, members, an append-only
//! points ledger whose earnings form lots (pending, expiring, spent soonest-expiring first,
//! reversed into debt on refunds), earning rules applied to paid orders, rewards with stock,
//! club events with waitlists, referrals and greetings. `docs/club.md` describes the whole.

pub mod api;
pub mod cache;
pub mod events;
pub mod jobs;
pub mod ledger;
pub mod me;
pub mod members;
pub mod referrals;
pub mod registrations;
pub mod rewards;
pub mod rules;
pub mod seats;
pub mod settings;
pub mod tiers;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::db::schema::{club_members, club_referrals, points_entries};
use crate::error::ApiResult;
use crate::kit::ids::{CustomerId, MemberId, TierId};
use crate::kit::registry::TimelineCursor;
use crate::kit::registry::{CustomerHooks, ERASED, Erase, ExportSection, Timeline, TimelineEntry};
use crate::kit::schema_part::SchemaPart;
use crate::kit::write::Versioned;
use crate::kit::write::Writer;
use crate::text_enum;
use futures_util::future::BoxFuture;

/// The tables this domain owns: other domains name none of them, and reach what they hold
/// through `club::api` (a test reads the source to keep it so).
pub const TABLES: [&str; 12] = [
    "club_settings",
    "club_tiers",
    "club_members",
    "club_tier_changes",
    "points_entries",
    "points_lots",
    "club_rules",
    "club_rewards",
    "club_reward_redemptions",
    "club_events",
    "club_registrations",
    "club_referrals",
];

/// Registers the club's routes.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    settings::configure(cfg);
    tiers::configure(cfg);
    members::configure(cfg);
    rules::configure(cfg);
    rewards::configure(cfg);
    events::configure(cfg);
    registrations::configure(cfg);
    referrals::configure(cfg);
    me::configure(cfg);
}

text_enum! {
    /// Where a membership stands. Only active members earn, redeem and register.
    pub enum MemberStatus { Active = "active", Suspended = "suspended", Cancelled = "cancelled" }
}

/// A membership row. Its balances are not stored: [`ledger::Balances`] derives them from
/// the lots and `owed`. Its events carry it as `Membership` (the balances move by
/// `points.changed`).
#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = club_members)]
#[schema(as = Membership)]
pub struct MemberRow {
    pub id: MemberId,
    pub customer_id: CustomerId,
    pub member_number: String,
    pub status: MemberStatus,
    pub joined_at: DateTime<Utc>,
    pub tier_id: Option<TierId>,
    pub tier_since: Option<DateTime<Utc>>,
    pub tier_review_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub downgrade_noticed_for: Option<DateTime<Utc>>,
    /// Changed by the ledger under this row's lock, not by the member's own writes.
    #[serde(skip)]
    pub lifetime_earned: i64,
    #[serde(skip)]
    pub owed: i64,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl MemberRow {
    /// The membership, locked for a ledger write or a change; `404` when there is none.
    pub async fn lock(conn: &mut AsyncPgConnection, id: MemberId) -> ApiResult<Self> {
        Ok(club_members::table
            .find(id)
            .select(Self::as_select())
            .for_update()
            .first(conn)
            .await?)
    }

    /// The membership a request names in `field`, locked: `409` (a rule on that field) when
    /// there is none, rather than the `404` of the member's own routes.
    pub async fn lock_referenced(
        conn: &mut AsyncPgConnection,
        id: MemberId,
        field: &str,
    ) -> ApiResult<Self> {
        Self::lock(conn, id).await.map_err(|e| match e {
            crate::error::ApiError::NotFound(_) => {
                crate::error::ApiError::rule(field, "not_found", "no such member")
            }
            other => other,
        })
    }

    /// The customer's membership, locked, if they have one.
    pub async fn lock_of_customer(
        conn: &mut AsyncPgConnection,
        customer: CustomerId,
    ) -> ApiResult<Option<Self>> {
        Ok(club_members::table
            .filter(club_members::customer_id.eq(customer))
            .select(Self::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?)
    }

    /// `409` unless the membership is active: suspended and cancelled members neither earn,
    /// spend nor register.
    pub fn ensure_active(&self) -> ApiResult<()> {
        if self.status == MemberStatus::Active {
            Ok(())
        } else {
            Err(crate::error::ApiError::Conflict(format!(
                "the membership is {}",
                self.status
            )))
        }
    }
}

impl Versioned for MemberRow {
    const KIND: &'static str = "member";
    type Id = MemberId;

    crate::versioned_columns!(id: id, version: version, updated_at: updated_at);

    fn customer_id(&self) -> Option<CustomerId> {
        Some(self.customer_id)
    }

    async fn lock(conn: &mut AsyncPgConnection, id: MemberId) -> ApiResult<Self> {
        MemberRow::lock(conn, id).await
    }

    async fn insert(&self, conn: &mut AsyncPgConnection) -> ApiResult<Self> {
        Ok(diesel::insert_into(club_members::table)
            .values((
                club_members::id.eq(self.id),
                club_members::customer_id.eq(self.customer_id),
                club_members::member_number.eq(&self.member_number),
                club_members::status.eq(self.status),
                club_members::joined_at.eq(self.joined_at),
                club_members::tier_id.eq(self.tier_id),
                club_members::tier_since.eq(self.tier_since),
                club_members::tier_review_at.eq(self.tier_review_at),
            ))
            .returning(Self::as_returning())
            .get_result(conn)
            .await?)
    }

    async fn update(&self, conn: &mut AsyncPgConnection) -> ApiResult<Self> {
        Ok(diesel::update(club_members::table.find(self.id))
            .set((
                club_members::customer_id.eq(self.customer_id),
                club_members::status.eq(self.status),
                club_members::tier_id.eq(self.tier_id),
                club_members::tier_since.eq(self.tier_since),
                club_members::tier_review_at.eq(self.tier_review_at),
                club_members::downgrade_noticed_for.eq(self.downgrade_noticed_for),
                club_members::version.eq(self.version),
                club_members::updated_at.eq(self.updated_at),
            ))
            .returning(Self::as_returning())
            .get_result(conn)
            .await?)
    }
}

/// The events the club records.
pub fn event_types() -> Vec<crate::kit::event_types::EventType> {
    use crate::kit::event_types::EventType;
    let membership = SchemaPart::of::<MemberRow>;
    let mut types = vec![
        EventType::new("member.enrolled", "A customer joined the club.", membership),
        EventType::new(
            "member.updated",
            "A membership changed (status, a merge).",
            membership,
        ),
        EventType::new(
            "member.tier_changed",
            "A member moved to another tier (qualified, reviewed or set by staff).",
            membership,
        ),
        EventType::new(
            "member.tier_kept",
            "A tier review kept the member's tier for another period.",
            membership,
        ),
        EventType::new(
            "member.tier_downgrade_pending",
            "A tier review is near and the member would go down a tier if it were now.",
            SchemaPart::of::<jobs::DowngradeNotice>,
        ),
        EventType::new(
            "points.changed",
            "A ledger entry moved a member's points (earned, redeemed, adjusted, expired, reversed).",
            SchemaPart::of::<ledger::Entry>,
        ),
    ]
    .into_iter()
    .map(|t| t.for_members(|_, _| Some("/api/v1/me/points".into())))
    .collect::<Vec<_>>();
    types.extend([
        EventType::new(
            "referral.created",
            "A member referred a customer.",
            SchemaPart::of::<referrals::Referral>,
        ),
        EventType::new(
            "referral.rewarded",
            "A referred customer's first paid order earned the referrer's bonus.",
            SchemaPart::of::<referrals::Referral>,
        ),
        EventType::new(
            "club_settings.updated",
            "The club's policies changed.",
            SchemaPart::of::<settings::SettingsRow>,
        ),
    ]);
    types.extend(seats::RegistrationStatus::ALL.iter().map(|status| {
        EventType::new(
            format!("registration.{}", status.as_str()),
            format!("An event registration became `{}`.", status.as_str()),
            SchemaPart::of::<seats::Registration>,
        )
        .for_members(|_, registration| {
            let event = registration["event_id"].as_str()?;
            Some(format!("/api/v1/me/events/{event}"))
        })
    }));
    types.extend(EventType::lifecycle::<tiers::Tier>(
        "club_tier",
        "club tier",
    ));
    types.extend(EventType::lifecycle::<rules::Rule>(
        "club_rule",
        "earning rule",
    ));
    types.extend(EventType::lifecycle::<rewards::Reward>(
        "club_reward",
        "reward",
    ));
    types.extend(EventType::lifecycle::<events::EventRow>(
        "club_event",
        "club event",
    ));
    types
}

/// The club on the customer: the membership and its ledger on the timeline and in the
/// export; a merge brings the duplicate's points over; erase anonymises the member (the
/// ledger's sums stay, its reasons are blanked).
pub fn customer_hooks() -> CustomerHooks {
    CustomerHooks {
        timeline: Some(Timeline {
            kind: "points",
            source: timeline,
            data: SchemaPart::of::<PointsSummary>,
        }),
        merge: Some(members::merge),
        export: Some(ExportSection {
            section: "club",
            read: export,
            schema: SchemaPart::nullable::<ClubExport>,
        }),
        order: Some(api::order_changed),
        points: Some(api::compensate),
        ..CustomerHooks::new(
            "club",
            &["club_members", "club_referrals"],
            Erase::Step(erase),
        )
    }
}

/// Timeline source: the member's ledger entries.
fn timeline<'c>(
    conn: &'c mut AsyncPgConnection,
    customer: CustomerId,
    before: TimelineCursor,
    limit: i64,
) -> BoxFuture<'c, ApiResult<Vec<TimelineEntry>>> {
    Box::pin(async move {
        let mut query = points_entries::table
            .inner_join(club_members::table)
            .filter(club_members::customer_id.eq(customer))
            .select(ledger::EntryRow::as_select())
            .order((points_entries::created_at.desc(), points_entries::id.desc()))
            .limit(limit)
            .into_boxed();
        if let Some(cursor) = before {
            query = query.filter(crate::db::keyset::older_than(
                points_entries::created_at,
                points_entries::id,
                cursor,
            ));
        }
        let rows = query.load(conn).await?;
        Ok(rows
            .into_iter()
            .map(|e| {
                let summary = format!(
                    "Points {} {:+}: {} (balance {})",
                    e.kind, e.points, e.reason, e.balance_after
                );
                let data = PointsSummary {
                    kind: e.kind,
                    points: e.points,
                    balance_after: e.balance_after,
                    reference: e.reference,
                };
                TimelineEntry::new("points", e.created_at, e.id.get(), summary, &data)
            })
            .collect())
    })
}

/// The `data` of a `points` timeline entry: one ledger entry's effect.
#[derive(Debug, Serialize, ToSchema)]
pub struct PointsSummary {
    pub kind: ledger::EntryKind,
    /// Signed: positive credits, negative debits.
    pub points: i64,
    pub balance_after: i64,
    /// What the entry answers to (`order:<id>`, `complaint:<id>`, ...).
    pub reference: Option<String>,
}

/// The club's section of a customer's export: the membership and its whole ledger, oldest
/// first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClubExport {
    pub membership: members::Member,
    pub points: Vec<ledger::Entry>,
}

/// Export section: the membership, its balances and its whole ledger.
fn export<'c>(
    conn: &'c mut AsyncPgConnection,
    customer: CustomerId,
) -> BoxFuture<'c, ApiResult<Value>> {
    Box::pin(async move {
        let member: Option<MemberRow> = club_members::table
            .filter(club_members::customer_id.eq(customer))
            .select(MemberRow::as_select())
            .first(conn)
            .await
            .optional()?;
        let Some(member) = member else {
            return Ok(Value::Null);
        };
        let view = members::view(conn, &member).await?;
        let entries: Vec<ledger::EntryRow> = points_entries::table
            .filter(points_entries::member_id.eq(member.id))
            .order((points_entries::created_at, points_entries::id))
            .select(ledger::EntryRow::as_select())
            .load(conn)
            .await?;
        let export = ClubExport {
            membership: view,
            points: entries.into_iter().map(ledger::Entry::from).collect(),
        };
        Ok(serde_json::to_value(export).unwrap_or_default())
    })
}

/// Erase step: the ledger keeps its sums, kinds and references (order and rule ids), but its
/// reasons (free text that may name the person) are blanked; referrals lose their notes.
fn erase<'c>(
    conn: &'c mut AsyncPgConnection,
    _writer: &'c Writer,
    customer: CustomerId,
) -> BoxFuture<'c, ApiResult<()>> {
    Box::pin(async move {
        let member: Option<MemberId> = club_members::table
            .filter(club_members::customer_id.eq(customer))
            .select(club_members::id)
            .first(conn)
            .await
            .optional()?;
        if let Some(member) = member {
            diesel::update(points_entries::table.filter(points_entries::member_id.eq(member)))
                .set(points_entries::reason.eq(ERASED))
                .execute(conn)
                .await?;
        }
        diesel::update(club_referrals::table.filter(club_referrals::customer_id.eq(customer)))
            .set(club_referrals::note.eq(None::<String>))
            .execute(conn)
            .await?;
        crate::kit::registry::redact_history(conn, customer, ledger::SUBJECT, &["reason"]).await?;
        crate::kit::registry::redact_history(conn, customer, "referral", &["note"]).await
    })
}
