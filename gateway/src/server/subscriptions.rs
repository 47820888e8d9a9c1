//! Subscriptions over WebSocket (the `graphql-transport-ws` protocol that graphql-ws and Apollo
//! Client speak) at the GraphQL path, and over Server-Sent Events (GraphQL over SSE, "distinct
//! connections" mode: a POST with `Accept: text/event-stream`).
//!
//! Limits: a connection must send `connection_init` within `ws_init_timeout`; at most
//! `max_subscriptions_per_connection` operations per connection and `max_subscriptions` in all;
//! messages go through a bounded queue, and a client that stops reading for `slow_subscriber_timeout`
//! is disconnected instead of being buffered for.
//!
//! An operation runs as the connection's identity: the upgrade request's bearer token, or (as
//! browsers cannot set headers on a WebSocket) an `authorization` entry of `connection_init`'s
//! payload; an invalid token closes the connection with 4403. Each operation runs in its own task,
//! in that identity and the request's trace.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::AppState;
use crate::auth::identity::{self, Identity};
use crate::runtime::{is_request_error, GraphQLRequest};
use crate::telemetry::trace_context;

/// Subscription limits, from `[limits]`.
#[derive(Clone, Debug)]
pub struct SubscriptionLimits {
    pub max_total: Arc<Semaphore>,
    pub per_connection: usize,
    pub init_timeout: Duration,
    pub slow_subscriber_timeout: Duration,
    pub max_message_bytes: usize,
    pub max_connections: usize,
}

/// `GET /graphql` with `Upgrade: websocket`.
pub fn upgrade(app: Arc<AppState>, ws: WebSocketUpgrade, headers: HeaderMap) -> Response {
    let limits = app.subscription_limits();
    if app.websocket_count() >= limits.max_connections as i64 {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many WebSocket connections").into_response();
    }
    let who = identity::current();
    // The connection runs in a task of its own: it keeps the upgrade request's trace (its
    // operations' backend calls continue it) and its log span (request and trace ids).
    let trace = trace_context::current();
    let span = tracing::Span::current();
    ws.protocols(["graphql-transport-ws"])
        .max_message_size(limits.max_message_bytes)
        .on_upgrade(move |socket| tracing::Instrument::instrument(connection(app, socket, headers, who, trace), span))
        .into_response()
}

/// Why `connection_init` was refused.
enum InitRefused {
    Invalid,
    Unauthenticated,
}

/// The connection's identity after `connection_init`: the upgrade's, or the one of the token in
/// the payload (`{"authorization": "Bearer …"}`, any case of the key, with or without `Bearer`).
async fn init_identity(
    app: &AppState,
    payload: Option<&Value>,
    upgrade: Arc<Identity>,
) -> Result<Arc<Identity>, InitRefused> {
    let runtime = app.runtime();
    let Some(verifier) = runtime.verifier() else {
        return Ok(upgrade);
    };
    let token = payload.and_then(Value::as_object).and_then(|p| {
        p.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .and_then(|(_, v)| v.as_str())
    });
    match token {
        Some(t) => {
            let t = t.trim();
            let t = t
                .strip_prefix("Bearer ")
                .or_else(|| t.strip_prefix("bearer "))
                .unwrap_or(t)
                .trim();
            match verifier.verify(t).await {
                Ok(claims) => Ok(Arc::new(Identity { claims: Some(claims) })),
                Err(e) => {
                    tracing::info!(error = %e, "WebSocket token refused");
                    Err(InitRefused::Invalid)
                }
            }
        }
        None if verifier.required && upgrade.claims.is_none() => Err(InitRefused::Unauthenticated),
        None => Ok(upgrade),
    }
}

