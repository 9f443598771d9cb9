//! A searched list page as one statement whose cost is bounded whatever `ANALYZE` sampled.
//!
//! A page of customers whose text contains a term, in sort order, can be read two ways: walk
//! the sort index and test each row (cheap when the term is common: a 3 % term fills a page
//! of 20 in ~700 rows), or collect every match from the trigram index and sort them (cheap
//! when it is rare). PostgreSQL chooses by its estimate of how many rows match, which it
//! takes from a 100-value sample: a term on 0.1 % of a million customers was estimated at
//! 1 % after one `ANALYZE` in ten, and walked 11,000 rows (15 ms instead of 3.6); a term that
//! matches only old customers would walk the whole table. See docs/performance.md.
//!
//! Instead the statement measures the term itself. It walks a first window of the list
//! ([`FIRST_WINDOW_PER_ROW`] rows per row asked for) and counts its matches; then the page is
//! - the first window's matches, when they fill it (common terms);
//! - those and a walk on past the window, up to [`WALK_CAP_PER_ROW`] more rows per row asked
//!   for, when at least one row in [`DENSE_ENOUGH`] of the window matched (a term in the
//!   0.4–4 % band), and past the walk's cap, if the page is still short, the trigram index
//!   (a term common among recent customers and rare before them);
//! - or, when fewer matched (rare terms), the trigram index's matches, sorted.
//!
//! Where the trigram index is read, a term with five digits in a row (part of a phone number)
//! is looked up instead by its five-digit grams: ten digits make only 1,000 trigrams, each on
//! a large share of the customers, and intersecting their lists was most of a rare digit
//! term's cost.
//!
//! Each branch is gated by a condition PostgreSQL evaluates once before running it, and each
//! is written so that only one access path can serve it: the walks are derived tables
//! ordered and limited by the sort index; the trigram branches are ordered by an expression
//! no index provides. The plan is therefore the same for every term, so the statement is
//! kept prepared when `q` is the only filter. Every branch yields ids only; the page's rows
//! are read by primary key at the end (sorting a rare term's ~1,000 matches as whole rows
//! cost it a fifth of its time).

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::Text;

use super::{BoxedCondition, CustomerRow, Sort};

/// The row's search text contains the term. The pattern comes from a sub-select, not a
/// bind: PostgreSQL then cannot estimate its matches for a custom plan either, so after five
/// runs it settles on the generic plan (otherwise it re-planned each page of a rare term,
/// 1 ms, since its estimate was lower).
const MATCHES_TERM: &str = "customers.search_text LIKE (SELECT pattern FROM term)";

/// Rows of the list the first window walks, per row asked for.
const FIRST_WINDOW_PER_ROW: i64 = 25;
/// How far a walk may go on, in rows per row asked for, when the first window was dense.
const WALK_CAP_PER_ROW: i64 = 400;
/// The walk goes on past the first window only if at least one of this many of its rows
/// matched: at that density walking and sorting the trigram index's matches cost about the
/// same at a million customers (measured in docs/performance.md).
const DENSE_ENOUGH: i64 = 250;

/// One searched page: the rows of the list (filters and cursor as `conditions`) whose search
/// text is `LIKE pattern`, the first `rows` of them in `sort` order.
pub struct SearchPage {
    conditions: Vec<BoxedCondition>,
    pattern: String,
    sort: Sort,
    rows: i64,
    columns: diesel::dsl::AsSelect<CustomerRow, Pg>,
}

/// The numbers a page of `rows` rows walks and gates by.
#[derive(Debug, PartialEq, Eq)]
struct Bounds {
    first_window: i64,
    walk_cap: i64,
    /// Matches in the first window from which the walk goes on.
    dense: i64,
}

impl Bounds {
    fn for_rows(rows: i64) -> Self {
        let first_window = FIRST_WINDOW_PER_ROW * rows;
        Self {
            first_window,
            walk_cap: WALK_CAP_PER_ROW * rows,
            dense: (first_window + DENSE_ENOUGH - 1) / DENSE_ENOUGH,
        }
    }
}

impl SearchPage {
    pub(super) fn new(
        conditions: Vec<BoxedCondition>,
        pattern: String,
        sort: Sort,
        rows: i64,
    ) -> Self {
        Self {
            conditions,
            pattern,
            sort,
            rows: rows.max(1),
            columns: CustomerRow::as_select(),
        }
    }

