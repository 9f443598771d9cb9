//! `ValidJson<T>`: the one way a handler reads a JSON body. Malformed JSON is `400`; JSON
//! of the wrong shape or failing validation is `422` naming each field; a body over the
//! limit is `413`; a body that is not JSON is `415`.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::StreamExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

use crate::error::{ApiError, ApiResult, FieldError};

/// Request-body size limits, set once in app data.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Ordinary endpoints.
    pub standard: usize,
    /// Batch endpoints.
    pub large: usize,
}

/// A JSON body that parsed and validated. `LARGE` selects the batch-size limit.
pub struct ValidJson<T, const LARGE: bool = false>(pub T);

/// A request body that checks (and may normalise) itself after parsing.
pub trait Validated: Sized {
    /// The body, normalised, or every field that is wrong.
    fn validated(self) -> Result<Self, Vec<FieldError>>;
}

impl<T: Validate> Validated for T {
    fn validated(self) -> Result<Self, Vec<FieldError>> {
        self.validate().map_err(|e| field_errors(&e))?;
        Ok(self)
    }
}

/// A field of a merge-patch body: absent (leave as is), `null` (clear) or a value.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Field<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<T> Field<T> {
    /// The value, if one was sent.
    pub fn value(&self) -> Option<&T> {
        match self {
            Self::Value(v) => Some(v),
            _ => None,
        }
    }

    /// The field with its value converted.
    pub fn map_value<U>(self, f: impl FnOnce(T) -> U) -> Field<U> {
        match self {
            Field::Absent => Field::Absent,
            Field::Null => Field::Null,
            Field::Value(v) => Field::Value(f(v)),
        }
    }

    /// The field applied to an optional value: absent keeps it, `null` clears it.
    pub fn apply(self, current: Option<T>) -> Option<T> {
        match self {
            Field::Absent => current,
            Field::Null => None,
            Field::Value(v) => Some(v),
        }
    }
}

/// A sent value is checked as the value; absent and `null` are always valid.
impl<T: Validate> Validate for Field<T> {
    fn validate(&self) -> Result<(), validator::ValidationErrors> {
        self.value().map_or(Ok(()), Validate::validate)
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Field<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(deserializer).map(|v| v.map_or(Self::Null, Self::Value))
    }
}

/// A field's schema is its value's, and `null` when the field is marked `#[schema(nullable)]`
/// (a merge patch's "clear"). Through utoipa's hook for generic field types, as its `Option`.
impl<T: utoipa::ToSchema> utoipa::__dev::ComposeSchema for Field<T> {
    fn compose(
        generics: Vec<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>>,
    ) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        generics.into_iter().next().unwrap_or_else(T::schema)
    }
}

impl<T: utoipa::ToSchema> utoipa::ToSchema for Field<T> {
    fn name() -> std::borrow::Cow<'static, str> {
        T::name()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        T::schemas(schemas);
    }
}

/// Serialises like `Option<T>` (absent and `null` both as `null`), for schema defaults.
impl<T: serde::Serialize> serde::Serialize for Field<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(serializer)
    }
}

impl<T, const LARGE: bool> FromRequest for ValidJson<T, LARGE>
where
    T: DeserializeOwned + Validated + 'static,
{
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = ApiResult<Self>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = body_limit(req, LARGE);
        let is_json = has_json_content_type(req);
        let payload = payload.take();
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::UnsupportedMediaType);
            }
            let body = read_body(payload, limit).await?;
            Ok(ValidJson(parse_object(&body)?))
        })
    }
}

/// The body of an action whose body only adds optional details (a note): a request with no
/// body, an empty one with any content type, or a JSON `null`, is the type's default; a body
/// that is sent is read as [`ValidJson`] reads it.
pub struct OptionalJson<T>(pub T);

