//! Complaints over HTTP: the kit's conformance checks, the workflow, clocks on calendars and
//! policies, the escalation job under two runners, resolution with compensation (atomic),
//! satisfaction per cycle, standard answers, the report, and the customer hooks.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use rapport::auth::Role;
use rapport::complaints::escalation;
use rapport::complaints::requests::{ComplaintFilters, list_query};
use rapport::db::Explain;
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::kit::{Client, conformance, id_of};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn time_of(value: &Value) -> DateTime<Utc> {
    at(value.as_str().expect("a time"))
}

/// The clock of `metric` in a complaint's `sla`.
fn clock<'v>(complaint: &'v Value, metric: &str) -> &'v Value {
    complaint["sla"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["metric"] == metric)
        .unwrap_or_else(|| panic!("no {metric} clock in {complaint}"))
}

async fn move_to(client: &Client<'_>, id: &str, to: &str) -> Value {
    let res = client
        .post(
            &format!("/api/v1/complaints/{id}/transitions"),
            &json!({"to": to}),
        )
        .await;
    assert_eq!(res.status, 200, "→ {to}: {}", res.text);
    res.body
}

fn resolution() -> Value {
    json!({"resolution": {"type": "replace", "description": "New pair sent", "root_cause_category": "supplier",
        "root_cause": "Glue batch", "corrective_action": "Incoming checks on glue"}})
}

/// A complaint worked to `in_progress`.
async fn in_progress(client: &Client<'_>, customer: &str) -> String {
    let id = id_of(&client.complaint(customer, json!({})).await);
    move_to(client, &id, "acknowledged").await;
    move_to(client, &id, "in_progress").await;
    id
}

#[actix_web::test]
async fn complaints_meet_the_conformance_checks() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let customer = id_of(&manager.customer(json!({})).await);
    let complaint = manager.complaint(&customer, json!({})).await;
    let id = id_of(&complaint);
    let path = format!("/api/v1/complaints/{id}");
    conformance::write_emitted(&app, &id, "complaint.created").await;
    conformance::stale_if_match_is_refused(&manager, &path, &json!({"subject": "Changed"})).await;
    conformance::write_emitted(&app, &id, "complaint.updated").await;
    // Unassigned, so no agent's to change.
    conformance::agents_cannot_write_anothers(&app, &path, &json!({"subject": "x"})).await;
    conformance::post_replays_under_idempotency_key(
        &manager,
        "/api/v1/complaints",
        &json!({"customer_id": customer, "channel": "email", "category": "delivery", "severity": "low",
            "subject": "Late", "description": "Two weeks late"}),
    )
    .await;
    conformance::failed_write_emits_nothing(&app, async || {
        manager
            .post(
                &format!("/api/v1/complaints/{id}/transitions"),
                &json!({"to": "closed"}),
            )
            .await
    })
    .await;
    let mut expected = HashSet::new();
    for _ in 0..5 {
        expected.insert(id_of(&manager.complaint(&customer, json!({})).await));
    }
    conformance::list_walk_visits_every_row_once(
        &manager,
        &format!("/api/v1/complaints?limit=2&customer_id={customer}"),
        &expected,
        async || {
            manager.complaint(&customer, json!({})).await;
        },
    )
    .await;
    let other = id_of(&manager.customer(json!({})).await);
    let mut logged = Vec::new();
    for _ in 0..3 {
        logged.push(id_of(&manager.complaint(&other, json!({})).await));
    }
    let list = format!("/api/v1/complaints?customer_id={other}");
    conformance::sorts_both_ways(&manager, &list, "created_at", &logged).await;
}

#[actix_web::test]
async fn the_workflow_runs_its_moves_and_refuses_others_with_the_allowed_ones() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let customer = id_of(&manager.customer(json!({})).await);
    let created = manager.complaint(&customer, json!({})).await;
    assert_eq!(created["status"], "new");
    assert_eq!(created["customer_status_label"], "received");
    let id = id_of(&created);
    let illegal = manager
        .post(
            &format!("/api/v1/complaints/{id}/transitions"),
            &json!({"to": "in_progress"}),
        )
        .await;
    assert_eq!(illegal.status, 409, "{}", illegal.text);
    assert_eq!(illegal.body["allowed"], json!(["acknowledged"]));
    move_to(&manager, &id, "acknowledged").await;
    move_to(&manager, &id, "in_progress").await;
    let waiting = move_to(&manager, &id, "awaiting_customer").await;
    assert_eq!(waiting["customer_status_label"], "waiting_for_you");
    move_to(&manager, &id, "in_progress").await;
    let through_transitions = manager
        .post(
            &format!("/api/v1/complaints/{id}/transitions"),
            &json!({"to": "resolved"}),
        )
        .await;
    assert_eq!(through_transitions.status, 409);
    assert_eq!(through_transitions.error_fields(), ["to"]);
    let resolved = manager
        .post(&format!("/api/v1/complaints/{id}/resolve"), &resolution())
        .await;
    assert_eq!(resolved.status, 200, "{}", resolved.text);
    assert_eq!(resolved.body["status"], "resolved");
    assert_eq!(
        resolved.body["resolution"]["root_cause_category"],
        "supplier"
    );
    move_to(&manager, &id, "closed").await;
    let reopened = move_to(&manager, &id, "reopened").await;
    assert_eq!(reopened["reopen_count"], 1);
    assert_eq!(reopened["cycle"], 2);
    assert_eq!(
        reopened["resolution"],
        Value::Null,
        "a new cycle has no resolution yet"
    );
    move_to(&manager, &id, "in_progress").await;
    let events: Vec<String> = app.events_of(&id).await.into_iter().map(|e| e.0).collect();
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "complaint.status_changed")
            .count(),
        7
    );
    assert!(events.contains(&"complaint.resolved".to_owned()));
    let note = manager
        .post(
            &format!("/api/v1/complaints/{id}/transitions"),
            &json!({"to": "awaiting_customer", "note": "Asked for photos"}),
        )
        .await;
    assert_eq!(note.status, 200);
    let comments = manager
        .get(&format!("/api/v1/complaints/{id}/comments"))
        .await;
    assert_eq!(comments.body["data"][0]["body"], "Asked for photos");
    assert_eq!(comments.body["data"][0]["visibility"], "internal");
}

