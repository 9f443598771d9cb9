//! Faults: the real binary against a PostgreSQL cluster of its own, which these tests restart,
//! stop, block with locks, and whose API process they terminate and kill. Load is bounded in
//! count and time and stays on loopback.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use diesel::sql_types::{Array, BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::future::join_all;
use rapport::db::embedded::EmbeddedPostgres;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::JWT_SECRET;

const ADMIN_EMAIL: &str = "faults@example.com";
const ADMIN_PASSWORD: &str = "fault test admin password";

/// A private cluster and the API binary serving it.
struct Stack {
    pg: EmbeddedPostgres,
    dir: PathBuf,
    api: Option<Child>,
    port: u16,
    args: Vec<String>,
    client: awc::Client,
    token: String,
}

/// What a request came back with: a status and body, or no HTTP answer at all.
type Outcome = Result<(u16, Value, Option<String>), String>;

impl Stack {
    /// A fresh cluster (running) and the API on it (ready, admin signed in).
    async fn start(args: &[&str]) -> Self {
        let mut stack = Self::cluster_only(args).await;
        stack.spawn_api();
        stack.wait_ready(Duration::from_secs(30)).await;
        stack.sign_in().await;
        stack
    }

    /// A fresh cluster (running), no API yet.
    async fn cluster_only(args: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("rapport-fault-{}", Uuid::new_v4().simple()));
        let start_dir = dir.clone();
        let pg = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&start_dir))
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{e}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self {
            pg,
            dir,
            api: None,
            port,
            args: args.iter().map(|a| a.to_string()).collect(),
            client: awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .finish(),
            token: String::new(),
        }
    }

    fn spawn_api(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_rapport"))
            .arg("serve")
            .args(&self.args)
            .env("DATABASE_URL", self.pg.url())
            .env("RAPPORT_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("RAPPORT_JWT_SECRET", JWT_SECRET)
            .env("RAPPORT_RATE_LIMIT_PER_MINUTE", "0")
            .env("RAPPORT_BOOTSTRAP_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("RAPPORT_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the API");
        self.api = Some(child);
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Waits for `/readyz` to say ready; returns how long it took.
    async fn wait_ready(&self, limit: Duration) -> Duration {
        let started = Instant::now();
        eventually(limit, "ready", async || {
            matches!(self.send("GET", "/readyz", None, &[]).await, Ok((200, ..))).then_some(())
        })
        .await;
        started.elapsed()
    }

    async fn sign_in(&mut self) {
        let body = json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD});
        let (status, pair, _) = self
            .send("POST", "/api/v1/auth/login", Some(&body), &[])
            .await
            .unwrap();
        assert_eq!(status, 200, "{pair}");
        self.token = pair["access_token"].as_str().unwrap().to_owned();
    }

    /// One request with the admin's token (once signed in).
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Outcome {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(method, self.url(path));
        if !self.token.is_empty() {
            req = req.insert_header(("Authorization", format!("Bearer {}", self.token)));
        }
        for header in headers {
            req = req.insert_header(*header);
        }
        let mut res = match body {
            Some(body) => req.send_json(body).await,
            None => req.send().await,
        }
        .map_err(|e| e.to_string())?;
        let bytes = res.body().await.map_err(|e| e.to_string())?;
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok((
            res.status().as_u16(),
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            content_type,
        ))
    }

    /// A direct connection to the API's database, for checks and for holding locks.
    async fn database(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.pg.url()).await.unwrap()
    }

    /// Warms the credential cache (so that only customer queries still need the database),
    /// then locks the customers table until the returned connection rolls back.
    async fn lock_customers(&self) -> AsyncPgConnection {
        self.send("GET", "/api/v1/customers", None, &[])
            .await
            .unwrap();
        let mut lock = self.database().await;
        lock.batch_execute("BEGIN; LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
        lock
    }

    /// Runs a blocking `pg_ctl` action off the async runtime.
    async fn pg<F>(&self, action: F)
    where
        F: FnOnce(&EmbeddedPostgres) -> Result<(), rapport::db::embedded::EmbeddedError>
            + Send
            + 'static,
    {
        let pg = self.pg.clone();
        tokio::task::spawn_blocking(move || action(&pg))
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{e}"));
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = self.api.as_ref().unwrap().id() as i32;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).unwrap();
    }

    /// Waits (bounded) for the API process to exit.
    async fn exit_status(&mut self, limit: Duration) -> ExitStatus {
        let api = self.api.as_mut().unwrap();
        eventually(limit, "the API's exit", async || api.try_wait().unwrap()).await
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(api) = &mut self.api {
            let _ = api.kill();
            let _ = api.wait();
        }
        let _ = self.pg.stop_with("immediate");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `check` every 10 ms until it gives a value; fails, saying `what` was awaited, after
/// `limit`.
async fn eventually<T>(
    limit: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < limit, "{what} not within {limit:?}");
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How many of `refs` are stored as customers of the load (`source = 'fault'`).
async fn stored(conn: &mut AsyncPgConnection, refs: &[String]) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let count: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM customers WHERE source = 'fault' AND external_ref = ANY($1)",
    )
    .bind::<Array<Text>, _>(refs)
    .get_result(conn)
    .await
    .unwrap();
    count.n
}

