//! `/api/v1/club/referrals`: a member refers a customer, who is marked as a referred lead
//! (`referred_by` and the `referred` tag: followed up first, an A-grade lead). When the
//! referred customer's first order is paid, the referrer earns the `referral` rules' bonus,
//! once. `GET /club/greetings` lists the birthdays, membership anniversaries and important
//! dates coming up, for greetings.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Date, Integer, Nullable, Text as SqlText, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use super::rules::{self, Bonus};
use super::{MemberRow, MemberStatus};
use crate::auth::{Authorized, ClubRead, ClubWrite};
use crate::customers::api as customers;
use crate::db::DbConn;
use crate::db::keyset::older_than;
use crate::db::schema::club_referrals;
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::json::ValidJson;
use crate::http::pagination::{Page, PageParams};
use crate::http::query::Query;
use crate::kit::audit::Subject;
use crate::kit::ids::{CustomerId, MemberId, ReferralId};
use crate::kit::input::{Days, Text};
use crate::kit::write::{Occurrence, Writer};
use crate::text_enum;

crate::routes!(create, list, get_one, greetings);

text_enum! {
    /// Where a referral stands.
    pub enum ReferralStatus {
        /// The referred customer has not bought yet.
        Pending = "pending",
        /// Their first order was paid; the referrer earned the bonus.
        Rewarded = "rewarded",
    }
}

/// A referral row, and how the API shows it.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = club_referrals)]
pub struct Referral {
    pub id: ReferralId,
    pub referrer_member_id: MemberId,
    /// The customer referred.
    pub customer_id: CustomerId,
    pub note: Option<String>,
    pub status: ReferralStatus,
    /// The referrer's bonus entry, once rewarded (absent when no rule gave points).
    pub rewarded_entry_id: Option<crate::kit::ids::EntryId>,
    #[serde(skip)]
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

async fn announce(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    referral: &Referral,
    what: &'static str,
) -> ApiResult<()> {
    let data = serde_json::to_value(referral).unwrap_or_default();
    Occurrence {
        subject: Subject {
            entity_type: "referral",
            entity_id: referral.id.get(),
            customer_id: Some(referral.customer_id),
        },
        event_type: format!("referral.{what}"),
        audit_action: what,
    }
    .record(conn, writer, crate::kit::audit::diff(None, &data), data)
    .await
}

/// Body of `POST /club/referrals`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReferral {
    pub referrer_member_id: MemberId,
    /// The customer referred (create them first with `POST /customers`).
    pub customer_id: CustomerId,
    #[validate(nested)]
    pub note: Option<Text<1, 2000>>,
}

