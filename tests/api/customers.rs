use std::collections::HashSet;

use rapport::auth::Role;
use serde_json::{Value, json};

use crate::common::{Response, TestApp};

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let res = app.post("/api/v1/customers", Some(token), &body).await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.body
}

fn ids(res: &Response) -> Vec<String> {
    assert_eq!(res.status, 200, "{}", res.text);
    res.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

fn id(customer: &Value) -> String {
    customer["id"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn create_read_patch_delete() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let res = app
        .post(
            "/api/v1/customers",
            Some(&admin),
            &json!({
                "given_name": "Li", "family_name": "Wang", "company": "Huaxin Trading",
                "phones": ["+86 138-0013-8000"], "emails": ["Li.Wang@Example.com"],
                "addresses": [{"line1": "88 Century Avenue", "city": "Shanghai", "country": "CN", "latitude": 31.23, "longitude": 121.5}],
                "gender": "female", "birthday": "1988-05-17", "hobbies": ["tea", "hiking"], "income_band": "upper_middle",
                "important_dates": [{"label": "Wedding anniversary", "date": "2015-10-01"}],
                "tags": ["vip"], "attributes": {"shoe_size": 38, "newsletter": true},
                "source": "webshop", "external_ref": "C-1", "consents": {"email": true, "sms": false}
            }),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let customer = res.body.clone();
    let path = format!("/api/v1/customers/{}", id(&customer));
    assert_eq!(res.header("location"), Some(path.as_str()));
    assert_eq!(customer["display_name"], "Wang Li");
    assert_eq!(customer["phones"], json!(["+8613800138000"]));
    assert_eq!(customer["emails"], json!(["li.wang@example.com"]));
    assert_eq!(customer["level"], "registered");
    assert_eq!(customer["lifecycle_stage"], "exploration");
    assert_eq!(
        customer["total_spent"],
        json!({"amount_minor": 0, "currency": "XXX"})
    );
    assert_eq!(customer["consents"]["email"]["granted"], true);
    assert_eq!(customer["consents"]["sms"]["granted"], false);
    assert_eq!(customer["addresses"][0]["city"], "Shanghai");

    let read = app.get(&path, Some(&admin)).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body, customer);
    let etag = read.header("etag").unwrap().to_owned();

    let patch = json!({"company": null, "tags": ["vip", "wholesale"], "lifecycle_stage": "churned", "churn_reason": "price"});
    let patched = app
        .request(
            "PATCH",
            &path,
            Some(&admin),
            Some(&patch),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["company"], Value::Null, "null clears");
    assert_eq!(patched.body["given_name"], "Li", "absent stays");
    assert_eq!(patched.body["tags"], json!(["vip", "wholesale"]));
    assert_eq!(patched.body["churn_reason"], "price");
    assert_ne!(patched.header("etag").unwrap(), etag);
    let stale = app
        .request(
            "PATCH",
            &path,
            Some(&admin),
            Some(&json!({"region": "east"})),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(stale.status, 412);

    let dup = app
        .post(
            "/api/v1/customers",
            Some(&admin),
            &json!({"display_name": "X", "source": "webshop", "external_ref": "C-1"}),
        )
        .await;
    assert_eq!(dup.status, 409);

    assert_eq!(
        app.request("DELETE", &path, Some(&admin), None, &[])
            .await
            .status,
        204
    );
    assert_eq!(app.get(&path, Some(&admin)).await.status, 404);
    assert!(
        ids(&app.get("/api/v1/customers", Some(&admin)).await).is_empty(),
        "deleted customers drop out of lists"
    );
    assert_eq!(
        app.request("DELETE", &path, Some(&admin), None, &[])
            .await
            .status,
        404
    );
}

#[actix_web::test]
async fn customer_input_is_validated() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let other = create(&app, &admin, json!({"display_name": "Referrer"})).await;
    let cases = [
        (
            json!({"display_name": "A", "emails": ["nope"]}),
            "emails[0]",
        ),
        (
            json!({"display_name": "A", "phones": ["13800138000"]}),
            "phones[0]",
        ),
        (
            json!({"display_name": "A", "birthday": "2999-01-01"}),
            "birthday",
        ),
        (json!({"display_name": "A", "level": "vip"}), "level"),
        (json!({"display_name": ""}), "display_name"),
        (json!({}), "display_name"),
        (
            json!({"display_name": "A", "order_count": 5}),
            "order_count",
        ),
        (
            json!({"display_name": "A", "total_spent": {"amount_minor": 1, "currency": "CNY"}}),
            "total_spent",
        ),
        (
            json!({"display_name": "A", "lifecycle_stage": "churned"}),
            "churn_reason",
        ),
        (
            json!({"display_name": "A", "source": "shop"}),
            "external_ref",
        ),
        (
            json!({"display_name": "A", "attributes": {"nested": {"x": 1}}}),
            "attributes.nested",
        ),
        (
            json!({"display_name": "A", "addresses": [{"line1": "x", "latitude": 123.0}]}),
            "addresses[0].latitude",
        ),
        (json!({"display_name": "x".repeat(201)}), "display_name"),
    ];
    for (body, field) in cases {
        let res = app.post("/api/v1/customers", Some(&admin), &body).await;
        assert_eq!(res.status, 422, "{body} → {}", res.text);
        let fields = res.error_fields();
        assert!(
            fields.contains(&field),
            "{body}: expected {field} in {fields:?}"
        );
    }
    // Well-formed requests that name records that are not there are conflicts (409).
    for (body, field) in [
        (
            json!({"display_name": "A", "referred_by": uuid::Uuid::now_v7()}),
            "referred_by",
        ),
        (
            json!({"display_name": "A", "owner_id": uuid::Uuid::now_v7()}),
            "owner_id",
        ),
    ] {
        let res = app.post("/api/v1/customers", Some(&admin), &body).await;
        assert_eq!(res.status, 409, "{body} → {}", res.text);
        assert_eq!(res.body["errors"][0]["field"], field);
    }
    let path = format!("/api/v1/customers/{}", id(&other));
    let selfref = app
        .patch(&path, Some(&admin), &json!({"referred_by": id(&other)}))
        .await;
    assert_eq!(
        selfref.status, 409,
        "the rule depends on which customer is changed"
    );
    assert_eq!(selfref.body["errors"][0]["field"], "referred_by");
    let ok = create(
        &app,
        &admin,
        json!({"display_name": "Referred", "referred_by": id(&other)}),
    )
    .await;
    assert_eq!(ok["referred_by"], other["id"]);
}

/// Terms with five digits in a row are looked up by their five-digit grams
/// (`customers::queries::search`); a customer who has every gram of a term but not the term
/// itself must not match, and digits anywhere in the search text (e-mails too) count.
#[actix_web::test]
async fn digit_searches_match_the_digits_in_a_row_only() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let grams_apart = create(
        &app,
        &admin,
        json!({"display_name": "Grams Apart", "phones": ["+8612345023456"]}),
    )
    .await;
    let in_email = create(
        &app,
        &admin,
        json!({"display_name": "In Email", "emails": ["x123456@example.com"]}),
    )
    .await;
    let search = |q: &str| {
        let (app, admin) = (&app, &admin);
        let path = format!("/api/v1/customers?q={q}");
        async move { ids(&app.get(&path, Some(admin)).await) }
    };
    assert_eq!(
        search("123456").await,
        vec![id(&in_email)],
        "not the grams apart"
    );
    assert_eq!(search("02345").await, vec![id(&grams_apart)], "one gram");
    assert_eq!(
        search("%2B8612345").await,
        vec![id(&grams_apart)],
        "with the plus sign"
    );
    assert_eq!(
        search("2345").await,
        vec![id(&in_email), id(&grams_apart)],
        "four digits: by trigrams"
    );
    assert!(search("99999").await.is_empty());
}

#[actix_web::test]
async fn filters_search_and_sort_return_the_right_rows() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (agent_id, _) = app.create_user(Role::Agent).await;
    let a = create(&app, &admin, json!({"display_name": "Alice Zhang", "company": "Kaiyuan Tech", "level": "core", "tier": "key",
        "region": "east", "tags": ["vip"], "birthday": "1990-03-02", "attributes": {"shoe_size": 38, "channel": "web"},
        "phones": ["+8613911112222"], "emails": ["alice@example.com"], "owner_id": agent_id})).await;
    let b = create(&app, &admin, json!({"display_name": "Bob Li", "level": "active", "tier": "major", "region": "west",
        "tags": ["wholesale"], "birthday": "1985-03-20", "lifecycle_stage": "decline", "attributes": {"shoe_size": 44}})).await;
    let c = create(&app, &admin, json!({"display_name": "Carol Wu", "emails": ["carol@shop.example"], "level": "prospect",
        "region": "east", "tags": ["vip", "online"], "birthday": "1979-11-30", "attributes": {"channel": "app"}})).await;
    let all = [&a, &b, &c].map(id);
    let get = |query: &str| {
        let app = &app;
        let admin = admin.clone();
        let query = query.to_owned();
        async move {
            ids(&app
                .get(&format!("/api/v1/customers?{query}"), Some(&admin))
                .await)
        }
    };
    let set = |v: Vec<String>| v.into_iter().collect::<HashSet<_>>();
    let expect = |v: &[&String]| v.iter().map(|s| (*s).clone()).collect::<HashSet<_>>();

    assert_eq!(
        get("").await,
        vec![all[2].clone(), all[1].clone(), all[0].clone()],
        "newest first by default"
    );
    assert_eq!(set(get("q=zhang").await), expect(&[&all[0]]), "name");
    assert_eq!(
        set(get("q=KAIYUAN").await),
        expect(&[&all[0]]),
        "company, any case"
    );
    assert_eq!(
        set(get("q=39111122").await),
        expect(&[&all[0]]),
        "phone digits"
    );
    assert_eq!(
        set(get("q=shop.example").await),
        expect(&[&all[2]]),
        "e-mail"
    );
    assert!(get("q=nobody-has-this").await.is_empty());
    assert!(
        get(&format!("q={}", "9".repeat(200))).await.is_empty(),
        "200 characters are allowed"
    );
    assert_eq!(set(get("level=core").await), expect(&[&all[0]]));
    assert_eq!(set(get("tier=major").await), expect(&[&all[1]]));
    assert_eq!(set(get("stage=decline").await), expect(&[&all[1]]));
    assert_eq!(
        set(get(&format!("owner_id={agent_id}")).await),
        expect(&[&all[0]])
    );
    assert_eq!(set(get("region=east").await), expect(&[&all[0], &all[2]]));
    assert_eq!(set(get("tag=vip").await), expect(&[&all[0], &all[2]]));
    assert_eq!(
        set(get("birthday_month=3").await),
        expect(&[&all[0], &all[1]])
    );
    assert_eq!(
        set(get("attr.shoe_size=44").await),
        expect(&[&all[1]]),
        "numeric attribute"
    );
    assert_eq!(
        set(get("attr.channel=app").await),
        expect(&[&all[2]]),
        "text attribute"
    );
    assert_eq!(
        set(get("region=east&tag=online").await),
        expect(&[&all[2]]),
        "filters combine"
    );
    let created_b = b["created_at"].as_str().unwrap().replace('+', "%2B");
    assert_eq!(
        set(get(&format!("created_after={created_b}")).await),
        expect(&[&all[1], &all[2]])
    );
    assert_eq!(
        set(get(&format!("created_before={created_b}")).await),
        expect(&[&all[0]])
    );
    assert_eq!(get("sort=name").await, all.to_vec(), "Alice, Bob, Carol");
    assert_eq!(
        get("sort=-name").await,
        vec![all[2].clone(), all[1].clone(), all[0].clone()]
    );
    let too_long = format!("q={}", "1".repeat(201));
    for bad in [
        "sort=password",
        "sort=-phones",
        "birthday_month=13",
        "level=vip",
        "attr.Bad=1",
        "owner_id=nope",
        &too_long,
    ] {
        let res = app
            .get(&format!("/api/v1/customers?{bad}"), Some(&admin))
            .await;
        assert_eq!(res.status, 400, "{bad}: {}", res.text);
    }
}

