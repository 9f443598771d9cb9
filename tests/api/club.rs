//! The club over HTTP: enrolment, the ledger's invariants under concurrency (the 100-client
//! race, parallel earn + redeem + expire + refund), soonest-expiry-first, pending points,
//! refunds into debt and its payoff, each earning rule on known orders, the reward stock
//! race, waitlists under concurrent cancellations and offer expiry, check-in once, tiers up
//! at once and down at the review, referrals, complaint compensation, greetings, rights, the
//! kit's conformance checks and erasure.

use chrono::{Datelike, Duration, Utc};
use futures_util::future::join_all;
use rapport::auth::Role;
use rapport::club::jobs;
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::kit::{Client, conformance, id_of};

/// A new customer, enrolled; returns the member.
async fn member(client: &Client<'_>) -> Value {
    let customer = id_of(&client.customer(json!({})).await);
    client
        .create("/api/v1/club/members", &json!({"customer_id": customer}))
        .await
}

async fn points(client: &Client<'_>, member: &str, body: Value) -> crate::common::Response {
    client
        .post(&format!("/api/v1/club/members/{member}/points"), &body)
        .await
}

/// A request owning its path and body, to run several at once.
async fn send(
    client: &Client<'_>,
    method: &str,
    path: String,
    body: Value,
) -> crate::common::Response {
    client.send(method, &path, Some(&body), &[]).await
}

/// A member of a club that earns a point per yuan spent: the member's id and customer's id.
async fn member_earning_per_yuan(manager: &Client<'_>) -> (String, String) {
    manager
        .create(
            "/api/v1/club/rules",
            &json!({"name": "Per yuan", "kind": "purchase"}),
        )
        .await;
    let enrolled = member(manager).await;
    (
        id_of(&enrolled),
        enrolled["customer_id"].as_str().unwrap().to_owned(),
    )
}

/// What remains of the lot an earning made.
async fn remaining_of(app: &TestApp, entry: &Value) -> i64 {
    app.count(&format!(
        "SELECT remaining AS count FROM points_lots WHERE entry_id = '{}'",
        id_of(entry)
    ))
    .await
}

async fn earn(client: &Client<'_>, member: &str, n: i64) -> Value {
    let res = points(
        client,
        member,
        json!({"kind": "earn", "points": n, "reason": "test"}),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.body
}

async fn balance(client: &Client<'_>, member: &str) -> Value {
    let res = client.get(&format!("/api/v1/club/members/{member}")).await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.body["points"].clone()
}

/// `sum(entries) = sum(lots.remaining) − owed` for the member, and nothing negative.
async fn ledger_adds_up(app: &TestApp, member: &str) {
    let entries = app
        .count(&format!(
            "SELECT coalesce(sum(points), 0)::bigint AS count FROM points_entries WHERE member_id = '{member}'"
        ))
        .await;
    let lots = app
        .count(&format!(
            "SELECT coalesce(sum(remaining), 0)::bigint AS count FROM points_lots WHERE member_id = '{member}'"
        ))
        .await;
    let owed = app
        .count(&format!(
            "SELECT owed AS count FROM club_members WHERE id = '{member}'"
        ))
        .await;
    assert_eq!(
        entries,
        lots - owed,
        "the ledger of {member} does not add up"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS count FROM points_entries WHERE member_id = '{member}' AND balance_after < 0"
        ))
        .await,
        0
    );
}

/// An order of `total_minor` for the customer with lines in `categories`, in `status`.
async fn order(
    client: &Client<'_>,
    customer: &str,
    external_id: &str,
    total_minor: i64,
    categories: &[&str],
) -> Value {
    let lines: Vec<Value> = categories
        .iter()
        .map(|c| json!({"sku": format!("SKU-{c}"), "name": c, "category": c, "quantity": 1, "unit_price_minor": total_minor / categories.len() as i64}))
        .collect();
    client
        .create(
            "/api/v1/orders",
            &json!({"source": "shop", "external_id": external_id, "customer": {"id": customer},
                "status": "paid", "currency": "CNY", "total_minor": total_minor,
                "ordered_at": Utc::now().to_rfc3339(), "lines": lines}),
        )
        .await
}

#[actix_web::test]
async fn enrolment_is_once_per_customer_and_the_member_shows_balances_and_progress() {
    let app = TestApp::spawn().await;
    let agent = app.client(Role::Agent).await;
    let manager = app.client(Role::Manager).await;
    manager
        .create("/api/v1/club/tiers", &json!({"name": "Silver", "rank": 0, "qualification": {"metric": "points", "threshold": 0}}))
        .await;
    manager
        .create("/api/v1/club/tiers", &json!({"name": "Gold", "rank": 1, "qualification": {"metric": "points", "threshold": 1000},
            "benefits": {"points_multiplier_percent": 150, "discount_percent": 10}}))
        .await;
    let customer = id_of(&agent.customer(json!({})).await);
    let enrolled = agent
        .create("/api/v1/club/members", &json!({"customer_id": customer}))
        .await;
    assert_eq!(enrolled["status"], "active");
    assert_eq!(enrolled["tier"]["name"], "Silver");
    assert!(enrolled["member_number"].as_str().unwrap().starts_with('M'));
    assert_eq!(
        enrolled["points"],
        json!({"balance": 0, "pending": 0, "lifetime_earned": 0, "owed": 0})
    );
    assert_eq!(enrolled["progress"]["next_tier"]["name"], "Gold");
    assert_eq!(enrolled["progress"]["to_next_tier"], 1000);
    let again = agent
        .post("/api/v1/club/members", &json!({"customer_id": customer}))
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.error_fields(), vec!["customer_id"]);
    conformance::write_emitted(&app, &id_of(&enrolled), "member.enrolled").await;

    // Agents enrol but write no points; managers suspend.
    let id = id_of(&enrolled);
    let refused = points(
        &agent,
        &id,
        json!({"kind": "earn", "points": 5, "reason": "x"}),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    conformance::stale_if_match_is_refused(
        &manager,
        &format!("/api/v1/club/members/{id}"),
        &json!({"status": "suspended"}),
    )
    .await;
    let suspended = points(
        &manager,
        &id,
        json!({"kind": "earn", "points": 5, "reason": "x"}),
    )
    .await;
    assert_eq!(suspended.status, 409, "{}", suspended.text);
    let mut enrolled = Vec::new();
    for _ in 0..3 {
        enrolled.push(id_of(&member(&agent).await));
    }
    let list = "/api/v1/club/members?status=active";
    conformance::sorts_both_ways(&agent, list, "created_at", &enrolled).await;
}