#[actix_web::test]
async fn bad_input_is_a_clear_422_or_409() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let customer = id_of(&manager.customer(json!({})).await);
    let other = id_of(&manager.customer(json!({})).await);
    let bad = manager
        .post(
            "/api/v1/complaints",
            &json!({"customer_id": customer, "channel": "fax", "category": "delivery",
            "severity": "low", "subject": " ", "description": "x"}),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    let blank = manager
        .post(
            "/api/v1/complaints",
            &json!({"customer_id": customer, "channel": "email", "category": "delivery",
            "severity": "low", "subject": " ", "description": "x"}),
        )
        .await;
    assert_eq!(blank.status, 422);
    assert_eq!(blank.error_fields(), ["subject"]);
    let future = manager
        .post("/api/v1/complaints", &json!({"customer_id": customer, "channel": "email", "category": "delivery",
            "severity": "low", "subject": "s", "description": "d", "received_at": "2099-11-20T10:00:00Z"}))
        .await;
    assert_eq!(future.status, 422);
    assert_eq!(future.error_fields(), ["received_at"]);
    let mixed = manager
        .post(
            "/api/v1/complaints/00000000-0000-0000-0000-000000000000/resolve",
            &json!({"resolution": resolution()["resolution"],
            "compensation": {"kind": "gift", "points": 5, "description": "x"}}),
        )
        .await;
    assert_eq!(mixed.status, 422, "a gift has no points: {}", mixed.text);
    let order = manager.order(&other, "O-1", 1000).await;
    let foreign_order = manager
        .post(
            "/api/v1/complaints",
            &json!({"customer_id": customer, "channel": "email", "category": "delivery",
            "severity": "low", "subject": "s", "description": "d", "order_id": id_of(&order)}),
        )
        .await;
    assert_eq!(foreign_order.status, 409);
    assert_eq!(foreign_order.error_fields(), ["order_id"]);
    let own_order = manager.order(&customer, "O-2", 1000).await;
    let about_order = manager
        .complaint(&customer, json!({"order_id": id_of(&own_order)}))
        .await;
    assert_eq!(about_order["order_id"], own_order["id"]);
    let nobody = manager
        .post(
            "/api/v1/complaints",
            &json!({"customer_id": uuid::Uuid::now_v7(), "channel": "email",
            "category": "delivery", "severity": "low", "subject": "s", "description": "d"}),
        )
        .await;
    assert_eq!(nobody.status, 409);
    assert_eq!(nobody.error_fields(), ["customer_id"]);
}

#[actix_web::test]
async fn agents_log_complaints_for_themselves_and_change_only_theirs() {
    let app = TestApp::spawn().await;
    let agent = app.client(Role::Agent).await;
    let manager = app.client(Role::Manager).await;
    let customer = id_of(&manager.customer(json!({})).await);
    let own = agent.complaint(&customer, json!({})).await;
    assert_eq!(own["assignee_id"], agent.user_id.unwrap().to_string());
    let id = id_of(&own);
    move_to(&agent, &id, "acknowledged").await;
    let give_away = agent
        .patch(
            &format!("/api/v1/complaints/{id}"),
            &json!({"assignee_id": manager.user_id}),
        )
        .await;
    assert_eq!(give_away.status, 403, "{}", give_away.text);
    let theirs = manager.complaint(&customer, json!({})).await;
    let refused = agent
        .post(
            &format!("/api/v1/complaints/{}/comments", id_of(&theirs)),
            &json!({"visibility": "public", "body": "hi"}),
        )
        .await;
    assert_eq!(refused.status, 403);
    let assigned = manager
        .patch(
            &format!("/api/v1/complaints/{}", id_of(&theirs)),
            &json!({"assignee_id": agent.user_id}),
        )
        .await;
    assert_eq!(assigned.status, 200, "{}", assigned.text);
    let now_theirs = agent
        .post(
            &format!("/api/v1/complaints/{}/comments", id_of(&theirs)),
            &json!({"visibility": "internal", "body": "on it"}),
        )
        .await;
    assert_eq!(now_theirs.status, 201);
    let queue = agent
        .get(&format!(
            "/api/v1/complaints?assignee_id={}&status=new",
            agent.user_id.unwrap()
        ))
        .await;
    assert_eq!(queue.body["data"].as_array().unwrap().len(), 1);
}

