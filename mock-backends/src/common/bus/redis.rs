//! The Redis Streams transport of the event bus. A relay copies the
//! transfers service's in-process log to the stream `{prefix}:events`
//! (`XADD`, field `event` = the event's JSON), retrying until Redis takes
//! each event; the ledger reads the stream through the consumer group
//! `ledger` (`XREADGROUP`: first its own pending entries from ID 0, then
//! `>`) and acknowledges each entry once applied (`XACK`).

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::StreamReadReply;
use redis::{Client, RedisError, RedisResult};
use tokio::sync::watch;

use super::log::EventLog;
use crate::common::events::TransferEvent;
use crate::common::faults::shutdown_signalled;

/// The consumer group the ledger reads with.
pub const GROUP: &str = "ledger";
/// The ledger's consumer name: the same across restarts, so that a
/// restarted ledger finds the entries it had read but not acknowledged.
pub const CONSUMER: &str = "ledger-1";
/// The stream entry field holding the event's JSON.
pub const FIELD: &str = "event";

/// Entries per `XADD` pipeline or `XREADGROUP`.
const BATCH: usize = 100;
/// How long one `XREADGROUP ... >` blocks.
const BLOCK: Duration = Duration::from_millis(1000);
/// Timeout of non-blocking commands.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnection attempts per command before it fails.
const CONNECT_RETRIES: usize = 2;
/// First and longest pause of the relay after a failed `XADD`.
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// The stream key under `prefix`.
pub fn stream_key(prefix: &str) -> String {
    format!("{prefix}:events")
}

/// A connection manager whose commands time out after `response_timeout`
/// (a blocking reader needs more than the block time). It gives up soon on
/// an unreachable Redis: the callers retry in their own loops.
pub async fn connect(client: &Client, response_timeout: Duration) -> RedisResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(response_timeout))
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_number_of_retries(CONNECT_RETRIES);
    client.get_connection_manager_with_config(config).await
}

/// Copies `log` to the stream in order until `stop` is raised; an event is
/// passed over only once Redis acknowledged its `XADD`. A retry after an
/// ambiguous failure may add an event twice: the ledger applies by event id.
pub async fn relay(log: Arc<EventLog>, mut conn: ConnectionManager, stream: String, stop: watch::Receiver<bool>) {
    let mut sent = 0;
    let mut pause = RETRY_MIN;
    loop {
        let batch = log.since(sent, BATCH);
        if batch.is_empty() {
            tokio::select! {
                () = log.wait_beyond(sent) => continue,
                () = shutdown_signalled(stop.clone()) => return,
            }
        }
        let mut pipe = redis::pipe();
        for event in &batch {
            match serde_json::to_string(event) {
                Ok(json) => pipe.cmd("XADD").arg(&stream).arg("*").arg(FIELD).arg(json).ignore(),
                Err(e) => {
                    tracing::error!(event = %event.event_id, "cannot serialise the event: {e}");
                    continue;
                }
            };
        }
        match pipe.query_async::<()>(&mut conn).await {
            Ok(()) => {
                sent += batch.len();
                pause = RETRY_MIN;
            }
            Err(e) => {
                tracing::warn!(%stream, "XADD failed, retrying in {pause:?}: {e}");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = shutdown_signalled(stop.clone()) => return,
                }
                pause = (pause * 2).min(RETRY_MAX);
            }
        }
    }
}

/// One stream entry delivered to the ledger.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The stream entry id, to acknowledge.
    pub id: String,
    /// The event, or why the entry could not be read as one.
    pub event: Result<TransferEvent, String>,
}

/// Reads the stream as consumer [`CONSUMER`] of group [`GROUP`].
pub struct StreamConsumer {
    /// Blocking reads only (a blocked command holds its connection).
    reader: ConnectionManager,
    acks: ConnectionManager,
    stream: String,
    /// True while re-reading our own pending entries (ID 0).
    pending: bool,
}

impl std::fmt::Debug for StreamConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamConsumer")
            .field("stream", &self.stream)
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl StreamConsumer {
    /// Connects and creates the group (from the stream's start) unless it
    /// exists. The first batches are this consumer's pending entries.
    pub async fn open(client: &Client, stream: String) -> RedisResult<Self> {
        let reader = connect(client, BLOCK + RESPONSE_TIMEOUT).await?;
        let mut acks = connect(client, RESPONSE_TIMEOUT).await?;
        create_group(&mut acks, &stream).await?;
        Ok(Self {
            reader,
            acks,
            stream,
            pending: true,
        })
    }

    /// The next entries: pending ones first, then new ones (blocking up to
    /// a second; an empty batch means none came).
    pub async fn next_batch(&mut self) -> RedisResult<Vec<Entry>> {
        let from = if self.pending { "0" } else { ">" };
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP").arg(GROUP).arg(CONSUMER).arg("COUNT").arg(BATCH);
        if !self.pending {
            cmd.arg("BLOCK").arg(BLOCK.as_millis().to_string());
        }
        cmd.arg("STREAMS").arg(&self.stream).arg(from);
        let reply: Option<StreamReadReply> = cmd.query_async(&mut self.reader).await?;
        let entries: Vec<Entry> = reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(|id| Entry {
                event: parse(&id.map),
                id: id.id,
            })
            .collect();
        if self.pending && entries.is_empty() {
            self.pending = false;
        }
        Ok(entries)
    }

    /// Acknowledges one entry.
    pub async fn ack(&mut self, id: &str) -> RedisResult<()> {
        redis::cmd("XACK")
            .arg(&self.stream)
            .arg(GROUP)
            .arg(id)
            .query_async::<i64>(&mut self.acks)
            .await
            .map(drop)
    }

    /// After an error: read our pending entries again before new ones.
    pub fn rewind(&mut self) {
        self.pending = true;
    }
}

/// `XGROUP CREATE stream ledger 0 MKSTREAM`, tolerating an existing group.
async fn create_group(conn: &mut ConnectionManager, stream: &str) -> RedisResult<()> {
    let created: Result<(), RedisError> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

fn parse(fields: &std::collections::HashMap<String, redis::Value>) -> Result<TransferEvent, String> {
    let raw = match fields.get(FIELD) {
        Some(redis::Value::BulkString(bytes)) => bytes.as_slice(),
        Some(redis::Value::SimpleString(text)) => text.as_bytes(),
        Some(other) => return Err(format!("field `{FIELD}` is not a string: {other:?}")),
        None => return Err(format!("no field `{FIELD}`")),
    };
    serde_json::from_slice(raw).map_err(|e| format!("field `{FIELD}` is not an event: {e}"))
}
