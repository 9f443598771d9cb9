//! Input types that carry their own limits (in the spirit of zero2prod's parse-don't-validate
//! types): the limit is a constant of the type, and both the server's check and the OpenAPI
//! schema are derived from it, so the document and the server cannot disagree.
//!
//! Each type reads any JSON value of its kind (text is trimmed) and is checked afterwards by
//! [`Validate`], so that one response names every bad field rather than the first. A struct
//! marks such fields `#[validate(nested)]`; the limits are not written there. Each limited
//! type is a schema component named by its limits (`Text_1_200`, `Whole_1_100000`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::{PartialSchema, ToSchema};
use validator::{Validate, ValidationError, ValidationErrors, ValidationErrorsKind};

/// The characters Rust's `trim` removes (Unicode White_Space), as a regex class body: the
/// patterns' `\s` would differ (ECMA-262 counts U+FEFF and not U+0085).
macro_rules! white_space {
    () => {
        r"\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    };
}

/// Text that is not only white space (the server trims every text).
pub const NOT_BLANK: &str = concat!("[^", white_space!(), "]");

/// What [`normalise_phone`] accepts, as a pattern: separators anywhere, `+` or `00`, then 7 to
/// 15 digits, the first not `0`.
pub const PHONE_PATTERN: &str = concat!(
    "^[",
    white_space!(),
    r"]*[-. ()\u00a0]*(\+|0[-. ()\u00a0]*0)[-. ()\u00a0]*[1-9]([-. ()\u00a0]*[0-9]){6,14}[-. ()\u00a0]*[",
    white_space!(),
    "]*$"
);

/// A problem of a value itself, reported at the field that holds it.
fn refused(code: &'static str, message: impl Into<Cow<'static, str>>) -> ValidationErrors {
    let mut errors = ValidationErrors::new();
    // `__all__` errors belong to the object they are about: here the field holding the value.
    errors.add(
        "__all__",
        ValidationError::new(code).with_message(message.into()),
    );
    errors
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// Whether a text sent with `sent` characters is `min` to `max` long, and (with `min` > 0)
/// not blank once `trimmed`: the lengths are the sent text's, as the schema's `minLength` and
/// `maxLength` count them; `Err` names the problem.
fn check_length(
    sent: usize,
    trimmed: &str,
    min: usize,
    max: usize,
) -> Result<(), ValidationErrors> {
    if min > 0 && trimmed.is_empty() {
        Err(refused("blank", "must not be blank"))
    } else if (min..=max).contains(&sent) {
        Ok(())
    } else if min == 0 {
        Err(refused("length", format!("length must be at most {max}")))
    } else {
        Err(refused(
            "length",
            format!("length must be between {min} and {max}"),
        ))
    }
}

/// The schema of a text of `min` to `max` characters (not blank when `min` > 0).
pub fn text_schema(min: usize, max: usize) -> ObjectBuilder {
    let schema = string().max_length(Some(max));
    if min > 0 {
        schema.min_length(Some(min)).pattern(Some(NOT_BLANK))
    } else {
        schema
    }
}

macro_rules! string_newtype {
    ($name:ident $(<$(const $param:ident: $ty:ty),*>)?, $trim:expr, $component:expr) => {
        impl$(<$(const $param: $ty),*>)? $name$(<$($param),*>)? {
            /// The text as received (trimmed where the type trims).
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The text.
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl<'de $(, $(const $param: $ty),*)?> Deserialize<'de> for $name$(<$($param),*>)? {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(Self::from)
            }
        }

        impl$(<$(const $param: $ty),*>)? ToSchema for $name$(<$($param),*>)? {
            fn name() -> Cow<'static, str> {
                $component
            }
        }

        /// A value as if received (trimmed where the type trims), still to be checked.
        impl$(<$(const $param: $ty),*>)? From<String> for $name$(<$($param),*>)? {
            fn from(text: String) -> Self {
                let trim: fn(String) -> String = $trim;
                let sent = text.chars().count();
                Self(trim(text), sent)
            }
        }

        /// Serialised as the (trimmed) text.
        impl$(<$(const $param: $ty),*>)? Serialize for $name$(<$($param),*>)? {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(serializer)
            }
        }

        /// Equal when the texts are, however much white space surrounded them.
        impl$(<$(const $param: $ty),*>)? PartialEq for $name$(<$($param),*>)? {
            fn eq(&self, other: &Self) -> bool {
                self.0 == other.0
            }
        }

        impl$(<$(const $param: $ty),*>)? Eq for $name$(<$($param),*>)? {}

        impl$(<$(const $param: $ty),*>)? From<$name$(<$($param),*>)?> for String {
            fn from(value: $name$(<$($param),*>)?) -> String {
                value.0
            }
        }
    };
}

