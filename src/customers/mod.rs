//! The customer file (客户档案): the relationship card, the personal file, the customer's
//! place on the ladder, in the value pyramid and in the lifecycle, and the value figures
//! that orders keep up to date.

pub mod api;
pub mod csv;
pub mod fields;
pub mod me;
pub mod merging;
pub mod personal_data;
pub mod queries;
pub mod routes;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use validator::Validate;

use crate::db::schema::customers;
use crate::http::timestamps::{optional_timestamp, timestamp};
use crate::kit::Money;
use crate::kit::ids::{CustomerId, UserId};
use crate::kit::input::{Latitude, Longitude, Text};
use crate::text_enum;

/// The tables this domain owns: other domains name none of them, and reach what they hold
/// through `customers::api` (a test reads the source to keep it so).
pub const TABLES: [&str; 1] = ["customers"];

text_enum! {
    /// A person or an organisation (work unit).
    pub enum Kind { Person = "person", Organization = "organization" }
}

text_enum! {
    /// The relationship ladder (客户分类): five rungs, each managed differently.
    pub enum Level {
        Potential = "potential",
        Prospect = "prospect",
        Registered = "registered",
        Active = "active",
        Core = "core",
    }
}

text_enum! {
    /// The value pyramid (客户金字塔).
    pub enum Tier { Key = "key", Major = "major", Ordinary = "ordinary", LongTail = "long_tail" }
}

text_enum! {
    /// The relationship lifecycle (客户关系生命周期).
    pub enum Stage {
        Exploration = "exploration",
        Formation = "formation",
        Stability = "stability",
        Decline = "decline",
        Churned = "churned",
    }
}

text_enum! {
    /// Why a customer left (客户流失的原因).
    pub enum ChurnReason {
        PoorService = "poor_service",
        LackOfPersonalisation = "lack_of_personalisation",
        BetterProduct = "better_product",
        Price = "price",
        Other = "other",
    }
}

text_enum! {
    /// Gender, as the customer states it.
    pub enum Gender { Female = "female", Male = "male", Other = "other", Undisclosed = "undisclosed" }
}

text_enum! {
    /// Income level of the personal file.
    pub enum IncomeBand {
        Low = "low",
        LowerMiddle = "lower_middle",
        Middle = "middle",
        UpperMiddle = "upper_middle",
        High = "high",
    }
}

/// A postal address, optionally with coordinates (for visit check-ins).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// `home`, `work`, `billing`, ...
    #[validate(nested)]
    pub label: Option<Text<0, 50>>,
    #[validate(nested)]
    pub line1: Text<1, 200>,
    #[validate(nested)]
    pub line2: Option<Text<0, 200>>,
    #[validate(nested)]
    pub city: Option<Text<0, 100>>,
    #[validate(nested)]
    pub region: Option<Text<0, 100>>,
    #[validate(nested)]
    pub postal_code: Option<Text<0, 20>>,
    /// ISO 3166-1 alpha-2.
    #[validate(nested)]
    pub country: Option<Text<2, 2>>,
    #[validate(nested)]
    pub latitude: Option<Latitude>,
    #[validate(nested)]
    pub longitude: Option<Longitude>,
}

/// A date that matters to the customer (重要日子): an anniversary, a child's birthday.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportantDate {
    #[validate(nested)]
    pub label: Text<1, 100>,
    pub date: NaiveDate,
}

/// Marketing consent on one channel, with when it was last given or withdrawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Consent {
    pub granted: bool,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

/// Marketing consent per channel; a channel never asked is absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Consents {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<Consent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms: Option<Consent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<Consent>,
}