#[actix_web::test]
async fn a_hundred_concurrent_redemptions_of_one_point_on_ten_spend_exactly_ten() {
    let app = TestApp::spawn().await;
    let shop = app
        .key_client(&[
            "club:read",
            "club:write",
            "customers:write",
            "customers:read",
        ])
        .await;
    let id = id_of(&member(&shop).await);
    earn(&shop, &id, 10).await;
    let attempts = (0..100).map(|i| {
        points(
            &shop,
            &id,
            json!({"kind": "redeem", "points": 1, "reason": "race", "reference": format!("till-{i}")}),
        )
    });
    let results = join_all(attempts).await;
    let won = results.iter().filter(|r| r.status == 201).count();
    let refused = results.iter().filter(|r| r.status == 409).count();
    assert_eq!(
        (won, refused),
        (10, 90),
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(balance(&shop, &id).await["balance"], 0);
    ledger_adds_up(&app, &id).await;

    // expected_balance: a stale view is refused; the reference replays the first entry.
    earn(&shop, &id, 5).await;
    let stale = points(
        &shop,
        &id,
        json!({"kind": "redeem", "points": 1, "reason": "x", "expected_balance": 4}),
    )
    .await;
    assert_eq!(stale.status, 409);
    assert_eq!(stale.error_fields(), vec!["expected_balance"]);
    let first = points(&shop, &id, json!({"kind": "redeem", "points": 2, "reason": "x", "expected_balance": 5, "reference": "r-1"})).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.body["balance_after"], 3);
    let replay = points(
        &shop,
        &id,
        json!({"kind": "redeem", "points": 2, "reason": "x", "reference": "r-1"}),
    )
    .await;
    assert_eq!(replay.status, 200);
    assert_eq!(replay.body["id"], first.body["id"]);
    let short = points(
        &shop,
        &id,
        json!({"kind": "redeem", "points": 4, "reason": "x"}),
    )
    .await;
    assert_eq!(short.status, 409);
    assert_eq!(short.error_fields(), vec!["points"]);
    let zero = points(
        &shop,
        &id,
        json!({"kind": "earn", "points": -3, "reason": "x"}),
    )
    .await;
    assert_eq!(zero.status, 422);
    conformance::post_replays_under_idempotency_key(
        &shop,
        &format!("/api/v1/club/members/{id}/points"),
        &json!({"kind": "earn", "points": 1, "reason": "idempotent"}),
    )
    .await;
    ledger_adds_up(&app, &id).await;
}

#[actix_web::test]
async fn debits_take_the_soonest_expiring_lots_and_pending_points_wait() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let id = id_of(&member(&manager).await);
    let later = earn(&manager, &id, 10).await;
    let sooner = earn(&manager, &id, 10).await;
    app.execute(&format!(
        "UPDATE points_lots SET expires_at = now() + interval '10 days' WHERE entry_id = '{}'",
        id_of(&sooner)
    ))
    .await;
    let spent = points(
        &manager,
        &id,
        json!({"kind": "redeem", "points": 12, "reason": "x"}),
    )
    .await;
    assert_eq!(spent.status, 201, "{}", spent.text);
    assert_eq!(
        remaining_of(&app, &sooner).await,
        0,
        "the soonest-expiring lot goes first"
    );
    assert_eq!(remaining_of(&app, &later).await, 8);
    assert_eq!(spent.body["lots"].as_array().unwrap().len(), 2);
    assert_eq!(spent.body["lots"][0]["points"], 10);

    // Pending points are not spendable until their day.
    let pending = points(
        &manager,
        &id,
        json!({"kind": "earn", "points": 50, "reason": "returns window", "pending_days": 14}),
    )
    .await;
    assert_eq!(pending.status, 201);
    assert_eq!(pending.body["balance_after"], 8);
    assert_eq!(balance(&manager, &id).await["pending"], 50);
    let refused = points(
        &manager,
        &id,
        json!({"kind": "redeem", "points": 20, "reason": "x"}),
    )
    .await;
    assert_eq!(refused.status, 409);
    app.execute(&format!(
        "UPDATE points_lots SET available_at = now() - interval '1 second' WHERE entry_id = '{}'",
        id_of(&pending.body)
    ))
    .await;
    assert_eq!(balance(&manager, &id).await["balance"], 58);
    let spent = points(
        &manager,
        &id,
        json!({"kind": "redeem", "points": 20, "reason": "x"}),
    )
    .await;
    assert_eq!(spent.status, 201, "{}", spent.text);
    ledger_adds_up(&app, &id).await;
    // The ledger is append-only.
    let pool = app.context.pool();
    let mut conn = pool.get().await.unwrap();
    let tampered = diesel_async::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "UPDATE points_entries SET points = 1000 WHERE member_id = '{id}'"
        )),
        &mut conn,
    )
    .await;
    assert!(tampered.is_err(), "an entry was changed");
}

#[actix_web::test]
async fn a_refund_voids_unspent_points_owes_spent_ones_and_later_earnings_pay_the_debt() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    manager
        .create(
            "/api/v1/club/rules",
            &json!({"name": "1 point per yuan", "kind": "purchase"}),
        )
        .await;
    let enrolled = member(&manager).await;
    let (id, customer) = (
        id_of(&enrolled),
        enrolled["customer_id"].as_str().unwrap().to_owned(),
    );
    let first = order(&manager, &customer, "A-1", 10_000, &["shoes"]).await;
    assert_eq!(balance(&manager, &id).await["balance"], 100);
    let spent = points(
        &manager,
        &id,
        json!({"kind": "redeem", "points": 60, "reason": "x"}),
    )
    .await;
    assert_eq!(spent.status, 201);
    let refunded = manager
        .patch(
            &format!("/api/v1/orders/{}", id_of(&first)),
            &json!({"status": "refunded"}),
        )
        .await;
    assert_eq!(refunded.status, 200, "{}", refunded.text);
    let after = balance(&manager, &id).await;
    assert_eq!(
        (after["balance"].as_i64(), after["owed"].as_i64()),
        (Some(0), Some(60))
    );
    let reversal = manager
        .get(&format!("/api/v1/club/members/{id}/points?kind=reverse"))
        .await;
    assert_eq!(reversal.body["data"][0]["points"], -100);
    assert_eq!(reversal.body["data"][0]["owed_added"], 60);
    ledger_adds_up(&app, &id).await;

    // The next earning pays the debt first.
    order(&manager, &customer, "A-2", 5_000, &["shoes"]).await;
    let after = balance(&manager, &id).await;
    assert_eq!(
        (after["balance"].as_i64(), after["owed"].as_i64()),
        (Some(0), Some(10))
    );
    order(&manager, &customer, "A-3", 3_000, &["shoes"]).await;
    let after = balance(&manager, &id).await;
    assert_eq!(
        (after["balance"].as_i64(), after["owed"].as_i64()),
        (Some(20), Some(0))
    );
    ledger_adds_up(&app, &id).await;
}

