//! The innermost service: sends a [`BackendRequest`] with reqwest and parses the JSON answer.
//!
//! One reqwest client per backend (its own connection pool, keep-alive, HTTP/2 when offered,
//! rustls). Bodies are read up to the backend's size limit. 404 means "no such thing": the value
//! is `null`, not an error. Other non-2xx answers are errors carrying only their status.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use serde_json::Value;

use super::error::CallError;
use super::payload::{CacheControl, Payload};
use super::request::BackendRequest;
use crate::plan::BackendPlan;

/// Sends requests to one backend.
#[derive(Clone)]
pub struct HttpCall {
    client: reqwest::Client,
    max_bytes: usize,
}

impl HttpCall {
    pub fn new(plan: &BackendPlan) -> Result<Self, reqwest::Error> {
        // Answers are read as JSON, so JSON is preferred (APIs that negotiate would otherwise pick
        // their first type, often XML), and anything else accepted (`application/hal+json`, a
        // vendor type: a strict `application/json` would get those a 406). A binding's or a
        // forwarded `accept` header wins.
        let mut defaults = http::HeaderMap::new();
        defaults.insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static("application/json, */*;q=0.5"),
        );
        let client = reqwest::Client::builder()
            .default_headers(defaults)
            .connect_timeout(plan.connect_timeout)
            .pool_max_idle_per_host(plan.pool_max_idle)
            .tcp_nodelay(true)
            .no_proxy()
            .build()?;
        Ok(Self {
            client,
            max_bytes: plan.max_response_bytes,
        })
    }

    /// The underlying client (its connection pool), for calls outside the stack (streams).
    pub fn client(&self) -> reqwest::Client {
        self.client.clone()
    }
}

pub type CallFuture = Pin<Box<dyn Future<Output = Result<Arc<Payload>, CallError>> + Send>>;

impl tower::Service<BackendRequest> for HttpCall {
    type Response = Arc<Payload>;
    type Error = CallError;
    type Future = CallFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: BackendRequest) -> Self::Future {
        let client = self.client.clone();
        let max = self.max_bytes;
        Box::pin(async move { send(client, req, max).await })
    }
}

/// One attempt: its number and status noted for the call, its span recorded when traced.
async fn send(client: reqwest::Client, req: BackendRequest, max: usize) -> Result<Arc<Payload>, CallError> {
    let (_, span) = super::observe::attempt_span(&req);
    let notes = req.notes.clone();
    let method = req.method.clone();
    let base = req.base.clone();
    let result = send_once(client, req, max, span.as_ref().map(|s| s.span_id())).await;
    let status = match &result {
        Ok((_, status)) => Some(*status),
        Err(CallError::Status { status, .. }) => Some(*status),
        Err(_) => None,
    };
    if let (Some(n), Some(s)) = (&notes, status) {
        n.status(s);
    }
    if let Some(span) = span {
        span.end(
            &method,
            base.as_deref(),
            notes.as_deref(),
            result.as_ref().map(|(_, s)| *s),
        );
    }
    result.map(|(payload, _)| payload)
}

/// Continues `trace` in a backend request: `traceparent` naming `span_id` as the backend's parent,
/// and the client's `tracestate`.
pub(super) fn propagate(
    builder: reqwest::RequestBuilder,
    trace: &crate::telemetry::trace_context::CallTrace,
    span_id: u64,
) -> reqwest::RequestBuilder {
    let builder = builder.header("traceparent", trace.traceparent(span_id));
    match &trace.tracestate {
        Some(state) => builder.header("tracestate", state.clone()),
        None => builder,
    }
}

/// Most bytes of a 4xx answer's body kept for `errors:` rules.
const CLIENT_ERROR_BODY: usize = 64 << 10;

/// Sends the request; `span_id` is the attempt's span, the parent the backend sees.
async fn send_once(
    client: reqwest::Client,
    req: BackendRequest,
    max: usize,
    span_id: Option<u64>,
) -> Result<(Arc<Payload>, u16), CallError> {
    let url = match &req.base {
        Some(base) => format!("{base}{}", req.target),
        None => req.target.clone(),
    };
    let mut builder = client.request(req.method, &url);
    for (k, v) in req.headers {
        builder = builder.header(k, v);
    }
    if let Some(t) = &req.trace {
        builder = propagate(builder, t, span_id.unwrap_or(t.parent_span_id));
    }
    if let Some(body) = req.body {
        builder = builder.body(body);
    }
    let mut resp = builder.send().await.map_err(classify)?;
    let status = resp.status();
    let cache_control = resp
        .headers()
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(CacheControl::parse);
    let code = status.as_u16();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok((Arc::new(Payload::received(Value::Null, 0, cache_control)), code));
    }
    if !status.is_success() {
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(std::time::Duration::from_secs);
        // A client error's reason, for the fields that declare they show it (`errors:`).
        let body = if status.is_client_error() {
            let mut body = Vec::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                if body.len() + chunk.len() > CLIENT_ERROR_BODY {
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            std::str::from_utf8(&body).ok().map(std::sync::Arc::from)
        } else {
            None
        };
        return Err(CallError::Status {
            status: status.as_u16(),
            retry_after,
            body,
        });
    }
    if resp.content_length().is_some_and(|n| n as usize > max) {
        return Err(CallError::TooLarge(max));
    }
    let mut body = Vec::with_capacity(resp.content_length().unwrap_or(1024) as usize);
    while let Some(chunk) = resp.chunk().await.map_err(classify)? {
        if body.len() + chunk.len() > max {
            return Err(CallError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    if body.is_empty() {
        return Ok((Arc::new(Payload::received(Value::Null, 0, cache_control)), code));
    }
    let value: Value = serde_json::from_slice(&body).map_err(|e| CallError::InvalidBody(e.to_string()))?;
    Ok((Arc::new(Payload::received(value, body.len(), cache_control)), code))
}

fn classify(e: reqwest::Error) -> CallError {
    if e.is_timeout() {
        CallError::Timeout
    } else if e.is_connect() {
        CallError::Connect(e.to_string())
    } else if e.is_body() || e.is_decode() {
        CallError::InvalidBody(e.to_string())
    } else if e.is_builder() {
        CallError::Request(e.to_string())
    } else {
        CallError::Connect(e.to_string())
    }
}
