//! Members in the club and at their visits: rewards and redemptions with `expected_balance`,
//! the events open to their tier with registration, waitlist, cancel and accept, and their
//! own visits to confirm or cancel; each against another member (API1) and for the fields the
//! member's views leave out (API3).

use chrono::{Duration, Utc};
use rapport::auth::Role;
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::kit::{Client, id_of};
use crate::members::member_token;

/// A club member for a new customer: `(customer, member)`.
async fn enrolled(manager: &Client<'_>) -> (Value, Value) {
    let customer = manager.customer(json!({})).await;
    let member = manager
        .create(
            "/api/v1/club/members",
            &json!({"customer_id": id_of(&customer)}),
        )
        .await;
    (customer, member)
}

async fn earn(manager: &Client<'_>, member: &Value, points: i64) {
    let res = manager
        .post(
            &format!("/api/v1/club/members/{}/points", id_of(member)),
            &json!({"kind": "earn", "points": points, "reason": "Welcome"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
}

#[actix_web::test]
async fn members_redeem_rewards_on_sale_with_their_expected_balance() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let backend = app.key_client(&["members:token"]).await;
    let (ada, ada_member) = enrolled(&manager).await;
    earn(&manager, &ada_member, 1000).await;
    let kit = manager
        .create(
            "/api/v1/club/rewards",
            &json!({"name": "Shoe-care kit", "points_cost": 300, "stock": 5, "per_member_limit": 2}),
        )
        .await;
    let mug = manager
        .create(
            "/api/v1/club/rewards",
            &json!({"name": "Mug", "points_cost": 100}),
        )
        .await;
    let hidden = manager
        .create(
            "/api/v1/club/rewards",
            &json!({"name": "Withdrawn", "points_cost": 50, "active": false}),
        )
        .await;
    let token = member_token(&backend, &id_of(&ada)).await;

    // The catalogue on sale, cheapest first, without the stock count or the withdrawn one.
    let list = app.get("/api/v1/me/rewards", Some(&token)).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let names: Vec<&str> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Mug", "Shoe-care kit"]);
    assert!(list.body["data"][1].get("stock").is_none());
    assert_eq!(list.body["data"][1]["in_stock"], true);
    let first = app.get("/api/v1/me/rewards?limit=1", Some(&token)).await;
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = app
        .get(
            &format!("/api/v1/me/rewards?limit=1&cursor={cursor}"),
            Some(&token),
        )
        .await;
    assert_eq!(second.body["data"][0]["name"], "Shoe-care kit");

    // A stale balance is refused and spends nothing; the right one redeems.
    let redeem = |reward: &Value, body: Value| {
        let path = format!("/api/v1/me/rewards/{}/redemptions", id_of(reward));
        let token = token.clone();
        let app = &app;
        async move { app.post(&path, Some(&token), &body).await }
    };
    let stale = redeem(&kit, json!({"expected_balance": 999})).await;
    assert_eq!(stale.status, 409, "{}", stale.text);
    let done = redeem(&kit, json!({"expected_balance": 1000})).await;
    assert_eq!(done.status, 201, "{}", done.text);
    assert_eq!(done.body["entry"]["balance_after"], 700);
    assert_eq!(done.body["points"], 300);
    for field in ["member_id", "stock_left"] {
        assert!(done.body.get(field).is_none(), "{field} shows");
    }
    assert!(done.body["entry"].get("actor").is_none());
    assert_eq!(redeem(&kit, json!({})).await.status, 201);
    let over = redeem(&kit, json!({})).await;
    assert_eq!(over.status, 409, "the limit per member: {}", over.text);
    let list = app.get("/api/v1/me/rewards", Some(&token)).await;
    assert_eq!(list.body["data"][1]["redeemed"], 2);
    assert_eq!(redeem(&hidden, json!({})).await.status, 409);
    let negative = redeem(&mug, json!({"expected_balance": -1})).await;
    assert_eq!(negative.status, 422);
    let unknown = app
        .post(
            &format!("/api/v1/me/rewards/{}/redemptions", uuid::Uuid::now_v7()),
            Some(&token),
            &json!({}),
        )
        .await;
    assert_eq!(unknown.status, 404);
    // The staff's ledger shows the member's redemptions, written by the member.
    let ledger = manager
        .get(&format!(
            "/api/v1/club/members/{}/points",
            id_of(&ada_member)
        ))
        .await;
    assert_eq!(ledger.body["data"][0]["kind"], "redeem");
    assert_eq!(ledger.body["data"][0]["actor"]["type"], "member");

    // A customer outside the club: 404 on the club's `/me` routes.
    let outsider = manager.customer(json!({})).await;
    let outsider = member_token(&backend, &id_of(&outsider)).await;
    assert_eq!(
        app.get("/api/v1/me/rewards", Some(&outsider)).await.status,
        404
    );
    let path = format!("/api/v1/me/rewards/{}/redemptions", id_of(&mug));
    assert_eq!(
        app.post(&path, Some(&outsider), &json!({})).await.status,
        404
    );
}

#[actix_web::test]
async fn members_register_for_events_open_to_their_tier_and_take_up_offered_seats() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let backend = app.key_client(&["members:token"]).await;
    manager
        .create("/api/v1/club/tiers", &json!({"name": "Base", "rank": 0, "qualification": {"metric": "points", "threshold": 0}}))
        .await;
    let gold = manager
        .create("/api/v1/club/tiers", &json!({"name": "Gold", "rank": 1, "qualification": {"metric": "points", "threshold": 100}}))
        .await;
    let (ada, ada_member) = enrolled(&manager).await;
    let (grace, _) = enrolled(&manager).await;
    earn(&manager, &ada_member, 100).await;
    let start = Utc::now() + Duration::days(10);
    let event = |title: &str, tiers: Value| {
        json!({"title": title, "kind": "gathering", "starts_at": start.to_rfc3339(),
               "ends_at": (start + Duration::hours(3)).to_rfc3339(), "place": "Hall 2",
               "capacity": 1, "attendance_points": 40, "tiers_invited": tiers})
    };
    let open = manager
        .create("/api/v1/club/events", &event("Open evening", json!([])))
        .await;
    let gold_only = manager
        .create(
            "/api/v1/club/events",
            &event("Gold dinner", json!([gold["id"]])),
        )
        .await;
    let (ada_token, grace_token) = (
        member_token(&backend, &id_of(&ada)).await,
        member_token(&backend, &id_of(&grace)).await,
    );

    // Each sees the events open to their tier.
    let titles = |res: &crate::common::Response| -> Vec<String> {
        res.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let ada_events = app.get("/api/v1/me/events", Some(&ada_token)).await;
    assert_eq!(ada_events.status, 200, "{}", ada_events.text);
    let mut seen = titles(&ada_events);
    seen.sort();
    assert_eq!(seen, ["Gold dinner", "Open evening"]);
    let grace_events = app.get("/api/v1/me/events", Some(&grace_token)).await;
    assert_eq!(titles(&grace_events), ["Open evening"]);
    assert!(grace_events.body["data"][0].get("tiers_invited").is_none());
    assert_eq!(grace_events.body["data"][0]["seats_left"], 1);
    // An event not open to the member is not there for them.
    let gold_path = format!("/api/v1/me/events/{}", id_of(&gold_only));
    assert_eq!(app.get(&gold_path, Some(&grace_token)).await.status, 404);
    let refused = app
        .post(
            &format!("{gold_path}/registrations"),
            Some(&grace_token),
            &json!({}),
        )
        .await;
    assert_eq!(refused.status, 404, "{}", refused.text);

    // Ada takes the one seat, Grace waits; Ada gives it up and Grace accepts the offer.
    let register = |token: &str| {
        let path = format!("/api/v1/me/events/{}/registrations", id_of(&open));
        let token = token.to_owned();
        let app = &app;
        async move { app.post(&path, Some(&token), &json!({})).await }
    };
    let ada_seat = register(&ada_token).await;
    assert_eq!(ada_seat.status, 201, "{}", ada_seat.text);
    assert_eq!(ada_seat.body["status"], "registered");
    assert!(ada_seat.body.get("member_id").is_none());
    assert!(ada_seat.body.get("priority").is_none());
    assert_eq!(register(&ada_token).await.status, 409, "once");
    let grace_seat = register(&grace_token).await;
    assert_eq!(grace_seat.body["status"], "waitlisted");
    let detail = app
        .get(
            &format!("/api/v1/me/events/{}", id_of(&open)),
            Some(&grace_token),
        )
        .await;
    assert_eq!(detail.body["seats_left"], 0);
    assert_eq!(detail.body["registration"]["status"], "waitlisted");

    // API1: another member's registration is 404 under `/me`.
    let ada_reg = id_of(&ada_seat.body);
    let grace_reg = id_of(&grace_seat.body);
    for (token, id) in [(&grace_token, &ada_reg), (&ada_token, &grace_reg)] {
        let res = app
            .post(
                &format!("/api/v1/me/registrations/{id}/cancel"),
                Some(token),
                &json!({}),
            )
            .await;
        assert_eq!(res.status, 404, "{}", res.text);
    }
    let early = app
        .post(
            &format!("/api/v1/me/registrations/{grace_reg}/accept"),
            Some(&grace_token),
            &json!({}),
        )
        .await;
    assert_eq!(early.status, 409, "nothing offered yet: {}", early.text);
    let cancelled = app
        .post(
            &format!("/api/v1/me/registrations/{ada_reg}/cancel"),
            Some(&ada_token),
            &json!({}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    assert_eq!(cancelled.body["status"], "cancelled");
    let offered = app
        .get(
            &format!("/api/v1/me/events/{}", id_of(&open)),
            Some(&grace_token),
        )
        .await;
    assert_eq!(offered.body["registration"]["status"], "offered");
    assert!(offered.body["registration"]["offer_expires_at"].is_string());
    let accepted = app
        .post(
            &format!("/api/v1/me/registrations/{grace_reg}/accept"),
            Some(&grace_token),
            &json!({}),
        )
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    assert_eq!(accepted.body["status"], "registered");
    // The staff see the member's moves as the member's.
    let actions = app.audit_actions(&grace_reg).await;
    assert!(actions.contains(&"registered".to_owned()), "{actions:?}");
}

#[actix_web::test]
async fn members_confirm_and_cancel_their_own_visits_and_see_no_staff_notes() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let backend = app.key_client(&["members:token"]).await;
    let (ada, grace) = (
        manager.customer(json!({})).await,
        manager.customer(json!({})).await,
    );
    let plan = |customer: &Value, hours: i64| {
        let start = Utc::now() + Duration::hours(hours);
        json!({"customer_id": id_of(customer), "scheduled_start": start.to_rfc3339(),
               "scheduled_end": (start + Duration::hours(1)).to_rfc3339(),
               "purpose": "after_sales_follow_up", "method": "in_person",
               "reason": "Churn risk: complained twice", "agenda": "Upsell the care plan",
               "location": "1 Nanjing Road"})
    };
    let first = manager.create("/api/v1/visits", &plan(&ada, 24)).await;
    let second = manager.create("/api/v1/visits", &plan(&ada, 48)).await;
    let hers = manager.create("/api/v1/visits", &plan(&grace, 24)).await;
    let (ada_token, grace_token) = (
        member_token(&backend, &id_of(&ada)).await,
        member_token(&backend, &id_of(&grace)).await,
    );

    let list = app.get("/api/v1/me/visits", Some(&ada_token)).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let ids: Vec<&str> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [id_of(&second), id_of(&first)],
        "latest first, hers not"
    );
    let shown = &list.body["data"][0];
    assert_eq!(shown["location"], "1 Nanjing Road");
    for hidden in ["owner_id", "reason", "agenda", "participants", "check_in"] {
        assert!(shown.get(hidden).is_none(), "{hidden} shows");
    }
    assert!(!list.text.contains("Churn risk"));

    let path = |visit: &Value, step: &str| format!("/api/v1/me/visits/{}/{step}", id_of(visit));
    let confirmed = app
        .post(&path(&first, "confirm"), Some(&ada_token), &json!({}))
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    assert_eq!(confirmed.body["status"], "confirmed");
    assert!(confirmed.body["confirmed_at"].is_string());
    let again = app
        .post(&path(&first, "confirm"), Some(&ada_token), &json!({}))
        .await;
    assert_eq!(again.status, 409);
    let cancelled = app
        .post(
            &path(&second, "cancel"),
            Some(&ada_token),
            &json!({"note": "Away that week"}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(cancelled.body["cancel_reason"], "customer_cancelled");
    let staff = manager
        .get(&format!("/api/v1/visits/{}", id_of(&second)))
        .await;
    assert_eq!(staff.body["cancel_note"], "Away that week");
    let bad = app
        .post(
            &path(&first, "cancel"),
            Some(&ada_token),
            &json!({"reason": "staff_unavailable"}),
        )
        .await;
    assert_eq!(bad.status, 422, "the reason is the customer's own");

    // API1: another customer's visit is 404 for every step.
    for step in ["confirm", "cancel"] {
        let res = app
            .post(&path(&hers, step), Some(&ada_token), &json!({}))
            .await;
        assert_eq!(res.status, 404, "{step}");
    }
    let theirs = app
        .get(
            &format!("/api/v1/me/visits/{}", id_of(&hers)),
            Some(&ada_token),
        )
        .await;
    assert_eq!(theirs.status, 404);
    let own = app
        .get(
            &format!("/api/v1/me/visits/{}", id_of(&hers)),
            Some(&grace_token),
        )
        .await;
    assert_eq!(own.status, 200);
    assert_eq!(own.body["status"], "planned");
}
