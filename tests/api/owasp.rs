//! OWASP API Security Top 10 (2023) checks that no other test file covers; the map of which
//! test covers which risk is in docs/reliability.md.

use std::net::TcpListener;

use serde_json::json;

use crate::common::TestApp;

/// API7 (server-side request forgery): URLs a client stores — in notes, custom attributes,
/// addresses, order lines — are data, never fetched. A listener on loopback stands in for an
/// internal service and must see no connection while the API stores and serves them.
#[actix_web::test]
async fn api7_client_supplied_urls_are_never_fetched() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let internal = TcpListener::bind("127.0.0.1:0").unwrap();
    internal.set_nonblocking(true).unwrap();
    let url = format!("http://{}/latest/meta-data", internal.local_addr().unwrap());

    let customer = app
        .post(
            "/api/v1/customers",
            Some(&admin),
            &json!({
                "display_name": "Mallory",
                "notes": url,
                "attributes": {"avatar": url, "webhook": url},
                "addresses": [{"line1": url, "city": url, "country": "CN"}],
                "source": "shop", "external_ref": "ssrf",
            }),
        )
        .await;
    assert_eq!(customer.status, 201, "{}", customer.text);
    let id = customer.body["id"].as_str().unwrap();
    let order = app
        .post(
            "/api/v1/orders",
            Some(&admin),
            &json!({
                "source": "shop", "external_id": "ssrf-1", "customer": {"id": id},
                "currency": "CNY", "status": "paid", "ordered_at": "2026-01-01T00:00:00Z",
                "lines": [{"sku": url, "name": url, "quantity": 1, "unit_price_minor": 100}],
                "total_minor": 100,
            }),
        )
        .await;
    assert_eq!(order.status, 201, "{}", order.text);
    for path in ["", "/export", "/timeline", "/history"] {
        let res = app
            .get(&format!("/api/v1/customers/{id}{path}"), Some(&admin))
            .await;
        assert_eq!(res.status, 200, "{path}: {}", res.text);
        assert!(
            res.text.contains("meta-data"),
            "{path} serves the URL as data"
        );
    }
    assert!(
        matches!(internal.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the API connected to a client-supplied URL"
    );
}

/// API3 (property-level authorisation): what the server owns — ids, versions, computed
/// figures, timestamps, roles — cannot be set by mass assignment, each refused by name, and
/// responses carry no internal columns (password hashes, search text, deletion marks).
#[actix_web::test]
async fn api3_owned_properties_cannot_be_assigned_and_internals_are_not_served() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for field in [
        "id",
        "version",
        "order_count",
        "total_spent",
        "created_at",
        "deleted_at",
        "merged_into",
    ] {
        let mut body = json!({"display_name": "Eve"});
        body[field] = json!(1);
        let res = app.post("/api/v1/customers", Some(&admin), &body).await;
        assert_eq!(res.status, 422, "{field}: {}", res.text);
        assert_eq!(res.body["errors"][0]["field"], field);
        assert_eq!(res.body["errors"][0]["code"], "unknown_field");
    }
    let (agent_id, agent) = app.user_token(rapport::auth::Role::Agent).await;
    let me = app.get("/api/v1/auth/me", Some(&agent)).await;
    assert_eq!(me.status, 200);
    let own = format!("/api/v1/users/{agent_id}");
    let promote = app
        .patch(&own, Some(&agent), &json!({"role": "admin"}))
        .await;
    assert_eq!(promote.status, 403, "an agent cannot make itself an admin");
    let hash = app
        .patch(&own, Some(&admin), &json!({"password_hash": "x"}))
        .await;
    assert_eq!(hash.status, 422);

    let customer = app
        .post(
            "/api/v1/customers",
            Some(&admin),
            &json!({"display_name": "Eve"}),
        )
        .await;
    let user = app.get(&own, Some(&admin)).await;
    for (body, internal) in [
        (&customer.body, "search_text"),
        (&customer.body, "deleted_at"),
        (&user.body, "password_hash"),
        (&me.body, "password_hash"),
    ] {
        assert!(body.get(internal).is_none(), "{internal} served in {body}");
    }
}

/// API8 (security misconfiguration): failures carry a problem document and never the
/// database's words — constraint names, SQL, driver errors — nor a stack trace.
#[actix_web::test]
async fn api8_errors_reveal_no_internals() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let body = json!({"display_name": "Twice", "source": "shop", "external_ref": "dup"});
    assert_eq!(
        app.post("/api/v1/customers", Some(&admin), &body)
            .await
            .status,
        201
    );
    let conflict = app.post("/api/v1/customers", Some(&admin), &body).await;
    assert_eq!(conflict.status, 409);
    let malformed = app
        .send_raw(
            "POST",
            "/api/v1/customers",
            Some(&admin),
            "application/json",
            b"{\"display_name\": ".to_vec(),
        )
        .await;
    assert_eq!(malformed.status, 400);
    for res in [&conflict, &malformed] {
        assert_eq!(res.header("content-type"), Some("application/problem+json"));
        let text = res.text.to_lowercase();
        for leak in [
            "constraint",
            "violates",
            "duplicate key",
            "diesel",
            "postgres",
            "sqlstate",
            "panicked",
            ".rs:",
        ] {
            assert!(!text.contains(leak), "`{leak}` in {}", res.text);
        }
    }
}

/// API10 (unsafe consumption of APIs): what shops push is input like any other — shapes
/// and limits are checked, markup is stored as text, and characters PostgreSQL cannot hold
/// (U+0000) are replaced instead of failing the request.
#[actix_web::test]
async fn api10_pushed_orders_are_validated_and_stored_as_plain_data() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let order = |external_id: &str, name: &str, quantity: serde_json::Value| {
        json!({"source": "shop", "external_id": external_id, "currency": "CNY",
               "customer": {"source": "shop", "external_ref": "api10", "display_name": name},
               "ordered_at": "2026-01-01T00:00:00Z", "total_minor": 100,
               "lines": [{"sku": "S", "name": name, "quantity": quantity, "unit_price_minor": 100}]})
    };
    let script = "<script>alert(1)</script>\u{0}'; DROP TABLE customers; --";
    let stored = app
        .post(
            "/api/v1/orders",
            Some(&admin),
            &order("a", script, json!(1)),
        )
        .await;
    assert_eq!(stored.status, 201, "{}", stored.text);
    let kept = stored.body["lines"][0]["name"].as_str().unwrap();
    assert_eq!(
        kept,
        script.replace('\u{0}', "\u{fffd}"),
        "stored as text, NUL replaced"
    );
    let customer = app
        .get(
            &format!(
                "/api/v1/customers/{}",
                stored.body["customer_id"].as_str().unwrap()
            ),
            Some(&admin),
        )
        .await;
    assert_eq!(customer.body["display_name"], kept);
    for (external_id, quantity) in [
        ("b", json!(0)),
        ("c", json!(1.5)),
        ("d", json!(1e12)),
        ("e", json!("1")),
    ] {
        let res = app
            .post(
                "/api/v1/orders",
                Some(&admin),
                &order(external_id, "x", quantity),
            )
            .await;
        assert_eq!(res.status, 422, "{external_id}: {}", res.text);
        assert_eq!(res.body["errors"][0]["field"], "lines[0].quantity");
    }
    let search = app.get("/api/v1/customers?q=%00", Some(&admin)).await;
    assert_eq!(
        search.status, 200,
        "NUL in a query string is no server error"
    );
}
