//! Performance guards: at 100k customers the list, search, every filter and every sort use
//! an index; the statements of hot paths stay prepared instead of being parsed per request.

use diesel_async::RunQueryDsl;
use rapport::customers::queries::{CustomerCursor, ListFilters, Sort, list_statement};
use rapport::customers::{Level, Stage, Tier};
use rapport::db::Explain;

use crate::common::TestApp;

const CUSTOMERS: i64 = 100_000;

#[actix_web::test]
async fn list_search_and_filters_use_indexes_at_100k_customers() {
    let app = TestApp::spawn().await;
    let mut conn = app.context.pool().get().await.unwrap();
    let started = std::time::Instant::now();
    rapport::seed::seed(
        app.context.pool(),
        CUSTOMERS,
        Default::default(),
        25_000,
        |_, _| {},
    )
    .await
    .unwrap();
    eprintln!("seeded {CUSTOMERS} customers in {:?}", started.elapsed());
    let owner = app.create_user(rapport::auth::Role::Agent).await.0;
    diesel::sql_query("UPDATE customers SET owner_id = $1 WHERE external_ref < 'S000000100'")
        .bind::<diesel::sql_types::Uuid, _>(owner)
        .execute(&mut conn)
        .await
        .unwrap();
    diesel::sql_query("ANALYZE customers")
        .execute(&mut conn)
        .await
        .unwrap();

    let recent = chrono::Utc::now() - chrono::Duration::days(3);
    let base = ListFilters::default;
    let cases: Vec<(&str, ListFilters, Sort)> = vec![
        ("default list", base(), Sort::default()),
        (
            "search by name",
            ListFilters {
                q: Some("wang wei".into()),
                ..base()
            },
            Sort::default(),
        ),
        (
            "search by phone digits",
            ListFilters {
                q: Some("1300012".into()),
                ..base()
            },
            Sort::default(),
        ),
        (
            "search by e-mail",
            ListFilters {
                q: Some("anna.guo1".into()),
                ..base()
            },
            Sort::default(),
        ),
        (
            "level",
            ListFilters {
                level: Some(Level::Core),
                ..base()
            },
            Sort::default(),
        ),
        (
            "tier",
            ListFilters {
                tier: Some(Tier::Key),
                ..base()
            },
            Sort::default(),
        ),
        (
            "stage",
            ListFilters {
                stage: Some(Stage::Churned),
                ..base()
            },
            Sort::default(),
        ),
        (
            "owner",
            ListFilters {
                owner_id: Some(owner.into()),
                ..base()
            },
            Sort::default(),
        ),
        (
            "region",
            ListFilters {
                region: Some("west".into()),
                ..base()
            },
            Sort::default(),
        ),
        (
            "tag",
            ListFilters {
                tag: Some("b2b".into()),
                ..base()
            },
            Sort::default(),
        ),
        (
            "birthday month",
            ListFilters {
                birthday_month: Some(2),
                ..base()
            },
            Sort::default(),
        ),
        (
            "created after",
            ListFilters {
                created_after: Some(recent),
                ..base()
            },
            Sort::default(),
        ),
        (
            "created before",
            ListFilters {
                created_before: Some(recent),
                ..base()
            },
            Sort::default(),
        ),
        (
            "attribute",
            ListFilters {
                attributes: vec![("shoe_size".into(), "41".into())],
                ..base()
            },
            Sort::default(),
        ),
        ("sort by name", base(), Sort::parse("name").unwrap()),
        (
            "sort by total spent",
            base(),
            Sort::parse("-total_spent").unwrap(),
        ),
        (
            "sort by last purchase",
            base(),
            Sort::parse("-last_purchase_at").unwrap(),
        ),
        (
            "sort by updated",
            base(),
            Sort::parse("updated_at").unwrap(),
        ),
    ];
    for (name, filters, sort) in cases {
        let first_page = list_statement(&filters, sort, None, 51)
            .unwrap()
            .load::<rapport::customers::CustomerRow>(&mut conn)
            .await
            .unwrap();
        assert!(!first_page.is_empty(), "{name}: the seed data should match");
        let cursor = CustomerCursor::after(sort, first_page.last().unwrap());
        for (page, after) in [("first page", None), ("next page", Some(&cursor))] {
            let statement = list_statement(&filters, sort, after, 51).unwrap();
            let plan: Vec<String> =
                RunQueryDsl::load::<String>(Explain::plan(statement), &mut conn)
                    .await
                    .unwrap();
            let plan = plan.join("\n");
            assert!(
                !plan.contains("Seq Scan on customers"),
                "{name}, {page}: sequential scan\n{plan}"
            );
            // The month filter is served by its own index (its expression must match the
            // index's to the cast).
            assert!(
                name != "birthday month" || plan.contains("customers_birthday_month_idx"),
                "{name}, {page}: month index unused\n{plan}"
            );
            // A term with five digits in a row is read by its five-digit grams, not by its
            // trigrams (each digit trigram is on a large share of the customers).
            if name.starts_with("search") {
                let statement = list_statement(&filters, sort, after, 51).unwrap();
                let ran: Vec<String> =
                    RunQueryDsl::load::<String>(Explain::analyze(statement), &mut conn)
                        .await
                        .unwrap();
                let index_read = |index: &str| {
                    ran.iter().any(|line| {
                        line.contains(&format!("Index Scan on {index}"))
                            && !line.contains("never executed")
                    })
                };
                let by_digits = name == "search by phone digits";
                let grams = index_read("customers_search_grams_idx");
                let trigrams = index_read("customers_search_idx");
                assert!(
                    if by_digits {
                        grams && !trigrams
                    } else {
                        !grams
                    },
                    "{name}, {page}: grams index read {grams}, trigram index read {trigrams}\n{}",
                    ran.join("\n")
                );
                // A searched page walks the sort index without reading the table (its search
                // text is in the index): both walks, and the edge past the first window.
                assert_eq!(
                    plan.matches("Index Only Scan Backward using customers_created_idx")
                        .count(),
                    4,
                    "{name}, {page}: the walks read the table\n{plan}"
                );
            }
        }
    }
}