#[actix_web::test]
async fn earning_rules_on_known_orders() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    manager
        .create("/api/v1/club/tiers", &json!({"name": "Base", "rank": 0, "qualification": {"metric": "points", "threshold": 0},
            "benefits": {"points_multiplier_percent": 200}}))
        .await;
    for rule in [
        json!({"name": "Per yuan", "kind": "purchase", "points_per_unit": 1, "pending_days": 0}),
        json!({"name": "Third in a month", "kind": "frequency", "points": 300, "every_nth": 3, "within_days": 30}),
        json!({"name": "Whole line", "kind": "bundle", "points": 500, "categories": ["shoes", "bags", "belts"]}),
        json!({"name": "Welcome", "kind": "enrolment", "points": 50}),
        json!({"name": "Capped bonus", "kind": "bundle", "points": 70, "min_categories": 2, "cap": {"points": 100, "period": "month"}}),
    ] {
        manager.create("/api/v1/club/rules", &rule).await;
    }
    let enrolled = member(&manager).await;
    let (id, customer) = (
        id_of(&enrolled),
        enrolled["customer_id"].as_str().unwrap().to_owned(),
    );
    assert_eq!(enrolled["points"]["balance"], 50, "the enrolment bonus");
    // 100.00 CNY at 2×: 200; one category: no bundle.
    order(&manager, &customer, "R-1", 10_000, &["shoes"]).await;
    assert_eq!(balance(&manager, &id).await["balance"], 250);
    // Two categories: the capped bonus (70), not the whole line.
    order(&manager, &customer, "R-2", 1_000, &["shoes", "bags"]).await;
    assert_eq!(balance(&manager, &id).await["balance"], 250 + 20 + 70);
    // Third order in 30 days, the whole line: 300 + 500 + the cap's last 30 + 2× 30.00.
    order(
        &manager,
        &customer,
        "R-3",
        3_000,
        &["shoes", "bags", "belts"],
    )
    .await;
    assert_eq!(
        balance(&manager, &id).await["balance"],
        340 + 300 + 500 + 30 + 60
    );
    let entries = manager
        .get(&format!("/api/v1/club/members/{id}/points?limit=50"))
        .await;
    let reasons: Vec<&str> = entries.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.starts_with("Third in a month")),
        "{reasons:?}"
    );
    // The same order pushed again earns nothing twice.
    let replay = manager
        .post(
            "/api/v1/orders",
            &json!({"source": "shop", "external_id": "R-3", "customer": {"id": customer}, "status": "paid", "currency": "CNY",
                "total_minor": 3_000, "ordered_at": Utc::now().to_rfc3339(), "lines": [{"sku": "x", "name": "x", "quantity": 1, "unit_price_minor": 3000}]}),
        )
        .await;
    assert_eq!(replay.status, 200, "{}", replay.text);
    assert_eq!(balance(&manager, &id).await["balance"], 1230);
    ledger_adds_up(&app, &id).await;
}

#[actix_web::test]
async fn the_last_reward_goes_to_one_member_and_the_others_points_stay() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let reward = manager
        .create(
            "/api/v1/club/rewards",
            &json!({"name": "Umbrella", "points_cost": 30, "stock": 1, "per_member_limit": 1}),
        )
        .await;
    let (a, b) = (
        id_of(&member(&manager).await),
        id_of(&member(&manager).await),
    );
    earn(&manager, &a, 50).await;
    earn(&manager, &b, 50).await;
    let path = format!("/api/v1/club/rewards/{}/redemptions", id_of(&reward));
    let (ra, rb) = tokio::join!(
        send(&manager, "POST", path.clone(), json!({"member_id": a})),
        send(&manager, "POST", path.clone(), json!({"member_id": b}))
    );
    let mut statuses = [ra.status, rb.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "{} / {}", ra.text, rb.text);
    let winner = if ra.status == 201 { &ra } else { &rb };
    assert_eq!(winner.body["stock_left"], 0);
    let mut balances = Vec::new();
    for m in [&a, &b] {
        balances.push(balance(&manager, m).await["balance"].as_i64().unwrap());
    }
    balances.sort_unstable();
    assert_eq!(balances, vec![20, 50]);
    let restock = manager
        .send(
            "PATCH",
            &format!("/api/v1/club/rewards/{}", id_of(&reward)),
            Some(&json!({"stock": 5})),
            &[],
        )
        .await;
    assert_eq!(restock.status, 200, "{}", restock.text);
    let winner_id = winner.body["member_id"].as_str().unwrap();
    let over_limit = manager.post(&path, &json!({"member_id": winner_id})).await;
    assert_eq!(over_limit.status, 409, "{}", over_limit.text);
    ledger_adds_up(&app, &a).await;
    ledger_adds_up(&app, &b).await;
}

