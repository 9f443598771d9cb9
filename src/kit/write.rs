//! The one write path of versioned resources. Every create, change and soft delete goes
//! through [`create`] or [`lock`] then [`save`], inside the caller's transaction:
//!
//! 1. lock the row (`SELECT ... FOR UPDATE`) and check `If-Match` against its version;
//! 2. check the writer's right to the row as it is ([`Versioned::ownership`]);
//! 3. the domain applies its change to a copy;
//! 4. check the right again on the changed row (an agent cannot give a row away);
//! 5. diff the two; no difference writes nothing;
//! 6. bump `version` and `updated_at`, store the row;
//! 7. write the audit entry and the domain event.
//!
//! A domain implements [`Versioned`] for its row and never writes these steps itself.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::audit::{self, Actor, Subject};
use super::ids::CustomerId;
use super::outbox::{self, Message};
use super::rights::{Ownership, Principal, ensure_may_write};
use crate::error::{ApiError, ApiResult};
use crate::http::etag::{self, IfMatch};

/// Who makes a change: the actor recorded in the audit log and events, and the principal
/// whose rights are checked (`None` for the system itself: imports, seeding, jobs).
#[derive(Debug, Clone)]
pub struct Writer {
    actor: Actor,
    principal: Option<Principal>,
}

impl Writer {
    /// A request's caller.
    pub fn of(principal: &Principal) -> Self {
        Self {
            actor: Actor::from(principal),
            principal: Some(principal.clone()),
        }
    }

    /// The server or the command line.
    pub fn system() -> Self {
        Self {
            actor: Actor::System,
            principal: None,
        }
    }

    /// The actor recorded for the change.
    pub fn actor(&self) -> Actor {
        self.actor
    }

    /// The caller whose rights apply, if any.
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
    }

    /// `403` unless this writer may write a row of this ownership.
    pub fn ensure_may_write(&self, ownership: Ownership) -> ApiResult<()> {
        ensure_may_write(self.principal(), ownership)
    }
}

/// What a write did, as the audit log and the event type name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    /// The audit entry's action: `created`, `figures_updated`, ...
    pub audit: &'static str,
    /// The event type's second half: `customer.<event>`.
    pub event: &'static str,
    /// Whether the resource is gone afterwards: its event then carries only its id.
    pub removes: bool,
    /// Whether the write is recorded even when the row itself does not change (a merge
    /// that fills no gap still moved the duplicate's records).
    pub always: bool,
}

impl Action {
    /// A change recorded under its own audit name and event type.
    pub const fn named(audit: &'static str, event: &'static str) -> Self {
        Self {
            audit,
            event,
            removes: false,
            always: false,
        }
    }

    pub const CREATED: Self = Self::named("created", "created");
    pub const UPDATED: Self = Self::named("updated", "updated");
    /// A (soft) deletion.
    pub const DELETED: Self = Self {
        removes: true,
        ..Self::named("deleted", "deleted")
    };
}

/// The bookkeeping methods of a [`Versioned`] impl, from the row's field paths:
/// `versioned_columns!(id: id, version: version, updated_at: updated_at)` (a row without
/// `updated_at` leaves it out; nested rows name `row.id`).
#[macro_export]
macro_rules! versioned_columns {
    (id: $($id:ident).+, version: $($version:ident).+ $(, updated_at: $($updated:ident).+)?) => {
        fn id(&self) -> uuid::Uuid {
            self.$($id).+.into()
        }

        fn version(&self) -> i64 {
            self.$($version).+
        }

        fn stamp(&mut self, version: i64, _now: chrono::DateTime<chrono::Utc>) {
            self.$($version).+ = version;
            $(self.$($updated).+ = _now;)?
        }
    };
}

/// A row that goes through the write path. The trait's async methods are the domain's own
/// SQL; everything around them is the kit's.
pub trait Versioned: Serialize + Clone + Sized {
    /// The kind of resource (`customer`, `order`): the audit entity type, the events'
    /// subject and the first half of their types.
    const KIND: &'static str;
    /// The row's typed id (`CustomerId`), which [`lock`] takes.
    type Id: Copy + Into<Uuid>;

