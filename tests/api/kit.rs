//! The test kit every domain's tests stand on: callers by role ([`Client`]), fixtures, a look
//! into the database (events, audit entries, a search of every table), and conformance
//! checks ([`conformance`]) that a domain runs against its own routes in one line each.

use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use rapport::auth::Role;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Response, TestApp};

/// A caller: a staff user of some role, or an API key.
pub struct Client<'a> {
    pub app: &'a TestApp,
    pub token: String,
    /// The user's id; `None` for an API key.
    pub user_id: Option<Uuid>,
}

impl TestApp {
    /// A new staff user of `role`, signed in.
    pub async fn client(&self, role: Role) -> Client<'_> {
        let (id, token) = self.user_token(role).await;
        Client {
            app: self,
            token,
            user_id: Some(id),
        }
    }

    /// A new API key holding `scopes` (created by a new admin).
    pub async fn key_client(&self, scopes: &[&str]) -> Client<'_> {
        let admin = self.admin_token().await;
        let key = self
            .post(
                "/api/v1/api-keys",
                Some(&admin),
                &json!({"name": "test key", "scopes": scopes}),
            )
            .await;
        assert_eq!(key.status, 201, "{}", key.text);
        Client {
            app: self,
            token: key.body["key"].as_str().unwrap().to_owned(),
            user_id: None,
        }
    }
}

impl Client<'_> {
    pub async fn get(&self, path: &str) -> Response {
        self.app.get(path, Some(&self.token)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.app.post(path, Some(&self.token), body).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Response {
        self.app.patch(path, Some(&self.token), body).await
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.app
            .request("DELETE", path, Some(&self.token), None, &[])
            .await
    }

    /// A request with extra headers.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        self.app
            .request(method, path, Some(&self.token), body, headers)
            .await
    }

    /// `POST`s and expects `201`; returns the created object.
    pub async fn create(&self, path: &str, body: &Value) -> Value {
        let res = self.post(path, body).await;
        assert_eq!(res.status, 201, "POST {path}: {}", res.text);
        res.body
    }

    /// A customer made by this caller: `customer(json!({...}))` adds fields to a name.
    pub async fn customer(&self, fields: Value) -> Value {
        let mut body = json!({"display_name": format!("Customer {}", Uuid::new_v4().simple())});
        if let (Some(body), Some(fields)) = (body.as_object_mut(), fields.as_object()) {
            body.extend(fields.clone());
        }
        self.create("/api/v1/customers", &body).await
    }

    /// A complaint about a customer, by this caller: `complaint(id, json!({...}))` adds or
    /// replaces fields of a phone complaint about product quality of medium severity.
    pub async fn complaint(&self, customer_id: &str, fields: Value) -> Value {
        let mut body = json!({
            "customer_id": customer_id, "channel": "phone", "category": "product_quality",
            "severity": "medium", "subject": "Sole came off", "description": "After a week of use.",
        });
        if let (Some(body), Some(fields)) = (body.as_object_mut(), fields.as_object()) {
            body.extend(fields.clone());
        }
        self.create("/api/v1/complaints", &body).await
    }

    /// A paid order of `total_minor` CNY for a customer, by this caller.
    pub async fn order(&self, customer_id: &str, external_id: &str, total_minor: i64) -> Value {
        self.create(
            "/api/v1/orders",
            &json!({
                "source": "test", "external_id": external_id, "customer": {"id": customer_id},
                "status": "paid", "currency": "CNY", "total_minor": total_minor,
                "ordered_at": "2026-11-01T10:00:00Z",
                "lines": [{"sku": "SKU-1", "name": "Item", "quantity": 1, "unit_price_minor": total_minor}],
            }),
        )
        .await
    }
}

/// The `id` of an object as text.
pub fn id_of(object: &Value) -> String {
    object["id"].as_str().expect("an id").to_owned()
}

#[derive(diesel::QueryableByName)]
struct EventRow {
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    data: Value,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(diesel::QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
}

impl TestApp {
    /// The events about a subject, oldest first: `(type, data)`.
    pub async fn events_of(&self, subject_id: &str) -> Vec<(String, Value)> {
        let mut conn = self.context.pool().get().await.unwrap();
        let rows: Vec<EventRow> = diesel::sql_query(
            "SELECT type AS event_type, data FROM events WHERE subject_id = $1::uuid ORDER BY txid, seq",
        )
        .bind::<Text, _>(subject_id)
        .load(&mut conn)
        .await
        .unwrap();
        rows.into_iter().map(|r| (r.event_type, r.data)).collect()
    }