#[actix_web::test]
async fn waitlists_offer_freed_seats_by_tier_then_arrival_and_offers_move_on() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    manager
        .create("/api/v1/club/tiers", &json!({"name": "Base", "rank": 0, "qualification": {"metric": "points", "threshold": 0}}))
        .await;
    let gold = manager
        .create("/api/v1/club/tiers", &json!({"name": "Gold", "rank": 1, "qualification": {"metric": "points", "threshold": 100}}))
        .await;
    let start = Utc::now() + Duration::days(10);
    let event = manager
        .create(
            "/api/v1/club/events",
            &json!({"title": "Factory visit", "kind": "factory_visit",
            "starts_at": start.to_rfc3339(), "ends_at": (start + Duration::hours(4)).to_rfc3339(),
            "place": "Hall 2", "capacity": 2, "attendance_points": 40}),
        )
        .await;
    let registrations = format!("/api/v1/club/events/{}/registrations", id_of(&event));
    let mut members = Vec::new();
    for _ in 0..5 {
        members.push(id_of(&member(&manager).await));
    }
    // The fifth member is gold: first in line though last to arrive.
    earn(&manager, &members[4], 100).await;
    assert_eq!(
        manager
            .get(&format!("/api/v1/club/members/{}", members[4]))
            .await
            .body["tier"]["id"],
        gold["id"]
    );
    let mut regs = Vec::new();
    for m in &members {
        let r = manager
            .create(&registrations, &json!({"member_id": m}))
            .await;
        regs.push(r);
    }
    let statuses: Vec<&str> = regs.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(
        statuses,
        vec![
            "registered",
            "registered",
            "waitlisted",
            "waitlisted",
            "waitlisted"
        ]
    );
    let twice = manager
        .post(&registrations, &json!({"member_id": members[0]}))
        .await;
    assert_eq!(twice.status, 409);

    // Both seats given up at once: exactly two offers, gold first, then the first to arrive.
    let cancel = |i: usize| {
        send(
            &manager,
            "POST",
            format!("{registrations}/{}/cancel", id_of(&regs[i])),
            json!({}),
        )
    };
    let (c0, c1) = tokio::join!(cancel(0), cancel(1));
    assert_eq!(
        (c0.status, c1.status),
        (200, 200),
        "{} / {}",
        c0.text,
        c1.text
    );
    let offered = manager
        .get(&format!("{registrations}?status=offered"))
        .await;
    let mut offered: Vec<String> = offered.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["member_id"].as_str().unwrap().to_owned())
        .collect();
    offered.sort();
    let mut expected = vec![members[4].clone(), members[2].clone()];
    expected.sort();
    assert_eq!(offered, expected);

    // The gold member accepts; member 2's offer lapses and moves on to member 3.
    let accepted = manager
        .post(
            &format!("{registrations}/{}/accept", id_of(&regs[4])),
            &json!({}),
        )
        .await;
    assert_eq!(accepted.body["status"], "registered", "{}", accepted.text);
    app.execute(&format!(
        "UPDATE club_registrations SET offer_expires_at = now() - interval '1 minute' WHERE id = '{}'",
        id_of(&regs[2])
    ))
    .await;
    let mut conn = app.context.pool().get().await.unwrap();
    let work = jobs::run_due(&mut conn, Utc::now()).await.unwrap();
    assert_eq!(work.offers_expired, 1);
    let late = manager
        .post(
            &format!("{registrations}/{}/accept", id_of(&regs[2])),
            &json!({}),
        )
        .await;
    assert_eq!(late.status, 409);
    let third = manager
        .get(&format!("{registrations}?status=offered"))
        .await;
    assert_eq!(third.body["data"][0]["member_id"], members[3].as_str());
    // Leaving the waitlist is possible; nobody is left on it here.
    let left = manager
        .post(
            &format!("{registrations}/{}/cancel", id_of(&regs[3])),
            &json!({}),
        )
        .await;
    assert_eq!(
        left.body["status"], "cancelled",
        "an offer given up: {}",
        left.text
    );

    // Check-in twice earns the attendance points once.
    let check_in = format!("{registrations}/{}/check-in", id_of(&regs[4]));
    let (one, two) = tokio::join!(
        send(&manager, "POST", check_in.clone(), json!({})),
        send(&manager, "POST", check_in.clone(), json!({}))
    );
    assert_eq!((one.status, two.status), (200, 200));
    assert_eq!(balance(&manager, &members[4]).await["balance"], 140);
    let not_registered = manager
        .post(
            &format!("{registrations}/{}/check-in", id_of(&regs[0])),
            &json!({}),
        )
        .await;
    assert_eq!(not_registered.status, 409);
    assert!(
        not_registered.body["allowed"]
            .as_array()
            .is_none_or(Vec::is_empty)
    );
}

#[actix_web::test]
async fn tiers_go_up_at_once_and_down_one_step_at_the_review_announced_before() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let mut tiers = Vec::new();
    for (name, rank, threshold) in [("Base", 0, 0), ("Silver", 1, 100), ("Golden", 2, 300)] {
        tiers.push(id_of(&manager
            .create("/api/v1/club/tiers", &json!({"name": name, "rank": rank, "qualification": {"metric": "points", "threshold": threshold}}))
            .await));
    }
    let id = id_of(&member(&manager).await);
    earn(&manager, &id, 350).await;
    let golden = manager.get(&format!("/api/v1/club/members/{id}")).await;
    assert_eq!(
        golden.body["tier"]["name"], "Golden",
        "straight to the best tier met"
    );
    // Member reads keep the tiers for a few seconds, but a change made here shows at once.
    let renamed = manager
        .patch(
            &format!("/api/v1/club/tiers/{}", tiers[2]),
            &json!({"name": "Gold"}),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    let gold = manager.get(&format!("/api/v1/club/members/{id}")).await;
    assert_eq!(gold.body["tier"]["name"], "Gold");
    assert_eq!(gold.body["progress"]["to_keep_tier"], 0);
    assert_eq!(gold.body["points"]["balance"], 350);
    // Redeeming never costs the tier: qualifying points are apart.
    points(
        &manager,
        &id,
        json!({"kind": "redeem", "points": 350, "reason": "x"}),
    )
    .await;
    let still = manager.get(&format!("/api/v1/club/members/{id}")).await;
    assert_eq!(still.body["progress"]["qualifying_points"], 350);
    assert_eq!(still.body["progress"]["to_keep_tier"], 0);

    // A review a year out with nothing earned in its window: announced 14 days before, then
    // one step down (Silver, not Base).
    app.execute(&format!(
        "UPDATE club_members SET tier_review_at = now() + interval '13 months' WHERE id = '{id}'"
    ))
    .await;
    let review = Utc::now() + Duration::days(395);
    let mut conn = app.context.pool().get().await.unwrap();
    let early = jobs::run_due(&mut conn, review - Duration::days(30))
        .await
        .unwrap();
    assert_eq!(early.downgrades_noticed, 0);
    let notice = jobs::run_due(&mut conn, review - Duration::days(10))
        .await
        .unwrap();
    assert_eq!(notice.downgrades_noticed, 1);
    let again = jobs::run_due(&mut conn, review - Duration::days(9))
        .await
        .unwrap();
    assert_eq!(again.downgrades_noticed, 0, "once per review");
    let events = app.events_of(&id).await;
    assert!(events.iter().any(
        |(t, d)| t == "member.tier_downgrade_pending" && d["would_become"]["name"] == "Silver"
    ));
    let done = jobs::run_due(&mut conn, review + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(done.tiers_reviewed, 1);
    let lowered = manager.get(&format!("/api/v1/club/members/{id}")).await;
    assert_eq!(lowered.body["tier"]["name"], "Silver");
    let history = manager
        .get(&format!("/api/v1/club/members/{id}/tier-changes"))
        .await;
    let reasons: Vec<&str> = history.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, vec!["qualified", "review"]);
    assert_eq!(
        app.events_of(&id)
            .await
            .iter()
            .filter(|(t, _)| t == "member.tier_changed")
            .count(),
        2
    );
}

