//! The command line end to end: import, export and seed against a test database.

use std::process::Command;

use diesel_async::RunQueryDsl;
use serde_json::json;

use crate::common::TestApp;

fn rapport(app: &TestApp, args: &[&str]) -> std::process::Output {
    rapport_on(&app.database_url, args)
}

/// The `rapport` binary run with `args` against the database at `database_url`.
fn rapport_on(database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rapport"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run rapport")
}

#[actix_web::test]
async fn csv_import_reports_bad_rows_and_export_round_trips() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let dir = std::env::temp_dir().join(format!("rapport-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("customers.csv");
    std::fs::write(
        &csv,
        "display_name,phones,emails,tags,source,external_ref,attr.shoe_size,consents.email,birthday\n\
         Ada Lovelace,+44 20 7946 0958,ada@example.com,vip;newsletter,crm,1,37,true,1985-12-10\n\
         Bad Phone,12345,,,crm,2,,,\n\
         Walk-in,,walkin@example.com,,,,,,\n\
         Bad Mail,,nope,,crm,3,,,\n\
         Bad Consent,,,,crm,4,,maybe,\n\
         Future,,,,crm,5,,,2999-01-01\n",
    )
    .unwrap();
    let out = rapport(&app, &["import", "customers", csv.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "bad rows make the import fail loudly: {stderr}"
    );
    for expected in [
        "line 3: phones[0]",
        "line 5: emails[0]",
        "line 6: consents.email",
        "line 7: birthday",
        "2 created, 0 updated, 4 failed",
    ] {
        assert!(
            stderr.contains(expected),
            "missing `{expected}` in:\n{stderr}"
        );
    }
    let list = app.get("/api/v1/customers?sort=name", Some(&admin)).await;
    let names: Vec<&str> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Ada Lovelace", "Walk-in"],
        "good rows are in, bad rows are not"
    );
    let ada = &list.body["data"][0];
    assert_eq!(ada["phones"], json!(["+442079460958"]));
    assert_eq!(ada["attributes"], json!({"shoe_size": 37}));
    assert_eq!(ada["tags"], json!(["vip", "newsletter"]));

    // Again, fixed: an upsert by reference, not a duplicate.
    std::fs::write(
        &csv,
        "display_name,source,external_ref,region\nAda King,crm,1,north\n",
    )
    .unwrap();
    let out = rapport(&app, &["import", "customers", csv.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 created, 1 updated, 0 failed"));

    let out = rapport(&app, &["export", "customers", "--region", "north"]);
    assert!(out.status.success());
    let exported = String::from_utf8(out.stdout).unwrap();
    let mut lines = exported.lines();
    assert!(lines.next().unwrap().starts_with("kind,display_name,"));
    let row = lines.next().unwrap();
    assert!(row.contains("Ada King") && row.contains("+442079460958"));
    assert!(lines.next().is_none(), "only the filtered customer");

    // What export writes, import reads back.
    let all = rapport(&app, &["export", "customers"]);
    std::fs::write(&csv, &all.stdout).unwrap();
    let out = rapport(&app, &["import", "customers", csv.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("1 created, 1 updated, 0 failed"),
        "the walk-in has no reference, so it is created again: {stderr}"
    );

    let unknown = dir.join("unknown.csv");
    std::fs::write(&unknown, "display_name,order_count\nX,5\n").unwrap();
    let out = rapport(&app, &["import", "customers", unknown.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown columns order_count"));
    std::fs::remove_dir_all(dir).ok();
}

#[actix_web::test]
async fn seed_fills_customers_orders_and_figures() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (full_indexes, _) = index_state(&app).await;
    let out = rapport(
        &app,
        &["seed", "--customers", "300", "--orders-per-customer", "3"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("seeded 300 customers with 900 orders"));
    let out = rapport(
        &app,
        &[
            "seed",
            "--customers",
            "20",
            "--orders-per-customer",
            "0",
            "--complaints-per-customer",
            "2",
            "--visits-per-customer",
            "3",
            "--lots-per-member",
            "2",
        ],
    );
    assert!(
        out.status.success(),
        "seeding again adds after the last seeded customer"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("with 0 orders, 40 complaints, 60 visits and 10 members with 20 lots"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(app.count("SELECT count(*) AS count FROM visits").await, 60);
    assert_eq!(
        app.count("SELECT count(*) AS count FROM points_lots").await,
        20
    );
    assert_eq!(
        app.count("SELECT count(*) AS count FROM club_members m WHERE (SELECT sum(points) FROM points_entries e WHERE e.member_id = m.id) \
                   <> (SELECT sum(remaining) FROM points_lots l WHERE l.member_id = m.id) - m.owed").await,
        0,
        "the seeded ledgers add up"
    );
    assert_eq!(
        app.count("SELECT count(*) AS count FROM visits v JOIN customers c ON c.id = v.customer_id WHERE v.owner_id IS DISTINCT FROM c.owner_id").await,
        0,
        "a seeded customer's visits are their owner's"
    );
    assert_eq!(
        app.count("SELECT count(*) AS count FROM customers c WHERE NOT EXISTS (SELECT 1 FROM visit_due d WHERE d.customer_id = c.id)").await,
        0,
        "every seeded customer is on the due list's table, though the seed skips triggers"
    );
    let owner: String = {
        let mut conn = app.context.pool().get().await.unwrap();
        #[derive(diesel::QueryableByName)]
        struct Owner {
            #[diesel(sql_type = diesel::sql_types::Text)]
            id: String,
        }
        let row: Owner = diesel::sql_query(
            "SELECT owner_id::text AS id FROM visit_due WHERE NOT planned AND owner_id IS NOT NULL LIMIT 1",
        )
        .get_result(&mut conn)
        .await
        .unwrap();
        row.id
    };
    let due = app
        .get(
            &format!("/api/v1/visits/due?owner_id={owner}&within=366d"),
            Some(&admin),
        )
        .await;
    assert_eq!(due.status, 200, "{}", due.text);
    assert!(!due.body["data"].as_array().unwrap().is_empty());
    assert_eq!(
        app.count("SELECT count(*) AS count FROM complaints").await,
        40
    );
    assert_eq!(
        app.count("SELECT count(*) AS count FROM complaint_clocks")
            .await,
        80
    );
    assert_eq!(
        app.count("SELECT count(*) AS count FROM complaints WHERE assignee_id IS NULL")
            .await,
        0,
        "every seeded complaint has a seeded agent"
    );
    let complaints = app
        .walk_pages("/api/v1/complaints?limit=7", Some(&admin), usize::MAX)
        .await;
    assert_eq!(
        complaints.len(),
        40,
        "seeded complaints read back through the API"
    );
    assert!(
        complaints
            .iter()
            .all(|c| c["sla"].as_array().unwrap().len() == 2)
    );
    // The batches write the search text themselves and skip the trigger that keeps it: what
    // they wrote is what the trigger writes when it runs again.
    {
        #[derive(diesel::QueryableByName)]
        struct Recomputed {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            total: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            differing: i64,
        }
        let mut conn = app.context.pool().get().await.unwrap();
        let recomputed: Recomputed = diesel::sql_query(
            "WITH seeded AS (SELECT id, search_text FROM customers WHERE source = 'seed' AND search_text LIKE '% %@example.com +86%'),
                  updated AS (UPDATE customers c SET search_text = '' FROM seeded s WHERE c.id = s.id
                              RETURNING c.search_text AS recomputed, s.search_text AS seeded)
             SELECT count(*) AS total, count(*) FILTER (WHERE recomputed <> seeded) AS differing FROM updated",
        )
        .get_result(&mut conn)
        .await
        .unwrap();
        assert_eq!((recomputed.total, recomputed.differing), (320, 0));
    }
    let page = app
        .get(
            "/api/v1/customers?limit=200&sort=-total_spent",
            Some(&admin),
        )
        .await;
    let top = &page.body["data"][0];
    assert!(top["order_count"].as_i64().unwrap() >= 1);
    let orders = app
        .get(
            &format!("/api/v1/orders?customer_id={}", top["id"].as_str().unwrap()),
            Some(&admin),
        )
        .await;
    let counted: i64 = orders.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| ["paid", "fulfilled"].contains(&o["status"].as_str().unwrap()))
        .map(|o| o["total"]["amount_minor"].as_i64().unwrap())
        .sum();
    assert_eq!(
        top["total_spent"]["amount_minor"].as_i64().unwrap(),
        counted,
        "figures match the orders"
    );
    let count = app
        .walk_pages("/api/v1/customers?limit=200", Some(&admin), usize::MAX)
        .await
        .len();
    assert_eq!(count, 320);
    assert_eq!(
        index_state(&app).await,
        (full_indexes, 0),
        "every index and key is rebuilt and nothing is left suspended"
    );

    // An interrupted seed: an index dropped and recorded, never rebuilt. The next seed
    // (adding nobody) rebuilds it.
    {
        let mut conn = app.context.pool().get().await.unwrap();
        diesel::sql_query(
            "WITH s AS (INSERT INTO seed_suspended (name, definition)
                        SELECT indexname, indexdef FROM pg_indexes WHERE indexname = 'customers_search_idx')
             SELECT 1",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        diesel::sql_query("DROP INDEX customers_search_idx")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    assert_eq!(index_state(&app).await, (full_indexes - 1, 1));
    let out = rapport(&app, &["seed", "--customers", "0"]);
    assert!(out.status.success());
    assert_eq!(index_state(&app).await, (full_indexes, 0));
}

/// Indexes and foreign keys on the seeded tables, and rows left in `seed_suspended`.
async fn index_state(app: &TestApp) -> (i64, i64) {
    #[derive(diesel::QueryableByName)]
    struct State {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        objects: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        suspended: i64,
    }
    let mut conn = app.context.pool().get().await.unwrap();
    let state: State = diesel::sql_query(
        "SELECT (SELECT count(*) FROM pg_indexes
                 WHERE tablename IN ('customers', 'orders', 'order_lines', 'complaints', 'complaint_clocks'))
              + (SELECT count(*) FROM pg_constraint WHERE contype = 'f'
                   AND conrelid IN ('customers'::regclass, 'orders'::regclass, 'order_lines'::regclass,
                                    'complaints'::regclass, 'complaint_clocks'::regclass)) AS objects,
                (SELECT count(*) FROM seed_suspended) AS suspended",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    (state.objects, state.suspended)
}

/// A role that may not set `session_replication_role` seeds through the triggers instead of
/// skipping them, to the same rows.
#[actix_web::test]
async fn seed_by_a_role_that_may_not_skip_triggers() {
    let app = TestApp::spawn().await;
    let role = format!(
        "rapport_seeder_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let mut conn = app.context.pool().get().await.unwrap();
    // A member of the owner's role owns what it owns, but is not a superuser.
    for statement in [
        format!("CREATE ROLE {role} LOGIN PASSWORD 'seed' NOSUPERUSER"),
        format!("DO $$ BEGIN EXECUTE format('GRANT %I TO {role}', current_user); END $$"),
    ] {
        diesel::sql_query(statement)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let (scheme, rest) = app.database_url.split_once("://").unwrap();
    let (_, host) = rest.split_once('@').unwrap();
    let url = format!("{scheme}://{role}:seed@{host}");
    let out = rapport_on(
        &url,
        &["seed", "--customers", "30", "--orders-per-customer", "1"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    diesel::sql_query(format!("DROP ROLE {role}"))
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("seeded 30 customers with 30 orders"),
        "{stderr}"
    );
    let admin = app.admin_token().await;
    let found = app
        .get("/api/v1/customers?q=example.com&limit=100", Some(&admin))
        .await;
    assert_eq!(found.body["data"].as_array().unwrap().len(), 30);
}

/// As root, with the data folder where the `postgres` user cannot go (a checkout in `/root`,
/// mode 0700), the embedded cluster keeps its files in that user's home, starts, and is
/// found again by the next start. Runs only as root (CI), where the case arises.
#[test]
fn the_embedded_cluster_starts_as_root_from_a_private_folder() {
    use std::os::unix::fs::PermissionsExt;

    use rapport::db::embedded::EmbeddedPostgres;

    if !nix_is_root() {
        eprintln!("skipped: not running as root");
        return;
    }
    let private = std::env::temp_dir().join(format!("rapport-private-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let data = private.join("data");
    let first = EmbeddedPostgres::start(&data).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !first.cluster_dir().starts_with(&private),
        "the cluster is outside the private folder: {}",
        first.cluster_dir().display()
    );
    let again = EmbeddedPostgres::start(&data).unwrap();
    assert_eq!(again.cluster_dir(), first.cluster_dir());
    assert!(!again.started_here(), "the running cluster is found again");
    assert_eq!(again.port(), first.port());
    let cluster_home = first.cluster_dir().parent().unwrap().to_owned();
    first.stop().unwrap();
    std::fs::remove_dir_all(&cluster_home).unwrap();
    std::fs::remove_dir_all(&private).unwrap();
}

/// Whether the tests run as root (`id -u` is 0).
fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

#[actix_web::test]
async fn escalate_fires_the_due_steps_once() {
    let app = TestApp::spawn().await;
    let manager = app.client(rapport::auth::Role::Manager).await;
    manager
        .create(
            "/api/v1/complaint-sla-policies",
            &serde_json::json!({"name": "All", "position": 1, "first_response_minutes": 1, "resolution_minutes": 2}),
        )
        .await;
    let customer = crate::kit::id_of(&manager.customer(serde_json::json!({})).await);
    let received = chrono::Utc::now() - chrono::Duration::hours(1);
    manager
        .complaint(&customer, serde_json::json!({"received_at": received}))
        .await;
    let first = rapport(&app, &["escalate"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).starts_with("fired 2 escalation steps"));
    let again = rapport(&app, &["escalate"]);
    assert!(String::from_utf8_lossy(&again.stdout).starts_with("fired 0 escalation steps"));
}
