//! The tiers and settings as member reads see them. Both change rarely, and a member read
//! would otherwise fetch them on every request (two of its three round trips). Changes made
//! through this instance drop the copy at once; other instances see them within [`TTL`].
//! Writes never use the copy: they read both in their own transaction.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use diesel_async::AsyncPgConnection;
use futures_util::future::try_join;

use super::settings::SettingsRow;
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

/// One instance's copy of the [`Rules`].
#[derive(Default)]
pub struct RulesCache {
    current: RwLock<Option<(Instant, Arc<Rules>)>>,
    /// Bumped by every [`RulesCache::forget`], so that a read begun before a change does
    /// not store what it read after the change dropped the copy.
    generation: AtomicU64,
}

impl RulesCache {
    /// The rules, from the copy while it is fresh, else from the database.
    pub async fn get(&self, conn: &AsyncPgConnection) -> ApiResult<Arc<Rules>> {
        if let Some((at, rules)) = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            && at.elapsed() < TTL
        {
            return Ok(rules.clone());
        }
        let generation = self.generation.load(Ordering::Acquire);
        let rules = Arc::new(Rules::load(conn).await?);
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if self.generation.load(Ordering::Acquire) == generation {
            *current = Some((Instant::now(), rules.clone()));
        }
        Ok(rules)
    }

    /// Drops the copy: called after a change to the tiers or settings has committed.
    pub fn forget(&self) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        *current = None;
    }
}
