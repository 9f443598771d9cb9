//! The writable fields of a customer, as create, patch, batch upsert and CSV import send
//! them, with their validation and normalisation (E.164 phones, lower-case e-mails, ...).
//! Computed figures are not fields here, so a body that sets them is refused.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AllOfBuilder, AnyOfBuilder, ObjectBuilder, Ref, Schema, SchemaType, Type,
};
use utoipa::{PartialSchema, ToSchema};
use validator::Validate;

use super::{
    Address, ChurnReason, CustomerRow, Gender, ImportantDate, IncomeBand, Kind, Level, Stage, Tier,
};
use crate::error::FieldError;
use crate::http::json::{Field, Validated, field_errors_within};
use crate::kit::ids::{CustomerId, UserId};
use crate::kit::input::{Email, Items, NOT_BLANK, Phone, Text};

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
    #[schema(example = "Wang Li")]
    pub display_name: Field<Text<1, 200>>,
    #[schema(nullable)]
    pub given_name: Field<Text<0, 100>>,
    #[schema(nullable)]
    pub family_name: Field<Text<0, 100>>,
    #[schema(nullable)]
    pub company: Field<Text<0, 200>>,
    #[schema(nullable)]
    pub position: Field<Text<0, 100>>,
    /// International format; spaces, dashes, dots and brackets are removed, `00` becomes
    /// `+`, and the result must be `+` and 7 to 15 digits.
    #[schema(nullable)]
    pub phones: Field<Items<Phone, 0, 10>>,
    /// Stored in lower case.
    #[schema(nullable)]
    pub emails: Field<Items<Email, 0, 10>>,
    #[schema(nullable)]
    pub addresses: Field<Items<Address, 0, 10>>,
    #[schema(value_type = Option<Gender>)]
    pub gender: Field<Gender>,
    /// From 1900-01-01 to today.
    #[schema(value_type = Option<NaiveDate>)]
    pub birthday: Field<NaiveDate>,
    #[schema(nullable)]
    pub hobbies: Field<Items<Text<1, 100>, 0, 50>>,
    #[schema(nullable)]
    pub personality: Field<Text<0, 2000>>,
    #[schema(nullable)]
    pub family_situation: Field<Text<0, 2000>>,
    #[schema(nullable)]
    pub occupation: Field<Text<0, 200>>,
    #[schema(value_type = Option<IncomeBand>)]
    pub income_band: Field<IncomeBand>,
    #[schema(nullable)]
    pub likes: Field<Items<Text<1, 200>, 0, 50>>,
    #[schema(nullable)]
    pub dislikes: Field<Items<Text<1, 200>, 0, 50>>,
    #[schema(nullable)]
    pub important_dates: Field<Items<ImportantDate, 0, 20>>,
    #[schema(nullable)]
    pub notes: Field<Text<0, 10_000>>,
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
    pub owner_id: Field<UserId>,
    #[schema(nullable)]
    pub region: Field<Text<0, 100>>,
    #[schema(nullable)]
    pub tags: Field<Items<Text<1, 50>, 0, 50>>,
    /// Up to 100 custom fields: names of 1 to 64 lower-case letters, digits and `_`; values
    /// strings (up to 500 characters), numbers or booleans.
    #[schema(schema_with = attributes_schema, example = json!({"shoe_size": 42}))]
    pub attributes: Field<Map<String, Value>>,
    /// Another live customer.
    #[schema(value_type = Option<Uuid>)]
    pub referred_by: Field<CustomerId>,
    /// With `external_ref`: the customer's id in another system (unique together).
    #[schema(nullable)]
    pub source: Field<SourceName>,
    #[schema(nullable)]
    pub external_ref: Field<ExternalRef>,
    #[schema(value_type = Option<ConsentChanges>)]
    pub consents: Field<ConsentChanges>,
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// `schema_with` of `attributes`.
pub fn attributes_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .max_properties(Some(ATTRIBUTES_MAX))
        .property_names(Some(
            string().pattern(Some(format!("^[a-z0-9_]{{1,{ATTRIBUTE_NAME_MAX}}}$"))),
        ))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([
                    Type::String,
                    Type::Number,
                    Type::Boolean,
                ]))
                .max_length(Some(ATTRIBUTE_TEXT_MAX))
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

