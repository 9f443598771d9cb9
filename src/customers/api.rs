//! What other domains may ask of the customer file: find and lock a customer, create one
//! named by a shop's reference, and set the value figures their records add up to. Every
//! change goes through the customer's own rules and the write path.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;

use super::fields::CustomerFields;
use super::queries;
use crate::error::{ApiError, ApiResult};
use crate::http::json::{Field, Validated};
use crate::kit::write::{self, Action, Writer};

pub use super::me::current as member_customer;
pub use super::queries::{find_live, lock_live, lock_row};
pub use super::{Address, CustomerRow, Level, Tier};

/// A customer another system knows by its own reference, with what a new one starts with.
#[derive(Debug, Clone, Default)]
pub struct ReferencedCustomer {
    pub source: String,
    pub external_ref: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// The live customer a request names in `customer_id`: `409` (a rule on that field) when
/// there is none, rather than the `404` of the customer's own routes.
pub async fn find_referenced(
    conn: &mut AsyncPgConnection,
    id: crate::kit::ids::CustomerId,
) -> ApiResult<CustomerRow> {
    find_live(conn, id).await.map_err(|e| match e {
        crate::error::ApiError::NotFound(_) => {
            crate::error::ApiError::rule("customer_id", "not_found", "no such customer")
        }
        other => other,
    })
}

/// `409` (a rule on `field`) unless a record a request names (an order, a complaint) exists
/// — `owner` is its customer, `None` when there is no such record — and is `customer`'s.
pub fn ensure_customers(
    field: &str,
    what: &str,
    owner: Option<crate::kit::ids::CustomerId>,
    customer: crate::kit::ids::CustomerId,
) -> ApiResult<()> {
    use crate::error::ApiError;
    match owner {
        Some(owner) if owner == customer => Ok(()),
        Some(_) => Err(ApiError::rule(
            field,
            "not_customers",
            format!("the {what} is another customer's"),
        )),
        None => Err(ApiError::rule(
            field,
            "not_found",
            format!("no such {what}"),
        )),
    }
}

/// The live customer with this reference, locked; created as `registered` when there is
/// none. Field errors name `field_prefix.*`.
pub async fn lock_or_create(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    who: ReferencedCustomer,
    field_prefix: &str,
) -> ApiResult<CustomerRow> {
    if let Some(found) = queries::lock_by_reference(conn, &who.source, &who.external_ref).await? {
        return Ok(found);
    }
    let fields = CustomerFields {
        display_name: Field::Value(
            who.display_name
                .unwrap_or_else(|| format!("{} {}", who.source, who.external_ref))
                .into(),
        ),
        emails: who
            .email
            .map_or(Field::Absent, |e| Field::Value(vec![e.into()].into())),
        phones: who
            .phone
            .map_or(Field::Absent, |p| Field::Value(vec![p.into()].into())),
        source: Field::Value(who.source.into()),
        external_ref: Field::Value(who.external_ref.into()),
        level: Field::Value(Level::Registered),
        ..CustomerFields::default()
    };
    let fields = fields.validated().map_err(|errors| {
        ApiError::Validation(errors.into_iter().map(|e| e.within(field_prefix)).collect())
    })?;
    queries::insert_new(conn, writer, fields).await
}

/// A customer's value figures, as their counted orders add up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    pub order_count: i32,
    pub total_spent_minor: i64,
    pub first_purchase_at: Option<DateTime<Utc>>,
    pub last_purchase_at: Option<DateTime<Utc>>,
    /// The currency of the counted orders; `None` keeps the customer's.
    pub currency: Option<String>,
}

/// A change of figures.
const FIGURES_UPDATED: Action = Action::named("figures_updated", "updated");

/// Sets the figures of a customer the caller has locked, and moves a first-time buyer up to
/// `active`.
pub async fn set_figures(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    customer: CustomerRow,
    figures: Figures,
) -> ApiResult<CustomerRow> {
    let locked = write::adopt(writer, customer)?;
    let mut after = locked.to_change();
    after.order_count = figures.order_count;
    after.total_spent_minor = figures.total_spent_minor;
    after.first_purchase_at = figures.first_purchase_at;
    after.last_purchase_at = figures.last_purchase_at;
    after.currency = figures.currency.or(after.currency);
    let first_time_buyer =
        [Level::Potential, Level::Prospect, Level::Registered].contains(&after.level);
    if figures.order_count > 0 && first_time_buyer {
        after.level = Level::Active;
    }
    write::save(conn, writer, locked, after, FIGURES_UPDATED).await
}

/// The tag a referred customer carries: an A-grade lead, followed up first.
pub const REFERRED_TAG: &str = "referred";

/// A referral's mark on the customer.
const REFERRED: Action = Action::named("referred", "updated");

/// Marks a live customer as referred by another (`referred_by` and the [`REFERRED_TAG`]).
pub async fn mark_referred(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    customer: crate::kit::ids::CustomerId,
    by: crate::kit::ids::CustomerId,
) -> ApiResult<CustomerRow> {
    let locked = write::adopt(writer, lock_live(conn, customer).await?)?;
    let mut after = locked.to_change();
    after.referred_by = Some(by);
    if !after.tags.iter().any(|t| t == REFERRED_TAG) {
        after.tags.push(REFERRED_TAG.to_owned());
        after.tags.sort_unstable();
    }
    write::save(conn, writer, locked, after, REFERRED).await
}

/// The read models the customer file publishes: views other domains may name in their own
/// queries instead of its tables.
pub const READ_MODELS: [&str; 1] = ["customer_cards"];

diesel::table! {
    /// The customers' card (the `customer_cards` view): who a customer is and how they are
    /// classified, for other domains' queries (the due list, boards, cadences, plans, the
    /// club's greetings and birthday bonuses). Personal fields are blank once erased.
    customer_cards (id) {
        id -> Uuid,
        display_name -> Text,
        tier -> Nullable<Text>,
        level -> Text,
        owner_id -> Nullable<Uuid>,
        birthday -> Nullable<Date>,
        important_dates -> Jsonb,
        merged_into -> Nullable<Uuid>,
        deleted_at -> Nullable<Timestamptz>,
    }
}