    fn id(&self) -> Uuid;
    fn version(&self) -> i64;
    /// Stamps a stored change: the next version, changed now. ([`versioned_columns!`] writes
    /// these three.)
    fn stamp(&mut self, version: i64, now: DateTime<Utc>);
    /// The customer the row concerns, so that its history shows on their timeline (none by
    /// default: settings and catalogues).
    fn customer_id(&self) -> Option<CustomerId> {
        None
    }
    /// Who may write the row.
    fn ownership(&self) -> Ownership {
        Ownership::Anyone
    }
    /// The row as the API shows it: the events' data (by default its serialised form).
    fn view(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
    /// Further events a change announces beside its action's, by the second half of their
    /// type (`customer.tier_changed` when the tier moved), with the same data; the change's
    /// one audit entry covers them.
    fn also_announces(&self, _before: &Self) -> Vec<&'static str> {
        Vec::new()
    }
    /// The row as the audit log compares it (by default its serialised form).
    fn audited(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The row, locked for update; `404` when there is none to write.
    fn lock(
        conn: &mut AsyncPgConnection,
        id: Self::Id,
    ) -> impl Future<Output = ApiResult<Self>> + Send;
    /// Inserts the row, returning it as stored.
    fn insert(&self, conn: &mut AsyncPgConnection) -> impl Future<Output = ApiResult<Self>> + Send;
    /// Stores the changed row, returning it as stored.
    fn update(&self, conn: &mut AsyncPgConnection) -> impl Future<Output = ApiResult<Self>> + Send;
    /// Removes the row for good (settings whose history the audit log keeps); rows that are
    /// only ever soft-deleted keep this refusal.
    fn delete(&self, _conn: &mut AsyncPgConnection) -> impl Future<Output = ApiResult<()>> + Send {
        async {
            Err(crate::error::ApiError::internal(format!(
                "{} rows are not deleted",
                Self::KIND
            )))
        }
    }
}

/// A row locked for a write whose precondition and writer's right were checked: the only
/// way to reach [`save`].
#[derive(Debug)]
pub struct Locked<T> {
    row: T,
}

impl<T: Versioned> Locked<T> {
    /// The row as stored.
    pub fn row(&self) -> &T {
        &self.row
    }