fn trimmed(text: String) -> String {
    match text.trim() {
        same if same.len() == text.len() => text,
        shorter => shorter.to_owned(),
    }
}

/// Text of `MIN` to `MAX` characters, trimmed; with `MIN` of 1 or more it may not be blank.
#[derive(Debug, Clone)]
pub struct Text<const MIN: usize, const MAX: usize>(String, usize);

string_newtype!(Text<const MIN: usize, const MAX: usize>, trimmed, Cow::Owned(format!("Text_{MIN}_{MAX}")));

/// An optional text that blank leaves out: `None` for absent, `null` or only white space.
pub fn present<const MAX: usize>(text: Option<Text<0, MAX>>) -> Option<String> {
    text.map(Text::into_inner).filter(|t| !t.is_empty())
}

impl<const MIN: usize, const MAX: usize> Validate for Text<MIN, MAX> {
    fn validate(&self) -> Result<(), ValidationErrors> {
        check_length(self.1, &self.0, MIN, MAX)
    }
}

impl<const MIN: usize, const MAX: usize> PartialSchema for Text<MIN, MAX> {
    fn schema() -> RefOr<Schema> {
        text_schema(MIN, MAX).into()
    }
}

/// A secret of `MIN` to `MAX` characters, taken exactly as sent (never trimmed).
#[derive(Clone)]
pub struct Secret<const MIN: usize, const MAX: usize>(String, usize);

string_newtype!(Secret<const MIN: usize, const MAX: usize>, |text| text, Cow::Owned(format!("Secret_{MIN}_{MAX}")));

impl<const MIN: usize, const MAX: usize> std::fmt::Debug for Secret<MIN, MAX> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl<const MIN: usize, const MAX: usize> Validate for Secret<MIN, MAX> {
    fn validate(&self) -> Result<(), ValidationErrors> {
        if (MIN..=MAX).contains(&self.1) {
            Ok(())
        } else {
            Err(refused(
                "length",
                format!("length must be between {MIN} and {MAX}"),
            ))
        }
    }
}

impl<const MIN: usize, const MAX: usize> PartialSchema for Secret<MIN, MAX> {
    fn schema() -> RefOr<Schema> {
        string()
            .min_length(Some(MIN))
            .max_length(Some(MAX))
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
            .into()
    }
}

/// The longest e-mail address (RFC 5321's path limit).
pub const EMAIL_MAX: usize = 254;

/// An e-mail address, trimmed.
#[derive(Debug, Clone)]
pub struct Email(String, usize);

string_newtype!(Email, trimmed, Cow::Borrowed("Email"));

impl Validate for Email {
    fn validate(&self) -> Result<(), ValidationErrors> {
        if self.1 > EMAIL_MAX {
            Err(refused(
                "length",
                format!("length must be at most {EMAIL_MAX}"),
            ))
        } else if validator::ValidateEmail::validate_email(&self.0) {
            Ok(())
        } else {
            Err(refused("email", "must be a valid e-mail address"))
        }
    }
}

impl PartialSchema for Email {
    fn schema() -> RefOr<Schema> {
        string()
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
            .max_length(Some(EMAIL_MAX))
            .into()
    }
}

/// The longest phone number as sent, separators included.
pub const PHONE_MAX: usize = 40;

/// A phone number in international format, as sent; [`Phone::normalised`] gives E.164.
#[derive(Debug, Clone)]
pub struct Phone(String, usize);

string_newtype!(Phone, trimmed, Cow::Borrowed("Phone"));

impl Phone {
    /// The number in E.164 (`+8613800138000`), or why it is not one.
    pub fn normalised(&self) -> Result<String, &'static str> {
        normalise_phone(&self.0)
    }
}

impl Validate for Phone {
    fn validate(&self) -> Result<(), ValidationErrors> {
        if self.1 > PHONE_MAX {
            return Err(refused(
                "length",
                format!("length must be at most {PHONE_MAX}"),
            ));
        }
        self.normalised()
            .map(|_| ())
            .map_err(|message| refused("phone", message))
    }
}

impl PartialSchema for Phone {
    fn schema() -> RefOr<Schema> {
        phone_schema().into()
    }
}

