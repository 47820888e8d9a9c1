//! The event bus between the command side (the transfers service publishes
//! a [`TransferEvent`] for every transfer it finishes) and the query side
//! (the ledger consumes them).
//!
//! Publishing always appends to the in-process [`EventLog`], which never
//! drops anything. Then either the ledger reads that log directly (the
//! default, one process), or a relay copies it to a Redis stream that the
//! ledger reads through a consumer group ([`redis`], when a Redis URL is
//! configured).

pub mod log;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use ::redis::{Client, RedisResult};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use self::log::EventLog;
use self::redis::StreamConsumer;
use crate::common::events::TransferEvent;

/// Events per in-process batch.
const BATCH: usize = 256;
/// Timeout of the relay's commands.
const RELAY_TIMEOUT: Duration = Duration::from_secs(2);

/// Where events travel from the transfers service to the ledger.
#[derive(Debug, Clone)]
pub struct EventBus {
    log: Arc<EventLog>,
    redis: Option<RedisTransport>,
}

/// The Redis side of a bus.
#[derive(Debug, Clone)]
struct RedisTransport {
    client: Client,
    stream: String,
}

impl EventBus {
    /// The default: the ledger reads the transfers service's log in memory.
    pub fn in_process() -> Self {
        Self {
            log: Arc::default(),
            redis: None,
        }
    }

    /// Through the Redis stream `{prefix}:events` at `url` (checked for
    /// syntax only; nothing connects yet).
    pub fn redis(url: &str, prefix: &str) -> RedisResult<Self> {
        Ok(Self {
            log: Arc::default(),
            redis: Some(RedisTransport {
                client: Client::open(url)?,
                stream: self::redis::stream_key(prefix),
            }),
        })
    }

    /// The publisher's log (the outbox).
    pub fn log(&self) -> &Arc<EventLog> {
        &self.log
    }

    /// The Redis client, in distributed mode.
    pub fn redis_client(&self) -> Option<&Client> {
        self.redis.as_ref().map(|r| &r.client)
    }

    /// Publishes the event `make` builds from its sequence number.
    pub fn publish(&self, make: impl FnOnce(u64) -> TransferEvent) -> TransferEvent {
        self.log.append(make)
    }

    /// In distributed mode, connects and spawns the relay from the log to the
    /// stream (running until `stop`); `None` in process.
    pub async fn spawn_relay(&self, stop: watch::Receiver<bool>) -> RedisResult<Option<JoinHandle<()>>> {
        let Some(redis) = &self.redis else {
            return Ok(None);
        };
        let conn = self::redis::connect(&redis.client, RELAY_TIMEOUT).await?;
        let task = self::redis::relay(self.log.clone(), conn, redis.stream.clone(), stop);
        Ok(Some(tokio::spawn(task)))
    }

    /// A consumer for the ledger: from the log's start in process, from the
    /// group's position (pending entries first) with Redis.
    pub async fn consumer(&self) -> RedisResult<Consumer> {
        match &self.redis {
            None => Ok(Consumer::InProcess {
                log: self.log.clone(),
                offset: 0,
            }),
            Some(redis) => Ok(Consumer::Redis(
                StreamConsumer::open(&redis.client, redis.stream.clone()).await?,
            )),
        }
    }
}

/// One event handed to the ledger; acknowledge it once applied.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The event, or why the entry could not be read as one.
    pub event: Result<TransferEvent, String>,
    /// The stream entry id (Redis only).
    receipt: Option<String>,
}

/// The ledger's side of the bus.
#[derive(Debug)]
pub enum Consumer {
    InProcess { log: Arc<EventLog>, offset: usize },
    Redis(StreamConsumer),
}

impl Consumer {
    /// Waits for the next events (may be empty with Redis when none came).
    pub async fn next_batch(&mut self) -> RedisResult<Vec<Delivery>> {
        match self {
            Consumer::InProcess { log, offset } => {
                log.wait_beyond(*offset).await;
                let batch = log.since(*offset, BATCH);
                *offset += batch.len();
                Ok(batch
                    .into_iter()
                    .map(|event| Delivery {
                        event: Ok(event),
                        receipt: None,
                    })
                    .collect())
            }
            Consumer::Redis(stream) => Ok(stream
                .next_batch()
                .await?
                .into_iter()
                .map(|entry| Delivery {
                    event: entry.event,
                    receipt: Some(entry.id),
                })
                .collect()),
        }
    }

    /// Acknowledges a delivery (a no-op in process).
    pub async fn ack(&mut self, delivery: &Delivery) -> RedisResult<()> {
        match (self, &delivery.receipt) {
            (Consumer::Redis(stream), Some(id)) => stream.ack(id).await,
            _ => Ok(()),
        }
    }

    /// After a failed apply or ack: deliver the unacknowledged events again.
    pub fn rewind(&mut self) {
        if let Consumer::Redis(stream) = self {
            stream.rewind();
        }
    }
}