/// Counts the statements this connection keeps prepared.
async fn prepared_statements(conn: &mut diesel_async::AsyncPgConnection) -> i64 {
    use diesel::sql_types::BigInt;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::sql_query("SELECT count(*) AS n FROM pg_prepared_statements")
        .get_result::<Count>(conn)
        .await
        .unwrap()
        .n
}

/// A plan PostgreSQL misjudges as expensive must not also pay for JIT compilation.
#[actix_web::test]
async fn pooled_connections_never_jit_compile() {
    let app = TestApp::spawn().await;
    let mut conn = app.context.pool().get().await.unwrap();
    let jit: String = diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(
        "current_setting('jit')",
    ))
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(jit, "off");
}

#[actix_web::test]
async fn hot_statements_stay_prepared() {
    use diesel_async::AsyncConnection;
    let app = TestApp::spawn().await;
    rapport::seed::seed(app.context.pool(), 30, Default::default(), 1_000, |_, _| {})
        .await
        .unwrap();
    let mut conn = app.context.pool().get().await.unwrap();
    let search = ListFilters {
        q: Some("wang".into()),
        ..ListFilters::default()
    };
    let search_in_region = ListFilters {
        region: Some("north".into()),
        ..search.clone()
    };
    let before = prepared_statements(&mut conn).await;
    for round in 1..=2 {
        let page = list_statement(&ListFilters::default(), Sort::default(), None, 21)
            .unwrap()
            .load::<rapport::customers::CustomerRow>(&mut conn)
            .await
            .unwrap();
        for filters in [&search, &search_in_region] {
            let found = list_statement(filters, Sort::default(), None, 21)
                .unwrap()
                .load::<rapport::customers::CustomerRow>(&mut conn)
                .await
                .unwrap();
            assert!(!found.is_empty(), "seeded customers match");
        }
        let id = page.as_slice().first().expect("seeded customers").id;
        rapport::customers::queries::find_live(&conn, id)
            .await
            .unwrap();
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            rapport::db::lock_key(conn, "statement test").await
        })
        .await
        .unwrap();
        // An unfiltered page, a page searched by `q` alone (its plan is fixed by its shape),
        // a read by id, an advisory lock; not the search in a region, which PostgreSQL must
        // plan for the region (a generic plan cannot know how many customers are in it).
        // The transaction's own statements are simple queries.
        assert_eq!(
            prepared_statements(&mut conn).await,
            before + 4,
            "round {round}: each statement prepared once and kept, the search in a region never"
        );
    }
}

