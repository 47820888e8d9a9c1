//! The typed model of `mosaic.toml`: server, limits, request headers and backends.
//!
//! Pure data with serde defaults; `deny_unknown_fields` everywhere so a typo is an error with a
//! location, not a silently ignored key. Cross-checks against the schema belong to `plan`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

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

/// `[security]`: what clients may send.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityToml {
    /// Automatic persisted queries (the Apollo protocol: a query sent once by hash).
    pub apq: bool,
    /// Persisted operations kept for APQ.
    pub apq_cache_size: u64,
    /// A manifest of trusted documents (by SHA-256): when set, only those operations run.
    pub trusted_documents: Option<Spanned<String>>,
    /// Mutations allowed (false for a read-only deployment).
    pub allow_mutations: bool,
    /// Allowed origins for CORS (`https://app.example.com`, or `*` for any without credentials);
    /// empty: no CORS headers (browsers refuse cross-origin calls).
    pub cors_origins: Vec<Spanned<String>>,
    pub cors_allow_credentials: bool,
}

impl Default for SecurityToml {
    fn default() -> Self {
        Self {
            apq: true,
            apq_cache_size: 10_000,
            trusted_documents: None,
            allow_mutations: true,
            cors_origins: Vec::new(),
            cors_allow_credentials: false,
        }
    }
}

/// `[auth]`: JWT verification. Tokens come as `Authorization: Bearer <jwt>`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthToml {
    /// HS256 shared secret, at least 32 bytes; `${ENV_VAR}` is read from the environment.
    pub hs256_secret: Option<Spanned<String>>,
    /// A JWKS file (RS256/ES256 public keys), relative to the config file.
    pub jwks_file: Option<Spanned<String>>,
    /// A JWKS URL, fetched at start and every `jwks_refresh`.
    pub jwks_url: Option<Spanned<String>>,
    pub jwks_refresh: HumanDuration,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: HumanDuration,
    /// Every request must carry a valid token.
    pub required: bool,
}

impl Default for AuthToml {
    fn default() -> Self {
        Self {
            hs256_secret: None,
            jwks_file: None,
            jwks_url: None,
            jwks_refresh: HumanDuration(Duration::from_secs(300)),
            issuer: None,
            audience: None,
            leeway: HumanDuration(Duration::from_secs(30)),
            required: false,
        }
    }
}

/// `[rate_limit]`: token buckets per client.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitToml {
    /// Sustained requests per second per client; 0 turns rate limiting off.
    pub requests_per_second: u32,
    /// Requests a client may send at once above the sustained rate.
    pub burst: u32,
    /// What identifies a client: `"ip"`, `"subject"` (the JWT's `sub`, else the IP) or
    /// `"header:NAME"` (e.g. an API key header, else the IP).
    pub key: Spanned<String>,
    /// `redis://…` (`${VAR}` read from the environment): the buckets live in Redis, shared by
    /// every replica; empty: in this process.
    pub redis_url: Spanned<String>,
    pub redis_key_prefix: String,
    /// The longest a check waits for Redis before deciding with this replica's own buckets.
    pub redis_timeout: HumanDuration,
}

impl Default for RateLimitToml {
    fn default() -> Self {
        Self {
            requests_per_second: 0,
            burst: 50,
            key: Spanned::new(0..0, "ip".into()),
            redis_url: Spanned::new(0..0, String::new()),
            redis_key_prefix: "mosaic:rl:".into(),
            redis_timeout: HumanDuration(Duration::from_millis(50)),
        }
    }
}

/// `[cache]`: the response cache (in memory, optionally shared through Redis).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheToml {
    pub enabled: bool,
    /// Memory the cached answers may take, in bytes of backend JSON.
    pub max_bytes: u64,
    /// For fields without `@cache`: serve an expired answer this long when the backend fails.
    pub stale_if_error: HumanDuration,
    /// Request header naming the user, for `@cache(scope: PRIVATE)` entries (until JWT auth).
    pub principal_header: Option<String>,
    pub redis: RedisToml,
}

impl Default for CacheToml {
    fn default() -> Self {
        Self {
            enabled: true,
            max_bytes: 64 << 20,
            stale_if_error: HumanDuration(Duration::ZERO),
            principal_header: None,
            redis: RedisToml::default(),
        }
    }
}

/// `[cache.redis]`: a second level shared by all replicas, and invalidations fanned out to them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisToml {
    /// `redis://host:6379/0`; empty: no Redis (the default).
    pub url: String,
    pub key_prefix: String,
    /// The longest a cache read or write may wait for Redis before going on without it.
    pub timeout: HumanDuration,
}

