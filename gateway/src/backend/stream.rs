//! Backend event streams for subscriptions: a backend's Server-Sent Events endpoint read as a
//! stream of JSON values, reconnected (with `Last-Event-ID`) when it drops.
//!
//! Back-pressure is end to end: values go through a small bounded channel, so a subscriber that
//! does not keep up stops the reading of the backend stream instead of growing a buffer.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::stream::BoxStream;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use super::error::CallError;
use super::request::BackendRequest;
use super::BackendClients;

/// What a subscription receives from its backend stream.
#[derive(Debug, Clone)]
pub enum StreamItem {
    /// An event's data.
    Value(Value),
    /// The stream dropped and was re-established: updates may have been missed in between.
    Reconnected,
    /// The stream could not be (re-)established; it ends.
    Failed(CallError),
}

/// Attempts to re-establish a dropped stream before giving up.
const RECONNECT_ATTEMPTS: u32 = 8;

/// Opens the event stream `req` names.
pub fn open(clients: &BackendClients, req: BackendRequest) -> BoxStream<'static, StreamItem> {
    let client = clients.client(req.backend);
    let http = client.http.clone();
    let instances = client.instances.clone();
    let breaker = client.breaker.clone();
    let (tx, mut rx) = mpsc::channel::<StreamItem>(16);
    // The reader outlives this call: it keeps the subscribing request's log span.
    let span = tracing::Span::current();
    let reader = async move {
        let mut last_id: Option<String> = None;
        let mut connected_once = false;
        let mut failures = 0u32;
        loop {
            if breaker
                .as_ref()
                .is_some_and(|b| b.state() == super::breaker::BreakerState::Open)
            {
                let _ = tx.send(StreamItem::Failed(CallError::CircuitOpen)).await;
                return;
            }
            let base = instances.bases().into_iter().next().unwrap_or_default();
            let mut builder = http
                .get(format!("{base}{}", req.target))
                .header(http::header::ACCEPT, "text/event-stream");
            for (k, v) in &req.headers {
                builder = builder.header(k, v);
            }
            if let Some(id) = &last_id {
                builder = builder.header("last-event-id", id.as_str());
            }
            if let Some(t) = &req.trace {
                builder = super::http::propagate(builder, t, t.parent_span_id);
            }
            let error = match builder.send().await {
                Ok(resp) if resp.status().is_success() => {
                    failures = 0;
                    if connected_once && tx.send(StreamItem::Reconnected).await.is_err() {
                        return;
                    }
                    connected_once = true;
                    let mut events = resp.bytes_stream().eventsource();
                    loop {
                        tokio::select! {
                            _ = tx.closed() => return,
                            next = events.next() => match next {
                                Some(Ok(event)) => {
                                    if !event.id.is_empty() {
                                        last_id = Some(event.id.clone());
                                    }
                                    let Ok(value) = serde_json::from_str::<Value>(&event.data) else { continue };
                                    if tx.send(StreamItem::Value(value)).await.is_err() {
                                        return;
                                    }
                                }
                                Some(Err(e)) => break CallError::InvalidBody(e.to_string()),
                                None => break CallError::Connect("stream ended".into()),
                            }
                        }
                    }
                }
                Ok(resp) => CallError::Status {
                    status: resp.status().as_u16(),
                    retry_after: None,
                    body: None,
                },
                Err(e) if e.is_timeout() => CallError::Timeout,
                Err(e) => CallError::Connect(e.to_string()),
            };
            failures += 1;
            tracing::warn!(target_path = %req.target, error = %error, attempt = failures, "backend event stream dropped");
            if failures > RECONNECT_ATTEMPTS || matches!(error, CallError::Status { status, .. } if status < 500) {
                let _ = tx.send(StreamItem::Failed(error)).await;
                return;
            }
            let wait = Duration::from_millis(100 * 2u64.pow(failures.min(6)));
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    };
    tokio::spawn(tracing::Instrument::instrument(reader, span));
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}
