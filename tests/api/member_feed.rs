//! `GET /me/changes`: a member's own slice of the change feed. It holds their changes and no
//! one else's, no internal comment, and no staff `data`: each entry links to the member's own
//! view, which the member's token reads.

use chrono::{Duration, Utc};
use rapport::auth::Role;
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::kit::id_of;
use crate::members::member_token;

#[actix_web::test]
async fn members_follow_their_own_changes_and_nothing_internal() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let backend = app.key_client(&["members:token"]).await;
    let (ada, grace) = (
        manager.customer(json!({"display_name": "Ada"})).await,
        manager.customer(json!({"display_name": "Grace"})).await,
    );
    let (ada_token, grace_token) = (
        member_token(&backend, &id_of(&ada)).await,
        member_token(&backend, &id_of(&grace)).await,
    );
    app.settle_feed().await;
    let start = app
        .get("/api/v1/me/changes?since=now", Some(&ada_token))
        .await;
    assert_eq!(start.status, 200, "{}", start.text);
    assert_eq!(start.body["data"], json!([]));
    let since = start.body["next_cursor"].as_str().unwrap().to_owned();

    // Ada's changes, made by staff and by Ada, and Grace's beside them.
    for customer in [&ada, &grace] {
        let member = manager
            .create(
                "/api/v1/club/members",
                &json!({"customer_id": id_of(customer)}),
            )
            .await;
        let res = manager
            .post(
                &format!("/api/v1/club/members/{}/points", id_of(&member)),
                &json!({"kind": "earn", "points": 50, "reason": "Welcome"}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text);
    }
    let complaint = app
        .post(
            "/api/v1/me/complaints",
            Some(&ada_token),
            &json!({"category": "product_quality", "subject": "Sole came off", "description": "After a week."}),
        )
        .await;
    assert_eq!(complaint.status, 201, "{}", complaint.text);
    let complaint_id = id_of(&complaint.body);
    for (visibility, body) in [
        ("internal", "Supplier batch 7"),
        ("public", "New pair on its way"),
    ] {
        let res = manager
            .post(
                &format!("/api/v1/complaints/{complaint_id}/comments"),
                &json!({"visibility": visibility, "body": body}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text);
    }
    let at = Utc::now() + Duration::days(2);
    let visit = manager
        .create(
            "/api/v1/visits",
            &json!({"customer_id": id_of(&ada), "scheduled_start": at.to_rfc3339(),
                    "scheduled_end": (at + Duration::hours(1)).to_rfc3339(),
                    "purpose": "after_sales_follow_up", "method": "in_person", "reason": "Churn risk"}),
        )
        .await;
    let patched = app
        .patch(
            "/api/v1/me",
            Some(&ada_token),
            &json!({"given_name": "Ada"}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    manager
        .complaint(&id_of(&grace), json!({"subject": "Grace's own"}))
        .await;
    app.settle_feed().await;

    let page = app
        .get(
            &format!("/api/v1/me/changes?since={since}"),
            Some(&ada_token),
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    let changes = page.body["data"].as_array().unwrap();
    let types: Vec<&str> = changes
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "member.enrolled",
            "points.changed",
            "complaint.created",
            "complaint.commented",
            "complaint.updated",
            "visit.planned",
            "customer.updated"
        ],
        "Ada's own, in commit order, the internal comment left out (the public one is the first response)"
    );
    for change in changes {
        assert!(change.get("data").is_none(), "no staff data: {change}");
        let href = change["href"].as_str().unwrap();
        assert!(href.starts_with("/api/v1/me"), "{href}");
        let read = app.get(href, Some(&ada_token)).await;
        assert_eq!(read.status, 200, "{href}: {}", read.text);
    }
    assert_eq!(
        changes[3]["href"],
        format!("/api/v1/me/complaints/{complaint_id}")
    );
    assert_eq!(
        changes[5]["href"],
        format!("/api/v1/me/visits/{}", id_of(&visit))
    );
    for secret in ["Grace", "Supplier", "Churn risk", "owner_id"] {
        assert!(!page.text.contains(secret), "{secret} shows in the feed");
    }

    // Resuming from the cursor gives only what is new; a types filter narrows it.
    let next = page.body["next_cursor"].as_str().unwrap();
    let quiet = app
        .get(
            &format!("/api/v1/me/changes?since={next}"),
            Some(&ada_token),
        )
        .await;
    assert_eq!(quiet.body["data"], json!([]));
    let visits_only = app
        .get(
            &format!("/api/v1/me/changes?since={since}&types=visit.*"),
            Some(&ada_token),
        )
        .await;
    let only: Vec<&Value> = visits_only.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["type"], "visit.planned");
    let unknown = app
        .get("/api/v1/me/changes?types=nope.created", Some(&ada_token))
        .await;
    assert_eq!(unknown.status, 422);
    let bad = app
        .get("/api/v1/me/changes?since=garbage", Some(&ada_token))
        .await;
    assert_eq!(bad.status, 400);

    // Grace's feed holds Grace's changes only; staff use `/changes`.
    let theirs = app
        .get(
            &format!("/api/v1/me/changes?since={since}"),
            Some(&grace_token),
        )
        .await;
    assert!(!theirs.text.contains(&complaint_id));
    assert!(theirs.text.contains("complaint.created"));
    assert_eq!(manager.get("/api/v1/me/changes").await.status, 403);
}
