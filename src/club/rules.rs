//! `/api/v1/club/rules`: how points are earned. Paid orders earn by the `purchase`,
//! `frequency` (频数营销: the n-th purchase within some days) and `bundle` (items from
//! several categories, or the whole line) rules, in the order's own transaction; the
//! `enrolment`, `birthday` and `referral` rules give fixed bonuses; attending a club event
//! earns the event's own points. Any rule may cap what one member earns by it per period.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use super::MemberRow;
use super::ledger::{self, Credit, EntryKind, EntryRow, Written};
use super::settings::SettingsRow;
use super::tiers::{self, Ladder};
use crate::auth::{Authorized, ClubManage, ClubRead};
use crate::db::DbConn;
use crate::db::schema::{club_rules, points_entries};
use crate::error::ApiResult;
use crate::http::etag::IfMatch;
use crate::http::json::ValidJson;
use crate::http::pagination::Page;
use crate::http::query::Query;
use crate::kit::ids::RuleId;
use crate::kit::input::{Currency, Items, Text, Whole};
use crate::kit::registry::OrderFacts;
use crate::kit::write::{self, Action, Writer, created_in, current};
use crate::text_enum;

crate::routes!(create, list, get_one, update, remove);

text_enum! {
    /// What a rule rewards.
    pub enum RuleKind {
        /// `points_per_unit` per currency unit (100 minor units) of a paid order, times the
        /// member's tier multiplier.
        Purchase = "purchase",
        /// `points` for every `every_nth` paid order within `within_days` days.
        Frequency = "frequency",
        /// `points` for an order with items from `min_categories` of `categories` (all of
        /// them by default: the whole line; any categories when none are listed).
        Bundle = "bundle",
        /// `points` on enrolment.
        Enrolment = "enrolment",
        /// `points` on the member's birthday (the birthday job, once a year).
        Birthday = "birthday",
        /// `points` to the referrer when a referred customer's first order is paid.
        Referral = "referral",
    }
}

text_enum! {
    /// The period a cap counts over (calendar periods, UTC; weeks from Monday).
    pub enum CapPeriod { Day = "day", Week = "week", Month = "month", Year = "year" }
}

/// A rule row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = club_rules, treat_none_as_null = true)]
pub struct RuleRow {
    pub id: RuleId,
    pub name: String,
    pub kind: RuleKind,
    pub active: bool,
    pub points: i64,
    pub points_per_unit: i32,
    pub currency: Option<String>,
    pub every_nth: Option<i32>,
    pub within_days: Option<i32>,
    pub categories: Vec<String>,
    pub min_categories: Option<i32>,
    pub cap_points: Option<i64>,
    pub cap_period: Option<CapPeriod>,
    pub pending_days: i32,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// At most `points` per member per `period` from one rule.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Cap {
    #[validate(nested)]
    #[schema(value_type = Whole<1, 1_000_000_000>, example = 2000)]
    pub points: Whole<1, 1_000_000_000>,
    pub period: CapPeriod,
}

/// An earning rule as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rule {
    pub id: RuleId,
    #[schema(example = "Third purchase in a month")]
    pub name: String,
    pub kind: RuleKind,
    pub active: bool,
    /// The fixed bonus (all kinds but `purchase`).
    pub points: i64,
    /// `purchase`: points per currency unit, before the tier multiplier.
    pub points_per_unit: i32,
    /// `purchase`: only orders in this currency earn (any when absent).
    pub currency: Option<String>,
    pub every_nth: Option<i32>,
    pub within_days: Option<i32>,
    pub categories: Vec<String>,
    pub min_categories: Option<i32>,
    pub cap: Option<CapView>,
    /// Days the points stay pending (a returns window).
    pub pending_days: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A cap as shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CapView {
    pub points: i64,
    pub period: CapPeriod,
}

