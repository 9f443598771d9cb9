use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::future::join_all;
use rapport::auth::Role;
use serde_json::json;

use crate::common::{PASSWORD, TestApp};

fn new_user(email: &str) -> serde_json::Value {
    json!({"email": email, "password": PASSWORD, "role": "agent"})
}

#[actix_web::test]
async fn every_error_is_a_problem_document() {
    let app = TestApp::spawn_with(&["--max-body-bytes", "1024"]).await;
    let admin = app.admin_token().await;
    let check = |res: &crate::common::Response, status: u16| {
        assert_eq!(res.status, status, "{}", res.text);
        assert_eq!(res.header("content-type"), Some("application/problem+json"));
        assert_eq!(res.body["status"], status);
        assert!(
            res.body["type"].is_string()
                && res.body["title"].is_string()
                && res.body["detail"].is_string()
        );
    };
    let malformed = app
        .send_raw(
            "POST",
            "/api/v1/users",
            Some(&admin),
            "application/json",
            b"{\"email\": ".to_vec(),
        )
        .await;
    check(&malformed, 400);
    check(&app.get("/api/v1/nothing-here", Some(&admin)).await, 404);
    check(&app.get("/nothing-here", None).await, 404);
    let wrong_method = app
        .request("PUT", "/api/v1/users", Some(&admin), None, &[])
        .await;
    check(&wrong_method, 405);
    assert_eq!(wrong_method.header("allow"), Some("GET, POST"));
    let too_big = json!({"email": "a@example.com", "password": "x".repeat(2000), "role": "agent"});
    check(
        &app.post("/api/v1/users", Some(&admin), &too_big).await,
        413,
    );
    check(
        &app.send_raw(
            "POST",
            "/api/v1/users",
            Some(&admin),
            "text/plain",
            b"hello".to_vec(),
        )
        .await,
        415,
    );
    let invalid = app
        .post(
            "/api/v1/users",
            Some(&admin),
            &json!({"email": "nope", "password": PASSWORD, "role": "agent"}),
        )
        .await;
    check(&invalid, 422);
    assert_eq!(invalid.body["errors"][0]["field"], "email");
    assert_eq!(invalid.body["errors"][0]["code"], "email");
    check(&app.get("/api/v1/users?limit=abc", Some(&admin)).await, 400);
    check(&app.get("/api/v1/users", None).await, 401);
    assert!(!invalid.text.contains("SELECT") && !invalid.text.contains("diesel"));
}

#[actix_web::test]
async fn idempotent_posts_replay_and_refuse_mismatches() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let key = [("Idempotency-Key", "create-ana-1")];
    let body = new_user("ana@example.com");
    let first = app
        .request("POST", "/api/v1/users", Some(&admin), Some(&body), &key)
        .await;
    assert_eq!(first.status, 201);
    assert!(first.header("idempotent-replayed").is_none());
    let replay = app
        .request("POST", "/api/v1/users", Some(&admin), Some(&body), &key)
        .await;
    assert_eq!(replay.status, 201);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body, first.body);
    assert_eq!(replay.header("location"), first.header("location"));
    assert_eq!(replay.header("etag"), first.header("etag"));

    let other = app
        .request(
            "POST",
            "/api/v1/users",
            Some(&admin),
            Some(&new_user("bob@example.com")),
            &key,
        )
        .await;
    assert_eq!(other.status, 422);
    assert_eq!(
        other.header("content-type"),
        Some("application/problem+json")
    );

    let agents = app.get("/api/v1/users?role=agent", Some(&admin)).await;
    assert_eq!(
        agents.body["data"].as_array().unwrap().len(),
        1,
        "the replay created nothing"
    );

    // Keys are per principal: another admin's identical key runs afresh.
    let other_admin = app.admin_token().await;
    let theirs = app
        .request(
            "POST",
            "/api/v1/users",
            Some(&other_admin),
            Some(&body),
            &key,
        )
        .await;
    assert_eq!(
        theirs.status, 409,
        "runs (and meets the taken e-mail) instead of replaying"
    );
    let empty_key = app
        .request(
            "POST",
            "/api/v1/users",
            Some(&admin),
            Some(&body),
            &[("Idempotency-Key", "")],
        )
        .await;
    assert_eq!(empty_key.status, 400);
}