/// Searched pages come back complete and in order, page after page, whatever the sort and
/// whichever way the statement reads them (see `customers::queries::search`): with `limit=2`
/// the first window is 75 rows and the walk goes on for up to 1,200 more, so among 1,300
/// customers
/// - `needle` (6 matches, two in the first 75) is walked on, then read by the trigram index;
/// - `thread` (3 matches: one in the first 75, one in the walk on, one past row 1,275) is
///   walked on to the cap and the rest read by the trigram index past it;
/// - `example` (every customer) fills each page from the first window.
#[actix_web::test]
async fn searched_pages_are_complete_and_in_order() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    rapport::seed::seed(
        app.context.pool(),
        1_300,
        Default::default(),
        1_300,
        |_, _| {},
    )
    .await
    .unwrap();
    let mut conn = app.context.pool().get().await.unwrap();
    let newest_first = ids(
        &mut conn,
        "SELECT array_agg(id ORDER BY created_at DESC, id DESC) FROM customers",
    )
    .await;
    let at = |positions: &[usize]| -> Vec<uuid::Uuid> {
        positions.iter().map(|&i| newest_first[i]).collect()
    };
    let needles = at(&[0, 60, 80, 300, 1250, 1299]);
    let threads = at(&[1, 1251, 1298]);
    for (company, customers) in [("Needle Works", &needles), ("Thread Mills", &threads)] {
        diesel::sql_query("UPDATE customers SET company = $1 || ' ' || id WHERE id = ANY($2)")
            .bind::<diesel::sql_types::Text, _>(company)
            .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(customers)
            .execute(&mut conn)
            .await
            .unwrap();
    }

    let walk = |query: &'static str, pages: usize| {
        let (app, admin) = (&app, &admin);
        async move {
            let first = format!("/api/v1/customers?limit=2&{query}");
            app.walk_pages(&first, Some(admin), pages)
                .await
                .iter()
                .map(|customer| customer["id"].as_str().unwrap().parse().unwrap())
                .collect::<Vec<uuid::Uuid>>()
        }
    };
    let everything = usize::MAX;
    assert_eq!(walk("q=needle", everything).await, needles, "newest first");
    assert_eq!(walk("q=thread", everything).await, threads, "past the walk");
    assert_eq!(
        walk("q=example", 3).await,
        at(&[0, 1, 2, 3, 4, 5]),
        "common"
    );
    let mut oldest_first = needles.clone();
    oldest_first.reverse();
    assert_eq!(
        walk("q=needle&sort=created_at", everything).await,
        oldest_first,
        "oldest first"
    );
    // By name: the needles share their company, not their names; the order is the list's own.
    let by_name = ids(
        &mut conn,
        "SELECT array_agg(id ORDER BY display_name, id) FROM customers WHERE company LIKE 'Needle%'",
    )
    .await;
    assert_eq!(
        walk("q=needle&sort=name", everything).await,
        by_name,
        "by name"
    );
    // Another filter beside the term goes into every branch.
    diesel::sql_query("UPDATE customers SET region = 'polar' WHERE id = ANY($1)")
        .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(at(&[0, 300, 1299]))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        walk("q=needle&region=polar", everything).await,
        at(&[0, 300, 1299]),
        "with a region"
    );
}

/// The ids an `array_agg` query returns.
async fn ids(conn: &mut diesel_async::AsyncPgConnection, query: &str) -> Vec<uuid::Uuid> {
    diesel::select(diesel::dsl::sql::<
        diesel::sql_types::Array<diesel::sql_types::Uuid>,
    >(&format!("({query})")))
    .get_result(conn)
    .await
    .unwrap()
}

/// Backends of the shared read connections on this test's database.
async fn shared_read_backends(app: &TestApp) -> Vec<i32> {
    use diesel::sql_types::{Integer, Text};
    #[derive(diesel::QueryableByName)]
    struct Backend {
        #[diesel(sql_type = Integer)]
        pid: i32,
    }
    let mut conn = app.context.pool().get().await.unwrap();
    diesel::sql_query(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
         AND application_name = $1 ORDER BY pid",
    )
    .bind::<Text, _>(rapport::db::shared_reads::APPLICATION_NAME)
    .load::<Backend>(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .map(|b| b.pid)
    .collect()
}

/// Concurrent reads by id, whichever of two workers serves them, go pipelined over one shared
/// connection, each answered with its own customer; when that connection dies, the read that
/// finds out is retried on a pooled connection and the next one opens a new shared connection.
#[actix_web::test]
async fn reads_by_id_share_one_connection_and_survive_losing_it() {
    let app = TestApp::spawn_with(&["--workers", "2"]).await;
    let admin = app.admin_token().await;
    let mut paths = Vec::new();
    for i in 0..40 {
        let body = serde_json::json!({"display_name": format!("Shared read {i}")});
        let res = app.post("/api/v1/customers", Some(&admin), &body).await;
        assert_eq!(res.status, 201, "{}", res.text);
        paths.push(format!(
            "/api/v1/customers/{}",
            res.body["id"].as_str().unwrap()
        ));
    }
    let reads =
        futures_util::future::join_all(paths.iter().map(|p| app.get(p, Some(&admin)))).await;
    for (i, (path, read)) in paths.iter().zip(&reads).enumerate() {
        assert_eq!(read.status, 200, "{}", read.text);
        assert!(path.ends_with(read.body["id"].as_str().unwrap()));
        assert_eq!(read.body["display_name"], format!("Shared read {i}"));
    }
    let before = shared_read_backends(&app).await;
    assert_eq!(
        before.len(),
        1,
        "two workers (40 concurrent connections spread over both), one shared connection"
    );

    let mut conn = app.context.pool().get().await.unwrap();
    diesel::sql_query("SELECT pg_terminate_backend($1)")
        .bind::<diesel::sql_types::Integer, _>(before[0])
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    for path in &paths[..3] {
        let read = app.get(path, Some(&admin)).await;
        assert_eq!(read.status, 200, "{}", read.text);
    }
    let after = shared_read_backends(&app).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(
        after, before,
        "a new shared connection replaced the lost one"
    );
}
