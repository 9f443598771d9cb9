//! The change feed: commit order, cursors, filters, and no gaps under concurrent writers.

use std::collections::HashSet;

use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use rapport::auth::Role;
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::kit::{Client, id_of};

/// Every change from `since` to the end, page by page; the last `next_cursor`.
async fn read_all(client: &Client<'_>, since: &str, query: &str) -> (Vec<Value>, String) {
    let mut all = Vec::new();
    let mut cursor = since.to_owned();
    loop {
        let res = client
            .get(&format!("/api/v1/changes?since={cursor}&limit=7{query}"))
            .await;
        assert_eq!(res.status, 200, "{}", res.text);
        let data = res.body["data"].as_array().unwrap().clone();
        let next = res.body["next_cursor"].as_str().unwrap().to_owned();
        let done = data.len() < 7;
        all.extend(data);
        cursor = next;
        if done {
            return (all, cursor);
        }
    }
}

fn types(changes: &[Value]) -> Vec<&str> {
    changes
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect()
}

#[actix_web::test]
async fn the_feed_gives_every_change_in_commit_order_and_resumes_from_its_cursor() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let customer = manager
        .customer(json!({"emails": ["grace@example.com"]}))
        .await;
    let id = id_of(&customer);
    let path = format!("/api/v1/customers/{id}");
    assert_eq!(
        manager.patch(&path, &json!({"tier": "key"})).await.status,
        200
    );
    manager.order(&id, "F-1", 500).await;
    let other = manager.customer(json!({})).await;
    assert_eq!(
        manager
            .delete(&format!("/api/v1/customers/{}", id_of(&other)))
            .await
            .status,
        204
    );
    app.client(Role::Agent).await; // a staff account: never in the feed

    app.settle_feed().await;
    let (all, end) = read_all(&manager, "", "").await;
    let seen = types(&all);
    for expected in [
        "customer.created",
        "customer.updated",
        "customer.tier_changed",
        "order.created",
        "customer.deleted",
    ] {
        assert!(seen.contains(&expected), "{expected} missing from {seen:?}");
    }
    let at = |t: &str| seen.iter().position(|s| *s == t).unwrap();
    assert!(at("customer.created") < at("customer.tier_changed"));
    assert!(at("customer.tier_changed") < at("order.created"));
    assert!(at("order.created") < at("customer.deleted"));
    assert!(
        seen.iter()
            .all(|t| !t.starts_with("user.") && !t.starts_with("api_key."))
    );
    let tier = all
        .iter()
        .find(|c| c["type"] == "customer.tier_changed")
        .unwrap();
    assert_eq!(tier["data"]["tier"], "key");
    assert_eq!(tier["customer_id"], id.as_str());
    let deleted = all
        .iter()
        .find(|c| c["type"] == "customer.deleted")
        .unwrap();
    assert_eq!(deleted["data"], json!({"id": id_of(&other)}));
    // In commit order: the database's own (txid, seq) order of the events.
    let order = app
        .count("SELECT count(*) AS count FROM events WHERE type NOT LIKE 'user.%' AND type NOT LIKE 'api_key.%'")
        .await;
    assert_eq!(all.len() as i64, order);

    // Resuming from the end gives nothing, then exactly what came since.
    let (none, same_end) = read_all(&manager, &end, "").await;
    assert!(none.is_empty());
    assert_eq!(same_end, end, "an empty page keeps the place");
    manager
        .patch(&path, &json!({"display_name": "Grace H."}))
        .await;
    app.settle_feed().await;
    let (after, _) = read_all(&manager, &end, "").await;
    assert_eq!(types(&after), ["customer.updated"]);
    // Resuming from an entry's own cursor gives what follows it.
    let (rest, _) = read_all(&manager, all[5]["cursor"].as_str().unwrap(), "").await;
    assert_eq!(rest.len(), all.len() - 6 + 1);

    // Filters: a family, a type; `since=now` starts at the end.
    let (customers, _) = read_all(&manager, "", "&types=customer.*").await;
    assert!(types(&customers).iter().all(|t| t.starts_with("customer.")));
    let (orders, _) = read_all(&manager, "", "&types=order.created").await;
    assert_eq!(types(&orders), ["order.created"]);
    let now = manager.get("/api/v1/changes?since=now").await;
    assert_eq!(now.status, 200);
    assert_eq!(now.body["data"], json!([]));
    assert!(now.body["next_cursor"].is_string());

    // Bad input.
    assert_eq!(manager.get("/api/v1/changes?since=bogus").await.status, 400);
    assert_eq!(manager.get("/api/v1/changes?limit=0").await.status, 400);
    assert_eq!(manager.get("/api/v1/changes?limit=1001").await.status, 400);
    let unknown = manager.get("/api/v1/changes?types=customer.*,nope").await;
    assert_eq!(unknown.status, 422, "{}", unknown.text);
    assert_eq!(unknown.error_fields(), ["types"]);

    // Rights: managers, admins, keys with `changes:read`; not agents or other keys.
    let callers = [
        (app.client(Role::Agent).await, 403),
        (app.key_client(&["customers:read"]).await, 403),
        (app.key_client(&["changes:read"]).await, 200),
    ];
    for (caller, status) in callers {
        assert_eq!(caller.get("/api/v1/changes").await.status, status);
    }
}