impl RuleRow {
    /// The rule as the API shows it.
    pub fn view(&self) -> Rule {
        Rule {
            id: self.id,
            name: self.name.clone(),
            kind: self.kind,
            active: self.active,
            points: self.points,
            points_per_unit: self.points_per_unit,
            currency: self.currency.clone(),
            every_nth: self.every_nth,
            within_days: self.within_days,
            categories: self.categories.clone(),
            min_categories: self.min_categories,
            cap: self
                .cap_points
                .zip(self.cap_period)
                .map(|(points, period)| CapView { points, period }),
            pending_days: self.pending_days,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// What this rule gives for the order, before its cap (0: nothing).
    fn points_for(&self, order: &OrderFacts, multiplier_percent: i64, nth: i64) -> i64 {
        match self.kind {
            RuleKind::Purchase => {
                if self.currency.as_ref().is_some_and(|c| *c != order.currency) {
                    return 0;
                }
                // One division, at the end: 125.99 at 1.5× earns 188, not 187.
                let points = i128::from(order.total_minor.max(0))
                    * i128::from(self.points_per_unit)
                    * i128::from(multiplier_percent)
                    / 10_000;
                i64::try_from(points).unwrap_or(i64::MAX)
            }
            RuleKind::Frequency => {
                let every = i64::from(self.every_nth.unwrap_or(3));
                if nth > 0 && nth % every == 0 {
                    self.points
                } else {
                    0
                }
            }
            RuleKind::Bundle => {
                let bought =
                    |c: &String| order.categories.iter().any(|o| o.eq_ignore_ascii_case(c));
                let (present, needed) = if self.categories.is_empty() {
                    (
                        order.categories.len(),
                        self.min_categories.unwrap_or(2) as usize,
                    )
                } else {
                    (
                        self.categories.iter().filter(|c| bought(c)).count(),
                        self.min_categories
                            .map_or(self.categories.len(), |n| n as usize),
                    )
                };
                if present >= needed { self.points } else { 0 }
            }
            RuleKind::Enrolment | RuleKind::Birthday | RuleKind::Referral => self.points,
        }
    }
}

/// Where the period of a cap that contains `now` starts.
fn period_start(period: CapPeriod, now: DateTime<Utc>) -> DateTime<Utc> {
    let day = now.date_naive();
    let start = match period {
        CapPeriod::Day => day,
        CapPeriod::Week => day - Duration::days(i64::from(day.weekday().num_days_from_monday())),
        CapPeriod::Month => day.with_day(1).unwrap_or(day),
        CapPeriod::Year => day.with_ordinal(1).unwrap_or(day),
    };
    Utc.from_utc_datetime(&start.and_time(chrono::NaiveTime::MIN))
}

/// `points`, less what the rule's cap leaves for this member now.
async fn within_cap(
    conn: &mut AsyncPgConnection,
    rule: &RuleRow,
    member: &MemberRow,
    points: i64,
    now: DateTime<Utc>,
) -> ApiResult<i64> {
    let (Some(cap), Some(period)) = (rule.cap_points, rule.cap_period) else {
        return Ok(points);
    };
    let earned: i64 = points_entries::table
        .filter(points_entries::member_id.eq(member.id))
        .filter(points_entries::rule_id.eq(rule.id))
        .filter(points_entries::kind.eq(EntryKind::Earn))
        .filter(points_entries::created_at.ge(period_start(period, now)))
        .select(diesel::dsl::sql::<BigInt>(
            "coalesce(sum(points), 0)::bigint",
        ))
        .get_result(conn)
        .await?;
    Ok(points.min((cap - earned).max(0)))
}

async fn active_rules(conn: &mut AsyncPgConnection, kinds: &[RuleKind]) -> ApiResult<Vec<RuleRow>> {
    Ok(club_rules::table
        .filter(club_rules::deleted_at.is_null())
        .filter(club_rules::active.eq(true))
        .filter(club_rules::kind.eq_any(kinds.iter().map(|k| k.as_str())))
        .order((club_rules::created_at, club_rules::id))
        .select(RuleRow::as_select())
        .load(conn)
        .await?)
}

/// Credits what one rule gives, within its cap. `None` when it gives nothing.
async fn earn_by(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    member: &mut MemberRow,
    rule: &RuleRow,
    points: i64,
    earning: Earning<'_>,
) -> ApiResult<Option<EntryRow>> {
    let now = earning.now;
    let points = within_cap(conn, rule, member, points, now).await?;
    if points <= 0 {
        return Ok(None);
    }
    let credit = Credit {
        kind: EntryKind::Earn,
        points,
        qualifies: earning.qualifies,
        reason: format!("{}: {}", rule.name, earning.what),
        reference: Some(format!("{}:rule:{}", earning.reference, rule.id)),
        order_id: earning.order,
        rule_id: Some(rule.id),
        pending_days: i64::from(rule.pending_days),
    };
    Ok(
        match ledger::credit(conn, writer, member, credit, None, earning.settings, now).await? {
            Written::New(entry) => Some(entry),
            Written::Replayed(_) => None,
        },
    )
}

/// What an earning is for.
#[derive(Debug, Clone, Copy)]
struct Earning<'a> {
    /// In words, for the entry's reason.
    what: &'a str,
    /// The source's reference; each rule's entry adds its own id.
    reference: &'a str,
    order: Option<crate::kit::ids::OrderId>,
    qualifies: bool,
    settings: &'a SettingsRow,
    now: DateTime<Utc>,
}

/// Earns what the purchase, frequency and bundle rules give a locked active member for a
/// paid order, then moves them up if they now qualify. Replays earn nothing twice.
pub async fn earn_for_order(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    member: MemberRow,
    order: &OrderFacts,
    now: DateTime<Utc>,
) -> ApiResult<MemberRow> {
    let mut member = member;
    let rules = active_rules(
        conn,
        &[RuleKind::Purchase, RuleKind::Frequency, RuleKind::Bundle],
    )
    .await?;
    if rules.is_empty() {
        return Ok(member);
    }
    let settings = SettingsRow::load(conn).await?;
    let ladder = Ladder::load(conn).await?;
    let multiplier = ladder.multiplier_percent(member.tier_id);
    let reference = format!("order:{}", order.id);
    let what = format!("order {}", order.external_id);
    let earning = Earning {
        what: &what,
        reference: &reference,
        order: Some(order.id),
        qualifies: true,
        settings: &settings,
        now,
    };
    let mut earned = false;
    for rule in &rules {
        let nth = match rule.kind {
            RuleKind::Frequency => {
                counted_orders_within(conn, order, i64::from(rule.within_days.unwrap_or(30)))
                    .await?
            }
            _ => 0,
        };
        let points = rule.points_for(order, multiplier, nth);
        if points > 0 {
            earned |= earn_by(conn, writer, &mut member, rule, points, earning)
                .await?
                .is_some();
        }
    }
    if earned {
        member = tiers::upgrade_if_qualified(conn, writer, member, &ladder, &settings, now).await?;
    }
    Ok(member)
}

/// The customer's paid orders in the `days` before this one, this one included.
async fn counted_orders_within(
    conn: &mut AsyncPgConnection,
    order: &OrderFacts,
    days: i64,
) -> ApiResult<i64> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let count: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM paid_orders WHERE customer_id = $1 \
         AND ordered_at > $2 AND ordered_at <= $3",
    )
    .bind::<diesel::sql_types::Uuid, _>(order.customer_id.get())
    .bind::<Timestamptz, _>(order.ordered_at - Duration::days(days))
    .bind::<Timestamptz, _>(order.ordered_at)
    .get_result(conn)
    .await?;
    Ok(count.n)
}

