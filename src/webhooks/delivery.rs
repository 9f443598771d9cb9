//! The delivery worker. Every instance (and every `rapport worker`) runs it; they share the
//! work through the database:
//!
//! 1. **Fan-out** ([`Deliverer::dispatch`]): the instance that holds the `webhook_dispatch`
//!    row's lock reads the outbox past its position in commit order (below
//!    `pg_snapshot_xmin`, `docs/architecture.md`) and records one delivery per event and
//!    matching active subscription, then moves the position, in one transaction. An event is
//!    fanned out once, and never skipped.
//! 2. **Claim**: due deliveries are taken `FOR UPDATE SKIP LOCKED` and their next attempt is
//!    moved past the attempt's timeout (a lease), so no two workers make the same attempt and
//!    a crashed worker's deliveries come due again. At most [`PER_ENDPOINT`] deliveries of one
//!    endpoint are in flight per worker, so a slow or dead endpoint holds a few slots and
//!    never delays the others.
//! 3. **Attempt**: `POST` the event, signed, with connect and total timeouts, no redirects,
//!    no cookies, no proxy, and a resolver that refuses private addresses.
//! 4. **Record**: the attempts of a batch in one statement: delivered, or the next retry on
//!    the schedule (jittered), or failed after the last. `410` disables the endpoint at once,
//!    and so does failing for `RAPPORT_WEBHOOK_DISABLE_AFTER`; the write path records the
//!    `webhook.disabled` event.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::sql_types::{
    Array, BigInt, Bool, Int4, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel::{QueryableByName, sql_query};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::future::join_all;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};
use uuid::Uuid;

use super::routes::Attempt;
use super::{WebhookRow, WebhookSettings, addresses, signing};
use crate::db::Pool;
use crate::error::{ApiError, ApiResult};
use crate::http::etag::IfMatch;
use crate::kit::event_types::Catalogue;
use crate::kit::ids::WebhookId;
use crate::kit::write::{self, Action, Writer};

/// Deliveries of one endpoint in flight at once, per worker.
pub const PER_ENDPOINT: usize = 16;
/// Events fanned out per transaction.
const FAN_OUT_BATCH: i64 = 2000;
/// Deliveries claimed per statement.
const CLAIM_BATCH: usize = 256;
/// How long the worker waits when there was nothing to do.
const IDLE: Duration = Duration::from_millis(100);
/// How much of an answer the log keeps.
const EXCERPT_BYTES: usize = 512;
/// How long deliveries are kept.
pub const KEPT: chrono::Duration = chrono::Duration::days(30);

/// A server-side stop: the endpoint is disabled and `webhook.disabled` announced.
const DISABLED: Action = Action::named("disabled", "disabled");

/// What a pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Deliveries recorded by the fan-out.
    pub fanned_out: usize,
    /// Attempts made.
    pub attempted: usize,
    /// Attempts answered `2xx`.
    pub delivered: usize,
}

/// The body of a delivery, as the Standard Webhooks specification shapes it.
#[derive(Serialize)]
struct Envelope<'a> {
    id: Uuid,
    #[serde(rename = "type")]
    event_type: &'a str,
    created_at: DateTime<Utc>,
    data: &'a Value,
}

/// A claimed delivery with what its attempt needs.
#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    webhook_id: Uuid,
    #[diesel(sql_type = Integer)]
    retries: i32,
    #[diesel(sql_type = SqlUuid)]
    event_id: Uuid,
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = Timestamptz)]
    occurred_at: DateTime<Utc>,
    #[diesel(sql_type = Jsonb)]
    data: Value,
    #[diesel(sql_type = Text)]
    url: String,
    #[diesel(sql_type = Text)]
    secret: String,
    #[diesel(sql_type = Nullable<Text>)]
    previous_secret: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    previous_secret_until: Option<DateTime<Utc>>,
}

/// An attempt's result, to record.
struct Outcome {
    id: Uuid,
    webhook_id: Uuid,
    retries: i32,
    attempt: Attempt,
}

impl Outcome {
    fn delivered(&self) -> bool {
        self.attempt
            .status_code
            .is_some_and(|code| (200..300).contains(&code))
    }

    fn gone(&self) -> bool {
        self.attempt.status_code == Some(410)
    }
}