#[actix_web::test]
async fn pagination_visits_every_customer_once_while_rows_are_inserted() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut expected = HashSet::new();
    for i in 0..7 {
        expected.insert(id(&create(
            &app,
            &admin,
            json!({"display_name": format!("Customer {i:02}")}),
        )
        .await));
    }
    for sort in [
        "-created_at",
        "name",
        "-updated_at",
        "total_spent",
        "-last_purchase_at",
    ] {
        let mut seen = HashSet::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/customers?limit=3&sort={sort}&cursor={c}"),
                None => format!("/api/v1/customers?limit=3&sort={sort}"),
            };
            let page = app.get(&path, Some(&admin)).await;
            for row in ids(&page) {
                assert!(seen.insert(row), "{sort}: a row came twice");
            }
            pages += 1;
            if pages == 1 {
                // Inserted between pages: sorts after the walk's position or before it, never twice.
                create(&app, &admin, json!({"display_name": "Zz late arrival"})).await;
            }
            match page.body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert!(
            expected.is_subset(&seen),
            "{sort}: every original row was visited"
        );
    }
    let cursor = app
        .get("/api/v1/customers?limit=1&sort=name", Some(&admin))
        .await
        .body["next_cursor"]
        .clone();
    let wrong = app
        .get(
            &format!(
                "/api/v1/customers?sort=-created_at&cursor={}",
                cursor.as_str().unwrap()
            ),
            Some(&admin),
        )
        .await;
    assert_eq!(wrong.status, 400, "a cursor belongs to its sort order");
}