/// A fixed bonus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bonus {
    Enrolment,
    Birthday,
    Referral,
}

/// Credits a locked member what the active rules of this bonus give (not counted for tiers),
/// under `reference` (`enrolment`, `birthday:2026`, `referral:<id>`), once. Returns the
/// entries written.
pub async fn award_bonus(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    member: &mut MemberRow,
    bonus: Bonus,
    reference: &str,
    now: DateTime<Utc>,
) -> ApiResult<Vec<EntryRow>> {
    let kind = match bonus {
        Bonus::Enrolment => RuleKind::Enrolment,
        Bonus::Birthday => RuleKind::Birthday,
        Bonus::Referral => RuleKind::Referral,
    };
    let rules = active_rules(conn, &[kind]).await?;
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let settings = SettingsRow::load(conn).await?;
    let earning = Earning {
        what: kind.as_str(),
        reference,
        order: None,
        qualifies: false,
        settings: &settings,
        now,
    };
    let mut written = Vec::new();
    for rule in &rules {
        if let Some(entry) = earn_by(conn, writer, member, rule, rule.points, earning).await? {
            written.push(entry);
        }
    }
    Ok(written)
}

crate::soft_deleted_row! {
    impl Versioned for RuleRow in club_rules {
        const KIND: &'static str = "club_rule";
        type Id = RuleId;

        fn view(&self) -> Value {
            serde_json::to_value(RuleRow::view(self)).unwrap_or_default()
        }
    }
}