/// The worker: its HTTP client, settings and the catalogue subscriptions match against.
#[derive(Clone)]
pub struct Deliverer {
    client: reqwest::Client,
    settings: Arc<WebhookSettings>,
    catalogue: Arc<Catalogue>,
}

impl Deliverer {
    /// A worker with its own HTTP client.
    pub fn new(settings: WebhookSettings, catalogue: Catalogue) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(settings.timeout)
            .timeout(settings.timeout)
            .pool_max_idle_per_host(PER_ENDPOINT)
            .user_agent(concat!("Rapport-Webhooks/", env!("CARGO_PKG_VERSION")));
        if let Some(resolver) = addresses::resolver(settings.allow_private) {
            builder = builder.dns_resolver(resolver);
        }
        Ok(Self {
            client: builder.build().map_err(|e| e.to_string())?,
            settings: Arc::new(settings),
            catalogue: Arc::new(catalogue),
        })
    }

    /// Fans the outbox's next events out to the matching subscriptions (one batch); `None`
    /// when another worker holds the fan-out.
    pub async fn dispatch(&self, conn: &mut AsyncPgConnection) -> ApiResult<Option<usize>> {
        let catalogue = self.catalogue.clone();
        conn.transaction::<_, ApiError, _>(async move |conn| {
            #[derive(QueryableByName)]
            struct Position {
                #[diesel(sql_type = BigInt)]
                last_txid: i64,
                #[diesel(sql_type = BigInt)]
                last_seq: i64,
            }
            let Some(at) = sql_query(
                "SELECT last_txid, last_seq FROM webhook_dispatch FOR UPDATE SKIP LOCKED",
            )
            .get_result::<Position>(conn)
            .await
            .map(Some)
            .or_else(none_when_not_found)?
            else {
                return Ok(None);
            };
            #[derive(QueryableByName)]
            struct Committed {
                #[diesel(sql_type = SqlUuid)]
                id: Uuid,
                #[diesel(sql_type = Text)]
                event_type: String,
                #[diesel(sql_type = Timestamptz)]
                occurred_at: DateTime<Utc>,
                #[diesel(sql_type = BigInt)]
                txid: i64,
                #[diesel(sql_type = BigInt)]
                seq: i64,
            }
            let events: Vec<Committed> = sql_query(
                "SELECT id, type AS event_type, occurred_at, txid, seq FROM events \
                 WHERE (txid, seq) > ($1, $2) \
                   AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
                 ORDER BY txid, seq LIMIT $3",
            )
            .bind::<BigInt, _>(at.last_txid)
            .bind::<BigInt, _>(at.last_seq)
            .bind::<BigInt, _>(FAN_OUT_BATCH)
            .load(conn)
            .await?;
            let Some(last) = events.last() else {
                return Ok(Some(0));
            };
            let (last_txid, last_seq) = (last.txid, last.seq);
            #[derive(QueryableByName)]
            struct Subscription {
                #[diesel(sql_type = SqlUuid)]
                id: Uuid,
                #[diesel(sql_type = Array<Text>)]
                event_types: Vec<String>,
                #[diesel(sql_type = Timestamptz)]
                created_at: DateTime<Utc>,
            }
            let subscriptions: Vec<Subscription> = sql_query(
                "SELECT id, event_types, created_at FROM webhooks \
                 WHERE active AND deleted_at IS NULL",
            )
            .load(conn)
            .await?;
            let (mut ids, mut hooks, mut event_ids, mut types, mut due) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for event in &events {
                for hook in &subscriptions {
                    if event.occurred_at >= hook.created_at
                        && catalogue.wanted(&hook.event_types, &event.event_type)
                    {
                        ids.push(Uuid::now_v7());
                        hooks.push(hook.id);
                        event_ids.push(event.id);
                        types.push(event.event_type.clone());
                        due.push(event.occurred_at);
                    }
                }
            }
            let fanned_out = ids.len();
            if fanned_out > 0 {
                sql_query(
                    "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, next_attempt_at) \
                     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[]) \
                     ON CONFLICT (webhook_id, event_id) DO NOTHING",
                )
                .bind::<Array<SqlUuid>, _>(ids)
                .bind::<Array<SqlUuid>, _>(hooks)
                .bind::<Array<SqlUuid>, _>(event_ids)
                .bind::<Array<Text>, _>(types)
                // Due from the event's own time: first come, first tried.
                .bind::<Array<Timestamptz>, _>(due)
                .execute(conn)
                .await?;
            }
            sql_query("UPDATE webhook_dispatch SET last_txid = $1, last_seq = $2")
                .bind::<BigInt, _>(last_txid)
                .bind::<BigInt, _>(last_seq)
                .execute(conn)
                .await?;
            Ok(Some(fanned_out))
        })
        .await
    }

    /// Takes up to `n` deliveries due at `now`, leaving out the endpoints in `busy`.
    async fn claim(
        &self,
        conn: &mut AsyncPgConnection,
        now: DateTime<Utc>,
        n: usize,
        busy: Vec<Uuid>,
    ) -> ApiResult<Vec<Claimed>> {
        // The lease outlasts the attempt's timeout, so the attempt is recorded before anyone
        // else may take the delivery again.
        let lease = now
            + chrono::Duration::from_std(self.settings.timeout * 2 + Duration::from_secs(30))
                .unwrap_or(chrono::Duration::minutes(1));
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        Ok(sql_query(
            "WITH picked AS ( \
               SELECT id FROM ( \
                 SELECT d.id, row_number() OVER (PARTITION BY d.webhook_id ORDER BY d.next_attempt_at, d.id) AS nth \
                 FROM ( \
                   SELECT id, webhook_id, next_attempt_at FROM webhook_deliveries \
                   WHERE status = 'pending' AND next_attempt_at <= $1 AND webhook_id <> ALL($3) \
                     AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = webhook_id \
                                 AND w.active AND w.deleted_at IS NULL) \
                   ORDER BY next_attempt_at LIMIT $4 \
                   FOR UPDATE SKIP LOCKED \
                 ) d \
               ) ranked WHERE nth <= $5 LIMIT $4 \
             ), claimed AS ( \
               UPDATE webhook_deliveries d SET next_attempt_at = $2 \
               FROM picked WHERE d.id = picked.id \
               RETURNING d.id, d.webhook_id, d.event_id, d.retries \
             ) \
             SELECT c.id, c.webhook_id, c.retries, e.id AS event_id, e.type AS event_type, \
                    e.occurred_at, e.data, w.url, w.secret, w.previous_secret, w.previous_secret_until \
             FROM claimed c JOIN events e ON e.id = c.event_id JOIN webhooks w ON w.id = c.webhook_id",
        )
        .bind::<Timestamptz, _>(now)
        .bind::<Timestamptz, _>(lease)
        .bind::<Array<SqlUuid>, _>(busy)
        .bind::<BigInt, _>(n)
        .bind::<BigInt, _>(PER_ENDPOINT as i64)
        .load(conn)
        .await?)
    }

    /// Makes one attempt.
    async fn attempt(&self, claimed: Claimed) -> Outcome {
        let started = Instant::now();
        let at = Utc::now();
        let result = self.send(&claimed).await;
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let attempt = match result {
            Ok((status, excerpt)) => Attempt {
                at,
                status_code: Some(status),
                latency_ms,
                error: (!(200..300).contains(&status))
                    .then(|| format!("the endpoint answered {status}")),
                response_excerpt: Some(excerpt).filter(|e| !e.is_empty()),
            },
            Err(error) => Attempt {
                at,
                status_code: None,
                latency_ms,
                error: Some(error),
                response_excerpt: None,
            },
        };
        Outcome {
            id: claimed.id,
            webhook_id: claimed.webhook_id,
            retries: claimed.retries,
            attempt,
        }
    }

    /// `POST`s the signed event; the status and the start of the answer.
    async fn send(&self, claimed: &Claimed) -> Result<(u16, String), String> {
        // A literal address skips the resolver, so it is checked here.
        addresses::check_url(&claimed.url, self.settings.allow_private)?;
        let body = serde_json::to_vec(&Envelope {
            id: claimed.event_id,
            event_type: &claimed.event_type,
            created_at: claimed.occurred_at,
            data: &claimed.data,
        })
        .map_err(|e| e.to_string())?;
        let now = Utc::now();
        let webhook_id = claimed.event_id.to_string();
        let secrets = signing::signing_secrets(
            &claimed.secret,
            claimed.previous_secret.as_deref(),
            claimed.previous_secret_until,
            now,
        );
        let signature = signing::signature(&secrets, &webhook_id, now.timestamp(), &body);
        let mut response = self
            .client
            .post(&claimed.url)
            .header("content-type", "application/json")
            .header("webhook-id", &webhook_id)
            .header("webhook-timestamp", now.timestamp().to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(describe)?;
        let status = response.status().as_u16();
        let mut excerpt = Vec::new();
        while excerpt.len() < EXCERPT_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        excerpt.truncate(EXCERPT_BYTES);
        Ok((status, String::from_utf8_lossy(&excerpt).into_owned()))
    }

    /// Records a batch of attempts, and disables the endpoints that are gone or have failed
    /// for too long.
    async fn record(
        &self,
        conn: &mut AsyncPgConnection,
        outcomes: Vec<Outcome>,
        now: DateTime<Utc>,
    ) -> ApiResult<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let schedule = &self.settings.retry_schedule;
        let (mut ids, mut statuses, mut retries, mut next, mut attempts) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut ok, mut failing, mut gone) = (Vec::new(), Vec::new(), Vec::new());
        for outcome in &outcomes {
            ids.push(outcome.id);
            attempts.push(serde_json::to_value(&outcome.attempt).unwrap_or_default());
            if outcome.delivered() {
                statuses.push("delivered");
                retries.push(outcome.retries);
                next.push(None);
                ok.push(outcome.webhook_id);
                continue;
            }
            failing.push(outcome.webhook_id);
            if outcome.gone() {
                gone.push(outcome.webhook_id);
            }
            let step = outcome.retries + 1;
            match usize::try_from(outcome.retries)
                .ok()
                .and_then(|i| schedule.get(i))
            {
                Some(wait) => {
                    statuses.push("pending");
                    retries.push(step);
                    next.push(Some(now + jittered(*wait)));
                }
                None => {
                    statuses.push("failed");
                    retries.push(step);
                    next.push(None);
                }
            }
        }
        let disable_after = chrono::Duration::from_std(self.settings.disable_after)
            .unwrap_or(chrono::Duration::MAX);
        let to_disable: Vec<(Uuid, String)> = conn
            .transaction::<_, ApiError, _>(async move |conn| {
                sql_query(
                    "UPDATE webhook_deliveries d SET status = u.status, retries = u.retries, \
                         next_attempt_at = u.next_at, attempts = d.attempts || jsonb_build_array(u.attempt) \
                     FROM unnest($1::uuid[], $2::text[], $3::int[], $4::timestamptz[], $5::jsonb[]) \
                          AS u(id, status, retries, next_at, attempt) \
                     WHERE d.id = u.id",
                )
                .bind::<Array<SqlUuid>, _>(ids)
                .bind::<Array<Text>, _>(statuses)
                .bind::<Array<Int4>, _>(retries)
                .bind::<Array<Nullable<Timestamptz>>, _>(next)
                .bind::<Array<Jsonb>, _>(attempts)
                .execute(conn)
                .await?;
                // A success in the batch clears the failure record, whatever failed beside it.
                sql_query(
                    "UPDATE webhooks SET failing_since = $2 \
                     WHERE id = ANY($1) AND failing_since IS NULL AND NOT id = ANY($3)",
                )
                .bind::<Array<SqlUuid>, _>(&failing)
                .bind::<Timestamptz, _>(now)
                .bind::<Array<SqlUuid>, _>(&ok)
                .execute(conn)
                .await?;
                sql_query(
                    "UPDATE webhooks SET failing_since = NULL \
                     WHERE id = ANY($1) AND failing_since IS NOT NULL",
                )
                .bind::<Array<SqlUuid>, _>(&ok)
                .execute(conn)
                .await?;
                #[derive(QueryableByName)]
                struct Stale {
                    #[diesel(sql_type = SqlUuid)]
                    id: Uuid,
                    #[diesel(sql_type = Bool)]
                    gone: bool,
                    #[diesel(sql_type = Timestamptz)]
                    failing_since: DateTime<Utc>,
                }
                let stale: Vec<Stale> = sql_query(
                    "SELECT id, id = ANY($2) AS gone, failing_since FROM webhooks \
                     WHERE active AND id = ANY($1) AND NOT id = ANY($4) \
                       AND (id = ANY($2) OR failing_since <= $3)",
                )
                .bind::<Array<SqlUuid>, _>(&failing)
                .bind::<Array<SqlUuid>, _>(&gone)
                .bind::<Timestamptz, _>(now - disable_after)
                .bind::<Array<SqlUuid>, _>(&ok)
                .load(conn)
                .await?;
                Ok(stale
                    .into_iter()
                    .map(|s| {
                        let why = if s.gone {
                            "the endpoint answered 410 Gone".to_owned()
                        } else {
                            format!(
                                "every attempt has failed since {}",
                                s.failing_since.to_rfc3339()
                            )
                        };
                        (s.id, why)
                    })
                    .collect())
            })
            .await?;
        for (id, why) in to_disable {
            disable(conn, WebhookId::from(id), why).await?;
        }
        Ok(())
    }

    /// One pass at `now` (tests, `rapport worker --once`): fans out every event committed
    /// before the call (waiting, up to 30 s, while older transactions still running hold
    /// them back), then attempts every delivery due, waiting for each, and records them.
    pub async fn run_once(&self, pool: &Pool, now: DateTime<Utc>) -> ApiResult<Pass> {
        let mut conn = pool.get().await?;
        let mut pass = Pass::default();
        let target = position(
            &mut conn,
            "SELECT coalesce(max(txid), 0) AS txid FROM events",
        )
        .await?;
        let started = Instant::now();
        loop {
            let n = self.dispatch(&mut conn).await?.unwrap_or(0);
            pass.fanned_out += n;
            if n > 0 {
                continue;
            }
            let through =
                position(&mut conn, "SELECT last_txid AS txid FROM webhook_dispatch").await?;
            if through >= target || started.elapsed() > Duration::from_secs(30) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        loop {
            let claimed = self.claim(&mut conn, now, CLAIM_BATCH, Vec::new()).await?;
            if claimed.is_empty() {
                return Ok(pass);
            }
            let outcomes = join_all(claimed.into_iter().map(|c| self.attempt(c))).await;
            pass.attempted += outcomes.len();
            pass.delivered += outcomes.iter().filter(|o| o.delivered()).count();
            self.record(&mut conn, outcomes, now).await?;
        }
    }

    /// The loop an instance runs while `running()` says so: fan out, claim as many
    /// deliveries as there are free slots, attempt each on its own task, record results in
    /// batches; the delivery log is pruned hourly.
    pub async fn run(self, pool: Pool, running: impl Fn() -> bool) {
        let slots = Arc::new(Semaphore::new(self.settings.concurrency));
        let in_flight: Arc<Mutex<HashMap<Uuid, usize>>> = Arc::default();
        let (results, mut outcomes) = mpsc::unbounded_channel::<Outcome>();
        let recorder = {
            let (this, pool) = (self.clone(), pool.clone());
            tokio::spawn(async move {
                while let Some(first) = outcomes.recv().await {
                    let mut batch = vec![first];
                    while batch.len() < 1000
                        && let Ok(more) = outcomes.try_recv()
                    {
                        batch.push(more);
                    }
                    let recorded = match pool.get().await {
                        Ok(mut conn) => this.record(&mut conn, batch, Utc::now()).await,
                        Err(e) => Err(e.into()),
                    };
                    if let Err(error) = recorded {
                        // The leases run out and the attempts are made again.
                        tracing::warn!(%error, "could not record webhook attempts");
                    }
                }
            })
        };
        let mut pruned_at = Instant::now() - Duration::from_secs(3600);
        loop {
            if !running() {
                tokio::time::sleep(IDLE).await;
                continue;
            }
            let worked = match pool.get().await {
                Ok(mut conn) => {
                    if pruned_at.elapsed() >= Duration::from_secs(3600) {
                        pruned_at = Instant::now();
                        match prune(&mut conn, Utc::now()).await {
                            Ok(0) => {}
                            Ok(n) => tracing::info!(deleted = n, "pruned old webhook deliveries"),
                            Err(error) => {
                                tracing::warn!(%error, "could not prune webhook deliveries")
                            }
                        }
                    }
                    self.tick(&mut conn, &slots, &in_flight, &results).await
                }
                Err(e) => Err(e.into()),
            };
            match worked {
                Ok(true) => tokio::task::yield_now().await,
                Ok(false) => tokio::time::sleep(IDLE).await,
                Err(error) => {
                    tracing::warn!(%error, "webhook delivery pass failed; retrying");
                    tokio::time::sleep(IDLE * 10).await;
                }
            }
            if recorder.is_finished() {
                tracing::error!("the webhook recorder stopped");
                return;
            }
        }
    }

    /// One turn of [`run`]: whether it found work.
    async fn tick(
        &self,
        conn: &mut AsyncPgConnection,
        slots: &Arc<Semaphore>,
        in_flight: &Arc<Mutex<HashMap<Uuid, usize>>>,
        results: &mpsc::UnboundedSender<Outcome>,
    ) -> ApiResult<bool> {
        let fanned_out = self.dispatch(conn).await?.unwrap_or(0);
        let free = slots.available_permits().min(CLAIM_BATCH);
        if free == 0 {
            return Ok(true);
        }
        let busy: Vec<Uuid> = lock(in_flight)
            .iter()
            .filter(|(_, n)| **n >= PER_ENDPOINT)
            .map(|(id, _)| *id)
            .collect();
        let claimed = self.claim(conn, Utc::now(), free, busy).await?;
        let found = !claimed.is_empty() || fanned_out > 0;
        for delivery in claimed {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let endpoint = delivery.webhook_id;
            *lock(in_flight).entry(endpoint).or_default() += 1;
            let (this, in_flight, results) = (self.clone(), in_flight.clone(), results.clone());
            tokio::spawn(async move {
                let outcome = this.attempt(delivery).await;
                {
                    let mut counts = lock(&in_flight);
                    if let Some(n) = counts.get_mut(&endpoint) {
                        *n -= 1;
                        if *n == 0 {
                            counts.remove(&endpoint);
                        }
                    }
                }
                let _ = results.send(outcome);
                drop(permit);
            });
        }
        Ok(found)
    }
}

