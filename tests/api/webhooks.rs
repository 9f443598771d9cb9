//! Webhooks: subscriptions, Standard Webhooks deliveries, retries, the delivery log, the
//! endpoint's disabling, and the address checks.

use std::time::Duration;

use chrono::Utc;
use rapport::auth::Role;
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::kit::{conformance, id_of};
use crate::receiver::Receiver;

/// An app that may deliver to this machine (the receiver listens on loopback).
async fn local_app(extra: &[&str]) -> TestApp {
    let mut args = vec!["--webhook-allow-private", "true"];
    args.extend_from_slice(extra);
    TestApp::spawn_with(&args).await
}

async fn deliveries(app: &TestApp, token: &str, webhook: &str) -> Vec<Value> {
    let res = app
        .get(
            &format!("/api/v1/webhooks/{webhook}/deliveries"),
            Some(token),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.body["data"].as_array().unwrap().clone()
}

#[actix_web::test]
async fn subscriptions_show_their_secret_once_and_refuse_what_cannot_be_delivered() {
    let app = TestApp::spawn().await;
    let admin = app.client(Role::Admin).await;
    for (body, field) in [
        (json!({"url": "http://127.0.0.1:9/hook"}), "url"),
        (json!({"url": "http://localhost/hook"}), "url"),
        (
            json!({"url": "http://[::ffff:169.254.169.254]/latest"}),
            "url",
        ),
        (json!({"url": "http://10.0.0.8/hook"}), "url"),
        (json!({"url": "http://100.64.1.1/hook"}), "url"),
        (json!({"url": "http://[fd00::1]/hook"}), "url"),
        (json!({"url": "ftp://93.184.216.34/hook"}), "url"),
        (json!({"url": "not a url"}), "url"),
        (
            json!({"url": "https://93.184.216.34/", "event_types": ["customer.created", "nope.*"]}),
            "event_types[1]",
        ),
        (
            json!({"url": "https://93.184.216.34/", "event_types": ["user.created"]}),
            "event_types[0]",
        ),
        (
            json!({"url": "https://93.184.216.34/", "secret": "mine"}),
            "secret",
        ),
    ] {
        let res = admin.post("/api/v1/webhooks", &body).await;
        assert_eq!(res.status, 422, "{body}: {}", res.text);
        assert_eq!(res.error_fields(), [field], "{body}: {}", res.text);
    }

    let created = admin
        .create(
            "/api/v1/webhooks",
            &json!({"url": "https://93.184.216.34/hooks", "event_types": ["points.*", "customer.created", "points.*"],
                    "description": "Loyalty sync"}),
        )
        .await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() > 40,
        "{secret}"
    );
    assert_eq!(
        created["event_types"],
        json!(["customer.created", "points.*"])
    );
    assert_eq!(created["active"], true);
    let id = id_of(&created);
    let path = format!("/api/v1/webhooks/{id}");
    let read = admin.get(&path).await;
    assert_eq!(read.status, 200);
    assert!(read.body.get("secret").is_none(), "shown once");
    assert!(!read.text.contains(&secret));
    assert!(
        !app.tables_holding(&secret)
            .await
            .contains(&"events".to_owned()),
        "never announced"
    );
    assert!(
        !app.tables_holding(&secret)
            .await
            .contains(&"audit_log".to_owned()),
        "never audited"
    );

    let rotated = admin
        .post(&format!("{path}/rotate-secret"), &json!({}))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new_secret = rotated.body["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    assert!(rotated.body["previous_secret_until"].is_string());

    let patched = admin
        .patch(&path, &json!({"event_types": [], "active": false}))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["event_types"], json!([]));
    assert_eq!(patched.body["active"], false);
    assert_eq!(
        admin
            .patch(&path, &json!({"url": "http://192.168.1.1/"}))
            .await
            .status,
        422
    );
    conformance::stale_if_match_is_refused(&admin, &path, &json!({"description": "x"})).await;
    let list = admin.get("/api/v1/webhooks").await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);

    // Admins and keys with `webhooks:manage`; not managers, agents or other keys.
    for role in [Role::Manager, Role::Agent] {
        let other = app.client(role).await;
        assert_eq!(other.get("/api/v1/webhooks").await.status, 403);
    }
    let reader = app.key_client(&["customers:read"]).await;
    assert_eq!(reader.get(&path).await.status, 403);
    let integration = app.key_client(&["webhooks:manage"]).await;
    assert_eq!(integration.get(&path).await.status, 200);
    integration
        .create(
            "/api/v1/webhooks",
            &json!({"url": "https://93.184.216.34/shop"}),
        )
        .await;

    assert_eq!(admin.delete(&path).await.status, 204);
    assert_eq!(admin.get(&path).await.status, 404);
    assert_eq!(
        app.audit_actions(&id).await,
        ["created", "secret_rotated", "updated", "updated", "deleted"]
    );
}

