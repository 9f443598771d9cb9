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
    rapport::seed::seed(app.context.pool(), CUSTOMERS, 0, 25_000, |_, _| {})
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
                owner_id: Some(owner),
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
            let plan: Vec<String> = RunQueryDsl::load::<String>(Explain(statement), &mut conn)
                .await
                .unwrap();
            let plan = plan.join("\n");
            assert!(
                !plan.contains("Seq Scan on customers"),
                "{name}, {page}: sequential scan\n{plan}"
            );
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
    rapport::seed::seed(app.context.pool(), 30, 0, 1_000, |_, _| {})
        .await
        .unwrap();
    let mut conn = app.context.pool().get().await.unwrap();
    let search = ListFilters {
        q: Some("wang".into()),
        ..ListFilters::default()
    };
    let before = prepared_statements(&mut conn).await;
    for round in 1..=2 {
        let page = list_statement(&ListFilters::default(), Sort::default(), None, 21)
            .unwrap()
            .load::<rapport::customers::CustomerRow>(&mut conn)
            .await
            .unwrap();
        let found = list_statement(&search, Sort::default(), None, 21)
            .unwrap()
            .load::<rapport::customers::CustomerRow>(&mut conn)
            .await
            .unwrap();
        assert!(!found.is_empty(), "seeded customers match");
        let id = page.as_slice().first().expect("seeded customers").id;
        rapport::customers::queries::find_live(&mut conn, id)
            .await
            .unwrap();
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            rapport::db::lock_key(conn, "statement test").await
        })
        .await
        .unwrap();
        // An unfiltered page, a read by id, an advisory lock; not the search page, which
        // PostgreSQL must plan for its term (a generic plan cannot know how many rows match).
        // The transaction's own statements are simple queries.
        assert_eq!(
            prepared_statements(&mut conn).await,
            before + 3,
            "round {round}: each statement prepared once and kept, the search never"
        );
    }
}

/// A rare term's matches, spread from the newest customer to the oldest, come back once each,
/// in order, page after page, whatever the sort: a guard for any bound put on how far a
/// searched page walks (see docs/performance.md on search plans).
#[actix_web::test]
async fn sparse_search_matches_page_in_order() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    rapport::seed::seed(app.context.pool(), 400, 0, 400, |_, _| {})
        .await
        .unwrap();
    let mut conn = app.context.pool().get().await.unwrap();
    // Positions in the newest-first list: near the start, the middle and the very end.
    let newest_first = ids(
        &mut conn,
        "SELECT array_agg(id ORDER BY created_at DESC, id DESC) FROM customers",
    )
    .await;
    let needles: Vec<uuid::Uuid> = [0, 140, 151, 260, 399]
        .iter()
        .map(|&i| newest_first[i])
        .collect();
    diesel::sql_query("UPDATE customers SET company = 'Needle Works ' || id WHERE id = ANY($1)")
        .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(&needles)
        .execute(&mut conn)
        .await
        .unwrap();

    let walk = |sort: &'static str| {
        let app = &app;
        let admin = &admin;
        async move {
            let mut found = Vec::new();
            let first = format!("/api/v1/customers?q=needle&limit=2&sort={sort}");
            let mut path = first.clone();
            loop {
                let page = app.get(&path, Some(admin)).await;
                assert_eq!(page.status, 200, "{}", page.body);
                for customer in page.body["data"].as_array().unwrap() {
                    found.push(
                        customer["id"]
                            .as_str()
                            .unwrap()
                            .parse::<uuid::Uuid>()
                            .unwrap(),
                    );
                }
                match page.body["next_cursor"].as_str() {
                    Some(cursor) => path = format!("{first}&cursor={cursor}"),
                    None => break,
                }
            }
            found
        }
    };
    assert_eq!(walk("-created_at").await, needles, "newest first");
    let mut oldest_first = needles.clone();
    oldest_first.reverse();
    assert_eq!(walk("created_at").await, oldest_first, "oldest first");
    // By name: the needles share their company, not their names; the order is the list's own.
    let by_name = ids(
        &mut conn,
        "SELECT array_agg(id ORDER BY display_name, id) FROM customers WHERE company LIKE 'Needle%'",
    )
    .await;
    assert_eq!(walk("name").await, by_name, "by name");
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
