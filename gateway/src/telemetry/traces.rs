//! OpenTelemetry traces over OTLP (HTTP/protobuf or gRPC), off unless an endpoint is configured
//! (`[telemetry]` or the standard `OTEL_*` variables).
//!
//! The gateway records four kinds of span: the HTTP request (server), each GraphQL operation in
//! it, each backend call (cache, coalescing, breaker, attempts) and each HTTP attempt (client).
//! They are recorded when they end, with the ids of the gateway's own trace context
//! ([`super::trace_context`]), queued ([`super::span_queue`]) and sent in batches by the SDK's
//! OTLP exporter.
//!
//! Why not `tracing-opentelemetry`: that bridge mints span ids of its own and exports every
//! `tracing` span; here the ids in log lines, in the `traceparent` sent to backends and in the
//! exported spans must be the same, and the request path should pay for a sampled span with a
//! few field writes rather than a subscriber callback per internal span.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter, SpanLinks};

use super::span_queue::{QueueConfig, SpanQueue};

use crate::config::settings::{OtlpProtocol, TelemetryToml};

/// Why traces cannot be exported as configured.
#[derive(Debug, thiserror::Error)]
pub enum TracesError {
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("cannot build the OTLP HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("OTLP protocol {0:?} is not supported: use \"http/protobuf\" or \"grpc\"")]
    Protocol(String),
}

/// Which traces are recorded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampler {
    /// The share of new traces recorded.
    pub ratio: f64,
    /// Follow the client's decision when it sent a `traceparent` (parent-based sampling).
    pub follow_parent: bool,
}

impl Sampler {
    /// Whether a trace is recorded, given the client's decision (if any).
    pub fn sample(&self, parent: Option<bool>, trace_id: u128) -> bool {
        match parent {
            Some(sampled) if self.follow_parent => sampled,
            _ => {
                // As OpenTelemetry's TraceIdRatioBased: the low 63 bits of the id against the ratio.
                let low = (trace_id as u64) >> 1;
                (low as f64) < self.ratio * (1u64 << 63) as f64
            }
        }
    }

    /// From `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`; default parent-based, all.
    fn from_env() -> Self {
        let arg = || {
            std::env::var("OTEL_TRACES_SAMPLER_ARG")
                .ok()
                .and_then(|a| a.trim().parse::<f64>().ok())
                .filter(|r| (0.0..=1.0).contains(r))
                .unwrap_or(1.0)
        };
        let (ratio, follow_parent) = match std::env::var("OTEL_TRACES_SAMPLER").as_deref().map(str::trim) {
            Ok("always_on") => (1.0, false),
            Ok("always_off") => (0.0, false),
            Ok("traceidratio") => (arg(), false),
            Ok("parentbased_always_off") => (0.0, true),
            Ok("parentbased_traceidratio") => (arg(), true),
            _ => (1.0, true),
        };
        Self { ratio, follow_parent }
    }
}

/// One finished span.
pub struct SpanRecord {
    pub name: Cow<'static, str>,
    pub kind: SpanKind,
    pub span_id: u64,
    /// 0 for a root span.
    pub parent_span_id: u64,
    /// The parent is another process's span (the client's).
    pub parent_is_remote: bool,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<KeyValue>,
    /// Set when the span's work failed: a short description (never a URL or a body).
    pub error: Option<Cow<'static, str>>,
    /// Spans of other traces this one is related to (an operation it shared the execution of).
    pub links: Vec<(super::trace_context::TraceId, u64)>,
}

/// Records the spans of sampled requests and exports them in batches.
pub struct Tracer {
    queue: Arc<SpanQueue>,
    scope: InstrumentationScope,
    sampler: Sampler,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer").field("sampler", &self.sampler).finish()
    }
}

