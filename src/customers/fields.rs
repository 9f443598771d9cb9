//! The writable fields of a customer, as create, patch, batch upsert and CSV import send
//! them, with their validation and normalisation (E.164 phones, lower-case e-mails, ...).
//! Computed figures are not fields here, so a body that sets them is refused.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AllOfBuilder, AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, Ref, Schema,
    SchemaFormat, SchemaType, Type,
};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;
use validator::Validate;

use super::{
    Address, ChurnReason, CustomerRow, Gender, ImportantDate, IncomeBand, Kind, Level, Stage, Tier,
};
use crate::error::FieldError;
use crate::http::json::{Field, Validated, field_errors};

/// Consent changes: `true` grants, `false` withdraws, absent leaves as is.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentChanges {
    pub email: Option<bool>,
    pub sms: Option<bool>,
    pub phone: Option<bool>,
}

/// Customer fields in a request. On create, absent fields take their defaults
/// (`display_name` is required); on update, absent fields stay as they are and `null`
/// clears a field (lists become empty).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CustomerFields {
    /// `person` when absent on create; never `null`.
    #[schema(value_type = Kind)]
    pub kind: Field<Kind>,
    /// 1 to 200 characters; derived from the given and family names when absent on create;
    /// never `null`.
    #[schema(schema_with = display_name_schema, example = "Wang Li")]
    pub display_name: Field<String>,
    #[schema(value_type = Option<String>, max_length = 100, example = "Li")]
    pub given_name: Field<String>,
    #[schema(value_type = Option<String>, max_length = 100, example = "Wang")]
    pub family_name: Field<String>,
    #[schema(value_type = Option<String>, max_length = 200)]
    pub company: Field<String>,
    #[schema(value_type = Option<String>, max_length = 100)]
    pub position: Field<String>,
    /// Up to 10, international format; spaces, dashes, dots and brackets are removed, `00`
    /// becomes `+`, and the result must be `+` and 7 to 15 digits.
    #[schema(schema_with = phone_list, example = json!(["+86 138 0013 8000"]))]
    pub phones: Field<Vec<String>>,
    /// Up to 10; stored in lower case.
    #[schema(schema_with = email_list, example = json!(["li.wang@example.com"]))]
    pub emails: Field<Vec<String>>,
    /// Up to 10.
    #[schema(schema_with = address_list)]
    pub addresses: Field<Vec<Address>>,
    #[schema(value_type = Option<Gender>)]
    pub gender: Field<Gender>,
    /// From 1900-01-01 to today.
    #[schema(value_type = Option<NaiveDate>)]
    pub birthday: Field<NaiveDate>,
    #[schema(schema_with = text_list::<50, 100>)]
    pub hobbies: Field<Vec<String>>,
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub personality: Field<String>,
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub family_situation: Field<String>,
    #[schema(value_type = Option<String>, max_length = 200)]
    pub occupation: Field<String>,
    #[schema(value_type = Option<IncomeBand>)]
    pub income_band: Field<IncomeBand>,
    #[schema(schema_with = text_list::<50, 200>)]
    pub likes: Field<Vec<String>>,
    #[schema(schema_with = text_list::<50, 200>)]
    pub dislikes: Field<Vec<String>>,
    /// Up to 20.
    #[schema(schema_with = important_date_list)]
    pub important_dates: Field<Vec<ImportantDate>>,
    #[schema(value_type = Option<String>, max_length = 10000)]
    pub notes: Field<String>,
    /// `registered` when absent on create; never `null`.
    #[schema(value_type = Level)]
    pub level: Field<Level>,
    #[schema(value_type = Option<Tier>)]
    pub tier: Field<Tier>,
    /// `exploration` when absent on create; never `null`.
    #[schema(value_type = Stage)]
    pub lifecycle_stage: Field<Stage>,
    /// Required in a request that sets `lifecycle_stage` to `churned`; cleared when the
    /// stage is anything else.
    #[schema(value_type = Option<ChurnReason>)]
    pub churn_reason: Field<ChurnReason>,
    /// An active staff user. Agents may only name themselves.
    #[schema(value_type = Option<Uuid>)]
    pub owner_id: Field<Uuid>,
    #[schema(value_type = Option<String>, max_length = 100)]
    pub region: Field<String>,
    #[schema(schema_with = text_list::<50, 50>, example = json!(["vip"]))]
    pub tags: Field<Vec<String>>,
    /// Up to 100 custom fields: names of 1 to 64 lower-case letters, digits and `_`; values
    /// strings (up to 500 characters), numbers or booleans.
    #[schema(schema_with = attributes_schema, example = json!({"shoe_size": 42}))]
    pub attributes: Field<Map<String, Value>>,
    /// Another live customer.
    #[schema(value_type = Option<Uuid>)]
    pub referred_by: Field<Uuid>,
    /// With `external_ref`: the customer's id in another system (unique together).
    #[schema(value_type = Option<String>, max_length = 50, example = "webshop")]
    pub source: Field<String>,
    #[schema(value_type = Option<String>, max_length = 200, example = "C-10045")]
    pub external_ref: Field<String>,
    #[schema(value_type = Option<ConsentChanges>)]
    pub consents: Field<ConsentChanges>,
}

