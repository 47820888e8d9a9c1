//! The typed model of `mosaic.toml`: server, limits, request headers and backends.
//!
//! Pure data with serde defaults; `deny_unknown_fields` everywhere so a typo is an error with a
//! location, not a silently ignored key. Cross-checks against the schema belong to `plan`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

mod backend;
mod sections;

pub use backend::*;
pub use sections::*;

/// The whole `mosaic.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// SDL files or directories (all `*.graphql` inside), relative to the config file.
    pub schema: Vec<Spanned<String>>,
    pub server: ServerSettings,
    pub limits: LimitSettings,
    pub request: RequestSettings,
    pub cache: CacheToml,
    pub security: SecurityToml,
    pub auth: AuthToml,
    pub rate_limit: RateLimitToml,
    pub telemetry: TelemetryToml,
    pub log: LogToml,
    pub federation: FederationToml,
    /// Settings every backend starts from (`[backend_defaults]`): headers, timeouts, resilience.
    /// A backend's own keys win; `url`, `urls`, `discovery` and `endpoints` are per backend.
    pub backend_defaults: Option<Spanned<BackendSettings>>,
    pub backends: BTreeMap<String, Spanned<BackendSettings>>,
}

/// `[log]`: the gateway's own logs. The `MOSAIC_LOG` (or `RUST_LOG`) and `MOSAIC_LOG_FORMAT`
/// variables win over it. Read at start; a reload applies a changed `level`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogToml {
    /// A filter in `RUST_LOG` syntax: `"info"`, `"warn,mosaic_gateway::backend=debug"`.
    pub level: Spanned<String>,
    /// `"json"`, `"text"`, or `"auto"`: JSON unless stderr is a terminal.
    pub format: LogFormat,
    /// Lines waiting for the writer thread; when it is full, logging waits (lines are never
    /// dropped) and the wait is counted in `mosaic_log_lines_delayed_total`. At least 64.
    pub buffer_lines: usize,
}

impl Default for LogToml {
    fn default() -> Self {
        Self {
            level: Spanned::new(0..0, "info".to_string()),
            format: LogFormat::Auto,
            buffer_lines: 256 * 1024,
        }
    }
}

/// `[log] format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Json,
    Text,
}

/// `[telemetry]`: OpenTelemetry traces over OTLP. Off unless an endpoint is set here or in the
/// standard `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` variables; what
/// is set here wins over the environment. Read at start (a reload does not change it).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryToml {
    /// The collector's base URL, e.g. `http://otel-collector:4318` (HTTP) or `:4317` (gRPC).
    pub otlp_endpoint: Option<Spanned<String>>,
    /// `"http/protobuf"` or `"grpc"`; unset: `OTEL_EXPORTER_OTLP_PROTOCOL`, else HTTP.
    pub otlp_protocol: Option<OtlpProtocol>,
    /// The share of new traces recorded, 0.0–1.0; unset: `OTEL_TRACES_SAMPLER(_ARG)`, else all.
    /// A client's `traceparent` decision is followed (parent-based sampling).
    pub sampling_ratio: Option<Ratio>,
    /// `service.name` of the spans; unset: `OTEL_SERVICE_NAME`, else `mosaic`.
    pub service_name: Option<String>,
    /// How long finished spans wait to be sent in a batch; unset: `OTEL_BSP_SCHEDULE_DELAY`, else 5s.
    pub export_delay: Option<HumanDuration>,
    /// The longest one export may take.
    pub export_timeout: HumanDuration,
}

impl Default for TelemetryToml {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            otlp_protocol: None,
            sampling_ratio: None,
            service_name: None,
            export_delay: None,
            export_timeout: HumanDuration(Duration::from_secs(10)),
        }
    }
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum OtlpProtocol {
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    #[serde(rename = "grpc")]
    Grpc,
}