/// Whether `text` is an http(s) URL an exporter can send to.
pub fn valid_endpoint(text: &str) -> bool {
    reqwest::Url::parse(text).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl Tracer {
    /// The tracer `settings` and the environment ask for; `None` when traces are off. Must run
    /// inside the Tokio runtime (the exporter's batches are sent from a task on it).
    pub fn from_settings(settings: &TelemetryToml) -> Result<Option<Arc<Self>>, TracesError> {
        if env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || env("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"))
        {
            return Ok(None);
        }
        let configured = settings.otlp_endpoint.as_ref().map(|e| e.get_ref().trim().to_string());
        let from_env = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"));
        if configured.as_deref().is_none_or(str::is_empty) && from_env.is_none() {
            return Ok(None);
        }
        let protocol = match settings.otlp_protocol {
            Some(p) => p,
            None => match env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"))
                .as_deref()
            {
                None | Some("http/protobuf") => OtlpProtocol::HttpProtobuf,
                Some("grpc") => OtlpProtocol::Grpc,
                Some(other) => return Err(TracesError::Protocol(other.to_string())),
            },
        };
        let timeout = settings.export_timeout.0;
        let exporter = match protocol {
            OtlpProtocol::HttpProtobuf => {
                let client = reqwest::Client::builder()
                    .timeout(timeout)
                    .connect_timeout(timeout.min(Duration::from_secs(5)))
                    .no_proxy()
                    .build()?;
                let mut b = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_http_client(ReqwestExport(client))
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_timeout(timeout);
                if let Some(base) = configured.filter(|c| !c.is_empty()) {
                    b = b.with_endpoint(traces_url(&base));
                }
                b.build()?
            }
            OtlpProtocol::Grpc => {
                let mut b = opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_protocol(opentelemetry_otlp::Protocol::Grpc)
                    .with_timeout(timeout);
                if let Some(base) = configured.filter(|c| !c.is_empty()) {
                    b = b.with_endpoint(base);
                }
                b.build()?
            }
        };
        let mut exporter = exporter;
        let mut queue = QueueConfig::from_env();
        if let Some(delay) = &settings.export_delay {
            queue.delay = delay.0;
        }
        let service = settings
            .service_name
            .clone()
            .or_else(|| env("OTEL_SERVICE_NAME"))
            .unwrap_or_else(|| "mosaic".into());
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(service)
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        exporter.set_resource(&resource);
        let queue = SpanQueue::start(exporter, queue);
        let sampler = match settings.sampling_ratio {
            Some(r) => Sampler {
                ratio: r.0,
                follow_parent: true,
            },
            None => Sampler::from_env(),
        };
        Ok(Some(Arc::new(Self {
            queue,
            scope: InstrumentationScope::builder("mosaic")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            sampler,
        })))
    }

    pub fn sampler(&self) -> Sampler {
        self.sampler
    }

    /// Queues a finished span for export (dropped, and counted, if the queue is full).
    pub fn record(&self, trace_id: super::trace_context::TraceId, span: SpanRecord) {
        let context = sampled_context(trace_id, span.span_id);
        let status = match span.error {
            Some(description) => Status::Error { description },
            None => Status::Unset,
        };
        let mut links = SpanLinks::default();
        links.links = span
            .links
            .iter()
            .map(|(trace, span)| opentelemetry::trace::Link::with_context(sampled_context(*trace, *span)))
            .collect();
        self.queue.push(SpanData {
            span_context: context,
            parent_span_id: SpanId::from(span.parent_span_id),
            parent_span_is_remote: span.parent_is_remote,
            span_kind: span.kind,
            name: span.name,
            start_time: span.start,
            end_time: span.end,
            attributes: span.attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links,
            status,
            instrumentation_scope: self.scope.clone(),
        });
    }

    /// Sends what is queued and stops exporting (at shutdown).
    pub async fn shutdown(self: Arc<Self>) {
        self.queue.shutdown().await;
    }
}

/// The context of a recorded (sampled) span of ours.
fn sampled_context(trace_id: super::trace_context::TraceId, span_id: u64) -> SpanContext {
    SpanContext::new(
        opentelemetry::trace::TraceId::from(trace_id.0),
        SpanId::from(span_id),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    )
}

/// The OTLP/HTTP traces URL for a collector base URL (`…/v1/traces` unless already given).
fn traces_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    }
}

/// The exporter's HTTP client: the gateway's own reqwest (rustls, no proxy) rather than a second
/// HTTP stack; `opentelemetry-http` only ships adapters for other reqwest and hyper versions.
#[derive(Debug)]
struct ReqwestExport(reqwest::Client);

/// Collector answers are tiny; anything larger is cut off.
const MAX_COLLECTOR_ANSWER: usize = 1 << 20;

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for ReqwestExport {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let mut resp = self
            .0
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await?;
        let status = resp.status();
        let headers = std::mem::take(resp.headers_mut());
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            if body.len() + chunk.len() > MAX_COLLECTOR_ANSWER {
                break;
            }
            body.extend_from_slice(&chunk);
        }
        let mut answer = http::Response::new(bytes::Bytes::from(body));
        *answer.status_mut() = status;
        *answer.headers_mut() = headers;
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_sampling_follows_the_trace_id() {
        let none = Sampler {
            ratio: 0.0,
            follow_parent: false,
        };
        let all = Sampler {
            ratio: 1.0,
            follow_parent: false,
        };
        let half = Sampler {
            ratio: 0.5,
            follow_parent: false,
        };
        let ids: Vec<u128> = (0..1000u128)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835))
            .collect();
        assert!(ids.iter().all(|id| !none.sample(None, *id)));
        assert!(ids.iter().all(|id| all.sample(None, *id)));
        let kept = ids.iter().filter(|id| half.sample(None, **id)).count();
        assert!((400..600).contains(&kept), "{kept}");
        assert_eq!(
            half.sample(None, ids[7]),
            half.sample(None, ids[7]),
            "the same id, the same answer"
        );
    }

    #[test]
    fn a_parent_based_sampler_follows_the_client() {
        let s = Sampler {
            ratio: 0.0,
            follow_parent: true,
        };
        assert!(s.sample(Some(true), 5));
        assert!(!s.sample(Some(false), 5));
        assert!(!s.sample(None, 5));
    }

    #[test]
    fn the_traces_path_is_added_once() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/v1/traces"), "http://c:4318/v1/traces");
        assert!(valid_endpoint("http://c:4318"));
        assert!(!valid_endpoint("c:4318"));
        assert!(!valid_endpoint("ftp://c"));
    }
}
