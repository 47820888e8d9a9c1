//! The outermost layer of every backend's stack: each call's metrics and, when its trace is
//! recorded, its span.
//!
//! A call may end in the cache, join another call in flight, be refused by the bulkhead or the
//! breaker, or go out once or several times: the inner layers note what happened in the
//! request's [`CallNotes`], and this layer turns the notes into `mosaic_backend_*` metrics and one
//! span (backend, endpoint template, cache, coalescing, breaker state, attempts, last status).
//! The HTTP service records a child span per attempt ([`attempt_span`]).

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use super::breaker::Breaker;
use super::error::CallError;
use super::http::CallFuture;
use super::payload::Payload;
use super::request::BackendRequest;
use crate::telemetry::otlp::encode::{Attribute, SpanKind, SpanRecord};
use crate::telemetry::trace_context::{new_span_id, CallTrace};

/// What happened to one call inside the stack.
#[derive(Debug, Default)]
pub struct CallNotes {
    cache: AtomicU8,
    coalesced: AtomicBool,
    attempts: AtomicU32,
    status: AtomicU16,
    /// The endpoint template (`GET /accounts/{args.id}`), for attempt spans.
    endpoint: std::sync::OnceLock<Arc<str>>,
}

/// What the cache did with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CacheOutcome {
    /// Not cacheable, or no cache.
    None = 0,
    Hit = 1,
    /// An expired answer served while it is refreshed.
    Stale = 2,
    Miss = 3,
}

impl CacheOutcome {
    fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::None => "none",
            CacheOutcome::Hit => "hit",
            CacheOutcome::Stale => "stale",
            CacheOutcome::Miss => "miss",
        }
    }
}

impl CallNotes {
    pub fn cache(&self, outcome: CacheOutcome) {
        self.cache.store(outcome as u8, Ordering::Relaxed);
    }

    fn cache_outcome(&self) -> CacheOutcome {
        match self.cache.load(Ordering::Relaxed) {
            1 => CacheOutcome::Hit,
            2 => CacheOutcome::Stale,
            3 => CacheOutcome::Miss,
            _ => CacheOutcome::None,
        }
    }

    /// The call joined an identical one in flight.
    pub fn coalesced(&self) {
        self.coalesced.store(true, Ordering::Relaxed);
    }

    /// An HTTP attempt starts; returns its number (1 for the first).
    pub fn attempt(&self) -> u32 {
        self.attempts.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn status(&self, status: u16) {
        self.status.store(status, Ordering::Relaxed);
    }

    fn endpoint(&self) -> Option<&Arc<str>> {
        self.endpoint.get()
    }
}

/// Adds [`Observe`] around a backend's stack.
#[derive(Clone)]
pub struct ObserveLayer {
    backend: Arc<str>,
    breaker: Option<Arc<Breaker>>,
    /// `METHOD path-template` of every binding, by binding id.
    endpoints: Arc<[Arc<str>]>,
    /// Made on first use, once the metrics recorder is installed.
    series: Arc<std::sync::OnceLock<crate::telemetry::metrics::BackendSeries>>,
}

impl ObserveLayer {
    pub fn new(backend: &str, breaker: Option<Arc<Breaker>>, endpoints: Arc<[Arc<str>]>) -> Self {
        Self {
            backend: backend.into(),
            breaker,
            endpoints,
            series: Arc::default(),
        }
    }
}

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            layer: self.clone(),
        }
    }
}

/// Records each call's metrics and span.
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    layer: ObserveLayer,
}

impl<S> tower::Service<BackendRequest> for Observe<S>
where
    S: tower::Service<BackendRequest, Response = Arc<Payload>, Error = CallError>,
    S::Future: Send + 'static,
{
    type Response = Arc<Payload>;
    type Error = CallError;
    type Future = CallFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: BackendRequest) -> Self::Future {
        let notes = Arc::new(CallNotes::default());
        let endpoint = self.layer.endpoints.get(req.binding.0).cloned();
        if let Some(e) = &endpoint {
            let _ = notes.endpoint.set(e.clone());
        }
        req.notes = Some(notes.clone());
        // A recorded call gets a span of its own, parent of its attempts.
        let span = req.trace.clone().filter(|t| t.tracer.is_some()).map(|t| {
            let id = new_span_id();
            req.trace = Some(t.under(id));
            (t, id, SystemTime::now())
        });
        let breaker = self.layer.breaker.as_ref().map(|b| b.state().as_str());
        let layer = self.layer.clone();
        let started = Instant::now();
        let call = self.inner.call(req);
        Box::pin(async move {
            let result = call.await;
            let cache = notes.cache_outcome();
            let coalesced = notes.coalesced.load(Ordering::Relaxed);
            let attempts = notes.attempts.load(Ordering::Relaxed);
            let outcome = match &result {
                Ok(_) => "ok",
                Err(e) => e.public_code(),
            };
            let series = layer
                .series
                .get_or_init(|| crate::telemetry::metrics::BackendSeries::new(&layer.backend));
            if coalesced {
                series.coalesced();
            } else if !matches!(cache, CacheOutcome::Hit | CacheOutcome::Stale) {
                series.call(outcome, started.elapsed());
            }
            if tracing::enabled!(tracing::Level::DEBUG) {
                let operation = crate::telemetry::trace_context::operation();
                tracing::debug!(
                    operation = operation.as_ref().and_then(|o| o.name.as_deref()),
                    operation_type = operation.as_ref().map(|o| o.kind),
                    document = operation.as_ref().map(|o| &*o.document),
                    backend = %layer.backend,
                    endpoint = endpoint.as_deref().unwrap_or(""),
                    outcome,
                    status = notes.status.load(Ordering::Relaxed),
                    attempts,
                    cache = cache.as_str(),
                    coalesced,
                    breaker = breaker.unwrap_or("disabled"),
                    duration_ms = started.elapsed().as_secs_f64() * 1000.0,
                    "backend call"
                );
            }
            let span = match span {
                // Nothing went on the wire: counted on the operation's span instead, which keeps
                // tracing a cached query cheap (half the spans of the 2-level query).
                Some((trace, ..)) if cache == CacheOutcome::Hit => {
                    counted_hit(Some(&trace));
                    None
                }
                other => other,
            };
            if let Some((trace, span_id, start)) = span {
                let status = notes.status.load(Ordering::Relaxed);
                let name: &[&str] = match &endpoint {
                    Some(e) => &[&layer.backend, " ", e],
                    None => &[&layer.backend],
                };
                record(
                    &trace,
                    &SpanRecord {
                        name,
                        kind: SpanKind::Internal,
                        span_id,
                        parent_span_id: trace.parent_span_id,
                        parent_is_remote: false,
                        start,
                        end: SystemTime::now(),
                        attributes: &[
                            Some(Attribute::str("mosaic.backend", &layer.backend)),
                            Some(Attribute::str("mosaic.cache", cache.as_str())),
                            Some(Attribute::bool("mosaic.coalesced", coalesced)),
                            Some(Attribute::i64("mosaic.attempts", i64::from(attempts))),
                            Some(Attribute::str("mosaic.outcome", outcome)),
                            breaker.map(|state| Attribute::str("mosaic.breaker.state", state)),
                            endpoint.as_deref().map(|e| Attribute::str("mosaic.endpoint", e)),
                            (status != 0).then(|| Attribute::i64("http.response.status_code", i64::from(status))),
                        ],
                        error: result.as_ref().err().map(|e| e.public_code()),
                        links: &[],
                    },
                );
            }
            result
        })
    }
}