#[actix_web::test]
async fn a_key_still_in_flight_is_a_conflict() {
    let app = TestApp::spawn().await;
    let (admin_id, admin) = app.user_token(Role::Admin).await;
    // Hold the key's lock the way a running first request would.
    let mut holder = AsyncPgConnection::establish(&app.database_url)
        .await
        .unwrap();
    diesel::sql_query("SELECT pg_advisory_lock(hashtextextended($1, 0))")
        .bind::<Text, _>(format!("user:{admin_id}\nslow-key"))
        .execute(&mut holder)
        .await
        .unwrap();
    let key = [("Idempotency-Key", "slow-key")];
    let busy = app
        .request(
            "POST",
            "/api/v1/users",
            Some(&admin),
            Some(&new_user("c@example.com")),
            &key,
        )
        .await;
    assert_eq!(busy.status, 409, "{}", busy.text);
    diesel::sql_query("SELECT pg_advisory_unlock_all()")
        .execute(&mut holder)
        .await
        .unwrap();
    let done = app
        .request(
            "POST",
            "/api/v1/users",
            Some(&admin),
            Some(&new_user("c@example.com")),
            &key,
        )
        .await;
    assert_eq!(done.status, 201);
}

#[actix_web::test]
async fn concurrent_duplicates_create_one_row() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let body = new_user("once@example.com");
    let key = [("Idempotency-Key", "burst")];
    let responses = join_all(
        (0..50).map(|_| app.request("POST", "/api/v1/users", Some(&admin), Some(&body), &key)),
    )
    .await;
    let created = responses
        .iter()
        .filter(|r| r.status == 201 && r.header("idempotent-replayed").is_none())
        .count();
    assert_eq!(created, 1);
    assert!(
        responses.iter().all(|r| r.status == 201 || r.status == 409),
        "only 201 or 409"
    );
    let agents = app.get("/api/v1/users?role=agent", Some(&admin)).await;
    assert_eq!(agents.body["data"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn a_literal_route_is_not_mistaken_for_an_id() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let res = app
        .patch(
            "/api/v1/customers/batch",
            Some(&admin),
            &json!({"items": []}),
        )
        .await;
    assert_eq!(res.status, 405, "{}", res.text);
    assert_eq!(res.header("allow"), Some("POST"));
    let res = app
        .patch("/api/v1/customers/not-an-id", Some(&admin), &json!({}))
        .await;
    assert_eq!(res.status, 404);
}

#[actix_web::test]
async fn rate_limits_answer_429_with_headers() {
    let app =
        TestApp::spawn_with(&["--rate-limit-per-minute", "60", "--rate-limit-burst", "3"]).await;
    let first = app.get("/healthz", None).await;
    assert_eq!(first.header("ratelimit-limit"), Some("3"));
    assert_eq!(first.header("ratelimit-remaining"), Some("2"));
    app.get("/healthz", None).await;
    app.get("/healthz", None).await;
    let limited = app.get("/healthz", None).await;
    assert_eq!(limited.status, 429);
    assert_eq!(
        limited.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(limited.header("ratelimit-remaining"), Some("0"));
    assert!(
        limited
            .header("retry-after")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert!(limited.header("ratelimit-reset").is_some());
}

#[actix_web::test]
async fn request_ids_are_echoed_or_generated() {
    let app = TestApp::spawn().await;
    let echoed = app
        .request(
            "GET",
            "/healthz",
            None,
            None,
            &[("X-Request-Id", "trace-abc-123")],
        )
        .await;
    assert_eq!(echoed.header("x-request-id"), Some("trace-abc-123"));
    let generated = app.get("/healthz", None).await;
    let id = generated.header("x-request-id").unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());
    let error = app.get("/nothing", None).await;
    assert!(
        error.header("x-request-id").is_some(),
        "errors carry the id too"
    );
}

#[actix_web::test]
async fn security_headers_and_cors_allow_list() {
    let app = TestApp::spawn_with(&["--cors-origins", "https://console.example.com"]).await;
    let res = app.get("/healthz", None).await;
    assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(res.header("x-frame-options"), Some("DENY"));
    assert!(res.header("content-security-policy").is_some());
    let preflight = async |origin: &str| {
        let headers = [
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "authorization,idempotency-key",
            ),
        ];
        app.request("OPTIONS", "/api/v1/users", None, None, &headers)
            .await
    };
    let allowed = preflight("https://console.example.com").await;
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://console.example.com")
    );
    let denied = preflight("https://evil.example.net").await;
    assert!(denied.header("access-control-allow-origin").is_none());
}
