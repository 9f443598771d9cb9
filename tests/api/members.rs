//! Members: the token exchange and `/me`, against OWASP API1 (object level), API3 (property
//! level) and API5 (function level) with two members and staff.

use chrono::Utc;
use rapport::auth::Role;
use serde_json::{Value, json};

use crate::common::{JWT_SECRET, TestApp};
use crate::kit::{Client, id_of};

/// A member token for a customer, exchanged by an app's backend key.
pub async fn member_token(backend: &Client<'_>, customer: &str) -> String {
    let res = backend
        .post("/api/v1/member-tokens", &json!({"customer_id": customer}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["token_type"], "Bearer");
    assert_eq!(res.body["expires_in"], 3600);
    res.body["access_token"].as_str().unwrap().to_owned()
}

/// A token signed with the server's secret, with these claims.
fn signed(claims: Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("rapport-hs256-1".into());
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

#[actix_web::test]
async fn apps_exchange_member_tokens_and_only_members_use_me() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let backend = app.key_client(&["members:token"]).await;
    let ada = manager
        .customer(json!({"emails": ["ada@example.com"], "tags": ["vip"], "tier": "key", "notes": "prefers mornings"}))
        .await;
    let token = member_token(&backend, &id_of(&ada)).await;
    member_token(&manager, &id_of(&ada)).await;

    // Who may exchange: keys with `members:token`, managers, admins; not agents or other keys.
    let body = json!({"customer_id": id_of(&ada)});
    for caller in [
        app.client(Role::Agent).await,
        app.key_client(&["customers:read"]).await,
    ] {
        assert_eq!(
            caller.post("/api/v1/member-tokens", &body).await.status,
            403
        );
    }
    let unknown = backend
        .post(
            "/api/v1/member-tokens",
            &json!({"customer_id": uuid::Uuid::now_v7()}),
        )
        .await;
    assert_eq!(unknown.status, 409, "{}", unknown.text);
    assert_eq!(unknown.error_fields(), ["customer_id"]);
    let extra = backend
        .post(
            "/api/v1/member-tokens",
            &json!({"customer_id": id_of(&ada), "role": "admin"}),
        )
        .await;
    assert_eq!(extra.status, 422);

    // API5: a member token opens no staff route; staff credentials open no `/me`.
    for path in [
        "/api/v1/customers",
        &format!("/api/v1/customers/{}", id_of(&ada)),
        "/api/v1/auth/me",
        "/api/v1/changes",
    ] {
        assert_eq!(app.get(path, Some(&token)).await.status, 403, "{path}");
    }
    let staff_profile = app
        .patch(
            "/api/v1/auth/me",
            Some(&token),
            &json!({"display_name": "Ada"}),
        )
        .await;
    assert_eq!(staff_profile.status, 403);
    assert!(
        staff_profile.text.contains("PATCH /me"),
        "{}",
        staff_profile.text
    );
    assert_eq!(manager.get("/api/v1/me").await.status, 403);
    assert_eq!(backend.get("/api/v1/me").await.status, 403);
    assert_eq!(app.get("/api/v1/me", None).await.status, 401);

    // Forged, expired and wrong-audience tokens are 401.
    let now = Utc::now().timestamp();
    let claims = |aud: &str, typ: &str, exp: i64| {
        json!({"iss": "rapport", "aud": aud, "typ": typ, "sub": id_of(&ada), "iat": now - 7200,
               "nbf": now - 7200, "exp": exp, "jti": uuid::Uuid::now_v7()})
    };
    let mut forged = token.clone();
    forged.pop();
    for bad in [
        forged,
        signed(claims("rapport-member", "member", now - 3600)),
        signed(claims("rapport-api", "member", now + 3600)),
        signed(claims("rapport-member", "access", now + 3600)),
    ] {
        assert_eq!(app.get("/api/v1/me", Some(&bad)).await.status, 401);
    }

    // API3: the member's own profile, without the staff's view of them.
    let me = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["id"], ada["id"]);
    assert_eq!(me.body["emails"], json!(["ada@example.com"]));
    for hidden in [
        "owner_id",
        "tags",
        "tier",
        "level",
        "notes",
        "attributes",
        "lifecycle_stage",
        "total_spent",
    ] {
        assert!(me.body.get(hidden).is_none(), "{hidden} shows");
    }
    let changed = app
        .patch(
            "/api/v1/me",
            Some(&token),
            &json!({"phones": ["+86 138 0013 8000"], "consents": {"sms": true}}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.body["phones"], json!(["+8613800138000"]));
    assert_eq!(changed.body["consents"]["sms"]["granted"], true);
    for staff_only in [
        json!({"tier": "ordinary"}),
        json!({"tags": []}),
        json!({"owner_id": null}),
        json!({"notes": "x"}),
    ] {
        let refused = app.patch("/api/v1/me", Some(&token), &staff_only).await;
        assert_eq!(refused.status, 422, "{staff_only}: {}", refused.text);
    }
    let stale = app
        .request(
            "PATCH",
            "/api/v1/me",
            Some(&token),
            Some(&json!({"given_name": "Ada"})),
            &[("If-Match", "\"1\"")],
        )
        .await;
    assert_eq!(stale.status, 412);
    let staff_view = manager
        .get(&format!("/api/v1/customers/{}", id_of(&ada)))
        .await;
    assert_eq!(
        staff_view.body["tier"], "key",
        "the tier stayed the staff's"
    );
    assert_eq!(staff_view.body["tags"], json!(["vip"]));
    let actors = app
        .count(&format!(
            "SELECT count(*) AS count FROM audit_log WHERE entity_id = '{}' AND actor_type = 'member' AND actor_id = '{}'",
            id_of(&ada),
            id_of(&ada)
        ))
        .await;
    assert_eq!(actors, 1, "the change is the member's in the audit log");

    // API1: a second member sees only themselves.
    let grace = manager
        .customer(json!({"emails": ["grace@example.com"]}))
        .await;
    let grace_token = member_token(&backend, &id_of(&grace)).await;
    let hers = app.get("/api/v1/me", Some(&grace_token)).await;
    assert_eq!(hers.body["id"], grace["id"]);
    assert!(!hers.text.contains("ada@example.com"));
}

#[actix_web::test]
async fn tokens_stop_when_their_customer_is_deleted_merged_away_or_erased() {
    let app = TestApp::spawn().await;
    let admin = app.client(Role::Admin).await;
    let backend = app.key_client(&["members:token"]).await;
    let deleted = admin.customer(json!({})).await;
    let merged = admin.customer(json!({})).await;
    let survivor = admin.customer(json!({})).await;
    let erased = admin.customer(json!({})).await;
    let mut tokens = Vec::new();
    for customer in [&deleted, &merged, &erased] {
        let token = member_token(&backend, &id_of(customer)).await;
        assert_eq!(app.get("/api/v1/me", Some(&token)).await.status, 200);
        tokens.push(token);
    }
    assert_eq!(
        admin
            .delete(&format!("/api/v1/customers/{}", id_of(&deleted)))
            .await
            .status,
        204
    );
    let merge = admin
        .post(
            "/api/v1/customers/merge",
            &json!({"survivor_id": id_of(&survivor), "duplicate_id": id_of(&merged)}),
        )
        .await;
    assert!(merge.status < 300, "{}", merge.text);
    let erase = admin
        .post(
            &format!("/api/v1/customers/{}/erase", id_of(&erased)),
            &json!({}),
        )
        .await;
    assert!(erase.status < 300, "{}", erase.text);
    for token in &tokens {
        assert_eq!(app.get("/api/v1/me", Some(token)).await.status, 401);
        assert_eq!(
            app.patch("/api/v1/me", Some(token), &json!({"given_name": "X"}))
                .await
                .status,
            401
        );
    }
    for customer in [&deleted, &merged, &erased] {
        let refused = backend
            .post(
                "/api/v1/member-tokens",
                &json!({"customer_id": id_of(customer)}),
            )
            .await;
        assert_eq!(refused.status, 409, "no new token either");
    }
}

#[actix_web::test]
async fn members_read_their_own_points_without_who_wrote_them() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let backend = app.key_client(&["members:token"]).await;
    let (ada, grace) = (
        manager.customer(json!({})).await,
        manager.customer(json!({})).await,
    );
    let member = manager
        .create("/api/v1/club/members", &json!({"customer_id": id_of(&ada)}))
        .await;
    let points = format!("/api/v1/club/members/{}/points", id_of(&member));
    for (kind, n, reason) in [("earn", 300, "Welcome gift"), ("redeem", 120, "Till 4")] {
        let res = manager
            .post(
                &points,
                &json!({"kind": kind, "points": n, "reason": reason}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text);
    }
    let token = member_token(&backend, &id_of(&ada)).await;
    let mine = app.get("/api/v1/me/points", Some(&token)).await;
    assert_eq!(mine.status, 200, "{}", mine.text);
    assert_eq!(mine.body["balances"]["balance"], 180);
    let entries = mine.body["data"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["kind"], "redeem", "newest first");
    assert_eq!(entries[0]["points"], -120);
    for hidden in ["actor", "member_id", "rule_id", "lots", "reference"] {
        assert!(entries[0].get(hidden).is_none(), "{hidden} shows");
    }
    // Paging, and the other member's own (empty) view.
    let first = app.get("/api/v1/me/points?limit=1", Some(&token)).await;
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = app
        .get(
            &format!("/api/v1/me/points?limit=1&cursor={cursor}"),
            Some(&token),
        )
        .await;
    assert_eq!(second.body["data"][0]["kind"], "earn");
    let not_in_club = member_token(&backend, &id_of(&grace)).await;
    assert_eq!(
        app.get("/api/v1/me/points", Some(&not_in_club))
            .await
            .status,
        404
    );
    assert_eq!(manager.get("/api/v1/me/points").await.status, 403);
}

#[actix_web::test]
async fn members_file_and_follow_their_own_complaints_and_see_public_comments_only() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let backend = app.key_client(&["members:token"]).await;
    let (ada, grace) = (
        manager.customer(json!({})).await,
        manager.customer(json!({})).await,
    );
    let (ada_token, grace_token) = (
        member_token(&backend, &id_of(&ada)).await,
        member_token(&backend, &id_of(&grace)).await,
    );
    let order = manager.order(&id_of(&ada), "M-1", 4200).await;
    let filed = app
        .post(
            "/api/v1/me/complaints",
            Some(&ada_token),
            &json!({"category": "product_quality", "subject": "Sole came off",
                    "description": "After a week.", "order_id": id_of(&order)}),
        )
        .await;
    assert_eq!(filed.status, 201, "{}", filed.text);
    let id = id_of(&filed.body);
    assert_eq!(filed.body["status"], "received");
    for hidden in [
        "assignee_id",
        "severity",
        "sla_policy",
        "sla",
        "channel",
        "customer_tier",
    ] {
        assert!(filed.body.get(hidden).is_none(), "{hidden} shows");
    }
    // Staff see it as any complaint: from the app, medium until triaged, by the member.
    let staff = manager.get(&format!("/api/v1/complaints/{id}")).await;
    assert_eq!(staff.body["channel"], "mobile_app");
    assert_eq!(staff.body["severity"], "medium");
    let created = crate::kit::conformance::write_emitted(&app, &id, "complaint.created").await;
    assert_eq!(created["customer_id"], ada["id"]);
    for (visibility, body) in [
        ("public", "We are sending a new pair."),
        ("internal", "Batch 7 again, check supplier"),
    ] {
        let res = manager
            .post(
                &format!("/api/v1/complaints/{id}/comments"),
                &json!({"visibility": visibility, "body": body}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text);
    }
    let detail = app
        .get(&format!("/api/v1/me/complaints/{id}"), Some(&ada_token))
        .await;
    assert_eq!(detail.status, 200, "{}", detail.text);
    let comments = detail.body["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 1, "public comments only");
    assert_eq!(comments[0]["body"], "We are sending a new pair.");
    assert_eq!(comments[0]["yours"], false);
    assert!(!detail.text.contains("supplier"));

    // API1: another member's complaint is 404, never 403; their list is their own.
    let theirs = app
        .get(&format!("/api/v1/me/complaints/{id}"), Some(&grace_token))
        .await;
    assert_eq!(theirs.status, 404);
    let list = app.get("/api/v1/me/complaints", Some(&grace_token)).await;
    assert_eq!(list.body["data"], json!([]));
    let mine = app.get("/api/v1/me/complaints", Some(&ada_token)).await;
    assert_eq!(mine.body["data"][0]["id"], id.as_str());
    // Another customer's order is refused as any reference to it would be.
    let other_order = manager.order(&id_of(&grace), "M-2", 100).await;
    let refused = app
        .post(
            "/api/v1/me/complaints",
            Some(&ada_token),
            &json!({"category": "product_quality", "subject": "x", "description": "y",
                    "order_id": id_of(&other_order)}),
        )
        .await;
    assert!(
        refused.status == 409 || refused.status == 422,
        "{}",
        refused.text
    );
    let severity = app
        .post(
            "/api/v1/me/complaints",
            Some(&ada_token),
            &json!({"category": "product_quality", "subject": "x", "description": "y", "severity": "critical"}),
        )
        .await;
    assert_eq!(severity.status, 422, "severity is the staff's");

    // The member comments (always public) and rates once per cycle, after the resolution.
    let said = app
        .post(
            &format!("/api/v1/me/complaints/{id}/comments"),
            Some(&ada_token),
            &json!({"body": "Thank you, size 42 please."}),
        )
        .await;
    assert_eq!(said.status, 201, "{}", said.text);
    assert_eq!(said.body["yours"], true);
    let on_staff_side = manager
        .get(&format!("/api/v1/complaints/{id}/comments"))
        .await;
    let theirs_seen = on_staff_side.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["body"] == "Thank you, size 42 please.")
        .unwrap()
        .clone();
    assert_eq!(theirs_seen["visibility"], "public");
    assert_eq!(theirs_seen["author_type"], "member");
    let rating = json!({"rating": 5, "comment": "Quick"});
    let early = app
        .post(
            &format!("/api/v1/me/complaints/{id}/satisfaction"),
            Some(&ada_token),
            &rating,
        )
        .await;
    assert_eq!(early.status, 409, "not resolved yet: {}", early.text);
    for to in ["acknowledged", "in_progress"] {
        let moved = manager
            .post(
                &format!("/api/v1/complaints/{id}/transitions"),
                &json!({"to": to}),
            )
            .await;
        assert_eq!(moved.status, 200, "{}", moved.text);
    }
    let resolved = manager
        .post(
            &format!("/api/v1/complaints/{id}/resolve"),
            &json!({"resolution": {"type": "replace", "description": "New pair sent", "root_cause_category": "supplier",
                    "root_cause": "Glue batch", "corrective_action": "Incoming checks on glue"}}),
        )
        .await;
    assert_eq!(resolved.status, 200, "{}", resolved.text);
    let rated = app
        .post(
            &format!("/api/v1/me/complaints/{id}/satisfaction"),
            Some(&ada_token),
            &rating,
        )
        .await;
    assert_eq!(rated.status, 201, "{}", rated.text);
    assert_eq!(rated.body["rating"], 5);
    let again = app
        .post(
            &format!("/api/v1/me/complaints/{id}/satisfaction"),
            Some(&ada_token),
            &rating,
        )
        .await;
    assert_eq!(again.status, 409, "once per cycle");
    let not_hers = app
        .post(
            &format!("/api/v1/me/complaints/{id}/comments"),
            Some(&grace_token),
            &json!({"body": "hi"}),
        )
        .await;
    assert_eq!(not_hers.status, 404);
    let detail = app
        .get(&format!("/api/v1/me/complaints/{id}"), Some(&ada_token))
        .await;
    assert_eq!(detail.body["status"], "resolved");
    assert!(
        detail.body["comments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["yours"] == true)
    );
}
