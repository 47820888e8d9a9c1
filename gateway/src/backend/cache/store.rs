//! The cache store: answers in memory (moka, bounded by bytes), optionally backed by Redis, with
//! the timestamps that tell fresh from stale.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use tokio::time::Instant;

use super::redis::SharedLevel;
use crate::backend::payload::Payload;

/// One cached answer.
#[derive(Debug)]
pub struct Entry {
    pub payload: Arc<Payload>,
    pub stored: Instant,
    pub fresh_for: Duration,
    pub stale_while_revalidate: Duration,
    pub stale_if_error: Duration,
}

impl Entry {
    fn kept_for(&self) -> Duration {
        self.fresh_for + self.stale_while_revalidate.max(self.stale_if_error)
    }
}

/// What a lookup found.
pub enum Lookup {
    Fresh(Arc<Payload>),
    /// Past its TTL but within stale-while-revalidate: serve it and refresh.
    Stale(Arc<Payload>),
    Miss,
}

/// Hit and miss counters.
#[derive(Default, Debug)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub stale_hits: AtomicU64,
    pub misses: AtomicU64,
    pub stores: AtomicU64,
    pub stale_if_error: AtomicU64,
    pub invalidations: AtomicU64,
    /// Entries removed for room or age (not by invalidation or replacement).
    pub evictions: Arc<AtomicU64>,
}

/// Per-entry expiry in moka: how long past `stored` the entry is kept at all.
struct KeepFor;

impl moka::Expiry<Arc<str>, Arc<Entry>> for KeepFor {
    fn expire_after_create(&self, _: &Arc<str>, entry: &Arc<Entry>, _: std::time::Instant) -> Option<Duration> {
        Some(entry.kept_for())
    }
}

pub struct CacheStore {
    memory: Cache<Arc<str>, Arc<Entry>>,
    shared: Option<Arc<SharedLevel>>,
    pub stats: CacheStats,
    /// Counts the changes to memory: every entry stored, invalidated or evicted moves it on,
    /// after the change. Whoever read it before looking answers up, and reads the same number
    /// later, knows each of those answers is still the entry memory holds (see [`Self::changes`]).
    changes: Arc<AtomicU64>,
}