impl Default for RedisToml {
    fn default() -> Self {
        Self {
            url: String::new(),
            key_prefix: "mosaic:".into(),
            timeout: HumanDuration(Duration::from_millis(50)),
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

/// One REST backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackendSettings {
    /// Base URL, e.g. `http://customers.internal:8080`. Paths in bindings are appended.
    pub url: Spanned<String>,
    /// Total time for one call, including reading the body.
    pub timeout: HumanDuration,
    /// Time to establish a TCP (and TLS) connection.
    pub connect_timeout: HumanDuration,
    /// Coalesce identical idempotent calls in flight at the same moment across requests.
    pub singleflight: bool,
    /// Idle keep-alive connections kept per host.
    pub pool_max_idle: usize,
    /// Static headers added to every call to this backend.
    pub headers: BTreeMap<String, String>,
    /// Largest backend response body accepted.
    pub max_response_bytes: usize,
    /// Longest path and query string sent to this backend: a call whose arguments would make it
    /// longer fails with `BAD_USER_INPUT` instead of being sent (most servers refuse long URLs).
    pub max_url_bytes: usize,
    /// Several instances (instead of `url`): requests are balanced over them.
    pub urls: Vec<Spanned<String>>,
    /// `"dns"`: re-resolve `url`'s host every `dns_refresh`, one instance per address.
    pub discovery: Option<Spanned<String>>,
    pub dns_refresh: HumanDuration,
    /// Path of the health endpoint probed while the breaker is open.
    pub health_path: String,
    /// `/readyz` answers 503 while this backend is unavailable (its breaker open, or every
    /// instance ejected): for a backend without which no request can be answered.
    pub critical: bool,
    /// Client request headers passed on to this backend as they are (never hop-by-hop headers
    /// or `host`; `cookie` and `authorization` only when listed).
    pub forward_headers: Vec<String>,
    pub retry: RetryToml,
    pub bulkhead: BulkheadToml,
    pub breaker: BreakerToml,
    pub outlier: OutlierToml,
    /// `[backends.NAME.endpoints.GROUP]`: fields bound with `@http(backend: "NAME", endpoint:
    /// "GROUP")` get a client of their own — the backend's settings with these keys changed, and
    /// their own breaker, bulkhead, retry budget and metrics (as backend `NAME.GROUP`).
    pub endpoints: BTreeMap<String, Spanned<BackendSettings>>,
}

/// `[backends.NAME.retry]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryToml {
    /// Tries in all, the first included (1 disables retries).
    pub attempts: u32,
    pub backoff: HumanDuration,
    pub max_backoff: HumanDuration,
    /// Retries allowed as a share of calls over `budget_window` (0.1 = 10%).
    pub budget_ratio: f32,
    pub budget_window: HumanDuration,
    pub budget_min_per_second: u32,
    /// Retry throttling (gRPC's): a failed attempt takes a token, a successful one gives back
    /// `throttle_token_ratio`; retries stop while half the tokens or fewer are left. 0: off.
    pub throttle_max_tokens: u32,
    pub throttle_token_ratio: f32,
}

impl Default for RetryToml {
    fn default() -> Self {
        Self {
            attempts: 3,
            backoff: HumanDuration(Duration::from_millis(25)),
            max_backoff: HumanDuration(Duration::from_secs(1)),
            budget_ratio: 0.1,
            budget_window: HumanDuration(Duration::from_secs(10)),
            budget_min_per_second: 1,
            throttle_max_tokens: 10,
            throttle_token_ratio: 0.1,
        }
    }
}

/// `[backends.NAME.bulkhead]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BulkheadToml {
    pub max_concurrent: usize,
    pub max_queue: usize,
    pub queue_timeout: HumanDuration,
}

impl Default for BulkheadToml {
    fn default() -> Self {
        Self {
            max_concurrent: 128,
            max_queue: 256,
            queue_timeout: HumanDuration(Duration::from_millis(500)),
        }
    }
}

/// `[backends.NAME.breaker]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerToml {
    pub enabled: bool,
    /// `"count"` (the last `window_size` calls) or `"time"` (the calls of the last `window_duration`).
    pub window: Spanned<String>,
    pub window_size: usize,
    pub window_duration: HumanDuration,
    /// Open at this share of failed calls (0.5 = 50%).
    pub failure_rate: f64,
    /// Open at this share of slow calls (1.0 = only when all are slow).
    pub slow_call_rate: f64,
    pub slow_call_duration: HumanDuration,
    pub minimum_calls: usize,
    pub wait_in_open: HumanDuration,
    pub half_open_calls: usize,
    /// How often the health endpoint is polled while open ("0s": never).
    pub probe_interval: HumanDuration,
}

impl Default for BreakerToml {
    fn default() -> Self {
        Self {
            enabled: true,
            window: Spanned::new(0..0, "count".to_string()),
            window_size: 20,
            window_duration: HumanDuration(Duration::from_secs(10)),
            failure_rate: 0.5,
            slow_call_rate: 1.0,
            slow_call_duration: HumanDuration(Duration::from_secs(5)),
            minimum_calls: 10,
            wait_in_open: HumanDuration(Duration::from_secs(10)),
            half_open_calls: 3,
            probe_interval: HumanDuration(Duration::from_secs(1)),
        }
    }
}

/// `[backends.NAME.outlier]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutlierToml {
    pub consecutive_failures: u32,
    pub base_ejection: HumanDuration,
    pub max_ejection: HumanDuration,
    pub max_ejected_percent: u8,
}

impl Default for OutlierToml {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            base_ejection: HumanDuration(Duration::from_secs(5)),
            max_ejection: HumanDuration(Duration::from_secs(60)),
            max_ejected_percent: 50,
        }
    }
}

impl Default for BackendSettings {
    fn default() -> Self {
        Self {
            url: Spanned::new(0..0, String::new()),
            timeout: HumanDuration(Duration::from_secs(10)),
            connect_timeout: HumanDuration(Duration::from_secs(2)),
            singleflight: true,
            pool_max_idle: 64,
            headers: BTreeMap::new(),
            max_response_bytes: 16 << 20,
            max_url_bytes: 16 << 10,
            urls: Vec::new(),
            discovery: None,
            dns_refresh: HumanDuration(Duration::from_secs(10)),
            health_path: "/health".into(),
            critical: false,
            forward_headers: Vec::new(),
            retry: RetryToml::default(),
            bulkhead: BulkheadToml::default(),
            breaker: BreakerToml::default(),
            outlier: OutlierToml::default(),
            endpoints: BTreeMap::new(),
        }
    }
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
