//! The cursor condition of keyset pagination for a list ordered by `(key, id)`, ascending or
//! descending, whatever the key's type: the next page holds the rows strictly past the last
//! row served. Lists read their window through [`crate::http::pagination::Window`] and
//! filter with [`past`] (or [`older_than`], the newest-first case).
//!
//! Written as the row comparison `(key, id) < ($1, $2)` (or `>`), which PostgreSQL turns into
//! a range on an index ending in `(key, id)` and seeks to. The equivalent
//! `key < $1 OR (key = $1 AND id < $2)` (diesel has no row comparison) is only a filter:
//! each page read and discarded every row before its cursor, so page n cost n pages.

use chrono::{DateTime, Utc};
use diesel::expression::{AppearsOnTable, Expression, ValidGrouping, is_aggregate};
use diesel::helper_types::{Asc, Desc};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::query_dsl::methods;
use diesel::serialize::ToSql;
use diesel::sql_types::{Bool, SqlType, Timestamptz, Uuid as SqlUuid};
use diesel::{ExpressionMethods, QueryResult};
use uuid::Uuid;

/// Which way a list runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ascending,
    Descending,
}

/// Rows strictly past a cursor `(key, id)` in a list ordered by `(key, id)`; see [`past`].
#[derive(Debug, Clone, Copy)]
pub struct Past<C, I, K, ST> {
    key_column: C,
    id_column: I,
    key: K,
    last: Uuid,
    direction: Direction,
    sql_type: std::marker::PhantomData<ST>,
}

/// Rows whose `(key, id)` comes strictly after `(key, last)` in `direction`: the page after
/// the row `(key, last)`.
pub fn past<C, I, K, ST>(
    key_column: C,
    id_column: I,
    (key, last): (K, Uuid),
    direction: Direction,
) -> Past<C, I, K, ST>
where
    C: Expression<SqlType = ST>,
    I: Expression<SqlType = SqlUuid>,
    ST: SqlType,
    K: ToSql<ST, Pg>,
{
    Past {
        key_column,
        id_column,
        key,
        last,
        direction,
        sql_type: std::marker::PhantomData,
    }
}

/// The newest-first case: rows strictly older than `(at, last)` in a list ordered by
/// `time DESC, id DESC` (orders, a customer's history and timeline).
pub fn older_than<T, I>(
    time: T,
    id: I,
    cursor: (DateTime<Utc>, Uuid),
) -> Past<T, I, DateTime<Utc>, Timestamptz>
where
    T: Expression<SqlType = Timestamptz>,
    I: Expression<SqlType = SqlUuid>,
{
    past(time, id, cursor, Direction::Descending)
}

/// One page of a list ordered by `(key, id)` in `direction`, which the client picks
/// (`?sort=field` or `?sort=-field`): `query` in that order, and past `after` (the key and
/// id of the last row served) when a page follows another.
pub fn page_in<Q, C, I, K, ST>(
    query: Q,
    (key, id): (C, I),
    after: Option<(K, Uuid)>,
    direction: Direction,
) -> Q
where
    C: ExpressionMethods + Expression<SqlType = ST> + Copy,
    I: ExpressionMethods + Expression<SqlType = SqlUuid> + Copy,
    ST: SqlType,
    K: ToSql<ST, Pg>,
    Q: methods::OrderDsl<(Asc<C>, Asc<I>), Output = Q>
        + methods::OrderDsl<(Desc<C>, Desc<I>), Output = Q>
        + methods::FilterDsl<Past<C, I, K, ST>, Output = Q>,
{
    let query = match direction {
        Direction::Ascending => methods::OrderDsl::order(query, (key.asc(), id.asc())),
        Direction::Descending => methods::OrderDsl::order(query, (key.desc(), id.desc())),
    };
    match after {
        Some(after) => methods::FilterDsl::filter(query, past(key, id, after, direction)),
        None => query,
    }
}

impl<C, I, K, ST> QueryId for Past<C, I, K, ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<C, I, K, ST> Expression for Past<C, I, K, ST> {
    type SqlType = Bool;
}

impl<C, I, K, ST, QS> AppearsOnTable<QS> for Past<C, I, K, ST>
where
    C: AppearsOnTable<QS>,
    I: AppearsOnTable<QS>,
{
}

impl<C, I, K, ST> ValidGrouping<()> for Past<C, I, K, ST> {
    type IsAggregate = is_aggregate::Never;
}

impl<C, I, K, ST> QueryFragment<Pg> for Past<C, I, K, ST>
where
    C: QueryFragment<Pg>,
    I: QueryFragment<Pg>,
    K: ToSql<ST, Pg>,
    Pg: diesel::sql_types::HasSqlType<ST>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("(");
        self.key_column.walk_ast(out.reborrow())?;
        out.push_sql(", ");
        self.id_column.walk_ast(out.reborrow())?;
        out.push_sql(match self.direction {
            Direction::Ascending => ") > (",
            Direction::Descending => ") < (",
        });
        out.push_bind_param::<ST, _>(&self.key)?;
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
    use crate::db::schema::{orders, users};

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

    #[test]
    fn any_key_type_and_direction() {
        let query = users::table.select(users::id).filter(past(
            users::email,
            users::id,
            ("a@example.com".to_owned(), Uuid::nil()),
            Direction::Ascending,
        ));
        let sql = diesel::debug_query::<Pg, _>(&query).to_string();
        assert!(
            sql.contains(r#"WHERE ("users"."email", "users"."id") > ($1, $2)"#),
            "{sql}"
        );
    }
}
