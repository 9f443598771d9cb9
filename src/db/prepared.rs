//! Statements that PostgreSQL keeps prepared per connection and that diesel renders cheaply.
//!
//! - [`ByIdTemplate`]: diesel-async renders a query's SQL on every execution, walking the
//!   whole statement; for the 45-column customer row that walk (quoting 90 identifiers) was
//!   about 7 % of the CPU of a `GET /customers/{id}`. A template renders the diesel query
//!   once, so the text still comes from the typed query and cannot drift from the schema;
//!   each execution only pushes the stored text around the one id it binds. It also shares
//!   the typed query's static statement-cache key, so diesel finds the prepared statement by
//!   type instead of hashing the 1.5 kB text on every call.
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

/// The SQL of a typed query `Q` with exactly one bind, an id, split around that bind.
pub struct ByIdTemplate<Q> {
    before: String,
    after: String,
    query: PhantomData<fn() -> Q>,
}

impl<Q: Query + QueryFragment<Pg>> ByIdTemplate<Q> {
    /// Renders `query` (built with any id, which is not kept). Panics if the query does not
    /// bind exactly one value: templates are built from fixed queries, which the
    /// integration tests run.
    pub fn of(query: Q) -> Self {
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
            query: PhantomData,
        }
    }

    /// The query for this id, ready for diesel-async's `get_result` / `load`.
    pub fn with(&self, id: Uuid) -> ById<'_, Q> {
        ById { template: self, id }
    }
}

/// A [`ByIdTemplate`] bound to one id.
pub struct ById<'a, Q> {
    template: &'a ByIdTemplate<Q>,
    id: Uuid,
}

impl<Q> QueryFragment<Pg> for ById<'_, Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(&self.template.before);
        out.push_bind_param::<diesel::sql_types::Uuid, _>(&self.id)?;
        out.push_sql(&self.template.after);
        Ok(())
    }
}

/// The typed query's own id: the template renders exactly that query's text, so both may
/// share one prepared statement, found by type rather than by hashing the text.
impl<Q: QueryId> QueryId for ById<'_, Q> {
    type QueryId = Q::QueryId;
    const HAS_STATIC_QUERY_ID: bool = Q::HAS_STATIC_QUERY_ID;
}

impl<Q: Query> Query for ById<'_, Q> {
    type SqlType = Q::SqlType;
}

/// A query that may stay prepared although it contains `diesel::dsl::sql` fragments.
///
/// Diesel refuses because a query type with a static id could render different text. A
/// `Cached` query has no static id, so diesel's statement cache is keyed by the rendered text
/// and bind types, of which the fragments are part: the same text is the same statement.
///
/// Only for statements whose best plan does not depend on the bound values: after five runs
/// PostgreSQL may switch a prepared statement to one generic plan (see
/// `customers::queries::list_statement` for what that did to search). PostgreSQL picks the
/// generic plan only when it costs no more than the plans made for each run's values; a
/// condition that picks a partial index must therefore be written out, not bound (a
/// generic plan cannot prove that `planned = $1` matches `WHERE NOT planned`), and so
/// must a limit (a bound one is costed as a tenth of the rows). Otherwise the statement is
/// planned anew on every run (see `visits::cadences::due_query`).
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
    fn templates_are_cached_under_their_typed_query_id() {
        fn id_of<Q: QueryId>(_: &Q) -> Option<std::any::TypeId> {
            Q::query_id()
        }
        let plain = || customers::table.find(Uuid::nil()).select(customers::id);
        let plain_template = ByIdTemplate::of(plain());
        let locked_template = ByIdTemplate::of(plain().for_update());
        let plain_id = id_of(&plain_template.with(Uuid::nil()));
        assert!(plain_id.is_some());
        assert_eq!(plain_id, id_of(&plain()));
        assert_ne!(plain_id, id_of(&locked_template.with(Uuid::nil())));
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