/// Working hours Monday to Friday 09:00–12:00 and 13:00–18:00 UTC, with a holiday.
async fn office_calendar(manager: &Client<'_>, holidays: &[&str]) -> String {
    let mut hours = Vec::new();
    for day in ["monday", "tuesday", "wednesday", "thursday", "friday"] {
        hours.push(json!({"day": day, "start": "09:00", "end": "12:00"}));
        hours.push(json!({"day": day, "start": "13:00", "end": "18:00"}));
    }
    let calendar = manager
        .create(
            "/api/v1/business-calendars",
            &json!({"name": "Office", "time_zone": "UTC", "hours": hours, "holidays": holidays}),
        )
        .await;
    id_of(&calendar)
}

#[actix_web::test]
async fn clocks_count_business_hours_across_a_weekend_a_lunch_break_and_a_holiday() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let calendar = office_calendar(&manager, &["2026-12-01"]).await;
    manager
        .create(
            "/api/v1/complaint-sla-policies",
            &json!({"name": "All", "position": 1, "first_response_minutes": 120, "resolution_minutes": 600, "calendar_id": calendar}),
        )
        .await;
    let customer = id_of(&manager.customer(json!({})).await);
    // Received on Friday 27 November at 17:00.
    let complaint = manager
        .complaint(
            &customer,
            json!({"channel": "mailbox", "received_at": "2026-11-27T17:00:00Z"}),
        )
        .await;
    // 1 h on Friday, 1 h on Monday morning.
    assert_eq!(
        time_of(&clock(&complaint, "first_response")["due_at"]),
        at("2026-11-30T10:00:00Z")
    );
    // 1 h Friday, 8 h Monday (lunch left out), Tuesday a holiday, 1 h Wednesday.
    assert_eq!(
        time_of(&clock(&complaint, "resolution")["due_at"]),
        at("2026-12-02T10:00:00Z")
    );
    assert_eq!(
        clock(&complaint, "first_response")["breached"],
        true,
        "Monday has passed"
    );
    let overdue = manager
        .get(&format!(
            "/api/v1/complaints?overdue=true&customer_id={customer}"
        ))
        .await;
    assert_eq!(overdue.body["data"].as_array().unwrap().len(), 1);
    // An invalid calendar is refused with every problem named (18:00 to 09:00 is a night
    // shift, not a problem).
    let bad = manager
        .post("/api/v1/business-calendars", &json!({"name": "", "time_zone": "Mars/Olympus",
            "hours": [{"day": "monday", "start": "18:00", "end": "09:00"}, {"day": "monday", "start": "9:00", "end": "10:00"}]}))
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    let fields: HashSet<&str> = bad.error_fields().into_iter().collect();
    assert_eq!(
        fields,
        HashSet::from(["name", "time_zone", "hours[1].start"])
    );
    let in_use = manager
        .delete(&format!("/api/v1/business-calendars/{calendar}"))
        .await;
    assert_eq!(in_use.status, 409);
}

#[actix_web::test]
async fn policies_match_in_order_on_tier_and_record_their_version() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let key_policy = manager
        .create(
            "/api/v1/complaint-sla-policies",
            &json!({"name": "Key customers", "position": 1, "tiers": ["key"], "first_response_minutes": 30, "resolution_minutes": 240}),
        )
        .await;
    let everyone = manager
        .create(
            "/api/v1/complaint-sla-policies",
            &json!({"name": "Everyone", "position": 2, "first_response_minutes": 240, "resolution_minutes": 2880}),
        )
        .await;
    let key = id_of(&manager.customer(json!({"tier": "key"})).await);
    let plain = id_of(&manager.customer(json!({"tier": "ordinary"})).await);
    let fast = manager.complaint(&key, json!({})).await;
    assert_eq!(
        fast["sla_policy"],
        json!({"id": key_policy["id"], "version": 1})
    );
    assert_eq!(clock(&fast, "first_response")["target_minutes"], 30);
    assert_eq!(
        fast["escalation_base"], 1,
        "key customers start one level up"
    );
    let slow = manager.complaint(&plain, json!({})).await;
    assert_eq!(slow["sla_policy"]["id"], everyone["id"]);
    assert_eq!(slow["escalation_base"], 0);
    let critical = manager
        .complaint(&plain, json!({"severity": "critical"}))
        .await;
    assert_eq!(critical["escalation_base"], 1);
    let changed = manager
        .patch(
            &format!("/api/v1/complaint-sla-policies/{}", id_of(&everyone)),
            &json!({"resolution_minutes": 1440}),
        )
        .await;
    assert_eq!(changed.body["version"], 2);
    let later = manager.complaint(&plain, json!({})).await;
    assert_eq!(later["sla_policy"]["version"], 2);
    assert_eq!(clock(&later, "resolution")["target_minutes"], 1440);
    let promised = manager
        .complaint(&plain, json!({"promised_by": "2030-01-01T00:00:00Z"}))
        .await;
    assert_eq!(
        clock(&promised, "promise")["due_at"],
        "2030-01-01T00:00:00Z"
    );
    assert_eq!(
        promised["sla"].as_array().unwrap().len(),
        3,
        "every clock is shown"
    );
}

