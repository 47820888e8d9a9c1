//! OpenTelemetry traces of the mock services: each service continues the
//! caller's W3C `traceparent` with a server span per business request and a
//! client span per call it makes to another service (transfers → accounts,
//! external bank), exported over OTLP/HTTP under its own `service.name`
//! (`bank-customers`, `bank-transfers`…). One transfer made through the
//! gateway thus reads as one trace across every service it touched.
//!
//! Only requests whose caller sampled the trace are recorded; a request
//! without `traceparent` is not traced (the mock is never the first hop).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{BatchConfigBuilder, SpanData, SpanEvents, SpanLinks, SpanProcessor};
use rand::Rng;

/// Where and how often the bank's spans are exported.
#[derive(Debug, Clone)]
pub struct TraceExport {
    /// The collector's OTLP/HTTP base URL, e.g. `http://127.0.0.1:4318`.
    pub endpoint: String,
    /// How long finished spans wait to be sent in a batch.
    pub delay: Duration,
}

/// Records the spans of one service.
pub struct ServiceTracer {
    processor: BatchSpanProcessor<Tokio>,
    scope: InstrumentationScope,
}

impl std::fmt::Debug for ServiceTracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceTracer")
    }
}

impl ServiceTracer {
    /// A tracer exporting as `bank-<service>`; must run inside Tokio.
    pub fn start(export: &TraceExport, service: &str) -> Result<Arc<Self>, opentelemetry_otlp::ExporterBuildError> {
        let endpoint = format!("{}/v1/traces", export.endpoint.trim_end_matches('/'));
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(opentelemetry_http::hyper::HyperClient::with_default_connector(
                Duration::from_secs(5),
                None,
            ))
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .build()?;
        let mut processor = BatchSpanProcessor::builder(exporter, Tokio)
            .with_batch_config(BatchConfigBuilder::default().with_scheduled_delay(export.delay).build())
            .build();
        processor.set_resource(
            &opentelemetry_sdk::Resource::builder()
                .with_service_name(format!("bank-{service}"))
                .build(),
        );
        Ok(Arc::new(Self {
            processor,
            scope: InstrumentationScope::builder("mock-bank").build(),
        }))
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        at: &SpanAt,
        name: String,
        kind: SpanKind,
        start: SystemTime,
        attributes: Vec<KeyValue>,
        failed: bool,
        parent_is_remote: bool,
    ) {
        self.processor.on_end(SpanData {
            span_context: SpanContext::new(
                TraceId::from(at.trace_id),
                SpanId::from(at.span_id),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::from(at.parent_span_id),
            parent_span_is_remote: parent_is_remote,
            span_kind: kind,
            name: Cow::Owned(name),
            start_time: start,
            end_time: SystemTime::now(),
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: if failed { Status::error("failed") } else { Status::Unset },
            instrumentation_scope: self.scope.clone(),
        });
    }

    /// Sends what is queued (at shutdown).
    pub async fn flush(self: &Arc<Self>) {
        let me = self.clone();
        let _ = tokio::task::spawn_blocking(move || me.processor.force_flush()).await;
    }
}

/// A span's place in its trace.
#[derive(Debug, Clone, Copy)]
struct SpanAt {
    trace_id: u128,
    span_id: u64,
    parent_span_id: u64,
}

/// The span a request is served in, for the calls it makes.
#[derive(Clone)]
struct Current {
    tracer: Arc<ServiceTracer>,
    trace_id: u128,
    span_id: u64,
}

tokio::task_local! {
    static CURRENT: Current;
}

fn new_span_id() -> u64 {
    rand::rng().random::<u64>() | 1
}

/// A sampled `traceparent`: (trace id, parent span id).
fn sampled_parent(request: &Request) -> Option<(u128, u64)> {
    let value = request.headers().get("traceparent")?.to_str().ok()?;
    let mut parts = value.trim().split('-');
    let (_version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let trace = u128::from_str_radix(trace, 16).ok().filter(|t| *t != 0)?;
    let span = u64::from_str_radix(span, 16).ok().filter(|s| *s != 0)?;
    let sampled = u8::from_str_radix(flags, 16).ok()? & 1 == 1;
    sampled.then_some((trace, span))
}

/// `app` with a server span per traced request.
pub fn layer(app: axum::Router, tracer: Arc<ServiceTracer>) -> axum::Router {
    app.layer(axum::middleware::from_fn_with_state(tracer, server_span))
}

/// Middleware: a server span per traced business request (admin endpoints
/// are not traced).
pub async fn server_span(State(tracer): State<Arc<ServiceTracer>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let admin = path.starts_with("/_") || path == "/health" || path == "/openapi.json";
    let Some((trace_id, parent)) = sampled_parent(&request).filter(|_| !admin) else {
        return next.run(request).await;
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| path.to_owned(), |m| m.as_str().to_owned());
    let method = request.method().to_string();
    let at = SpanAt {
        trace_id,
        span_id: new_span_id(),
        parent_span_id: parent,
    };
    let current = Current {
        tracer: tracer.clone(),
        trace_id,
        span_id: at.span_id,
    };
    let start = SystemTime::now();
    let response = CURRENT.scope(current, next.run(request)).await;
    let status = response.status().as_u16();
    tracer.record(
        &at,
        format!("{method} {route}"),
        SpanKind::Server,
        start,
        vec![
            KeyValue::new("http.request.method", method),
            KeyValue::new("http.route", route),
            KeyValue::new("http.response.status_code", i64::from(status)),
        ],
        status >= 500,
        true,
    );
    response
}

/// Sends `request` (named `name`, e.g. `POST /verify`) with the current
/// trace continued, recording a client span when the request is traced.
pub async fn send(request: reqwest::RequestBuilder, name: &str) -> reqwest::Result<reqwest::Response> {
    let Ok(current) = CURRENT.try_with(Clone::clone) else {
        return request.send().await;
    };
    let at = SpanAt {
        trace_id: current.trace_id,
        span_id: new_span_id(),
        parent_span_id: current.span_id,
    };
    let traceparent = format!("00-{:032x}-{:016x}-01", at.trace_id, at.span_id);
    let start = SystemTime::now();
    let result = request.header("traceparent", traceparent).send().await;
    let (status, failed) = match &result {
        Ok(r) => (Some(r.status().as_u16()), r.status().is_server_error()),
        Err(_) => (None, true),
    };
    let mut attributes = vec![KeyValue::new(
        "http.request.method",
        name.split(' ').next().unwrap_or("").to_owned(),
    )];
    if let Some(s) = status {
        attributes.push(KeyValue::new("http.response.status_code", i64::from(s)));
    }
    current
        .tracer
        .record(&at, name.to_owned(), SpanKind::Client, start, attributes, failed, false);
    result
}
