use serde_json::json;

use crate::common::TestApp;

#[actix_web::test]
async fn api_key_create_use_revoke() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let created = app
        .post(
            "/api/v1/api-keys",
            Some(&admin),
            &json!({"name": "Web shop", "scopes": ["orders:write", "customers:read"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let key = created.body["key"].as_str().unwrap().to_owned();
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("rpk_"));
    assert!(key.starts_with(created.body["prefix"].as_str().unwrap()));
    assert_eq!(
        created.body["scopes"],
        json!(["customers:read", "orders:write"])
    );

    let me = app.get("/api/v1/auth/me", Some(&key)).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["type"], "api_key");
    assert_eq!(me.body["name"], "Web shop");

    // The secret is never shown again, and its use is recorded.
    let mut last_used = serde_json::Value::Null;
    for _ in 0..50 {
        let read = app
            .get(&format!("/api/v1/api-keys/{id}"), Some(&admin))
            .await;
        assert!(read.body.get("key").is_none());
        last_used = read.body["last_used_at"].clone();
        if !last_used.is_null() {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(last_used.is_string(), "last_used_at was not recorded");
    let list = app.get("/api/v1/api-keys", Some(&admin)).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    assert!(!list.text.contains(&key));

    let revoked = app
        .request(
            "DELETE",
            &format!("/api/v1/api-keys/{id}"),
            Some(&admin),
            None,
            &[],
        )
        .await;
    assert_eq!(revoked.status, 204);
    assert_eq!(app.get("/api/v1/auth/me", Some(&key)).await.status, 401);
    let again = app
        .request(
            "DELETE",
            &format!("/api/v1/api-keys/{id}"),
            Some(&admin),
            None,
            &[],
        )
        .await;
    assert_eq!(again.status, 204, "revoking twice is harmless");
    let read = app
        .get(&format!("/api/v1/api-keys/{id}"), Some(&admin))
        .await;
    assert_eq!(read.status, 404, "a revoked key is gone");
    let listed = app.get("/api/v1/api-keys", Some(&admin)).await;
    let kept = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str());
    assert!(
        kept.unwrap()["revoked_at"].is_string(),
        "the list keeps it for the record"
    );
    assert_eq!(
        app.get("/api/v1/auth/me", Some("rpk_made-up")).await.status,
        401
    );
}

#[actix_web::test]
async fn api_key_scopes_are_validated() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let unknown = app
        .post(
            "/api/v1/api-keys",
            Some(&admin),
            &json!({"name": "x", "scopes": ["everything"]}),
        )
        .await;
    assert_eq!(unknown.status, 422);
    let empty = app
        .post(
            "/api/v1/api-keys",
            Some(&admin),
            &json!({"name": "x", "scopes": []}),
        )
        .await;
    assert_eq!(empty.status, 422);
    assert_eq!(empty.body["errors"][0]["field"], "scopes");
}