#[actix_web::test]
async fn the_expiry_job_expires_lapsed_lots_once_under_two_runners() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let mut members = Vec::new();
    for _ in 0..6 {
        let id = id_of(&member(&manager).await);
        earn(&manager, &id, 10).await;
        earn(&manager, &id, 5).await;
        members.push(id);
    }
    app.execute(
        "UPDATE points_lots SET expires_at = now() - interval '1 minute' WHERE points = 10",
    )
    .await;
    let (mut one, mut two) = (
        app.context.pool().get().await.unwrap(),
        app.context.pool().get().await.unwrap(),
    );
    let now = Utc::now();
    let (a, b) = tokio::join!(
        jobs::expire_lots(&mut one, now),
        jobs::expire_lots(&mut two, now)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 6);
    for id in &members {
        assert_eq!(balance(&manager, id).await["balance"], 5);
        let expired = manager
            .get(&format!("/api/v1/club/members/{id}/points?kind=expire"))
            .await;
        assert_eq!(expired.body["data"].as_array().unwrap().len(), 1);
        assert_eq!(expired.body["data"][0]["points"], -10);
        assert_eq!(expired.body["data"][0]["balance_after"], 5);
        ledger_adds_up(&app, id).await;
    }
    assert_eq!(jobs::expire_lots(&mut one, Utc::now()).await.unwrap(), 0);
}

#[actix_web::test]
async fn one_expiry_run_writes_one_entry_per_member_however_its_lots_are_batched() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let id = id_of(&member(&manager).await);
    for points in [3, 4, 5, 6] {
        earn(&manager, &id, points).await;
    }
    app.execute(
        "UPDATE points_lots SET expires_at = now() - interval '1 minute' WHERE points <> 6",
    )
    .await;
    let mut conn = app.context.pool().get().await.unwrap();
    let now = Utc::now();
    // Batches of one lot: a batch that cut the member's lots would write an entry per part.
    let mut lots = 0;
    loop {
        let (expired, _) = rapport::club::ledger::expire_batch(&mut conn, now, 1)
            .await
            .unwrap();
        if expired == 0 {
            break;
        }
        lots += expired;
    }
    assert_eq!(lots, 3);
    let expired = manager
        .get(&format!("/api/v1/club/members/{id}/points?kind=expire"))
        .await;
    let entries = expired.body["data"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["points"], -12);
    assert_eq!(entries[0]["balance_after"], 6);
    ledger_adds_up(&app, &id).await;
}

#[actix_web::test]
async fn the_ledger_lists_entries_in_the_order_they_took_effect_and_balances_chain() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let (id, customer) = member_earning_per_yuan(&manager).await;
    earn(&manager, &id, 500).await;
    let mut orders = Vec::new();
    for i in 0..3 {
        orders.push(id_of(
            &order(&manager, &customer, &format!("C-{i}"), 3_000, &["shoes"]).await,
        ));
    }
    let redeems = join_all((0..12).map(|_| {
        points(
            &manager,
            &id,
            json!({"kind": "redeem", "points": 7, "reason": "till"}),
        )
    }));
    let refunds = join_all(orders.iter().map(|o| {
        send(
            &manager,
            "PATCH",
            format!("/api/v1/orders/{o}"),
            json!({"status": "refunded"}),
        )
    }));
    let (redeemed, refunded) = tokio::join!(redeems, refunds);
    assert!(
        redeemed.iter().all(|r| r.status == 201),
        "enough points for all"
    );
    assert!(refunded.iter().all(|r| r.status == 200));
    let mut entries = app
        .walk_pages(
            &format!("/api/v1/club/members/{id}/points?limit=5"),
            Some(&manager.token),
            100,
        )
        .await;
    entries.reverse();
    assert_eq!(
        entries.len(),
        1 + 3 + 12 + 3,
        "earn, order earnings, redemptions, reversals"
    );
    let mut balance = 0;
    for entry in &entries {
        balance += entry["points"].as_i64().unwrap();
        assert_eq!(
            entry["balance_after"].as_i64().unwrap(),
            balance,
            "out of the order of effect at {entry}"
        );
    }
    ledger_adds_up(&app, &id).await;
}

#[actix_web::test]
async fn parallel_earn_redeem_expire_and_refund_on_one_member_keep_the_ledger_whole() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let (id, customer) = member_earning_per_yuan(&manager).await;
    let mut orders = Vec::new();
    for i in 0..4 {
        orders.push(id_of(
            &order(&manager, &customer, &format!("P-{i}"), 2_000, &["shoes"]).await,
        ));
    }
    app.execute(&format!(
        "UPDATE points_lots SET expires_at = now() - interval '1 minute' WHERE order_id = '{}'",
        orders[0]
    ))
    .await;
    let mut conn = app.context.pool().get().await.unwrap();
    let earns = join_all((0..10).map(|_| {
        points(
            &manager,
            &id,
            json!({"kind": "earn", "points": 3, "reason": "p"}),
        )
    }));
    let redeems = join_all((0..10).map(|_| {
        points(
            &manager,
            &id,
            json!({"kind": "redeem", "points": 4, "reason": "p"}),
        )
    }));
    let refunds = join_all(orders[1..].iter().map(|o| {
        send(
            &manager,
            "PATCH",
            format!("/api/v1/orders/{o}"),
            json!({"status": "refunded"}),
        )
    }));
    let (earned, redeemed, refunded, expired) = tokio::join!(
        earns,
        redeems,
        refunds,
        jobs::expire_lots(&mut conn, Utc::now())
    );
    assert!(earned.iter().all(|r| r.status == 201));
    assert!(redeemed.iter().all(|r| r.status == 201 || r.status == 409));
    assert!(refunded.iter().all(|r| r.status == 200));
    expired.unwrap();
    jobs::expire_lots(&mut conn, Utc::now()).await.unwrap();
    ledger_adds_up(&app, &id).await;
    let now = balance(&manager, &id).await;
    let lots = app
        .count(&format!("SELECT coalesce(sum(remaining), 0)::bigint AS count FROM points_lots WHERE member_id = '{id}'"))
        .await;
    assert_eq!(
        now["balance"].as_i64().unwrap() + now["pending"].as_i64().unwrap(),
        lots
    );
}