/// The characters Rust's `trim` removes (Unicode White_Space), as a regex class body: the
/// patterns' `\s` would differ (ECMA-262 counts U+FEFF and not U+0085).
macro_rules! white_space {
    () => {
        r"\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    };
}

/// Text that is not only white space (the server trims every text).
const NOT_BLANK: &str = concat!("[^", white_space!(), "]");

/// What `normalise_phone` accepts, as a pattern: separators anywhere, `+` or `00`, then 7 to
/// 15 digits, the first not `0`.
const PHONE_PATTERN: &str = concat!(
    "^[",
    white_space!(),
    r"]*[-. ()\u00a0]*(\+|0[-. ()\u00a0]*0)[-. ()\u00a0]*[1-9]([-. ()\u00a0]*[0-9]){6,14}[-. ()\u00a0]*[",
    white_space!(),
    "]*$"
);

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// A trimmed text of 1 to `max` characters.
fn text(max: usize) -> ObjectBuilder {
    string()
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(NOT_BLANK))
}

/// `schema_with` of `display_name`: never `null`.
pub fn display_name_schema() -> Schema {
    text(200).into()
}

/// The string schema, also accepting `null`.
fn or_null(string: ObjectBuilder) -> Schema {
    string
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .into()
}

/// `schema_with` of an optional text of 1 to `MAX` characters, not blank.
pub fn optional_text<const MAX: usize>() -> Schema {
    or_null(text(MAX))
}

/// A list that `null` clears, of at most `max_items`.
fn list(item: impl Into<RefOr<Schema>>, max_items: usize) -> Schema {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(item.into())
        .max_items(Some(max_items))
        .into()
}

/// `schema_with` of the text lists (hobbies, tags, ...): up to `ITEMS` texts of 1 to `LEN`.
pub fn text_list<const ITEMS: usize, const LEN: usize>() -> Schema {
    list(text(LEN), ITEMS)
}

/// A phone number as `normalise_phone` accepts it.
fn phone() -> ObjectBuilder {
    string().max_length(Some(40)).pattern(Some(PHONE_PATTERN))
}

/// `schema_with` of `phones`.
pub fn phone_list() -> Schema {
    list(phone(), 10)
}

/// `schema_with` of a single phone number that may be `null`.
pub fn optional_phone() -> Schema {
    or_null(phone())
}

/// `schema_with` of `emails`.
pub fn email_list() -> Schema {
    list(
        string()
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
            .max_length(Some(254)),
        10,
    )
}

/// `schema_with` of `addresses`.
pub fn address_list() -> Schema {
    list(Ref::from_schema_name("Address"), 10)
}

