//! Delivery-id dedupe stores (replay protection even for schemes without a signed
//! timestamp).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use iga_directive::Timestamp;

/// Remembers delivery ids for a while.
#[async_trait]
pub trait DedupeStore: std::fmt::Debug + Send + Sync {
    /// Record `key` as seen at `now` for `ttl`. Returns `true` when it was new (or
    /// its previous record expired), `false` when it is a replay. Must be atomic:
    /// two concurrent calls with the same key return `true` at most once.
    async fn check_and_insert(&self, key: &str, now: Timestamp, ttl: Duration) -> bool;

    /// Forget `key`: its delivery was verified but not processed (the handler failed
    /// to store it), so the sender's retry must be accepted rather than taken for a
    /// replay. The provided implementation keeps the record; stores override it.
    async fn remove(&self, key: &str) {
        let _ = key;
    }
}

/// In-memory [`DedupeStore`] with expiry. Expired entries are pruned when the store
/// is full; past `max_entries` live entries the soonest-expiring are evicted first
/// (an evicted id could then be replayed, so size it above the deliveries expected
/// per TTL).
#[derive(Debug)]
pub struct MemoryDedupeStore {
    inner: Mutex<HashMap<String, Timestamp>>,
    max_entries: usize,
}

impl Default for MemoryDedupeStore {
    fn default() -> Self {
        Self::new(100_000)
    }
}

impl MemoryDedupeStore {
    /// A store holding at most `max_entries` live ids.
    pub fn new(max_entries: usize) -> Self {
        Self {
            inner: Mutex::new(HashMap::new()),
            max_entries: max_entries.max(1),
        }
    }

    /// Entries held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.inner.lock().expect("dedupe lock").len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl DedupeStore for MemoryDedupeStore {
    async fn check_and_insert(&self, key: &str, now: Timestamp, ttl: Duration) -> bool {
        let mut m = self.inner.lock().expect("dedupe lock");
        if let Some(exp) = m.get(key)
            && *exp > now
        {
            return false;
        }
        m.remove(key);
        if m.len() >= self.max_entries {
            m.retain(|_, exp| *exp > now);
            while m.len() >= self.max_entries {
                let oldest = m
                    .iter()
                    .min_by_key(|(_, exp)| **exp)
                    .map(|(k, _)| k.clone())
                    .expect("non-empty");
                m.remove(&oldest);
            }
        }
        let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(365));
        m.insert(key.to_string(), now + ttl);
        true
    }

    async fn remove(&self, key: &str) {
        self.inner.lock().expect("dedupe lock").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iga_directive::{Clock, ManualClock};

    #[tokio::test]
    async fn expires_and_evicts() {
        let c = ManualClock::at_epoch();
        let s = MemoryDedupeStore::new(2);
        let ttl = Duration::from_secs(10);
        assert!(s.check_and_insert("a", c.now(), ttl).await);
        assert!(!s.check_and_insert("a", c.now(), ttl).await);
        c.advance(Duration::from_secs(10));
        assert!(
            s.check_and_insert("a", c.now(), ttl).await,
            "expired id is new again"
        );
        c.advance(Duration::from_secs(1));
        assert!(s.check_and_insert("b", c.now(), ttl).await);
        c.advance(Duration::from_secs(1));
        assert!(s.check_and_insert("c", c.now(), ttl).await);
        assert_eq!(s.len(), 2, "capacity respected");
        assert!(!s.check_and_insert("c", c.now(), ttl).await);
        assert!(!s.check_and_insert("b", c.now(), ttl).await);
        assert!(
            s.check_and_insert("a", c.now(), ttl).await,
            "soonest-expiring (a) was evicted"
        );
    }
}
