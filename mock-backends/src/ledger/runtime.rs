//! Starting and stopping the ledger (server and consumer) on its own, so
//! that it can be restarted while the rest of the bank keeps running.
//!
//! Stopping behaves like a crash: the consumer is aborted wherever it is
//! (perhaps between applying an event and acknowledging it), SSE clients
//! are cut, the server stops. Starting builds fresh in-memory state: from
//! the seed and a replay of the in-process log, or from Redis followed by
//! the consumer group's pending entries then the new ones.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::sse::Hub;
use super::state::Baseline;
use super::store::{RedisStore, Store};
use super::{consumer, router, Ledger};
use crate::common::bus::EventBus;
use crate::common::service::serve_killable;
use crate::BankError;

/// How long a stopping ledger server may take before it is aborted.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// `SO_SNDBUF` of the ledger's connections: with the client's queue, what
/// an SSE client that stops reading may pin before it is cut off.
const SEND_BUFFER: usize = 32 * 1024;

/// Everything needed to (re)start the ledger.
#[derive(Debug, Clone)]
pub(crate) struct LedgerSpec {
    pub baseline: Arc<Baseline>,
    pub bus: EventBus,
    pub redis_prefix: String,
    pub sse_buffer: usize,
    pub tracer: Option<Arc<crate::common::traces::ServiceTracer>>,
}

/// A running ledger.
#[derive(Debug)]
pub(crate) struct Running {
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    consumer: JoinHandle<()>,
    ledger: Arc<Ledger>,
}

/// Loads the state, then serves on `listener` and consumes the bus.
pub(crate) async fn launch(spec: &LedgerSpec, listener: TcpListener) -> Result<Running, BankError> {
    let seed = spec.baseline.fresh();
    let (store, aggregates, mode) = match spec.bus.redis_client() {
        None => (
            Store::Memory {
                applied: HashSet::new(),
            },
            seed.clone(),
            "in-process",
        ),
        Some(client) => {
            let (store, aggregates) = RedisStore::open(client, &spec.redis_prefix, &seed).await?;
            (Store::Redis(store), aggregates, "redis")
        }
    };
    let source = spec.bus.consumer().await?;
    let (shutdown, rx) = watch::channel(false);
    let ledger = Arc::new(Ledger {
        baseline: spec.baseline.clone(),
        state: RwLock::new(aggregates),
        hub: Hub::new(spec.sse_buffer),
        shutdown: rx.clone(),
        mode,
        duplicates: AtomicU64::new(0),
        unreadable: AtomicU64::new(0),
    });
    let app = router(ledger.clone(), rx.clone());
    let app = match &spec.tracer {
        Some(t) => crate::common::traces::layer(app, t.clone()),
        None => app,
    };
    let server = tokio::spawn(serve_killable(listener, Some(SEND_BUFFER), app, rx));
    let consumer = tokio::spawn(consumer::run(ledger.clone(), source, store, seed));
    Ok(Running {
        shutdown,
        server,
        consumer,
        ledger,
    })
}

/// Binds `addr`, retrying for a moment while a stopped server lets go of it.
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let mut attempt = 0;
    loop {
        match TcpListener::bind(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempt < 20 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

impl Running {
    /// Tells everything to stop, without waiting (for `Drop`).
    pub(crate) fn signal_stop(&self) {
        self.consumer.abort();
        self.shutdown.send_replace(true);
        self.ledger.hub.close_all();
    }

    /// Stops the consumer at once and the server within a few seconds.
    pub(crate) async fn stop(mut self) {
        self.signal_stop();
        // An aborted task ends with a cancellation error: expected.
        let _ = (&mut self.consumer).await;
        match tokio::time::timeout(STOP_GRACE, &mut self.server).await {
            Ok(Ok(Ok(()))) => tracing::debug!("ledger stopped"),
            Ok(Ok(Err(e))) => tracing::warn!("ledger server error: {e}"),
            Ok(Err(e)) => tracing::warn!("ledger server task failed: {e}"),
            Err(_) => {
                tracing::warn!("ledger did not stop in time; aborting");
                self.server.abort();
                let _ = (&mut self.server).await;
            }
        }
    }
}
