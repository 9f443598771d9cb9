//! A webhook receiver for tests: an HTTP server on a free local port that records every
//! request and answers by its path: `/ok` 200, `/fail` 500, `/gone` 410, `/redirect` 307 to
//! `/ok`, `/slow` after five seconds.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// One request received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Whether one of the signatures is the Standard Webhooks HMAC of this request with
    /// `secret`, computed here from the specification (not by the server's code).
    pub fn signed_with(&self, secret: &str) -> bool {
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap())
            .unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{}.{}.", self.id, self.timestamp).as_bytes());
        mac.update(&self.body);
        let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        self.signature.split(' ').any(|s| s == expected)
    }
}

/// The running receiver.
pub struct Receiver {
    pub base: String,
    received: Arc<Mutex<Vec<Received>>>,
}

async fn answer(
    req: HttpRequest,
    body: web::Bytes,
    log: web::Data<Arc<Mutex<Vec<Received>>>>,
) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let path = req.path().to_owned();
    log.lock().unwrap().push(Received {
        path: path.clone(),
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: body.to_vec(),
    });
    match path.as_str() {
        "/fail" => HttpResponse::InternalServerError().body("boom"),
        "/gone" => HttpResponse::Gone().finish(),
        "/redirect" => HttpResponse::TemporaryRedirect()
            .insert_header(("Location", "/ok"))
            .finish(),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            HttpResponse::Ok().finish()
        }
        _ => HttpResponse::Ok().body("thanks"),
    }
}

impl Receiver {
    pub fn start() -> Self {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let data = web::Data::new(received.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(answer))
        })
        .workers(2)
        .listen(listener)
        .unwrap()
        .run();
        actix_web::rt::spawn(server);
        Self { base, received }
    }

    /// The URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The requests to a path.
    pub fn at(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until `n` requests reached `path` (at most `timeout`).
    pub async fn wait_for(&self, path: &str, n: usize, timeout: Duration) -> Vec<Received> {
        let until = Instant::now() + timeout;
        loop {
            let got = self.at(path);
            if got.len() >= n || Instant::now() > until {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