/// The schema of a phone number as [`normalise_phone`] accepts it.
pub fn phone_schema() -> ObjectBuilder {
    string()
        .max_length(Some(PHONE_MAX))
        .pattern(Some(PHONE_PATTERN))
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

/// An ISO 4217 currency code in upper case (`CNY`).
#[derive(Debug, Clone)]
pub struct Currency(String, usize);

string_newtype!(Currency, |text| text, Cow::Borrowed("Currency"));

impl Validate for Currency {
    fn validate(&self) -> Result<(), ValidationErrors> {
        if self.1 == 3 && self.0.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(())
        } else {
            Err(refused("currency", "must be an ISO 4217 code such as CNY"))
        }
    }
}

impl PartialSchema for Currency {
    fn schema() -> RefOr<Schema> {
        string()
            .pattern(Some("^[A-Z]{3}$"))
            .examples(["CNY"])
            .into()
    }
}

/// A whole number from `MIN` to `MAX`. JSON Schema's `integer` includes `1.0`, so a number
/// with no fractional part is read however it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Whole<const MIN: i64, const MAX: i64>(i64);

impl<const MIN: i64, const MAX: i64> Whole<MIN, MAX> {
    pub fn get(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
impl<const MIN: i64, const MAX: i64> Whole<MIN, MAX> {
    /// A value for a test, which states it within the limits.
    pub fn from_checked(value: i64) -> Self {
        assert!((MIN..=MAX).contains(&value));
        Self(value)
    }
}

impl<'de, const MIN: i64, const MAX: i64> Deserialize<'de> for Whole<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::http::json::whole_number(deserializer).map(Self)
    }
}

impl<const MIN: i64, const MAX: i64> Validate for Whole<MIN, MAX> {
    fn validate(&self) -> Result<(), ValidationErrors> {
        if (MIN..=MAX).contains(&self.0) {
            Ok(())
        } else if MAX == i64::MAX {
            Err(refused("range", format!("must be at least {MIN}")))
        } else {
            Err(refused("range", format!("must be between {MIN} and {MAX}")))
        }
    }
}

impl<const MIN: i64, const MAX: i64> PartialSchema for Whole<MIN, MAX> {
    fn schema() -> RefOr<Schema> {
        let schema = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(MIN as f64));
        let schema = if MAX == i64::MAX {
            schema
        } else {
            schema.maximum(Some(MAX as f64))
        };
        schema.into()
    }
}

impl<const MIN: i64, const MAX: i64> ToSchema for Whole<MIN, MAX> {
    fn name() -> Cow<'static, str> {
        match MAX {
            i64::MAX => Cow::Owned(format!("Whole_from_{MIN}")),
            _ => Cow::Owned(format!("Whole_{MIN}_{MAX}")),
        }
    }
}

/// A calendar date (`2026-10-01`): valid once read, so lists of dates carry their limits
/// as [`Items`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LocalDate(pub chrono::NaiveDate);

impl Validate for LocalDate {
    fn validate(&self) -> Result<(), ValidationErrors> {
        Ok(())
    }
}

impl PartialSchema for LocalDate {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
            .into()
    }
}

impl ToSchema for LocalDate {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("LocalDate")
    }
}

/// An angle in degrees from `-LIMIT` to `LIMIT`: [`Latitude`] and [`Longitude`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Degrees<const LIMIT: u16>(f64);

/// Degrees north (positive) or south of the equator.
pub type Latitude = Degrees<90>;
/// Degrees east (positive) or west of Greenwich.
pub type Longitude = Degrees<180>;

impl<const LIMIT: u16> Degrees<LIMIT> {
    pub fn get(self) -> f64 {
        self.0
    }
}

impl<const LIMIT: u16> Validate for Degrees<LIMIT> {
    fn validate(&self) -> Result<(), ValidationErrors> {
        let limit = f64::from(LIMIT);
        if (-limit..=limit).contains(&self.0) {
            Ok(())
        } else {
            Err(refused(
                "range",
                format!("must be between -{LIMIT} and {LIMIT}"),
            ))
        }
    }
}

impl<const LIMIT: u16> PartialSchema for Degrees<LIMIT> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
            .minimum(Some(-f64::from(LIMIT)))
            .maximum(Some(f64::from(LIMIT)))
            .into()
    }
}

impl<const LIMIT: u16> ToSchema for Degrees<LIMIT> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("Degrees_{LIMIT}"))
    }
}

/// A list of `MIN` to `MAX` items, each checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Items<T, const MIN: usize, const MAX: usize>(Vec<T>);

impl<T, const MIN: usize, const MAX: usize> Items<T, MIN, MAX> {
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }

    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }
}

impl<T, const MIN: usize, const MAX: usize> From<Vec<T>> for Items<T, MIN, MAX> {
    /// Items as if received, still to be checked.
    fn from(items: Vec<T>) -> Self {
        Self(items)
    }
}