/// `schema_with` of `important_dates`.
pub fn important_date_list() -> Schema {
    list(Ref::from_schema_name("ImportantDate"), 20)
}

/// `schema_with` of `attributes`.
pub fn attributes_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .max_properties(Some(100))
        .property_names(Some(string().pattern(Some("^[a-z0-9_]{1,64}$"))))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([
                    Type::String,
                    Type::Number,
                    Type::Boolean,
                ]))
                .max_length(Some(500))
                .minimum(Some(-ATTRIBUTE_NUMBER_LIMIT))
                .maximum(Some(ATTRIBUTE_NUMBER_LIMIT)),
        ))
        .into()
}

/// The rule between `lifecycle_stage` and `churn_reason` that one request must meet: setting
/// the stage to `churned` names the reason.
fn churn_rule() -> Schema {
    let other_stages = Stage::ALL
        .iter()
        .filter(|stage| **stage != Stage::Churned)
        .map(|stage| stage.as_str());
    AnyOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .property("lifecycle_stage", string().enum_values(Some(other_stages))),
        )
        .item(
            ObjectBuilder::new()
                .property("churn_reason", Ref::from_schema_name("ChurnReason"))
                .required("churn_reason"),
        )
        .into()
}

/// Both of `source` and `external_ref`, as texts.
fn with_reference() -> ObjectBuilder {
    ObjectBuilder::new()
        .property("source", text(50))
        .property("external_ref", text(200))
        .required("source")
        .required("external_ref")
}

/// `CustomerFields` with further rules between fields, as one kind of request sends them.
fn fields_with(rules: impl IntoIterator<Item = Schema>) -> RefOr<Schema> {
    rules
        .into_iter()
        .fold(
            AllOfBuilder::new().item(Ref::from_schema_name("CustomerFields")),
            |all, rule| all.item(rule),
        )
        .into()
}

/// Makes a request schema built on `CustomerFields` a component that registers
/// `CustomerFields` (and what it names) beside itself.
macro_rules! fields_schema {
    ($name:ident) => {
        impl ToSchema for $name {
            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                schemas.push(("CustomerFields".into(), CustomerFields::schema()));
                <CustomerFields as ToSchema>::schemas(schemas);
            }
        }
    };
}

/// The body of `POST /customers`: the fields, with a name (`display_name`, or a given or family
/// name to derive it from), `source` and `external_ref` together or neither, and the churn rule.
pub struct NewCustomer;

impl PartialSchema for NewCustomer {
    fn schema() -> RefOr<Schema> {
        // The field's own limits come from `CustomerFields`; a branch only says it is there.
        let named = |field: &str| {
            Schema::from(
                ObjectBuilder::new()
                    .property(field, string().pattern(Some(NOT_BLANK)))
                    .required(field),
            )
        };
        let no_reference = ObjectBuilder::new()
            .property("source", ObjectBuilder::new().schema_type(Type::Null))
            .property("external_ref", ObjectBuilder::new().schema_type(Type::Null));
        fields_with([
            AnyOfBuilder::new()
                .item(named("display_name"))
                .item(named("given_name"))
                .item(named("family_name"))
                .into(),
            AnyOfBuilder::new()
                .item(no_reference)
                .item(with_reference())
                .into(),
            churn_rule(),
        ])
    }
}

fields_schema!(NewCustomer);

/// The body of `PATCH /customers/{id}` (merge patch): the fields and the churn rule. Rules
/// that depend on what is stored are checked on the changed customer (`409`).
pub struct CustomerPatch;

impl PartialSchema for CustomerPatch {
    fn schema() -> RefOr<Schema> {
        fields_with([churn_rule()])
    }
}

fields_schema!(CustomerPatch);

/// One item of `POST /customers/batch`: the fields with `source` and `external_ref`, which
/// name the customer to create or update, and the churn rule.
pub struct BatchItem;

impl PartialSchema for BatchItem {
    fn schema() -> RefOr<Schema> {
        fields_with([with_reference().into(), churn_rule()])
    }
}