#[actix_web::test]
async fn deliveries_are_signed_retried_on_the_schedule_and_logged() {
    let app = local_app(&["--webhook-retry-schedule", "10s,1m"]).await;
    let receiver = Receiver::start();
    let admin = app.client(Role::Admin).await;
    let ok = admin
        .create(
            "/api/v1/webhooks",
            &json!({"url": receiver.url("/ok"), "event_types": ["customer.*"]}),
        )
        .await;
    let failing = admin
        .create(
            "/api/v1/webhooks",
            &json!({"url": receiver.url("/fail"), "event_types": ["customer.created"]}),
        )
        .await;
    let customer = admin.customer(json!({"emails": ["ada@example.com"]})).await;
    let customer_id = id_of(&customer);
    admin.order(&customer_id, "W-1", 1000).await;

    let now = Utc::now();
    let pass = app.deliver(now).await;
    assert!(pass.attempted >= 2, "{pass:?}");
    let got = receiver.at("/ok");
    let created: Vec<_> = got
        .iter()
        .filter(|r| r.json()["type"] == "customer.created")
        .collect();
    assert_eq!(created.len(), 1, "{got:?}");
    let delivery = created[0];
    assert!(delivery.signed_with(ok["secret"].as_str().unwrap()));
    assert!(!delivery.signed_with(failing["secret"].as_str().unwrap()));
    let body = delivery.json();
    assert_eq!(
        body["id"],
        delivery.id.as_str(),
        "webhook-id is the event's id"
    );
    assert_eq!(body["data"]["id"], customer_id.as_str());
    assert_eq!(body["data"]["emails"], json!(["ada@example.com"]));
    assert!(body["created_at"].is_string());
    let stamp: i64 = delivery.timestamp.parse().unwrap();
    assert!((Utc::now().timestamp() - stamp).abs() < 60);
    assert!(
        got.iter().all(|r| r.json()["type"] != "order.created"),
        "an order is not a customer.* event"
    );

    let log = deliveries(&app, &admin.token, &id_of(&ok)).await;
    let entry = log
        .iter()
        .find(|d| d["event_type"] == "customer.created")
        .unwrap();
    assert_eq!(entry["status"], "delivered");
    assert_eq!(entry["attempts"][0]["status_code"], 200);
    assert_eq!(entry["attempts"][0]["response_excerpt"], "thanks");
    assert!(entry["attempts"][0]["latency_ms"].is_i64());
    assert!(entry["next_attempt_at"].is_null());

    // The failing endpoint: attempt, retry after ~10 s, retry after ~1 min, then failed.
    let failing_id = id_of(&failing);
    let log = deliveries(&app, &admin.token, &failing_id).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], "pending");
    assert_eq!(log[0]["attempts"][0]["status_code"], 500);
    assert_eq!(log[0]["attempts"][0]["response_excerpt"], "boom");
    let next = chrono::DateTime::parse_from_rfc3339(log[0]["next_attempt_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let wait = (next - now).num_milliseconds();
    assert!(
        (9_000..=11_000).contains(&wait),
        "10 s with a tenth's jitter: {wait} ms"
    );
    assert_eq!(
        app.deliver(now + chrono::Duration::seconds(5))
            .await
            .attempted,
        0,
        "not yet"
    );
    app.deliver(now + chrono::Duration::seconds(12)).await;
    app.deliver(now + chrono::Duration::seconds(120)).await;
    let log = deliveries(&app, &admin.token, &failing_id).await;
    assert_eq!(log[0]["status"], "failed");
    assert_eq!(log[0]["attempts"].as_array().unwrap().len(), 3);
    let attempts = receiver.at("/fail");
    assert_eq!(attempts.len(), 3);
    assert!(
        attempts.iter().all(|a| a.id == attempts[0].id),
        "the same webhook-id on every attempt"
    );
    let failed = admin
        .get(&format!(
            "/api/v1/webhooks/{failing_id}/deliveries?status=failed"
        ))
        .await;
    assert_eq!(failed.body["data"].as_array().unwrap().len(), 1);
    assert!(
        admin
            .get(&format!("/api/v1/webhooks/{failing_id}"))
            .await
            .body["failing_since"]
            .is_string()
    );

    // Redeliver: due at once, with the whole schedule again.
    let delivery_path = format!(
        "/api/v1/webhooks/{failing_id}/deliveries/{}",
        log[0]["id"].as_str().unwrap()
    );
    let again = admin
        .post(&format!("{delivery_path}/redeliver"), &json!({}))
        .await;
    assert_eq!(again.status, 202, "{}", again.text);
    assert_eq!(again.body["status"], "pending");
    app.deliver(Utc::now()).await;
    assert_eq!(receiver.at("/fail").len(), 4);
    let one = admin.get(&delivery_path).await;
    assert_eq!(
        one.body["status"], "pending",
        "retried again on the schedule"
    );
    assert_eq!(one.body["attempts"].as_array().unwrap().len(), 4);
}

#[actix_web::test]
async fn a_gone_endpoint_is_disabled_at_once_and_announced() {
    let app = local_app(&[]).await;
    let receiver = Receiver::start();
    let admin = app.client(Role::Admin).await;
    let gone = admin
        .create(
            "/api/v1/webhooks",
            &json!({"url": receiver.url("/gone"), "event_types": ["customer.*"]}),
        )
        .await;
    let watcher = admin
        .create(
            "/api/v1/webhooks",
            &json!({"url": receiver.url("/ok"), "event_types": ["webhook.disabled"]}),
        )
        .await;
    admin.customer(json!({})).await;
    app.deliver(Utc::now()).await;
    let path = format!("/api/v1/webhooks/{}", id_of(&gone));
    let now_off = admin.get(&path).await;
    assert_eq!(now_off.body["active"], false);
    assert!(
        now_off.body["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("410")
    );
    let announced = conformance::write_emitted(&app, &id_of(&gone), "webhook.disabled").await;
    assert_eq!(announced["active"], false);
    // The announcement reaches the other subscription.
    app.deliver(Utc::now()).await;
    let told = receiver.at("/ok");
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].json()["type"], "webhook.disabled");
    assert!(told[0].signed_with(watcher["secret"].as_str().unwrap()));

    // Nothing more goes to it until it is resumed; redelivery is refused meanwhile.
    admin.customer(json!({})).await;
    app.deliver(Utc::now()).await;
    assert_eq!(receiver.at("/gone").len(), 1);
    let log = deliveries(&app, &admin.token, &id_of(&gone)).await;
    let redeliver = format!(
        "{path}/deliveries/{}/redeliver",
        log[0]["id"].as_str().unwrap()
    );
    assert_eq!(admin.post(&redeliver, &json!({})).await.status, 409);
    let resumed = admin.patch(&path, &json!({"active": true})).await;
    assert_eq!(resumed.body["active"], true);
    assert!(resumed.body["disabled_reason"].is_null());
}

