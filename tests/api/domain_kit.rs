//! The domain kit's guarantees, through customers, orders, users and API keys: one write path
//! (preconditions, rights, audit, events), the registry's reach, and the conformance checks
//! each domain runs.

use std::collections::HashSet;

use rapport::auth::Role;
use serde_json::json;

use crate::common::TestApp;
use crate::kit::{conformance, id_of};

#[actix_web::test]
async fn customers_meet_the_conformance_checks() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let customer = manager.customer(json!({})).await;
    let path = format!("/api/v1/customers/{}", id_of(&customer));
    let agent = app.client(Role::Agent).await;
    let own = agent.customer(json!({})).await;
    assert_eq!(own["owner_id"], agent.user_id.unwrap().to_string());
    conformance::stale_if_match_is_refused(&manager, &path, &json!({"notes": "n"})).await;
    conformance::agents_cannot_write_anothers(&app, &path, &json!({"notes": "x"})).await;
    conformance::post_replays_under_idempotency_key(
        &manager,
        "/api/v1/customers",
        &json!({"display_name": "Replayed"}),
    )
    .await;
    let mut expected = HashSet::new();
    for _ in 0..5 {
        expected.insert(id_of(&manager.customer(json!({})).await));
    }
    conformance::list_walk_visits_every_row_once(
        &manager,
        "/api/v1/customers?limit=2",
        &expected,
        async || {
            manager.customer(json!({})).await;
        },
    )
    .await;
}

#[actix_web::test]
async fn customer_writes_emit_their_events_and_failures_emit_none() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let customer = manager.customer(json!({"display_name": "Evented"})).await;
    let id = id_of(&customer);
    let created = conformance::write_emitted(&app, &id, "customer.created").await;
    assert_eq!(
        created["display_name"], "Evented",
        "the event holds the customer"
    );

    let path = format!("/api/v1/customers/{id}");
    manager.patch(&path, &json!({"notes": "changed"})).await;
    let updated = conformance::write_emitted(&app, &id, "customer.updated").await;
    assert_eq!(updated["notes"], "changed");
    let events = app.events_of(&id).await.len();
    manager.patch(&path, &json!({"notes": "changed"})).await;
    assert_eq!(
        app.events_of(&id).await.len(),
        events,
        "no change, no event"
    );

    conformance::failed_write_emits_nothing(&app, async || {
        manager
            .patch(&path, &json!({"owner_id": uuid::Uuid::now_v7()}))
            .await
    })
    .await;
    conformance::failed_write_emits_nothing(&app, async || {
        manager
            .send(
                "PATCH",
                &path,
                Some(&json!({"notes": "x"})),
                &[("If-Match", "\"1\"")],
            )
            .await
    })
    .await;

    let duplicate = id_of(&manager.customer(json!({})).await);
    let merged = manager
        .post(
            "/api/v1/customers/merge",
            &json!({"survivor_id": id, "duplicate_id": duplicate}),
        )
        .await;
    assert_eq!(merged.status, 200, "{}", merged.text);
    assert!(
        app.events_of(&id)
            .await
            .iter()
            .any(|(t, _)| t == "customer.merged")
    );
    let gone = conformance::write_emitted(&app, &duplicate, "customer.deleted").await;
    assert_eq!(
        gone,
        json!({"id": duplicate}),
        "a deletion carries the id only"
    );

    manager.post(&format!("{path}/erase"), &json!({})).await;
    conformance::write_emitted(&app, &id, "customer.erased").await;
    let other = id_of(&manager.customer(json!({})).await);
    let deleted = manager.delete(&format!("/api/v1/customers/{other}")).await;
    assert_eq!(deleted.status, 204);
    conformance::write_emitted(&app, &other, "customer.deleted").await;
}

