//! `?sort=` of the lists that run in one order either way: the documented field ascending, or
//! descending with a leading `-` (api.md). The parameter is an enum of exactly those values,
//! so any other sort is `400` and the document lists the ones there are. A cursor carries the
//! order it was made in, so a cursor of one order is refused in the other.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::keyset::Direction;
use crate::error::{ApiError, ApiResult};
use crate::http::pagination::Window;

/// An order a list offers; `direction` is how its key runs.
pub trait SortOrder: Copy + PartialEq + Default {
    /// Which way the list's key runs in this order.
    fn direction(self) -> Direction;
}

/// `?sort=` of a list in order of creation: `-created_at` (newest first, the default) or
/// `created_at` (oldest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub enum CreationOrder {
    /// Oldest first.
    #[serde(rename = "created_at")]
    Oldest,
    /// Newest first (the default).
    #[default]
    #[serde(rename = "-created_at")]
    Newest,
}

impl SortOrder for CreationOrder {
    fn direction(self) -> Direction {
        match self {
            Self::Oldest => Direction::Ascending,
            Self::Newest => Direction::Descending,
        }
    }
}

/// `?sort=` of a list of appointments: `scheduled_start` (soonest first, the default) or
/// `-scheduled_start` (latest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub enum ScheduleOrder {
    /// Soonest first (the default).
    #[default]
    #[serde(rename = "scheduled_start")]
    Soonest,
    /// Latest first.
    #[serde(rename = "-scheduled_start")]
    Latest,
}

impl SortOrder for ScheduleOrder {
    fn direction(self) -> Direction {
        match self {
            Self::Soonest => Direction::Ascending,
            Self::Latest => Direction::Descending,
        }
    }
}

/// A cursor of a sortable list: the order it was made in and the key of the last row served.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SortedCursor<S, K>(pub S, pub K);

impl<S: SortOrder, K: Clone> Window<SortedCursor<S, K>> {
    /// The key the page starts after in `sort`: `400` when the cursor was made in another order.
    pub fn after_in(&self, sort: S) -> ApiResult<Option<K>> {
        match &self.after {
            None => Ok(None),
            Some(SortedCursor(made_in, key)) if *made_in == sort => Ok(Some(key.clone())),
            Some(_) => Err(ApiError::BadRequest(
                "the cursor belongs to another sort order; start again without it".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::pagination::PageParams;

    #[derive(serde::Deserialize)]
    struct Params {
        sort: Option<CreationOrder>,
    }

    #[test]
    fn only_the_documented_sorts_parse() {
        let parse = |q| crate::http::query::parse::<Params>(q).map(|p| p.sort);
        assert_eq!(
            parse("sort=created_at").unwrap(),
            Some(CreationOrder::Oldest)
        );
        assert_eq!(
            parse("sort=-created_at").unwrap(),
            Some(CreationOrder::Newest)
        );
        assert_eq!(parse("").unwrap(), None);
        assert!(parse("sort=name").is_err());
        assert!(parse("sort=-updated_at").is_err());
    }

    #[test]
    fn a_cursor_is_refused_in_the_other_order() {
        let rows = vec![1, 2, 3];
        let first = PageParams {
            limit: Some(2),
            cursor: None,
        }
        .window::<SortedCursor<CreationOrder, i32>>()
        .unwrap()
        .page(rows, |n| SortedCursor(CreationOrder::Oldest, *n));
        let next = PageParams {
            limit: Some(2),
            cursor: first.next_cursor,
        }
        .window::<SortedCursor<CreationOrder, i32>>()
        .unwrap();
        assert_eq!(next.after_in(CreationOrder::Oldest).unwrap(), Some(2));
        assert!(next.after_in(CreationOrder::Newest).is_err());
    }
}
