//! A small time-bounded cache for credential look-ups, so that checking a token does not
//! cost a database round trip on every request. Changes made through this instance
//! invalidate entries at once; other instances see them within the TTL.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Entries beyond this are dropped wholesale; the cache is an optimisation, not a store.
const MAX_ENTRIES: usize = 50_000;

/// A map whose entries expire after a fixed time.
pub struct TtlCache<K, V> {
    ttl: Duration,
    entries: RwLock<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// An empty cache whose entries live for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The cached value, if present and fresh.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    /// Stores a value.
    pub fn insert(&self, key: K, value: V) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), value));
    }

    /// Drops one entry.
    pub fn remove(&self, key: &K) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// Drops every entry whose value matches.
    pub fn remove_where(&self, mut matches: impl FnMut(&V) -> bool) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, (_, v)| !matches(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_can_be_removed() {
        let cache = TtlCache::new(Duration::from_millis(50));
        cache.insert(1, "a");
        cache.insert(2, "b");
        assert_eq!(cache.get(&1), Some("a"));
        cache.remove_where(|v| *v == "a");
        assert_eq!(cache.get(&1), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get(&2), None);
    }
}