#[actix_web::test]
async fn pauses_sum_to_paused_seconds_and_a_severity_change_keeps_elapsed_and_paused_time() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    manager
        .create(
            "/api/v1/complaint-sla-policies",
            &json!({"name": "Critical", "position": 1, "severities": ["critical"],
            "first_response_minutes": 15, "resolution_minutes": 120}),
        )
        .await;
    manager
        .create(
            "/api/v1/complaint-sla-policies",
            &json!({"name": "Other", "position": 2,
            "first_response_minutes": 60, "resolution_minutes": 480}),
        )
        .await;
    let customer = id_of(&manager.customer(json!({})).await);
    let received = Utc::now() - Duration::hours(1);
    let id = id_of(
        &manager
            .complaint(&customer, json!({"received_at": received}))
            .await,
    );
    move_to(&manager, &id, "acknowledged").await;
    move_to(&manager, &id, "in_progress").await;
    for _ in 0..2 {
        move_to(&manager, &id, "awaiting_customer").await;
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        move_to(&manager, &id, "in_progress").await;
    }
    let before = manager.get(&format!("/api/v1/complaints/{id}")).await.body;
    let resolution_clock = clock(&before, "resolution");
    let pauses = resolution_clock["pauses"].as_array().unwrap();
    assert_eq!(pauses.len(), 2);
    let summed: i64 = pauses
        .iter()
        .map(|p| (time_of(&p["to"]) - time_of(&p["from"])).num_seconds())
        .sum();
    assert_eq!(summed, resolution_clock["paused_seconds"].as_i64().unwrap());
    assert!(summed >= 2);
    let critical = manager
        .patch(
            &format!("/api/v1/complaints/{id}"),
            &json!({"severity": "critical"}),
        )
        .await;
    assert_eq!(critical.status, 200, "{}", critical.text);
    let after = clock(&critical.body, "resolution");
    assert_eq!(after["target_minutes"], 120);
    assert_eq!(
        after["started_at"], resolution_clock["started_at"],
        "elapsed time is kept"
    );
    assert_eq!(
        after["pauses"], resolution_clock["pauses"],
        "paused time is kept"
    );
    let expected =
        time_of(&after["started_at"]) + Duration::minutes(120) + Duration::seconds(summed);
    let due = time_of(&after["due_at"]);
    assert!(
        (due - expected).num_seconds().abs() <= 2,
        "{due} vs {expected}"
    );
    // The first response was the acknowledgement, and it stays fulfilled.
    assert!(clock(&critical.body, "first_response")["fulfilled_at"].is_string());
}

#[actix_web::test]
async fn only_a_public_staff_comment_or_the_acknowledgement_is_a_first_response() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    manager
        .create(
            "/api/v1/complaint-sla-policies",
            &json!({"name": "All", "position": 1,
            "first_response_minutes": 60, "resolution_minutes": 480}),
        )
        .await;
    let customer = id_of(&manager.customer(json!({})).await);
    let id = id_of(&manager.complaint(&customer, json!({})).await);
    let path = format!("/api/v1/complaints/{id}");
    manager
        .create(
            &format!("{path}/comments"),
            &json!({"visibility": "internal", "body": "Checking stock"}),
        )
        .await;
    let shop = app
        .key_client(&["complaints:write", "complaints:read"])
        .await;
    shop.create(
        &format!("{path}/comments"),
        &json!({"visibility": "public", "body": "Automatic reply"}),
    )
    .await;
    let still = manager.get(&path).await.body;
    assert_eq!(still["first_response_at"], Value::Null);
    assert_eq!(clock(&still, "first_response")["fulfilled_at"], Value::Null);
    manager
        .create(
            &format!("{path}/comments"),
            &json!({"visibility": "public", "body": "We are on it"}),
        )
        .await;
    let answered = manager.get(&path).await.body;
    assert!(answered["first_response_at"].is_string());
    assert_eq!(
        clock(&answered, "first_response")["fulfilled_at"],
        answered["first_response_at"]
    );
    assert_eq!(clock(&answered, "first_response")["breached"], false);
    let acknowledged = id_of(&manager.complaint(&customer, json!({})).await);
    let moved = move_to(&manager, &acknowledged, "acknowledged").await;
    assert!(clock(&moved, "first_response")["fulfilled_at"].is_string());
}

