//! The test harness: one PostgreSQL per test run (the embedded cluster, or `DATABASE_URL`),
//! a template database migrated once, and for each test a fresh database cloned from it
//! plus the real HTTP server on a free port.

use std::sync::OnceLock;

use actix_web::dev::ServerHandle;
use awc::http::header::HeaderMap;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use rapport::auth::Role;
use rapport::config::Settings;
use rapport::db::shared_reads::SharedReadsSpec;
use rapport::db::{self, embedded::EmbeddedPostgres};
use rapport::kit::write::Writer;
use rapport::server::Context;
use rapport::users::{NewUser, create_user};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The JWT secret every test app signs with.
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";
/// The password of every user the harness creates.
pub const PASSWORD: &str = "a long test password";

struct Cluster {
    admin_url: String,
    template: String,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(prepare_cluster())
        })
        .join()
        .expect("test database setup failed")
    })
}

async fn prepare_cluster() -> Cluster {
    let admin_url = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            // Under the system temp folder: when the suite runs as root the cluster runs as
            // `postgres`, which must be able to reach its folder.
            let checkout = Sha256::digest(env!("CARGO_MANIFEST_DIR").as_bytes());
            let tag: String = checkout
                .iter()
                .take(6)
                .map(|b| format!("{b:02x}"))
                .collect();
            let dir = std::env::temp_dir().join(format!("rapport-test-{tag}"));
            let pg = EmbeddedPostgres::start(&dir).unwrap_or_else(|e| panic!("{e}"));
            if pg.started_here() {
                pg.stop_after_exit_of(std::process::id()).expect("watcher");
            }
            pg.url()
        }
    };
    let template = format!("rapport_tpl_{}", migrations_fingerprint());
    let mut conn = AsyncPgConnection::establish(&admin_url)
        .await
        .expect("connect to the test server");
    conn.batch_execute("SELECT pg_advisory_lock(4242)")
        .await
        .unwrap();
    let ready: bool = {
        use diesel::sql_types::Bool;
        use diesel_async::RunQueryDsl;
        diesel::select(
            diesel::dsl::sql::<Bool>(
                "EXISTS (SELECT 1 FROM pg_database WHERE datistemplate AND datname = ",
            )
            .bind::<diesel::sql_types::Text, _>(&template)
            .sql(")"),
        )
        .get_result(&mut conn)
        .await
        .unwrap()
    };
    if !ready {
        conn.batch_execute(&format!("DROP DATABASE IF EXISTS {template}"))
            .await
            .unwrap();
        conn.batch_execute(&format!("CREATE DATABASE {template}"))
            .await
            .unwrap();
        db::run_migrations(&with_database(&admin_url, &template))
            .await
            .expect("migrate template");
        conn.batch_execute(&format!("ALTER DATABASE {template} WITH IS_TEMPLATE true"))
            .await
            .unwrap();
    }
    conn.batch_execute("SELECT pg_advisory_unlock(4242)")
        .await
        .unwrap();
    Cluster {
        admin_url,
        template,
    }
}