/// Body of `POST /club/rules`; what a kind does not use is ignored.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    #[validate(nested)]
    pub name: Text<1, 100>,
    pub kind: RuleKind,
    /// Default true.
    pub active: Option<bool>,
    #[validate(nested)]
    pub points: Option<Whole<0, 1_000_000>>,
    /// `purchase`: default 1.
    #[validate(nested)]
    pub points_per_unit: Option<Whole<0, 1000>>,
    #[validate(nested)]
    pub currency: Option<Currency>,
    /// `frequency`: default 3.
    #[validate(nested)]
    pub every_nth: Option<Whole<2, 100>>,
    /// `frequency`: default 30.
    #[validate(nested)]
    pub within_days: Option<Whole<1, 366>>,
    #[validate(nested)]
    pub categories: Option<Items<Text<1, 100>, 0, 50>>,
    #[validate(nested)]
    pub min_categories: Option<Whole<1, 50>>,
    #[validate(nested)]
    pub cap: Option<Cap>,
    #[validate(nested)]
    pub pending_days: Option<Whole<0, 365>>,
}

/// Body of `PATCH /club/rules/{id}` (the kind stays).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    #[validate(nested)]
    pub name: Option<Text<1, 100>>,
    pub active: Option<bool>,
    #[validate(nested)]
    pub points: Option<Whole<0, 1_000_000>>,
    #[validate(nested)]
    pub points_per_unit: Option<Whole<0, 1000>>,
    #[validate(nested)]
    pub currency: Option<Currency>,
    #[validate(nested)]
    pub every_nth: Option<Whole<2, 100>>,
    #[validate(nested)]
    pub within_days: Option<Whole<1, 366>>,
    #[validate(nested)]
    pub categories: Option<Items<Text<1, 100>, 0, 50>>,
    #[validate(nested)]
    pub min_categories: Option<Whole<1, 50>>,
    #[validate(nested)]
    pub cap: Option<Cap>,
    #[validate(nested)]
    pub pending_days: Option<Whole<0, 365>>,
}

impl From<NewRule> for (Text<1, 100>, RuleKind, RulePatch) {
    fn from(b: NewRule) -> Self {
        let patch = RulePatch {
            name: None,
            active: b.active,
            points: b.points,
            points_per_unit: b.points_per_unit,
            currency: b.currency,
            every_nth: b.every_nth,
            within_days: b.within_days,
            categories: b.categories,
            min_categories: b.min_categories,
            cap: b.cap,
            pending_days: b.pending_days,
        };
        (b.name, b.kind, patch)
    }
}

