//! How domains plug into the customer. Each domain declares, in its own module, what it
//! holds about a customer and its four steps — timeline, merge, export, erase — as one
//! [`CustomerHooks`]; the app assembles the [`Registry`] where it is built
//! (`domains::registry`). The customer handlers walk the registry, so `customers` imports no
//! other domain, and adding a domain touches no customer code.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit;
use super::ids::{CustomerId, OrderId};
use super::schema_part::SchemaPart;
use super::write::Writer;
use crate::error::{ApiError, ApiResult};

/// One event in a customer's timeline. Its schema is composed from the registered domains
/// (`kit::documents`): one object per `kind`, each with its own `data`.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    /// The [`Timeline::kind`] of the domain it comes from.
    pub kind: &'static str,
    /// The id of the order, audit entry, ... the entry is about.
    pub id: Uuid,
    pub summary: String,
    /// The domain's [`Timeline::data`], serialised.
    pub data: Value,
}

impl TimelineEntry {
    /// An entry of `kind` whose `data` is `data` serialised (a type whose schema is the
    /// domain's [`Timeline::data`]).
    pub fn new(
        kind: &'static str,
        at: DateTime<Utc>,
        id: Uuid,
        summary: String,
        data: &impl Serialize,
    ) -> Self {
        Self {
            at,
            kind,
            id,
            summary,
            data: serde_json::to_value(data).unwrap_or_default(),
        }
    }
}

impl utoipa::PartialSchema for TimelineEntry {
    /// Named only: `kit::documents::components` puts the composed schema in the document.
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new().into()
    }
}

impl ToSchema for TimelineEntry {}

/// Position in a timeline: entries strictly older than `(at, id)`.
pub type TimelineCursor = Option<(DateTime<Utc>, Uuid)>;

/// Up to `limit` entries of one domain for a customer, newest first, before the cursor.
pub type TimelineSource = for<'c> fn(
    &'c mut AsyncPgConnection,
    CustomerId,
    TimelineCursor,
    i64,
) -> BoxFuture<'c, ApiResult<Vec<TimelineEntry>>>;

/// Moves one domain's records from a duplicate (second id) to the survivor of a merge
/// (first id), after the two customer rows are merged.
pub type MergeStep = for<'c> fn(
    &'c mut AsyncPgConnection,
    &'c Writer,
    CustomerId,
    CustomerId,
) -> BoxFuture<'c, ApiResult<()>>;

/// A domain's entries on the customer's timeline.
#[derive(Clone, Copy)]
pub struct Timeline {
    /// The `kind` of its entries (`order`).
    pub kind: &'static str,
    pub source: TimelineSource,
    /// The schema of its entries' `data`.
    pub data: fn() -> SchemaPart,
}

/// Reads one domain's section of a customer's data export.
pub type ExportRead =
    for<'c> fn(&'c mut AsyncPgConnection, CustomerId) -> BoxFuture<'c, ApiResult<Value>>;

/// A domain's section of the customer's data export.
#[derive(Clone, Copy)]
pub struct ExportSection {
    /// The section's key in the export (`orders`).
    pub section: &'static str,
    pub read: ExportRead,
    /// The schema of what `read` returns.
    pub schema: fn() -> SchemaPart,
}

/// Removes or anonymises what one domain holds about a customer, in the erase's transaction.
pub type EraseStep =
    for<'c> fn(&'c mut AsyncPgConnection, &'c Writer, CustomerId) -> BoxFuture<'c, ApiResult<()>>;

/// What other domains learn of an order whose status changes.
#[derive(Debug, Clone)]
pub struct OrderFacts {
    pub id: OrderId,
    /// The shop's order number, for the reasons other domains record.
    pub external_id: String,
    pub customer_id: CustomerId,
    pub currency: String,
    pub total_minor: i64,
    pub ordered_at: DateTime<Utc>,
    /// The categories of its lines, lower-cased, each once.
    pub categories: Vec<String>,
}

/// Follows an order into (`true`) or out of (`false`) the statuses whose sales count (paid,
/// fulfilled), in the order's transaction: the club earns or reverses points.
pub type OrderStep = for<'c> fn(
    &'c mut AsyncPgConnection,
    &'c Writer,
    &'c OrderFacts,
    bool,
) -> BoxFuture<'c, ApiResult<()>>;

/// Goodwill points for a customer (a complaint's compensation), credited once per
/// `reference`.
#[derive(Debug, Clone)]
pub struct PointsGrant {
    pub customer: CustomerId,
    pub points: i64,
    pub reason: String,
    pub reference: String,
    /// The references sharing one cap (`complaint:<id>`: every cycle of one complaint); an
    /// agent's grants under it are capped by the club's settings.
    pub capped_under: String,
    /// The request field a refusal names.
    pub field: &'static str,
}