#[derive(Deserialize)]
struct ClientMessage {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    payload: Option<Value>,
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

fn text(v: Value) -> Message {
    Message::Text(v.to_string().into())
}

async fn connection(
    app: Arc<AppState>,
    socket: WebSocket,
    headers: HeaderMap,
    upgrade_identity: Arc<Identity>,
    trace: Option<Arc<trace_context::TraceContext>>,
) {
    let limits = app.subscription_limits();
    let (mut sink, mut source) = socket.split();
    let (out, mut queue) = mpsc::channel::<Message>(64);
    let writer = tokio::spawn(async move {
        while let Some(msg) = queue.recv().await {
            let closing = matches!(msg, Message::Close(_));
            if sink.send(msg).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });
    app.metrics_ws(1);

    // connection_init must come first, and in time.
    let init = tokio::time::timeout(limits.init_timeout, source.next()).await;
    let mut who = upgrade_identity;
    let acknowledged = match init {
        Ok(Some(Ok(Message::Text(t)))) => match serde_json::from_str::<ClientMessage>(&t) {
            Ok(m) if m.kind == "connection_init" => match init_identity(&app, m.payload.as_ref(), who.clone()).await {
                Ok(identity) => {
                    who = identity;
                    out.send(text(json!({"type": "connection_ack"}))).await.is_ok()
                }
                Err(InitRefused::Invalid) => {
                    let _ = out.send(close(4403, "Forbidden: the token is not valid")).await;
                    false
                }
                Err(InitRefused::Unauthenticated) => {
                    let _ = out.send(close(4403, "Forbidden: a bearer token is required")).await;
                    false
                }
            },
            _ => {
                let _ = out.send(close(4400, "expected connection_init")).await;
                false
            }
        },
        Err(_) => {
            let _ = out.send(close(4408, "Connection initialisation timeout")).await;
            false
        }
        _ => false,
    };
    let mut running: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut closing = app.closing();
    if acknowledged {
        loop {
            let msg = tokio::select! {
                m = source.next() => match m {
                    Some(Ok(m)) => m,
                    _ => break,
                },
                _ = wait_true(&mut closing) => {
                    let _ = out.send(close(1001, "the gateway is shutting down")).await;
                    break;
                }
            };
            let text_msg = match msg {
                Message::Text(t) => t,
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => continue,
                Message::Binary(_) => {
                    let _ = out
                        .send(close(4400, "binary messages are not part of the protocol"))
                        .await;
                    break;
                }
            };
            let Ok(m) = serde_json::from_str::<ClientMessage>(&text_msg) else {
                let _ = out.send(close(4400, "invalid message")).await;
                break;
            };
            running.retain(|_, task| !task.is_finished());
            match (m.kind.as_str(), m.id) {
                ("ping", _) => {
                    let _ = out.send(text(json!({"type": "pong"}))).await;
                }
                ("pong", _) => {}
                ("connection_init", _) => {
                    let _ = out.send(close(4429, "Too many initialisation requests")).await;
                    break;
                }
                ("subscribe", Some(id)) => {
                    if running.contains_key(&id) {
                        let _ = out.send(close(4409, "Subscriber for this id already exists")).await;
                        break;
                    }
                    let request = match m.payload.map(parse_request) {
                        Some(Ok(r)) => r,
                        _ => {
                            let _ = out.send(close(4400, "invalid subscribe payload")).await;
                            break;
                        }
                    };
                    if running.len() >= limits.per_connection {
                        let err = json!([{"message": format!("at most {} operations per connection", limits.per_connection), "extensions": {"code": "TOO_MANY_SUBSCRIPTIONS"}}]);
                        let _ = out.send(text(json!({"type": "error", "id": id, "payload": err}))).await;
                        continue;
                    }
                    let Ok(permit) = limits.max_total.clone().try_acquire_owned() else {
                        let err = json!([{"message": "the gateway serves its maximum number of subscriptions", "extensions": {"code": "TOO_MANY_SUBSCRIPTIONS"}}]);
                        let _ = out.send(text(json!({"type": "error", "id": id, "payload": err}))).await;
                        continue;
                    };
                    let task = tokio::spawn(in_request_scope(
                        who.clone(),
                        trace.clone(),
                        run_operation(
                            app.clone(),
                            id.clone(),
                            request,
                            headers.clone(),
                            out.clone(),
                            permit,
                            limits.slow_subscriber_timeout,
                        ),
                    ));
                    running.insert(id, task);
                }
                ("complete", Some(id)) => {
                    if let Some(task) = running.remove(&id) {
                        task.abort();
                    }
                }
                _ => {
                    let _ = out.send(close(4400, "unknown message")).await;
                    break;
                }
            }
        }
    }
    for (_, task) in running {
        task.abort();
    }
    drop(out);
    let _ = writer.await;
    app.metrics_ws(-1);
}

fn parse_request(payload: Value) -> Result<GraphQLRequest, ()> {
    let Value::Object(mut m) = payload else { return Err(()) };
    let query = match m.remove("query") {
        Some(Value::String(q)) => q,
        _ => return Err(()),
    };
    let operation_name = match m.remove("operationName") {
        Some(Value::String(s)) => Some(s),
        None | Some(Value::Null) => None,
        _ => return Err(()),
    };
    let variables = match m.remove("variables") {
        Some(Value::Object(v)) => v,
        None | Some(Value::Null) => Map::new(),
        _ => return Err(()),
    };
    let extensions = match m.remove("extensions") {
        Some(Value::Object(e)) => e,
        None | Some(Value::Null) => Map::new(),
        _ => return Err(()),
    };
    Ok(GraphQLRequest {
        query,
        operation_name,
        variables,
        extensions,
    })
}

/// Runs `f` (a spawned task) as the request of `who`, in the request's trace and in the log span
/// current where this is called (the request's: its lines keep the request and trace ids).
fn in_request_scope<F: std::future::Future<Output = ()>>(
    who: Arc<Identity>,
    trace: Option<Arc<trace_context::TraceContext>>,
    f: F,
) -> impl std::future::Future<Output = ()> {
    let span = tracing::Span::current();
    let scoped = async move {
        match trace {
            Some(t) => identity::scope(who, trace_context::scope(t, f)).await,
            None => identity::scope(who, f).await,
        }
    };
    tracing::Instrument::instrument(scoped, span)
}

/// Streams one operation's responses to the connection's queue.
async fn run_operation(
    app: Arc<AppState>,
    id: String,
    request: GraphQLRequest,
    headers: HeaderMap,
    out: mpsc::Sender<Message>,
    _permit: OwnedSemaphorePermit,
    slow: Duration,
) {
    crate::telemetry::metrics::subscriptions(1.0);
    let _gauge = scopeguard(|| crate::telemetry::metrics::subscriptions(-1.0));
    let runtime = app.runtime();
    let mut responses = runtime.subscribe(&request, &headers);
    let mut first = true;
    while let Some(resp) = responses.next().await {
        let msg = if first && is_request_error(&resp) {
            json!({"type": "error", "id": id, "payload": resp.errors})
        } else {
            json!({"type": "next", "id": id, "payload": resp})
        };
        let is_error = msg["type"] == "error";
        first = false;
        match tokio::time::timeout(slow, out.send(text(msg))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                tracing::warn!(operation = %id, "subscriber too slow: closing its connection");
                let _ = out.try_send(close(4429, "subscriber too slow"));
                return;
            }
        }
        if is_error {
            return;
        }
    }
    let _ = out.send(text(json!({"type": "complete", "id": id}))).await;
}

/// `POST /graphql` with `Accept: text/event-stream`: the operation's responses as SSE
/// (`event: next` per response, then `event: complete`).
pub async fn sse(app: Arc<AppState>, request: GraphQLRequest, headers: HeaderMap) -> Response {
    let limits = app.subscription_limits();
    let Ok(permit) = limits.max_total.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the gateway serves its maximum number of subscriptions",
        )
            .into_response();
    };
    let runtime = app.runtime();
    let (tx, mut rx) = mpsc::channel::<Result<String, std::io::Error>>(16);
    let slow = limits.slow_subscriber_timeout;
    let (who, trace) = (identity::current(), trace_context::current());
    let mut closing = app.closing();
    tokio::spawn(in_request_scope(who, trace, async move {
        let _permit = permit;
        let mut responses = runtime.subscribe(&request, &headers);
        loop {
            let resp = tokio::select! {
                r = responses.next() => match r {
                    Some(r) => r,
                    None => break,
                },
                // Shutting down: the stream ends (a client reconnects to another replica), as
                // WebSockets get their close frame; it must not hold the shutdown.
                _ = wait_true(&mut closing) => return,
            };
            let data = serde_json::to_string(&resp).unwrap_or_default();
            let event = format!("event: next\ndata: {data}\n\n");
            match tokio::time::timeout(slow, tx.send(Ok(event))).await {
                Ok(Ok(())) => {}
                _ => return,
            }
        }
        let _ = tx.send(Ok("event: complete\ndata:\n\n".to_string())).await;
    }));
    let body = Body::from_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// Runs `f` when dropped (also when the task is aborted).
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

/// Resolves when the watched flag turns true (never holding the watch's lock across an await).
async fn wait_true(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|c| *c).await;
}