#[actix_web::test]
async fn each_escalation_step_fires_once_under_two_concurrent_runners() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    manager
        .create(
            "/api/v1/complaint-sla-policies",
            &json!({"name": "Ladder", "position": 1, "first_response_minutes": 60, "resolution_minutes": 120,
                "escalation": [
                    {"metric": "resolution", "offset_minutes": -30, "notify": "assignee"},
                    {"metric": "resolution", "offset_minutes": 60, "notify": "manager"},
                    {"metric": "resolution", "offset_minutes": 600, "notify": "admins"}
                ]}),
        )
        .await;
    let boss = app.client(Role::Manager).await;
    let agent = app.client(Role::Agent).await;
    let admin = app.admin_token().await;
    let set = app
        .patch(
            &format!("/api/v1/users/{}", agent.user_id.unwrap()),
            Some(&admin),
            &json!({"manager_id": boss.user_id}),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.text);
    let customer = id_of(&manager.customer(json!({})).await);
    // Received five hours ago: both breaches, the warning and the manager's step are due;
    // the admins' step (ten hours after) is not.
    let received = Utc::now() - Duration::hours(5);
    let mut ids = Vec::new();
    for _ in 0..20 {
        let c = manager
            .complaint(
                &customer,
                json!({"received_at": received, "assignee_id": agent.user_id}),
            )
            .await;
        ids.push(id_of(&c));
    }
    let now = Utc::now();
    let (mut one, mut two) = (
        app.context.pool().get().await.unwrap(),
        app.context.pool().get().await.unwrap(),
    );
    let (a, b) = tokio::join!(
        async {
            escalation::fire_batch(&mut one, now, 7).await.unwrap()
                + escalation::run_due(&mut one, now).await.unwrap()
        },
        async {
            escalation::fire_batch(&mut two, now, 7).await.unwrap()
                + escalation::run_due(&mut two, now).await.unwrap()
        },
    );
    assert_eq!(
        a + b,
        20 * 4,
        "four steps per complaint, each fired by one runner"
    );
    assert_eq!(
        escalation::run_due(&mut one, now).await.unwrap(),
        0,
        "nothing fires twice"
    );
    let events = app.events_of(&ids[0]).await;
    let fired: Vec<&str> = events
        .iter()
        .map(|e| e.0.as_str())
        .filter(|t| t.starts_with("complaint.sla") || *t == "complaint.escalated")
        .collect();
    let mut sorted = fired.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "complaint.escalated",
            "complaint.sla_breached",
            "complaint.sla_breached",
            "complaint.sla_warning"
        ]
    );
    let escalated = events
        .iter()
        .find(|e| e.0 == "complaint.escalated")
        .unwrap();
    assert_eq!(escalated.1["level"], 1);
    assert_eq!(escalated.1["notify"]["user_ids"], json!([boss.user_id]));
    let complaint = manager
        .get(&format!("/api/v1/complaints/{}", ids[0]))
        .await
        .body;
    assert!(clock(&complaint, "resolution")["breached_at"].is_string());
    // Ten hours after the breach, the admins' step fires, once.
    let later = now + Duration::hours(8);
    assert_eq!(escalation::run_due(&mut one, later).await.unwrap(), 20);
    assert_eq!(escalation::run_due(&mut two, later).await.unwrap(), 0);
}

#[actix_web::test]
async fn a_fulfilled_clock_cancels_its_later_steps_and_a_pause_holds_them() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    manager
        .create(
            "/api/v1/complaint-sla-policies",
            &json!({"name": "Ladder", "position": 1,
            "first_response_minutes": 60, "resolution_minutes": 120,
            "escalation": [{"metric": "resolution", "offset_minutes": -30, "notify": "assignee"}]}),
        )
        .await;
    let customer = id_of(&manager.customer(json!({})).await);
    let id = in_progress(&manager, &customer).await;
    move_to(&manager, &id, "awaiting_customer").await;
    let mut conn = app.context.pool().get().await.unwrap();
    let far = Utc::now() + Duration::days(30);
    assert_eq!(
        escalation::run_due(&mut conn, far).await.unwrap(),
        0,
        "a paused clock waits"
    );
    move_to(&manager, &id, "in_progress").await;
    let resolved = manager
        .post(&format!("/api/v1/complaints/{id}/resolve"), &resolution())
        .await;
    assert_eq!(resolved.status, 200);
    assert_eq!(
        escalation::run_due(&mut conn, far).await.unwrap(),
        0,
        "resolved in time: nothing fires"
    );
}

#[actix_web::test]
async fn resolving_with_compensation_is_one_transaction() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let customer = id_of(&manager.customer(json!({})).await);
    let id = in_progress(&manager, &customer).await;
    let path = format!("/api/v1/complaints/{id}");
    let mut gift = resolution();
    gift["compensation"] = json!({"kind": "gift", "description": "Shoe-care kit"});
    // An injected failure at the last statement (the event) leaves nothing behind.
    app.execute(
        "CREATE FUNCTION fail_resolved() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF NEW.type = 'complaint.resolved' THEN RAISE EXCEPTION 'injected'; END IF; RETURN NEW; END $$",
    )
    .await;
    app.execute("CREATE TRIGGER fail_resolved BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION fail_resolved()").await;
    let failed = manager.post(&format!("{path}/resolve"), &gift).await;
    assert_eq!(failed.status, 500, "{}", failed.text);
    let unchanged = manager.get(&path).await.body;
    assert_eq!(unchanged["status"], "in_progress");
    assert_eq!(unchanged["resolved_at"], Value::Null);
    assert_eq!(
        app.count("SELECT count(*) AS count FROM complaint_resolutions")
            .await,
        0
    );
    assert_eq!(clock_count_fulfilled(&app).await, 0);
    app.execute("DROP TRIGGER fail_resolved ON events").await;
    let points = manager
        .post(&format!("{path}/resolve"), &json!({"resolution": resolution()["resolution"], "compensation": {"kind": "points", "points": 500, "description": "Sorry"}}))
        .await;
    assert_eq!(points.status, 409, "{}", points.text);
    let resolved = manager.post(&format!("{path}/resolve"), &gift).await;
    assert_eq!(resolved.status, 200, "{}", resolved.text);
    assert_eq!(resolved.body["resolution"]["compensation_kind"], "gift");
    assert_eq!(
        resolved.body["resolution"]["compensation_description"],
        "Shoe-care kit"
    );
    let event = conformance::write_emitted(&app, &id, "complaint.resolved").await;
    assert_eq!(event["resolution"]["type"], "replace");
    let current = manager.get(&format!("{path}/resolution")).await;
    assert_eq!(current.body["cycle"], 1);
    let twice = manager.post(&format!("{path}/resolve"), &gift).await;
    assert_eq!(twice.status, 409);
    assert_eq!(twice.body["allowed"], json!(["closed", "reopened"]));
}