/// Writers and readers hammering the API until `until`; each write is recorded with its
/// outcome and when it was answered.
async fn load(stack: &Stack, until: Instant, tag: &str) -> Vec<(String, Instant, Outcome)> {
    let writer = |w: usize| async move {
        let mut seen = Vec::new();
        let mut i = 0;
        while Instant::now() < until && i < 2_000 {
            let reference = format!("{tag}-{w}-{i}");
            let body = json!({"display_name": format!("Load {reference}"), "source": "fault",
                "external_ref": reference});
            let outcome = stack
                .send("POST", "/api/v1/customers", Some(&body), &[])
                .await;
            seen.push((reference, Instant::now(), outcome));
            i += 1;
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        }
        seen
    };
    // One reader pages the list (pooled connections), one reads a customer by id (the
    // shared read connection).
    let reader = |r: usize| async move {
        let path = if r == 0 {
            "/api/v1/customers?limit=5".to_owned()
        } else {
            let body = json!({"display_name": format!("Read by id {tag}")});
            let (status, created, _) = stack
                .send("POST", "/api/v1/customers", Some(&body), &[])
                .await
                .expect("the API answers before the restart");
            assert_eq!(status, 201, "{created}");
            format!("/api/v1/customers/{}", created["id"].as_str().unwrap())
        };
        let mut seen = Vec::new();
        while Instant::now() < until && seen.len() < 2_000 {
            let outcome = stack.send("GET", &path, None, &[]).await;
            seen.push((String::new(), Instant::now(), outcome));
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        }
        seen
    };
    let (written, read) =
        futures_util::future::join(join_all((0..3).map(writer)), join_all((0..2).map(reader)))
            .await;
    written.into_iter().chain(read).flatten().collect()
}

#[actix_web::test]
async fn database_restarts_cost_only_503s_and_lose_no_acknowledged_write() {
    let stack = Stack::start(&[]).await;
    for mode in ["fast", "immediate"] {
        let started = Instant::now();
        let until = started + Duration::from_secs(5);
        let (outcomes, back_at) = tokio::join!(load(&stack, until, mode), async {
            actix_web::rt::time::sleep(Duration::from_millis(1000)).await;
            stack.pg(|pg| pg.restart(mode)).await;
            Instant::now()
        });

        let mut acknowledged = Vec::new();
        let mut unavailable = 0;
        let mut last_503 = started;
        let mut first_ok_after = None;
        for (reference, at, outcome) in &outcomes {
            let (status, body, content_type) = outcome
                .as_ref()
                .unwrap_or_else(|e| panic!("{mode}: the API must stay up: {e}"));
            match status {
                200 | 201 => {
                    if !reference.is_empty() {
                        acknowledged.push(reference.clone());
                    }
                    if *at > back_at && first_ok_after.is_none_or(|t| *at < t) {
                        first_ok_after = Some(*at);
                    }
                }
                503 => {
                    unavailable += 1;
                    last_503 = last_503.max(*at);
                    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
                    assert_eq!(body["status"], 503);
                }
                other => panic!("{mode}: unexpected {other}: {body}"),
            }
        }
        let recovered = first_ok_after
            .expect("requests succeed again")
            .duration_since(back_at);
        let last_failure = last_503.saturating_duration_since(back_at);
        let reads = outcomes.iter().filter(|(r, _, _)| r.is_empty()).count();
        assert!(
            reads > 100,
            "{mode}: reads ran alongside the writes ({reads})"
        );
        eprintln!(
            "restart -m {mode}: {} requests ({reads} reads), {} acknowledged writes, {unavailable} × 503, \
             first success {recovered:?} after the database was back, last 503 {last_failure:?} after",
            outcomes.len(),
            acknowledged.len(),
        );
        assert!(
            recovered < Duration::from_secs(2),
            "{mode}: recovered in {recovered:?}"
        );
        assert!(
            last_failure < Duration::from_secs(2),
            "{mode}: 503s until {last_failure:?}"
        );
        assert_eq!(
            stored(&mut stack.database().await, &acknowledged).await,
            acknowledged.len() as i64,
            "{mode}: every acknowledged write is stored"
        );
    }
}

