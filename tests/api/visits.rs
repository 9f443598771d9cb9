//! Visits over HTTP: the kit's conformance checks, the workflow and reschedules, geo
//! check-ins with offline replays, completion with follow-ups, recurring plans (DST, EXDATE,
//! "this and following"), the missed-visit job under two runners, the due list, boards,
//! targets and the report, agent rights, the customer hooks, and the plans at 100k.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use rapport::auth::Role;
use rapport::db::Explain;
use rapport::visits::jobs;
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::kit::{Client, conformance, id_of};

/// Metres of latitude per degree (the haversine sphere's).
const METRES_PER_DEGREE: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;
const SHOP: (f64, f64) = (31.2304, 121.4737);

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// A customer at the shop's coordinates.
async fn customer_at_shop(client: &Client<'_>, fields: Value) -> String {
    let mut body = json!({"addresses": [{"line1": "1 Nanjing Road", "city": "Shanghai",
        "latitude": SHOP.0, "longitude": SHOP.1}]});
    if let (Some(body), Some(fields)) = (body.as_object_mut(), fields.as_object()) {
        body.extend(fields.clone());
    }
    id_of(&client.customer(body).await)
}

/// A visit planned by the client, starting `hours` from now for an hour.
async fn visit(client: &Client<'_>, customer: &str, hours: i64, fields: Value) -> Value {
    let start = Utc::now() + Duration::hours(hours);
    let mut body = json!({"customer_id": customer, "scheduled_start": stamp(start),
        "scheduled_end": stamp(start + Duration::hours(1)), "purpose": "after_sales_follow_up",
        "method": "in_person", "reason": "Two weeks after delivery"});
    if let (Some(body), Some(fields)) = (body.as_object_mut(), fields.as_object()) {
        body.extend(fields.clone());
    }
    client.create("/api/v1/visits", &body).await
}

async fn act(client: &Client<'_>, id: &str, action: &str, body: Value) -> Value {
    let res = client
        .post(&format!("/api/v1/visits/{id}/{action}"), &body)
        .await;
    assert_eq!(res.status, 200, "{action}: {}", res.text);
    res.body
}

/// A capture `metres` north of the shop.
fn north(metres: f64, accuracy: f64, captured: DateTime<Utc>) -> Value {
    json!({"latitude": SHOP.0 + metres / METRES_PER_DEGREE, "longitude": SHOP.1,
        "accuracy_m": accuracy, "captured_at": stamp(captured)})
}

#[actix_web::test]
async fn visits_meet_the_conformance_checks() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let customer = customer_at_shop(&manager, json!({})).await;
    let created = visit(&manager, &customer, 24, json!({})).await;
    assert_eq!(created["status"], "planned");
    assert_eq!(
        created["location"], "1 Nanjing Road, Shanghai",
        "defaults to the customer's address"
    );
    let id = id_of(&created);
    let path = format!("/api/v1/visits/{id}");
    conformance::write_emitted(&app, &id, "visit.planned").await;
    conformance::stale_if_match_is_refused(&manager, &path, &json!({"agenda": "Bring samples"}))
        .await;
    conformance::write_emitted(&app, &id, "visit.updated").await;
    conformance::agents_cannot_write_anothers(&app, &path, &json!({"agenda": "x"})).await;
    let start = Utc::now() + Duration::days(3);
    conformance::post_replays_under_idempotency_key(
        &manager,
        "/api/v1/visits",
        &json!({"customer_id": customer, "scheduled_start": stamp(start), "scheduled_end": stamp(start + Duration::hours(1)),
            "purpose": "greeting", "method": "phone", "reason": "New year"}),
    )
    .await;
    conformance::failed_write_emits_nothing(&app, async || {
        manager
            .post(
                &format!("/api/v1/visits/{id}/complete"),
                &json!({"outcome": "x"}),
            )
            .await
    })
    .await;
    let mut expected = HashSet::new();
    for hours in 30..35 {
        expected.insert(id_of(&visit(&manager, &customer, hours, json!({})).await));
    }
    let from = stamp(Utc::now() + Duration::hours(29));
    conformance::list_walk_visits_every_row_once(
        &manager,
        &format!("/api/v1/visits?limit=2&customer_id={customer}&from={from}"),
        &expected,
        async || {
            visit(&manager, &customer, 20, json!({})).await;
        },
    )
    .await;
    let other = customer_at_shop(&manager, json!({})).await;
    let mut by_start = Vec::new();
    for hours in [50, 51, 52] {
        by_start.push(id_of(&visit(&manager, &other, hours, json!({})).await));
    }
    let list = format!("/api/v1/visits?customer_id={other}");
    conformance::sorts_both_ways(&manager, &list, "scheduled_start", &by_start).await;
}

