//! `/api/v1/changes`: every create, update and delete across the domains, in commit order,
//! read from the outbox with the `(txid, seq)` walk below `pg_snapshot_xmin`
//! (`docs/architecture.md`). A client keeps `next_cursor` and asks again: it never misses a
//! change and never sees one twice. A transaction still running holds the feed back until it
//! ends ([`lag_seconds`] measures how far).

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{QueryableByName, sql_query};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Authorized, ChangesRead};
use crate::db::DbConn;
use crate::db::prepared::Cached;
use crate::error::{ApiError, ApiResult};
use crate::http::pagination::{decode_cursor, encode_cursor};
use crate::http::query::Query;
use crate::kit::event_types::Catalogue;

pub mod me;

crate::routes!(list);

/// Changes per page by default, and at most.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

/// A place in the feed: the writing transaction's id and the event's sequence number.
pub type Position = (i64, i64);

/// Parameters of `GET /changes`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedParams {
    /// Where to resume: a `next_cursor` (or an entry's `cursor`); `now` starts at the end,
    /// so that only changes from here on come; none starts at the beginning.
    #[param(format = "cursor", example = "now")]
    pub since: Option<String>,
    /// Comma-separated event types, `points.*` naming a family (default: every type).
    #[param(example = "customer.*,order.created")]
    pub types: Option<String>,
    /// Changes per page (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// One change.
#[derive(Debug, Serialize, ToSchema)]
pub struct Change {
    /// The position just after this change: resuming here gives the changes after it.
    pub cursor: String,
    /// The event's id (the `webhook-id` of its webhook deliveries).
    pub id: Uuid,
    #[serde(rename = "type")]
    #[schema(example = "customer.updated")]
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    #[schema(example = "customer")]
    pub subject_type: String,
    pub subject_id: Uuid,
    /// The customer the change concerns, if any.
    pub customer_id: Option<Uuid>,
    /// The resource after the change as the API shows it (`{"id": ...}` for `*.deleted`);
    /// an erased customer's personal data is redacted. Its schema by type is the document's
    /// `webhooks` entry of that type.
    #[schema(value_type = Object)]
    pub data: Value,
}

/// A page of the feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangePage {
    pub data: Vec<Change>,
    /// Where to resume, always: after the last change given, or past everything committed
    /// so far when the page is not full.
    pub next_cursor: String,
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    bound: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    txid: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    seq: Option<i64>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    event_type: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    occurred_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    subject_type: Option<String>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    subject_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    customer_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    data: Option<Value>,
}

/// The walk: every event past the position, of the given types, whose transaction is below
/// the oldest one still running, in commit order, with `filter` narrowing it. `bound` (that
/// oldest transaction) comes with every row, and alone (a row of nulls) when nothing is past
/// the position.
macro_rules! walk_sql {
    ($filter:literal) => {
        concat!(
            "WITH b AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS bound) \
             SELECT b.bound, e.txid, e.seq, e.id, e.type AS event_type, e.occurred_at, e.subject_type, \
                    e.subject_id, e.customer_id, e.data \
             FROM b LEFT JOIN LATERAL ( \
               SELECT * FROM events \
               WHERE (txid, seq) > ($1, $2) AND txid < b.bound AND type = ANY($3) ",
            $filter,
            " ORDER BY txid, seq LIMIT $4 \
             ) e ON true \
             ORDER BY e.txid, e.seq"
        )
    };
}

/// The whole feed.
const WALK_SQL: &str = walk_sql!("");
/// One customer's changes (a member's own feed), on `events_customer_feed_idx`: a statement
/// of its own, so that its plan seeks to the customer.
const CUSTOMER_WALK_SQL: &str = walk_sql!("AND customer_id = $5");