#[actix_web::test]
async fn batch_upsert_reports_each_item() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let existing = create(
        &app,
        &admin,
        json!({"display_name": "Old Name", "source": "shop", "external_ref": "2"}),
    )
    .await;
    let malformed = json!({"items": [
        {"display_name": "Fine", "source": "shop", "external_ref": "0"},
        {"display_name": "Bad", "source": "shop", "external_ref": "3", "emails": ["nope"]},
        {"display_name": "No reference"},
        {"display_name": "Unknown field", "source": "shop", "external_ref": "4", "order_count": 9},
    ]});
    let res = app
        .post("/api/v1/customers/batch", Some(&admin), &malformed)
        .await;
    assert_eq!(
        res.status, 422,
        "a malformed item refuses the batch: {}",
        res.text
    );
    let fields = res.error_fields();
    assert_eq!(
        fields,
        [
            "items[1].emails[0]",
            "items[2].external_ref",
            "items[3].order_count"
        ]
    );
    let nothing = app.get("/api/v1/customers?q=Fine", Some(&admin)).await;
    assert_eq!(
        nothing.body["data"],
        json!([]),
        "nothing of a refused batch is written"
    );

    let body = json!({"items": [
        {"display_name": "New One", "source": "shop", "external_ref": "1"},
        {"display_name": "Renamed", "source": "shop", "external_ref": "2"},
        {"display_name": "Dangling", "source": "shop", "external_ref": "3", "referred_by": uuid::Uuid::now_v7()},
    ]});
    let res = app
        .post("/api/v1/customers/batch", Some(&admin), &body)
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let results = res.body["results"].as_array().unwrap();
    let statuses: Vec<&str> = results
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["created", "updated", "error"]);
    assert_eq!(results[1]["id"], existing["id"]);
    assert_eq!(results[2]["problem"]["status"], 409);
    assert_eq!(results[2]["problem"]["errors"][0]["field"], "referred_by");
    assert!(results[0]["problem"].is_null());
    let renamed = app
        .get(
            &format!("/api/v1/customers/{}", id(&existing)),
            Some(&admin),
        )
        .await;
    assert_eq!(renamed.body["display_name"], "Renamed");
    let again = app
        .post("/api/v1/customers/batch", Some(&admin), &body)
        .await;
    assert_eq!(
        again.body["results"][0]["status"], "updated",
        "upsert is by (source, external_ref)"
    );
    let too_many = json!({"items": vec![json!({"display_name": "x"}); 501]});
    assert_eq!(
        app.post("/api/v1/customers/batch", Some(&admin), &too_many)
            .await
            .status,
        422
    );
}

