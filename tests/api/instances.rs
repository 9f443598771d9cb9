//! Two API processes on one database: they share the webhook work (each event delivered
//! once per attempt) and serve the same change feed; with `RAPPORT_JOBS=off` an instance
//! leaves the background work to a `rapport worker`, which stops cleanly on SIGTERM.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rapport::auth::Role;
use serde_json::{Value, json};

use crate::common::{JWT_SECRET, TestApp};
use crate::receiver::Receiver;

/// `rapport <args>` on the test's database, delivering to private addresses (the receiver's).
fn rapport(app: &TestApp, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rapport"))
        .args(args)
        .args(["--webhook-allow-private", "true"])
        .env("DATABASE_URL", &app.database_url)
        .env("RAPPORT_JWT_SECRET", JWT_SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rapport")
}

/// A `rapport serve` process on the test's database, stopped when dropped.
struct Instance {
    child: Child,
    base: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Instance {
    async fn start(app: &TestApp) -> Self {
        Self::start_with(app, &[]).await
    }

    /// An instance with these extra arguments (`--jobs off`).
    async fn start_with(app: &TestApp, extra: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec![
            "serve",
            "--listen",
            &listen,
            "--workers",
            "1",
            "--db-pool-size",
            "2",
        ];
        args.extend_from_slice(extra);
        let child = rapport(app, &args);
        let instance = Self {
            child,
            base: format!("http://{listen}"),
        };
        let until = Instant::now() + Duration::from_secs(30);
        while instance.status("/readyz").await != Some(200) {
            assert!(Instant::now() < until, "the instance did not get ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        instance
    }

    async fn status(&self, path: &str) -> Option<u16> {
        awc::Client::default()
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16())
    }

    async fn send(&self, method: &str, path: &str, token: &str, body: Option<&Value>) -> Value {
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish();
        let req = client
            .request(
                awc::http::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", self.base),
            )
            .insert_header(("Authorization", format!("Bearer {token}")));
        let mut res = match body {
            Some(body) => req.send_json(body).await,
            None => req.send().await,
        }
        .unwrap();
        let bytes = res.body().limit(16 << 20).await.unwrap();
        assert!(
            res.status().is_success(),
            "{method} {path}: {}",
            res.status()
        );
        serde_json::from_slice(&bytes).unwrap()
    }
}

#[actix_web::test]
async fn two_instances_deliver_each_event_once_and_serve_the_same_feed() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_token(Role::Admin).await;
    let receiver = Receiver::start();
    let (one, two) = (Instance::start(&app).await, Instance::start(&app).await);
    one.send(
        "POST",
        "/api/v1/webhooks",
        &token,
        Some(&json!({"url": receiver.url("/ok"), "event_types": ["customer.created"]})),
    )
    .await;
    let made = 40;
    for n in 0..made {
        let instance = if n % 2 == 0 { &one } else { &two };
        instance
            .send(
                "POST",
                "/api/v1/customers",
                &token,
                Some(&json!({"display_name": format!("Customer {n}")})),
            )
            .await;
    }
    let got = receiver
        .wait_for("/ok", made, Duration::from_secs(30))
        .await;
    assert_eq!(got.len(), made, "every event delivered");
    // Time for any second attempt to show up, had two workers taken the same delivery.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut per_event: HashMap<String, usize> = HashMap::new();
    for received in receiver.at("/ok") {
        *per_event.entry(received.id.clone()).or_default() += 1;
    }
    assert_eq!(per_event.len(), made);
    assert!(
        per_event.values().all(|n| *n == 1),
        "an event delivered twice: {per_event:?}"
    );

    app.settle_feed().await;
    let feed_one = one
        .send("GET", "/api/v1/changes?limit=1000", &token, None)
        .await;
    let feed_two = two
        .send("GET", "/api/v1/changes?limit=1000", &token, None)
        .await;
    assert_eq!(feed_one["data"].as_array().unwrap().len(), made);
    assert_eq!(
        feed_one["data"], feed_two["data"],
        "the feed read from either is the same"
    );
}

#[actix_web::test]
async fn a_worker_process_delivers_for_the_api_beside_it() {
    let app = TestApp::spawn_with(&["--webhook-allow-private", "true"]).await;
    let admin = app.client(Role::Admin).await;
    let receiver = Receiver::start();
    admin
        .create(
            "/api/v1/webhooks",
            &json!({"url": receiver.url("/ok"), "event_types": ["customer.created"]}),
        )
        .await;
    let mut worker = rapport(&app, &["worker"]);
    let customer = admin.customer(json!({})).await;
    let got = receiver.wait_for("/ok", 1, Duration::from_secs(30)).await;
    let _ = worker.kill();
    let _ = worker.wait();
    assert_eq!(got.len(), 1, "the worker delivered");
    assert_eq!(got[0].json()["data"]["id"], customer["id"]);
}

#[actix_web::test]
async fn with_jobs_off_an_instance_leaves_the_background_work_to_the_worker() {
    let app = TestApp::spawn_with(&["--webhook-allow-private", "true"]).await;
    let admin = app.client(Role::Admin).await;
    let (_, token) = app.user_token(Role::Admin).await;
    let receiver = Receiver::start();
    // A visit that ended two days ago without a check-in: the missed-visit job's work.
    let customer = admin.customer(json!({})).await;
    let start = chrono::Utc::now() - chrono::Duration::days(2);
    let visit = admin
        .create(
            "/api/v1/visits",
            &json!({"customer_id": customer["id"], "scheduled_start": start.to_rfc3339(),
                    "scheduled_end": (start + chrono::Duration::hours(1)).to_rfc3339(),
                    "purpose": "after_sales_follow_up", "method": "in_person", "reason": "Follow-up"}),
        )
        .await;
    let visit_path = format!("/api/v1/visits/{}", visit["id"].as_str().unwrap());
    admin
        .create(
            "/api/v1/webhooks",
            &json!({"url": receiver.url("/ok"), "event_types": ["customer.created"]}),
        )
        .await;
    let api = Instance::start_with(&app, &["--jobs", "off"]).await;
    api.send(
        "POST",
        "/api/v1/customers",
        &token,
        Some(&json!({"display_name": "Made on the API"})),
    )
    .await;
    // An instance with its jobs on delivers within a second (the test above).
    let early = receiver.wait_for("/ok", 1, Duration::from_secs(3)).await;
    assert!(early.is_empty(), "an instance with jobs off delivered");
    assert_eq!(admin.get(&visit_path).await.body["status"], "planned");

    let mut worker = rapport(&app, &["worker"]);
    let got = receiver.wait_for("/ok", 1, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 1, "the worker delivered");
    assert_eq!(got[0].json()["data"]["display_name"], "Made on the API");
    let until = Instant::now() + Duration::from_secs(30);
    while admin.get(&visit_path).await.body["status"] != "missed" {
        assert!(
            Instant::now() < until,
            "the worker did not mark the visit missed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(worker.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = worker.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < until, "the worker did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "the worker stopped with {status}");
}