/// `source` and `external_ref` as a request naming the customer sends them: texts within
/// `CustomerFields`' limits, not blank.
fn reference_properties() -> [(&'static str, RefOr<Schema>); 2] {
    let not_blank = |schema: RefOr<Schema>, description: &str| match schema {
        RefOr::T(Schema::Object(mut text)) => {
            text.pattern = Some(NOT_BLANK.into());
            text.description = Some(description.into());
            RefOr::T(Schema::Object(text))
        }
        other => other,
    };
    [
        (
            "source",
            not_blank(SourceName::schema(), "The system the customer comes from."),
        ),
        (
            "external_ref",
            not_blank(ExternalRef::schema(), "The customer's id in that system."),
        ),
    ]
}

/// Both of `source` and `external_ref`, required.
fn with_reference() -> ObjectBuilder {
    reference_properties()
        .into_iter()
        .fold(ObjectBuilder::new(), |object, (name, schema)| {
            object.property(name, schema).required(name)
        })
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
        // `CustomerFields` itself, with `source` and `external_ref` required, not null and
        // not blank: an `allOf` of the fields (where both may be null) and a branch saying
        // they are strings asks generators to merge `null | string` with `string`, which
        // openapi-python-client refuses (it then drops the operation).
        let RefOr::T(Schema::Object(mut fields)) = CustomerFields::schema() else {
            return fields_with([with_reference().into(), churn_rule()]);
        };
        for (name, schema) in reference_properties() {
            fields.properties.insert(name.to_owned(), schema);
            if !fields.required.iter().any(|r| r == name) {
                fields.required.push(name.to_owned());
            }
        }
        AllOfBuilder::new()
            .item(Schema::Object(fields))
            .item(churn_rule())
            .into()
    }
}

fields_schema!(BatchItem);

/// A customer's `source`: the system it comes from (with `external_ref`).
pub type SourceName = Text<0, 50>;
/// A customer's `external_ref`: its id in its `source`.
pub type ExternalRef = Text<0, 200>;

/// The largest attribute number, in either sign: exact in a double, readable back from
/// PostgreSQL's `jsonb`, and safe in JavaScript clients.
const ATTRIBUTE_NUMBER_LIMIT: f64 = 1e15;
/// Custom attributes a customer may carry.
const ATTRIBUTES_MAX: usize = 100;
/// The longest attribute name.
const ATTRIBUTE_NAME_MAX: usize = 64;
/// The longest attribute text.
const ATTRIBUTE_TEXT_MAX: usize = 500;

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

    /// Checks a sent value against its type's limits, naming the field (`phones[2]`).
    fn value<T: Validate>(&mut self, name: &str, field: &Field<T>) {
        if let Field::Value(value) = field
            && let Err(errors) = value.validate()
        {
            self.0.extend(field_errors_within(&errors, name));
        }
    }

    /// A text field that blank text clears.
    fn text<const MAX: usize>(&mut self, name: &str, field: &mut Field<Text<0, MAX>>) {
        if field.value().is_some_and(|text| text.as_str().is_empty()) {
            *field = Field::Null;
        }
        self.value(name, field);
    }
}

