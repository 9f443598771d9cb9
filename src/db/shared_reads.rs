//! One connection that the concurrent short reads of every HTTP worker share, so their
//! queries reach PostgreSQL pipelined: under load the queries of several requests leave in
//! one write and PostgreSQL answers them back to back, where with a pooled connection each
//! request costs both sides a round of system calls and wake-ups of its own (measured:
//! `GET /customers/{id}` 21.1k → 26.3k requests/s, docs/performance.md). It is one for the
//! process, not one per worker: the deeper each pipelined batch and the fewer backends take
//! turns on the cores, the cheaper each read (11.7–12.3k → 18.8–19.0k requests/s on two
//! cores), although a worker other than the one that opened it wakes that worker's thread.
//!
//! Only for short statements that are fast by construction (a primary-key look-up; a
//! member's row, then their standing over their own lots): a slow one would hold up every read
//! queued behind it. The dearer of them queue there only while few reads are in flight
//! ([`SharedRead::run_queued`]). Transactions and writes keep the pool.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use diesel_async::AsyncPgConnection;

use super::{Pool, connect};
use crate::error::{ApiError, ApiResult};

/// How long reads go straight to the pool after the shared connection could not be opened,
/// so that an unreachable database does not cost every request two connection attempts.
const RETRY_CONNECT_AFTER: Duration = Duration::from_secs(1);

/// How many reads may be in flight on the shared connection before a read that costs the
/// backend several index walks (a due-list page's 21 rows and their customers, a member's
/// five sums) takes a pooled connection instead. One backend answers the shared
/// connection's reads one after another, so a burst queued behind it waits for all of them
/// while the pooled backends and the other core sit idle. Measured at 1M customers, an even
/// load at half the peak: the due list's p99 went from 44-89 ms to 3-16 ms and the member
/// read's from 63-114 ms to 2.8-4.0 ms, their peaks from 33k to 19.5k and from 28k to 15k
/// requests/s (docs/performance.md). A primary-key read is cheap enough to queue unbounded.
pub const QUEUE_FOR_COMPOUND_READS: usize = 12;

/// How shared read connections name themselves in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "rapport shared reads";

/// Where and how to open the shared connection.
#[derive(Clone)]
pub struct SharedReadsSpec {
    /// The database URL.
    pub url: String,
    /// Bound on opening the connection.
    pub connect_timeout: Duration,
    /// `statement_timeout` of the connection, as for pooled ones.
    pub statement_timeout: Duration,
}

/// The process's shared read connection, opened on first use and replaced after a failure.
pub struct SharedReads {
    spec: Option<SharedReadsSpec>,
    current: Mutex<Option<Arc<AsyncPgConnection>>>,
    /// Held while opening, so that a burst of first requests opens one connection.
    opening: tokio::sync::Mutex<()>,
    failed_at: Mutex<Option<Instant>>,
    /// Reads running on the shared connection now.
    in_flight: AtomicUsize,
}

