//! `Query<T>`: the one way a handler reads query parameters. Parameters of the wrong shape
//! are `400`; U+0000 (`%00`), which PostgreSQL can neither store nor compare, arrives as
//! U+FFFD, as in JSON bodies.

use std::borrow::Cow;
use std::future::{Ready, ready};
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};

/// Parsed query parameters.
pub struct Query<T>(pub T);

impl<T> Deref for Query<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = Ready<ApiResult<Self>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse(req.query_string()).map(Query))
    }
}

/// Parses a raw query string as `T`.
pub fn parse<T: DeserializeOwned>(raw: &str) -> ApiResult<T> {
    let raw = if raw.contains("%00") {
        Cow::Owned(raw.replace("%00", "%EF%BF%BD"))
    } else {
        Cow::Borrowed(raw)
    };
    web::Query::<T>::from_query(&raw)
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::BadRequest(format!("invalid query parameters: {e}")))
}

/// Longest search term (`q`) of any list, in characters: each character adds index keys to
/// look up (trigrams, digit grams), and 8,000 digits cost the database about a second.
pub const MAX_SEARCH_CHARS: usize = 200;

/// The schema of a list's `q`, from the limit [`search_term`] checks.
pub fn search_schema(description: &'static str) -> utoipa::openapi::schema::Schema {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .max_length(Some(MAX_SEARCH_CHARS))
        .description(Some(description))
        .into()
}

/// A list's search term, trimmed (`None` when absent or blank); `400` when too long.
pub fn search_term(q: Option<&str>) -> ApiResult<Option<&str>> {
    match q.map(str::trim).filter(|q| !q.is_empty()) {
        Some(q) if q.chars().count() > MAX_SEARCH_CHARS => Err(ApiError::BadRequest(format!(
            "q must be at most {MAX_SEARCH_CHARS} characters"
        ))),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Search {
        q: Option<String>,
        limit: Option<i64>,
    }

    #[test]
    fn parses_replaces_nul_and_refuses_bad_shapes() {
        let search: Search = parse("q=wang%20li&limit=5").unwrap();
        assert_eq!(search.q.as_deref(), Some("wang li"));
        assert_eq!(search.limit, Some(5));
        let search: Search = parse("q=a%00b").unwrap();
        assert_eq!(search.q.as_deref(), Some("a\u{fffd}b"));
        assert!(matches!(
            parse::<Search>("limit=many"),
            Err(ApiError::BadRequest(_))
        ));
    }
}