/// One page of changes past `after`, of `types`, optionally about one customer.
pub async fn page(
    conn: &mut AsyncPgConnection,
    after: Position,
    types: &[String],
    limit: i64,
    customer: Option<Uuid>,
) -> ApiResult<ChangePage> {
    let walk = |sql| {
        sql_query(sql)
            .bind::<BigInt, _>(after.0)
            .bind::<BigInt, _>(after.1)
            .bind::<Array<Text>, _>(types)
            .bind::<BigInt, _>(limit)
    };
    let rows: Vec<Row> = match customer {
        None => Cached::fixed(walk(WALK_SQL)).load(conn).await?,
        Some(customer) => {
            Cached::fixed(walk(CUSTOMER_WALK_SQL).bind::<SqlUuid, _>(customer))
                .load(conn)
                .await?
        }
    };
    let bound = rows.as_slice().first().map_or(0, |r| r.bound);
    let mut data = Vec::with_capacity(rows.len());
    for row in rows {
        let (Some(txid), Some(seq), Some(id)) = (row.txid, row.seq, row.id) else {
            continue;
        };
        data.push(Change {
            cursor: encode_cursor(&(txid, seq)),
            id,
            event_type: row.event_type.unwrap_or_default(),
            occurred_at: row.occurred_at.unwrap_or_default(),
            subject_type: row.subject_type.unwrap_or_default(),
            subject_id: row.subject_id.unwrap_or_default(),
            customer_id: row.customer_id,
            data: row.data.unwrap_or_default(),
        });
    }
    let full = i64::try_from(data.len()).unwrap_or(i64::MAX) >= limit;
    let next = match data.last() {
        Some(last) if full => last.cursor.clone(),
        // Every event below the bound has been seen: the next page starts past them all,
        // whatever the types filter left out.
        _ => encode_cursor(&after.max((bound - 1, i64::MAX))),
    };
    Ok(ChangePage {
        data,
        next_cursor: next,
    })
}

/// The position `since` names: the start, a cursor (`400` when it is not one) or `now`.
pub async fn position(conn: &mut AsyncPgConnection, since: Option<&str>) -> ApiResult<Position> {
    match since.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok((0, 0)),
        Some("now") => {
            #[derive(QueryableByName)]
            struct Bound {
                #[diesel(sql_type = BigInt)]
                bound: i64,
            }
            let b: Bound =
                sql_query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS bound")
                    .get_result(conn)
                    .await?;
            Ok((b.bound - 1, i64::MAX))
        }
        Some(cursor) => decode_cursor(cursor).map_err(|_| {
            ApiError::BadRequest(
                "since is not a cursor of this feed; use a next_cursor, or `now`".into(),
            )
        }),
    }
}

/// The types a `types` parameter names: `422` naming `types` for an unknown one.
pub fn types_named(catalogue: &Catalogue, types: Option<&str>) -> ApiResult<Vec<String>> {
    let given: Vec<String> = types
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    catalogue.patterns(&given).map_err(|unknown| {
        ApiError::invalid(
            "types",
            "unknown_event_type",
            format!(
                "`{}` names no event type; see the document's `webhooks` for the types, or use `<family>.*`",
                unknown.pattern
            ),
        )
    })?;
    Ok(catalogue.expand(&given))
}

/// The page size a `limit` parameter asks for: `400` outside 1 to 1000.
pub fn limit(given: Option<i64>) -> ApiResult<i64> {
    match given {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}, not {n}"
        ))),
    }
}

/// Read the change feed: every create, update and delete, in commit order. Keep
/// `next_cursor` and pass it as `since` to resume; an empty page still moves it on.
#[utoipa::path(
    tag = "changes",
    params(FeedParams),
    responses(
        (status = 200, body = ChangePage),
        (status = 422, description = "`types` names an unknown event type", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/changes")]
async fn list(
    _: Authorized<ChangesRead>,
    mut conn: DbConn,
    catalogue: web::Data<Catalogue>,
    params: Query<FeedParams>,
) -> ApiResult<web::Json<ChangePage>> {
    let limit = limit(params.limit)?;
    let types = types_named(&catalogue, params.types.as_deref())?;
    let after = position(&mut conn, params.since.as_deref()).await?;
    Ok(web::Json(
        page(&mut conn, after, &types, limit, None).await?,
    ))
}

/// How long the oldest transaction still running has been open: how far the feed (and the
/// webhooks' fan-out) is held back, in seconds.
pub async fn lag_seconds(conn: &mut AsyncPgConnection) -> ApiResult<f64> {
    #[derive(QueryableByName)]
    struct Lag {
        #[diesel(sql_type = diesel::sql_types::Double)]
        seconds: f64,
    }
    let lag: Lag = sql_query(
        "SELECT coalesce(extract(epoch FROM now() - min(xact_start)), 0)::float8 AS seconds \
         FROM pg_stat_activity WHERE backend_xid IS NOT NULL",
    )
    .get_result(conn)
    .await?;
    Ok(lag.seconds.max(0.0))
}