/// A call answered by a fresh cache entry gets no span of its own (nothing went on the wire): it
/// is counted on the operation's span (`mosaic.cache.hits`), when that trace is recorded.
pub fn counted_hit(trace: Option<&CallTrace>) {
    if let Some(trace) = trace.filter(|t| t.tracer.is_some()) {
        trace.cache_hits.fetch_add(1, Ordering::Relaxed);
    }
}

fn record(trace: &CallTrace, span: &SpanRecord<'_>) {
    if let Some(tracer) = &trace.tracer {
        tracer.record(trace.trace_id, span);
    }
}

/// An HTTP attempt being traced: its span id (the backend's parent) and start.
pub struct AttemptSpan {
    trace: Arc<CallTrace>,
    span_id: u64,
    start: SystemTime,
    attempt: u32,
}

/// Starts the span of one HTTP attempt of `req`, when its trace is recorded. Returns the
/// attempt's number, and the span with the id the `traceparent` must name.
pub fn attempt_span(req: &BackendRequest) -> (u32, Option<AttemptSpan>) {
    let attempt = req.notes.as_ref().map_or(1, |n| n.attempt());
    let span = req.trace.as_ref().filter(|t| t.tracer.is_some()).map(|t| AttemptSpan {
        trace: t.clone(),
        span_id: new_span_id(),
        start: SystemTime::now(),
        attempt,
    });
    (attempt, span)
}

impl AttemptSpan {
    pub fn span_id(&self) -> u64 {
        self.span_id
    }

    /// Ends the span: `url` is the instance's base URL (host and port only are kept).
    pub fn end(
        self,
        req_method: &http::Method,
        base: Option<&str>,
        notes: Option<&CallNotes>,
        result: Result<u16, &CallError>,
    ) {
        let url = base.and_then(|b| reqwest::Url::parse(b).ok());
        let template = notes.and_then(|n| n.endpoint()).map(|t| &**t);
        let path = template.map(|t| t.split_once(' ').map_or(t, |(_, p)| p));
        let (status, error_type) = match result {
            Ok(status) => (Some(status), None),
            Err(CallError::Status { status, .. }) => (Some(*status), result.err().map(CallError::public_code)),
            Err(e) => (None, Some(e.public_code())),
        };
        let error: Option<std::borrow::Cow<'static, str>> = match (status, error_type) {
            (_, Some(code)) => Some(code.into()),
            (Some(s), None) if s >= 500 => Some(format!("HTTP {s}").into()),
            _ => None,
        };
        let name: &[&str] = match &template {
            Some(t) => &[t],
            None => &[req_method.as_str()],
        };
        record(
            &self.trace,
            &SpanRecord {
                name,
                kind: SpanKind::Client,
                span_id: self.span_id,
                parent_span_id: self.trace.parent_span_id,
                parent_is_remote: false,
                start: self.start,
                end: SystemTime::now(),
                attributes: &[
                    Some(Attribute::str("http.request.method", req_method.as_str())),
                    Some(Attribute::i64("mosaic.attempt", i64::from(self.attempt))),
                    (self.attempt > 1)
                        .then(|| Attribute::i64("http.request.resend_count", i64::from(self.attempt - 1))),
                    url.as_ref()
                        .and_then(|u| u.host_str())
                        .map(|h| Attribute::str("server.address", h)),
                    url.as_ref()
                        .and_then(|u| u.port_or_known_default())
                        .map(|p| Attribute::i64("server.port", i64::from(p))),
                    path.map(|p| Attribute::str("url.template", p)),
                    status.map(|s| Attribute::i64("http.response.status_code", i64::from(s))),
                    error_type.map(|e| Attribute::str("error.type", e)),
                ],
                error: error.as_deref(),
                links: &[],
            },
        );
    }
}