fields_schema!(BatchItem);

/// The largest attribute number, in either sign: exact in a double, readable back from
/// PostgreSQL's `jsonb`, and safe in JavaScript clients.
const ATTRIBUTE_NUMBER_LIMIT: f64 = 1e15;

/// Collects field errors while checking.
#[derive(Default)]
struct Checks(Vec<FieldError>);

impl Checks {
    fn fail(&mut self, field: impl Into<String>, code: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, code, message));
    }

    fn not_null<T>(&mut self, name: &str, field: &Field<T>) {
        if matches!(field, Field::Null) {
            self.fail(name, "required", "cannot be null");
        }
    }

    fn text(&mut self, name: &str, field: &mut Field<String>, max: usize) {
        if let Field::Value(text) = field {
            let trimmed = text.trim();
            if trimmed.is_empty() {
                *field = Field::Null;
            } else if trimmed.chars().count() > max {
                self.fail(name, "length", format!("length must be at most {max}"));
            } else {
                *text = trimmed.to_owned();
            }
        }
    }

    fn list(
        &mut self,
        name: &str,
        field: &mut Field<Vec<String>>,
        max_items: usize,
        max_len: usize,
    ) {
        let Field::Value(items) = field else { return };
        if items.len() > max_items {
            self.fail(name, "length", format!("at most {max_items} items"));
        }
        let mut seen = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let item = item.trim();
            if item.is_empty() || item.chars().count() > max_len {
                self.fail(
                    format!("{name}[{i}]"),
                    "length",
                    format!("length must be between 1 and {max_len}"),
                );
            } else if !seen.iter().any(|s: &String| s == item) {
                seen.push(item.to_owned());
            }
        }
        *items = seen;
    }

    fn nested<T: Validate>(&mut self, name: &str, items: &[T], max_items: usize) {
        if items.len() > max_items {
            self.fail(name, "length", format!("at most {max_items} items"));
        }
        for (i, item) in items.iter().enumerate() {
            if let Err(errors) = item.validate() {
                let parent = format!("{name}[{i}]");
                self.0
                    .extend(field_errors(&errors).into_iter().map(|e| e.within(&parent)));
            }
        }
    }
}

/// Normalises a phone number to E.164, or says why it cannot be.
pub fn normalise_phone(raw: &str) -> Result<String, &'static str> {
    let compact: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}'))
        .collect();
    let compact = match compact.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => compact,
    };
    let digits = compact
        .strip_prefix('+')
        .ok_or("must be in international format: + and the country code")?;
    let valid = (7..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0');
    if valid {
        Ok(compact)
    } else {
        Err("must be an E.164 number: + then 7 to 15 digits")
    }
}