/// One read counted in [`SharedReads::in_flight`] while it lives.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    /// Counts a read in, unless `limit` reads are already in flight.
    fn enter(count: &'a AtomicUsize, limit: usize) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(count))
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl SharedReads {
    /// Shared reads on the given database; with `None`, every read uses the pool.
    pub fn new(spec: Option<SharedReadsSpec>) -> Self {
        Self {
            spec,
            current: Mutex::new(None),
            opening: tokio::sync::Mutex::new(()),
            failed_at: Mutex::new(None),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// The shared connection, opening it if needed; `None` when disabled or unreachable.
    async fn connection(&self) -> Option<Arc<AsyncPgConnection>> {
        let spec = self.spec.as_ref()?;
        if let Some(conn) = self.current.lock().unwrap().clone() {
            return Some(conn);
        }
        if self
            .failed_at
            .lock()
            .unwrap()
            .is_some_and(|at| at.elapsed() < RETRY_CONNECT_AFTER)
        {
            return None;
        }
        let _opening = self.opening.lock().await;
        if let Some(conn) = self.current.lock().unwrap().clone() {
            return Some(conn);
        }
        let opening = connect(&spec.url, spec.statement_timeout, APPLICATION_NAME);
        let opened = match tokio::time::timeout(spec.connect_timeout, opening).await {
            Ok(opened) => opened.map_err(|error| error.to_string()),
            Err(_) => Err(format!("timed out after {:?}", spec.connect_timeout)),
        };
        match opened {
            Ok(conn) => {
                let conn = Arc::new(conn);
                *self.current.lock().unwrap() = Some(conn.clone());
                *self.failed_at.lock().unwrap() = None;
                Some(conn)
            }
            Err(error) => {
                tracing::warn!(%error, "shared read connection not opened; reads use the pool");
                *self.failed_at.lock().unwrap() = Some(Instant::now());
                None
            }
        }
    }

    /// Stops handing out `conn` (if it is still the current one); reads in flight on it
    /// finish or fail, and it closes when the last of them lets go.
    fn forget(&self, conn: &Arc<AsyncPgConnection>) {
        let mut current = self.current.lock().unwrap();
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            *current = None;
        }
    }
}

/// Extractor for handlers whose database work is one short read: runs it on the shared
/// connection, or on a pooled one when that is unavailable.
pub struct SharedRead {
    shared: Option<Arc<SharedReads>>,
    pool: Option<web::Data<Pool>>,
}

impl SharedRead {
    /// Runs `read`. If it fails on the shared connection for a reason of the connection's
    /// (the database answered `503`-like or not at all), that connection is dropped and
    /// `read` runs once more on a pooled connection; answers such as "not found" are final.
    pub async fn run<T>(
        &self,
        read: impl AsyncFn(&AsyncPgConnection) -> ApiResult<T>,
    ) -> ApiResult<T> {
        self.run_queued(usize::MAX, read).await
    }

    /// [`SharedRead::run`] when `share` (the read is fast by construction), else `read` on a
    /// pooled connection: for handlers whose speed depends on the request (a list whose
    /// filters an index may or may not lead with).
    pub async fn run_when<T>(
        &self,
        share: bool,
        read: impl AsyncFn(&AsyncPgConnection) -> ApiResult<T>,
    ) -> ApiResult<T> {
        self.run_queued(if share { usize::MAX } else { 0 }, read)
            .await
    }

    /// [`SharedRead::run`], on the shared connection only while fewer than `queue` reads are
    /// in flight there (see [`QUEUE_FOR_COMPOUND_READS`]), else on a pooled connection.
    pub async fn run_queued<T>(
        &self,
        queue: usize,
        read: impl AsyncFn(&AsyncPgConnection) -> ApiResult<T>,
    ) -> ApiResult<T> {
        if let Some(shared) = &self.shared
            && let Some(_counted) = InFlight::enter(&shared.in_flight, queue)
            && let Some(conn) = shared.connection().await
        {
            match read(&conn).await {
                Err(ApiError::Unavailable(_) | ApiError::Internal(_)) => shared.forget(&conn),
                answer => return answer,
            }
        }
        let pool = self
            .pool
            .as_ref()
            .ok_or_else(|| ApiError::internal("no database pool configured"))?;
        let conn = pool.get().await?;
        read(&conn).await
    }
}

impl FromRequest for SharedRead {
    type Error = ApiError;
    type Future = std::future::Ready<ApiResult<Self>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Self {
            shared: req.app_data::<Arc<SharedReads>>().cloned(),
            pool: req.app_data::<web::Data<Pool>>().cloned(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_beyond_the_queue_are_turned_away_until_one_finishes() {
        let count = AtomicUsize::new(0);
        let first = InFlight::enter(&count, 2).expect("room for the first");
        let second = InFlight::enter(&count, 2).expect("room for the second");
        assert!(InFlight::enter(&count, 2).is_none(), "the queue is full");
        drop(first);
        let third = InFlight::enter(&count, 2).expect("a read finished");
        drop((second, third));
        assert_eq!(count.load(Ordering::Acquire), 0);
    }
}