#[actix_web::test]
async fn a_referral_pays_the_referrer_once_when_the_first_order_is_paid() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    manager
        .create(
            "/api/v1/club/rules",
            &json!({"name": "Thanks for the referral", "kind": "referral", "points": 200}),
        )
        .await;
    let referrer = id_of(&member(&manager).await);
    let friend = id_of(&manager.customer(json!({})).await);
    let referral = manager
        .create(
            "/api/v1/club/referrals",
            &json!({"referrer_member_id": referrer, "customer_id": friend, "note": "Colleague"}),
        )
        .await;
    assert_eq!(referral["status"], "pending");
    let marked = manager.get(&format!("/api/v1/customers/{friend}")).await;
    assert!(
        marked.body["tags"]
            .as_array()
            .unwrap()
            .contains(&json!("referred"))
    );
    let twice = manager
        .post(
            "/api/v1/club/referrals",
            &json!({"referrer_member_id": referrer, "customer_id": friend}),
        )
        .await;
    assert_eq!(twice.status, 409);
    order(&manager, &friend, "F-1", 1_000, &["shoes"]).await;
    order(&manager, &friend, "F-2", 1_000, &["shoes"]).await;
    assert_eq!(balance(&manager, &referrer).await["balance"], 200);
    let done = manager
        .get(&format!("/api/v1/club/referrals/{}", id_of(&referral)))
        .await;
    assert_eq!(done.body["status"], "rewarded");
    let buyer = manager
        .post("/api/v1/club/referrals", &json!({"referrer_member_id": referrer, "customer_id": manager.customer(json!({})).await["id"]}))
        .await;
    assert_eq!(
        buyer.status, 201,
        "a new customer can be referred: {}",
        buyer.text
    );
}

/// A complaint about the customer, worked up to `in_progress`.
async fn in_progress(client: &Client<'_>, customer: &str) -> String {
    let id = id_of(&client.complaint(customer, json!({})).await);
    for to in ["acknowledged", "in_progress"] {
        let moved = client
            .post(
                &format!("/api/v1/complaints/{id}/transitions"),
                &json!({"to": to}),
            )
            .await;
        assert_eq!(moved.status, 200, "{}", moved.text);
    }
    id
}

#[actix_web::test]
async fn complaint_compensation_in_points_is_credited_in_the_resolution() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let enrolled = member(&manager).await;
    let (id, customer) = (
        id_of(&enrolled),
        enrolled["customer_id"].as_str().unwrap().to_owned(),
    );
    let resolution = json!({"type": "replace", "description": "New pair", "root_cause_category": "supplier",
        "root_cause": "Glue", "corrective_action": "Checks"});
    let complaint = in_progress(&manager, &customer).await;
    let resolved = manager
        .post(&format!("/api/v1/complaints/{complaint}/resolve"),
            &json!({"resolution": resolution, "compensation": {"kind": "points", "points": 300, "description": "Sorry"}}))
        .await;
    assert_eq!(resolved.status, 200, "{}", resolved.text);
    assert_eq!(balance(&manager, &id).await["balance"], 300);

    // No membership: refused, and the complaint stays unresolved.
    let stranger = id_of(&manager.customer(json!({})).await);
    let other = in_progress(&manager, &stranger).await;
    let refused = manager
        .post(&format!("/api/v1/complaints/{other}/resolve"),
            &json!({"resolution": resolution, "compensation": {"kind": "points", "points": 300, "description": "Sorry"}}))
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.error_fields(), vec!["compensation.kind"]);
    let still = manager.get(&format!("/api/v1/complaints/{other}")).await;
    assert_ne!(still.body["status"], "resolved");
}

#[actix_web::test]
async fn greetings_list_birthdays_and_anniversaries_coming_up() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let soon = (Utc::now() + Duration::days(3)).date_naive();
    let birthday = soon.with_year(1990).unwrap_or(soon);
    let customer = id_of(&manager.customer(json!({"birthday": birthday.to_string(),
        "important_dates": [{"label": "Wedding anniversary", "date": (Utc::now() + Duration::days(40)).date_naive().with_year(2015).unwrap().to_string()}]})).await);
    let enrolled = manager
        .create("/api/v1/club/members", &json!({"customer_id": customer}))
        .await;
    let week = manager.get("/api/v1/club/greetings?within=7d").await;
    assert_eq!(week.status, 200, "{}", week.text);
    let mine: Vec<&Value> = week.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["member_id"] == enrolled["id"])
        .collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["occasion"], "birthday");
    assert_eq!(mine[0]["falls_on"], soon.to_string());
    let later = manager.get("/api/v1/club/greetings?within=60d").await;
    assert!(
        later.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["member_id"] == enrolled["id"] && g["occasion"] == "important_date")
    );
    let bad = manager.get("/api/v1/club/greetings?within=0d").await;
    assert_eq!(bad.status, 400);
}

#[actix_web::test]
async fn erasing_a_member_keeps_the_ledgers_sums_and_blanks_its_texts() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let enrolled = member(&manager).await;
    let (id, customer) = (
        id_of(&enrolled),
        enrolled["customer_id"].as_str().unwrap().to_owned(),
    );
    points(
        &manager,
        &id,
        json!({"kind": "earn", "points": 70, "reason": "Gift for Xiaoming-7731"}),
    )
    .await;
    let admin = app.client(Role::Admin).await;
    conformance::erase_reaches_everything(&admin, &customer, &["Xiaoming-7731"]).await;
    // A referred customer's erasure blanks the referral's note.
    let referrer = id_of(&member(&manager).await);
    let friend = id_of(&manager.customer(json!({})).await);
    manager
        .create("/api/v1/club/referrals", &json!({"referrer_member_id": referrer, "customer_id": friend, "note": "Cousin Lihua-5512"}))
        .await;
    conformance::erase_reaches_everything(&admin, &friend, &["Lihua-5512"]).await;
    assert_eq!(balance(&manager, &id).await["balance"], 70);
    ledger_adds_up(&app, &id).await;
}

