//! Server-Sent Events of district changes. A client first gets the current
//! snapshot, then one event per change, each as
//!
//! ```text
//! id: E000042
//! event: district
//! data: {"district":"Gangnam-gu","total_balance":123,"customers":31,"accounts":95}
//! ```
//!
//! with a `: ping` comment after 15 s of silence. Each client has a bounded
//! queue: a client that lets it fill up is disconnected (its connection
//! cut), never buffered without bound.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Serialize;
use tokio::sync::mpsc::{self, error::TrySendError};
use utoipa::ToSchema;

use super::state::DistrictSummary;
use super::Ledger;
use crate::common::conn::ConnHandle;
use crate::common::error::ApiError;
use crate::common::faults::shutdown_signalled;

/// The silence after which a `: ping` comment is sent.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// The SSE `event:` name of every district event.
pub const EVENT_NAME: &str = "district";
/// The `id:` of a snapshot taken before any run-time event.
const NO_EVENT_YET: &str = "E000000";

/// One change, serialised once for all subscribers.
#[derive(Debug)]
pub struct Change {
    id: String,
    district: String,
    json: String,
}

#[derive(Debug)]
struct Subscriber {
    /// `None` for every district.
    district: Option<String>,
    tx: mpsc::Sender<Arc<Change>>,
    conn: Option<ConnHandle>,
}

/// Counters of the hub since the ledger started.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct HubStats {
    /// Connected SSE clients.
    pub subscribers: usize,
    /// Clients cut off for not keeping up.
    pub slow_disconnects: u64,
}

/// Fans district changes out to the SSE clients.
#[derive(Debug)]
pub struct Hub {
    subscribers: Mutex<Vec<Subscriber>>,
    /// Queue length per client.
    capacity: usize,
    slow_disconnects: AtomicU64,
}

impl Hub {
    pub fn new(capacity: usize) -> Self {
        Self {
            subscribers: Mutex::new(Vec::new()),
            capacity: capacity.max(1),
            slow_disconnects: AtomicU64::new(0),
        }
    }

    fn subscribers(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        self.subscribers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a client of one district (or all); call it under the
    /// ledger's read lock, with the snapshot, so no change falls between.
    pub fn subscribe(&self, district: Option<String>, conn: Option<ConnHandle>) -> mpsc::Receiver<Arc<Change>> {
        let (tx, rx) = mpsc::channel(self.capacity);
        self.subscribers().push(Subscriber { district, tx, conn });
        rx
    }

    /// Queues the changed districts for their subscribers; a subscriber
    /// whose queue is full is dropped and its connection cut.
    pub fn publish(&self, event_id: &str, changed: &[DistrictSummary]) {
        if changed.is_empty() {
            return;
        }
        let changes: Vec<Arc<Change>> = changed.iter().map(|s| Arc::new(change(event_id, s))).collect();
        self.subscribers().retain(|sub| {
            let wanted = changes
                .iter()
                .filter(|c| sub.district.as_ref().is_none_or(|d| *d == c.district));
            for change in wanted {
                match sub.tx.try_send(change.clone()) {
                    Ok(()) => {}
                    Err(TrySendError::Closed(_)) => return false,
                    Err(TrySendError::Full(_)) => {
                        self.slow_disconnects.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(district = ?sub.district, "SSE client too slow: disconnecting it");
                        if let Some(conn) = &sub.conn {
                            conn.kill();
                        }
                        return false;
                    }
                }
            }
            true
        });
    }

    /// Drops every subscriber and cuts its connection (the ledger stops).
    pub fn close_all(&self) {
        for sub in self.subscribers().drain(..) {
            if let Some(conn) = sub.conn {
                conn.kill();
            }
        }
    }

    pub fn stats(&self) -> HubStats {
        let mut subscribers = self.subscribers();
        subscribers.retain(|s| !s.tx.is_closed());
        HubStats {
            subscribers: subscribers.len(),
            slow_disconnects: self.slow_disconnects.load(Ordering::Relaxed),
        }
    }
}

/// An SSE id must not contain line breaks or NUL.
fn clean_id(id: &str) -> String {
    id.chars().filter(|c| !matches!(c, '\n' | '\r' | '\0')).collect()
}

fn change(event_id: &str, summary: &DistrictSummary) -> Change {
    Change {
        id: clean_id(event_id),
        district: summary.district.clone(),
        json: serde_json::to_string(summary).unwrap_or_default(),
    }
}

fn event(change: &Change) -> Event {
    Event::default().id(&change.id).event(EVENT_NAME).data(&change.json)
}

/// The connection's kill switch, when served by a [`crate::common::conn::KillableListener`].
pub struct Conn(Option<ConnHandle>);

impl<S: Send + Sync> FromRequestParts<S> for Conn {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let handle = parts.extensions.get::<ConnectInfo<ConnHandle>>().map(|c| c.0.clone());
        Ok(Self(handle))
    }
}

type EventStream =
    Sse<axum::response::sse::KeepAliveStream<std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>>>>;

/// Snapshot of `district` (all when `None`), then its changes.
fn respond(ledger: &Ledger, district: Option<String>, conn: Option<ConnHandle>) -> Result<EventStream, ApiError> {
    let (snapshot, rx) = {
        let state = ledger.read();
        let id = state.transfers.last_event_id.as_deref().unwrap_or(NO_EVENT_YET);
        let summaries: Vec<&DistrictSummary> = match &district {
            Some(name) => vec![state.districts.get(name).ok_or(ApiError::NotFound)?],
            None => state.districts.values().collect(),
        };
        let snapshot: Vec<Change> = summaries.into_iter().map(|s| change(id, s)).collect();
        (snapshot, ledger.hub.subscribe(district, conn))
    };
    let first = futures::stream::iter(snapshot).map(|c| Ok(event(&c)));
    let changes = futures::stream::unfold(rx, |mut rx| async move {
        let change = rx.recv().await?;
        Some((Ok(event(&change)), rx))
    });
    let stream = first
        .chain(changes)
        .take_until(shutdown_signalled(ledger.shutdown.clone()));
    let stream: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> = Box::pin(stream);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(HEARTBEAT).text("ping")))
}

/// Live aggregates of one district as Server-Sent Events.
#[utoipa::path(get, path = "/districts/{district}/stream", tag = "ledger",
    params(("district" = String, Path, description = "District name, e.g. Gangnam-gu")),
    responses(
        (status = 200, description = "`event: district` events: the snapshot, then one per change; `: ping` every 15 s of silence", content_type = "text/event-stream", body = String),
        (status = 404, description = "Unknown district", body = crate::common::error::ErrorBody),
    ))]
pub async fn district_stream(
    State(ledger): State<Arc<Ledger>>,
    Path(district): Path<String>,
    Conn(conn): Conn,
) -> Result<EventStream, ApiError> {
    respond(&ledger, Some(district), conn)
}

/// Live aggregates of every district as Server-Sent Events.
#[utoipa::path(get, path = "/stream", tag = "ledger", responses(
    (status = 200, description = "`event: district` events: a snapshot of each district, then one per change", content_type = "text/event-stream", body = String),
))]
pub async fn all_stream(State(ledger): State<Arc<Ledger>>, Conn(conn): Conn) -> Result<EventStream, ApiError> {
    respond(&ledger, None, conn)
}