impl<'de, T: Deserialize<'de>, const MIN: usize, const MAX: usize> Deserialize<'de>
    for Items<T, MIN, MAX>
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<T>::deserialize(deserializer).map(Self)
    }
}

impl<T: Validate, const MIN: usize, const MAX: usize> Validate for Items<T, MIN, MAX> {
    fn validate(&self) -> Result<(), ValidationErrors> {
        if !(MIN..=MAX).contains(&self.0.len()) {
            return Err(refused("length", format!("must hold {MIN} to {MAX} items")));
        }
        let failed: BTreeMap<usize, Box<ValidationErrors>> = self
            .0
            .iter()
            .enumerate()
            .filter_map(|(index, item)| Some((index, Box::new(item.validate().err()?))))
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        // Filed under the list itself, each item by its index (`lines[2].sku`).
        let mut errors = ValidationErrors::new();
        errors
            .errors_mut()
            .insert(Cow::Borrowed("__all__"), ValidationErrorsKind::List(failed));
        Err(errors)
    }
}

/// How utoipa's derive asks a generic field type for its schema, passing the type argument's
/// (a `$ref` to a component, or the schema inline). A hidden but stable part of utoipa 6, as
/// its own `Vec<T>` uses it; it also gives the type its `PartialSchema`.
impl<T: ToSchema, const MIN: usize, const MAX: usize> utoipa::__dev::ComposeSchema
    for Items<T, MIN, MAX>
{
    fn compose(generics: Vec<RefOr<Schema>>) -> RefOr<Schema> {
        ArrayBuilder::new()
            .items(generics.into_iter().next().unwrap_or_else(T::schema))
            .min_items((MIN > 0).then_some(MIN))
            .max_items(Some(MAX))
            .into()
    }
}

impl<T: ToSchema, const MIN: usize, const MAX: usize> ToSchema for Items<T, MIN, MAX> {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Items")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        T::schemas(schemas);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// The schema's limits, read back from the document form.
    fn limits<T: PartialSchema>() -> Value {
        serde_json::to_value(T::schema()).unwrap()
    }

    /// Whether `value` passes the type's check, read as a body would be.
    fn accepted<T: for<'de> Deserialize<'de> + Validate>(value: Value) -> bool {
        serde_json::from_value::<T>(value).is_ok_and(|v| v.validate().is_ok())
    }

    #[test]
    fn text_limits_in_the_schema_are_the_checked_ones() {
        let schema = limits::<Text<2, 5>>();
        let (min, max) = (
            schema["minLength"].as_u64().unwrap(),
            schema["maxLength"].as_u64().unwrap(),
        );
        let at = |n: u64| json!("é".repeat(n as usize));
        assert!(!accepted::<Text<2, 5>>(at(min - 1)));
        assert!(accepted::<Text<2, 5>>(at(min)));
        assert!(accepted::<Text<2, 5>>(at(max)));
        assert!(!accepted::<Text<2, 5>>(at(max + 1)));
        assert!(!accepted::<Text<2, 5>>(json!("   ")), "blank is refused");
        assert_eq!(schema["pattern"], NOT_BLANK);
        let text: Text<0, 3> = serde_json::from_value(json!("  ab ")).unwrap();
        assert_eq!(text.as_str(), "ab", "text is trimmed");
    }

    #[test]
    fn number_and_list_limits_in_the_schema_are_the_checked_ones() {
        let schema = limits::<Whole<1, 9>>();
        assert_eq!(
            (schema["minimum"].as_f64(), schema["maximum"].as_f64()),
            (Some(1.0), Some(9.0))
        );
        assert!(!accepted::<Whole<1, 9>>(json!(0)));
        assert!(
            accepted::<Whole<1, 9>>(json!(9.0)),
            "a whole number however written"
        );
        assert!(!accepted::<Whole<1, 9>>(json!(10)));
        let list = limits::<Items<Text<1, 3>, 1, 2>>();
        assert_eq!(
            (list["minItems"].as_u64(), list["maxItems"].as_u64()),
            (Some(1), Some(2))
        );
        assert!(!accepted::<Items<Text<1, 3>, 1, 2>>(json!([])));
        assert!(accepted::<Items<Text<1, 3>, 1, 2>>(json!(["a", "b"])));
        assert!(!accepted::<Items<Text<1, 3>, 1, 2>>(json!(["a", "b", "c"])));
        assert!(
            !accepted::<Items<Text<1, 3>, 1, 2>>(json!(["abcd"])),
            "each item is checked"
        );
        let angle = limits::<Latitude>();
        assert_eq!(angle["maximum"], 90.0);
        assert!(accepted::<Latitude>(json!(-90.0)));
        assert!(!accepted::<Latitude>(json!(90.5)));
    }