#[actix_web::test]
async fn the_workflow_runs_its_moves_refuses_others_and_reschedules_keep_the_id() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let customer = customer_at_shop(&manager, json!({})).await;
    let id = id_of(&visit(&manager, &customer, 2, json!({})).await);
    let early = manager
        .post(
            &format!("/api/v1/visits/{id}/complete"),
            &json!({"outcome": "Too early"}),
        )
        .await;
    assert_eq!(early.status, 409, "{}", early.text);
    assert_eq!(
        early.body["allowed"],
        json!(["confirmed", "checked_in", "cancelled", "no_show", "missed"])
    );
    // A reschedule keeps the id, counts, and records who moved it and why.
    let new_start = Utc::now() + Duration::days(2);
    let moved = act(&manager, &id, "reschedule", json!({"scheduled_start": stamp(new_start),
        "scheduled_end": stamp(new_start + Duration::minutes(90)), "reason": "Customer travelling"})).await;
    assert_eq!(moved["id"], id);
    assert_eq!(moved["reschedule_count"], 1);
    let history = &moved["schedule_history"][0];
    assert_eq!(history["reason"], "Customer travelling");
    assert_eq!(
        at(history["new_start"].as_str().unwrap()),
        new_start.with_nanosecond_zero()
    );
    assert_eq!(history["by"], format!("user:{}", manager.user_id.unwrap()));
    let confirmed = act(&manager, &id, "confirm", json!({})).await;
    assert_eq!(confirmed["status"], "confirmed");
    let again = act(&manager, &id, "reschedule", json!({"scheduled_start": stamp(new_start + Duration::days(1)),
        "scheduled_end": stamp(new_start + Duration::days(1) + Duration::hours(1)), "reason": "Our mistake"})).await;
    assert_eq!(
        again["status"], "planned",
        "a moved appointment needs confirming again"
    );
    assert_eq!(again["reschedule_count"], 2);
    assert_eq!(again["schedule_history"].as_array().unwrap().len(), 2);
    let backwards = manager
        .post(
            &format!("/api/v1/visits/{id}/reschedule"),
            &json!({"scheduled_start": stamp(new_start),
            "scheduled_end": stamp(new_start - Duration::hours(1)), "reason": "x"}),
        )
        .await;
    assert_eq!(backwards.status, 422, "{}", backwards.text);
    assert_eq!(backwards.error_fields(), ["scheduled_end"]);
    act(&manager, &id, "confirm", json!({})).await;
    act(&manager, &id, "check-in", north(20.0, 10.0, Utc::now())).await;
    let out = act(&manager, &id, "check-out", north(20.0, 10.0, Utc::now())).await;
    assert!(out["actual_end"].is_string());
    let done = act(
        &manager,
        &id,
        "complete",
        json!({"outcome": "Sofa fine", "contacts_met": ["Mrs Li"]}),
    )
    .await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["contacts_met"], json!(["Mrs Li"]));
    assert!(done["duration_minutes"].is_i64());
    for action in ["confirm", "cancel", "no-show", "reschedule"] {
        let body = match action {
            "cancel" => json!({"reason": "other"}),
            "reschedule" => {
                json!({"scheduled_start": stamp(new_start), "scheduled_end": stamp(new_start + Duration::hours(1)), "reason": "x"})
            }
            _ => json!({}),
        };
        let refused = manager
            .post(&format!("/api/v1/visits/{id}/{action}"), &body)
            .await;
        assert_eq!(
            refused.status, 409,
            "{action} after completion: {}",
            refused.text
        );
        assert!(
            refused.body["allowed"].as_array().is_none_or(Vec::is_empty),
            "{}",
            refused.text
        );
    }
    // Cancelling needs a reason from the list; a no-show and a cancellation end the visit.
    let other = id_of(&visit(&manager, &customer, 5, json!({})).await);
    let no_reason = manager
        .post(&format!("/api/v1/visits/{other}/cancel"), &json!({}))
        .await;
    assert_eq!(no_reason.status, 422, "{}", no_reason.text);
    let cancelled = act(
        &manager,
        &other,
        "cancel",
        json!({"reason": "customer_changed_plans", "note": "Moving house"}),
    )
    .await;
    assert_eq!(cancelled["cancel_reason"], "customer_changed_plans");
    conformance::write_emitted(&app, &other, "visit.cancelled").await;
    let third = id_of(&visit(&manager, &customer, 6, json!({})).await);
    assert_eq!(
        act(&manager, &third, "no-show", json!({})).await["status"],
        "no_show"
    );
    let revived = act(
        &manager,
        &third,
        "reschedule",
        json!({"scheduled_start": stamp(new_start),
        "scheduled_end": stamp(new_start + Duration::hours(1)), "reason": "Try again"}),
    )
    .await;
    assert_eq!(revived["status"], "planned");
    let events: Vec<String> = app.events_of(&id).await.into_iter().map(|e| e.0).collect();
    for expected in [
        "visit.planned",
        "visit.rescheduled",
        "visit.confirmed",
        "visit.checked_in",
        "visit.completed",
    ] {
        assert!(
            events.iter().any(|e| e == expected),
            "{expected} in {events:?}"
        );
    }
}

trait NanosecondZero {
    fn with_nanosecond_zero(self) -> Self;
}

impl NanosecondZero for DateTime<Utc> {
    fn with_nanosecond_zero(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap()
    }
}

#[actix_web::test]
async fn check_ins_count_accuracy_flag_the_far_and_late_and_replay_offline_captures() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let customer = customer_at_shop(&manager, json!({})).await;
    let near = id_of(&visit(&manager, &customer, 1, json!({})).await);
    act(&manager, &near, "confirm", json!({})).await;
    // 150 m away with 100 m accuracy is within 200 m.
    let captured = Utc::now() - Duration::minutes(1);
    let inside = act(&manager, &near, "check-in", north(150.0, 100.0, captured)).await;
    assert_eq!(inside["status"], "checked_in");
    assert_eq!(inside["within_radius"], true);
    let distance = inside["check_in"]["distance_m"].as_f64().unwrap();
    assert!((distance - 150.0).abs() < 1.0, "{distance}");
    assert_eq!(inside["check_in"]["within_radius"], true);
    assert_eq!(inside["late_sync"], false);
    // The phone replays its queue: the same capture answers the visit unchanged.
    let events = app.event_count().await;
    let stored = manager.get(&format!("/api/v1/visits/{near}")).await;
    let replay = manager
        .post(
            &format!("/api/v1/visits/{near}/check-in"),
            &north(150.0, 100.0, captured),
        )
        .await;
    assert_eq!(replay.status, 200, "{}", replay.text);
    assert_eq!(
        replay.header("etag"),
        stored.header("etag"),
        "the same version"
    );
    assert_eq!(app.event_count().await, events, "a replay records nothing");
    act(&manager, &near, "complete", json!({"outcome": "ok"})).await;
    let late_replay = manager
        .post(
            &format!("/api/v1/visits/{near}/check-in"),
            &north(150.0, 100.0, captured),
        )
        .await;
    assert_eq!(
        late_replay.status, 200,
        "a replay after completion: {}",
        late_replay.text
    );
    assert_eq!(late_replay.body["status"], "completed");
    // 450 m with 50 m accuracy is not: accepted, flagged, listed for managers.
    let far = id_of(&visit(&manager, &customer, 1, json!({})).await);
    act(&manager, &far, "confirm", json!({})).await;
    let outside = act(&manager, &far, "check-in", north(450.0, 50.0, Utc::now())).await;
    assert_eq!(outside["status"], "checked_in");
    assert_eq!(outside["within_radius"], false);
    let flagged = manager.get("/api/v1/visits?within_radius=false").await.body;
    let ids: Vec<&str> = flagged["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [far.as_str()]);
    // A wider radius for the tier takes the same capture in.
    let tier = manager
        .patch(
            "/api/v1/visit-cadences/unclassified",
            &json!({"radius_m": 500}),
        )
        .await;
    assert_eq!(tier.status, 200, "{}", tier.text);
    let wide = id_of(&visit(&manager, &customer, 1, json!({})).await);
    act(&manager, &wide, "confirm", json!({})).await;
    assert_eq!(
        act(&manager, &wide, "check-in", north(450.0, 50.0, Utc::now())).await["within_radius"],
        true
    );
    // A capture from the future is refused; one from hours ago is a late sync.
    let late = id_of(&visit(&manager, &customer, -3, json!({})).await);
    act(&manager, &late, "confirm", json!({})).await;
    let future = manager
        .post(
            &format!("/api/v1/visits/{late}/check-in"),
            &north(0.0, 5.0, Utc::now() + Duration::hours(1)),
        )
        .await;
    assert_eq!(future.status, 422, "{}", future.text);
    assert_eq!(future.error_fields(), ["captured_at"]);
    let synced = act(
        &manager,
        &late,
        "check-in",
        north(0.0, 5.0, Utc::now() - Duration::hours(3)),
    )
    .await;
    assert_eq!(synced["late_sync"], true);
    assert_eq!(synced["check_in"]["late_sync"], true);
    assert!(
        synced["check_in"]["received_at"].as_str().unwrap()
            > synced["check_in"]["captured_at"].as_str().unwrap()
    );
    // A phone call checks in without coordinates: nothing to measure.
    let call = id_of(&visit(&manager, &customer, 1, json!({"method": "phone"})).await);
    act(&manager, &call, "confirm", json!({})).await;
    let called = act(
        &manager,
        &call,
        "check-in",
        json!({"captured_at": stamp(Utc::now())}),
    )
    .await;
    assert_eq!(called["within_radius"], Value::Null);
    let half = manager
        .post(
            &format!("/api/v1/visits/{far}/check-out"),
            &json!({"latitude": 1.0, "captured_at": stamp(Utc::now())}),
        )
        .await;
    assert_eq!(half.status, 409, "one coordinate alone: {}", half.text);
    assert_eq!(half.error_fields(), ["latitude"]);
}