#[actix_web::test]
async fn agents_write_only_their_own_customers() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (agent_id, agent) = app.user_token(Role::Agent).await;
    let (other_agent, _) = app.create_user(Role::Agent).await;
    let mine = create(&app, &agent, json!({"display_name": "Mine"})).await;
    assert_eq!(
        mine["owner_id"],
        json!(agent_id),
        "the agent owns what they create"
    );
    let theirs = create(
        &app,
        &admin,
        json!({"display_name": "Theirs", "owner_id": other_agent}),
    )
    .await;

    assert_eq!(
        app.get(&format!("/api/v1/customers/{}", id(&theirs)), Some(&agent))
            .await
            .status,
        200,
        "agents read all"
    );
    let patch = json!({"notes": "x"});
    let denied = app
        .patch(
            &format!("/api/v1/customers/{}", id(&theirs)),
            Some(&agent),
            &patch,
        )
        .await;
    assert_eq!(denied.status, 403);
    assert_eq!(
        app.request(
            "DELETE",
            &format!("/api/v1/customers/{}", id(&theirs)),
            Some(&agent),
            None,
            &[]
        )
        .await
        .status,
        403
    );
    assert_eq!(
        app.post(
            &format!("/api/v1/customers/{}/erase", id(&theirs)),
            Some(&agent),
            &json!({})
        )
        .await
        .status,
        403
    );
    let allowed = app
        .patch(
            &format!("/api/v1/customers/{}", id(&mine)),
            Some(&agent),
            &patch,
        )
        .await;
    assert_eq!(allowed.status, 200);
    let give_away = json!({"owner_id": other_agent});
    let res = app
        .patch(
            &format!("/api/v1/customers/{}", id(&mine)),
            Some(&agent),
            &give_away,
        )
        .await;
    assert_eq!(
        res.status, 403,
        "an agent cannot hand a customer to someone else"
    );
    let for_other = app
        .post(
            "/api/v1/customers",
            Some(&agent),
            &json!({"display_name": "X", "owner_id": other_agent}),
        )
        .await;
    assert_eq!(for_other.status, 403);
    let merge = json!({"survivor_id": id(&mine), "duplicate_id": id(&theirs)});
    assert_eq!(
        app.post("/api/v1/customers/merge", Some(&agent), &merge)
            .await
            .status,
        403
    );

    let key = app
        .post(
            "/api/v1/api-keys",
            Some(&admin),
            &json!({"name": "reader", "scopes": ["customers:read"]}),
        )
        .await;
    let key = key.body["key"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/api/v1/customers", Some(&key)).await.status, 200);
    assert_eq!(
        app.post(
            "/api/v1/customers",
            Some(&key),
            &json!({"display_name": "X"})
        )
        .await
        .status,
        403,
        "scope denial"
    );
}