#[actix_web::test]
async fn orders_emit_created_and_updated_once() {
    let app = TestApp::spawn().await;
    let manager = app
        .key_client(&["customers:write", "orders:write", "orders:read"])
        .await;
    let customer = id_of(&manager.customer(json!({})).await);
    let order = manager.order(&customer, "ev-1", 1000).await;
    let order_id = id_of(&order);
    let created = conformance::write_emitted(&app, &order_id, "order.created").await;
    assert_eq!(
        created["lines"][0]["sku"], "SKU-1",
        "the event holds the order"
    );
    assert_eq!(created["customer_id"], customer.as_str());
    let figures = conformance::write_emitted(&app, &customer, "customer.updated").await;
    assert_eq!(
        figures["order_count"], 1,
        "the figures' change is announced"
    );

    let events = app.event_count().await;
    let repeat = manager
        .post(
            "/api/v1/orders",
            &json!({"source": "test", "external_id": "ev-1", "customer": {"id": customer},
                    "currency": "CNY", "total_minor": 1000, "ordered_at": "2026-11-01T10:00:00Z",
                    "lines": [{"sku": "SKU-1", "name": "Item", "quantity": 1, "unit_price_minor": 1000}]}),
        )
        .await;
    assert_eq!(repeat.status, 200, "{}", repeat.text);
    assert_eq!(
        app.event_count().await,
        events,
        "a repeated order emits nothing"
    );

    let refunded = manager
        .patch(
            &format!("/api/v1/orders/{order_id}"),
            &json!({"status": "refunded"}),
        )
        .await;
    assert_eq!(refunded.status, 200, "{}", refunded.text);
    let updated = conformance::write_emitted(&app, &order_id, "order.updated").await;
    assert_eq!(updated["status"], "refunded");
    conformance::failed_write_emits_nothing(&app, async || {
        manager
            .patch(
                &format!("/api/v1/orders/{order_id}"),
                &json!({"status": "paid"}),
            )
            .await
    })
    .await;
}

#[actix_web::test]
async fn role_changes_deactivations_passwords_and_revocations_are_audited() {
    let app = TestApp::spawn().await;
    let admin = app.client(Role::Admin).await;
    let (user, _) = app.create_user(Role::Agent).await;
    let user = user.to_string();
    let path = format!("/api/v1/users/{user}");
    assert_eq!(
        admin.patch(&path, &json!({"role": "manager"})).await.status,
        200
    );
    assert_eq!(
        admin.patch(&path, &json!({"active": false})).await.status,
        200
    );
    assert_eq!(
        admin
            .patch(&path, &json!({"password": "another long password"}))
            .await
            .status,
        200
    );
    assert_eq!(
        app.audit_actions(&user).await,
        ["created", "updated", "updated", "updated"]
    );
    let changes = app.events_of(&user).await;
    assert_eq!(changes.last().unwrap().0, "user.updated");
    for table in ["audit_log", "events"] {
        let hashes = app
            .count(&format!(
                "SELECT count(*) AS count FROM {table} t, users u WHERE t::text LIKE '%' || u.password_hash || '%'"
            ))
            .await;
        assert_eq!(hashes, 0, "{table} holds a password hash");
    }
    let password_audited = app
        .count(&format!(
            "SELECT count(*) AS count FROM audit_log WHERE entity_id = '{user}' AND changes ? 'password_changed_at'"
        ))
        .await;
    assert_eq!(password_audited, 2, "created, then changed");

    let key = admin
        .create(
            "/api/v1/api-keys",
            &json!({"name": "shop", "scopes": ["orders:write"]}),
        )
        .await;
    let key_id = id_of(&key);
    let key_path = format!("/api/v1/api-keys/{key_id}");
    assert_eq!(admin.delete(&key_path).await.status, 204);
    assert_eq!(
        admin.delete(&key_path).await.status,
        204,
        "twice is harmless"
    );
    assert_eq!(app.audit_actions(&key_id).await, ["created", "revoked"]);
    let revoked = conformance::write_emitted(&app, &key_id, "api_key.revoked").await;
    assert!(revoked["revoked_at"].is_string());
    assert!(!revoked.to_string().contains(key["key"].as_str().unwrap()));
}