#[actix_web::test]
async fn managers_run_the_club_and_the_lists_page() {
    let app = TestApp::spawn().await;
    let agent = app.client(Role::Agent).await;
    let manager = app.client(Role::Manager).await;
    let refused = agent
        .post(
            "/api/v1/club/rules",
            &json!({"name": "x", "kind": "purchase"}),
        )
        .await;
    assert_eq!(refused.status, 403);
    let tier = manager
        .create("/api/v1/club/tiers", &json!({"name": "Base", "rank": 0, "qualification": {"metric": "spend", "threshold": 0}}))
        .await;
    let taken = manager
        .post("/api/v1/club/tiers", &json!({"name": "Other", "rank": 0, "qualification": {"metric": "spend", "threshold": 0}}))
        .await;
    assert_eq!(taken.status, 409);
    conformance::stale_if_match_is_refused(
        &manager,
        &format!("/api/v1/club/tiers/{}", id_of(&tier)),
        &json!({"name": "Entry"}),
    )
    .await;
    let settings = manager.get("/api/v1/club/settings").await;
    assert_eq!(settings.body["expiry_months"], 12);
    conformance::stale_if_match_is_refused(
        &manager,
        "/api/v1/club/settings",
        &json!({"expiry_policy": "end_of_following_year"}),
    )
    .await;
    let ids: std::collections::HashSet<String> = {
        let mut ids = std::collections::HashSet::new();
        for _ in 0..5 {
            ids.insert(id_of(&member(&manager).await));
        }
        ids
    };
    conformance::list_walk_visits_every_row_once(
        &manager,
        "/api/v1/club/members?limit=2",
        &ids,
        async || {
            member(&manager).await;
        },
    )
    .await;
    conformance::failed_write_emits_nothing(&app, async || {
        manager
            .post(
                "/api/v1/club/members",
                &json!({"customer_id": uuid::Uuid::now_v7()}),
            )
            .await
    })
    .await;
}

#[actix_web::test]
async fn the_ledger_reads_and_the_expiry_job_use_their_indexes_at_100k_members() {
    use diesel::sql_types::{BigInt, Timestamptz, Uuid as SqlUuid};
    use rapport::club::ledger::{BALANCES_SQL, EXPIRE_SQL};
    use rapport::db::Explain;
    let app = TestApp::spawn().await;
    app.execute(
        "INSERT INTO customers (id, display_name, created_at) \
         SELECT gen_random_uuid(), 'c' || i, now() - i * interval '1 minute' FROM generate_series(1, 100000) i",
    )
    .await;
    app.execute(
        "INSERT INTO club_members (id, customer_id, member_number, status, joined_at) \
         SELECT gen_random_uuid(), id, 'B' || row_number() OVER (), 'active', created_at FROM customers",
    )
    .await;
    app.execute(
        "INSERT INTO points_entries (id, member_id, kind, points, balance_after, reason, actor_type, created_at) \
         SELECT gen_random_uuid(), m.id, 'earn', 100, 100, 'seed', 'system', m.joined_at + n * interval '1 day' \
         FROM club_members m CROSS JOIN generate_series(1, 2) n",
    )
    .await;
    // One lot in a hundred has lapsed.
    app.execute(
        "INSERT INTO points_lots (id, member_id, entry_id, points, remaining, available_at, expires_at) \
         SELECT gen_random_uuid(), member_id, id, 100, 100, created_at, \
                CASE WHEN abs(hashtext(id::text)) % 100 = 0 THEN now() - interval '1 day' ELSE now() + interval '1 year' END \
         FROM points_entries",
    )
    .await;
    for table in ["club_members", "points_entries", "points_lots"] {
        app.execute(&format!("ANALYZE {table}")).await;
    }
    let member: uuid::Uuid = {
        let mut conn = app.context.pool().get().await.unwrap();
        #[derive(diesel::QueryableByName)]
        struct Id {
            #[diesel(sql_type = SqlUuid)]
            id: uuid::Uuid,
        }
        diesel_async::RunQueryDsl::get_result::<Id>(
            diesel::sql_query("SELECT id FROM club_members LIMIT 1"),
            &mut conn,
        )
        .await
        .unwrap()
        .id
    };
    let mut conn = app.context.pool().get().await.unwrap();
    let balances = diesel::sql_query(BALANCES_SQL)
        .bind::<SqlUuid, _>(member)
        .bind::<Timestamptz, _>(Utc::now());
    let ledger = diesel::sql_query(
        "SELECT id FROM points_entries WHERE member_id = $1 ORDER BY created_at DESC, id DESC LIMIT 51",
    )
    .bind::<SqlUuid, _>(member);
    let year_ago = Utc::now() - Duration::days(365);
    let standing = |review_from: Option<chrono::DateTime<Utc>>| {
        diesel::sql_query(rapport::club::tiers::STANDING_SQL)
            .bind::<SqlUuid, _>(member)
            .bind::<SqlUuid, _>(member)
            .bind::<Timestamptz, _>(Utc::now())
            .bind::<Timestamptz, _>(year_ago)
            .bind::<diesel::sql_types::Nullable<Timestamptz>, _>(review_from)
    };
    let expiry = diesel::sql_query(EXPIRE_SQL)
        .bind::<Timestamptz, _>(Utc::now())
        .bind::<BigInt, _>(20_000_i64);
    let plans = [
        (
            "balances",
            diesel_async::RunQueryDsl::load::<String>(Explain::plan(balances), &mut conn)
                .await
                .unwrap(),
            "points_lots_member_idx",
        ),
        (
            "ledger",
            diesel_async::RunQueryDsl::load::<String>(Explain::plan(ledger), &mut conn)
                .await
                .unwrap(),
            "points_entries_member_idx",
        ),
        (
            "member standing",
            diesel_async::RunQueryDsl::load::<String>(
                Explain::plan(standing(Some(year_ago))),
                &mut conn,
            )
            .await
            .unwrap(),
            "points_entries_member_idx",
        ),
        (
            "member standing, no tier to keep",
            diesel_async::RunQueryDsl::load::<String>(Explain::plan(standing(None)), &mut conn)
                .await
                .unwrap(),
            "points_entries_member_idx",
        ),
        (
            "expiry",
            diesel_async::RunQueryDsl::load::<String>(Explain::plan(expiry), &mut conn)
                .await
                .unwrap(),
            "points_lots_lapse_idx",
        ),
    ];
    for (name, lines, index) in plans {
        let text = lines.join("\n");
        assert!(text.contains(index), "{name} should use {index}:\n{text}");
        assert!(!text.contains("Seq Scan on points_"), "{name}:\n{text}");
        assert!(
            !text.contains("Seq Scan on club_members"),
            "{name}:\n{text}"
        );
    }
    // The member read keeps its statement prepared: it must settle on its generic plan, or
    // every read pays for planning it (members without a tier to keep, whose review window
    // is `NULL`, first: the plans made for them are the cheapest).
    crate::common::assert_runs_on_its_generic_plan(&mut conn, "AS kept_points", || standing(None))
        .await;
    crate::common::assert_runs_on_its_generic_plan(&mut conn, "AS kept_points", || {
        standing(Some(year_ago))
    })
    .await;
    let (lots, _) = rapport::club::ledger::expire_batch(&mut conn, Utc::now(), 20_000)
        .await
        .unwrap();
    assert!(lots > 1000, "the lapsed lots expire: {lots}");
}