#[actix_web::test]
async fn every_change_is_audited() {
    let app = TestApp::spawn().await;
    let (admin_id, admin) = app.user_token(Role::Admin).await;
    let customer = create(
        &app,
        &admin,
        json!({"display_name": "Audited", "region": "north"}),
    )
    .await;
    let path = format!("/api/v1/customers/{}", id(&customer));
    app.patch(&path, Some(&admin), &json!({"region": "south"}))
        .await;
    let history = app.get(&format!("{path}/history"), Some(&admin)).await;
    assert_eq!(history.status, 200);
    let entries = history.body["data"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["action"], "updated");
    assert_eq!(
        entries[0]["changes"]["region"],
        json!({"old": "north", "new": "south"})
    );
    assert_eq!(entries[0]["actor_type"], "user");
    assert_eq!(entries[0]["actor_id"], json!(admin_id));
    assert!(entries[0]["changes"].get("version").is_none());
    assert_eq!(entries[1]["action"], "created");
    assert_eq!(entries[1]["changes"]["display_name"]["new"], "Audited");
}

async fn order(
    app: &TestApp,
    token: &str,
    customer: &str,
    external_id: &str,
    amount: i64,
) -> Value {
    let res = app
        .post(
            "/api/v1/orders",
            Some(token),
            &json!({"source": "shop", "external_id": external_id, "customer": {"id": customer}, "status": "paid",
                    "currency": "CNY", "ordered_at": "2026-01-05T10:00:00Z",
                    "total_minor": amount,
                    "lines": [{"sku": "S1", "name": "Tea set", "quantity": 1, "unit_price_minor": amount}]}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.body
}

#[actix_web::test]
async fn merge_moves_orders_and_keeps_totals_right() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let survivor = create(
        &app,
        &admin,
        json!({"display_name": "Li Wang", "emails": ["li@example.com"], "tags": ["vip"]}),
    )
    .await;
    let duplicate = create(&app, &admin, json!({"display_name": "Wang Li", "phones": ["+8613800000001"], "company": "Huaxin",
        "emails": ["li.w@example.com"], "tags": ["online"], "source": "shop", "external_ref": "77"})).await;
    let referred = create(
        &app,
        &admin,
        json!({"display_name": "Friend", "referred_by": id(&duplicate)}),
    )
    .await;
    order(&app, &admin, &id(&survivor), "o1", 1000).await;
    order(&app, &admin, &id(&duplicate), "o2", 2500).await;
    order(&app, &admin, &id(&duplicate), "o3", 500).await;

    let merged = app
        .post(
            "/api/v1/customers/merge",
            Some(&admin),
            &json!({"survivor_id": id(&survivor), "duplicate_id": id(&duplicate)}),
        )
        .await;
    assert_eq!(merged.status, 200, "{}", merged.text);
    let m = &merged.body;
    assert_eq!(m["order_count"], 3);
    assert_eq!(
        m["total_spent"],
        json!({"amount_minor": 4000, "currency": "CNY"})
    );
    assert_eq!(m["company"], "Huaxin", "gaps filled from the duplicate");
    assert_eq!(
        m["display_name"], "Li Wang",
        "the survivor's own values win"
    );
    assert_eq!(m["emails"], json!(["li@example.com", "li.w@example.com"]));
    assert_eq!(m["tags"], json!(["vip", "online"]));
    assert_eq!(
        m["external_ref"], "77",
        "the reference passes to the survivor"
    );

    let orders = app
        .get(
            &format!("/api/v1/orders?customer_id={}", id(&survivor)),
            Some(&admin),
        )
        .await;
    assert_eq!(orders.body["data"].as_array().unwrap().len(), 3);
    let gone = app
        .get(
            &format!("/api/v1/customers/{}", id(&duplicate)),
            Some(&admin),
        )
        .await;
    assert_eq!(gone.status, 404);
    assert!(
        gone.body["detail"]
            .as_str()
            .unwrap()
            .contains(&id(&survivor))
    );
    let friend = app
        .get(
            &format!("/api/v1/customers/{}", id(&referred)),
            Some(&admin),
        )
        .await;
    assert_eq!(
        friend.body["referred_by"], survivor["id"],
        "referrals follow the survivor"
    );
    let again = app
        .post(
            "/api/v1/customers/merge",
            Some(&admin),
            &json!({"survivor_id": id(&survivor), "duplicate_id": id(&duplicate)}),
        )
        .await;
    assert_eq!(again.status, 404, "the duplicate is merged away");
    assert!(
        again.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("duplicate_id")
    );
    let itself = app
        .post(
            "/api/v1/customers/merge",
            Some(&admin),
            &json!({"survivor_id": id(&survivor), "duplicate_id": id(&survivor)}),
        )
        .await;
    assert_eq!(itself.status, 409);
}

#[actix_web::test]
async fn erase_leaves_no_personal_data_anywhere() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let secrets = [
        "Zhou Mingzhu",
        "mingzhu@private.example",
        "+8613012345678",
        "Secret Street 9",
        "likes jasmine",
    ];
    let customer = create(
        &app,
        &admin,
        json!({"display_name": secrets[0], "emails": [secrets[1]], "phones": [secrets[2]],
        "addresses": [{"line1": secrets[3]}], "notes": secrets[4], "birthday": "1970-01-02"}),
    )
    .await;
    let path = format!("/api/v1/customers/{}", id(&customer));
    app.patch(
        &path,
        Some(&admin),
        &json!({"notes": format!("{} and oolong", secrets[4])}),
    )
    .await;
    order(&app, &admin, &id(&customer), "e1", 4200).await;

    let erased = app
        .post(&format!("{path}/erase"), Some(&admin), &json!({}))
        .await;
    assert_eq!(erased.status, 200, "{}", erased.text);
    assert_eq!(erased.body["display_name"], "Erased customer");
    assert!(erased.body["erased_at"].is_string());
    assert_eq!(erased.body["order_count"], 1, "figures are kept");
    assert_eq!(erased.body["total_spent"]["amount_minor"], 4200);
    let export = app.get(&format!("{path}/export"), Some(&admin)).await;
    let history = app.get(&format!("{path}/history"), Some(&admin)).await;
    let timeline = app.get(&format!("{path}/timeline"), Some(&admin)).await;
    for (name, res) in [
        ("customer", &app.get(&path, Some(&admin)).await),
        ("export", &export),
        ("history", &history),
        ("timeline", &timeline),
    ] {
        assert_eq!(res.status, 200);
        for secret in secrets.iter().chain(["1970-01-02"].iter()) {
            assert!(!res.text.contains(secret), "{name} still holds {secret}");
        }
    }
    assert_eq!(
        export.body["orders"].as_array().unwrap().len(),
        1,
        "orders are kept"
    );
    let actions: Vec<&str> = history.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"erased"),
        "the erase is audited: {actions:?}"
    );
    assert_eq!(
        app.post(&format!("{path}/erase"), Some(&admin), &json!({}))
            .await
            .status,
        409
    );
}

