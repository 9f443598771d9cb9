//! Statements that PostgreSQL keeps prepared per connection and that diesel renders cheaply.
//!
//! - [`ByIdTemplate`]: diesel-async renders a query's SQL on every execution, walking the
//!   whole statement; for the 45-column customer row that walk (quoting 90 identifiers) was
//!   about 7 % of the CPU of a `GET /customers/{id}`. A template renders the diesel query
//!   once, so the text still comes from the typed query and cannot drift from the schema;
//!   each execution only pushes the stored text around the one id it binds.
//! - [`Cached`]: diesel never keeps a statement containing a `diesel::dsl::sql` fragment
//!   prepared, so every list page, advisory lock and idempotency look-up was parsed anew —
//!   a round trip and a parse more per statement.

use std::marker::PhantomData;

use diesel::pg::{Pg, PgQueryBuilder};
use diesel::query_builder::{AstPass, Query, QueryBuilder, QueryFragment, QueryId};
use diesel::result::QueryResult;
use uuid::Uuid;

/// The placeholder of the template's one bind parameter.
const PLACEHOLDER: &str = "$1";

/// The SQL of a query with exactly one bind, an id, split around that bind.
pub struct ByIdTemplate<ST> {
    before: String,
    after: String,
    sql_type: PhantomData<fn() -> ST>,
}

impl<ST> ByIdTemplate<ST> {
    /// Renders `query` (built with any id, which is not kept). Panics if the query does not
    /// bind exactly one value: templates are built from fixed queries, which the
    /// integration tests run.
    pub fn of<Q>(query: Q) -> Self
    where
        Q: Query<SqlType = ST> + QueryFragment<Pg>,
    {
        let mut builder = PgQueryBuilder::default();
        query
            .to_sql(&mut builder, &Pg)
            .expect("a fixed query renders");
        let sql = builder.finish();
        let (before, after) = sql
            .split_once(PLACEHOLDER)
            .filter(|(_, after)| !after.contains('$'))
            .expect("a by-id template binds exactly one value");
        Self {
            before: before.to_owned(),
            after: after.to_owned(),
            sql_type: PhantomData,
        }
    }

    /// The query for this id, ready for diesel-async's `get_result` / `load`.
    pub fn with(&self, id: Uuid) -> ById<'_, ST> {
        ById { template: self, id }
    }
}

/// A [`ByIdTemplate`] bound to one id.
pub struct ById<'a, ST> {
    template: &'a ByIdTemplate<ST>,
    id: Uuid,
}

impl<ST> QueryFragment<Pg> for ById<'_, ST> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(&self.template.before);
        out.push_bind_param::<diesel::sql_types::Uuid, _>(&self.id)?;
        out.push_sql(&self.template.after);
        Ok(())
    }
}

/// Cached as a prepared statement by its text (which is the same for every id).
impl<ST> QueryId for ById<'_, ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST> Query for ById<'_, ST> {
    type SqlType = ST;
}

/// A query that may stay prepared although it contains `diesel::dsl::sql` fragments.
///
/// Diesel refuses because a query type with a static id could render different text. A
/// `Cached` query has no static id, so diesel's statement cache is keyed by the rendered text
/// and bind types, of which the fragments are part: the same text is the same statement.
///
/// Only for statements whose best plan does not depend on the bound values: after five runs
/// PostgreSQL may switch a prepared statement to one generic plan (see
/// `customers::queries::list_statement` for what that did to search).
pub struct Cached<Q> {
    query: Q,
    keep: bool,
}

impl<Q> Cached<Q> {
    /// A statement of one fixed shape (its text never varies), always kept prepared.
    pub fn fixed(query: Q) -> Self {
        Self { query, keep: true }
    }

    /// A statement kept prepared only when `keep` is true (otherwise as diesel decides).
    pub fn when(keep: bool, query: Q) -> Self {
        Self { query, keep }
    }
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Cached<Q> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.query.walk_ast(out)
    }

    fn is_safe_to_cache_prepared(&self, backend: &Pg) -> QueryResult<bool> {
        if self.keep {
            Ok(true)
        } else {
            self.query.is_safe_to_cache_prepared(backend)
        }
    }
}

impl<Q> QueryId for Cached<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Cached<Q> {
    type SqlType = Q::SqlType;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::schema::customers;
    use diesel::prelude::*;

    #[test]
    fn renders_the_typed_query_around_its_bind() {
        let template = ByIdTemplate::of(
            customers::table
                .find(Uuid::nil())
                .select((customers::id, customers::version)),
        );
        let query = template.with(Uuid::max());
        let rendered = diesel::debug_query::<Pg, _>(&query).to_string();
        assert!(
            rendered.starts_with(
                r#"SELECT "customers"."id", "customers"."version" FROM "customers" WHERE ("customers"."id" = $1)"#
            ),
            "{rendered}"
        );
        assert!(
            rendered.contains("ffffffff-ffff-ffff-ffff-ffffffffffff"),
            "{rendered}"
        );
    }

    #[test]
    fn cached_queries_may_stay_prepared_despite_sql_fragments() {
        let query = || diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>("true"));
        assert!(!QueryFragment::<Pg>::is_safe_to_cache_prepared(&query(), &Pg).unwrap());
        assert!(
            Cached::fixed(query())
                .is_safe_to_cache_prepared(&Pg)
                .unwrap()
        );
        let refused = Cached::when(false, query());
        assert!(!refused.is_safe_to_cache_prepared(&Pg).unwrap());
    }

    #[test]
    #[should_panic(expected = "exactly one value")]
    fn refuses_queries_with_more_binds() {
        ByIdTemplate::of(
            customers::table
                .find(Uuid::nil())
                .select(customers::id)
                .limit(1),
        );
    }
}