    #[test]
    fn formats_are_checked_as_documented() {
        assert!(accepted::<Email>(json!("a@example.com")));
        assert!(!accepted::<Email>(json!("nope")));
        assert!(accepted::<Currency>(json!("CNY")));
        assert!(!accepted::<Currency>(json!("cny")));
        assert_eq!(limits::<Currency>()["pattern"], "^[A-Z]{3}$");
        assert!(accepted::<Phone>(json!("+86 138 0013 8000")));
        assert!(!accepted::<Phone>(json!("13800138000")));
        assert_eq!(
            limits::<Phone>()["maxLength"].as_u64(),
            Some(PHONE_MAX as u64)
        );
    }

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
}

/// An IANA time zone name (`Asia/Shanghai`). The schema is a string, not an enumeration of
/// the names the server knows: the tz database grows, and a generated client must not refuse
/// a zone the server accepts (nor three spellings of one zone map to one identifier).
#[derive(Debug, Clone, Deserialize)]
pub struct TimeZoneName(String);

/// The longest zone name accepted (the longest in the tz database has 32 characters).
const TIME_ZONE_MAX: usize = 64;

impl TimeZoneName {
    /// The zone (validated on input).
    pub fn zone(&self) -> chrono_tz::Tz {
        self.0.parse().unwrap_or(chrono_tz::Tz::UTC)
    }

    /// The name.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl utoipa::PartialSchema for TimeZoneName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::Custom(
                "time-zone".into(),
            )))
            .min_length(Some(1))
            .max_length(Some(TIME_ZONE_MAX))
            .description(Some(
                "An IANA time zone name, such as `Asia/Shanghai`, `Europe/Berlin` or `UTC`. \
                 Any name of the server's tz database is accepted; another name is `422`.",
            ))
            .examples(["Asia/Shanghai"])
            .into()
    }
}

impl ToSchema for TimeZoneName {}

impl Validate for TimeZoneName {
    fn validate(&self) -> Result<(), validator::ValidationErrors> {
        if self.0.chars().count() <= TIME_ZONE_MAX && self.0.parse::<chrono_tz::Tz>().is_ok() {
            return Ok(());
        }
        let mut errors = validator::ValidationErrors::new();
        errors.add(
            "__all__",
            ValidationError::new("time_zone")
                .with_message("must be an IANA time zone name, such as Asia/Shanghai".into()),
        );
        Err(errors)
    }
}

/// How far a client's clock may run ahead of the server's: a time "not in the future" may be
/// this many minutes ahead.
pub const CLOCK_SKEW_MINUTES: i64 = 5;

/// `422` naming `field` unless the time a client sent lies in `[earliest, latest]`: every
/// client time has a sane range, so no duration derived from it runs to millennia.
pub fn ensure_within(
    field: &str,
    at: chrono::DateTime<chrono::Utc>,
    earliest: chrono::DateTime<chrono::Utc>,
    latest: chrono::DateTime<chrono::Utc>,
) -> crate::error::ApiResult<()> {
    if (earliest..=latest).contains(&at) {
        return Ok(());
    }
    let stamp = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    Err(crate::error::ApiError::invalid(
        field,
        "range",
        format!("must be between {} and {}", stamp(earliest), stamp(latest)),
    ))
}

/// The latest time a client may send for something that has happened: now, give or take
/// the clocks' skew.
pub fn happened_by() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() + chrono::Duration::minutes(CLOCK_SKEW_MINUTES)
}

/// A span of whole days written `14d` (1 to 366): how far ahead a list looks (`within=14d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Days(pub u16);

/// The longest span a [`Days`] may name.
const MAX_DAYS: u16 = 366;

impl<'de> Deserialize<'de> for Days {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.strip_suffix('d')
            .and_then(|n| n.parse::<u16>().ok())
            .filter(|n| (1..=MAX_DAYS).contains(n) && !text.starts_with('0'))
            .map(Days)
            .ok_or_else(|| {
                serde::de::Error::custom(format!("must be a number of days from 1d to {MAX_DAYS}d"))
            })
    }
}

impl PartialSchema for Days {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(
                "^([1-9]|[1-9][0-9]|[1-2][0-9][0-9]|3[0-5][0-9]|36[0-6])d$",
            ))
            .examples(["14d"])
            .into()
    }
}

impl ToSchema for Days {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Days")
    }
}