    /// A copy to change and pass to [`save`].
    pub fn to_change(&self) -> T {
        self.row.clone()
    }
}

fn subject<T: Versioned>(row: &T) -> Subject {
    Subject {
        entity_type: T::KIND,
        entity_id: row.id(),
        customer_id: row.customer_id(),
    }
}

/// Locks the row, checks `If-Match` (`412`) and the writer's right to it (`403`).
pub async fn lock<T: Versioned>(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    id: T::Id,
    if_match: &IfMatch,
) -> ApiResult<Locked<T>> {
    let row = T::lock(conn, id).await?;
    if_match.check(row.version())?;
    adopt(writer, row)
}

/// A row the domain locked by other means (by a unique reference), with the writer's right
/// checked; no precondition applies.
pub fn adopt<T: Versioned>(writer: &Writer, row: T) -> ApiResult<Locked<T>> {
    writer.ensure_may_write(row.ownership())?;
    Ok(Locked { row })
}

/// Stores `after` in place of the locked row: the writer's right to the result, then (if
/// anything changed, or the action is always recorded) the new version, the audit entry and
/// the event. Returns the row as
/// stored, or the unchanged row when nothing differs.
pub async fn save<T: Versioned>(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    before: Locked<T>,
    mut after: T,
    action: Action,
) -> ApiResult<T> {
    writer.ensure_may_write(after.ownership())?;
    let changes = audit::diff(Some(&before.row.audited()), &after.audited());
    if changes.as_object().is_none_or(|c| c.is_empty()) && !action.always {
        return Ok(before.row);
    }
    after.stamp(before.row.version() + 1, Utc::now());
    let saved = after.update(conn).await?;
    record(conn, writer, &saved, action, changes).await?;
    let also: Vec<Message> = saved
        .also_announces(&before.row)
        .into_iter()
        .map(|event| Message {
            event_type: format!("{}.{event}", T::KIND),
            subject: subject(&saved),
            actor: writer.actor(),
            data: saved.view(),
        })
        .collect();
    outbox::record_many(conn, also).await?;
    Ok(saved)
}

/// A row deleted by stamping `deleted_at`: it stays for its history and for the records
/// that name it.
pub trait SoftDeleted: Versioned {
    /// The row's `deleted_at`.
    fn deleted_at_mut(&mut self) -> &mut Option<DateTime<Utc>>;
    /// The live (not deleted) row with this id, unlocked; `404` when there is none.
    fn live(
        conn: &mut AsyncPgConnection,
        id: Self::Id,
    ) -> impl Future<Output = ApiResult<Self>> + Send;
}

/// The live row for a `GET`: [`SoftDeleted::live`].
pub async fn live<T: SoftDeleted>(conn: &mut AsyncPgConnection, id: T::Id) -> ApiResult<T> {
    T::live(conn, id).await
}

/// A soft-deleted row of the schema's `table` (with `id`, `version`, `updated_at` and
/// `deleted_at` fields, deriving diesel's `Insertable` and `AsChangeset` with
/// `treat_none_as_null`), declared once: the [`Versioned`] impl with the items the row
/// decides (its kind, id type, view, ...), to which the macro adds the bookkeeping every
/// such row shares (id, version and stamp; the live row locked `FOR UPDATE`; insert and
/// update of every field as the row holds it), and the [`SoftDeleted`] impl.
///
/// ```text
/// crate::soft_deleted_row! {
///     impl Versioned for AnswerRow in answers {
///         const KIND: &'static str = "answer";
///         type Id = AnswerId;
///     }
/// }
/// ```
#[macro_export]
macro_rules! soft_deleted_row {
    (impl Versioned for $row:ident in $table:ident { $($body:tt)* }) => {
        impl $crate::kit::write::Versioned for $row {
            $($body)*

            $crate::versioned_columns!(id: id, version: version, updated_at: updated_at);

            async fn lock(
                conn: &mut diesel_async::AsyncPgConnection,
                id: Self::Id,
            ) -> $crate::error::ApiResult<Self> {
                use diesel::prelude::*;
                use $crate::db::schema::$table;
                let statement = $table::table
                    .find(id)
                    .filter($table::deleted_at.is_null())
                    .select(Self::as_select());
                Ok(diesel_async::RunQueryDsl::first(statement.for_update(), conn).await?)
            }

            async fn insert(
                &self,
                conn: &mut diesel_async::AsyncPgConnection,
            ) -> $crate::error::ApiResult<Self> {
                use diesel::prelude::*;
                use $crate::db::schema::$table;
                let statement = diesel::insert_into($table::table)
                    .values(self)
                    .returning(Self::as_returning());
                Ok(diesel_async::RunQueryDsl::get_result(statement, conn).await?)
            }

            async fn update(
                &self,
                conn: &mut diesel_async::AsyncPgConnection,
            ) -> $crate::error::ApiResult<Self> {
                use diesel::prelude::*;
                use $crate::db::schema::$table;
                let statement = diesel::update($table::table.find(self.id))
                    .set(self)
                    .returning(Self::as_returning());
                Ok(diesel_async::RunQueryDsl::get_result(statement, conn).await?)
            }
        }

        impl $crate::kit::write::SoftDeleted for $row {
            fn deleted_at_mut(&mut self) -> &mut Option<chrono::DateTime<chrono::Utc>> {
                &mut self.deleted_at
            }

            async fn live(
                conn: &mut diesel_async::AsyncPgConnection,
                id: Self::Id,
            ) -> $crate::error::ApiResult<Self> {
                use diesel::prelude::*;
                use $crate::db::schema::$table;
                let statement = $table::table
                    .find(id)
                    .filter($table::deleted_at.is_null())
                    .select(Self::as_select());
                Ok(diesel_async::RunQueryDsl::first(statement, conn).await?)
            }
        }
    };
}

/// Soft-deletes the locked row: `deleted_at` now, audited and announced as a deletion.
pub async fn soft_delete<T: SoftDeleted>(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    locked: Locked<T>,
) -> ApiResult<T> {
    let mut after = locked.to_change();
    *after.deleted_at_mut() = Some(Utc::now());
    save(conn, writer, locked, after, Action::DELETED).await
}

/// Deletes the locked row for good, audited (its last state) and announced as a deletion.
pub async fn delete<T: Versioned>(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    locked: Locked<T>,
) -> ApiResult<()> {
    locked.row.delete(conn).await?;
    let changes = audit::diff(Some(&locked.row.audited()), &Value::Null);
    record(conn, writer, &locked.row, Action::DELETED, changes).await
}

/// Inserts a new row after checking the writer's right to it, with its audit entry and
/// event.
pub async fn create<T: Versioned>(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    row: T,
    action: Action,
) -> ApiResult<T> {
    writer.ensure_may_write(row.ownership())?;
    let saved = row.insert(conn).await?;
    let changes = audit::diff(None, &saved.audited());
    record(conn, writer, &saved, action, changes).await?;
    Ok(saved)
}

/// [`create`] in a transaction of its own: the `POST` of a resource that is one row.
pub async fn create_single<T: Versioned + Send + Sync>(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    row: T,
) -> ApiResult<T> {
    conn.transaction::<_, ApiError, _>(async move |conn| {
        create(conn, writer, row, Action::CREATED).await
    })
    .await
}

/// A domain's change to a locked row, for [`change`]: an async closure given the
/// transaction and a copy of the row to change, returning whatever the handler needs beside
/// the saved row (a comment it added, a rating). A trait rather than a bare `AsyncFnOnce`
/// bound so that the closure's future can be required to be `Send`, as diesel-async's own
/// transaction closures are.
pub trait Change<'r, T: 'r, R>:
    AsyncFnOnce(&'r mut AsyncPgConnection, &'r mut T) -> ApiResult<R>
    + FnOnce(&'r mut AsyncPgConnection, &'r mut T) -> <Self as Change<'r, T, R>>::Fut
{
    /// The closure's future.
    type Fut: Future<Output = ApiResult<R>> + Send;
}

impl<'r, T: 'r, R, F, Fut> Change<'r, T, R> for F
where
    F: AsyncFnOnce(&'r mut AsyncPgConnection, &'r mut T) -> ApiResult<R>
        + FnOnce(&'r mut AsyncPgConnection, &'r mut T) -> Fut,
    Fut: Future<Output = ApiResult<R>> + Send,
{
    type Fut = Fut;
}

/// The one way a stored row changes: in one transaction, [`lock`] it (`If-Match`, the
/// writer's right to it as stored), let `apply` change a copy (it may read and write other
/// rows in the same transaction, and refuse with an error that rolls everything back), then
/// [`save`] the copy as `action` (the right again, the diff, the version, audit, event). A
/// copy `apply` leaves as it was writes nothing. Returns the row as stored and what `apply`
/// returned.
pub async fn change<T, R, F>(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    id: T::Id,
    if_match: &IfMatch,
    action: Action,
    apply: F,
) -> ApiResult<(T, R)>
where
    T: Versioned + Send + Sync,
    T::Id: Send,
    R: Send,
    F: for<'r> Change<'r, T, R> + Send,
{
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let locked = lock::<T>(conn, writer, id, if_match).await?;
        let mut after = locked.to_change();
        let output = apply(conn, &mut after).await?;
        let saved = save(conn, writer, locked, after, action).await?;
        Ok((saved, output))
    })
    .await
}

