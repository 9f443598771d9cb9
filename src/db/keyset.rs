//! The cursor condition of newest-first lists ordered by `(time DESC, id DESC)` (orders, a
//! customer's history and timeline): the next page holds the rows strictly older than the
//! last row served.
//!
//! Written as the row comparison `(time, id) < ($1, $2)`, which PostgreSQL turns into a
//! range on an index ending in `(time, id)` and seeks to. The equivalent
//! `time < $1 OR (time = $1 AND id < $2)` (diesel has no row comparison) is only a filter:
//! each page read and discarded every row newer than its cursor, so page n cost n pages.

use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel::expression::{AppearsOnTable, Expression, ValidGrouping, is_aggregate};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Bool, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

/// Rows strictly older than a cursor `(at, id)`; see [`older_than`].
#[derive(Debug, Clone, Copy, QueryId)]
pub struct OlderThan<T, I> {
    time: T,
    id: I,
    at: DateTime<Utc>,
    last: Uuid,
}

/// Rows whose `(time, id)` comes strictly before `(at, last)`, for the page after the row
/// `(at, last)` of a list ordered by `time DESC, id DESC`.
pub fn older_than<T, I>(time: T, id: I, (at, last): (DateTime<Utc>, Uuid)) -> OlderThan<T, I>
where
    T: Expression<SqlType = Timestamptz>,
    I: Expression<SqlType = SqlUuid>,
{
    OlderThan { time, id, at, last }
}

impl<T, I> Expression for OlderThan<T, I> {
    type SqlType = Bool;
}

impl<T, I, QS> AppearsOnTable<QS> for OlderThan<T, I>
where
    T: AppearsOnTable<QS>,
    I: AppearsOnTable<QS>,
{
}

impl<T, I> ValidGrouping<()> for OlderThan<T, I> {
    type IsAggregate = is_aggregate::Never;
}

impl<T: QueryFragment<Pg>, I: QueryFragment<Pg>> QueryFragment<Pg> for OlderThan<T, I> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("(");
        self.time.walk_ast(out.reborrow())?;
        out.push_sql(", ");
        self.id.walk_ast(out.reborrow())?;
        out.push_sql(") < (");
        out.push_bind_param::<Timestamptz, _>(&self.at)?;
        out.push_sql(", ");
        out.push_bind_param::<SqlUuid, _>(&self.last)?;
        out.push_sql(")");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;

    use super::*;
    use crate::db::schema::orders;

    #[test]
    fn a_cursor_is_one_row_comparison_an_index_can_seek_to() {
        let cursor = (Utc::now(), Uuid::nil());
        let query = orders::table.select(orders::id).filter(older_than(
            orders::ordered_at,
            orders::id,
            cursor,
        ));
        let sql = diesel::debug_query::<Pg, _>(&query).to_string();
        assert!(
            sql.contains(r#"WHERE ("orders"."ordered_at", "orders"."id") < ($1, $2)"#),
            "{sql}"
        );
    }
}