#[actix_web::test]
async fn completing_plans_the_next_visit_from_the_cadence_and_opens_a_complaint() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    app.execute(&format!(
        "UPDATE users SET time_zone = 'Europe/Berlin' WHERE id = '{}'",
        manager.user_id.unwrap()
    ))
    .await;
    let customer = customer_at_shop(&manager, json!({"tier": "key"})).await;
    // 09:00 in Berlin on 2026-10-14 (summer time): 30 days later is 09:00 in winter time.
    let id = id_of(
        &visit(
            &manager,
            &customer,
            0,
            json!({"scheduled_start": "2026-10-14T07:00:00Z",
        "scheduled_end": "2026-10-14T08:00:00Z"}),
        )
        .await,
    );
    act(&manager, &id, "confirm", json!({})).await;
    act(
        &manager,
        &id,
        "check-in",
        north(0.0, 5.0, at("2026-10-14T07:05:00Z")),
    )
    .await;
    let done = act(&manager, &id, "complete", json!({"outcome": "Wants a footstool", "next_steps": "Quote",
        "follow_ups": [
            {"title": "Send the quote", "due_on": "2026-10-16", "next_visit": {}},
            {"title": "Look into the scratch", "complaint": {"category": "product_quality", "severity": "low",
                "subject": "Scratch on the armrest", "description": "Seen at the visit"}}
        ]})).await;
    let follow_ups = done["follow_ups"].as_array().unwrap();
    assert_eq!(follow_ups.len(), 2);
    let next = manager
        .get(&format!(
            "/api/v1/visits/{}",
            follow_ups[0]["next_visit_id"].as_str().unwrap()
        ))
        .await
        .body;
    assert_eq!(
        next["scheduled_start"], "2026-11-13T08:00:00Z",
        "key: 30 days on, same local time"
    );
    assert_eq!(next["scheduled_end"], "2026-11-13T09:00:00Z");
    assert_eq!(next["status"], "planned");
    let complaint = manager
        .get(&format!(
            "/api/v1/complaints/{}",
            follow_ups[1]["complaint_id"].as_str().unwrap()
        ))
        .await
        .body;
    assert_eq!(complaint["channel"], "in_person");
    assert_eq!(
        complaint["assignee_id"],
        manager.user_id.unwrap().to_string()
    );
    // Ticking a follow-up off.
    let follow_up = follow_ups[0]["id"].as_str().unwrap();
    let ticked = manager
        .patch(
            &format!("/api/v1/visits/{id}/follow-ups/{follow_up}"),
            &json!({"done": true}),
        )
        .await;
    assert_eq!(ticked.status, 200, "{}", ticked.text);
    assert!(ticked.body["follow_ups"][0]["done_at"].is_string());
    // Nothing is left half done: when the second follow-up fails (no cadence to propose the
    // next visit from), the complaint the first opened is undone with everything else.
    let plain = customer_at_shop(&manager, json!({})).await;
    let other = id_of(&visit(&manager, &plain, 1, json!({})).await);
    act(&manager, &other, "confirm", json!({})).await;
    act(&manager, &other, "check-in", north(0.0, 5.0, Utc::now())).await;
    app.execute("DELETE FROM visit_cadences WHERE tier = 'unclassified'")
        .await;
    let (visits_before, complaints_before) = (
        app.count("SELECT count(*) AS count FROM visits").await,
        app.count("SELECT count(*) AS count FROM complaints").await,
    );
    let refused = manager
        .post(&format!("/api/v1/visits/{other}/complete"), &json!({"outcome": "x", "follow_ups": [
            {"title": "Scratch", "complaint": {"category": "service", "severity": "low", "subject": "s", "description": "d"}},
            {"title": "Next", "next_visit": {}}]}))
        .await;
    assert!(refused.status >= 400, "{}", refused.text);
    assert_eq!(
        app.count("SELECT count(*) AS count FROM visits").await,
        visits_before
    );
    assert_eq!(
        app.count("SELECT count(*) AS count FROM complaints").await,
        complaints_before
    );
    assert_eq!(
        manager.get(&format!("/api/v1/visits/{other}")).await.body["status"],
        "checked_in"
    );
}