impl CacheStore {
    pub fn new(max_bytes: u64, shared: Option<Arc<SharedLevel>>) -> Arc<Self> {
        let evictions = Arc::new(AtomicU64::new(0));
        let changes = Arc::new(AtomicU64::new(0));
        let (counted, changed) = (evictions.clone(), changes.clone());
        let memory = Cache::builder()
            .eviction_listener(move |_k, _v, cause| {
                changed.fetch_add(1, Ordering::Release);
                if matches!(
                    cause,
                    moka::notification::RemovalCause::Size | moka::notification::RemovalCause::Expired
                ) {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            })
            .max_capacity(max_bytes)
            .weigher(|k: &Arc<str>, e: &Arc<Entry>| (k.len() + e.payload.memory() + 64).min(u32::MAX as usize) as u32)
            .expire_after(KeepFor)
            .support_invalidation_closures()
            .build();
        Arc::new(Self {
            memory,
            shared,
            stats: CacheStats {
                evictions,
                ..CacheStats::default()
            },
            changes,
        })
    }

    /// Looks `key` up in memory: what memory alone decides, or `None` when it has no entry and
    /// Redis is to be asked ([`Self::lookup_shared`]). Synchronous, so that a fresh answer in
    /// memory is served without anything async.
    pub fn lookup_memory(&self, key: &Arc<str>) -> Option<Lookup> {
        match self.memory.get(key) {
            Some(e) => Some(self.judge(&e)),
            None if self.shared.is_some() => None,
            None => {
                self.stats.misses.fetch_add(1, Ordering::Relaxed);
                Some(Lookup::Miss)
            }
        }
    }

    /// A fresh answer in memory and the moment it stops being fresh, counted as a hit; `None`
    /// (counting nothing) for anything else.
    pub fn fresh_in_memory(&self, key: &str) -> Option<(Arc<Payload>, Instant)> {
        let entry = self.memory.get(key)?;
        let Lookup::Fresh(p) = Self::verdict(&entry) else {
            return None;
        };
        self.stats.hits.fetch_add(1, Ordering::Relaxed);
        Some((p, entry.stored + entry.fresh_for))
    }

    /// How many times memory has changed (an entry stored, invalidated or evicted). If it reads
    /// the same before a set of lookups and at some later moment, every entry those lookups
    /// found is still the one memory holds then, unless it has aged past its TTL (which the
    /// reader checks itself).
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// Counts `n` hits answered without a lookup, from answers found fresh earlier and known
    /// to be unchanged (see [`Self::changes`]).
    pub fn count_hits(&self, n: u64) {
        self.stats.hits.fetch_add(n, Ordering::Relaxed);
    }

    /// Moves [`Self::changes`] on: after the change, so that no reader can see the new count
    /// together with what memory held before.
    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Release);
    }

    /// Asks Redis (memory had no entry); what it has is kept in memory too.
    pub async fn lookup_shared(&self, key: &Arc<str>) -> Lookup {
        let entry = match &self.shared {
            Some(shared) => shared.get(key).await.map(|e| {
                let e = Arc::new(e);
                self.memory.insert(key.clone(), e.clone());
                self.changed();
                e
            }),
            None => None,
        };
        match entry {
            Some(e) => self.judge(&e),
            None => {
                self.stats.misses.fetch_add(1, Ordering::Relaxed);
                Lookup::Miss
            }
        }
    }

    /// Fresh, stale (within stale-while-revalidate) or too old, counted.
    fn judge(&self, e: &Entry) -> Lookup {
        self.counted(Self::verdict(e))
    }

    /// Fresh, stale (within stale-while-revalidate) or too old.
    fn verdict(e: &Entry) -> Lookup {
        let age = e.stored.elapsed();
        if age < e.fresh_for {
            Lookup::Fresh(e.payload.clone())
        } else if age < e.fresh_for + e.stale_while_revalidate {
            Lookup::Stale(e.payload.clone())
        } else {
            Lookup::Miss
        }
    }

    /// Counts a lookup's outcome in the stats.
    fn counted(&self, lookup: Lookup) -> Lookup {
        let counter = match &lookup {
            Lookup::Fresh(_) => &self.stats.hits,
            Lookup::Stale(_) => &self.stats.stale_hits,
            Lookup::Miss => &self.stats.misses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        lookup
    }

    /// An answer past its TTL but within stale-if-error, to serve when the backend fails.
    pub fn stale_if_error(&self, key: &Arc<str>) -> Option<Arc<Payload>> {
        let e = self.memory.get(key)?;
        let age = e.stored.elapsed();
        (age < e.fresh_for + e.stale_if_error.max(e.stale_while_revalidate)).then(|| {
            self.stats.stale_if_error.fetch_add(1, Ordering::Relaxed);
            e.payload.clone()
        })
    }

    pub async fn store(&self, key: Arc<str>, entry: Entry) {
        self.stats.stores.fetch_add(1, Ordering::Relaxed);
        let entry = Arc::new(entry);
        self.memory.insert(key.clone(), entry.clone());
        self.changed();
        if let Some(shared) = &self.shared {
            shared.put(&key, &entry).await;
        }
    }

    /// Evicts every entry whose key starts with `prefix`, here and (through Redis) everywhere.
    pub async fn invalidate_prefix(&self, prefix: &str) {
        self.invalidate_local(prefix);
        if let Some(shared) = &self.shared {
            shared.invalidate(prefix).await;
        }
    }

    /// Evicts matching entries from memory only (an invalidation received from another replica).
    pub fn invalidate_local(&self, prefix: &str) {
        self.stats.invalidations.fetch_add(1, Ordering::Relaxed);
        let prefix: Arc<str> = Arc::from(prefix);
        if self
            .memory
            .invalidate_entries_if(move |k, _| k.starts_with(&*prefix))
            .is_err()
        {
            self.memory.invalidate_all();
        }
        self.changed();
    }

    /// Entries and bytes in memory.
    pub fn size(&self) -> (u64, u64) {
        self.memory.run_pending_tasks();
        (self.memory.entry_count(), self.memory.weighted_size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fresh_for: Duration) -> Entry {
        Entry {
            payload: Arc::new(Payload::new(serde_json::json!({"id": 1}))),
            stored: Instant::now(),
            fresh_for,
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
        }
    }

    #[tokio::test]
    async fn every_entry_stored_or_invalidated_moves_the_change_count_on_and_lookups_do_not() {
        let store = CacheStore::new(1 << 20, None);
        let before = store.changes();
        let key: Arc<str> = Arc::from("b|GET /a\n#");
        store.store(key.clone(), entry(Duration::from_secs(60))).await;
        let stored = store.changes();
        assert!(stored > before, "a store is a change");
        let (payload, fresh_until) = store.fresh_in_memory(&key).expect("fresh");
        assert_eq!(payload.value, serde_json::json!({"id": 1}));
        assert!(fresh_until > Instant::now());
        assert!(store.lookup_memory(&key).is_some());
        assert_eq!(store.changes(), stored, "lookups change nothing");
        store.invalidate_local("b|GET /a");
        assert!(store.changes() > stored, "an invalidation is a change");
        assert!(store.fresh_in_memory(&key).is_none(), "and the entry is gone");
    }
}