/// Whether `name` may name a custom attribute: 1 to 64 of `a-z`, `0-9`, `_`.
pub fn is_attribute_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Validated for CustomerFields {
    fn validated(mut self) -> Result<Self, Vec<FieldError>> {
        let mut checks = Checks::default();
        checks.not_null("kind", &self.kind);
        checks.not_null("display_name", &self.display_name);
        checks.not_null("level", &self.level);
        checks.not_null("lifecycle_stage", &self.lifecycle_stage);
        if matches!(self.lifecycle_stage, Field::Value(Stage::Churned))
            && !matches!(self.churn_reason, Field::Value(_))
        {
            checks.fail(
                "churn_reason",
                "required",
                "is required when lifecycle_stage is set to churned",
            );
        }
        if self
            .display_name
            .value()
            .is_some_and(|name| name.trim().is_empty())
        {
            checks.fail("display_name", "length", "length must be between 1 and 200");
        }
        checks.text("display_name", &mut self.display_name, 200);
        for (name, field, max) in [
            ("given_name", &mut self.given_name, 100),
            ("family_name", &mut self.family_name, 100),
            ("company", &mut self.company, 200),
            ("position", &mut self.position, 100),
            ("personality", &mut self.personality, 2000),
            ("family_situation", &mut self.family_situation, 2000),
            ("occupation", &mut self.occupation, 200),
            ("notes", &mut self.notes, 10_000),
            ("region", &mut self.region, 100),
            ("source", &mut self.source, 50),
            ("external_ref", &mut self.external_ref, 200),
        ] {
            checks.text(name, field, max);
        }
        for (name, field, items, len) in [
            ("hobbies", &mut self.hobbies, 50, 100),
            ("likes", &mut self.likes, 50, 200),
            ("dislikes", &mut self.dislikes, 50, 200),
            ("tags", &mut self.tags, 50, 50),
            ("phones", &mut self.phones, 10, 40),
            ("emails", &mut self.emails, 10, 254),
        ] {
            checks.list(name, field, items, len);
        }
        if let Field::Value(phones) = &mut self.phones {
            for (i, phone) in phones.iter_mut().enumerate() {
                match normalise_phone(phone) {
                    Ok(normal) => *phone = normal,
                    Err(message) => checks.fail(format!("phones[{i}]"), "phone", message),
                }
            }
            phones.dedup();
        }
        if let Field::Value(emails) = &mut self.emails {
            for (i, email) in emails.iter_mut().enumerate() {
                *email = email.to_lowercase();
                if !validator::ValidateEmail::validate_email(email) {
                    checks.fail(
                        format!("emails[{i}]"),
                        "email",
                        "must be a valid e-mail address",
                    );
                }
            }
        }
        if let Field::Value(addresses) = &self.addresses {
            checks.nested("addresses", addresses, 10);
        }
        if let Field::Value(dates) = &self.important_dates {
            checks.nested("important_dates", dates, 20);
        }
        if let Field::Value(birthday) = self.birthday {
            let today = Utc::now().date_naive();
            if birthday > today {
                checks.fail("birthday", "range", "cannot be in the future");
            } else if birthday < NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(today) {
                checks.fail("birthday", "range", "must be in 1900 or later");
            }
        }
        if let Field::Value(attributes) = &self.attributes {
            if attributes.len() > 100 {
                checks.fail("attributes", "length", "at most 100 attributes");
            }
            for (name, value) in attributes {
                if !is_attribute_name(name) {
                    checks.fail(
                        format!("attributes.{name}"),
                        "name",
                        "names are 1 to 64 of a-z, 0-9 and _",
                    );
                } else if !(value.is_string() || value.is_number() || value.is_boolean()) {
                    checks.fail(
                        format!("attributes.{name}"),
                        "type",
                        "must be a string, a number or a boolean",
                    );
                } else if value
                    .as_f64()
                    .is_some_and(|n| n.abs() > ATTRIBUTE_NUMBER_LIMIT)
                {
                    checks.fail(
                        format!("attributes.{name}"),
                        "range",
                        "numbers must be between -10^15 and 10^15",
                    );
                } else if value.as_str().is_some_and(|s| s.chars().count() > 500) {
                    checks.fail(
                        format!("attributes.{name}"),
                        "length",
                        "length must be at most 500",
                    );
                }
            }
        }
        if checks.0.is_empty() {
            Ok(self)
        } else {
            Err(checks.0)
        }
    }
}

fn set<T>(target: &mut T, field: Field<T>, default: impl FnOnce() -> T) {
    match field {
        Field::Absent => {}
        Field::Null => *target = default(),
        Field::Value(v) => *target = v,
    }
}

fn set_option<T>(target: &mut Option<T>, field: Field<T>) {
    set(target, field.map_value(Some), || None);
}

fn set_text_enum<E: Copy>(
    target: &mut Option<String>,
    field: Field<E>,
    name: impl Fn(E) -> &'static str,
) {
    set_option(target, field.map_value(|e| name(e).to_owned()));
}

fn set_json<T: serde::Serialize>(target: &mut Value, field: Field<Vec<T>>) {
    set(
        target,
        field.map_value(|items| serde_json::to_value(items).unwrap_or_default()),
        || Value::Array(Vec::new()),
    );
}