#[actix_web::test]
async fn plans_materialise_across_dst_with_exdates_and_split_keeping_the_count() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let customer = customer_at_shop(&manager, json!({})).await;
    // Weekly at 09:00 Berlin from next year's 2027-03-15, over the change to summer time on
    // 2027-03-28, with one week left out.
    let plan = manager
        .create("/api/v1/visit-plans", &json!({"customer_id": customer, "duration_minutes": 60,
            "rrule": "DTSTART;TZID=Europe/Berlin:20270315T090000\nRRULE:FREQ=WEEKLY;COUNT=6\nEXDATE;TZID=Europe/Berlin:20270322T090000",
            "purpose": "relationship_maintenance", "method": "in_person", "reason": "Weekly review"}))
        .await;
    let id = id_of(&plan);
    app.execute(&format!(
        "UPDATE visit_plans SET materialised_until = NULL WHERE id = '{id}'"
    ))
    .await;
    let settings = rapport::visits::VisitSettings {
        grace: Duration::hours(2),
        horizon: Duration::days(400),
    };
    let mut conn = app.context.pool().get().await.unwrap();
    let (_, planned) = jobs::materialise_due(&mut conn, Utc::now(), settings.horizon)
        .await
        .unwrap();
    assert_eq!(planned, 5);
    let starts = |list: &Value| -> Vec<String> {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["scheduled_start"].as_str().unwrap().to_owned())
            .collect()
    };
    let listed = manager
        .get(&format!("/api/v1/visits?customer_id={customer}"))
        .await
        .body;
    assert_eq!(
        starts(&listed),
        [
            "2027-03-15T08:00:00Z",
            "2027-03-29T07:00:00Z",
            "2027-04-05T07:00:00Z",
            "2027-04-12T07:00:00Z",
            "2027-04-19T07:00:00Z"
        ]
    );
    let occurrence = &listed["data"][1];
    assert_eq!(occurrence["plan_id"], id);
    assert_eq!(
        jobs::materialise_due(&mut conn, Utc::now(), settings.horizon)
            .await
            .unwrap()
            .1,
        0,
        "once only"
    );
    // One occurrence edited alone keeps its identity and change through a split.
    let edited = id_of(&listed["data"][3]);
    let moved = act(
        &manager,
        &edited,
        "reschedule",
        json!({"scheduled_start": "2027-04-13T07:00:00Z",
        "scheduled_end": "2027-04-13T08:00:00Z", "reason": "Holiday"}),
    )
    .await;
    assert_eq!(moved["occurrence_at"], "2027-04-12T07:00:00Z");
    // This and following: from the 3rd occurrence (2027-04-05) on, at 10:00.
    let split = manager
        .create(
            &format!("/api/v1/visit-plans/{id}/split"),
            &json!({"from": "2027-04-05T07:00:00Z",
            "changes": {"reason": "Fortnightly from April"}}),
        )
        .await;
    assert_eq!(split["split_from"], id);
    assert!(
        split["rrule"].as_str().unwrap().contains("COUNT=3"),
        "{}",
        split["rrule"]
    );
    let old = manager.get(&format!("/api/v1/visit-plans/{id}")).await.body;
    assert!(
        old["rrule"]
            .as_str()
            .unwrap()
            .contains("UNTIL=20270405T065959Z"),
        "{}",
        old["rrule"]
    );
    let split_id = id_of(&split);
    app.execute(&format!(
        "UPDATE visit_plans SET materialised_until = NULL WHERE id = '{split_id}'"
    ))
    .await;
    jobs::materialise_due(&mut conn, Utc::now(), settings.horizon)
        .await
        .unwrap();
    let after = manager
        .get(&format!("/api/v1/visits?customer_id={customer}"))
        .await
        .body;
    assert_eq!(
        starts(&after),
        [
            "2027-03-15T08:00:00Z",
            "2027-03-29T07:00:00Z",
            "2027-04-05T07:00:00Z",
            "2027-04-13T07:00:00Z",
            "2027-04-19T07:00:00Z"
        ],
        "the same six occurrences less the EXDATE, the edited one kept"
    );
    let reasons: Vec<&str> = after["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "Weekly review",
            "Weekly review",
            "Fortnightly from April",
            "Weekly review",
            "Fortnightly from April"
        ]
    );
    // A DTSTART without a zone, or one that happens twice, is refused.
    for rule in [
        "DTSTART:20270315T090000\nRRULE:FREQ=WEEKLY",
        "DTSTART;TZID=Europe/Berlin:20271031T023000\nRRULE:FREQ=DAILY",
    ] {
        let refused = manager
            .post(
                "/api/v1/visit-plans",
                &json!({"customer_id": customer, "duration_minutes": 60, "rrule": rule,
                "purpose": "greeting", "method": "phone", "reason": "x"}),
            )
            .await;
        assert_eq!(refused.status, 422, "{rule}: {}", refused.text);
        assert_eq!(refused.error_fields(), ["rrule"]);
    }
    // A deleted customer's plans plan nothing more (this one starts beyond the 90 days
    // planned at creation).
    let gone = customer_at_shop(&manager, json!({})).await;
    let orphan = manager
        .create(
            "/api/v1/visit-plans",
            &json!({"customer_id": gone, "duration_minutes": 30,
            "rrule": "DTSTART;TZID=Asia/Shanghai:20270607T100000\nRRULE:FREQ=WEEKLY;COUNT=4",
            "purpose": "greeting", "method": "phone", "reason": "x"}),
        )
        .await;
    assert_eq!(
        manager
            .delete(&format!("/api/v1/customers/{gone}"))
            .await
            .status,
        204
    );
    app.execute(&format!(
        "UPDATE visit_plans SET materialised_until = NULL WHERE id = '{}'",
        id_of(&orphan)
    ))
    .await;
    assert_eq!(
        jobs::materialise_due(&mut conn, Utc::now(), settings.horizon)
            .await
            .unwrap()
            .1,
        0
    );
    // Ending a plan removes what nobody touched.
    let ended = manager
        .delete(&format!("/api/v1/visit-plans/{split_id}"))
        .await;
    assert_eq!(ended.status, 204, "{}", ended.text);
    let left = manager
        .get(&format!("/api/v1/visits?customer_id={customer}"))
        .await
        .body;
    assert_eq!(
        starts(&left),
        [
            "2027-03-15T08:00:00Z",
            "2027-03-29T07:00:00Z",
            "2027-04-13T07:00:00Z"
        ]
    );
}