/// A number from 0.0 to 1.0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratio(pub f64);

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if (0.0..=1.0).contains(&v) {
            Ok(Ratio(v))
        } else {
            Err(serde::de::Error::custom(format!(
                "{v} is not a ratio: write a number from 0.0 (none) to 1.0 (all), e.g. 0.1"
            )))
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            schema: vec![Spanned::new(0..0, "schema".to_string())],
            server: ServerSettings::default(),
            limits: LimitSettings::default(),
            request: RequestSettings::default(),
            cache: CacheToml::default(),
            security: SecurityToml::default(),
            auth: AuthToml::default(),
            rate_limit: RateLimitToml::default(),
            telemetry: TelemetryToml::default(),
            log: LogToml::default(),
            federation: FederationToml::default(),
            backend_defaults: None,
            backends: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address the GraphQL endpoint listens on.
    pub listen: String,
    /// Path of the GraphQL endpoint (POST, GET and WebSocket).
    pub graphql_path: String,
    /// Serve the GraphiQL playground at `/`.
    pub playground: bool,
    /// Answer introspection queries.
    pub introspection: bool,
    /// Address of the admin listener (`/metrics` and the probes); empty: no admin listener.
    pub admin_listen: String,
    /// On SIGTERM, readiness turns 503 at once and requests are still served this long, so the
    /// load balancer stops sending before the listener closes.
    pub drain_delay: HumanDuration,
    /// After the drain delay, in-flight requests have this long to finish.
    pub shutdown_timeout: HumanDuration,
    /// Operations compiled before the gateway reports ready (files of GraphQL documents,
    /// relative to the config file).
    pub warmup: Vec<String>,
    /// Identical queries in flight at the same moment share one execution (and its response).
    pub coalesce_operations: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            graphql_path: "/graphql".into(),
            playground: true,
            introspection: true,
            admin_listen: "127.0.0.1:9090".into(),
            drain_delay: HumanDuration(Duration::from_secs(5)),
            shutdown_timeout: HumanDuration(Duration::from_secs(20)),
            warmup: Vec::new(),
            coalesce_operations: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Largest accepted HTTP request body.
    pub max_body_bytes: usize,
    /// Most operations in one batched (JSON array) request.
    pub max_batch_operations: usize,
    /// Compiled operation plans kept in memory (distinct documents × operation names).
    pub plan_cache_size: u64,
    /// Deepest selection nesting accepted.
    pub max_depth: usize,
    /// Largest query document accepted, in bytes.
    pub max_query_bytes: usize,
    /// Most tokens in a query document.
    pub max_tokens: usize,
    /// Most aliases in an operation.
    pub max_aliases: usize,
    /// Most root fields in an operation.
    pub max_root_fields: usize,
    /// Highest cost of an operation (1 per field; list fields multiply by their size argument).
    pub max_complexity: u64,
    /// The size assumed for a list field without `first`/`last`/`limit`.
    pub default_list_size: u64,
    /// The deadline of one GraphQL request, shared by all its backend calls.
    pub request_timeout: HumanDuration,
    /// Subscriptions served at once, over all connections.
    pub max_subscriptions: usize,
    /// Operations one WebSocket connection may run at once.
    pub max_subscriptions_per_connection: usize,
    /// Time a WebSocket client has to send `connection_init`.
    pub ws_init_timeout: HumanDuration,
    /// A subscriber that does not read for this long is disconnected.
    pub slow_subscriber_timeout: HumanDuration,
    /// Largest WebSocket message accepted.
    pub max_ws_message_bytes: usize,
    /// WebSocket connections open at once; more are refused with 503.
    pub max_ws_connections: usize,
    /// Time a client has to send its whole request body.
    pub body_timeout: HumanDuration,
    /// Longest pause while a request body arrives (a body that promises more than it sends
    /// is cut off after this).
    pub body_read_timeout: HumanDuration,
    /// Largest single request header (name and value), as nginx's `large_client_header_buffers`.
    pub max_header_bytes: usize,
    /// Largest sum of all request headers (names and values), as Envoy's `max_request_headers_kb`.
    pub max_header_list_bytes: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            max_batch_operations: 32,
            plan_cache_size: 1024,
            max_depth: 15,
            max_query_bytes: 64 << 10,
            max_tokens: 10_000,
            max_aliases: 30,
            max_root_fields: 20,
            max_complexity: 50_000,
            default_list_size: 10,
            request_timeout: HumanDuration(Duration::from_secs(15)),
            max_subscriptions: 10_000,
            max_subscriptions_per_connection: 32,
            ws_init_timeout: HumanDuration(Duration::from_secs(10)),
            slow_subscriber_timeout: HumanDuration(Duration::from_secs(5)),
            max_ws_message_bytes: 64 << 10,
            max_ws_connections: 10_000,
            body_timeout: HumanDuration(Duration::from_secs(10)),
            body_read_timeout: HumanDuration(Duration::from_secs(3)),
            max_header_bytes: 8 << 10,
            max_header_list_bytes: 32 << 10,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestSettings {
    /// Client request headers that binding templates may read as `{{headers.NAME}}`.
    /// Lower-case names; nothing else from the client request reaches a template.
    pub headers: Vec<Spanned<String>>,
}

/// A duration written for humans: `"250ms"`, `"5s"`, `"1m 30s"`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl fmt::Debug for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map(HumanDuration).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?}: {e} (write e.g. \"500ms\", \"5s\", \"1m\")"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let s: Settings = toml::from_str("").expect("empty is valid");
        assert_eq!(s.server.graphql_path, "/graphql");
        assert!(s.backends.is_empty());
    }

    #[test]
    fn durations_are_human_strings() {
        let s: Settings = toml::from_str("[backends.a]\nurl = \"http://x\"\ntimeout = \"250ms\"\n").expect("valid");
        assert_eq!(s.backends["a"].get_ref().timeout.0, Duration::from_millis(250));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(toml::from_str::<Settings>("[server]\nlisten_on = \"x\"\n").is_err());
    }
}
