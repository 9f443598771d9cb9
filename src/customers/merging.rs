//! Merging a duplicate customer into the one that survives: gaps filled from the
//! duplicate, the duplicate soft-deleted with a pointer, every domain's merge step run.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::CustomerRow;
use super::queries::lock_live;
use crate::db::schema::customers;
use crate::error::{ApiError, ApiResult};
use crate::kit::ids::CustomerId;
use crate::kit::registry::Registry;
use crate::kit::write::{self, Action, Writer};

/// The duplicate of a merge: deleted, pointing at the survivor.
const MERGED_AWAY: Action = Action {
    removes: true,
    ..Action::named("merged_away", "deleted")
};
/// The survivor of a merge, recorded even when the duplicate filled no gap.
const MERGED: Action = Action {
    always: true,
    ..Action::named("merged", "merged")
};

/// Customers referred by the duplicate of a merge are now referred by the survivor.
async fn move_referrals(
    conn: &mut AsyncPgConnection,
    survivor: CustomerId,
    duplicate: CustomerId,
) -> QueryResult<usize> {
    diesel::update(
        customers::table
            .filter(customers::referred_by.eq(duplicate))
            .filter(customers::id.ne(survivor)),
    )
    .set(customers::referred_by.eq(survivor))
    .execute(conn)
    .await
}

/// Folds `duplicate` into `survivor`: fills the survivor's gaps from it, soft-deletes it with
/// a pointer, then runs every domain's merge step (which moves what it holds and may change
/// the survivor again: orders recompute its figures). Returns the survivor as it ends.
pub async fn merge(
    conn: &mut AsyncPgConnection,
    registry: &Registry,
    writer: &Writer,
    survivor_id: CustomerId,
    duplicate_id: CustomerId,
) -> ApiResult<CustomerRow> {
    if survivor_id == duplicate_id {
        return Err(ApiError::rule(
            "duplicate_id",
            "same",
            "a customer cannot be merged into itself",
        ));
    }
    // Lock in id order so that two opposite merges cannot deadlock.
    let (first, second) = if survivor_id < duplicate_id {
        (survivor_id, duplicate_id)
    } else {
        (duplicate_id, survivor_id)
    };
    // A missing customer is `404` as on any other route, naming which of the two it was.
    let not_found = |field: &'static str| {
        move |e: ApiError| match e {
            ApiError::NotFound(_) => {
                ApiError::NotFound(format!("{field}: no live customer with this id"))
            }
            other => other,
        }
    };
    let field_of = |id| {
        if id == survivor_id {
            "survivor_id"
        } else {
            "duplicate_id"
        }
    };
    let a = lock_live(conn, first)
        .await
        .map_err(not_found(field_of(first)))?;
    let b = lock_live(conn, second)
        .await
        .map_err(not_found(field_of(second)))?;
    let (survivor, duplicate) = if a.id == survivor_id { (a, b) } else { (b, a) };
    let survivor = write::adopt(writer, survivor)?;
    let duplicate = write::adopt(writer, duplicate)?;
    let gaps = duplicate.row().clone();

    // The duplicate gives up its reference first: it is unique, and may pass to the survivor.
    let mut retired = duplicate.to_change();
    retired.deleted_at = Some(Utc::now());
    retired.merged_into = Some(survivor_id);
    retired.source = None;
    retired.external_ref = None;
    retired.referred_by = None;
    write::save(conn, writer, duplicate, retired, MERGED_AWAY).await?;

    let mut merged = survivor.to_change();
    fill_gaps(&mut merged, &gaps);
    write::save(conn, writer, survivor, merged, MERGED).await?;
    move_referrals(conn, survivor_id, gaps.id).await?;
    for step in registry.merge_steps() {
        step(conn, writer, survivor_id, gaps.id).await?;
    }
    lock_live(conn, survivor_id).await
}

/// Takes from `other` what `row` lacks: empty fields, and the union of list fields.
fn fill_gaps(row: &mut CustomerRow, other: &CustomerRow) {
    macro_rules! fill {
        ($($field:ident),*) => {$(
            if row.$field.is_none() {
                row.$field = other.$field.clone();
            }
        )*};
    }
    fill!(
        given_name,
        family_name,
        company,
        position,
        gender,
        birthday,
        personality,
        family_situation,
        occupation,
        income_band,
        notes,
        tier,
        owner_id,
        region,
        source,
        external_ref
    );
    if row.referred_by == Some(other.id) {
        row.referred_by = None;
    }
    if row.referred_by.is_none() && other.referred_by != Some(row.id) {
        row.referred_by = other.referred_by;
    }
    for (mine, theirs) in [
        (&mut row.phones, &other.phones),
        (&mut row.emails, &other.emails),
        (&mut row.tags, &other.tags),
        (&mut row.hobbies, &other.hobbies),
        (&mut row.likes, &other.likes),
        (&mut row.dislikes, &other.dislikes),
    ] {
        for item in theirs {
            if !mine.contains(item) {
                mine.push(item.clone());
            }
        }
    }
    for (mine, theirs) in [
        (&mut row.addresses, &other.addresses),
        (&mut row.important_dates, &other.important_dates),
    ] {
        if mine.as_array().is_none_or(Vec::is_empty) {
            *mine = theirs.clone();
        }
    }
    for (mine, theirs) in [
        (&mut row.attributes, &other.attributes),
        (&mut row.consents, &other.consents),
    ] {
        if let (Some(mine), Some(theirs)) = (mine.as_object_mut(), theirs.as_object()) {
            for (key, value) in theirs {
                mine.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
    }
}