#[actix_web::test]
async fn the_missed_visit_job_marks_each_once_under_two_runners() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let customer = customer_at_shop(&manager, json!({})).await;
    let mut ids = Vec::new();
    for hours in 0..20 {
        ids.push(id_of(
            &visit(&manager, &customer, -5 - hours, json!({})).await,
        ));
    }
    let recent = id_of(&visit(&manager, &customer, -2, json!({})).await);
    let now = Utc::now();
    let grace = Duration::hours(2);
    let (mut one, mut two) = (
        app.context.pool().get().await.unwrap(),
        app.context.pool().get().await.unwrap(),
    );
    let (a, b) = tokio::join!(
        async {
            jobs::mark_missed_batch(&mut one, now, grace, 7)
                .await
                .unwrap()
                + jobs::mark_missed(&mut one, now, grace).await.unwrap()
        },
        async {
            jobs::mark_missed_batch(&mut two, now, grace, 7)
                .await
                .unwrap()
                + jobs::mark_missed(&mut two, now, grace).await.unwrap()
        },
    );
    assert_eq!(a + b, 20, "each missed visit marked by one runner");
    assert_eq!(jobs::mark_missed(&mut one, now, grace).await.unwrap(), 0);
    for id in &ids {
        let events: Vec<String> = app.events_of(id).await.into_iter().map(|e| e.0).collect();
        assert_eq!(
            events.iter().filter(|e| *e == "visit.missed").count(),
            1,
            "{events:?}"
        );
    }
    assert_eq!(
        manager.get(&format!("/api/v1/visits/{recent}")).await.body["status"],
        "planned",
        "within the grace"
    );
}

#[actix_web::test]
async fn plans_materialise_once_each_on_two_connections() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let mut plans = Vec::new();
    for _ in 0..6 {
        let customer = customer_at_shop(&manager, json!({})).await;
        let plan = manager
            .create(
                "/api/v1/visit-plans",
                &json!({"customer_id": customer, "duration_minutes": 30,
                "rrule": "DTSTART;TZID=Asia/Shanghai:20270104T100000\nRRULE:FREQ=WEEKLY;COUNT=4",
                "purpose": "relationship_maintenance", "method": "phone", "reason": "Weekly call"}),
            )
            .await;
        plans.push(id_of(&plan));
    }
    app.execute("UPDATE visit_plans SET materialised_until = NULL")
        .await;
    app.execute("DELETE FROM visits WHERE plan_id IS NOT NULL")
        .await;
    let settings = rapport::visits::VisitSettings {
        grace: Duration::hours(2),
        horizon: Duration::days(400),
    };
    const PLANNED_EVENTS: &str =
        "SELECT count(*) AS count FROM events WHERE type = 'visit.planned'";
    let events_before = app.count(PLANNED_EVENTS).await;
    let (mut one, mut two) = (
        app.context.pool().get().await.unwrap(),
        app.context.pool().get().await.unwrap(),
    );
    let (_, planned) = jobs::run_due_on(&mut [&mut one, &mut two], settings, Utc::now())
        .await
        .unwrap();
    assert_eq!(planned, 24, "four occurrences of each of six plans");
    for plan in &plans {
        assert_eq!(
            app.count(&format!(
                "SELECT count(DISTINCT occurrence_at) AS count FROM visits WHERE plan_id = '{plan}'"
            ))
            .await,
            4
        );
    }
    assert_eq!(
        app.count(PLANNED_EVENTS).await,
        events_before + 24,
        "one event per occurrence"
    );
    let (_, again) = jobs::run_due_on(&mut [&mut one, &mut two], settings, Utc::now())
        .await
        .unwrap();
    assert_eq!(again, 0, "nothing left to plan");
}

#[actix_web::test]
async fn the_due_list_puts_the_most_overdue_first_and_leaves_out_the_planned() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let owner = manager.user_id.unwrap();
    let owned = json!({"owner_id": owner});
    let with = |tier: &str| {
        let mut fields = owned.clone();
        fields["tier"] = json!(tier);
        fields
    };
    let key = customer_at_shop(&manager, with("key")).await;
    let ordinary = customer_at_shop(&manager, with("ordinary")).await;
    let never = customer_at_shop(&manager, owned.clone()).await;
    let planned = customer_at_shop(&manager, owned.clone()).await;
    let _elsewhere = customer_at_shop(&manager, json!({})).await;
    // The key customer was last visited 40 days ago (due after 30: overdue by 10); the
    // ordinary one 85 days ago (due in 5 days).
    for (customer, days) in [(&key, 40), (&ordinary, 85)] {
        let v = id_of(&visit(&manager, customer, 1, json!({})).await);
        act(&manager, &v, "confirm", json!({})).await;
        act(&manager, &v, "check-in", north(0.0, 5.0, Utc::now())).await;
        act(&manager, &v, "complete", json!({"outcome": "ok"})).await;
        app.execute(&format!(
            "UPDATE visits SET actual_end = now() - interval '{days} days' WHERE id = '{v}'"
        ))
        .await;
        app.execute(&format!(
            "SELECT visit_due_refresh(ARRAY['{customer}'::uuid])"
        ))
        .await;
    }
    visit(&manager, &planned, 48, json!({})).await;
    let due = manager
        .get(&format!("/api/v1/visits/due?owner_id={owner}&within=14d"))
        .await;
    assert_eq!(due.status, 200, "{}", due.text);
    let rows = due.body["data"].as_array().unwrap();
    let order: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["customer"]["id"].as_str().unwrap(),
                r["due_state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            (key.as_str(), "overdue"),
            (never.as_str(), "never_visited"),
            (ordinary.as_str(), "due_soon")
        ]
    );
    assert_eq!(rows[0]["overdue_days"], 10);
    assert_eq!(rows[2]["overdue_days"], -5);
    let short = manager
        .get(&format!("/api/v1/visits/due?owner_id={owner}&within=1d"))
        .await
        .body;
    assert_eq!(
        short["data"].as_array().unwrap().len(),
        2,
        "the ordinary customer is not due within a day"
    );
    // A customer's own cadence moves them; so does a tier's.
    let own = manager
        .send(
            "PUT",
            &format!("/api/v1/visit-cadences/customers/{ordinary}"),
            Some(&json!({"interval_days": 60, "tolerance_days": 5})),
            &[],
        )
        .await;
    assert_eq!(own.status, 200, "{}", own.text);
    let first = manager
        .get(&format!("/api/v1/visits/due?owner_id={owner}"))
        .await
        .body;
    assert_eq!(
        first["data"][0]["customer"]["id"], ordinary,
        "overdue by 25 days now"
    );
    let cleared = manager
        .delete(&format!("/api/v1/visit-cadences/customers/{ordinary}"))
        .await;
    assert_eq!(cleared.status, 204);
    manager
        .patch("/api/v1/visit-cadences/key", &json!({"interval_days": 60}))
        .await;
    let states: Vec<String> = manager
        .get(&format!("/api/v1/visits/due?owner_id={owner}"))
        .await
        .body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["customer"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !states.contains(&key),
        "the key tier's longer cadence takes them off: {states:?}"
    );
    // Changing the owner of a customer moves them to the new owner's list.
    manager
        .patch(
            &format!("/api/v1/customers/{never}"),
            &json!({"owner_id": null}),
        )
        .await;
    let mine = manager
        .get(&format!("/api/v1/visits/due?owner_id={owner}"))
        .await
        .body;
    assert!(
        mine["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["customer"]["id"] != never)
    );
    let bad = manager.get("/api/v1/visits/due?within=14").await;
    assert_eq!(bad.status, 400, "{}", bad.text);
}

