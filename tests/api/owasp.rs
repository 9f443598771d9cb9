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