#[actix_web::test]
async fn an_erased_customer_is_redacted_in_the_feed() {
    let app = TestApp::spawn().await;
    let admin = app.client(Role::Admin).await;
    let customer = admin
        .customer(json!({"emails": ["erase.me@example.com"], "phones": ["+8613800000000"]}))
        .await;
    let id = id_of(&customer);
    let erased = admin
        .post(&format!("/api/v1/customers/{id}/erase"), &json!({}))
        .await;
    assert!(erased.status < 300, "{}", erased.text);
    app.settle_feed().await;
    let (all, _) = read_all(&admin, "", "").await;
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains("erase.me@example.com"), "{text}");
    assert!(!text.contains("13800000000"));
    assert!(types(&all).contains(&"customer.erased"));
}

/// The txid a connection's transaction writes under.
async fn txid(conn: &mut AsyncPgConnection) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    diesel::sql_query("SELECT pg_current_xact_id()::text::bigint AS id")
        .get_result::<Id>(conn)
        .await
        .unwrap()
        .id
}

async fn plant_event(conn: &mut AsyncPgConnection, subject: &str) {
    diesel::sql_query(
        "INSERT INTO events (id, type, subject_type, subject_id, actor_type, data) \
         VALUES (gen_random_uuid(), 'customer.updated', 'customer', $1::uuid, 'system', '{}')",
    )
    .bind::<Text, _>(subject)
    .execute(conn)
    .await
    .unwrap();
}

#[actix_web::test]
async fn no_change_is_missed_or_repeated_while_transactions_commit_out_of_order() {
    let app = TestApp::spawn().await;
    let reader = app.key_client(&["changes:read", "customers:write"]).await;
    let (_, start) = read_all(&reader, "", "").await;

    // An older transaction stays open while a younger one and many requests commit.
    let mut older = AsyncPgConnection::establish(&app.database_url)
        .await
        .unwrap();
    let mut younger = AsyncPgConnection::establish(&app.database_url)
        .await
        .unwrap();
    older.batch_execute("BEGIN").await.unwrap();
    younger.batch_execute("BEGIN").await.unwrap();
    let (old_id, young_id) = (txid(&mut older).await, txid(&mut younger).await);
    assert!(old_id < young_id);
    let (old_subject, young_subject) = (
        uuid::Uuid::now_v7().to_string(),
        uuid::Uuid::now_v7().to_string(),
    );
    plant_event(&mut older, &old_subject).await;
    plant_event(&mut younger, &young_subject).await;
    younger.batch_execute("COMMIT").await.unwrap();

    // Writers commit concurrently while a reader walks the feed.
    let writers = futures_util::future::join_all((0..6).map(|_| async {
        let mut made = Vec::new();
        for _ in 0..5 {
            made.push(id_of(&reader.customer(json!({})).await));
        }
        made
    }));
    let walk = async {
        let mut seen = Vec::new();
        let mut cursor = start.clone();
        for _ in 0..40 {
            let (page, next) = read_all(&reader, &cursor, "").await;
            seen.extend(page);
            cursor = next;
            actix_web::rt::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        (seen, cursor)
    };
    let (made, (mut seen, cursor)) = tokio::join!(writers, walk);
    // Held back: nothing committed after the open transaction began can show yet.
    assert!(
        seen.is_empty(),
        "the feed moved past an open transaction: {:?}",
        types(&seen)
    );
    older.batch_execute("COMMIT").await.unwrap();
    app.settle_feed().await;
    let (rest, _) = read_all(&reader, &cursor, "").await;
    seen.extend(rest);

    let subjects: Vec<&str> = seen
        .iter()
        .map(|c| c["subject_id"].as_str().unwrap())
        .collect();
    let unique: HashSet<&&str> = subjects.iter().collect();
    assert_eq!(unique.len(), subjects.len(), "a change seen twice");
    for id in made.iter().flatten() {
        assert!(subjects.contains(&id.as_str()), "customer {id} missed");
    }
    let old_at = subjects
        .iter()
        .position(|s| *s == old_subject)
        .expect("older event missed");
    let young_at = subjects
        .iter()
        .position(|s| *s == young_subject)
        .expect("younger event missed");
    assert!(
        old_at < young_at,
        "in transaction order, not in commit order of the two"
    );
    assert_eq!(seen.len(), 2 + 30);
    // The feed is the database's (txid, seq) order.
    let cursors: Vec<(i64, i64)> = seen
        .iter()
        .map(|c| rapport::http::pagination::decode_cursor(c["cursor"].as_str().unwrap()).unwrap())
        .collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]));
}

#[actix_web::test]
async fn the_feed_lag_is_a_metric() {
    let app = TestApp::spawn().await;
    let mut open = AsyncPgConnection::establish(&app.database_url)
        .await
        .unwrap();
    open.batch_execute("BEGIN").await.unwrap();
    txid(&mut open).await;
    actix_web::rt::time::sleep(std::time::Duration::from_millis(1100)).await;
    let metrics = app.get("/metrics", None).await.text;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("rapport_change_feed_lag_seconds"))
        .unwrap_or_else(|| panic!("{metrics}"));
    let lag: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(lag >= 1.0, "{line}");
    open.batch_execute("ROLLBACK").await.unwrap();
}
