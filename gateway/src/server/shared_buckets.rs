//! Rate-limit buckets in Redis, shared by every replica: the GCRA algorithm (the one `governor`
//! runs in memory) as one Lua script, so each check is a single atomic round trip, timed by
//! Redis' own clock so replicas' clocks do not matter.
//!
//! Redis is never allowed to take the gateway down: a check waits at most `redis_timeout`; when
//! Redis is slow, unreachable or not connected yet, the replica decides with its own in-memory
//! buckets (each replica then allows the full rate) and says so in the logs, and Redis is set
//! aside for a second before it is tried again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::ConnectionManager;
use tokio::time::Instant;

/// GCRA: `tat` (theoretical arrival time, µs) per key. Allowed while `now >= tat + interval -
/// burst × interval`; then `tat` moves on by one interval. Returns -1 when allowed, else the µs
/// to wait.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local allow_at = tat + interval - burst * interval
if now < allow_at then return allow_at - now end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
return -1
";

/// What Redis answered.
pub enum Shared {
    Allowed,
    /// Over the rate: retry after this long.
    Wait(Duration),
    /// No answer in time (or no connection): decide locally.
    Unavailable,
}

pub struct SharedBuckets {
    conn: Arc<ArcSwapOption<ConnectionManager>>,
    script: redis::Script,
    prefix: String,
    timeout: Duration,
    interval_us: u64,
    burst: u32,
    set_aside_until: Mutex<Option<Instant>>,
    connecting: tokio::task::JoinHandle<()>,
}

impl Drop for SharedBuckets {
    fn drop(&mut self) {
        self.connecting.abort();
    }
}

impl SharedBuckets {
    /// Connects in the background (retrying); until then, checks are [`Shared::Unavailable`].
    pub fn start(url: &str, prefix: &str, timeout: Duration, rate: u32, burst: u32) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let conn: Arc<ArcSwapOption<ConnectionManager>> = Arc::default();
        let slot = conn.clone();
        let connecting = tokio::spawn(async move {
            let mut wait = Duration::from_millis(100);
            loop {
                match ConnectionManager::new(client.clone()).await {
                    Ok(c) => {
                        slot.store(Some(Arc::new(c)));
                        tracing::info!("connected to Redis for shared rate limits");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "Redis unavailable; rate limits are per replica until it answers")
                    }
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        });
        Ok(Self {
            conn,
            script: redis::Script::new(GCRA),
            prefix: prefix.to_string(),
            timeout,
            interval_us: (1_000_000 / u64::from(rate.max(1))).max(1),
            burst: burst.max(1),
            set_aside_until: Mutex::new(None),
            connecting,
        })
    }

    /// Takes one request from `key`'s shared bucket.
    pub async fn check(&self, key: &str) -> Shared {
        if let Ok(until) = self.set_aside_until.lock() {
            if until.is_some_and(|u| Instant::now() < u) {
                return Shared::Unavailable;
            }
        }
        let Some(mut conn) = self.conn.load().as_deref().cloned() else {
            return Shared::Unavailable;
        };
        let mut call = self.script.prepare_invoke();
        call.key(format!("{}{key}", self.prefix))
            .arg(self.interval_us)
            .arg(self.burst);
        match tokio::time::timeout(self.timeout, call.invoke_async::<i64>(&mut conn)).await {
            Ok(Ok(wait)) if wait < 0 => Shared::Allowed,
            Ok(Ok(wait)) => Shared::Wait(Duration::from_micros(wait.unsigned_abs())),
            Ok(Err(e)) => self.failed(e),
            Err(_) => self.failed("timed out"),
        }
    }

    fn failed(&self, e: impl std::fmt::Display) -> Shared {
        tracing::warn!(error = %e, "shared rate limit check failed; deciding with this replica's buckets for a second");
        if let Ok(mut until) = self.set_aside_until.lock() {
            *until = Some(Instant::now() + Duration::from_secs(1));
        }
        Shared::Unavailable
    }
}