impl<T> FromRequest for OptionalJson<T>
where
    T: DeserializeOwned + Validated + Default + 'static,
{
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = ApiResult<Self>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = body_limit(req, false);
        let is_json = has_json_content_type(req);
        let payload = payload.take();
        Box::pin(async move {
            let body = read_body(payload, limit).await?;
            let text = body.trim_ascii();
            if text.is_empty() || (is_json && text == b"null") {
                return Ok(OptionalJson(T::default()));
            }
            if !is_json {
                return Err(ApiError::UnsupportedMediaType);
            }
            Ok(OptionalJson(parse_object(&body)?))
        })
    }
}

/// The body limit of the request: the batch limit for `large` bodies.
fn body_limit(req: &HttpRequest, large: bool) -> usize {
    let limits = req
        .app_data::<web::Data<BodyLimits>>()
        .map(|l| *l.get_ref())
        .unwrap_or(BodyLimits {
            standard: 1 << 20,
            large: 8 << 20,
        });
    if large { limits.large } else { limits.standard }
}

/// Whether the request says its body is JSON (`application/json` or `application/*+json`).
fn has_json_content_type(req: &HttpRequest) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// A JSON object body, parsed and validated.
fn parse_object<T: DeserializeOwned + Validated>(body: &[u8]) -> ApiResult<T> {
    let value = parse::<T>(body)?;
    // Every body is an object: serde would also read a struct from an array of its fields in
    // order (`[null, null]`), which no schema here allows.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::invalid("body", "type", "must be a JSON object"));
    }
    value.validated().map_err(ApiError::Validation)
}

/// Reads a whole body, refusing it once it passes `limit` bytes.
pub async fn read_body(mut payload: Payload, limit: usize) -> ApiResult<web::Bytes> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match e {
            actix_web::error::PayloadError::Overflow => ApiError::PayloadTooLarge { limit },
            other => ApiError::BadRequest(format!("could not read the request body: {other}")),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Parses JSON, telling syntax errors (`400`) from shape errors (`422` with the field path).
/// PostgreSQL cannot store U+0000 in text, so it arrives as U+FFFD, the replacement character
/// (the same stand-in invalid UTF-8 gets), in every string and key.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if may_hold_nul(body)
        && let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(body)
    {
        replace_nul(&mut value);
        return typed(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    match typed(&mut deserializer) {
        Ok(value) => {
            deserializer
                .end()
                .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
            Ok(value)
        }
        // serde_json reports a non-string where an enum is expected (`{"kind": 1}`) as a
        // syntax error; when the body is valid JSON it is a shape error of that field, which
        // reading from the parsed value reports as one.
        Err(ApiError::BadRequest(_))
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) =>
        {
            typed(value)
        }
        Err(e) => Err(e),
    }
}

/// Deserialises `T`, naming the field of a shape error.
fn typed<'de, T: DeserializeOwned, D>(deserializer: D) -> ApiResult<T>
where
    D: serde::Deserializer<'de, Error = serde_json::Error>,
{
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() {
            let message = strip_position(&inner.to_string());
            let (field, code) = match (unknown_field(&message), missing_field(&message)) {
                // The path already ends with the unknown name, except at the top level.
                (Some(name), _) if path == "." => (name.to_owned(), "unknown_field"),
                (Some(_), _) => (path, "unknown_field"),
                (None, Some(name)) if path == "." => (name.to_owned(), "required"),
                (None, Some(name)) => (format!("{path}.{name}"), "required"),
                (None, None) if path == "." => ("body".to_owned(), "invalid"),
                (None, None) => (path, "invalid"),
            };
            let message = match code {
                "unknown_field" => "is not a field of this resource, or cannot be set".to_owned(),
                "required" => "is required".to_owned(),
                _ => message,
            };
            ApiError::invalid(&field, code, message)
        } else {
            ApiError::BadRequest(format!("the body is not valid JSON: {inner}"))
        }
    })
}

