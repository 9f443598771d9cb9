use std::collections::HashSet;

use rapport::auth::Role;
use serde_json::json;

use crate::common::{PASSWORD, TestApp};

#[actix_web::test]
async fn admins_create_read_and_update_users_with_etags() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let created = app
        .post(
            "/api/v1/users",
            Some(&admin),
            &json!({"email": "ana@example.com", "password": PASSWORD, "role": "agent"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/users/{id}").as_str())
    );
    assert_eq!(created.header("etag"), Some("\"1\""));
    assert!(created.body.get("password_hash").is_none() && created.body.get("password").is_none());

    let duplicate = app
        .post(
            "/api/v1/users",
            Some(&admin),
            &json!({"email": "ANA@example.com", "password": PASSWORD, "role": "agent"}),
        )
        .await;
    assert_eq!(duplicate.status, 409);

    let path = format!("/api/v1/users/{id}");
    let read = app.get(&path, Some(&admin)).await;
    assert_eq!(read.status, 200);
    let etag = read.header("etag").unwrap().to_owned();

    let patch = json!({"role": "manager"});
    let updated = app
        .request(
            "PATCH",
            &path,
            Some(&admin),
            Some(&patch),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["role"], "manager");
    assert_eq!(updated.header("etag"), Some("\"2\""));

    let stale = app
        .request(
            "PATCH",
            &path,
            Some(&admin),
            Some(&json!({"role": "agent"})),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(stale.status, 412);
    assert_eq!(stale.body["status"], 412);
    let stale_deactivate = app
        .request(
            "PATCH",
            &path,
            Some(&admin),
            Some(&json!({"active": false})),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(stale_deactivate.status, 412);
    let delete = app.request("DELETE", &path, Some(&admin), None, &[]).await;
    assert_eq!(
        delete.status, 405,
        "accounts are deactivated, never deleted"
    );
    assert_eq!(delete.header("allow"), Some("GET, PATCH"));
    assert_eq!(
        app.get(&path, Some(&admin)).await.body["active"],
        true,
        "a refused write changes nothing"
    );

    let missing = app
        .get(
            &format!("/api/v1/users/{}", uuid::Uuid::now_v7()),
            Some(&admin),
        )
        .await;
    assert_eq!(missing.status, 404);
    let malformed_id = app.get("/api/v1/users/not-a-uuid", Some(&admin)).await;
    assert_eq!(malformed_id.status, 404);
}

#[actix_web::test]
async fn the_last_admin_cannot_be_removed() {
    let app = TestApp::spawn().await;
    let (admin_id, admin) = app.user_token(Role::Admin).await;
    let own = format!("/api/v1/users/{admin_id}");
    let res = app
        .patch(&own, Some(&admin), &json!({"role": "agent"}))
        .await;
    assert_eq!(res.status, 409);
    let deactivate = json!({"active": false});
    let res = app.patch(&own, Some(&admin), &deactivate).await;
    assert_eq!(res.status, 409);
    let (other_id, _) = app.create_user(Role::Admin).await;
    let res = app
        .patch(
            &format!("/api/v1/users/{other_id}"),
            Some(&admin),
            &deactivate,
        )
        .await;
    assert_eq!(res.status, 200);
}

#[actix_web::test]
async fn user_input_is_validated() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let bad = app
        .post(
            "/api/v1/users",
            Some(&admin),
            &json!({"email": "not-an-email", "password": "short", "role": "agent"}),
        )
        .await;
    assert_eq!(bad.status, 422);
    let fields: Vec<&str> = bad.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "password"]);
    let bad_role = app
        .post(
            "/api/v1/users",
            Some(&admin),
            &json!({"email": "a@example.com", "password": PASSWORD, "role": "owner"}),
        )
        .await;
    assert_eq!(bad_role.status, 422);
    assert_eq!(bad_role.body["errors"][0]["field"], "role");
    let extra = app
        .post("/api/v1/users", Some(&admin), &json!({"email": "b@example.com", "password": PASSWORD, "role": "agent", "active": false}))
        .await;
    assert_eq!(extra.status, 422, "unknown fields are refused, not ignored");
}

