//! Database access: the connection pool, embedded migrations, and the `DbConn` extractor
//! that hands a handler either a pooled connection or the request's idempotency transaction.

pub mod embedded;
pub mod keyset;
pub mod prepared;
pub mod schema;
pub mod shared_reads;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures_util::FutureExt;

use crate::error::ApiError;

/// The connection pool.
pub type Pool = diesel_async::pooled_connection::deadpool::Pool<AsyncPgConnection>;
/// A connection checked out of the pool.
pub type PooledConn = diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>;
/// Why no connection could be had.
pub type PoolError = diesel_async::pooled_connection::deadpool::PoolError;

impl From<PoolError> for ApiError {
    fn from(error: PoolError) -> Self {
        Self::Unavailable(format!("database connection unavailable: {error}"))
    }
}

/// Every migration in `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Advisory-lock key held while migrating, so that several instances can start together.
const MIGRATION_LOCK: i64 = 0x0052_4150_504f_5254; // "RAPPORT"

/// Builds the pool. Connections are recycled without a test query (a broken one is
/// detected on use and discarded), and each is opened by [`connect`].
pub fn build_pool(
    url: &str,
    max_size: usize,
    wait_timeout: Duration,
    statement_timeout: Duration,
) -> Result<Pool, String> {
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        async move { connect(&url, statement_timeout, APPLICATION_NAME).await }.boxed()
    });
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(wait_timeout))
        .create_timeout(Some(wait_timeout))
        .recycle_timeout(Some(wait_timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| e.to_string())
}

/// How pooled connections name themselves in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "rapport";

/// Opens a connection with the configured `statement_timeout`, named `application_name`.
/// JIT compilation is off: it pays off for long analytical queries, while here a search plan
/// with a high cost estimate ran for 2.6 ms after 54 ms of compiling (docs/performance.md).
pub async fn connect(
    url: &str,
    statement_timeout: Duration,
    application_name: &'static str,
) -> diesel::ConnectionResult<AsyncPgConnection> {
    let mut conn = AsyncPgConnection::establish(url).await?;
    conn.batch_execute(&format!(
        "SET statement_timeout = {}; SET application_name = '{application_name}'; SET jit = off",
        statement_timeout.as_millis()
    ))
    .await
    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// Applies pending migrations under an advisory lock. Runs on a blocking thread because
/// diesel's migration harness is synchronous.
pub async fn run_migrations(url: &str) -> Result<(), String> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn =
            <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(&url)
                .map_err(|e| format!("cannot connect to the database: {e}"))?;
        diesel::connection::SimpleConnection::batch_execute(
            &mut conn,
            &format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"),
        )
        .map_err(|e| e.to_string())?;
        let result = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|applied| {
                for version in applied {
                    tracing::info!(%version, "applied migration");
                }
            })
            .map_err(|e| format!("migration failed: {e}"));
        let _ = diesel::connection::SimpleConnection::batch_execute(
            &mut conn,
            &format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"),
        );
        result
    })
    .await
    .map_err(|e| e.to_string())?
}

/// The version of the newest embedded migration, as diesel records it.
pub fn latest_migration_version() -> String {
    use diesel::migration::MigrationSource;
    MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .ok()
        .and_then(|all| all.iter().map(|m| m.name().version().to_string()).max())
        .unwrap_or_default()
}

/// Whether the database has every embedded migration applied.
pub async fn is_migrated(conn: &mut AsyncPgConnection, latest: &str) -> QueryResult<bool> {
    let applied: Option<String> = diesel::select(diesel::dsl::sql::<Nullable<Text>>(
        "(SELECT max(version) FROM __diesel_schema_migrations)",
    ))
    .get_result(conn)
    .await?;
    Ok(applied.as_deref() == Some(latest))
}