    fn push_conditions<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        for (i, condition) in self.conditions.iter().enumerate() {
            if i > 0 {
                out.push_sql(" AND ");
            }
            out.push_sql("(");
            condition.walk_ast(out.reborrow())?;
            out.push_sql(")");
        }
        Ok(())
    }

    /// The ids of the first `take` matches among the next `window` rows of the list (past the
    /// row the CTE `after` holds, if any): only the sort index can produce the derived table's
    /// order. The walk reads nothing but the id and the search text, which the default sort's
    /// index includes, so it is an index-only scan and touches no table page (`wang` at 1M
    /// customers: 1.8 → 0.8 ms).
    fn push_walk<'b>(
        &'b self,
        out: &mut AstPass<'_, 'b, Pg>,
        window: &str,
        after: Option<&str>,
        gate: Option<&str>,
        take: &str,
    ) -> QueryResult<()> {
        out.push_sql(
            "SELECT id FROM (SELECT customers.id, customers.search_text FROM customers WHERE ",
        );
        self.push_conditions(out)?;
        if let Some(after) = after {
            out.push_sql(&format!(" AND {}", self.past(after)));
        }
        out.push_sql(&format!(
            " ORDER BY {} LIMIT {window}) AS customers WHERE ",
            self.sort.order_sql()
        ));
        out.push_sql(MATCHES_TERM);
        if let Some(gate) = gate {
            out.push_sql(&format!(" AND {gate}"));
        }
        out.push_sql(&format!(" LIMIT {take}"));
        Ok(())
    }

    /// The sort key and id of the row `offset` rows into the list, as a one-row CTE body
    /// (none when the list is shorter).
    fn push_edge<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>, offset: i64) -> QueryResult<()> {
        out.push_sql(&format!(
            "SELECT {} AS key, customers.id FROM customers WHERE ",
            self.sort.column()
        ));
        self.push_conditions(out)?;
        out.push_sql(&format!(
            " ORDER BY {} OFFSET {offset} LIMIT 1",
            self.sort.order_sql()
        ));
        Ok(())
    }

    /// Rows past the row held by the CTE `edge`, in sort order.
    fn past(&self, edge: &str) -> String {
        format!("{} (SELECT key, id FROM {edge})", self.sort.past_sql())
    }

    /// The ids of the first page of matches from an index, sorted; `extra` narrows and gates
    /// it. Two branches, one of which runs: a term with five digits in a row is looked up by
    /// its five-digit grams (migration `search_digit_grams`), any other by its trigrams. The
    /// grams branch tests the pattern on `search_text || ''`, which the trigram index cannot
    /// serve, so PostgreSQL cannot `AND` in that index's long lists of digit trigrams: they are
    /// what the branch avoids (`13000` at a million customers: 4.0 → 1.6 ms).
    fn push_indexed<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>, extra: &str) -> QueryResult<()> {
        let by_trigrams = format!("{MATCHES_TERM} AND cardinality((SELECT grams FROM term)) = 0");
        let by_grams = "search_digit_grams(customers.search_text) @> (SELECT grams FROM term) \
                        AND customers.search_text || '' LIKE (SELECT pattern FROM term) \
                        AND cardinality((SELECT grams FROM term)) > 0";
        for (i, filter) in [by_trigrams.as_str(), by_grams].into_iter().enumerate() {
            if i > 0 {
                out.push_sql(" UNION ALL ");
            }
            out.push_sql("(SELECT customers.id FROM customers WHERE ");
            self.push_conditions(out)?;
            out.push_sql(&format!(
                " AND {filter} AND {extra} ORDER BY {} LIMIT {})",
                self.sort.unindexed_order_sql(),
                self.rows
            ));
        }
        Ok(())
    }
}

impl QueryFragment<Pg> for SearchPage {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let Bounds {
            first_window,
            walk_cap,
            dense,
        } = Bounds::for_rows(self.rows);
        let (rows, short) = (self.rows, self.rows - 1);
        let found = "(SELECT count(*) FROM first_window)";
        let walking = format!("{found} BETWEEN {dense} AND {short}");