/// Credits a [`PointsGrant`] in the caller's transaction (the club's).
pub type PointsCredit =
    for<'c> fn(&'c mut AsyncPgConnection, &'c Writer, PointsGrant) -> BoxFuture<'c, ApiResult<()>>;

/// What erasing a customer does to a domain's data.
#[derive(Clone, Copy)]
pub enum Erase {
    /// The domain's own step.
    Step(EraseStep),
    /// Nothing: the domain's rows about a customer hold no personal data (said why, so a
    /// reviewer can check it; the erase tests search every table for the erased values).
    NothingPersonal(&'static str),
}

/// One domain's hooks into the customer.
#[derive(Clone, Copy)]
pub struct CustomerHooks {
    /// The domain's name (`orders`).
    pub domain: &'static str,
    /// The tables whose rows name a customer (`customer_id`) that this domain owns; a test
    /// checks that every such table of the schema is claimed by a registered domain.
    pub tables: &'static [&'static str],
    pub timeline: Option<Timeline>,
    pub merge: Option<MergeStep>,
    pub export: Option<ExportSection>,
    pub erase: Erase,
    /// What the domain does when an order's sales start or stop counting.
    pub order: Option<OrderStep>,
    /// The domain that keeps points credits them (one domain: the club).
    pub points: Option<PointsCredit>,
}

impl CustomerHooks {
    /// A domain's hooks with only its tables and erase step; the steps it has are set on top
    /// (`CustomerHooks { timeline: Some(timeline), ..CustomerHooks::new(..) }`).
    pub const fn new(domain: &'static str, tables: &'static [&'static str], erase: Erase) -> Self {
        Self {
            domain,
            tables,
            timeline: None,
            merge: None,
            export: None,
            erase,
            order: None,
            points: None,
        }
    }
}

/// Every registered domain's hooks, in registration order.
#[derive(Clone, Default)]
pub struct Registry {
    hooks: Vec<CustomerHooks>,
}

impl Registry {
    /// A registry of these domains.
    pub fn new(hooks: Vec<CustomerHooks>) -> Self {
        Self { hooks }
    }

    /// Every registered domain.
    pub fn domains(&self) -> &[CustomerHooks] {
        &self.hooks
    }

    /// Every domain's timeline.
    pub fn timelines(&self) -> impl Iterator<Item = Timeline> + '_ {
        self.hooks.iter().filter_map(|h| h.timeline)
    }

    /// Every merge step.
    pub fn merge_steps(&self) -> impl Iterator<Item = MergeStep> + '_ {
        self.hooks.iter().filter_map(|h| h.merge)
    }

    /// Every export section.
    pub fn export_sections(&self) -> impl Iterator<Item = ExportSection> + '_ {
        self.hooks.iter().filter_map(|h| h.export)
    }

    /// Runs every domain's [`OrderStep`] when an order moves into or out of the counted
    /// statuses (nothing when it stays on its side).
    pub async fn order_changed(
        &self,
        conn: &mut AsyncPgConnection,
        writer: &Writer,
        order: &OrderFacts,
        was_counted: bool,
        counted: bool,
    ) -> ApiResult<()> {
        if was_counted == counted {
            return Ok(());
        }
        for step in self.hooks.iter().filter_map(|h| h.order) {
            step(conn, writer, order, counted).await?;
        }
        Ok(())
    }

    /// Credits the grant through the domain that keeps points; `409` on the grant's field
    /// when none is registered.
    pub async fn credit_points(
        &self,
        conn: &mut AsyncPgConnection,
        writer: &Writer,
        grant: PointsGrant,
    ) -> ApiResult<()> {
        match self.hooks.iter().find_map(|h| h.points) {
            Some(credit) => credit(conn, writer, grant).await,
            None => Err(ApiError::rule(
                grant.field,
                "no_points",
                "this server keeps no points; give a gift instead",
            )),
        }
    }

    /// Every erase step.
    pub fn erase_steps(&self) -> impl Iterator<Item = EraseStep> + '_ {
        self.hooks.iter().filter_map(|h| match h.erase {
            Erase::Step(step) => Some(step),
            Erase::NothingPersonal(_) => None,
        })
    }
}

/// A domain's rows about a customer, newest first by `$at` (then id), strictly before a
/// [`TimelineCursor`], at most `$limit`: the query a timeline source starts from.
/// `timeline_rows!(conn, orders, OrderRow, ordered_at, customer, before, limit)`.
#[macro_export]
macro_rules! timeline_rows {
    ($conn:expr, $table:ident, $row:ty, $at:ident, $customer:expr, $before:expr, $limit:expr) => {{
        let mut query = $table::table
            .filter($table::customer_id.eq($customer))
            .select(<$row>::as_select())
            .order(($table::$at.desc(), $table::id.desc()))
            .limit($limit)
            .into_boxed();
        if let Some(cursor) = $before {
            query = query.filter($crate::db::keyset::older_than(
                $table::$at,
                $table::id,
                cursor,
            ));
        }
        query.load::<$row>($conn).await?
    }};
}