/// Serialises work on one key (an order, a customer reference) until the transaction ends.
pub async fn lock_key(conn: &mut AsyncPgConnection, key: &str) -> QueryResult<()> {
    prepared::Cached::fixed(diesel::select(
        diesel::dsl::sql::<diesel::sql_types::Bool>("pg_advisory_xact_lock(hashtextextended(")
            .bind::<Text, _>(key)
            .sql(", 0)) IS NOT NULL"),
    ))
    .get_result::<bool>(conn)
    .await
    .map(|_| ())
}

/// The connection a request's idempotency transaction runs on, shared with the handler.
#[derive(Clone, Default)]
pub struct RequestTransaction(Arc<Mutex<Option<PooledConn>>>);

impl RequestTransaction {
    /// Parks the connection for the handler to pick up.
    pub fn put(&self, conn: PooledConn) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn);
    }

    /// Takes the connection back (after the handler has dropped its `DbConn`).
    pub fn take(&self) -> Option<PooledConn> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// A database connection for one handler. When the request carries an `Idempotency-Key`
/// it is the connection of the request's transaction, so the handler's writes and the stored
/// response commit together; otherwise it comes straight from the pool.
pub struct DbConn {
    conn: Option<PooledConn>,
    shared: Option<RequestTransaction>,
}

impl std::ops::Deref for DbConn {
    type Target = AsyncPgConnection;
    fn deref(&self) -> &AsyncPgConnection {
        self.conn.as_ref().expect("connection present until drop")
    }
}

impl std::ops::DerefMut for DbConn {
    fn deref_mut(&mut self) -> &mut AsyncPgConnection {
        self.conn.as_mut().expect("connection present until drop")
    }
}

impl Drop for DbConn {
    fn drop(&mut self) {
        if let (Some(shared), Some(conn)) = (&self.shared, self.conn.take()) {
            shared.put(conn);
        }
    }
}

impl FromRequest for DbConn {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let shared = req.extensions().get::<RequestTransaction>().cloned();
        let pool = req.app_data::<web::Data<Pool>>().cloned();
        Box::pin(async move {
            if let Some(shared) = shared {
                let conn = shared
                    .take()
                    .ok_or_else(|| ApiError::internal("request transaction already taken"))?;
                return Ok(DbConn {
                    conn: Some(conn),
                    shared: Some(shared),
                });
            }
            let pool = pool.ok_or_else(|| ApiError::internal("no database pool configured"))?;
            Ok(DbConn {
                conn: Some(pool.get().await?),
                shared: None,
            })
        })
    }
}

/// A `LIKE` pattern matching text that contains `q` (lower-cased, trimmed, its wildcards
/// escaped), for search columns that hold lower-cased text.
pub fn like_pattern(q: &str) -> String {
    let escaped = q
        .trim()
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// `EXPLAIN` of a query, with its bind values, for tests and benchmarks that check plans;
/// with `ANALYZE` it runs the query, so a test can see which of its gated branches ran.
pub struct Explain<Q> {
    query: Q,
    analyze: bool,
}

impl<Q> Explain<Q> {
    /// The plan PostgreSQL would run.
    pub fn plan(query: Q) -> Self {
        Self {
            query,
            analyze: false,
        }
    }

    /// The plan as run, with the rows each node produced (`never executed` for branches a
    /// gate turned off).
    pub fn analyze(query: Q) -> Self {
        Self {
            query,
            analyze: true,
        }
    }
}

impl<Q: diesel::query_builder::QueryFragment<diesel::pg::Pg>>
    diesel::query_builder::QueryFragment<diesel::pg::Pg> for Explain<Q>
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        out.push_sql(if self.analyze {
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) "
        } else {
            "EXPLAIN "
        });
        self.query.walk_ast(out.reborrow())
    }
}

impl<Q> diesel::query_builder::QueryId for Explain<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q> diesel::query_builder::Query for Explain<Q> {
    type SqlType = Text;
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(super::like_pattern(" Ab%_c "), "%ab\\%\\_c%");
    }
}