#[actix_web::test]
async fn every_table_naming_a_customer_is_claimed_by_a_registered_domain() {
    let app = TestApp::spawn().await;
    let registry = rapport::domains::registry();
    let claimed: HashSet<&str> = registry
        .domains()
        .iter()
        .flat_map(|d| d.tables.iter().copied())
        .collect();
    // The kit's own ledgers: each domain's erase step redacts its entries there.
    let kit = ["events"];
    for table in app.tables_naming_customers().await {
        assert!(
            claimed.contains(table.as_str()) || kit.contains(&table.as_str()),
            "{table} names customers but no registered domain claims it (its erase would be forgotten)"
        );
    }
}

#[actix_web::test]
async fn erase_reaches_every_table() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let secrets = ["Gu Wenxin", "wenxin@private.example", "+8613712345678"];
    let key = "erase-reach-1";
    let body = json!({"display_name": secrets[0], "emails": [secrets[1]], "phones": [secrets[2]]});
    let post_under_key = async || {
        manager
            .send(
                "POST",
                "/api/v1/customers",
                Some(&body),
                &[("Idempotency-Key", key)],
            )
            .await
    };
    let created = post_under_key().await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = id_of(&created.body);
    manager
        .patch(
            &format!("/api/v1/customers/{id}"),
            &json!({"notes": "met at the fair"}),
        )
        .await;
    manager.order(&id, "erase-1", 500).await;
    conformance::erase_reaches_everything(&manager, &id, &secrets).await;
    let replay = post_under_key().await;
    assert_eq!(
        replay.header("idempotent-replayed"),
        Some("true"),
        "still not run twice"
    );
    assert!(!replay.text.contains(secrets[0]));
}

#[actix_web::test]
async fn a_stored_value_no_enumeration_knows_fails_loudly() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let id = id_of(&manager.customer(json!({"level": "core"})).await);
    let mut conn = app.context.pool().get().await.unwrap();
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut conn,
        &format!(
            "ALTER TABLE customers DROP CONSTRAINT customers_level_check; \
             UPDATE customers SET level = 'legendary' WHERE id = '{id}'"
        ),
    )
    .await
    .unwrap();
    let read = manager.get(&format!("/api/v1/customers/{id}")).await;
    assert_eq!(read.status, 500, "not read as another level: {}", read.text);
    assert!(!read.text.contains("potential"));
}

/// A domain reaches another only through the other's published `api` module (what it may
/// ask of it) or the registry; the club, which only reacts to others, is reached through the
/// registry alone. Read from the source, so a new import that crosses the line fails here.
#[test]
fn domains_reach_each_other_only_through_their_api_or_the_registry() {
    let domains: Vec<&str> = table_owners().into_iter().map(|(d, _)| d).collect();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut crossings = Vec::new();
    for &domain in &domains {
        let mut files = vec![src.join(domain)];
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for other in domains.iter().filter(|o| **o != domain) {
                let named = format!("crate::{other}::");
                let published = format!("crate::{other}::api");
                for (n, line) in text.lines().enumerate() {
                    let crosses = line
                        .match_indices(&named)
                        .any(|(at, _)| !line[at..].starts_with(&published) || *other == "club");
                    if crosses {
                        crossings.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                    }
                }
            }
        }
    }
    assert!(
        crossings.is_empty(),
        "imports across domains:\n{}",
        crossings.join("\n")
    );
}

/// The tables every domain owns.
fn table_owners() -> Vec<(&'static str, &'static [&'static str])> {
    rapport::domains::owned_tables()
}

/// The names a source text gives the schema's tables: the items of `schema::{...}` imports,
/// `schema::<table>` paths, and the words after `FROM`, `JOIN`, `UPDATE` and `INTO` in SQL.
/// Comments are left out.
fn tables_named(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut named = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("schema::") {
        rest = &rest[at + "schema::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            named.extend(
                group[..end]
                    .split(',')
                    .map(|item| item.trim().split("::").next().unwrap_or("").to_owned()),
            );
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            named.push(rest[..end].to_owned());
        }
    }
    let words: Vec<&str> = code
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    for pair in words.windows(2) {
        let keyword = pair[0].to_ascii_lowercase();
        if matches!(keyword.as_str(), "from" | "join" | "update" | "into") {
            named.push(pair[1].to_owned());
        }
    }
    named
}