#[actix_web::test]
async fn the_api_starts_before_its_database_and_waits_for_it() {
    let mut stack = Stack::cluster_only(&[]).await;
    stack.pg(|pg| pg.stop_with("fast")).await;
    stack.spawn_api();
    eventually(Duration::from_secs(30), "the API up", async || {
        matches!(
            stack.send("GET", "/healthz", None, &[]).await,
            Ok((200, ..))
        )
        .then_some(())
    })
    .await;
    for _ in 0..5 {
        let (status, body, _) = stack.send("GET", "/readyz", None, &[]).await.unwrap();
        assert_eq!(status, 503, "not ready without a database: {body}");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    stack.pg(|pg| pg.start_again()).await;
    let waited = stack.wait_ready(Duration::from_secs(15)).await;
    eprintln!("ready {waited:?} after the database started");
    stack.sign_in().await;
    let (status, ..) = stack
        .send("GET", "/api/v1/customers", None, &[])
        .await
        .unwrap();
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn a_blocked_database_answers_503_in_bounded_time() {
    // One worker, so that its pool holds all of `--db-pool-size`.
    let stack = Stack::start(&[
        "--workers",
        "1",
        "--db-pool-size",
        "2",
        "--db-pool-timeout",
        "1s",
        "--db-statement-timeout",
        "2s",
    ])
    .await;
    let mut lock = stack.lock_customers().await;

    let timed = |delay: u64| {
        let stack = &stack;
        async move {
            actix_web::rt::time::sleep(Duration::from_millis(delay)).await;
            let sent = Instant::now();
            let outcome = stack.send("GET", "/api/v1/customers", None, &[]).await;
            (outcome.unwrap(), sent.elapsed())
        }
    };
    // Two requests take both connections and wait on the lock; a third finds the pool empty.
    let results = join_all([timed(0), timed(0), timed(300)]).await;
    lock.batch_execute("ROLLBACK").await.unwrap();
    for (i, ((status, body, content_type), took)) in results.iter().enumerate() {
        eprintln!("blocked request {i}: {status} after {took:?}");
        assert_eq!(*status, 503, "{body}");
        assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    }
    let (pool_wait, statement) = (results[2].1, results[0].1.max(results[1].1));
    assert!(
        pool_wait >= Duration::from_millis(900) && pool_wait < Duration::from_millis(1900),
        "the pool's wait timeout (1 s) bounds a request without a connection: {pool_wait:?}"
    );
    assert!(
        statement >= Duration::from_millis(1900) && statement < Duration::from_secs(4),
        "statement_timeout (2 s) bounds a blocked query: {statement:?}"
    );
    let (status, ..) = stack
        .send("GET", "/api/v1/customers", None, &[])
        .await
        .unwrap();
    assert_eq!(status, 200, "the connections are usable again");
}

#[actix_web::test]
async fn sigterm_finishes_in_flight_requests_refuses_new_ones_and_exits_0() {
    let mut stack = Stack::start(&[]).await;
    let mut lock = stack.lock_customers().await;
    let in_flight = join_all((0..3).map(|_| stack.send("GET", "/api/v1/customers", None, &[])));
    let (answers, ()) = tokio::join!(in_flight, async {
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        stack.signal(nix::sys::signal::Signal::SIGTERM);
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        let address = format!("127.0.0.1:{}", stack.port);
        assert!(
            std::net::TcpStream::connect(&address).is_err(),
            "new connections are refused once stopping"
        );
        lock.batch_execute("ROLLBACK").await.unwrap();
    });
    for answer in answers {
        let (status, body, _) = answer.expect("in-flight requests are answered");
        assert_eq!(status, 200, "{body}");
    }
    let status = stack.exit_status(Duration::from_secs(25)).await;
    assert_eq!(status.code(), Some(0));
}

#[actix_web::test]
async fn a_retry_after_a_crash_between_commit_and_response_returns_the_committed_result() {
    let mut stack = Stack::start(&[]).await;
    let key = [("Idempotency-Key", "crash-once")];
    let body = json!({"display_name": "Crash Test", "source": "fault", "external_ref": "crash"});
    let mut watcher = stack.database().await;
    // The request runs while a watcher kills the process as soon as the write is committed,
    // so the client never learns the outcome.
    let killed = {
        let request = stack.send("POST", "/api/v1/customers", Some(&body), &key);
        let crash = ["crash".to_owned()];
        let kill = async {
            eventually(Duration::from_secs(10), "the commit", async || {
                (stored(&mut watcher, &crash).await > 0).then_some(())
            })
            .await;
            stack.signal(nix::sys::signal::Signal::SIGKILL);
        };
        tokio::join!(request, kill).0
    };
    eprintln!("the first attempt's client saw: {killed:?}");
    stack.exit_status(Duration::from_secs(5)).await;

    stack.spawn_api();
    stack.wait_ready(Duration::from_secs(30)).await;
    stack.client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let (status, replay, _) = stack
        .send("POST", "/api/v1/customers", Some(&body), &key)
        .await
        .unwrap();
    assert_eq!(status, 201, "{replay}");
    assert_eq!(replay["external_ref"], "crash");
    assert_eq!(
        stored(&mut stack.database().await, &["crash".to_owned()]).await,
        1
    );
    let (_, list, _) = stack
        .send("GET", "/api/v1/customers?limit=200", None, &[])
        .await
        .unwrap();
    let ids: Vec<&Value> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["id"])
        .collect();
    assert_eq!(
        ids,
        [&replay["id"]],
        "the retry returned the committed customer, not a new one"
    );
}