#[actix_web::test]
async fn a_merge_folds_the_duplicates_points_into_the_survivor_and_later_refunds_reverse_there() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    manager
        .create(
            "/api/v1/club/rules",
            &json!({"name": "Per yuan", "kind": "purchase"}),
        )
        .await;
    let (survivor, duplicate) = (member(&manager).await, member(&manager).await);
    let customer_of = |m: &Value| m["customer_id"].as_str().unwrap().to_owned();
    let old = order(&manager, &customer_of(&duplicate), "M-1", 5_000, &["shoes"]).await;
    order(&manager, &customer_of(&survivor), "M-2", 2_000, &["shoes"]).await;
    let spent = points(
        &manager,
        &id_of(&duplicate),
        json!({"kind": "redeem", "points": 10, "reason": "x"}),
    )
    .await;
    assert_eq!(spent.status, 201);
    let merged = manager
        .post("/api/v1/customers/merge", &json!({"survivor_id": customer_of(&survivor), "duplicate_id": customer_of(&duplicate)}))
        .await;
    assert_eq!(merged.status, 200, "{}", merged.text);
    assert_eq!(
        balance(&manager, &id_of(&survivor)).await["balance"],
        20 + 40
    );
    let folded = manager
        .get(&format!("/api/v1/club/members/{}", id_of(&duplicate)))
        .await;
    assert_eq!(folded.body["status"], "cancelled");
    assert_eq!(folded.body["points"]["balance"], 0);
    // The duplicate's order, refunded after the merge, is reversed on the survivor.
    let refunded = manager
        .patch(
            &format!("/api/v1/orders/{}", id_of(&old)),
            &json!({"status": "refunded"}),
        )
        .await;
    assert_eq!(refunded.status, 200, "{}", refunded.text);
    let after = balance(&manager, &id_of(&survivor)).await;
    assert_eq!(
        (after["balance"].as_i64(), after["owed"].as_i64()),
        (Some(20), Some(10))
    );
    ledger_adds_up(&app, &id_of(&survivor)).await;
    ledger_adds_up(&app, &id_of(&duplicate)).await;
}

/// Goodwill points are club writes: a key needs `club:write`, and an agent grants at most
/// the club's cap over all of a complaint's resolutions; a manager may grant more.
#[actix_web::test]
async fn goodwill_points_need_the_clubs_right_and_an_agents_are_capped() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let agent = app.client(Role::Agent).await;
    let enrolled = member(&manager).await;
    let (id, customer) = (
        id_of(&enrolled),
        enrolled["customer_id"].as_str().unwrap().to_owned(),
    );
    let resolve = |points: i64| {
        json!({"resolution": {"type": "replace", "description": "New pair", "root_cause_category": "supplier",
            "root_cause": "Glue", "corrective_action": "Checks"},
            "compensation": {"kind": "points", "points": points, "description": "Sorry"}})
    };

    // A key with complaints:write alone cannot mint points; nothing is resolved.
    let key = app
        .key_client(&["complaints:read", "complaints:write"])
        .await;
    let complaint = in_progress(&manager, &customer).await;
    let refused = key
        .post(
            &format!("/api/v1/complaints/{complaint}/resolve"),
            &resolve(10),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(balance(&manager, &id).await["balance"], 0);
    let granted = app
        .key_client(&["complaints:read", "complaints:write", "club:write"])
        .await
        .post(
            &format!("/api/v1/complaints/{complaint}/resolve"),
            &resolve(10),
        )
        .await;
    assert_eq!(granted.status, 200, "{}", granted.text);

    // An agent's complaint: 600 is over the default cap of 500; 400 then 100 is within it,
    // and another 1 after a reopen is over it.
    let mine = id_of(&agent.complaint(&customer, json!({})).await);
    for to in ["acknowledged", "in_progress"] {
        let moved = agent
            .post(
                &format!("/api/v1/complaints/{mine}/transitions"),
                &json!({"to": to}),
            )
            .await;
        assert_eq!(moved.status, 200, "{}", moved.text);
    }
    let path = format!("/api/v1/complaints/{mine}");
    let over = agent.post(&format!("{path}/resolve"), &resolve(600)).await;
    assert_eq!(over.status, 403, "{}", over.text);
    assert!(over.text.contains("500"), "{}", over.text);
    let within = agent.post(&format!("{path}/resolve"), &resolve(400)).await;
    assert_eq!(within.status, 200, "{}", within.text);
    for to in ["reopened", "in_progress"] {
        let moved = agent
            .post(&format!("{path}/transitions"), &json!({"to": to}))
            .await;
        assert_eq!(moved.status, 200, "{}", moved.text);
    }
    let rest = agent.post(&format!("{path}/resolve"), &resolve(101)).await;
    assert_eq!(rest.status, 403, "{}", rest.text);
    let exact = agent.post(&format!("{path}/resolve"), &resolve(100)).await;
    assert_eq!(exact.status, 200, "{}", exact.text);
    assert_eq!(balance(&manager, &id).await["balance"], 510);

    // The cap is a club setting; managers grant beyond it.
    let raised = manager
        .patch(
            "/api/v1/club/settings",
            &json!({"goodwill_points_per_complaint": 50}),
        )
        .await;
    assert_eq!(raised.status, 200, "{}", raised.text);
    assert_eq!(raised.body["goodwill_points_per_complaint"], 50);
    let big = in_progress(&manager, &customer).await;
    let by_manager = manager
        .post(&format!("/api/v1/complaints/{big}/resolve"), &resolve(5000))
        .await;
    assert_eq!(by_manager.status, 200, "{}", by_manager.text);
}
