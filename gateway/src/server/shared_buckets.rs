//! Rate-limit buckets in Redis, shared by every replica: the GCRA algorithm (the one `governor`
//! runs in memory) as one Lua script, so each check is a single atomic round trip, timed by
//! Redis' own clock so replicas' clocks do not matter.
//!
//! Redis is never allowed to take the gateway down ([`RedisLink`]): a check waits at most
//! `redis_timeout`; when Redis is slow, unreachable or not connected yet, the replica decides with
//! its own in-memory buckets (each replica then allows the full rate), and Redis is set aside for
//! a second before it is tried again.

use std::time::Duration;

use crate::redis_link::RedisLink;

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
    link: RedisLink,
    script: redis::Script,
    prefix: String,
    interval_us: u64,
    burst: u32,
}

impl SharedBuckets {
    /// Connects in the background; until then, checks are [`Shared::Unavailable`].
    pub fn start(url: &str, prefix: &str, timeout: Duration, rate: u32, burst: u32) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        Ok(Self {
            link: RedisLink::start(client, timeout, "shared rate limits"),
            script: redis::Script::new(GCRA),
            prefix: prefix.to_string(),
            interval_us: (1_000_000 / u64::from(rate.max(1))).max(1),
            burst: burst.max(1),
        })
    }

    /// Takes one request from `key`'s shared bucket.
    pub async fn check(&self, key: &str) -> Shared {
        let mut call = self.script.prepare_invoke();
        call.key(format!("{}{key}", self.prefix))
            .arg(self.interval_us)
            .arg(self.burst);
        let wait = self
            .link
            .bounded("rate limit check", |mut conn| async move {
                call.invoke_async::<i64>(&mut conn).await
            })
            .await;
        match wait {
            Some(wait) if wait < 0 => Shared::Allowed,
            Some(wait) => Shared::Wait(Duration::from_micros(wait.unsigned_abs())),
            None => Shared::Unavailable,
        }
    }
}