#[actix_web::test]
async fn boards_draw_the_owners_local_days_with_visits_follow_ups_and_deadlines() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let owner = manager.user_id.unwrap();
    app.execute(&format!(
        "UPDATE users SET time_zone = 'Asia/Shanghai' WHERE id = '{owner}'"
    ))
    .await;
    let customer = customer_at_shop(&manager, json!({})).await;
    // Monday 2026-11-23 00:30 in Shanghai is Sunday 16:30 UTC: on Monday's board.
    let monday = id_of(&visit(&manager, &customer, 0, json!({"scheduled_start": "2026-11-22T16:30:00Z", "scheduled_end": "2026-11-22T17:30:00Z"})).await);
    let sunday = id_of(&visit(&manager, &customer, 0, json!({"scheduled_start": "2026-11-29T15:00:00Z", "scheduled_end": "2026-11-29T15:30:00Z", "method": "phone"})).await);
    let next_week = visit(
        &manager,
        &customer,
        0,
        json!({"scheduled_start": "2026-11-29T16:30:00Z", "scheduled_end": "2026-11-29T17:00:00Z"}),
    )
    .await;
    act(&manager, &monday, "confirm", json!({})).await;
    act(
        &manager,
        &monday,
        "check-in",
        north(0.0, 5.0, at("2026-11-22T16:35:00Z")),
    )
    .await;
    act(
        &manager,
        &monday,
        "complete",
        json!({"outcome": "ok", "follow_ups": [{"title": "Call back", "due_on": "2026-11-25"}]}),
    )
    .await;
    let complaint = id_of(
        &manager
            .complaint(
                &customer,
                json!({"assignee_id": owner, "promised_by": "2026-11-26T02:00:00Z"}),
            )
            .await,
    );
    // The owner's own weekly target beats everyone's; the monthly one is everyone's.
    for target in [
        json!({"period": "week", "total": 30}),
        json!({"owner_id": owner, "period": "week", "total": 50}),
        json!({"period": "month", "total": 200}),
    ] {
        manager.create("/api/v1/visit-targets", &target).await;
    }
    let board = manager
        .get(&format!(
            "/api/v1/boards/weekly?owner_id={owner}&week=2026-W48"
        ))
        .await;
    assert_eq!(board.status, 200, "{}", board.text);
    let b = &board.body;
    assert_eq!(b["time_zone"], "Asia/Shanghai");
    let days = b["days"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    assert_eq!(days[0]["date"], "2026-11-23");
    assert_eq!(days[0]["visits"][0]["id"], monday);
    assert_eq!(days[0]["visits"][0]["status"], "completed");
    assert_eq!(days[6]["visits"][0]["id"], sunday);
    assert!(days.iter().all(|d| {
        d["visits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["id"] != next_week["id"])
    }));
    assert_eq!(days[2]["follow_ups"][0]["title"], "Call back");
    assert_eq!(days[3]["complaint_deadlines"][0]["complaint_id"], complaint);
    assert_eq!(b["focus"]["week"]["visits"], 2);
    assert_eq!(b["focus"]["week"]["completed"], 1);
    assert_eq!(b["focus"]["week"]["follow_ups_due"], 1);
    assert_eq!(b["focus"]["week"]["target"], 50);
    assert!(b["focus"]["today"]["date"].is_string());
    let month = manager
        .get(&format!(
            "/api/v1/boards/monthly?owner_id={owner}&month=2026-11"
        ))
        .await;
    assert_eq!(month.status, 200, "{}", month.text);
    let m = &month.body;
    assert_eq!(m["weeks"][0]["week"], "2026-W44");
    assert_eq!(m["weeks"][0]["days"][0]["date"], "2026-11-01");
    let last = m["weeks"].as_array().unwrap().last().unwrap();
    assert_eq!(last["week"], "2026-W49", "30 November is a Monday");
    assert_eq!(last["days"][0]["visits"], 1);
    assert_eq!(m["totals"]["visits"], 3);
    assert_eq!(m["totals"]["completed"], 1);
    assert_eq!(m["target"], 200);
    let bad = manager.get("/api/v1/boards/weekly?week=2027-W53").await;
    assert_eq!(bad.status, 400, "2027 has 52 weeks: {}", bad.text);
}

#[actix_web::test]
async fn targets_and_the_report_count_visits_by_owner_and_day() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let agent = app.client(Role::Agent).await;
    let owner = agent.user_id.unwrap();
    let customer = customer_at_shop(&manager, json!({})).await;
    let target = manager
        .create(
            "/api/v1/visit-targets",
            &json!({"period": "day", "total": 10, "by_method": {"in_person": 7, "phone": 3}}),
        )
        .await;
    assert_eq!(target["by_method"], json!({"in_person": 7, "phone": 3}));
    let twice = manager
        .post(
            "/api/v1/visit-targets",
            &json!({"period": "day", "total": 8}),
        )
        .await;
    assert_eq!(twice.status, 409, "{}", twice.text);
    let refused = agent
        .post(
            "/api/v1/visit-targets",
            &json!({"period": "week", "total": 8}),
        )
        .await;
    assert_eq!(refused.status, 403);
    let day = "2026-11-24";
    let slot = |h: u32, method: &str| json!({"scheduled_start": format!("{day}T0{h}:00:00Z"), "scheduled_end": format!("{day}T0{h}:30:00Z"), "method": method});
    let a = id_of(&visit(&agent, &customer, 0, slot(1, "in_person")).await);
    let b = id_of(&visit(&agent, &customer, 0, slot(2, "phone")).await);
    let c = id_of(&visit(&agent, &customer, 0, slot(3, "in_person")).await);
    visit(&agent, &customer, 0, slot(4, "in_person")).await;
    for id in [&a, &b] {
        act(&agent, id, "confirm", json!({})).await;
    }
    act(
        &agent,
        &a,
        "check-in",
        north(10.0, 5.0, at("2026-11-24T01:00:00Z")),
    )
    .await;
    act(
        &agent,
        &a,
        "check-out",
        north(10.0, 5.0, at("2026-11-24T01:40:00Z")),
    )
    .await;
    act(&agent, &a, "complete", json!({"outcome": "ok"})).await;
    act(&agent, &b, "no-show", json!({})).await;
    act(&agent, &c, "cancel", json!({"reason": "staff_unavailable"})).await;
    let report = manager
        .get(&format!("/api/v1/analytics/visits?from=2026-11-24T00:00:00Z&to=2026-11-25T00:00:00Z&group_by=owner,day&owner_id={owner}"))
        .await;
    assert_eq!(report.status, 200, "{}", report.text);
    let g = &report.body["groups"][0];
    assert_eq!(g["owner_id"], owner.to_string());
    assert_eq!(g["period_start"], day);
    assert_eq!(
        (
            g["scheduled"].clone(),
            g["completed"].clone(),
            g["no_show"].clone(),
            g["cancelled"].clone(),
            g["open"].clone()
        ),
        (json!(4), json!(1), json!(1), json!(1), json!(1))
    );
    assert_eq!(g["target"], 10);
    assert_eq!(g["target_attainment"], 0.1);
    assert!((g["completion_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(g["average_duration_minutes"], 40.0);
    assert_eq!(g["within_radius_share"], 1.0);
    let in_person = g["by_method"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["method"] == "in_person")
        .unwrap();
    assert_eq!(
        (
            in_person["scheduled"].clone(),
            in_person["completed"].clone(),
            in_person["target"].clone()
        ),
        (json!(3), json!(1), json!(7))
    );
    // An agent plans their own visits only.
    let for_other = agent
        .post("/api/v1/visits", &json!({"customer_id": customer, "owner_id": manager.user_id, "scheduled_start": "2026-12-10T01:00:00Z",
            "scheduled_end": "2026-12-10T02:00:00Z", "purpose": "sales", "method": "phone", "reason": "x"}))
        .await;
    assert_eq!(for_other.status, 403, "{}", for_other.text);
    let given_away = agent
        .patch(
            &format!("/api/v1/visits/{a}"),
            &json!({"owner_id": manager.user_id}),
        )
        .await;
    assert_eq!(given_away.status, 403, "{}", given_away.text);
}

#[actix_web::test]
async fn visits_join_the_customers_timeline_export_merge_and_erase() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let customer = customer_at_shop(&manager, json!({})).await;
    let duplicate = customer_at_shop(&manager, json!({})).await;
    let id = id_of(
        &visit(
            &manager,
            &customer,
            1,
            json!({"agenda": "Bring Zebra-7781 samples", "reason": "Quokka-5512 follow-up"}),
        )
        .await,
    );
    act(&manager, &id, "confirm", json!({})).await;
    act(&manager, &id, "check-in", north(0.0, 5.0, Utc::now())).await;
    act(
        &manager,
        &id,
        "complete",
        json!({"outcome": "Ocelot-3344 liked it", "next_steps": "Narwhal-9911",
        "contacts_met": ["Pangolin-2288"], "follow_ups": [{"title": "Send Axolotl-6655"}]}),
    )
    .await;
    let moved = id_of(&visit(&manager, &duplicate, 2, json!({})).await);
    let timeline = manager
        .get(&format!("/api/v1/customers/{customer}/timeline"))
        .await
        .body;
    assert!(
        timeline["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "visit" && e["id"] == id)
    );
    let merged = manager
        .post(
            "/api/v1/customers/merge",
            &json!({"survivor_id": customer, "duplicate_id": duplicate}),
        )
        .await;
    assert_eq!(merged.status, 200, "{}", merged.text);
    assert_eq!(
        manager.get(&format!("/api/v1/visits/{moved}")).await.body["customer_id"],
        customer
    );
    let export = manager
        .get(&format!("/api/v1/customers/{customer}/export"))
        .await
        .body;
    assert_eq!(export["visits"].as_array().unwrap().len(), 2);
    conformance::erase_reaches_everything(
        &manager,
        &customer,
        &[
            "Zebra-7781",
            "Quokka-5512",
            "Ocelot-3344",
            "Narwhal-9911",
            "Pangolin-2288",
            "Axolotl-6655",
        ],
    )
    .await;
    let kept = manager.get(&format!("/api/v1/visits/{id}")).await.body;
    assert_eq!(kept["status"], "completed", "the visit's figures stay");
    assert_eq!(
        kept["latitude"],
        Value::Null,
        "where the customer lives goes"
    );
}

#[actix_web::test]
async fn the_due_list_and_the_owners_visits_use_their_indexes_at_100k() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let owner = manager.user_id.unwrap();
    let (other, _) = app.create_user(Role::Agent).await;
    let customer = customer_at_shop(&manager, json!({})).await;
    app.execute(&format!(
        "INSERT INTO customers (id, display_name, owner_id, created_at) \
         SELECT gen_random_uuid(), 'c' || i, CASE WHEN i % 50 = 0 THEN '{owner}'::uuid END, now() - i * interval '1 minute' \
         FROM generate_series(1, 100000) i"
    ))
    .await;
    app.execute(&format!(
        "INSERT INTO visits (id, customer_id, owner_id, scheduled_start, scheduled_end, purpose, method, reason, status) \
         SELECT gen_random_uuid(), '{customer}', CASE WHEN i % 50 = 0 THEN '{owner}'::uuid ELSE '{other}'::uuid END, \
           now() - i * interval '1 hour', now() - i * interval '1 hour' + interval '30 minutes', 'sales', 'phone', 'r', 'completed' \
         FROM generate_series(1, 100000) i"
    ))
    .await;
    app.execute("ANALYZE customers").await;
    app.execute("ANALYZE visits").await;
    // Vacuumed, as the seed leaves it, so that the page is read from the index alone.
    app.execute("VACUUM ANALYZE visit_due").await;
    assert!(
        app.count("SELECT count(*) AS count FROM visit_due").await > 100_000,
        "new customers join the due list"
    );
    let mut conn = app.context.pool().get().await.unwrap();
    let due = rapport::visits::cadences::due_query(
        Some(owner.into()),
        Utc::now() + Duration::days(14),
        None,
        51,
    );
    let owners = rapport::visits::requests::list_query(
        &rapport::visits::requests::VisitFilters {
            owner_id: Some(owner.into()),
            from: Some(Utc::now() - Duration::days(7)),
            ..Default::default()
        },
        None,
        51,
    );
    for (name, lines, index) in [
        (
            "due",
            diesel_async::RunQueryDsl::load::<String>(Explain::plan(due), &mut conn)
                .await
                .unwrap(),
            "Index Only Scan using visit_due_owner_idx",
        ),
        (
            "owner",
            diesel_async::RunQueryDsl::load::<String>(Explain::plan(owners), &mut conn)
                .await
                .unwrap(),
            "visits_owner_idx",
        ),
    ] {
        let text = lines.join("\n");
        assert!(text.contains(index), "{name} should use {index}:\n{text}");
        assert!(!text.contains("Seq Scan"), "{name}:\n{text}");
    }
    crate::common::assert_runs_on_its_generic_plan(&mut conn, "SELECT d.owner_id", || {
        rapport::visits::cadences::due_query(
            Some(owner.into()),
            Utc::now() + Duration::days(14),
            None,
            21,
        )
    })
    .await;
    let page = manager
        .get(&format!("/api/v1/visits/due?owner_id={owner}&limit=5"))
        .await
        .body;
    assert_eq!(page["data"].as_array().unwrap().len(), 5);
}

/// Times a client sends are bounded: a visit ending before it starts is a body that does
/// not validate (`422` naming `scheduled_end`); a capture from before the visit existed
/// (less a day) or from the future is refused, so no visit lasts centuries; a capture
/// without a position shows `null` coordinates, not a point in the Gulf of Guinea.
#[actix_web::test]
async fn client_times_are_bounded_and_absent_positions_are_null() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let customer = customer_at_shop(&manager, json!({})).await;
    let start = Utc::now() + Duration::hours(1);
    let backwards = manager
        .post(
            "/api/v1/visits",
            &json!({"customer_id": customer, "scheduled_start": stamp(start),
                "scheduled_end": stamp(start - Duration::minutes(30)), "purpose": "sales",
                "method": "phone", "reason": "Call back"}),
        )
        .await;
    assert_eq!(backwards.status, 422, "{}", backwards.text);
    assert_eq!(backwards.error_fields(), ["scheduled_end"]);

    let id = id_of(&visit(&manager, &customer, 1, json!({"method": "phone"})).await);
    act(&manager, &id, "confirm", json!({})).await;
    for captured_at in ["0000-01-01T00:00:00Z", "1990-01-01T00:00:00Z"] {
        let ancient = manager
            .post(
                &format!("/api/v1/visits/{id}/check-in"),
                &json!({"captured_at": captured_at}),
            )
            .await;
        assert_eq!(ancient.status, 422, "{captured_at}: {}", ancient.text);
        assert_eq!(ancient.error_fields(), ["captured_at"]);
    }
    let future = manager
        .post(
            &format!("/api/v1/visits/{id}/check-in"),
            &json!({"captured_at": stamp(Utc::now() + Duration::hours(1))}),
        )
        .await;
    assert_eq!(future.status, 422, "{}", future.text);
    let checked_in = act(
        &manager,
        &id,
        "check-in",
        json!({"captured_at": stamp(Utc::now())}),
    )
    .await;
    let capture = &checked_in["check_in"];
    assert!(capture["latitude"].is_null(), "{capture}");
    assert!(capture["longitude"].is_null(), "{capture}");
    assert!(capture["accuracy_m"].is_null(), "{capture}");
    assert!(capture["distance_m"].is_null(), "{capture}");
}

/// A field agent at the door checks in to a planned visit nobody confirmed; the visit shows
/// it was not confirmed. Confirmation stays available and recorded, and a reschedule drops
/// it. Actions whose body is only an optional note take no body, or an empty one.
#[actix_web::test]
async fn a_planned_visit_checks_in_without_confirmation_and_notes_are_optional() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let customer = customer_at_shop(&manager, json!({})).await;
    let walk_in = id_of(&visit(&manager, &customer, 0, json!({})).await);
    let checked_in = act(&manager, &walk_in, "check-in", north(0.0, 5.0, Utc::now())).await;
    assert_eq!(checked_in["status"], "checked_in");
    assert!(checked_in["confirmed_at"].is_null(), "{checked_in}");

    let booked = id_of(&visit(&manager, &customer, 2, json!({})).await);
    let path = format!("/api/v1/visits/{booked}/confirm");
    let bare = manager.send("POST", &path, None, &[]).await;
    assert_eq!(bare.status, 200, "no body: {}", bare.text);
    assert!(bare.body["confirmed_at"].is_string(), "{}", bare.text);
    let moved = Utc::now() + Duration::days(3);
    let rescheduled = act(
        &manager,
        &booked,
        "reschedule",
        json!({"scheduled_start": stamp(moved),
        "scheduled_end": stamp(moved + Duration::hours(1)), "reason": "Customer asked"}),
    )
    .await;
    assert!(rescheduled["confirmed_at"].is_null(), "{rescheduled}");
    let empty_json = manager
        .send("POST", &path, None, &[("Content-Type", "application/json")])
        .await;
    assert_eq!(
        empty_json.status, 200,
        "empty JSON body: {}",
        empty_json.text
    );
    let no_show = manager
        .send(
            "POST",
            &format!("/api/v1/visits/{booked}/no-show"),
            None,
            &[],
        )
        .await;
    assert_eq!(no_show.status, 200, "{}", no_show.text);
    let bad = manager
        .post(
            &format!("/api/v1/visits/{walk_in}/confirm"),
            &json!({"note": 7}),
        )
        .await;
    assert!(matches!(bad.status, 409 | 422), "{}", bad.text);
}