/// `deserialize_with` for integer fields: JSON Schema's `integer` includes `1.0`, so a number
/// with no fractional part is accepted however it is written.
pub fn whole_number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::Error;
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole = number.as_i64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
            .map(|f| f as i64)
    });
    let whole =
        whole.ok_or_else(|| D::Error::custom(format!("expected an integer, not {number}")))?;
    T::try_from(whole).map_err(|_| D::Error::custom(format!("{whole} is out of range")))
}

/// [`whole_number`] for an optional field (pair it with `#[serde(default)]`).
pub fn optional_whole_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    #[derive(Deserialize)]
    struct Whole<T: TryFrom<i64>>(#[serde(deserialize_with = "whole_number")] T);
    Ok(Option::<Whole<T>>::deserialize(deserializer)?.map(|w| w.0))
}

/// Whether the raw body spells `\u0000` anywhere: a cheap test before the exact one. JSON
/// escapes use a lower-case `u`, and the digits have no case.
fn may_hold_nul(body: &[u8]) -> bool {
    body.windows(6).any(|w| w == b"\\u0000")
}

/// Replaces U+0000 with U+FFFD in every string and key.
fn replace_nul(value: &mut serde_json::Value) {
    use serde_json::Value;
    let clean = |text: &str| text.replace('\0', "\u{fffd}");
    match value {
        Value::String(text) if text.contains('\0') => *text = clean(text),
        Value::Array(items) => items.iter_mut().for_each(replace_nul),
        Value::Object(map) => {
            *map = std::mem::take(map)
                .into_iter()
                .map(|(key, mut item)| {
                    replace_nul(&mut item);
                    (clean(&key), item)
                })
                .collect();
        }
        _ => {}
    }
}

/// The name in serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// The name in serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    message.strip_prefix("unknown field `")?.split('`').next()
}

fn strip_position(message: &str) -> String {
    message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_owned()
}

/// Flattens validator's nested errors into `field` paths such as `items[2].email`.
pub fn field_errors(errors: &ValidationErrors) -> Vec<FieldError> {
    field_errors_within(errors, "")
}

/// [`field_errors`] of a value held by the field `prefix` (`phones`, `items[2]`).
pub fn field_errors_within(errors: &ValidationErrors, prefix: &str) -> Vec<FieldError> {
    let mut out = Vec::new();
    collect(errors, prefix, &mut out);
    out.sort_by(|a, b| a.field.cmp(&b.field));
    out
}

fn collect(errors: &ValidationErrors, prefix: &str, out: &mut Vec<FieldError>) {
    for (field, kind) in errors.errors() {
        // Struct-level rules (`__all__`) belong to the object itself.
        let path = match (prefix.is_empty(), field.as_ref()) {
            (true, "__all__") => "body".to_owned(),
            (false, "__all__") => prefix.to_owned(),
            (true, _) => field.to_string(),
            (false, _) => format!("{prefix}.{field}"),
        };
        match kind {
            ValidationErrorsKind::Field(list) => out.extend(list.iter().map(|e| {
                let message = e
                    .message
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| default_message(e));
                FieldError::new(path.clone(), e.code.to_string(), message)
            })),
            ValidationErrorsKind::Struct(inner) => collect(inner, &path, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    collect(inner, &format!("{path}[{index}]"), out);
                }
            }
        }
    }
}

