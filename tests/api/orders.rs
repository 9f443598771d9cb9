use rapport::auth::Role;
use serde_json::{Value, json};

use crate::common::TestApp;

fn new_order(external_id: &str, customer: Value, status: &str, price: i64) -> Value {
    json!({"source": "shop", "external_id": external_id, "customer": customer, "status": status, "currency": "CNY",
           "ordered_at": "2026-03-01T08:00:00Z", "shipping_minor": 500, "discount_minor": 100,
           "total_minor": 2 * price + 400,
           "lines": [{"sku": "SH-42", "name": "Loafer", "category": "shoes", "spec": "EU 42", "colour": "brown",
                      "quantity": 2, "unit_price_minor": price}]})
}

#[actix_web::test]
async fn orders_create_customers_update_figures_and_are_not_double_counted() {
    let app = TestApp::spawn().await;
    let (_, manager) = app.user_token(Role::Manager).await;
    let who = json!({"source": "shop", "external_ref": "C-9", "display_name": "Shop Buyer", "email": "buyer@example.com"});
    let first = app
        .post(
            "/api/v1/orders",
            Some(&manager),
            &new_order("1001", who.clone(), "paid", 10_000),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(
        first.body["total"],
        json!({"amount_minor": 20_400, "currency": "CNY"})
    );
    assert_eq!(first.body["subtotal"]["amount_minor"], 20_000);
    assert_eq!(first.body["lines"][0]["colour"], "brown");
    let customer_id = first.body["customer_id"].as_str().unwrap().to_owned();
    let customer = app
        .get(&format!("/api/v1/customers/{customer_id}"), Some(&manager))
        .await;
    assert_eq!(customer.body["display_name"], "Shop Buyer");
    assert_eq!(
        customer.body["level"], "active",
        "the first paid order makes a registered customer active"
    );
    assert_eq!(customer.body["order_count"], 1);
    assert_eq!(
        customer.body["total_spent"],
        json!({"amount_minor": 20_400, "currency": "CNY"})
    );
    assert_eq!(customer.body["first_purchase_at"], "2026-03-01T08:00:00Z");

    let replay = app
        .post(
            "/api/v1/orders",
            Some(&manager),
            &new_order("1001", who.clone(), "paid", 10_000),
        )
        .await;
    assert_eq!(
        replay.status, 200,
        "a repeat of the same order is not a new order"
    );
    assert_eq!(replay.body["id"], first.body["id"]);
    let second = app
        .post(
            "/api/v1/orders",
            Some(&manager),
            &new_order("1002", who.clone(), "placed", 3_000),
        )
        .await;
    assert_eq!(second.status, 201);
    let customer = app
        .get(&format!("/api/v1/customers/{customer_id}"), Some(&manager))
        .await;
    assert_eq!(
        customer.body["order_count"], 1,
        "neither the replay nor a placed order count"
    );

    let path = format!("/api/v1/orders/{}", first.body["id"].as_str().unwrap());
    let etag = app
        .get(&path, Some(&manager))
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let refund = app
        .request(
            "PATCH",
            &path,
            Some(&manager),
            Some(&json!({"status": "refunded"})),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(refund.status, 200, "{}", refund.text);
    let customer = app
        .get(&format!("/api/v1/customers/{customer_id}"), Some(&manager))
        .await;
    assert_eq!(
        customer.body["order_count"], 0,
        "a refund reverses the figures"
    );
    assert_eq!(customer.body["total_spent"]["amount_minor"], 0);
    assert_eq!(
        customer.body["level"], "active",
        "the ladder does not step down on a refund"
    );
    let illegal = app
        .patch(&path, Some(&manager), &json!({"status": "paid"}))
        .await;
    assert_eq!(illegal.status, 409);
    let stale = app
        .request(
            "PATCH",
            &path,
            Some(&manager),
            Some(&json!({"status": "refunded"})),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(stale.status, 412);

    let history = app
        .get(
            &format!("/api/v1/customers/{customer_id}/history?limit=200"),
            Some(&manager),
        )
        .await;
    let actions: Vec<&str> = history.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in ["created", "figures_updated", "status_changed"] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
}

#[actix_web::test]
async fn order_lists_filter() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let a = json!({"source": "shop", "external_ref": "A"});
    let b = json!({"source": "shop", "external_ref": "B"});
    let mut late = new_order("3", b.clone(), "paid", 100);
    late["ordered_at"] = json!("2026-06-01T00:00:00Z");
    for body in [
        new_order("1", a.clone(), "paid", 100),
        new_order("2", a, "placed", 100),
        late,
    ] {
        assert_eq!(
            app.post("/api/v1/orders", Some(&admin), &body).await.status,
            201
        );
    }
    let count = |query: &str| {
        let app = &app;
        let admin = admin.clone();
        let query = query.to_owned();
        async move {
            let res = app
                .get(&format!("/api/v1/orders?{query}"), Some(&admin))
                .await;
            assert_eq!(res.status, 200, "{}", res.text);
            res.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["external_id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(count("").await, ["3", "2", "1"], "newest first, ties by id");
    assert_eq!(count("status=placed").await, ["2"]);
    assert_eq!(count("ordered_after=2026-05-01T00:00:00Z").await, ["3"]);
    assert_eq!(
        count("ordered_before=2026-05-01T00:00:00Z&source=shop")
            .await
            .len(),
        2
    );
    let customer_b = app
        .get(
            "/api/v1/orders?ordered_after=2026-05-01T00:00:00Z",
            Some(&admin),
        )
        .await
        .body["data"][0]["customer_id"]
        .clone();
    assert_eq!(
        count(&format!("customer_id={}", customer_b.as_str().unwrap())).await,
        ["3"]
    );
    assert_eq!(count("limit=1").await.len(), 1);
    assert_eq!(
        app.get("/api/v1/orders?status=lost", Some(&admin))
            .await
            .status,
        400
    );
}

#[actix_web::test]
async fn order_input_is_validated() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let who = json!({"source": "shop", "external_ref": "V"});
    let mut no_total = new_order("v1", who.clone(), "paid", 100);
    no_total.as_object_mut().unwrap().remove("total_minor");
    let mut no_lines = new_order("v2", who.clone(), "paid", 100);
    no_lines["lines"] = json!([]);
    let mut bad_currency = new_order("v3", who.clone(), "paid", 100);
    bad_currency["currency"] = json!("yuan");
    let mut future = new_order("v4", who.clone(), "paid", 100);
    future["ordered_at"] = json!("2999-01-01T00:00:00Z");
    let mut zero_quantity = new_order("v5", who.clone(), "paid", 100);
    zero_quantity["lines"][0]["quantity"] = json!(0);
    // Bounded so that a customer's figures, which add totals up, cannot overflow.
    let mut huge_total = new_order("v9", who.clone(), "paid", 100);
    huge_total["total_minor"] = json!(9_223_372_036_854_775_806i64);
    let cases = [
        (huge_total, "total_minor"),
        (no_total, "total_minor"),
        (no_lines, "lines"),
        (bad_currency, "currency"),
        (future, "ordered_at"),
        (zero_quantity, "lines[0].quantity"),
        (new_order("v6", json!({}), "paid", 100), "customer"),
        (
            new_order(
                "v8",
                json!({"source": "shop", "external_ref": "N", "email": "bad"}),
                "paid",
                100,
            ),
            "customer.email",
        ),
    ];
    for (body, field) in cases {
        let res = app.post("/api/v1/orders", Some(&admin), &body).await;
        assert_eq!(res.status, 422, "{field}: {}", res.text);
        let fields = res.error_fields();
        assert!(fields.contains(&field), "expected {field} in {fields:?}");
    }
    assert_eq!(
        app.post(
            "/api/v1/orders",
            Some(&admin),
            &new_order("ok", who.clone(), "paid", 100)
        )
        .await
        .status,
        201
    );
    // Rules that depend on stored data are conflicts (409), naming the field.
    let mut dollars = new_order("usd", who, "paid", 100);
    dollars["currency"] = json!("USD");
    let res = app.post("/api/v1/orders", Some(&admin), &dollars).await;
    assert_eq!(res.status, 409, "figures stay in one currency");
    assert_eq!(res.body["errors"][0]["field"], "currency");
    let unknown = new_order("v7", json!({"id": uuid::Uuid::now_v7()}), "paid", 100);
    let res = app.post("/api/v1/orders", Some(&admin), &unknown).await;
    assert_eq!(res.status, 409, "{}", res.text);
    assert_eq!(res.body["errors"][0]["field"], "customer.id");
    // The shop's total is what the customer paid, even where the lines say otherwise.
    let mut with_tax = new_order(
        "tax",
        json!({"source": "shop", "external_ref": "T"}),
        "paid",
        100,
    );
    with_tax["total_minor"] = json!(413);
    let res = app.post("/api/v1/orders", Some(&admin), &with_tax).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["total"]["amount_minor"], 413);
}

#[actix_web::test]
async fn who_may_record_orders() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, agent) = app.user_token(Role::Agent).await;
    let body = new_order(
        "w1",
        json!({"source": "shop", "external_ref": "W"}),
        "paid",
        100,
    );
    assert_eq!(
        app.post("/api/v1/orders", Some(&agent), &body).await.status,
        403
    );
    assert_eq!(app.get("/api/v1/orders", Some(&agent)).await.status, 200);
    let key = app
        .post(
            "/api/v1/api-keys",
            Some(&admin),
            &json!({"name": "shop", "scopes": ["orders:write"]}),
        )
        .await;
    let key = key.body["key"].as_str().unwrap().to_owned();
    assert_eq!(
        app.post("/api/v1/orders", Some(&key), &body).await.status,
        201
    );
    assert_eq!(
        app.get("/api/v1/orders", Some(&key)).await.status,
        403,
        "writing does not grant reading"
    );
}

#[actix_web::test]
async fn order_and_history_pages_walk_every_row_once_through_ties() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let who = json!({"source": "shop", "external_ref": "PAGES"});
    // Five orders share one `ordered_at`, and each order's audit entries share their
    // transaction's `created_at`: the cursor has to break ties by id in both lists.
    for n in 0..7 {
        let mut body = new_order(&format!("p{n}"), who.clone(), "paid", 100);
        if n >= 5 {
            body["ordered_at"] = json!(format!("2026-04-0{n}T00:00:00Z"));
        }
        let created = app.post("/api/v1/orders", Some(&admin), &body).await;
        assert_eq!(created.status, 201, "{}", created.text);
    }
    let ids = |items: &[Value]| -> Vec<String> {
        items
            .iter()
            .map(|item| item["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let all_orders = app.get("/api/v1/orders?limit=100", Some(&admin)).await;
    let all_orders = ids(all_orders.body["data"].as_array().unwrap());
    assert_eq!(all_orders.len(), 7);
    let walked = ids(&app
        .walk_pages("/api/v1/orders?limit=2", Some(&admin), usize::MAX)
        .await);
    assert_eq!(
        walked, all_orders,
        "order pages of 2 give every order once, in order"
    );

    let customer =
        app.get("/api/v1/orders?limit=1", Some(&admin)).await.body["data"][0]["customer_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let history = format!("/api/v1/customers/{customer}/history");
    let all_entries = app.get(&format!("{history}?limit=200"), Some(&admin)).await;
    let all_entries = ids(all_entries.body["data"].as_array().unwrap());
    assert!(all_entries.len() >= 14, "{all_entries:?}");
    let walked = ids(&app
        .walk_pages(&format!("{history}?limit=3"), Some(&admin), usize::MAX)
        .await);
    assert_eq!(
        walked, all_entries,
        "history pages of 3 give every entry once, in order"
    );
}
