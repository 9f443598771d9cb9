//! The audit log: who changed what, when, with old and new values. Every domain records its
//! changes with one call to [`record`], inside the transaction that makes the change.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::ids::{ApiKeyId, CustomerId, UserId};
use super::rights::Principal;
use crate::db::keyset::older_than;
use crate::db::schema::audit_log;

/// Who made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    User(UserId),
    ApiKey(ApiKeyId),
    /// A customer through their app (a member token).
    Member(CustomerId),
    /// The command line (CSV import, seeding) or the server itself.
    System,
}

impl From<&Principal> for Actor {
    fn from(principal: &Principal) -> Self {
        match principal {
            Principal::User { id, .. } => Self::User(*id),
            Principal::ApiKey { id, .. } => Self::ApiKey(*id),
            Principal::Member { customer } => Self::Member(*customer),
        }
    }
}

impl Actor {
    /// The actor as its stored columns: type and id.
    pub fn parts(self) -> (&'static str, Option<Uuid>) {
        match self {
            Self::User(id) => ("user", Some(id.get())),
            Self::ApiKey(id) => ("api_key", Some(id.get())),
            Self::Member(id) => ("member", Some(id.get())),
            Self::System => ("system", None),
        }
    }

    /// How the actor is named in `erased_by` and similar columns.
    pub fn label(self) -> String {
        match self.parts() {
            (kind, Some(id)) => format!("{kind}:{id}"),
            (kind, None) => kind.to_owned(),
        }
    }
}

/// The thing a change was made to.
#[derive(Debug, Clone, Copy)]
pub struct Subject {
    /// `customer`, `order`, ...
    pub entity_type: &'static str,
    pub entity_id: Uuid,
    /// The customer the change concerns, so that it shows in their history and timeline.
    pub customer_id: Option<CustomerId>,
}

/// Records one change. `changes` is usually [`diff`] of the before and after states.
pub async fn record(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    subject: Subject,
    action: &str,
    changes: Value,
) -> QueryResult<()> {
    let (actor_type, actor_id) = actor.parts();
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::id.eq(Uuid::now_v7()),
            audit_log::entity_type.eq(subject.entity_type),
            audit_log::entity_id.eq(subject.entity_id),
            audit_log::customer_id.eq(subject.customer_id),
            audit_log::action.eq(action),
            audit_log::actor_type.eq(actor_type),
            audit_log::actor_id.eq(actor_id),
            audit_log::changes.eq(changes),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// `{"field": {"old": ..., "new": ...}}` for every top-level field that differs, ignoring
/// bookkeeping fields. With no `before`, every non-empty field of `after` is listed as new.
pub fn diff(before: Option<&Value>, after: &Value) -> Value {
    const IGNORED: [&str; 3] = ["version", "updated_at", "created_at"];
    let empty = Map::new();
    let old = before.and_then(Value::as_object).unwrap_or(&empty);
    let new = after.as_object().unwrap_or(&empty);
    let mut changes = Map::new();
    for (field, value) in new {
        let previous = old.get(field).unwrap_or(&Value::Null);
        let blank = value.is_null() || value.as_array().is_some_and(Vec::is_empty);
        if IGNORED.contains(&field.as_str()) || previous == value || (before.is_none() && blank) {
            continue;
        }
        changes.insert(
            field.clone(),
            serde_json::json!({"old": previous, "new": value}),
        );
    }
    Value::Object(changes)
}

/// One audit entry as the API shows it.
#[derive(Debug, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    pub id: Uuid,
    #[schema(example = "customer")]
    pub entity_type: String,
    pub entity_id: Uuid,
    #[schema(example = "updated")]
    pub action: String,
    /// `user`, `api_key` or `system`.
    pub actor_type: String,
    pub actor_id: Option<Uuid>,
    /// Changed fields with their old and new values.
    #[schema(value_type = Object)]
    pub changes: Value,
    pub created_at: DateTime<Utc>,
}

/// Entries about a customer, newest first, before the `(created_at, id)` cursor.
pub async fn for_customer(
    conn: &mut AsyncPgConnection,
    customer_id: CustomerId,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> QueryResult<Vec<AuditEntry>> {
    let mut query = audit_log::table
        .filter(audit_log::customer_id.eq(customer_id))
        .select(AuditEntry::as_select())
        .order((audit_log::created_at.desc(), audit_log::id.desc()))
        .limit(limit)
        .into_boxed();
    if let Some(cursor) = before {
        query = query.filter(older_than(audit_log::created_at, audit_log::id, cursor));
    }
    query.load(conn).await
}

/// Blanks the old and new values of `fields` in every entry about a customer (after an
/// erase, the history must not keep what was erased).
pub async fn redact_customer(
    conn: &mut AsyncPgConnection,
    customer_id: CustomerId,
    fields: &[&str],
) -> QueryResult<usize> {
    let entries: Vec<(Uuid, Value)> = audit_log::table
        .filter(audit_log::customer_id.eq(customer_id))
        .select((audit_log::id, audit_log::changes))
        .load(conn)
        .await?;
    let mut redacted = 0;
    for (id, mut changes) in entries {
        let Some(map) = changes.as_object_mut() else {
            continue;
        };
        let mut touched = false;
        for field in fields {
            if let Some(change) = map.get_mut(*field) {
                *change = serde_json::json!({"old": "[erased]", "new": "[erased]"});
                touched = true;
            }
        }
        if touched {
            diesel::update(audit_log::table.find(id))
                .set(audit_log::changes.eq(changes))
                .execute(conn)
                .await?;
            redacted += 1;
        }
    }
    Ok(redacted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_lists_changed_fields_only() {
        let before = json!({"name": "A", "tags": ["x"], "version": 1});
        let after = json!({"name": "B", "tags": ["x"], "version": 2});
        assert_eq!(
            diff(Some(&before), &after),
            json!({"name": {"old": "A", "new": "B"}})
        );
    }

    #[test]
    fn creation_lists_non_empty_fields() {
        let after = json!({"name": "A", "notes": null, "tags": []});
        assert_eq!(
            diff(None, &after),
            json!({"name": {"old": null, "new": "A"}})
        );
    }
}