impl RulePatch {
    fn apply(self, row: &mut RuleRow) {
        if let Some(name) = self.name {
            row.name = name.into_inner();
        }
        if let Some(active) = self.active {
            row.active = active;
        }
        if let Some(points) = self.points {
            row.points = points.get();
        }
        if let Some(rate) = self.points_per_unit {
            row.points_per_unit = rate.get() as i32;
        }
        if let Some(currency) = self.currency {
            row.currency = Some(currency.into_inner());
        }
        if let Some(nth) = self.every_nth {
            row.every_nth = Some(nth.get() as i32);
        }
        if let Some(days) = self.within_days {
            row.within_days = Some(days.get() as i32);
        }
        if let Some(categories) = self.categories {
            row.categories = categories
                .into_inner()
                .into_iter()
                .map(|c| c.into_inner().to_lowercase())
                .collect();
        }
        if let Some(n) = self.min_categories {
            row.min_categories = Some(n.get() as i32);
        }
        if let Some(cap) = self.cap {
            row.cap_points = Some(cap.points.get());
            row.cap_period = Some(cap.period);
        }
        if let Some(days) = self.pending_days {
            row.pending_days = days.get() as i32;
        }
    }
}

/// Add an earning rule.
#[utoipa::path(
    tag = "club-rules",
    request_body(content = NewRule, example = json!({
        "name": "Third purchase in a month", "kind": "frequency", "points": 300, "every_nth": 3, "within_days": 30,
        "cap": {"points": 600, "period": "month"}
    })),
    responses((status = 201, description = "Added", body = Rule, headers(("Location" = String), ("ETag" = String))))
)]
#[post("/club/rules")]
async fn create(
    caller: Authorized<ClubManage>,
    mut conn: DbConn,
    body: ValidJson<NewRule>,
) -> ApiResult<HttpResponse> {
    let (name, kind, settings) = body.0.into();
    let now = Utc::now();
    let mut row = RuleRow {
        id: RuleId::new(),
        name: name.into_inner(),
        kind,
        active: true,
        points: 0,
        points_per_unit: if kind == RuleKind::Purchase { 1 } else { 0 },
        currency: None,
        every_nth: (kind == RuleKind::Frequency).then_some(3),
        within_days: (kind == RuleKind::Frequency).then_some(30),
        categories: Vec::new(),
        min_categories: None,
        cap_points: None,
        cap_period: None,
        pending_days: 0,
        version: 1,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    settings.apply(&mut row);
    let saved = write::create_single(&mut conn, &Writer::of(&caller.principal), row).await?;
    Ok(created_in("club/rules", &saved))
}

/// Filters of `GET /club/rules`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RuleFilters {
    pub kind: Option<RuleKind>,
    pub active: Option<bool>,
}

/// The earning rules, oldest first (a short list: one page).
#[utoipa::path(tag = "club-rules", params(RuleFilters), responses((status = 200, body = Page<Rule>)))]
#[get("/club/rules")]
async fn list(
    _: Authorized<ClubRead>,
    mut conn: DbConn,
    filters: Query<RuleFilters>,
) -> ApiResult<web::Json<Page<Rule>>> {
    let mut query = club_rules::table
        .filter(club_rules::deleted_at.is_null())
        .order((club_rules::created_at, club_rules::id))
        .select(RuleRow::as_select())
        .limit(1000)
        .into_boxed();
    if let Some(kind) = filters.kind {
        query = query.filter(club_rules::kind.eq(kind));
    }
    if let Some(active) = filters.active {
        query = query.filter(club_rules::active.eq(active));
    }
    let rows = query.load(&mut conn).await?;
    Ok(web::Json(Page {
        data: rows.iter().map(RuleRow::view).collect(),
        next_cursor: None,
    }))
}

/// An earning rule.
#[utoipa::path(tag = "club-rules", responses((status = 200, body = Rule, headers(("ETag" = String)))))]
#[get("/club/rules/{id}")]
async fn get_one(
    _: Authorized<ClubRead>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let row = write::live::<RuleRow>(&mut conn, RuleId::from(*id)).await?;
    Ok(current(&row))
}