/// A customer row, every column but the search text the database maintains.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = customers, treat_none_as_null = true)]
pub struct CustomerRow {
    pub id: CustomerId,
    pub kind: Kind,
    pub display_name: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub company: Option<String>,
    pub position: Option<String>,
    pub phones: Vec<String>,
    pub emails: Vec<String>,
    pub addresses: Value,
    pub gender: Option<Gender>,
    pub birthday: Option<NaiveDate>,
    pub hobbies: Vec<String>,
    pub personality: Option<String>,
    pub family_situation: Option<String>,
    pub occupation: Option<String>,
    pub income_band: Option<IncomeBand>,
    pub likes: Vec<String>,
    pub dislikes: Vec<String>,
    pub important_dates: Value,
    pub notes: Option<String>,
    pub level: Level,
    pub tier: Option<Tier>,
    pub lifecycle_stage: Stage,
    pub churn_reason: Option<ChurnReason>,
    pub owner_id: Option<UserId>,
    pub region: Option<String>,
    pub tags: Vec<String>,
    pub attributes: Value,
    pub referred_by: Option<CustomerId>,
    pub source: Option<String>,
    pub external_ref: Option<String>,
    pub consents: Value,
    pub currency: Option<String>,
    pub order_count: i32,
    pub total_spent_minor: i64,
    pub first_purchase_at: Option<DateTime<Utc>>,
    pub last_purchase_at: Option<DateTime<Utc>>,
    pub merged_into: Option<CustomerId>,
    pub erased_at: Option<DateTime<Utc>>,
    pub erased_by: Option<String>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl CustomerRow {
    /// A new, empty customer (the caller fills in at least the display name).
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            id: CustomerId::new(),
            kind: Kind::Person,
            display_name: String::new(),
            given_name: None,
            family_name: None,
            company: None,
            position: None,
            phones: Vec::new(),
            emails: Vec::new(),
            addresses: Value::Array(Vec::new()),
            gender: None,
            birthday: None,
            hobbies: Vec::new(),
            personality: None,
            family_situation: None,
            occupation: None,
            income_band: None,
            likes: Vec::new(),
            dislikes: Vec::new(),
            important_dates: Value::Array(Vec::new()),
            notes: None,
            level: Level::Registered,
            tier: None,
            lifecycle_stage: Stage::Exploration,
            churn_reason: None,
            owner_id: None,
            region: None,
            tags: Vec::new(),
            attributes: Value::Object(Map::new()),
            referred_by: None,
            source: None,
            external_ref: None,
            consents: Value::Object(Map::new()),
            currency: None,
            order_count: 0,
            total_spent_minor: 0,
            first_purchase_at: None,
            last_purchase_at: None,
            merged_into: None,
            erased_at: None,
            erased_by: None,
            deleted_at: None,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A customer as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Customer {
    pub id: CustomerId,
    pub kind: Kind,
    #[schema(example = "Wang Li")]
    pub display_name: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// Employer or work unit (工作单位).
    pub company: Option<String>,
    pub position: Option<String>,
    /// E.164 (`+8613800138000`).
    pub phones: Vec<String>,
    pub emails: Vec<String>,
    pub addresses: Vec<Address>,
    pub gender: Option<Gender>,
    pub birthday: Option<NaiveDate>,
    pub hobbies: Vec<String>,
    pub personality: Option<String>,
    pub family_situation: Option<String>,
    pub occupation: Option<String>,
    pub income_band: Option<IncomeBand>,
    pub likes: Vec<String>,
    pub dislikes: Vec<String>,
    pub important_dates: Vec<ImportantDate>,
    pub notes: Option<String>,
    pub level: Level,
    pub tier: Option<Tier>,
    pub lifecycle_stage: Stage,
    pub churn_reason: Option<ChurnReason>,
    /// The staff member responsible for the customer.
    pub owner_id: Option<UserId>,
    pub region: Option<String>,
    pub tags: Vec<String>,
    /// Custom fields; filter lists with `attr.<name>=<value>`.
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    /// The customer who referred this one.
    pub referred_by: Option<CustomerId>,
    /// The system the customer came from, with `external_ref` its id there (unique together).
    pub source: Option<String>,
    pub external_ref: Option<String>,
    pub consents: Consents,
    /// Paid or fulfilled orders.
    pub order_count: i32,
    pub total_spent: Money,
    pub average_order_value: Option<Money>,
    #[serde(serialize_with = "optional_timestamp")]
    pub first_purchase_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "optional_timestamp")]
    pub last_purchase_at: Option<DateTime<Utc>>,
    /// Set when personal data was erased.
    #[serde(serialize_with = "optional_timestamp")]
    pub erased_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

fn parse_json<T: serde::de::DeserializeOwned + Default>(value: &Value) -> T {
    T::deserialize(value).unwrap_or_default()
}

impl From<CustomerRow> for Customer {
    fn from(row: CustomerRow) -> Self {
        let currency = row.currency.unwrap_or_else(|| "XXX".into());
        let average = (row.order_count > 0).then(|| Money {
            amount_minor: row.total_spent_minor / i64::from(row.order_count),
            currency: currency.clone(),
        });
        Self {
            id: row.id,
            kind: row.kind,
            display_name: row.display_name,
            given_name: row.given_name,
            family_name: row.family_name,
            company: row.company,
            position: row.position,
            phones: row.phones,
            emails: row.emails,
            addresses: parse_json(&row.addresses),
            gender: row.gender,
            birthday: row.birthday,
            hobbies: row.hobbies,
            personality: row.personality,
            family_situation: row.family_situation,
            occupation: row.occupation,
            income_band: row.income_band,
            likes: row.likes,
            dislikes: row.dislikes,
            important_dates: parse_json(&row.important_dates),
            notes: row.notes,
            level: row.level,
            tier: row.tier,
            lifecycle_stage: row.lifecycle_stage,
            churn_reason: row.churn_reason,
            owner_id: row.owner_id,
            region: row.region,
            tags: row.tags,
            attributes: match row.attributes {
                Value::Object(map) => map,
                _ => Map::new(),
            },
            referred_by: row.referred_by,
            source: row.source,
            external_ref: row.external_ref,
            consents: parse_json(&row.consents),
            order_count: row.order_count,
            total_spent: Money {
                amount_minor: row.total_spent_minor,
                currency,
            },
            average_order_value: average,
            first_purchase_at: row.first_purchase_at,
            last_purchase_at: row.last_purchase_at,
            erased_at: row.erased_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// The events the customer file records.
pub fn event_types() -> Vec<crate::kit::event_types::EventType> {
    use crate::kit::event_types::EventType;
    use crate::kit::schema_part::SchemaPart;
    let customer = SchemaPart::of::<Customer>;
    let mut types = EventType::lifecycle::<Customer>("customer", "customer");
    // The member's own profile: created and changed (a merge into it changes it too).
    for t in types.iter_mut().filter(|t| t.name != "customer.deleted") {
        *t = t.clone().for_members(|_, _| Some("/api/v1/me".into()));
    }
    types.extend([
        EventType::new(
            "customer.merged",
            "A duplicate was merged into this customer (the duplicate's `customer.deleted` comes in the same transaction).",
            customer,
        )
        .for_members(|_, _| Some("/api/v1/me".into())),
        EventType::new(
            "customer.tier_changed",
            "A customer's value tier changed (also announced as `customer.updated`).",
            customer,
        ),
        EventType::new(
            "customer.erased",
            "A customer's personal data was erased (right to erasure); earlier events about them are redacted.",
            customer,
        ),
    ]);
    types
}