async fn clock_count_fulfilled(app: &TestApp) -> i64 {
    app.count("SELECT count(*) AS count FROM complaint_clocks WHERE metric = 'resolution' AND fulfilled_at IS NOT NULL")
        .await
}

#[actix_web::test]
async fn satisfaction_is_rated_once_per_resolution_cycle() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let customer = id_of(&manager.customer(json!({})).await);
    let id = in_progress(&manager, &customer).await;
    let path = format!("/api/v1/complaints/{id}");
    let early = manager
        .post(&format!("{path}/satisfaction"), &json!({"rating": 5}))
        .await;
    assert_eq!(early.status, 409);
    manager
        .post(&format!("{path}/resolve"), &resolution())
        .await;
    let out_of_range = manager
        .post(&format!("{path}/satisfaction"), &json!({"rating": 6}))
        .await;
    assert_eq!(out_of_range.status, 422);
    let rated = manager
        .create(
            &format!("{path}/satisfaction"),
            &json!({"rating": 2, "comment": "Slow"}),
        )
        .await;
    assert_eq!(rated["cycle"], 1);
    let last = app.events_of(&id).await.pop().unwrap();
    assert_eq!(last.0, "complaint.satisfaction_recorded");
    assert_eq!(last.1["satisfaction"]["rating"], 2);
    let again = manager
        .post(&format!("{path}/satisfaction"), &json!({"rating": 4}))
        .await;
    assert_eq!(again.status, 409);
    move_to(&manager, &id, "reopened").await;
    move_to(&manager, &id, "in_progress").await;
    manager
        .post(&format!("{path}/resolve"), &resolution())
        .await;
    let second = manager
        .create(&format!("{path}/satisfaction"), &json!({"rating": 5}))
        .await;
    assert_eq!(second["cycle"], 2);
    assert_eq!(manager.get(&path).await.body["satisfaction"]["rating"], 5);
}

#[actix_web::test]
async fn a_reopen_after_the_window_is_refused() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    manager
        .create(
            "/api/v1/complaint-sla-policies",
            &json!({"name": "No reopen", "position": 1,
            "first_response_minutes": 60, "resolution_minutes": 480, "reopen_window_days": 0}),
        )
        .await;
    let customer = id_of(&manager.customer(json!({})).await);
    let id = in_progress(&manager, &customer).await;
    manager
        .post(&format!("/api/v1/complaints/{id}/resolve"), &resolution())
        .await;
    let late = manager
        .post(
            &format!("/api/v1/complaints/{id}/transitions"),
            &json!({"to": "reopened"}),
        )
        .await;
    assert_eq!(late.status, 409, "{}", late.text);
    assert_eq!(late.error_fields(), ["to"]);
}