/// [`lock`] then [`soft_delete`], in a transaction of its own: the `DELETE` of a resource
/// that nothing else keeps alive.
pub async fn remove_single<T>(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    id: T::Id,
    if_match: &IfMatch,
) -> ApiResult<T>
where
    T: SoftDeleted + Send + Sync,
    T::Id: Send,
{
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let locked = lock::<T>(conn, writer, id, if_match).await?;
        soft_delete(conn, writer, locked).await
    })
    .await
}

/// `200` with a stored row as the API shows it ([`Versioned::view`]) and its ETag.
pub fn current<T: Versioned>(row: &T) -> actix_web::HttpResponse {
    etag::versioned(actix_web::http::StatusCode::OK, &row.view(), row.version())
}

/// `201` with a new row as the API shows it, its ETag and its `Location` in `collection`
/// (`club/rewards`).
pub fn created_in<T: Versioned>(collection: &str, row: &T) -> actix_web::HttpResponse {
    etag::created(
        format!("/api/v1/{collection}/{}", row.id()),
        &row.view(),
        row.version(),
    )
}

async fn record<T: Versioned>(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    saved: &T,
    action: Action,
    changes: Value,
) -> ApiResult<()> {
    let data = if action.removes {
        json!({ "id": saved.id() })
    } else {
        saved.view()
    };
    let occurrence = Occurrence {
        subject: subject(saved),
        event_type: format!("{}.{}", T::KIND, action.event),
        audit_action: action.audit,
    };
    occurrence.record(conn, writer, changes, data).await
}

/// A change that is not a versioned row's own (a comment added to a complaint, a step of an
/// escalation ladder), recorded like one: an audit entry and an event in the caller's
/// transaction.
#[derive(Debug, Clone)]
pub struct Occurrence {
    /// What the change is about: its kind is the audit entity type.
    pub subject: Subject,
    /// The full event type: `complaint.commented`.
    pub event_type: String,
    /// The audit entry's action.
    pub audit_action: &'static str,
}

impl Occurrence {
    /// Records the audit entry (`changes`) and the event (`data`).
    pub async fn record(
        self,
        conn: &mut AsyncPgConnection,
        writer: &Writer,
        changes: Value,
        data: Value,
    ) -> ApiResult<()> {
        audit::record(
            conn,
            writer.actor(),
            self.subject,
            self.audit_action,
            changes,
        )
        .await?;
        outbox::record(
            conn,
            Message {
                event_type: self.event_type,
                subject: self.subject,
                actor: writer.actor(),
                data,
            },
        )
        .await?;
        Ok(())
    }
}