/// Change an earning rule (what was earned stays).
#[utoipa::path(tag = "club-rules", request_body = RulePatch, responses((status = 200, body = Rule, headers(("ETag" = String)))))]
#[patch("/club/rules/{id}")]
async fn update(
    caller: Authorized<ClubManage>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<RulePatch>,
) -> ApiResult<HttpResponse> {
    let patch = body.0;
    let writer = Writer::of(&caller.principal);
    let id = RuleId::from(*id);
    let saved = write::change(
        &mut conn,
        &writer,
        id,
        &if_match,
        Action::UPDATED,
        async |_, after: &mut RuleRow| {
            patch.apply(after);
            Ok(())
        },
    )
    .await?
    .0;
    Ok(current(&saved))
}

/// Withdraw an earning rule.
#[utoipa::path(tag = "club-rules", responses((status = 204, description = "Withdrawn")))]
#[delete("/club/rules/{id}")]
async fn remove(
    caller: Authorized<ClubManage>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&caller.principal);
    write::remove_single::<RuleRow>(&mut conn, &writer, RuleId::from(*id), &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::ids::{CustomerId, OrderId};

    fn rule(kind: RuleKind) -> RuleRow {
        let now = Utc::now();
        RuleRow {
            id: RuleId::new(),
            name: "r".into(),
            kind,
            active: true,
            points: 50,
            points_per_unit: 1,
            currency: None,
            every_nth: Some(3),
            within_days: Some(30),
            categories: Vec::new(),
            min_categories: None,
            cap_points: None,
            cap_period: None,
            pending_days: 0,
            version: 1,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        }
    }

    fn order(total_minor: i64, categories: &[&str]) -> OrderFacts {
        OrderFacts {
            id: OrderId::new(),
            external_id: "1".into(),
            customer_id: CustomerId::new(),
            currency: "CNY".into(),
            total_minor,
            ordered_at: Utc::now(),
            categories: categories.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    #[test]
    fn purchases_earn_per_unit_times_the_tier_multiplier() {
        let mut r = rule(RuleKind::Purchase);
        assert_eq!(r.points_for(&order(12_599, &[]), 100, 0), 125);
        assert_eq!(r.points_for(&order(12_599, &[]), 150, 0), 188);
        r.points_per_unit = 2;
        assert_eq!(r.points_for(&order(10_000, &[]), 100, 0), 200);
        r.currency = Some("EUR".into());
        assert_eq!(r.points_for(&order(10_000, &[]), 100, 0), 0);
    }

    #[test]
    fn every_nth_purchase_earns_the_frequency_bonus() {
        let r = rule(RuleKind::Frequency);
        let o = order(100, &[]);
        assert_eq!(
            (1..=7)
                .map(|n| r.points_for(&o, 100, n))
                .collect::<Vec<_>>(),
            vec![0, 0, 50, 0, 0, 50, 0]
        );
    }

    #[test]
    fn bundles_need_the_whole_line_or_enough_categories() {
        let mut r = rule(RuleKind::Bundle);
        assert_eq!(r.points_for(&order(1, &["shoes"]), 100, 0), 0);
        assert_eq!(r.points_for(&order(1, &["shoes", "bags"]), 100, 0), 50);
        r.categories = vec!["shoes".into(), "bags".into(), "belts".into()];
        assert_eq!(r.points_for(&order(1, &["Shoes", "bags"]), 100, 0), 0);
        assert_eq!(
            r.points_for(&order(1, &["shoes", "bags", "belts"]), 100, 0),
            50
        );
        r.min_categories = Some(2);
        assert_eq!(
            r.points_for(&order(1, &["belts", "bags", "hats"]), 100, 0),
            50
        );
    }

    #[test]
    fn cap_periods_start_on_calendar_boundaries() {
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 15, 0, 0).unwrap();
        let day = |y, m, d| Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap();
        assert_eq!(period_start(CapPeriod::Day, now), day(2026, 12, 3));
        assert_eq!(period_start(CapPeriod::Week, now), day(2026, 11, 30));
        assert_eq!(period_start(CapPeriod::Month, now), day(2026, 12, 1));
        assert_eq!(period_start(CapPeriod::Year, now), day(2026, 1, 1));
    }
}
