//! The tiers and settings as member reads see them. Both change rarely, and a member read
//! would otherwise fetch them on every request (two of its three round trips). Changes made
//! through this instance drop the copy at once; other instances see them within [`TTL`].
//! Writes never use the copy: they read both in their own transaction.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use diesel_async::AsyncPgConnection;
use futures_util::future::try_join;

use super::settings::{RulesChanges, SettingsRow};
use super::tiers::Ladder;
use crate::error::ApiResult;

/// How long another instance's change to the tiers or settings may go unseen by reads.
pub const TTL: Duration = Duration::from_secs(5);

/// The tiers and settings, as read at one time.
pub struct Rules {
    pub ladder: Ladder,
    pub settings: SettingsRow,
}

impl Rules {
    /// Both, as stored (in the caller's transaction, if any), in one round trip.
    pub async fn load(conn: &AsyncPgConnection) -> ApiResult<Self> {
        let (ladder, settings) = try_join(Ladder::load(conn), SettingsRow::load(conn)).await?;
        Ok(Self { ladder, settings })
    }
}

/// One instance's copy of the [`Rules`], good while no change to them has been made through
/// this instance since it was read ([`RulesChanges`]) and for at most [`TTL`].
pub struct RulesCache {
    current: RwLock<Option<Snapshot>>,
    changes: Arc<RulesChanges>,
}

/// The rules as read, with when and at which count of changes.
struct Snapshot {
    read_at: Instant,
    changes: u64,
    rules: Arc<Rules>,
}

impl RulesCache {
    /// A cache that drops its copy whenever `changes` counts a change.
    pub fn new(changes: Arc<RulesChanges>) -> Self {
        Self {
            current: RwLock::new(None),
            changes,
        }
    }

    /// The rules, from the copy while it is fresh, else from the database.
    pub async fn get(&self, conn: &AsyncPgConnection) -> ApiResult<Arc<Rules>> {
        let changes = self.changes.count();
        if let Some(copy) = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            && copy.changes == changes
            && copy.read_at.elapsed() < TTL
        {
            return Ok(copy.rules.clone());
        }
        // A change counted while this read runs leaves a copy that the next read refuses.
        let rules = Arc::new(Rules::load(conn).await?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Snapshot {
            read_at: Instant::now(),
            changes,
            rules: rules.clone(),
        });
        Ok(rules)
    }
}