/// Record that a member referred a customer.
#[utoipa::path(
    tag = "club-referrals",
    request_body(content = NewReferral, example = json!({
        "referrer_member_id": "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b", "customer_id": "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5c",
        "note": "Colleague looking for work shoes"
    })),
    responses(
        (status = 201, description = "Recorded; the customer is marked as a referred lead", body = Referral, headers(("Location" = String))),
        (status = 409, description = "No such member or customer, the membership is not active, the member's own customer, a customer who has bought already, or one referred before", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/club/referrals")]
async fn create(
    caller: Authorized<ClubWrite>,
    mut conn: DbConn,
    body: ValidJson<NewReferral>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let writer = Writer::of(&caller.principal);
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let referrer =
                MemberRow::lock_referenced(conn, b.referrer_member_id, "referrer_member_id")
                    .await?;
            if referrer.status != MemberStatus::Active {
                return Err(ApiError::rule(
                    "referrer_member_id",
                    "not_active",
                    format!("the membership is {}", referrer.status),
                ));
            }
            if referrer.customer_id == b.customer_id {
                return Err(ApiError::rule(
                    "customer_id",
                    "self",
                    "a member cannot refer themselves",
                ));
            }
            let customer = customers::find_referenced(conn, b.customer_id).await?;
            if customer.order_count > 0 {
                return Err(ApiError::rule(
                    "customer_id",
                    "already_buyer",
                    "the customer has bought already; only new customers are referred",
                ));
            }
            let now = Utc::now();
            let referral: Referral = diesel::insert_into(club_referrals::table)
                .values((
                    club_referrals::id.eq(ReferralId::new()),
                    club_referrals::referrer_member_id.eq(referrer.id),
                    club_referrals::customer_id.eq(b.customer_id),
                    club_referrals::note.eq(b.note.map(Text::into_inner)),
                    club_referrals::status.eq(ReferralStatus::Pending),
                    club_referrals::created_at.eq(now),
                    club_referrals::updated_at.eq(now),
                ))
                .returning(Referral::as_returning())
                .get_result(conn)
                .await
                .map_err(|e| match ApiError::from(e) {
                    ApiError::Conflict(_) => ApiError::rule(
                        "customer_id",
                        "already_referred",
                        "the customer was referred before",
                    ),
                    other => other,
                })?;
            customers::mark_referred(conn, &writer, b.customer_id, referrer.customer_id).await?;
            announce(conn, &writer, &referral, "created").await?;
            Ok(referral)
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/club/referrals/{}", saved.id)))
        .json(saved))
}

/// Pays the referral bonus when a referred customer's first order is paid: once, whatever
/// the orders after. Called in the order's transaction.
pub async fn complete(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    customer: CustomerId,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let pending: Option<Referral> = club_referrals::table
        .filter(club_referrals::customer_id.eq(customer))
        .filter(club_referrals::status.eq(ReferralStatus::Pending))
        .select(Referral::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?;
    let Some(referral) = pending else {
        return Ok(());
    };
    let mut referrer = MemberRow::lock(conn, referral.referrer_member_id).await?;
    let entry = if referrer.status == MemberStatus::Active {
        let reference = format!("referral:{}", referral.id);
        rules::award_bonus(
            conn,
            writer,
            &mut referrer,
            Bonus::Referral,
            &reference,
            now,
        )
        .await?
        .into_iter()
        .next()
        .map(|e| e.id)
    } else {
        None
    };
    let saved: Referral = diesel::update(club_referrals::table.find(referral.id))
        .set((
            club_referrals::status.eq(ReferralStatus::Rewarded),
            club_referrals::rewarded_entry_id.eq(entry),
            club_referrals::version.eq(referral.version + 1),
            club_referrals::updated_at.eq(now),
        ))
        .returning(Referral::as_returning())
        .get_result(conn)
        .await?;
    announce(conn, writer, &saved, "rewarded").await
}

/// Filters of `GET /club/referrals`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReferralFilters {
    pub referrer_member_id: Option<MemberId>,
    pub status: Option<ReferralStatus>,
}

#[derive(Serialize, Deserialize)]
struct ReferralCursor(DateTime<Utc>, Uuid);

/// Referrals, newest first.
#[utoipa::path(tag = "club-referrals", params(PageParams, ReferralFilters), responses((status = 200, body = Page<Referral>)))]
#[get("/club/referrals")]
async fn list(
    _: Authorized<ClubRead>,
    mut conn: DbConn,
    page: Query<PageParams>,
    filters: Query<ReferralFilters>,
) -> ApiResult<web::Json<Page<Referral>>> {
    let window = page.window::<ReferralCursor>()?;
    let mut query = club_referrals::table
        .select(Referral::as_select())
        .order((club_referrals::created_at.desc(), club_referrals::id.desc()))
        .limit(window.fetch())
        .into_boxed();
    if let Some(ReferralCursor(at, id)) = window.after {
        query = query.filter(older_than(
            club_referrals::created_at,
            club_referrals::id,
            (at, id),
        ));
    }
    if let Some(referrer) = filters.referrer_member_id {
        query = query.filter(club_referrals::referrer_member_id.eq(referrer));
    }
    if let Some(status) = filters.status {
        query = query.filter(club_referrals::status.eq(status));
    }
    let rows = query.load(&mut conn).await?;
    Ok(web::Json(
        window.page(rows, |r| ReferralCursor(r.created_at, r.id.get())),
    ))
}

/// A referral.
#[utoipa::path(tag = "club-referrals", responses((status = 200, body = Referral)))]
#[get("/club/referrals/{id}")]
async fn get_one(
    _: Authorized<ClubRead>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<web::Json<Referral>> {
    Ok(web::Json(
        club_referrals::table
            .find(ReferralId::from(*id))
            .select(Referral::as_select())
            .first(&mut conn)
            .await?,
    ))
}

text_enum! {
    /// What a greeting is for.
    pub enum Occasion {
        Birthday = "birthday",
        MembershipAnniversary = "membership_anniversary",
        /// One of the customer's important dates (重要日子).
        ImportantDate = "important_date",
    }
}

/// A date coming up for an active member.
#[derive(Debug, Serialize, ToSchema, QueryableByName)]
pub struct Greeting {
    #[diesel(sql_type = SqlUuid)]
    pub member_id: MemberId,
    #[diesel(sql_type = SqlUuid)]
    pub customer_id: CustomerId,
    #[diesel(sql_type = SqlText)]
    #[schema(example = "Wang Fang")]
    pub display_name: String,
    #[diesel(sql_type = SqlText)]
    pub occasion: Occasion,
    /// The important date's label.
    #[diesel(sql_type = Nullable<SqlText>)]
    pub label: Option<String>,
    /// The day it falls on next.
    #[diesel(sql_type = Date)]
    pub falls_on: NaiveDate,
    /// Years since the date (an age, years of membership).
    #[diesel(sql_type = Integer)]
    pub years: i32,
}

/// Filters of `GET /club/greetings`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GreetingFilters {
    /// How far ahead to look, `1d` to `366d` (default `7d`).
    #[param(value_type = Option<Days>)]
    pub within: Option<Days>,
}

#[derive(Serialize, Deserialize)]
struct GreetingCursor(NaiveDate, Uuid, String, String);

/// Birthdays, membership anniversaries and important dates of active members coming up
/// within the window (today included), soonest first: the list for greetings.
#[utoipa::path(tag = "club-members", params(PageParams, GreetingFilters), responses((status = 200, body = Page<Greeting>)))]
#[get("/club/greetings")]
async fn greetings(
    _: Authorized<ClubRead>,
    mut conn: DbConn,
    page: Query<PageParams>,
    filters: Query<GreetingFilters>,
) -> ApiResult<web::Json<Page<Greeting>>> {
    let window = page.window::<GreetingCursor>()?;
    let today = Utc::now().date_naive();
    let until = today + chrono::Duration::days(i64::from(filters.within.map_or(7, |d| d.0)));
    let (after_on, after_member, after_occasion, after_label) = match &window.after {
        Some(GreetingCursor(on, member, occasion, label)) => {
            (Some(*on), Some(*member), occasion.clone(), label.clone())
        }
        None => (None, None, String::new(), String::new()),
    };
    let rows: Vec<Greeting> = diesel::sql_query(GREETINGS_SQL)
        .bind::<Date, _>(today)
        .bind::<Date, _>(until)
        .bind::<Nullable<Date>, _>(after_on)
        .bind::<Nullable<SqlUuid>, _>(after_member)
        .bind::<SqlText, _>(after_occasion)
        .bind::<SqlText, _>(after_label)
        .bind::<diesel::sql_types::BigInt, _>(window.fetch())
        .load(&mut conn)
        .await?;
    Ok(web::Json(window.page(rows, |g| {
        GreetingCursor(
            g.falls_on,
            g.member_id.get(),
            g.occasion.as_str().to_owned(),
            g.label.clone().unwrap_or_default(),
        )
    })))
}

/// Every dated occasion of active members, its next day on or after `$1`, within `$2`,
/// after the cursor `($3, $4, $5, $6)`.
const GREETINGS_SQL: &str = "\
WITH dates AS (
    SELECT m.id AS member_id, c.id AS customer_id, c.display_name, 'birthday' AS occasion,
           NULL::text AS label, c.birthday AS since, 0 AS min_years
    FROM club_members m JOIN customer_cards c ON c.id = m.customer_id
    WHERE m.status = 'active' AND c.deleted_at IS NULL AND c.birthday IS NOT NULL
    UNION ALL
    SELECT m.id, c.id, c.display_name, 'membership_anniversary', NULL, m.joined_at::date, 1
    FROM club_members m JOIN customer_cards c ON c.id = m.customer_id
    WHERE m.status = 'active' AND c.deleted_at IS NULL
    UNION ALL
    SELECT m.id, c.id, c.display_name, 'important_date', d->>'label', (d->>'date')::date, 0
    FROM club_members m JOIN customer_cards c ON c.id = m.customer_id,
         jsonb_array_elements(c.important_dates) d
    WHERE m.status = 'active' AND c.deleted_at IS NULL
), years AS (
    SELECT *, greatest(min_years, extract(year FROM $1::date)::int - extract(year FROM since)::int) AS y
    FROM dates
), next AS (
    SELECT member_id, customer_id, display_name, occasion, label,
           CASE WHEN (since + make_interval(years => y))::date >= $1 THEN (since + make_interval(years => y))::date
                ELSE (since + make_interval(years => y + 1))::date END AS falls_on,
           CASE WHEN (since + make_interval(years => y))::date >= $1 THEN y ELSE y + 1 END AS years
    FROM years
)
SELECT * FROM next
WHERE falls_on <= $2
  AND ($3::date IS NULL OR (falls_on, member_id, occasion, coalesce(label, '')) > ($3, $4, $5, $6))
ORDER BY falls_on, member_id, occasion, coalesce(label, '')
LIMIT $7";