impl<T> Field<T> {
    /// The field with its value converted.
    pub fn map_value<U>(self, f: impl FnOnce(T) -> U) -> Field<U> {
        match self {
            Field::Absent => Field::Absent,
            Field::Null => Field::Null,
            Field::Value(v) => Field::Value(f(v)),
        }
    }
}

impl CustomerFields {
    /// Writes the sent fields onto a row and enforces the rules between fields. Returns
    /// the field errors that only the combination reveals.
    pub fn apply(self, row: &mut CustomerRow, now: DateTime<Utc>) -> Vec<FieldError> {
        let derived_name = match (
            &self.display_name,
            self.given_name.value(),
            self.family_name.value(),
        ) {
            (Field::Absent, Some(given), family) if row.display_name.is_empty() => Some(
                format!("{} {given}", family.map(String::as_str).unwrap_or(""))
                    .trim()
                    .to_owned(),
            ),
            (Field::Absent, None, Some(family)) if row.display_name.is_empty() => {
                Some(family.clone())
            }
            _ => None,
        };
        if let Field::Value(kind) = self.kind {
            row.kind = kind.as_str().to_owned();
        }
        if let Field::Value(name) = self.display_name {
            row.display_name = name;
        } else if let Some(name) = derived_name {
            row.display_name = name;
        }
        set_option(&mut row.given_name, self.given_name);
        set_option(&mut row.family_name, self.family_name);
        set_option(&mut row.company, self.company);
        set_option(&mut row.position, self.position);
        set(&mut row.phones, self.phones, Vec::new);
        set(&mut row.emails, self.emails, Vec::new);
        set_json(&mut row.addresses, self.addresses);
        set_text_enum(&mut row.gender, self.gender, Gender::as_str);
        set_option(&mut row.birthday, self.birthday);
        set(&mut row.hobbies, self.hobbies, Vec::new);
        set_option(&mut row.personality, self.personality);
        set_option(&mut row.family_situation, self.family_situation);
        set_option(&mut row.occupation, self.occupation);
        set_text_enum(&mut row.income_band, self.income_band, IncomeBand::as_str);
        set(&mut row.likes, self.likes, Vec::new);
        set(&mut row.dislikes, self.dislikes, Vec::new);
        set_json(&mut row.important_dates, self.important_dates);
        set_option(&mut row.notes, self.notes);
        if let Field::Value(level) = self.level {
            row.level = level.as_str().to_owned();
        }
        set_text_enum(&mut row.tier, self.tier, Tier::as_str);
        if let Field::Value(stage) = self.lifecycle_stage {
            row.lifecycle_stage = stage.as_str().to_owned();
        }
        set_text_enum(
            &mut row.churn_reason,
            self.churn_reason,
            ChurnReason::as_str,
        );
        set_option(&mut row.owner_id, self.owner_id);
        set_option(&mut row.region, self.region);
        set(&mut row.tags, self.tags, Vec::new);
        set(
            &mut row.attributes,
            self.attributes.map_value(Value::Object),
            || Value::Object(Map::new()),
        );
        set_option(&mut row.referred_by, self.referred_by);
        set_option(&mut row.source, self.source);
        set_option(&mut row.external_ref, self.external_ref);
        if let Field::Value(changes) = self.consents {
            apply_consents(&mut row.consents, &changes, now);
        } else if matches!(self.consents, Field::Null) {
            row.consents = Value::Object(Map::new());
        }

        let mut errors = Vec::new();
        if row.display_name.is_empty() {
            errors.push(FieldError::new(
                "display_name",
                "required",
                "give display_name, or given_name / family_name",
            ));
        }
        if row.lifecycle_stage == Stage::Churned.as_str() {
            if row.churn_reason.is_none() {
                errors.push(FieldError::new(
                    "churn_reason",
                    "required",
                    "is required when lifecycle_stage is churned",
                ));
            }
        } else {
            row.churn_reason = None;
        }
        if row.source.is_some() != row.external_ref.is_some() {
            errors.push(FieldError::new(
                "external_ref",
                "required",
                "source and external_ref go together",
            ));
        }
        if row.referred_by == Some(row.id) {
            errors.push(FieldError::new(
                "referred_by",
                "self",
                "a customer cannot refer themselves",
            ));
        }
        errors
    }
}