/// A domain's tables are its own. Another domain's code names none of them, not even in
/// SQL text: it asks the owner's `api` module, or reads a view the owner publishes as a read
/// model (`customers::api::READ_MODELS`, `orders::api::READ_MODELS`). Read from the source,
/// so a new cross-domain read fails here; every table of the schema is owned by one domain
/// or is the kit's.
#[test]
fn domains_read_only_their_own_tables() {
    const KIT_TABLES: [&str; 6] = [
        "users",
        "api_keys",
        "refresh_tokens",
        "audit_log",
        "events",
        "idempotency_keys",
    ];
    let owners = table_owners();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let schema = std::fs::read_to_string(src.join("db/schema.rs")).unwrap();
    let lines: Vec<&str> = schema.lines().collect();
    for pair in lines.windows(2) {
        if pair[0].trim() != "diesel::table! {" {
            continue;
        }
        let table = pair[1].split_whitespace().next().unwrap_or("");
        let claimed = owners.iter().filter(|(_, t)| t.contains(&table)).count()
            + usize::from(KIT_TABLES.contains(&table));
        assert_eq!(
            claimed, 1,
            "table {table} must belong to exactly one domain or the kit"
        );
    }
    let mut crossings = Vec::new();
    for (domain, _) in &owners {
        let mut files = vec![src.join(domain)];
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for name in tables_named(&text) {
                let owner = owners.iter().find(|(_, t)| t.contains(&name.as_str()));
                if let Some((other, _)) = owner.filter(|(other, _)| other != domain) {
                    crossings.push(format!("{}: {name} (a table of {other})", path.display()));
                }
            }
        }
    }
    crossings.sort();
    crossings.dedup();
    assert!(
        crossings.is_empty(),
        "tables read across domains:\n{}",
        crossings.join("\n")
    );
}

/// The read-model views exist and are named as published.
#[actix_web::test]
async fn published_read_models_exist() {
    let app = TestApp::spawn().await;
    for view in rapport::customers::api::READ_MODELS
        .iter()
        .chain(rapport::orders::api::READ_MODELS.iter())
    {
        let n = app
            .count(&format!(
                "SELECT count(*) AS count FROM information_schema.views WHERE table_name = '{view}'"
            ))
            .await;
        assert_eq!(n, 1, "the read model {view} is a view");
    }
}

