//! The shared second level: cached answers in Redis for every replica, and invalidations fanned
//! out over Redis pub/sub so a mutation on one replica evicts the entry on all.
//!
//! Redis is never on the critical path ([`RedisLink`]: bounded operations, set aside for a second
//! after a failure, connected in the background); requests go on from memory and backends. An
//! invalidation that cannot reach
//! Redis is not dropped: it is kept (deduplicated, bounded) and retried until Redis answers, so
//! other replicas and the shared entries never keep an answer a mutation made stale.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use serde_json::Value;
use tokio::time::Instant;

use super::store::{CacheStore, Entry};
use crate::backend::payload::Payload;
use crate::redis_link::RedisLink;

/// Beyond this many distinct pending invalidations, they collapse into one of everything.
const MAX_PENDING_INVALIDATIONS: usize = 1024;

pub struct SharedLevel {
    client: redis::Client,
    link: RedisLink,
    prefix: String,
    /// Invalidations (key prefixes) that could not be made yet, retried in the background.
    pending: Mutex<Vec<String>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for SharedLevel {
    fn drop(&mut self) {
        if let Ok(tasks) = self.tasks.lock() {
            tasks.iter().for_each(tokio::task::JoinHandle::abort);
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Escapes a key prefix for Redis' SCAN MATCH glob.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl SharedLevel {
    /// Connects in the background (retrying until Redis answers); usable at once (as a miss).
    pub fn start(url: &str, prefix: &str, timeout: Duration) -> Result<Arc<Self>, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let level = Arc::new(Self {
            link: RedisLink::start(client.clone(), timeout, "the shared cache"),
            client,
            prefix: prefix.to_string(),
            pending: Mutex::new(Vec::new()),
            tasks: Mutex::new(Vec::new()),
        });
        level.retry_pending_invalidations();
        Ok(level)
    }

    /// Listens for invalidations from other replicas and applies them to `store`'s memory.
    pub fn subscribe(self: &Arc<Self>, store: Weak<CacheStore>) {
        let client = self.client.clone();
        let channel = format!("{}invalidate", self.prefix);
        let task = tokio::spawn(async move {
            let mut wait = Duration::from_millis(100);
            loop {
                match client.get_async_pubsub().await {
                    Ok(mut pubsub) => {
                        if pubsub.subscribe(&channel).await.is_ok() {
                            wait = Duration::from_millis(100);
                            let mut messages = pubsub.on_message();
                            while let Some(msg) = messages.next().await {
                                let Some(store) = store.upgrade() else { return };
                                if let Ok(prefix) = msg.get_payload::<String>() {
                                    store.invalidate_local(&prefix);
                                }
                            }
                        }
                        tracing::warn!("Redis invalidation channel closed; reconnecting");
                    }
                    Err(e) => tracing::debug!(error = %e, "Redis pub/sub unavailable; retrying"),
                }
                if store.strong_count() == 0 {
                    return;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        });
        if let Ok(mut t) = self.tasks.lock() {
            t.push(task);
        }
    }

    fn entry_key(&self, key: &str) -> String {
        format!("{}c:{key}", self.prefix)
    }

    pub async fn get(&self, key: &str) -> Option<Entry> {
        let raw: Option<String> = self
            .link
            .run("get", redis::cmd("GET").arg(self.entry_key(key)).clone())
            .await?;
        let v: Value = serde_json::from_str(&raw?).ok()?;
        let ms = |k: &str| Duration::from_millis(v.get(k).and_then(Value::as_u64).unwrap_or(0));
        let age = Duration::from_millis(unix_ms().saturating_sub(v.get("stored").and_then(Value::as_u64)?));
        let stored = Instant::now().checked_sub(age)?;
        Some(Entry {
            payload: Arc::new(Payload::received(
                v.get("value").cloned().unwrap_or(Value::Null),
                v.get("bytes").and_then(Value::as_u64).unwrap_or(0) as usize,
                None,
            )),
            stored,
            fresh_for: ms("fresh"),
            stale_while_revalidate: ms("swr"),
            stale_if_error: ms("sie"),
        })
    }

    pub async fn put(&self, key: &str, entry: &Entry) {
        let keep = entry.fresh_for + entry.stale_while_revalidate.max(entry.stale_if_error);
        let doc = serde_json::json!({
            "value": entry.payload.value,
            "bytes": entry.payload.bytes,
            "stored": unix_ms().saturating_sub(entry.stored.elapsed().as_millis() as u64),
            "fresh": entry.fresh_for.as_millis() as u64,
            "swr": entry.stale_while_revalidate.as_millis() as u64,
            "sie": entry.stale_if_error.as_millis() as u64,
        });
        let cmd = redis::cmd("SET")
            .arg(self.entry_key(key))
            .arg(doc.to_string())
            .arg("PX")
            .arg(keep.as_millis().max(1) as u64)
            .clone();
        let _: Option<()> = self.link.run("set", cmd).await;
    }

    /// Deletes the matching entries in Redis and tells every replica to evict them; if Redis
    /// cannot be reached now, the invalidation is kept and made as soon as it can.
    pub async fn invalidate(&self, prefix: &str) {
        if !self.try_invalidate(prefix).await {
            self.keep_pending(prefix);
        }
    }

    fn keep_pending(&self, prefix: &str) {
        let Ok(mut pending) = self.pending.lock() else { return };
        if pending.iter().any(|p| prefix.starts_with(p.as_str())) {
            return;
        }
        pending.retain(|p| !p.starts_with(prefix));
        if pending.len() >= MAX_PENDING_INVALIDATIONS {
            // Too many distinct ones: one invalidation of everything covers them all.
            pending.clear();
            pending.push(String::new());
        } else {
            pending.push(prefix.to_string());
        }
        tracing::warn!(
            pending = pending.len(),
            "Redis unavailable; the invalidation will be made when it answers"
        );
    }

    /// Retries the pending invalidations every 250 ms while there are some and Redis is usable.
    fn retry_pending_invalidations(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let Some(level) = weak.upgrade() else { return };
                if level.link.connection().is_none() {
                    continue;
                }
                let due = level
                    .pending
                    .lock()
                    .map(|mut p| std::mem::take(&mut *p))
                    .unwrap_or_default();
                for (i, prefix) in due.iter().enumerate() {
                    if !level.try_invalidate(prefix).await {
                        due[i..].iter().for_each(|p| level.keep_pending(p));
                        break;
                    }
                    tracing::info!(prefix, "pending invalidation made in Redis");
                }
            }
        });
        if let Ok(mut t) = self.tasks.lock() {
            t.push(task);
        }
    }

    /// Whether every step (SCAN, DEL, PUBLISH) reached Redis.
    async fn try_invalidate(&self, prefix: &str) -> bool {
        let pattern = format!("{}*", glob_escape(&self.entry_key(prefix)));
        let mut cursor: u64 = 0;
        loop {
            let cmd = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .clone();
            let Some((next, keys)): Option<(u64, Vec<String>)> = self.link.run("scan", cmd).await else {
                return false;
            };
            if !keys.is_empty() {
                let deleted: Option<u64> = self.link.run("del", redis::cmd("DEL").arg(keys).clone()).await;
                if deleted.is_none() {
                    return false;
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let channel = format!("{}invalidate", self.prefix);
        let published: Option<u64> = self
            .link
            .run("publish", redis::cmd("PUBLISH").arg(channel).arg(prefix).clone())
            .await;
        published.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::glob_escape;

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escape("GET /a?x=[1]*"), "GET /a\\?x=\\[1\\]\\*");
    }
}
