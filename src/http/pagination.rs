//! Keyset pagination with opaque cursors. A cursor is the sort key of the last row served,
//! base64url-encoded JSON, so pages stay stable while rows are inserted between them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult};

/// Rows per page when `limit` is absent.
pub const DEFAULT_LIMIT: i64 = 50;
/// The largest `limit` accepted.
pub const MAX_LIMIT: i64 = 200;

/// `?limit=&cursor=` of every list endpoint.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Rows per page (default 50).
    #[param(schema_with = limit_schema)]
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page of the same list with the same filters and
    /// sort; absent or empty for the first page. Any other value is refused with `400`.
    #[param(format = "cursor")]
    pub cursor: Option<String>,
}

/// The schema of `limit`, from the constants [`PageParams::window`] checks.
fn limit_schema() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Int64,
        )))
        .minimum(Some(1))
        .maximum(Some(MAX_LIMIT as f64))
        .examples([DEFAULT_LIMIT])
        .description(Some(format!("Rows per page (default {DEFAULT_LIMIT}).")))
        .into()
}

/// One page to fetch of a list in keyset order: how many rows to read (one more than the
/// page holds, to tell whether another page follows) and the typed sort key of the row the
/// page starts after. Every list reads through one, so no handler counts `limit + 1` itself.
#[derive(Debug, Clone)]
pub struct Window<K> {
    limit: i64,
    /// The key of the last row served, `None` on the first page.
    pub after: Option<K>,
}

impl<K> Window<K> {
    /// The rows to read: the page and one more.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// The page of `rows` (read with [`Window::fetch`] in sort order), its cursor the key of
    /// its last row.
    pub fn page<T, C: Serialize>(&self, rows: Vec<T>, key: impl Fn(&T) -> C) -> Page<T> {
        Page::from_rows(rows, self.limit, key)
    }
}

impl PageParams {
    /// The window these parameters ask for, with a typed cursor: `400` for a limit out of
    /// range or a cursor that is not one of this list's.
    pub fn window<K: DeserializeOwned>(&self) -> ApiResult<Window<K>> {
        Ok(Window {
            limit: self.limit()?,
            after: self.after()?,
        })
    }

    /// The page size, `400` when out of range.
    fn limit(&self) -> ApiResult<i64> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::BadRequest(format!(
                "limit must be between 1 and {MAX_LIMIT}, not {n}"
            ))),
        }
    }

    /// The sort key the page starts after, `400` when the cursor is not one of ours. An empty
    /// `cursor=` is the first page, as clients that always send the parameter expect.
    fn after<K: DeserializeOwned>(&self) -> ApiResult<Option<K>> {
        self.cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(decode_cursor)
            .transpose()
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// The rows of this page.
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched in sort order: the extra row only
    /// tells that another page exists.
    fn from_rows<K: Serialize>(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> K) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| encode_cursor(&key(last)))
        } else {
            None
        };
        Self {
            data: rows,
            next_cursor,
        }
    }

    /// Converts the rows, keeping the cursor.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            data: self.data.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

pub fn encode_cursor<K: Serialize>(key: &K) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

pub fn decode_cursor<K: DeserializeOwned>(cursor: &str) -> ApiResult<K> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            ApiError::BadRequest("cursor is not valid; use next_cursor from a previous page".into())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_carry_a_cursor_only_when_more_rows_exist() {
        let page = Page::from_rows(vec![1, 2, 3], 2, |n| *n);
        assert_eq!(page.data, vec![1, 2]);
        let params = PageParams {
            limit: Some(2),
            cursor: page.next_cursor,
        };
        assert_eq!(params.after::<i32>().unwrap(), Some(2));
        let last = Page::from_rows(vec![1, 2], 2, |n| *n);
        assert!(last.next_cursor.is_none());
    }

    #[test]
    fn limits_and_cursors_are_checked() {
        assert_eq!(PageParams::default().limit().unwrap(), 50);
        assert!(
            PageParams {
                limit: Some(201),
                cursor: None
            }
            .limit()
            .is_err()
        );
        assert!(
            PageParams {
                limit: Some(0),
                cursor: None
            }
            .limit()
            .is_err()
        );
        let bad = PageParams {
            limit: None,
            cursor: Some("!!".into()),
        };
        assert!(bad.after::<i32>().is_err());
    }
}