#[actix_web::test]
async fn timeline_entries_and_export_sections_match_the_document() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let customer = id_of(&manager.customer(json!({})).await);
    manager.order(&customer, "doc-1", 1250).await;
    let complaint = id_of(&manager.complaint(&customer, json!({})).await);
    manager
        .post(
            &format!("/api/v1/complaints/{complaint}/comments"),
            &json!({"body": "Called back", "visibility": "internal"}),
        )
        .await;
    let start = chrono::Utc::now() + chrono::Duration::days(2);
    let stamp = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339();
    manager
        .create(
            "/api/v1/visits",
            &json!({"customer_id": customer, "scheduled_start": stamp(start),
                "scheduled_end": stamp(start + chrono::Duration::hours(1)),
                "purpose": "greeting", "method": "phone", "reason": "New year"}),
        )
        .await;
    let member = id_of(
        &manager
            .create("/api/v1/club/members", &json!({"customer_id": customer}))
            .await,
    );
    manager
        .create(
            &format!("/api/v1/club/members/{member}/points"),
            &json!({"kind": "earn", "points": 40, "reason": "Welcome"}),
        )
        .await;

    let doc = app.get("/openapi.json", None).await.body;
    let timeline = manager
        .get(&format!("/api/v1/customers/{customer}/timeline?limit=200"))
        .await;
    let kinds: HashSet<&str> = timeline.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        HashSet::from(["order", "complaint", "visit", "points", "audit"])
    );
    let page = json!({"$ref": "#/components/schemas/Page_TimelineEntry"});
    crate::kit::conforms(&doc, &page, &timeline.body, "timeline").unwrap();
    // Each entry matches exactly its kind's schema, not merely one of them.
    for entry in timeline.body["data"].as_array().unwrap() {
        let kind = entry["kind"].as_str().unwrap();
        let target =
            &doc["components"]["schemas"]["TimelineEntry"]["discriminator"]["mapping"][kind];
        let schema = json!({"$ref": target});
        crate::kit::conforms(&doc, &schema, entry, kind).unwrap();
        assert!(entry["data"].as_object().is_some_and(|d| !d.is_empty()));
    }

    let export = manager
        .get(&format!("/api/v1/customers/{customer}/export"))
        .await;
    assert_eq!(export.status, 200, "{}", export.text);
    let schema = json!({"$ref": "#/components/schemas/CustomerExport"});
    crate::kit::conforms(&doc, &schema, &export.body, "export").unwrap();
    for section in ["orders", "complaints", "visits", "history"] {
        assert!(
            !export.body[section].as_array().unwrap().is_empty(),
            "{section}"
        );
    }
    assert_eq!(export.body["club"]["points"][0]["points"], 40);
    assert_eq!(
        export.body["complaints"][0]["comments"][0]["body"],
        "Called back"
    );
    // The check bites: a section the document does not name is refused.
    let mut extra = export.body.clone();
    extra["surprise"] = json!([]);
    assert!(crate::kit::conforms(&doc, &schema, &extra, "export").is_err());
}

#[actix_web::test]
async fn every_time_a_client_sends_has_a_sane_range() {
    let app = TestApp::spawn().await;
    let manager = app.client(Role::Manager).await;
    let customer = id_of(&manager.customer(json!({})).await);
    let order = |ordered_at: &str| {
        json!({"source": "shop", "external_id": format!("R-{ordered_at}"), "customer": {"id": customer},
            "status": "paid", "currency": "CNY", "total_minor": 100, "ordered_at": ordered_at,
            "lines": [{"sku": "S", "name": "Item", "quantity": 1, "unit_price_minor": 100}]})
    };
    let complaint = |received_at: &str| {
        json!({"customer_id": customer, "channel": "phone", "category": "delivery",
            "severity": "low", "subject": "Late", "description": "Late", "received_at": received_at})
    };
    let event = |starts_at: &str, ends_at: &str| {
        json!({"title": "Open day", "kind": "factory_visit", "starts_at": starts_at,
            "ends_at": ends_at, "place": "Hall", "capacity": 10})
    };
    for (path, body, field) in [
        (
            "/api/v1/orders",
            order("0001-01-01T00:00:00Z"),
            "ordered_at",
        ),
        (
            "/api/v1/orders",
            order("2999-01-01T00:00:00Z"),
            "ordered_at",
        ),
        (
            "/api/v1/complaints",
            complaint("0001-01-01T00:00:00Z"),
            "received_at",
        ),
        (
            "/api/v1/club/events",
            event("0001-01-01T00:00:00Z", "0001-01-02T00:00:00Z"),
            "starts_at",
        ),
        (
            "/api/v1/club/events",
            event("2027-03-06T01:00:00Z", "2037-03-06T01:00:00Z"),
            "ends_at",
        ),
    ] {
        let refused = manager.post(path, &body).await;
        assert_eq!(refused.status, 422, "{path} {body}: {}", refused.text);
        assert_eq!(refused.error_fields(), [field], "{path} {body}");
    }
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    manager
        .create("/api/v1/orders", &order("1999-05-01T10:00:00Z"))
        .await;
    manager
        .create("/api/v1/complaints", &complaint(&yesterday))
        .await;
    let start = chrono::Utc::now() + chrono::Duration::days(30);
    let end = start + chrono::Duration::hours(5);
    manager
        .create(
            "/api/v1/club/events",
            &event(&start.to_rfc3339(), &end.to_rfc3339()),
        )
        .await;
}