/// A transaction id a statement reads (`... AS txid`).
async fn position(conn: &mut AsyncPgConnection, sql: &str) -> ApiResult<i64> {
    #[derive(QueryableByName)]
    struct Txid {
        #[diesel(sql_type = BigInt)]
        txid: i64,
    }
    Ok(sql_query(sql).get_result::<Txid>(conn).await?.txid)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn none_when_not_found<T>(error: diesel::result::Error) -> Result<Option<T>, ApiError> {
    match error {
        diesel::result::Error::NotFound => Ok(None),
        other => Err(other.into()),
    }
}

/// A wait of the retry schedule, moved by up to a tenth either way so that the retries of
/// many deliveries failed together do not all come back at once.
fn jittered(wait: Duration) -> chrono::Duration {
    let bytes = crate::secrets::random_bytes(4);
    let unit = f64::from(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
        / f64::from(u32::MAX);
    let factor = 0.9 + 0.2 * unit;
    chrono::Duration::milliseconds((wait.as_millis() as f64 * factor) as i64)
}

/// An error as the delivery log shows it: what failed, without the client's internals.
fn describe(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_redirect() {
        "redirects are not followed"
    } else {
        "the request failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

/// Stops deliveries to an endpoint, through the write path: the change is audited and
/// `webhook.disabled` announced with the subscription as it now is.
async fn disable(conn: &mut AsyncPgConnection, id: WebhookId, why: String) -> ApiResult<()> {
    let result = write::change(
        conn,
        &Writer::system(),
        id,
        &IfMatch::Absent,
        DISABLED,
        async |_, after: &mut WebhookRow| {
            after.active = false;
            after.disabled_reason = Some(why);
            Ok(())
        },
    )
    .await;
    match result {
        // Deleted meanwhile: nothing left to disable.
        Ok(_) | Err(ApiError::NotFound(_)) => Ok(()),
        Err(other) => Err(other),
    }
}

/// Deletes deliveries older than [`KEPT`].
pub async fn prune(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> ApiResult<usize> {
    Ok(
        sql_query("DELETE FROM webhook_deliveries WHERE created_at < $1")
            .bind::<Timestamptz, _>(now - KEPT)
            .execute(conn)
            .await?,
    )
}