#[actix_web::test]
async fn standard_answers_are_searched_and_their_uses_counted() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let agent = app.client(Role::Agent).await;
    let answer = manager
        .create(
            "/api/v1/answers",
            &json!({"question": "My sole came off", "answer": "We replace the pair at once.",
            "category": "product_quality", "tags": ["Shoes"]}),
        )
        .await;
    manager
        .create("/api/v1/answers", &json!({"question": "Where is my parcel?", "answer": "Track it here.", "category": "delivery"}))
        .await;
    let refused = agent
        .post(
            "/api/v1/answers",
            &json!({"question": "q", "answer": "a", "category": "c"}),
        )
        .await;
    assert_eq!(
        refused.status, 403,
        "agents read the library, managers keep it"
    );
    let mut written = Vec::new();
    for n in 0..3 {
        let body = json!({"question": format!("Q{n}"), "answer": "A", "category": "sorting"});
        written.push(id_of(&manager.create("/api/v1/answers", &body).await));
    }
    let list = "/api/v1/answers?category=sorting";
    conformance::sorts_both_ways(&agent, list, "created_at", &written).await;
    let found = agent.get("/api/v1/answers?q=SOLE").await;
    assert_eq!(found.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(found.body["data"][0]["id"], answer["id"]);
    assert_eq!(
        agent.get("/api/v1/answers?tag=shoes").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let customer = id_of(&manager.customer(json!({})).await);
    let complaint = id_of(&agent.complaint(&customer, json!({})).await);
    for _ in 0..2 {
        agent
            .create(&format!("/api/v1/complaints/{complaint}/comments"),
                &json!({"visibility": "public", "body": "We replace the pair at once.", "answer_id": answer["id"]}))
            .await;
    }
    let counted = agent
        .get(&format!("/api/v1/answers/{}", id_of(&answer)))
        .await
        .body;
    assert_eq!(counted["use_count"], 2);
    assert_eq!(counted["uses_7d"], 2);
    assert_eq!(counted["uses_30d"], 2);
    let missing = agent
        .post(
            &format!("/api/v1/complaints/{complaint}/comments"),
            &json!({"visibility": "public", "body": "x", "answer_id": uuid::Uuid::now_v7()}),
        )
        .await;
    assert_eq!(missing.status, 409);
}

#[actix_web::test]
async fn the_report_gives_known_figures() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let policy = manager
        .create(
            "/api/v1/complaint-sla-policies",
            &json!({"name": "All", "position": 1,
            "first_response_minutes": 60, "resolution_minutes": 120}),
        )
        .await;
    let repeat = id_of(&manager.customer(json!({"tier": "key"})).await);
    let once = id_of(&manager.customer(json!({})).await);
    let from = (Utc::now() - Duration::days(1)).to_rfc3339();
    // Two resolved fast (one rated 4, one 2); one long overdue; one reopened.
    let fast = in_progress(&manager, &repeat).await;
    manager
        .post(&format!("/api/v1/complaints/{fast}/resolve"), &resolution())
        .await;
    manager
        .post(
            &format!("/api/v1/complaints/{fast}/satisfaction"),
            &json!({"rating": 4}),
        )
        .await;
    let also = in_progress(&manager, &once).await;
    manager
        .post(&format!("/api/v1/complaints/{also}/resolve"), &resolution())
        .await;
    manager
        .post(
            &format!("/api/v1/complaints/{also}/satisfaction"),
            &json!({"rating": 2}),
        )
        .await;
    move_to(&manager, &also, "reopened").await;
    manager
        .complaint(&repeat, json!({"category": "delivery", "channel": "web", "received_at": Utc::now() - Duration::hours(3)}))
        .await;
    let report = manager
        .get(&format!(
            "/api/v1/analytics/complaints?from={}&period=week",
            urlencode(&from)
        ))
        .await;
    assert_eq!(report.status, 200, "{}", report.text);
    let r = report.body;
    assert_eq!(r["volume"]["total"], 3);
    assert_eq!(
        r["volume"]["by_category"][0],
        json!({"key": "product_quality", "count": 2})
    );
    assert_eq!(r["first_response"]["count"], 2);
    assert_eq!(r["resolution"]["count"], 2);
    assert_eq!(r["satisfaction"], json!({"count": 2, "average": 3.0}));
    assert_eq!(r["repeat_customers"]["customers"], 1);
    assert_eq!(r["repeat_customers"]["top"][0]["customer_id"], repeat);
    assert!((r["reopen_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert!((r["breaches"]["overall"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    let by_policy = &r["breaches"]["by_policy"][0];
    assert_eq!(by_policy["key"], policy["id"]);
    assert_eq!(by_policy["breached"], 1);
    let key_tier = r["breaches"]["by_tier"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == "key")
        .unwrap()
        .clone();
    assert_eq!(key_tier["complaints"], 2);
    assert_eq!(key_tier["breached"], 1);
    assert_eq!(r["root_causes"][0], json!({"key": "supplier", "count": 2}));
    let periods = r["periods"].as_array().unwrap();
    assert!(!periods.is_empty());
    let summed: i64 = periods
        .iter()
        .map(|p| p["complaints"].as_i64().unwrap())
        .sum();
    assert_eq!(summed, 3);
    assert!(periods.iter().any(|p| {
        p["corrective_actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "Incoming checks on glue")
    }));
    let agent = app.client(Role::Agent).await;
    assert_eq!(agent.get("/api/v1/analytics/complaints").await.status, 403);
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

#[actix_web::test]
async fn complaints_join_the_customers_timeline_export_merge_and_erase() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let customer = id_of(&manager.customer(json!({})).await);
    let duplicate = id_of(&manager.customer(json!({})).await);
    let id = in_progress(&manager, &customer).await;
    manager
        .patch(
            &format!("/api/v1/complaints/{id}"),
            &json!({"subject": "Zebra-7781 heel", "description": "Quokka-5512 at home"}),
        )
        .await;
    manager
        .create(
            &format!("/api/v1/complaints/{id}/comments"),
            &json!({"visibility": "public", "body": "Ocelot-3344 called"}),
        )
        .await;
    let mut with_texts = resolution();
    with_texts["resolution"]["description"] = json!("Narwhal-9911 replaced");
    manager
        .post(&format!("/api/v1/complaints/{id}/resolve"), &with_texts)
        .await;
    manager
        .create(
            &format!("/api/v1/complaints/{id}/satisfaction"),
            &json!({"rating": 3, "comment": "Pangolin-2288 was kind"}),
        )
        .await;
    let timeline = manager
        .get(&format!("/api/v1/customers/{customer}/timeline"))
        .await;
    assert!(
        timeline.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "complaint")
    );
    let export = manager
        .get(&format!("/api/v1/customers/{customer}/export"))
        .await;
    assert_eq!(
        export.body["complaints"][0]["comments"][0]["body"],
        "Ocelot-3344 called"
    );
    let elsewhere = manager.complaint(&duplicate, json!({})).await;
    let merged = manager
        .post(
            "/api/v1/customers/merge",
            &json!({"survivor_id": customer, "duplicate_id": duplicate}),
        )
        .await;
    assert_eq!(merged.status, 200, "{}", merged.text);
    let moved = manager
        .get(&format!("/api/v1/complaints/{}", id_of(&elsewhere)))
        .await;
    assert_eq!(moved.body["customer_id"], customer);
    conformance::erase_reaches_everything(
        &manager,
        &customer,
        &[
            "Zebra-7781",
            "Quokka-5512",
            "Ocelot-3344",
            "Narwhal-9911",
            "Pangolin-2288",
        ],
    )
    .await;
    let kept = manager.get(&format!("/api/v1/complaints/{id}")).await.body;
    assert_eq!(kept["status"], "resolved", "the complaint's figures stay");
}

#[actix_web::test]
async fn the_work_queue_lists_use_their_indexes_at_100k_complaints() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let customer = id_of(&manager.customer(json!({})).await);
    let agent = manager.user_id.unwrap();
    app.execute(&format!(
        "INSERT INTO complaints (id, customer_id, channel, category, severity, subject, description, assignee_id, \
           status, customer_level, received_at, created_at, next_due_at) \
         SELECT gen_random_uuid(), '{customer}', 'phone', 'delivery', 'low', 'late ' || i, 'parcel', \
           CASE WHEN i % 10 = 0 THEN '{agent}'::uuid END, \
           CASE WHEN i % 20 = 0 THEN 'in_progress' ELSE 'closed' END, 'active', now() - i * interval '1 minute', \
           now() - i * interval '1 minute', CASE WHEN i % 20 = 0 THEN now() - interval '1 hour' END \
         FROM generate_series(1, 100000) i"
    ))
    .await;
    app.execute("ANALYZE complaints").await;
    let mut conn = app.context.pool().get().await.unwrap();
    let plan = |filters: ComplaintFilters| list_query(&filters, None, 51, Utc::now()).unwrap();
    let queue = ComplaintFilters {
        status: Some(rapport::complaints::Status::InProgress),
        assignee_id: Some(agent.into()),
        ..Default::default()
    };
    let overdue = ComplaintFilters {
        overdue: Some(true),
        ..Default::default()
    };
    for (name, filters, index) in [
        ("queue", queue, "complaints_status_assignee_idx"),
        ("overdue", overdue, "complaints_running_idx"),
    ] {
        let lines: Vec<String> =
            diesel_async::RunQueryDsl::load::<String>(Explain::plan(plan(filters)), &mut conn)
                .await
                .unwrap();
        let text = lines.join("\n");
        assert!(text.contains(index), "{name} should use {index}:\n{text}");
        assert!(!text.contains("Seq Scan"), "{name}:\n{text}");
    }
    let listed = manager
        .get(&format!(
            "/api/v1/complaints?status=in_progress&assignee_id={agent}&limit=5"
        ))
        .await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 5);
}

/// A rating is a change of the complaint like any other: staff record it only for
/// complaints they may write (the assignee, managers), and a stale `If-Match` is refused.
#[actix_web::test]
async fn only_staff_who_may_write_the_complaint_record_its_rating() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let assignee = app.client(Role::Agent).await;
    let other = app.client(Role::Agent).await;
    let customer = id_of(&manager.customer(json!({})).await);
    let id = id_of(&assignee.complaint(&customer, json!({})).await);
    move_to(&assignee, &id, "acknowledged").await;
    move_to(&assignee, &id, "in_progress").await;
    let path = format!("/api/v1/complaints/{id}");
    let resolved = assignee
        .post(&format!("{path}/resolve"), &resolution())
        .await;
    assert_eq!(resolved.status, 200, "{}", resolved.text);

    let foreign = other
        .post(&format!("{path}/satisfaction"), &json!({"rating": 1}))
        .await;
    assert_eq!(foreign.status, 403, "{}", foreign.text);
    let stale = assignee
        .send(
            "POST",
            &format!("{path}/satisfaction"),
            Some(&json!({"rating": 4})),
            &[("If-Match", "\"1\"")],
        )
        .await;
    assert_eq!(stale.status, 412, "{}", stale.text);
    let rated = assignee
        .post(&format!("{path}/satisfaction"), &json!({"rating": 4}))
        .await;
    assert_eq!(rated.status, 201, "{}", rated.text);
    assert_eq!(manager.get(&path).await.body["satisfaction"]["rating"], 4);
}

