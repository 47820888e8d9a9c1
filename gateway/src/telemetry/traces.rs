//! OpenTelemetry traces over OTLP (HTTP/protobuf or gRPC), off unless an endpoint is configured
//! (`[telemetry]` or the standard `OTEL_*` variables).
//!
//! The gateway records four kinds of span: the HTTP request (server), each GraphQL operation in
//! it, each backend call (cache, coalescing, breaker, attempts) and each HTTP attempt (client).
//! They are recorded when they end, with the ids of the gateway's own trace context
//! ([`super::trace_context`]), encoded to OTLP protobuf at once ([`super::otlp::encode`]), queued
//! ([`super::span_queue`]) and sent in batches ([`super::otlp::export`]).
//!
//! Why not `tracing-opentelemetry` and the SDK: that bridge mints span ids of its own and exports
//! every `tracing` span; here the ids in log lines, in the `traceparent` sent to backends and in
//! the exported spans must be the same. And the SDK's path (owned `SpanData`, converted to prost
//! structs at export) cost about 8 µs of CPU per request at 100% sampling in `bench overhead`,
//! where encoding borrowed fields straight into a reused buffer costs well under one.

use std::sync::Arc;
use std::time::Duration;

use super::otlp::encode::{Envelope, SpanRecord};
use super::otlp::export::{parse_compression, parse_headers, Exporter, ExporterConfig, ExporterError};
use super::span_queue::{QueueConfig, SpanQueue};
use super::trace_context::TraceId;

use crate::config::settings::{OtlpProtocol, TelemetryToml};