/// A digest of `migrations/`, so a template is rebuilt exactly when migrations change.
fn migrations_fingerprint() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .collect();
    files.sort();
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(
            file.strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .as_bytes(),
        );
        hasher.update(std::fs::read(&file).unwrap());
    }
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `url` pointing at database `name` instead.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A response, read whole.
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Response {
    /// Reads a client response whole (bodies up to 16 MiB).
    async fn read<S>(mut res: awc::ClientResponse<S>) -> Self
    where
        S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>>
            + Unpin,
    {
        let bytes = res.body().limit(16 << 20).await.unwrap();
        Self {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `field` of each entry of a problem document's `errors`.
    pub fn error_fields(&self) -> Vec<&str> {
        self.body["errors"]
            .as_array()
            .map(|errors| errors.iter().filter_map(|e| e["field"].as_str()).collect())
            .unwrap_or_default()
    }
}

/// A running app on its own database.
pub struct TestApp {
    pub base: String,
    pub context: Context,
    pub database_url: String,
    database: String,
    handle: ServerHandle,
    client: awc::Client,
    /// An admin's token, made on first use, that reads every `Location` a create sends (its
    /// own rate limit, so the reads take nothing from the caller's).
    location_reader: tokio::sync::OnceCell<String>,
}

impl TestApp {
    /// An app with default settings, ready.
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// An app with extra command-line settings, ready.
    pub async fn spawn_with(args: &[&str]) -> Self {
        let app = Self::spawn_unready(args).await;
        app.context.mark_started();
        app
    }

    /// An app whose start-up work is not marked done (for `/readyz`).
    pub async fn spawn_unready(args: &[&str]) -> Self {
        let cluster = cluster();
        let database = format!("rapport_test_{}", Uuid::new_v4().simple());
        let mut admin = AsyncPgConnection::establish(&cluster.admin_url)
            .await
            .unwrap();
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {database} TEMPLATE {}",
                cluster.template
            ))
            .await
            .unwrap();
        let database_url = with_database(&cluster.admin_url, &database);
        let mut argv = vec!["--jwt-secret", JWT_SECRET, "--database-url", &database_url];
        if !args.contains(&"--workers") {
            argv.extend_from_slice(&["--workers", "1"]);
        }
        argv.extend_from_slice(args);
        let settings = Settings::from_args(argv).unwrap();
        let pool = db::build_pool(
            &database_url,
            8,
            settings.db_pool_timeout,
            settings.db_statement_timeout,
        )
        .unwrap();
        let context = Context::new(&settings, pool, JWT_SECRET.as_bytes()).with_shared_reads(
            SharedReadsSpec {
                url: database_url.clone(),
                connect_timeout: settings.db_pool_timeout,
                statement_timeout: settings.db_statement_timeout,
            },
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = context.http_server(listener).unwrap();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let client = awc::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .finish();
        Self {
            base,
            context,
            database_url,
            database,
            handle,
            client,
            location_reader: tokio::sync::OnceCell::new(),
        }
    }

    /// Sends a request; `body` is sent as JSON when present.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.insert_header(("Authorization", format!("Bearer {token}")));
        }
        for (name, value) in headers {
            req = req.insert_header((*name, *value));
        }
        let res = match body {
            Some(body) => req.send_json(body).await,
            None => req.send().await,
        };
        let res = Response::read(res.expect("request failed")).await;
        if res.status == 201 {
            Box::pin(self.location_resolves(&res, token)).await;
        }
        res
    }

    /// Every `Location` a create sends names something that exists: an admin reads it (a
    /// member's own `/me/...` resource, the member who made it).
    async fn location_resolves(&self, created: &Response, caller: Option<&str>) {
        let Some(location) = created.header("location") else {
            return;
        };
        let token = match caller.filter(|_| location.starts_with("/api/v1/me/")) {
            Some(member) => member,
            None => {
                self.location_reader
                    .get_or_init(|| async { self.admin_token().await })
                    .await
            }
        };
        let read = self.get(location, Some(token)).await;
        assert_eq!(
            read.status, 200,
            "the Location {location} of a 201 answers {}: {}",
            read.status, read.text
        );
    }

    /// Sends raw bytes with a content type.
    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Response {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .insert_header(("Content-Type", content_type));
        if let Some(token) = token {
            req = req.insert_header(("Authorization", format!("Bearer {token}")));
        }
        Response::read(req.send_body(body).await.expect("request failed")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.request("GET", path, token, None, &[]).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.request("POST", path, token, Some(body), &[]).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.request("PATCH", path, token, Some(body), &[]).await
    }

    /// The items of a keyset-paginated list, page after page: follows `next_cursor` from
    /// `first` (a path with a query string) for at most `pages` pages, each a `200`.
    pub async fn walk_pages(&self, first: &str, token: Option<&str>, pages: usize) -> Vec<Value> {
        let mut items = Vec::new();
        let mut path = first.to_owned();
        for _ in 0..pages {
            let page = self.get(&path, token).await;
            assert_eq!(page.status, 200, "{path}: {}", page.text);
            items.extend(page.body["data"].as_array().unwrap().iter().cloned());
            match page.body["next_cursor"].as_str() {
                Some(cursor) => path = format!("{first}&cursor={cursor}"),
                None => break,
            }
        }
        items
    }

    /// Creates a user straight in the database; returns its id and e-mail.
    pub async fn create_user(&self, role: Role) -> (Uuid, String) {
        let email = format!("{}-{}@example.com", role.as_str(), Uuid::new_v4().simple());
        let mut conn = self.context.pool().get().await.unwrap();
        let new = NewUser {
            email: email.clone().into(),
            password: PASSWORD.to_owned().into(),
            role,
            time_zone: None,
            display_name: None,
        };
        let row = create_user(&mut conn, &Writer::system(), new)
            .await
            .unwrap();
        (row.id.get(), email)
    }

    /// Signs in with an e-mail and a password, whatever the answer.
    pub async fn sign_in(&self, email: &str, password: &str) -> Response {
        let body = serde_json::json!({"email": email, "password": password});
        self.post("/api/v1/auth/login", None, &body).await
    }

    /// Logs in; returns the token pair as JSON.
    pub async fn login(&self, email: &str) -> Value {
        let res = self.sign_in(email, PASSWORD).await;
        assert_eq!(res.status, 200, "login failed: {}", res.text);
        res.body
    }

    /// A new user of `role` and their access token.
    pub async fn user_token(&self, role: Role) -> (Uuid, String) {
        let (id, email) = self.create_user(role).await;
        let pair = self.login(&email).await;
        (id, pair["access_token"].as_str().unwrap().to_owned())
    }

    /// An access token of a new admin.
    pub async fn admin_token(&self) -> String {
        self.user_token(Role::Admin).await.1
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Sending the stop is immediate; awaiting it would need this (blocked) runtime.
        drop(self.handle.stop(false));
        let admin_url = cluster().admin_url.clone();
        let database = self.database.clone();
        self.context.pool().close();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                if let Ok(mut admin) = AsyncPgConnection::establish(&admin_url).await {
                    let _ = admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join()
        .ok();
    }
}

/// Runs `statement` (built anew each time) eight times on `conn`, kept prepared as the API
/// keeps it, and fails unless PostgreSQL settled on its generic plan: a statement that it
/// plans anew on every run pays for planning on every read (a bound value that a partial
/// index's `WHERE` needs, a bound limit, or a `NULL` that prunes the plan made for it).
/// `marker`, a piece of its text, picks the statement out of `pg_prepared_statements`.
pub async fn assert_runs_on_its_generic_plan<Q>(
    conn: &mut AsyncPgConnection,
    marker: &str,
    statement: impl Fn() -> Q,
) where
    Q: diesel::query_builder::QueryFragment<diesel::pg::Pg> + diesel::query_builder::QueryId + Send,
{
    for _ in 0..8 {
        diesel_async::RunQueryDsl::execute(rapport::db::prepared::Cached::fixed(statement()), conn)
            .await
            .unwrap();
    }
    #[derive(diesel::QueryableByName)]
    struct PlanCounts {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        generic: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        custom: i64,
    }
    let PlanCounts { generic, custom } = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query(
            "SELECT generic_plans AS generic, custom_plans AS custom FROM pg_prepared_statements \
             WHERE strpos(statement, $1) > 0",
        )
        .bind::<diesel::sql_types::Text, _>(marker),
        conn,
    )
    .await
    .unwrap();
    assert!(
        generic > 0 && custom <= 5,
        "the statement with '{marker}' should run on its generic plan: {generic} generic, {custom} custom runs"
    );
}