/// Whether `name` may name a custom attribute: 1 to 64 of `a-z`, `0-9`, `_`.
pub fn is_attribute_name(name: &str) -> bool {
    (1..=ATTRIBUTE_NAME_MAX).contains(&name.len())
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
        checks.value("display_name", &self.display_name);
        checks.text("given_name", &mut self.given_name);
        checks.text("family_name", &mut self.family_name);
        checks.text("company", &mut self.company);
        checks.text("position", &mut self.position);
        checks.text("personality", &mut self.personality);
        checks.text("family_situation", &mut self.family_situation);
        checks.text("occupation", &mut self.occupation);
        checks.text("notes", &mut self.notes);
        checks.text("region", &mut self.region);
        checks.text("source", &mut self.source);
        checks.text("external_ref", &mut self.external_ref);
        checks.value("hobbies", &self.hobbies);
        checks.value("likes", &self.likes);
        checks.value("dislikes", &self.dislikes);
        checks.value("tags", &self.tags);
        checks.value("phones", &self.phones);
        checks.value("emails", &self.emails);
        checks.value("addresses", &self.addresses);
        checks.value("important_dates", &self.important_dates);
        if let Field::Value(birthday) = self.birthday {
            let today = Utc::now().date_naive();
            if birthday > today {
                checks.fail("birthday", "range", "cannot be in the future");
            } else if birthday < NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(today) {
                checks.fail("birthday", "range", "must be in 1900 or later");
            }
        }
        if let Field::Value(attributes) = &self.attributes {
            if attributes.len() > ATTRIBUTES_MAX {
                checks.fail(
                    "attributes",
                    "length",
                    format!("at most {ATTRIBUTES_MAX} attributes"),
                );
            }
            for (name, value) in attributes {
                if !is_attribute_name(name) {
                    checks.fail(
                        format!("attributes.{name}"),
                        "name",
                        format!("names are 1 to {ATTRIBUTE_NAME_MAX} of a-z, 0-9 and _"),
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
                } else if value
                    .as_str()
                    .is_some_and(|s| s.chars().count() > ATTRIBUTE_TEXT_MAX)
                {
                    checks.fail(
                        format!("attributes.{name}"),
                        "length",
                        format!("length must be at most {ATTRIBUTE_TEXT_MAX}"),
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
    *target = field.apply(target.take());
}

fn set_json<T: serde::Serialize>(target: &mut Value, field: Field<Vec<T>>) {
    set(
        target,
        field.map_value(|items| serde_json::to_value(items).unwrap_or_default()),
        || Value::Array(Vec::new()),
    );
}

/// A text field's text.
fn text<const MIN: usize, const MAX: usize>(field: Field<Text<MIN, MAX>>) -> Field<String> {
    field.map_value(Text::into_inner)
}

/// Texts in the order sent, each once.
fn unique(texts: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    for text in texts {
        if !kept.contains(&text) {
            kept.push(text);
        }
    }
    kept
}

/// A text list's texts, each once.
fn texts<const LEN: usize, const ITEMS: usize>(
    field: Field<Items<Text<1, LEN>, 0, ITEMS>>,
) -> Field<Vec<String>> {
    field.map_value(|items| unique(items.into_inner().into_iter().map(Text::into_inner)))
}

/// Phone numbers in E.164 (checked normalisable already), each once.
fn phones(field: Field<Items<Phone, 0, 10>>) -> Field<Vec<String>> {
    field.map_value(|items| {
        unique(
            items
                .into_inner()
                .into_iter()
                .map(|phone| phone.normalised().unwrap_or_else(|_| phone.into_inner())),
        )
    })
}

/// E-mail addresses in lower case, each once.
fn emails(field: Field<Items<Email, 0, 10>>) -> Field<Vec<String>> {
    field.map_value(|items| {
        unique(
            items
                .into_inner()
                .into_iter()
                .map(|email| email.into_inner().to_lowercase()),
        )
    })
}

impl CustomerFields {
    /// Writes the sent fields onto a row and enforces the rules between fields. Returns
    /// the field errors that only the combination reveals.
    pub fn apply(self, row: &mut CustomerRow, now: DateTime<Utc>) -> Vec<FieldError> {
        let derived_name = match (
            &self.display_name,
            self.given_name.value().map(Text::as_str),
            self.family_name.value().map(Text::as_str),
        ) {
            (Field::Absent, Some(given), family) if row.display_name.is_empty() => Some(
                format!("{} {given}", family.unwrap_or(""))
                    .trim()
                    .to_owned(),
            ),
            (Field::Absent, None, Some(family)) if row.display_name.is_empty() => {
                Some(family.to_owned())
            }
            _ => None,
        };
        if let Field::Value(kind) = self.kind {
            row.kind = kind;
        }
        if let Field::Value(name) = self.display_name {
            row.display_name = name.into_inner();
        } else if let Some(name) = derived_name {
            row.display_name = name;
        }
        set_option(&mut row.given_name, text(self.given_name));
        set_option(&mut row.family_name, text(self.family_name));
        set_option(&mut row.company, text(self.company));
        set_option(&mut row.position, text(self.position));
        set(&mut row.phones, phones(self.phones), Vec::new);
        set(&mut row.emails, emails(self.emails), Vec::new);
        set_json(
            &mut row.addresses,
            self.addresses.map_value(Items::into_inner),
        );
        set_option(&mut row.gender, self.gender);
        set_option(&mut row.birthday, self.birthday);
        set(&mut row.hobbies, texts(self.hobbies), Vec::new);
        set_option(&mut row.personality, text(self.personality));
        set_option(&mut row.family_situation, text(self.family_situation));
        set_option(&mut row.occupation, text(self.occupation));
        set_option(&mut row.income_band, self.income_band);
        set(&mut row.likes, texts(self.likes), Vec::new);
        set(&mut row.dislikes, texts(self.dislikes), Vec::new);
        set_json(
            &mut row.important_dates,
            self.important_dates.map_value(Items::into_inner),
        );
        set_option(&mut row.notes, text(self.notes));
        if let Field::Value(level) = self.level {
            row.level = level;
        }
        set_option(&mut row.tier, self.tier);
        if let Field::Value(stage) = self.lifecycle_stage {
            row.lifecycle_stage = stage;
        }
        set_option(&mut row.churn_reason, self.churn_reason);
        set_option(&mut row.owner_id, self.owner_id);
        set_option(&mut row.region, text(self.region));
        set(&mut row.tags, texts(self.tags), Vec::new);
        set(
            &mut row.attributes,
            self.attributes.map_value(Value::Object),
            || Value::Object(Map::new()),
        );
        set_option(&mut row.referred_by, self.referred_by);
        set_option(&mut row.source, text(self.source));
        set_option(&mut row.external_ref, text(self.external_ref));
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
        if row.lifecycle_stage == Stage::Churned {
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