#[actix_web::test]
async fn timeline_and_export_gather_everything() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let customer = create(&app, &admin, json!({"display_name": "Timeline"})).await;
    let path = format!("/api/v1/customers/{}", id(&customer));
    order(&app, &admin, &id(&customer), "t1", 100).await;
    order(&app, &admin, &id(&customer), "t2", 200).await;
    let full = app
        .get(&format!("{path}/timeline?limit=200"), Some(&admin))
        .await;
    assert_eq!(full.status, 200);
    let entries = full.body["data"].as_array().unwrap();
    let kinds: HashSet<&str> = entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, HashSet::from(["order", "audit"]));
    let times: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["at"].as_str().unwrap(), e["id"].as_str().unwrap()))
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
    let walked: Vec<Value> = app
        .walk_pages(
            &format!("{path}/timeline?limit=2"),
            Some(&admin),
            usize::MAX,
        )
        .await
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(
        walked,
        entries.iter().map(|e| e["id"].clone()).collect::<Vec<_>>()
    );
    let export = app.get(&format!("{path}/export"), Some(&admin)).await;
    assert_eq!(export.body["customer"]["id"], customer["id"]);
    assert_eq!(export.body["orders"].as_array().unwrap().len(), 2);
    assert!(!export.body["history"].as_array().unwrap().is_empty());
    assert!(export.body["exported_at"].is_string());
}
