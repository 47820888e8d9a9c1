//! Where the ledger records what it applied. In process, in memory only (a
//! restarted ledger rebuilds its state by replaying the event log). With
//! Redis, in three keys under the configured prefix, updated atomically by
//! one Lua script per event, so that a restarted ledger loads them and goes
//! on exactly where it stopped:
//!
//! - `{prefix}:ledger:applied`: set of applied event ids (idempotence),
//! - `{prefix}:ledger:totals`: hash of the aggregates (`balance:<district>`,
//!   `completed`, `failed`, `external_calls`, `events_applied`, ...),
//! - `{prefix}:ledger:transfer_calls`: hash of external calls per run-time
//!   completed transfer.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Client, RedisResult};

use super::state::{field, Aggregates, Delta};
use crate::common::bus;

const TIMEOUT: Duration = Duration::from_secs(2);

/// Marks the event applied and adds its increments, unless it was already
/// applied. KEYS: applied set, totals hash, transfer calls hash. ARGV: event
/// id, transfer id (`''` for none), its calls, then field/increment pairs.
const APPLY: &str = r"
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
for i = 4, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[2], 'last_event_id', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[3], ARGV[2], ARGV[3]) end
return 1
";

/// The ledger's Redis keys under a prefix.
#[derive(Debug, Clone)]
struct Keys {
    applied: String,
    totals: String,
    calls: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Self {
            applied: format!("{prefix}:ledger:applied"),
            totals: format!("{prefix}:ledger:totals"),
            calls: format!("{prefix}:ledger:transfer_calls"),
        }
    }
}

/// Deletes the event stream and the ledger's keys: a bank starting afresh
/// (its accounts and transfers back to the seed) starts a fresh ledger too.
pub async fn reset(client: &Client, prefix: &str) -> RedisResult<()> {
    let keys = Keys::new(prefix);
    let mut conn = bus::redis::connect(client, TIMEOUT).await?;
    redis::cmd("DEL")
        .arg(bus::redis::stream_key(prefix))
        .arg(&keys.applied)
        .arg(&keys.totals)
        .arg(&keys.calls)
        .query_async::<i64>(&mut conn)
        .await
        .map(drop)
}

/// The ledger's record of applied events.
#[derive(Debug)]
pub enum Store {
    Memory { applied: HashSet<String> },
    Redis(RedisStore),
}

impl Store {
    /// Records `delta` unless its event was applied before; `true` when it
    /// is new (then the caller applies it in memory too).
    pub async fn apply(&mut self, delta: &Delta) -> RedisResult<bool> {
        match self {
            Store::Memory { applied } => Ok(applied.insert(delta.event_id.clone())),
            Store::Redis(store) => store.apply(delta).await,
        }
    }

    /// The aggregates as Redis has them (`None` in memory, where nothing
    /// can diverge).
    pub async fn reload(&mut self, seed: &Aggregates) -> RedisResult<Option<Aggregates>> {
        match self {
            Store::Memory { .. } => Ok(None),
            Store::Redis(store) => store.load(seed).await.map(Some),
        }
    }
}

/// The Redis side of [`Store`].
pub struct RedisStore {
    conn: ConnectionManager,
    keys: Keys,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects, stores the seed's aggregates unless present, and loads
    /// the aggregates as Redis has them.
    pub async fn open(client: &Client, prefix: &str, seed: &Aggregates) -> RedisResult<(Self, Aggregates)> {
        let keys = Keys::new(prefix);
        let mut conn = bus::redis::connect(client, TIMEOUT).await?;
        let mut init = redis::pipe();
        init.atomic();
        for (name, value) in seed.fields() {
            init.cmd("HSETNX").arg(&keys.totals).arg(name).arg(value).ignore();
        }
        init.query_async::<()>(&mut conn).await?;
        let mut store = Self { conn, keys };
        let aggregates = store.load(seed).await?;
        Ok((store, aggregates))
    }

    /// The seed's aggregates overwritten by what Redis holds.
    async fn load(&mut self, seed: &Aggregates) -> RedisResult<Aggregates> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HGETALL")
            .arg(&self.keys.totals)
            .cmd("HGETALL")
            .arg(&self.keys.calls);
        let (totals, calls): (HashMap<String, String>, HashMap<String, u32>) = pipe.query_async(&mut self.conn).await?;
        let mut aggregates = seed.clone();
        for (name, value) in totals {
            if name == field::LAST_EVENT_ID {
                aggregates.transfers.last_event_id = Some(value);
            } else if let Ok(value) = value.parse::<i64>() {
                aggregates.set(&name, value);
            } else {
                tracing::warn!(field = %name, %value, "ignoring a malformed ledger counter");
            }
        }
        aggregates.transfer_calls.extend(calls);
        Ok(aggregates)
    }

    async fn apply(&mut self, delta: &Delta) -> RedisResult<bool> {
        let mut eval = redis::cmd("EVAL");
        eval.arg(APPLY)
            .arg(3)
            .arg(&self.keys.applied)
            .arg(&self.keys.totals)
            .arg(&self.keys.calls)
            .arg(&delta.event_id);
        match &delta.transfer_calls {
            Some((id, calls)) => eval.arg(id).arg(calls),
            None => eval.arg("").arg(0),
        };
        for (name, value) in delta.increments() {
            eval.arg(name).arg(value);
        }
        let fresh: i64 = eval.query_async(&mut self.conn).await?;
        Ok(fresh == 1)
    }
}