/// Every row of a domain about a customer, oldest first by `$at` (then id): what an export
/// section starts from. `export_rows!(conn, orders, OrderRow, ordered_at, customer)`.
#[macro_export]
macro_rules! export_rows {
    ($conn:expr, $table:ident, $row:ty, $at:ident, $customer:expr) => {
        $table::table
            .filter($table::customer_id.eq($customer))
            .order(($table::$at, $table::id))
            .select(<$row>::as_select())
            .load::<$row>($conn)
            .await?
    };
}

/// Moves a domain's rows about the merge's duplicate to its survivor, stamping their
/// `updated_at`: what a merge step starts from.
/// `reassign_rows!(conn, orders, survivor, duplicate)`.
#[macro_export]
macro_rules! reassign_rows {
    ($conn:expr, $table:ident, $survivor:expr, $duplicate:expr) => {
        diesel::update($table::table.filter($table::customer_id.eq($duplicate)))
            .set((
                $table::customer_id.eq($survivor),
                $table::updated_at.eq(chrono::Utc::now()),
            ))
            .execute($conn)
            .await?
    };
}

/// What a domain's erase step writes over the texts it keeps.
pub const ERASED: &str = "[erased]";

/// Blanks `fields` in the domain's audit entries and its `subject_type` events about the
/// customer (with [`ERASED`]): the last part of a domain's erase step, after its own rows.
pub async fn redact_history(
    conn: &mut AsyncPgConnection,
    customer: CustomerId,
    subject_type: &str,
    fields: &[&str],
) -> ApiResult<()> {
    audit::redact_customer(conn, customer, fields).await?;
    let erased: serde_json::Map<String, Value> = fields
        .iter()
        .map(|f| ((*f).to_owned(), Value::String(ERASED.to_owned())))
        .collect();
    super::outbox::redact_customer(conn, customer, subject_type, Value::Object(erased)).await?;
    Ok(())
}

/// Merges the newest-first lists of every source and keeps the first `limit`.
pub fn merge_newest_first(lists: Vec<Vec<TimelineEntry>>, limit: usize) -> Vec<TimelineEntry> {
    let mut all: Vec<TimelineEntry> = lists.into_iter().flatten().collect();
    all.sort_by_key(|e| std::cmp::Reverse((e.at, e.id)));
    all.truncate(limit);
    all
}

/// The history's place on the customer: its entries on the timeline and in the export. Its
/// erasure is each domain's: a domain redacts the values it erases from its own entries.
pub fn history_hooks() -> CustomerHooks {
    CustomerHooks {
        timeline: Some(Timeline {
            kind: "audit",
            source: timeline,
            data: SchemaPart::of::<AuditSummary>,
        }),
        export: Some(ExportSection {
            section: "history",
            read: export,
            schema: SchemaPart::list_of::<audit::AuditEntry>,
        }),
        ..CustomerHooks::new(
            "history",
            &["audit_log"],
            Erase::NothingPersonal(
                "each domain's erase step redacts what it erased from its own entries",
            ),
        )
    }
}

fn timeline<'c>(
    conn: &'c mut AsyncPgConnection,
    customer: CustomerId,
    before: TimelineCursor,
    limit: i64,
) -> BoxFuture<'c, ApiResult<Vec<TimelineEntry>>> {
    Box::pin(async move {
        let entries = audit::for_customer(conn, customer, before, limit).await?;
        Ok(entries
            .into_iter()
            .map(|e| {
                let summary = format!("{} {} by {}", e.entity_type, e.action, e.actor_type);
                let data = AuditSummary {
                    entity_type: e.entity_type,
                    entity_id: e.entity_id,
                    action: e.action,
                    changes: e.changes,
                };
                TimelineEntry::new("audit", e.created_at, e.id, summary, &data)
            })
            .collect())
    })
}

/// The `data` of an `audit` timeline entry: what changed on which record.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditSummary {
    /// `customer`, `order`, `complaint`, ...
    pub entity_type: String,
    pub entity_id: Uuid,
    /// `created`, `updated`, `deleted`, ...
    pub action: String,
    /// Changed fields with their old and new values.
    #[schema(value_type = Object)]
    pub changes: Value,
}

fn export<'c>(
    conn: &'c mut AsyncPgConnection,
    customer: CustomerId,
) -> BoxFuture<'c, ApiResult<Value>> {
    Box::pin(async move {
        let entries = audit::for_customer(conn, customer, None, i64::MAX).await?;
        Ok(serde_json::to_value(entries).unwrap_or_default())
    })
}