    /// One pass of the webhook worker at `now`: fan out every committed event, attempt
    /// every delivery due, record the attempts.
    pub async fn deliver(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> rapport::webhooks::delivery::Pass {
        self.context
            .deliverer()
            .unwrap()
            .run_once(self.context.pool(), now)
            .await
            .unwrap()
    }

    /// Waits (up to 30 s) until every event committed so far is below the feed's bound. The
    /// bound is the cluster's oldest running transaction, so a test running beside this one
    /// can hold it back for a moment.
    pub async fn settle_feed(&self) {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self
            .count(
                "SELECT count(*) AS count FROM events \
                 WHERE txid >= pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
            )
            .await
            > 0
            && std::time::Instant::now() < until
        {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// How many events there are in all.
    pub async fn event_count(&self) -> i64 {
        self.count("SELECT count(*) AS count FROM events").await
    }

    /// The audit actions recorded for an entity, oldest first.
    pub async fn audit_actions(&self, entity_id: &str) -> Vec<String> {
        #[derive(diesel::QueryableByName)]
        struct Action {
            #[diesel(sql_type = Text)]
            action: String,
        }
        let mut conn = self.context.pool().get().await.unwrap();
        let rows: Vec<Action> = diesel::sql_query(
            "SELECT action FROM audit_log WHERE entity_id = $1::uuid ORDER BY created_at, id",
        )
        .bind::<Text, _>(entity_id)
        .load(&mut conn)
        .await
        .unwrap();
        rows.into_iter().map(|r| r.action).collect()
    }

    /// Runs a statement (a fault to inject, a fixture to plant).
    pub async fn execute(&self, sql: &str) {
        let mut conn = self.context.pool().get().await.unwrap();
        diesel::sql_query(sql).execute(&mut conn).await.unwrap();
    }

    /// The result of a `SELECT count(*) AS count ...`.
    pub async fn count(&self, sql: &str) -> i64 {
        let mut conn = self.context.pool().get().await.unwrap();
        let row: Count = diesel::sql_query(sql).get_result(&mut conn).await.unwrap();
        row.count
    }

    /// The tables of the schema with their columns' types (tables only: a view shows what a
    /// table holds).
    async fn columns(&self) -> Vec<Column> {
        let mut conn = self.context.pool().get().await.unwrap();
        diesel::sql_query(
            "SELECT c.table_name::text, c.column_name::text, c.data_type::text \
             FROM information_schema.columns c JOIN information_schema.tables t \
               ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
             WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' \
               AND c.table_name NOT LIKE '\\_\\_%' ORDER BY c.table_name",
        )
        .load(&mut conn)
        .await
        .unwrap()
    }

    /// The tables with a `customer_id` column: what a domain holds about a customer.
    pub async fn tables_naming_customers(&self) -> Vec<String> {
        self.columns()
            .await
            .into_iter()
            .filter(|c| c.column_name == "customer_id")
            .map(|c| c.table_name)
            .collect()
    }

    /// Every table in which `text` occurs anywhere in a row (as the row's text, or inside a
    /// `bytea` column such as a stored response).
    pub async fn tables_holding(&self, text: &str) -> Vec<String> {
        let columns = self.columns().await;
        let mut tables: Vec<&str> = columns.iter().map(|c| c.table_name.as_str()).collect();
        tables.dedup();
        let mut holding = Vec::new();
        for table in tables {
            let binary: Vec<String> = columns
                .iter()
                .filter(|c| c.table_name == table && c.data_type == "bytea")
                .map(|c| {
                    format!(
                        " OR position(convert_to($1, 'UTF8') IN t.{}) > 0",
                        c.column_name
                    )
                })
                .collect();
            let sql = format!(
                "SELECT count(*) AS count FROM {table} t WHERE t::text LIKE '%' || $1 || '%'{}",
                binary.concat()
            );
            let mut conn = self.context.pool().get().await.unwrap();
            let found: Count = diesel::sql_query(sql)
                .bind::<Text, _>(text)
                .get_result(&mut conn)
                .await
                .unwrap();
            if found.count > 0 {
                holding.push(table.to_owned());
            }
        }
        holding
    }
}

/// Checks each domain runs against its own routes, one line each.
pub mod conformance {
    use std::collections::HashSet;

    use super::*;

    /// A write with a stale `If-Match` is `412` and changes nothing.
    pub async fn stale_if_match_is_refused(client: &Client<'_>, path: &str, patch: &Value) {
        let before = client.get(path).await;
        assert_eq!(before.status, 200, "GET {path}: {}", before.text);
        let etag = before.header("etag").expect("an ETag").to_owned();
        let stale = client
            .send("PATCH", path, Some(patch), &[("If-Match", "\"999999\"")])
            .await;
        assert_eq!(
            stale.status, 412,
            "PATCH {path} with a stale ETag: {}",
            stale.text
        );
        assert_eq!(client.get(path).await.header("etag"), Some(etag.as_str()));
        let fresh = client
            .send("PATCH", path, Some(patch), &[("If-Match", &etag)])
            .await;
        assert_eq!(
            fresh.status, 200,
            "PATCH {path} with the current ETag: {}",
            fresh.text
        );
    }

    /// An agent who does not own the row cannot change it (`403`), and it stays unchanged.
    pub async fn agents_cannot_write_anothers(app: &TestApp, path: &str, patch: &Value) {
        let agent = app.client(Role::Agent).await;
        let before = agent.get(path).await;
        let refused = agent.patch(path, patch).await;
        assert_eq!(
            refused.status, 403,
            "PATCH {path} by another agent: {}",
            refused.text
        );
        assert_eq!(agent.get(path).await.header("etag"), before.header("etag"));
    }

    /// Walking `list` (a path with a query string) page by page visits every row once, while
    /// `insert` adds rows between the pages.
    pub async fn list_walk_visits_every_row_once(
        client: &Client<'_>,
        list: &str,
        expected: &HashSet<String>,
        insert: impl AsyncFn(),
    ) {
        let mut seen = HashSet::new();
        let mut path = list.to_owned();
        for page_no in 0.. {
            let page = client.get(&path).await;
            assert_eq!(page.status, 200, "{path}: {}", page.text);
            for row in page.body["data"].as_array().unwrap() {
                assert!(seen.insert(id_of(row)), "{list}: a row came twice");
            }
            if page_no == 0 {
                insert().await;
            }
            match page.body["next_cursor"].as_str() {
                Some(cursor) => path = format!("{list}&cursor={cursor}"),
                None => break,
            }
        }
        assert!(expected.is_subset(&seen), "{list}: a row was skipped");
    }

    /// `list` (a path with a query string) sorts by `field` both ways (`?sort=field` and
    /// `?sort=-field`), page by page, `ascending` being the ids in the field's order; any other
    /// sort is `400`, and a cursor of one order is refused in the other.
    pub async fn sorts_both_ways(
        client: &Client<'_>,
        list: &str,
        field: &str,
        ascending: &[String],
    ) {
        let walk = async |sort: &str| {
            let first = format!("{list}&limit=2&sort={sort}");
            let rows = client.app.walk_pages(&first, Some(&client.token), 50).await;
            rows.iter()
                .map(id_of)
                .filter(|id| ascending.contains(id))
                .collect::<Vec<_>>()
        };
        assert_eq!(walk(field).await, ascending, "{list} by {field}");
        let mut descending = ascending.to_vec();
        descending.reverse();
        assert_eq!(
            walk(&format!("-{field}")).await,
            descending,
            "{list} by -{field}"
        );
        for unknown in ["name", "-version", "created_at,id"] {
            let res = client.get(&format!("{list}&sort={unknown}")).await;
            assert_eq!(res.status, 400, "{list} sort={unknown}: {}", res.text);
            assert_eq!(res.header("content-type"), Some("application/problem+json"));
        }
        let page = client.get(&format!("{list}&limit=1&sort={field}")).await;
        let cursor = page.body["next_cursor"].as_str().expect("a second page");
        let crossed = client
            .get(&format!("{list}&limit=1&sort=-{field}&cursor={cursor}"))
            .await;
        assert_eq!(
            crossed.status, 400,
            "a cursor in the other order: {}",
            crossed.text
        );
    }

    /// A `POST` repeated under its `Idempotency-Key` replays the first response and writes
    /// nothing more (no second event).
    pub async fn post_replays_under_idempotency_key(client: &Client<'_>, path: &str, body: &Value) {
        let key = format!("conformance-{}", Uuid::new_v4());
        let headers = [("Idempotency-Key", key.as_str())];
        let first = client.send("POST", path, Some(body), &headers).await;
        assert!(first.status < 300, "POST {path}: {}", first.text);
        let events = client.app.event_count().await;
        let again = client.send("POST", path, Some(body), &headers).await;
        assert_eq!(again.status, first.status);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(again.body, first.body, "the replay is the first response");
        assert_eq!(
            client.app.event_count().await,
            events,
            "a replay emits no event"
        );
    }

    /// The last event about `subject_id` is `event_type`, carrying the resource as the API
    /// shows it (or its id for a deletion).
    pub async fn write_emitted(app: &TestApp, subject_id: &str, event_type: &str) -> Value {
        let events = app.events_of(subject_id).await;
        let (last_type, data) = events.last().expect("an event").clone();
        assert_eq!(last_type, event_type, "events of {subject_id}: {events:?}");
        assert_eq!(data["id"], subject_id, "the event names its subject");
        data
    }

    /// A write refused by `refuse` (a request that must fail) emits no event and no audit
    /// entry.
    pub async fn failed_write_emits_nothing(app: &TestApp, refuse: impl AsyncFn() -> Response) {
        let events = app.event_count().await;
        let audits = app.count("SELECT count(*) AS count FROM audit_log").await;
        let refused = refuse().await;
        assert!(
            refused.status >= 400,
            "the write should fail: {}",
            refused.text
        );
        assert_eq!(
            app.event_count().await,
            events,
            "a failed write emitted an event"
        );
        assert_eq!(
            app.count("SELECT count(*) AS count FROM audit_log").await,
            audits,
            "a failed write was audited"
        );
    }

    /// After erasing the customer, none of `secrets` is left in any table.
    pub async fn erase_reaches_everything(
        client: &Client<'_>,
        customer_id: &str,
        secrets: &[&str],
    ) {
        for secret in secrets {
            assert!(
                !client.app.tables_holding(secret).await.is_empty(),
                "the test planted {secret} nowhere"
            );
        }
        let erased = client
            .post(
                &format!("/api/v1/customers/{customer_id}/erase"),
                &json!({}),
            )
            .await;
        assert_eq!(erased.status, 200, "{}", erased.text);
        for secret in secrets {
            let left = client.app.tables_holding(secret).await;
            assert!(
                left.is_empty(),
                "after the erase {secret} is still in {left:?}"
            );
        }
    }
}

/// Whether `value` matches `schema` of the OpenAPI document `doc`: references, `oneOf`,
/// `anyOf`, `allOf`, types (a list of them too), enums, required and declared properties,
/// array items. Enough to hold a response to its documented schema; says where it fails.
pub fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let target = doc
            .pointer(reference.trim_start_matches('#'))
            .ok_or_else(|| format!("{at}: {reference} names nothing"))?;
        return conforms(doc, target, value, at);
    }
    if let Some(branches) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        let errors: Vec<String> = branches
            .iter()
            .filter_map(|b| conforms(doc, b, value, at).err())
            .collect();
        if errors.len() == branches.len() {
            return Err(format!("{at}: no branch matches: {}", errors.join("; ")));
        }
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        conforms(doc, part, value, at)?;
    }
    let type_matches = |t: &str| match t {
        "null" => value.is_null(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => true,
    };
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !types.is_empty() && !types.iter().any(|t| type_matches(t)) {
        return Err(format!("{at}: {value} is not {types:?}"));
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let Some(object) = value.as_object() {
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                return Err(format!("{at}: `{name}` is missing"));
            }
        }
        if let Some(properties) = schema["properties"].as_object() {
            for (name, field) in object {
                match properties.get(name) {
                    Some(property) => conforms(doc, property, field, &format!("{at}.{name}"))?,
                    None => return Err(format!("{at}: `{name}` is not in the schema")),
                }
            }
        }
    }
    if let (Some(items), Some(values)) = (schema.get("items"), value.as_array()) {
        for (i, item) in values.iter().enumerate() {
            conforms(doc, items, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}