fn apply_consents(stored: &mut Value, changes: &ConsentChanges, now: DateTime<Utc>) {
    if !stored.is_object() {
        *stored = Value::Object(Map::new());
    }
    let Some(map) = stored.as_object_mut() else {
        return;
    };
    for (channel, granted) in [
        ("email", changes.email),
        ("sms", changes.sms),
        ("phone", changes.phone),
    ] {
        let Some(granted) = granted else { continue };
        let unchanged = map
            .get(channel)
            .and_then(|c| c.get("granted"))
            .and_then(Value::as_bool)
            == Some(granted);
        if !unchanged {
            map.insert(
                channel.to_owned(),
                serde_json::json!({"granted": granted, "updated_at": now}),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_normalise_to_e164() {
        assert_eq!(
            normalise_phone("+86 138-0013-8000").unwrap(),
            "+8613800138000"
        );
        assert_eq!(
            normalise_phone("0044 (20) 7946.0958").unwrap(),
            "+442079460958"
        );
        assert!(normalise_phone("13800138000").is_err());
        assert!(normalise_phone("+0123456789").is_err());
        assert!(normalise_phone("+12ab456789").is_err());
        assert!(normalise_phone("+123").is_err());
    }

    fn fields(json: &str) -> Result<CustomerFields, Vec<FieldError>> {
        crate::http::json::parse::<CustomerFields>(json.as_bytes())
            .unwrap()
            .validated()
    }

    #[test]
    fn validation_names_each_bad_field() {
        let errors = fields(
            r#"{"emails": ["ok@example.com", "nope"], "phones": ["123"], "birthday": "2999-01-01",
                                "attributes": {"Bad Name": 1, "nested": {"a": 1}}}"#,
        )
        .unwrap_err();
        let names: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            names,
            [
                "phones[0]",
                "emails[1]",
                "birthday",
                "attributes.Bad Name",
                "attributes.nested"
            ]
        );
    }

    #[test]
    fn apply_sets_clears_and_checks_combinations() {
        let now = Utc::now();
        let mut row = CustomerRow::new(now);
        let churned_without_reason = fields(r#"{"lifecycle_stage": "churned"}"#).unwrap_err();
        assert_eq!(churned_without_reason[0].field, "churn_reason");
        let f = fields(r#"{"given_name": "Li", "family_name": "Wang", "tags": ["vip", "vip"], "lifecycle_stage": "churned",
                           "churn_reason": "price", "consents": {"email": true}}"#)
        .unwrap();
        assert!(f.apply(&mut row, now).is_empty());
        assert_eq!(row.display_name, "Wang Li");
        assert_eq!(row.tags, ["vip"]);
        assert_eq!(row.consents["email"]["granted"], true);
        let errors = fields(r#"{"churn_reason": null}"#)
            .unwrap()
            .apply(&mut row.clone(), now);
        assert_eq!(
            errors[0].field, "churn_reason",
            "a churned customer keeps a reason"
        );
        let clear =
            fields(r#"{"tags": null, "lifecycle_stage": "formation", "churn_reason": "price"}"#)
                .unwrap();
        assert!(clear.apply(&mut row, now).is_empty());
        assert!(row.tags.is_empty());
        assert_eq!(
            row.churn_reason, None,
            "a reason is kept only while churned"
        );
    }

    #[test]
    fn null_is_refused_where_a_value_is_required() {
        let errors = fields(r#"{"display_name": null, "level": null}"#).unwrap_err();
        assert!(errors.iter().any(|e| e.field == "display_name"));
        assert!(errors.iter().any(|e| e.field == "level"));
    }
}