fn default_message(error: &validator::ValidationError) -> String {
    let param = |name: &str| error.params.get(name).map(|v| v.to_string());
    match error.code.as_ref() {
        "email" => "must be a valid e-mail address".into(),
        "length" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("length must be between {min} and {max}"),
            (Some(min), None) => format!("length must be at least {min}"),
            (None, Some(max)) => format!("length must be at most {max}"),
            _ => "has the wrong length".into(),
        },
        "range" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be between {min} and {max}"),
            (Some(min), None) => format!("must be at least {min}"),
            (None, Some(max)) => format!("must be at most {max}"),
            _ => "is out of range".into(),
        },
        code => format!("is invalid ({code})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Validate)]
    struct Item {
        #[validate(email)]
        email: String,
    }

    #[derive(Debug, Deserialize, Validate)]
    struct Body {
        #[validate(length(min = 2, max = 5))]
        name: String,
        #[validate(nested)]
        items: Vec<Item>,
    }

    #[test]
    fn syntax_errors_are_bad_requests() {
        assert!(matches!(
            parse::<Body>(b"{\"name\": "),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse::<Body>(br#"{"name": "ab", "items": []} trailing"#),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn shape_errors_name_the_field() {
        let Err(ApiError::Validation(errors)) = parse::<Body>(br#"{"name": 5, "items": []}"#)
        else {
            panic!("expected a validation error");
        };
        assert_eq!(errors[0].field, "name");
        let Err(ApiError::Validation(errors)) = parse::<Body>(br#"{"items": []}"#) else {
            panic!("expected a validation error");
        };
        assert_eq!(
            (errors[0].field.as_str(), errors[0].code.as_str()),
            ("name", "required")
        );
        let Err(ApiError::Validation(errors)) = parse::<Body>(br#"{"name": "ab", "items": [{}]}"#)
        else {
            panic!("expected a validation error");
        };
        assert_eq!(errors[0].field, "items[0].email");
    }

    #[test]
    fn a_non_string_enum_is_a_shape_error_of_its_field() {
        #[derive(Debug, Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Kind {
            Earn,
        }
        #[derive(Debug, Deserialize)]
        struct Write {
            #[allow(dead_code)]
            kind: Kind,
        }
        for body in [
            &br#"{"kind": 1}"#[..],
            br#"{"kind": [1]}"#,
            br#"{"kind": true}"#,
        ] {
            let Err(ApiError::Validation(errors)) = parse::<Write>(body) else {
                panic!(
                    "expected a validation error for {}",
                    String::from_utf8_lossy(body)
                );
            };
            assert_eq!(errors[0].field, "kind");
        }
        assert!(matches!(
            parse::<Write>(br#"{"kind": 1"#),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn nested_validation_paths() {
        let body: Body =
            parse(br#"{"name": "x", "items": [{"email": "a@b.co"}, {"email": "nope"}]}"#).unwrap();
        let errors = field_errors(&body.validate().unwrap_err());
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["items[1].email", "name"]);
        assert_eq!(errors[1].message, "length must be between 2 and 5");
    }

    #[test]
    fn whole_numbers_may_be_written_as_floats() {
        #[derive(Deserialize)]
        struct Line {
            #[serde(deserialize_with = "whole_number")]
            quantity: i32,
            #[serde(default, deserialize_with = "optional_whole_number")]
            discount: Option<i64>,
        }
        let line: Line = parse(br#"{"quantity": 2.0, "discount": 5}"#).unwrap();
        assert_eq!((line.quantity, line.discount), (2, Some(5)));
        let line: Line = parse(br#"{"quantity": 2}"#).unwrap();
        assert_eq!(line.discount, None);
        assert!(parse::<Line>(br#"{"quantity": 2.5}"#).is_err());
        assert!(parse::<Line>(br#"{"quantity": 3000000000}"#).is_err());
    }

    #[test]
    fn nul_characters_become_replacement_characters() {
        let body: Body = parse(br#"{"name": "a\u0000b", "items": []}"#).unwrap();
        assert_eq!(body.name, "a\u{fffd}b");
        // Shape errors still name the field.
        let Err(ApiError::Validation(errors)) =
            parse::<Body>(br#"{"name": "\u0000", "items": [{"email": 5}]}"#)
        else {
            panic!("expected a validation error");
        };
        assert_eq!(errors[0].field, "items[0].email");
        // An escaped backslash followed by "u0000" is ordinary text.
        let body: Body = parse(br#"{"name": "\\u0000", "items": []}"#).unwrap();
        assert_eq!(body.name, "\\u0000");
    }
}
