use rapport::openapi;
use serde_json::Value;

use crate::common::TestApp;

#[actix_web::test]
async fn probes_and_metrics() {
    let unready = TestApp::spawn_unready(&[]).await;
    assert_eq!(unready.get("/healthz", None).await.status, 200);
    let not_yet = unready.get("/readyz", None).await;
    assert_eq!(not_yet.status, 503);
    assert!(not_yet.header("retry-after").is_some());
    assert_eq!(not_yet.body["type"], "/problems/unavailable");
    assert!(
        not_yet.body["detail"]
            .as_str()
            .unwrap()
            .contains("start-up is not finished"),
        "{}",
        not_yet.body
    );
    unready.context.mark_started();
    let ready = unready.get("/readyz", None).await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.body["status"], "ready");
    let metrics = unready.get("/metrics", None).await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.text.contains(
        "rapport_http_requests_total{method=\"GET\",route=\"/readyz\",status=\"503\"} 1"
    ));
    assert!(
        metrics
            .text
            .contains("rapport_http_request_duration_seconds_bucket")
    );
    assert!(metrics.text.contains("rapport_db_pool_connections"));
}

#[actix_web::test]
async fn committed_openapi_matches_the_code() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .unwrap_or_default();
    assert!(
        committed == openapi::document_json(),
        "openapi/openapi.json is out of date; regenerate it with: cargo run -- openapi > openapi/openapi.json"
    );
    let app = TestApp::spawn().await;
    let served = app.get("/openapi.json", None).await;
    assert_eq!(served.status, 200);
    assert_eq!(served.body["openapi"], "3.1.0");
    assert_eq!(
        served.body,
        serde_json::from_str::<Value>(&committed).unwrap()
    );
}

/// API inventory: every documented operation is served by a handler (the fallback never
/// answers it), and every route the router serves is documented.
#[actix_web::test]
async fn every_documented_route_is_served_and_vice_versa() {
    // One request per operation, more than a caller's default burst.
    let app = TestApp::spawn_with(&["--rate-limit-burst", "1000"]).await;
    let admin = app.admin_token().await;
    let doc = serde_json::to_value(openapi::document()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (template, item) in paths {
        let path = template.replace("{id}", &uuid::Uuid::now_v7().to_string());
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            operations += 1;
            let res = app
                .request(
                    &method.to_uppercase(),
                    &path,
                    Some(&admin),
                    Some(&serde_json::json!({})),
                    &[],
                )
                .await;
            assert!(
                !res.text.contains("no route matches") && res.status != 405,
                "{method} {template} is documented but not served: {} {}",
                res.status,
                res.text
            );
        }
    }
    assert!(operations >= 15);
    let undocumented = ["/api/v1", "/api/v1/users/x/y", "/api/v2/users", "/internal"];
    for path in undocumented {
        let res = app.get(path, Some(&admin)).await;
        assert_eq!(res.status, 404, "{path} must not be served");
    }
}

#[actix_web::test]
async fn docs_page_is_served_from_the_binary() {
    let app = TestApp::spawn().await;
    let followed = app.get("/docs", None).await;
    assert_eq!(followed.status, 200, "/docs redirects to the page");
    assert!(followed.text.contains("swagger"));
    let page = app.get("/docs/", None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        !page.text.contains("cdn") && !page.text.contains("unpkg"),
        "no assets from the internet"
    );
    let script = app.get("/docs/swagger-ui-bundle.js", None).await;
    assert_eq!(script.status, 200);
    assert!(script.text.len() > 100_000);
}

/// Public operations declare no security (`security: []`), so that client generators type
/// them as plain calls; every other operation requires the bearer token.
#[test]
fn public_operations_declare_no_security() {
    let doc: Value = serde_json::from_str(&openapi::document_json()).unwrap();
    let public = [
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ];
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let security = &operation["security"];
            if public.contains(&(path.as_str(), method.as_str())) {
                assert_eq!(security, &serde_json::json!([]), "{method} {path}");
            } else if !security.as_array().is_some_and(|s| s.is_empty()) {
                assert_eq!(
                    security,
                    &serde_json::json!([{"bearer": []}]),
                    "{method} {path}"
                );
            }
        }
    }
}
