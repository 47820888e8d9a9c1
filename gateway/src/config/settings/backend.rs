//! `[backends.NAME]` and its tables: `retry`, `bulkhead`, `breaker`, `outlier`, `endpoints`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::HumanDuration;

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