        out.push_sql(
            "WITH term AS (SELECT pattern, search_digit_grams(pattern) AS grams FROM (SELECT ",
        );
        out.push_bind_param::<Text, _>(&self.pattern)?;
        out.push_sql(" AS pattern) AS bound), first_window AS MATERIALIZED (");
        let all = rows.to_string();
        self.push_walk(&mut out, &first_window.to_string(), None, None, &all)?;
        out.push_sql("), window_end AS MATERIALIZED (");
        self.push_edge(&mut out, first_window - 1)?;
        out.push_sql("), walk_on AS MATERIALIZED (");
        // The cap as a sub-select: PostgreSQL plans a limit it cannot see for 10 % of the
        // rows, so the walk stays on the index (a constant near the table's size, at 10,000
        // customers, had it sort the whole table instead). It takes only what the page lacks.
        self.push_walk(
            &mut out,
            &format!("(SELECT {walk_cap})"),
            Some("window_end"),
            Some(&walking),
            &format!("{rows} - {found}"),
        )?;
        out.push_sql("), walk_end AS MATERIALIZED (");
        self.push_edge(&mut out, first_window + walk_cap - 1)?;
        out.push_sql(") SELECT ");
        self.columns.walk_ast(out.reborrow())?;
        out.push_sql(&format!(
            " FROM customers WHERE customers.id IN \
             ((SELECT id FROM first_window WHERE {found} >= {dense}) \
             UNION ALL (SELECT id FROM walk_on) UNION ALL "
        ));
        self.push_indexed(&mut out, &format!("{found} < {dense}"))?;
        out.push_sql(" UNION ALL ");
        self.push_indexed(
            &mut out,
            &format!(
                "{} AND {walking} AND {found} + (SELECT count(*) FROM walk_on) < {rows}",
                self.past("walk_end")
            ),
        )?;
        out.push_sql(&format!(
            ") ORDER BY {} LIMIT {rows}",
            self.sort.order_sql()
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ListFilters, list_conditions};
    use super::*;
    use crate::db::like_pattern;

    #[test]
    fn a_page_of_twenty_walks_525_rows_then_up_to_8400_when_one_in_250_matched() {
        assert_eq!(
            Bounds::for_rows(21),
            Bounds {
                first_window: 525,
                walk_cap: 8400,
                dense: 3
            }
        );
        assert_eq!(
            Bounds::for_rows(3).dense,
            1,
            "any match is dense in 75 rows"
        );
    }

    #[test]
    fn every_branch_is_gated_and_served_by_one_access_path() {
        let sort = Sort::default();
        let page = SearchPage::new(
            list_conditions(&ListFilters::default(), sort, None).unwrap(),
            like_pattern("wang"),
            sort,
            21,
        );
        let sql = diesel::debug_query::<Pg, _>(&page).to_string();
        let live = "((\"customers\".\"deleted_at\" IS NULL))";
        let walk =
            format!("(SELECT customers.id, customers.search_text FROM customers WHERE {live}");
        let order = "ORDER BY customers.created_at DESC, customers.id DESC";
        for expected in [
            "WITH term AS (SELECT pattern, search_digit_grams(pattern) AS grams FROM \
             (SELECT $1 AS pattern) AS bound), first_window AS MATERIALIZED",
            &format!(
                "first_window AS MATERIALIZED (SELECT id FROM {walk} {order} LIMIT 525) AS customers"
            ),
            &format!(
                "window_end AS MATERIALIZED (SELECT customers.created_at AS key, customers.id FROM \
                 customers WHERE {live} {order} OFFSET 524 LIMIT 1)"
            ),
            &format!(
                "walk_on AS MATERIALIZED (SELECT id FROM {walk} AND (customers.created_at, \
                 customers.id) < (SELECT key, id FROM window_end) {order} LIMIT (SELECT 8400)) \
                 AS customers"
            ),
            "AND (SELECT count(*) FROM first_window) BETWEEN 3 AND 20 \
             LIMIT 21 - (SELECT count(*) FROM first_window)",
            "OFFSET 8924 LIMIT 1",
            "FROM customers WHERE customers.id IN \
             ((SELECT id FROM first_window WHERE (SELECT count(*) FROM first_window) >= 3) \
             UNION ALL (SELECT id FROM walk_on) UNION ALL (SELECT customers.id FROM customers",
            "AND (SELECT count(*) FROM first_window) < 3 \
             ORDER BY customers.created_at + interval '0 s' DESC, customers.id DESC LIMIT 21)",
            "AND (customers.created_at, customers.id) < (SELECT key, id FROM walk_end) \
             AND (SELECT count(*) FROM first_window) BETWEEN 3 AND 20 \
             AND (SELECT count(*) FROM first_window) + (SELECT count(*) FROM walk_on) < 21",
            &format!(")) {order} LIMIT 21"),
        ] {
            assert!(sql.contains(expected), "missing {expected}\n{sql}");
        }
        assert_eq!(
            sql.matches(&format!(
                "(SELECT customers.id FROM customers WHERE {live} AND \
                 customers.search_text LIKE (SELECT pattern FROM term) AND "
            ))
            .count(),
            2,
            "both trigram branches yield ids only\n{sql}"
        );
        assert_eq!(
            sql.matches(&format!(
                "(SELECT customers.id FROM customers WHERE {live} AND \
                 search_digit_grams(customers.search_text) @> (SELECT grams FROM term) AND \
                 customers.search_text || '' LIKE (SELECT pattern FROM term) AND \
                 cardinality((SELECT grams FROM term)) > 0 AND "
            ))
            .count(),
            2,
            "both index branches have a grams twin, which the trigram index cannot serve\n{sql}"
        );
        assert_eq!(
            sql.matches(
                "LIKE (SELECT pattern FROM term) AND cardinality((SELECT grams FROM term)) = 0"
            )
            .count(),
            2,
            "the trigram branches run only for terms without five digits in a row\n{sql}"
        );
        assert_eq!(
            sql.matches("LIKE (SELECT pattern FROM term)").count(),
            6,
            "{sql}"
        );
        assert!(sql.ends_with("-- binds: [\"%wang%\"]"), "one bind: {sql}");
    }
}