#[actix_web::test]
async fn pagination_visits_every_row_once_while_rows_are_inserted() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for _ in 0..5 {
        app.create_user(Role::Agent).await;
    }
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/users?limit=2&cursor={c}"),
            None => "/api/v1/users?limit=2".to_owned(),
        };
        let page = app.get(&path, Some(&admin)).await;
        assert_eq!(page.status, 200, "{}", page.text);
        for row in page.body["data"].as_array().unwrap() {
            assert!(
                seen.insert(row["id"].as_str().unwrap().to_owned()),
                "a row came twice"
            );
        }
        pages += 1;
        if pages == 1 {
            app.create_user(Role::Agent).await; // inserted between pages
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen.len(),
        7,
        "1 admin + 5 agents + 1 inserted during the walk"
    );
    let agents = app
        .get("/api/v1/users?role=agent&limit=200", Some(&admin))
        .await;
    assert_eq!(agents.body["data"].as_array().unwrap().len(), 6);
    assert_eq!(
        app.get("/api/v1/users?limit=201", Some(&admin))
            .await
            .status,
        400
    );
    assert_eq!(
        app.get("/api/v1/users?limit=0", Some(&admin)).await.status,
        400
    );
    assert_eq!(
        app.get("/api/v1/users?cursor=garbage", Some(&admin))
            .await
            .status,
        400
    );
    assert_eq!(
        app.get("/api/v1/users?role=owner", Some(&admin))
            .await
            .status,
        400
    );
}

#[actix_web::test]
async fn users_change_their_own_profile_and_password_with_the_current_one() {
    let app = TestApp::spawn().await;
    let (id, email) = app.create_user(Role::Agent).await;
    let pair = app.login(&email).await;
    let token = pair["access_token"].as_str().unwrap().to_owned();
    let me = app.get("/api/v1/auth/me", Some(&token)).await;
    assert_eq!(me.body["time_zone"], "UTC");
    assert_eq!(me.body["display_name"], serde_json::Value::Null);
    let etag = me.header("etag").unwrap().to_owned();

    let changed = app
        .request(
            "PATCH",
            "/api/v1/auth/me",
            Some(&token),
            Some(&json!({"time_zone": "Asia/Shanghai", "display_name": "Ana Lima"})),
            &[("If-Match", etag.as_str())],
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.body["time_zone"], "Asia/Shanghai");
    assert_eq!(changed.body["display_name"], "Ana Lima");
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
    let stale = app
        .request(
            "PATCH",
            "/api/v1/auth/me",
            Some(&token),
            Some(&json!({"display_name": "Ana"})),
            &[("If-Match", etag.as_str())],
        )
        .await;
    assert_eq!(stale.status, 412, "{}", stale.text);
    let admin = app.admin_token().await;
    let seen = app.get(&format!("/api/v1/users/{id}"), Some(&admin)).await;
    assert_eq!(seen.body["time_zone"], "Asia/Shanghai");
    assert_eq!(seen.body["display_name"], "Ana Lima");

    // What is an admin's to change is not the user's.
    for (body, field) in [
        (json!({"role": "admin"}), "role"),
        (json!({"time_zone": "Mars/Olympus"}), "time_zone"),
        (json!({"display_name": ""}), "display_name"),
        (json!({"password": "a-new-password-1"}), "current_password"),
        (
            json!({"password": "a-new-password-1", "current_password": "not-it-at-all"}),
            "current_password",
        ),
    ] {
        let refused = app.patch("/api/v1/auth/me", Some(&token), &body).await;
        assert_eq!(refused.status, 422, "{body}: {}", refused.text);
        assert_eq!(refused.error_fields(), [field], "{body}");
    }
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&token)).await.body["role"],
        "agent"
    );

    // A new password with the current one signs every session out.
    let renewed = app
        .patch(
            "/api/v1/auth/me",
            Some(&token),
            &json!({"password": "a-new-password-1", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(renewed.status, 200, "{}", renewed.text);
    let refresh = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": pair["refresh_token"]}),
        )
        .await;
    assert_eq!(refresh.status, 401, "{}", refresh.text);
    let old = app.sign_in(&email, PASSWORD).await;
    assert_eq!(old.status, 401);
    let new = app.sign_in(&email, "a-new-password-1").await;
    assert_eq!(new.status, 200, "{}", new.text);

    // An API key has no profile.
    let key = app
        .post(
            "/api/v1/api-keys",
            Some(&admin),
            &json!({"name": "shop", "scopes": ["customers:read"]}),
        )
        .await;
    let key = key.body["key"].as_str().unwrap().to_owned();
    let refused = app
        .patch(
            "/api/v1/auth/me",
            Some(&key),
            &json!({"display_name": "Shop"}),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
}