/// A fresh install ships default SLA policies, one per severity and no calendar, so the
/// first complaint already shows its clocks; they are edited and removed like any other.
#[actix_web::test]
async fn a_fresh_install_gives_the_first_complaint_its_clocks() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let customer = id_of(&manager.customer(json!({})).await);
    let complaint = manager
        .complaint(&customer, json!({"severity": "critical"}))
        .await;
    let metrics: Vec<&str> = complaint["sla"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["metric"].as_str())
        .collect();
    assert!(metrics.contains(&"first_response"), "{complaint}");
    assert!(metrics.contains(&"resolution"), "{complaint}");
    let policies = manager.get("/api/v1/complaint-sla-policies").await;
    assert_eq!(policies.status, 200, "{}", policies.text);
    let defaults = policies.body["data"].as_array().unwrap();
    assert_eq!(defaults.len(), 4, "{}", policies.text);
    let critical = defaults
        .iter()
        .find(|p| p["severities"] == json!(["critical"]))
        .unwrap();
    assert!(critical["calendar_id"].is_null());
    let removed = manager
        .delete(&format!(
            "/api/v1/complaint-sla-policies/{}",
            id_of(critical)
        ))
        .await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    let next = manager
        .complaint(&customer, json!({"severity": "critical"}))
        .await;
    assert_eq!(
        next["sla"],
        json!([]),
        "no policy matches a critical one now"
    );
}