/// Why traces cannot be exported as configured.
#[derive(Debug, thiserror::Error)]
pub enum TracesError {
    #[error(transparent)]
    Exporter(#[from] ExporterError),
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
    fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Self {
        let arg = || {
            env("OTEL_TRACES_SAMPLER_ARG")
                .and_then(|a| a.parse::<f64>().ok())
                .filter(|r| (0.0..=1.0).contains(r))
                .unwrap_or(1.0)
        };
        let (ratio, follow_parent) = match env("OTEL_TRACES_SAMPLER").as_deref() {
            Some("always_on") => (1.0, false),
            Some("always_off") => (0.0, false),
            Some("traceidratio") => (arg(), false),
            Some("parentbased_always_off") => (0.0, true),
            Some("parentbased_traceidratio") => (arg(), true),
            _ => (1.0, true),
        };
        Self { ratio, follow_parent }
    }
}

/// Records the spans of sampled requests and exports them in batches.
pub struct Tracer {
    queue: Arc<SpanQueue>,
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

/// A non-empty environment variable, trimmed.
fn process_env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// What the tracer is built from: the `[telemetry]` table over the `OTEL_*` variables.
#[derive(Debug, Clone, PartialEq)]
pub struct TracesSetup {
    pub exporter: ExporterConfig,
    pub queue: QueueConfig,
    pub sampler: Sampler,
    /// `Resource` attributes: `OTEL_RESOURCE_ATTRIBUTES`, then `service.name` and the others.
    pub resource: Vec<(String, String)>,
}

impl TracesSetup {
    /// The setup `settings` and `env` ask for; `None` when traces are off.
    pub fn resolve(
        settings: &TelemetryToml,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, TracesError> {
        if env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || env("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"))
        {
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
        let Some(endpoint) = endpoint(settings, protocol, env) else {
            return Ok(None);
        };
        let headers = match env("OTEL_EXPORTER_OTLP_TRACES_HEADERS").or_else(|| env("OTEL_EXPORTER_OTLP_HEADERS")) {
            Some(text) => parse_headers(&text)?,
            None => Vec::new(),
        };
        let gzip = match env("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION").or_else(|| env("OTEL_EXPORTER_OTLP_COMPRESSION"))
        {
            Some(text) => parse_compression(&text)?,
            None => false,
        };
        let mut queue = QueueConfig::from_env(env);
        if let Some(delay) = &settings.export_delay {
            queue.delay = delay.0;
        }
        let timeout: Duration = settings.export_timeout.0;
        let sampler = match settings.sampling_ratio {
            Some(r) => Sampler {
                ratio: r.0,
                follow_parent: true,
            },
            None => Sampler::from_env(env),
        };
        let resource = resource(settings, env);
        Ok(Some(Self {
            exporter: ExporterConfig {
                transport: protocol,
                endpoint,
                headers,
                gzip,
                timeout,
            },
            queue,
            sampler,
            resource,
        }))
    }
}

/// Where spans go: the file's collector, else the variables' (`None`: nowhere, traces are off).
/// As the specification says, the signal's own variable is the full URL; the generic one is a
/// base that gets `/v1/traces` over HTTP.
fn endpoint(settings: &TelemetryToml, protocol: OtlpProtocol, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let configured = settings
        .otlp_endpoint
        .as_ref()
        .map(|e| e.get_ref().trim().to_string())
        .filter(|e| !e.is_empty());
    let (base, full) = match configured {
        Some(base) => (Some(base), None),
        None => (
            env("OTEL_EXPORTER_OTLP_ENDPOINT"),
            env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        ),
    };
    match (full, base, protocol) {
        (Some(full), ..) => Some(full),
        (None, Some(base), OtlpProtocol::HttpProtobuf) => Some(traces_url(&base)),
        (None, base, _) => base,
    }
}

/// `Resource` attributes: `OTEL_RESOURCE_ATTRIBUTES`, then `service.name` (the file's, else
/// `OTEL_SERVICE_NAME`, else `mosaic`) and the gateway's own, which win.
fn resource(settings: &TelemetryToml, env: &dyn Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    let service = settings
        .service_name
        .clone()
        .or_else(|| env("OTEL_SERVICE_NAME"))
        .unwrap_or_else(|| "mosaic".into());
    let mut resource: Vec<(String, String)> = env("OTEL_RESOURCE_ATTRIBUTES")
        .and_then(|text| parse_headers(&text).ok())
        .unwrap_or_default();
    for (key, value) in [
        ("service.name", service),
        ("service.version", env!("CARGO_PKG_VERSION").to_string()),
        ("telemetry.sdk.name", "mosaic".to_string()),
        ("telemetry.sdk.language", "rust".to_string()),
        ("telemetry.sdk.version", env!("CARGO_PKG_VERSION").to_string()),
    ] {
        resource.retain(|(k, _)| k != key);
        resource.push((key.to_string(), value));
    }
    resource
}

impl Tracer {
    /// The tracer `settings` and the environment ask for; `None` when traces are off. Must run
    /// inside the Tokio runtime (batches are sent from a task on it).
    pub fn from_settings(settings: &TelemetryToml) -> Result<Option<Arc<Self>>, TracesError> {
        let Some(setup) = TracesSetup::resolve(settings, &process_env)? else {
            return Ok(None);
        };
        let exporter = Exporter::new(&setup.exporter)?;
        let envelope = Envelope::new(&setup.resource, "mosaic", env!("CARGO_PKG_VERSION"));
        Ok(Some(Arc::new(Self {
            queue: SpanQueue::start(exporter, envelope, setup.queue),
            sampler: setup.sampler,
        })))
    }

    pub fn sampler(&self) -> Sampler {
        self.sampler
    }

    /// Queues a finished span for export (dropped, and counted, if the queue is full).
    pub fn record(&self, trace_id: TraceId, span: &SpanRecord<'_>) {
        self.queue.push(trace_id, span);
    }

    /// Sends what is queued and stops exporting (at shutdown).
    pub async fn shutdown(self: Arc<Self>) {
        self.queue.shutdown().await;
    }
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

    /// An environment of these variables only.
    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn resolve(settings: &TelemetryToml, env: &[(&str, &str)]) -> Option<TracesSetup> {
        TracesSetup::resolve(settings, &vars(env)).expect("a valid setup")
    }

    fn toml(text: &str) -> TelemetryToml {
        toml::from_str(text).expect("valid [telemetry]")
    }