#[actix_web::test]
async fn an_endpoint_failing_for_too_long_is_disabled() {
    let app = local_app(&[
        "--webhook-disable-after",
        "1h",
        "--webhook-retry-schedule",
        "1m,1m,1m",
    ])
    .await;
    let receiver = Receiver::start();
    let admin = app.client(Role::Admin).await;
    let hook = admin
        .create("/api/v1/webhooks", &json!({"url": receiver.url("/fail")}))
        .await;
    admin.customer(json!({})).await;
    let now = Utc::now();
    app.deliver(now).await;
    let path = format!("/api/v1/webhooks/{}", id_of(&hook));
    assert_eq!(
        admin.get(&path).await.body["active"],
        true,
        "one failure is not enough"
    );
    app.deliver(now + chrono::Duration::minutes(2)).await;
    assert_eq!(
        admin.get(&path).await.body["active"],
        true,
        "failing for 2 minutes"
    );
    app.execute(&format!(
        "UPDATE webhooks SET failing_since = now() - interval '2 hours' WHERE id = '{}'",
        id_of(&hook)
    ))
    .await;
    app.deliver(now + chrono::Duration::minutes(4)).await;
    let off = admin.get(&path).await;
    assert_eq!(off.body["active"], false, "{}", off.text);
    assert!(
        off.body["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("failed since")
    );
    conformance::write_emitted(&app, &id_of(&hook), "webhook.disabled").await;
}

#[actix_web::test]
async fn private_addresses_are_refused_again_at_delivery() {
    // The receiver listens on loopback; this app allows only public addresses. A row that
    // points at it (as a name that now resolves to a private address would) is refused at
    // connection time, and nothing reaches the receiver.
    let app = TestApp::spawn().await;
    let receiver = Receiver::start();
    let admin = app.client(Role::Admin).await;
    let hook = admin
        .create(
            "/api/v1/webhooks",
            &json!({"url": "https://93.184.216.34/hook"}),
        )
        .await;
    let port = receiver.base.rsplit(':').next().unwrap().to_owned();
    for url in [receiver.url("/ok"), format!("http://localhost:{port}/ok")] {
        app.execute(&format!(
            "UPDATE webhooks SET url = '{url}' WHERE id = '{}'",
            id_of(&hook)
        ))
        .await;
        admin.customer(json!({})).await;
        app.deliver(Utc::now()).await;
    }
    assert!(
        receiver.received().is_empty(),
        "nothing reached a private address"
    );
    let log = deliveries(&app, &admin.token, &id_of(&hook)).await;
    assert_eq!(log.len(), 2);
    for delivery in &log {
        let attempt = &delivery["attempts"][0];
        assert!(attempt["status_code"].is_null());
        let error = attempt["error"].as_str().unwrap();
        assert!(error.contains("public addresses"), "{error}");
    }
}

#[actix_web::test]
async fn redirects_are_not_followed() {
    let app = local_app(&[]).await;
    let receiver = Receiver::start();
    let admin = app.client(Role::Admin).await;
    let hook = admin
        .create(
            "/api/v1/webhooks",
            &json!({"url": receiver.url("/redirect")}),
        )
        .await;
    admin.customer(json!({})).await;
    app.deliver(Utc::now()).await;
    assert_eq!(receiver.at("/redirect").len(), 1);
    assert!(
        receiver.at("/ok").is_empty(),
        "the redirect was not followed"
    );
    let log = deliveries(&app, &admin.token, &id_of(&hook)).await;
    assert_eq!(log[0]["status"], "pending");
    assert_eq!(log[0]["attempts"][0]["status_code"], 307);
}

#[actix_web::test]
async fn a_slow_endpoint_does_not_delay_the_others() {
    let app = local_app(&["--webhook-timeout", "2s"]).await;
    let receiver = Receiver::start();
    let admin = app.client(Role::Admin).await;
    let slow = admin
        .create("/api/v1/webhooks", &json!({"url": receiver.url("/slow")}))
        .await;
    admin
        .create("/api/v1/webhooks", &json!({"url": receiver.url("/ok")}))
        .await;
    let worker = app.context.deliverer().unwrap();
    let pool = app.context.pool().clone();
    let running = actix_web::rt::spawn(worker.run(pool, || true));
    // Twenty events for the slow endpoint first, then one more: the fast endpoint gets
    // every one promptly while the slow one holds its few slots.
    for _ in 0..20 {
        admin.customer(json!({})).await;
    }
    let started = std::time::Instant::now();
    let fast = receiver.wait_for("/ok", 20, Duration::from_secs(10)).await;
    assert_eq!(fast.len(), 20);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the fast endpoint waited {:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    running.abort();
    let log = deliveries(&app, &admin.token, &id_of(&slow)).await;
    let timed_out = log
        .iter()
        .filter_map(|d| d["attempts"][0]["error"].as_str())
        .filter(|e| e.contains("timed out"))
        .count();
    assert!(timed_out > 0, "{log:?}");
}

#[actix_web::test]
async fn old_deliveries_are_pruned() {
    let app = local_app(&[]).await;
    let receiver = Receiver::start();
    let admin = app.client(Role::Admin).await;
    let hook = admin
        .create("/api/v1/webhooks", &json!({"url": receiver.url("/ok")}))
        .await;
    admin.customer(json!({})).await;
    admin.customer(json!({})).await;
    app.deliver(Utc::now()).await;
    app.execute(&format!(
        "UPDATE webhook_deliveries SET created_at = now() - interval '31 days' \
         WHERE id = (SELECT id FROM webhook_deliveries WHERE webhook_id = '{}' LIMIT 1)",
        id_of(&hook)
    ))
    .await;
    let mut conn = app.context.pool().get().await.unwrap();
    let pruned = rapport::webhooks::delivery::prune(&mut conn, Utc::now())
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    assert_eq!(deliveries(&app, &admin.token, &id_of(&hook)).await.len(), 1);
}

#[actix_web::test]
async fn every_public_event_type_is_in_the_document_with_its_body() {
    let app = TestApp::spawn().await;
    let doc = app.get("/openapi.json", None).await.body;
    let hooks = doc["webhooks"].as_object().unwrap();
    for listed in [
        "customer.created",
        "customer.updated",
        "customer.deleted",
        "customer.tier_changed",
        "order.created",
        "complaint.created",
        "complaint.status_changed",
        "visit.completed",
        "member.enrolled",
        "member.tier_changed",
        "points.changed",
        "webhook.disabled",
    ] {
        let op = &hooks[listed]["post"];
        let body = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{listed} has no body"));
        let name = body.rsplit('/').next().unwrap();
        let schema = &doc["components"]["schemas"][name];
        assert_eq!(schema["properties"]["type"]["enum"], json!([listed]));
        assert!(schema["properties"]["data"].is_object(), "{listed}");
    }
    assert!(
        hooks.get("user.created").is_none(),
        "staff accounts stay inside"
    );
    assert!(hooks.get("api_key.created").is_none());
}