    #[test]
    fn no_endpoint_or_a_disabled_sdk_means_no_traces() {
        assert!(resolve(&TelemetryToml::default(), &[]).is_none());
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        assert!(resolve(&TelemetryToml::default(), &[endpoint]).is_some());
        assert!(resolve(&TelemetryToml::default(), &[endpoint, ("OTEL_SDK_DISABLED", "true")]).is_none());
        assert!(resolve(&TelemetryToml::default(), &[endpoint, ("OTEL_TRACES_EXPORTER", "none")]).is_none());
    }

    #[test]
    fn endpoints_from_the_environment_follow_the_specification() {
        let none = TelemetryToml::default();
        let generic = resolve(&none, &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")]).expect("on");
        assert_eq!(generic.exporter.endpoint, "http://c:4318/v1/traces");
        assert_eq!(generic.exporter.transport, OtlpProtocol::HttpProtobuf);
        let full = resolve(
            &none,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4318"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:9999/custom/path"),
            ],
        )
        .expect("on");
        assert_eq!(full.exporter.endpoint, "http://c:9999/custom/path");
        let grpc = resolve(
            &none,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ],
        )
        .expect("on");
        assert_eq!(grpc.exporter.endpoint, "http://c:4317");
        assert_eq!(grpc.exporter.transport, OtlpProtocol::Grpc);
        let bad = TracesSetup::resolve(
            &none,
            &vars(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ]),
        );
        assert!(matches!(bad, Err(TracesError::Protocol(p)) if p == "http/json"));
    }

    #[test]
    fn the_file_wins_over_the_environment() {
        let settings = toml(
            r#"
            otlp_endpoint = "http://file:4318"
            otlp_protocol = "http/protobuf"
            sampling_ratio = 0.25
            service_name = "edge"
            export_delay = "250ms"
            "#,
        );
        let setup = resolve(
            &settings,
            &[
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://env:1/v1/traces"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_TRACES_SAMPLER", "always_off"),
                ("OTEL_SERVICE_NAME", "env-name"),
                ("OTEL_BSP_SCHEDULE_DELAY", "9000"),
            ],
        )
        .expect("on");
        assert_eq!(setup.exporter.endpoint, "http://file:4318/v1/traces");
        assert_eq!(setup.exporter.transport, OtlpProtocol::HttpProtobuf);
        assert_eq!(
            setup.sampler,
            Sampler {
                ratio: 0.25,
                follow_parent: true
            }
        );
        assert_eq!(setup.queue.delay, Duration::from_millis(250));
        assert!(setup.resource.contains(&("service.name".into(), "edge".into())));
    }

    #[test]
    fn headers_compression_batching_sampling_and_resource_come_from_otel_variables() {
        let setup = resolve(
            &TelemetryToml::default(),
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_EXPORTER_OTLP_HEADERS", "x-generic=1"),
                ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "api-key=s%3Dcret,x-tenant=t1"),
                ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
                ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
                ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1000"),
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
                ("OTEL_SERVICE_NAME", "bff"),
                (
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "deployment.environment=prod,service.name=overridden",
                ),
            ],
        )
        .expect("on");
        assert_eq!(
            setup.exporter.headers,
            [("api-key".into(), "s=cret".into()), ("x-tenant".into(), "t1".into())],
            "the traces variable wins over the generic one"
        );
        assert!(setup.exporter.gzip);
        assert_eq!(
            (setup.queue.max_queue, setup.queue.max_batch),
            (100, 100),
            "a batch fits the queue"
        );
        assert_eq!(
            setup.sampler,
            Sampler {
                ratio: 0.1,
                follow_parent: false
            }
        );
        let get = |k: &str| setup.resource.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("deployment.environment"), Some("prod"));
        assert_eq!(get("service.name"), Some("bff"));
        assert_eq!(setup.resource.iter().filter(|(k, _)| k == "service.name").count(), 1);
        let bad = TracesSetup::resolve(
            &TelemetryToml::default(),
            &vars(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli"),
            ]),
        );
        assert!(matches!(bad, Err(TracesError::Exporter(ExporterError::Compression(_)))));
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
