//! Prometheus metrics: RED metrics per operation and per backend, breaker, retry, bulkhead and
//! cache figures, subscriptions, reloads and build info — with bounded label sets (operation names
//! are capped; no user ids, no raw paths).
//!
//! Events are recorded where they happen through the `metrics` facade; figures the layers already
//! count (breaker state, rejections, cache sizes) are read when `/metrics` is scraped.

use std::sync::{Mutex, OnceLock, RwLock};
use std::time::Duration;

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rustc_hash::FxHashMap;

/// Distinct operation names kept as labels; others are counted as "other".
const MAX_OPERATION_NAMES: usize = 200;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The series of one operation label: its request counter and latency histogram.
type Series = (Counter, Histogram);

/// Handles of the per-operation series, so serving a request builds no metric key and allocates
/// nothing: kind → operation label → series. Holds at most [`MAX_OPERATION_NAMES`] names (plus
/// "anonymous" and "other") per kind.
#[derive(Default)]
struct OperationSeries {
    by_kind: FxHashMap<&'static str, FxHashMap<Box<str>, Series>>,
}

impl OperationSeries {
    /// The series of `name` (of type `kind`), with the operation label it has.
    fn get(&mut self, name: Option<&str>, kind: &'static str) -> (&str, &Series) {
        let names = self.by_kind.entry(kind).or_default();
        let label = match name {
            None => "anonymous",
            Some(n) if names.contains_key(n) => n,
            Some(n) if names.len() < MAX_OPERATION_NAMES && n.len() <= 64 => n,
            Some(_) => "other",
        };
        if !names.contains_key(label) {
            let op = label.to_string();
            let series = (
                counter!("mosaic_operations_total", "operation" => op.clone(), "kind" => kind),
                histogram!("mosaic_operation_duration_seconds", "operation" => op, "kind" => kind),
            );
            names.insert(label.into(), series);
        }
        let (label, series) = names.get_key_value(label).expect("inserted above");
        (label, series)
    }
}

static OPERATION_SERIES: OnceLock<Mutex<OperationSeries>> = OnceLock::new();
/// `mosaic_backend_batch_size` per backend.
static BATCH_SIZES: OnceLock<RwLock<FxHashMap<Box<str>, Histogram>>> = OnceLock::new();
static IN_FLIGHT: OnceLock<Gauge> = OnceLock::new();

/// Installs the Prometheus recorder (once per process); `None` if another recorder is installed.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let latency = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("mosaic_backend_batch_size".into()),
                        &[1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0],
                    )
                });
            let handle = builder.ok()?.install_recorder().ok()?;
            start_upkeep(handle.clone());
            describe();
            gauge!("mosaic_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            Some(handle)
        })
        .clone()
}

/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Folds recorded histogram samples into their buckets every [`UPKEEP_EVERY`]. The recorder keeps
/// every sample until a scrape or an upkeep does this: without it, a gateway nobody scrapes grows
/// by a few bytes per request forever. A thread, not a task: the recorder may be installed before
/// (or without) a Tokio runtime, and the work is a few microseconds every few seconds.
fn start_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("mosaic-metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the metrics upkeep thread; histograms are folded at scrapes only");
    }
}

/// Counters and their `# HELP` text (what `promtool check metrics` asks for).
const COUNTERS: &[(&str, &str)] = &[
    ("mosaic_operations_total", "GraphQL operations served"),
    ("mosaic_operation_errors_total", "Errors in responses, by public code"),
    (
        "mosaic_backend_requests_total",
        "Backend calls made (after the cache and coalescing), by outcome",
    ),
    (
        "mosaic_backend_coalesced_total",
        "Backend calls that joined an identical call in flight",
    ),
    ("mosaic_backend_retries_total", "Retries of backend calls"),
    (
        "mosaic_breaker_transitions_total",
        "Circuit breaker state changes, by new state",
    ),
    (
        "mosaic_breaker_rejections_total",
        "Calls refused by an open circuit breaker",
    ),
    ("mosaic_bulkhead_rejections_total", "Calls refused by a full bulkhead"),
    ("mosaic_cache_hits_total", "Backend answers served from the cache"),
    (
        "mosaic_cache_stale_hits_total",
        "Expired answers served while refreshed",
    ),
    ("mosaic_cache_misses_total", "Cacheable calls not found in the cache"),
    ("mosaic_cache_stores_total", "Answers stored in the cache"),
    (
        "mosaic_cache_stale_if_error_total",
        "Stale answers served because the backend failed",
    ),
    (
        "mosaic_cache_invalidations_total",
        "Cache entries invalidated by mutations",
    ),
    ("mosaic_cache_evictions_total", "Cache entries evicted for room"),
    ("mosaic_config_reloads_total", "Configuration reloads, by result"),
    (
        "mosaic_log_lines_delayed_total",
        "Log lines that waited for room in the writer's buffer",
    ),
    (
        "mosaic_trace_spans_exported_total",
        "Spans accepted by the OTLP collector",
    ),
    (
        "mosaic_trace_spans_dropped_total",
        "Spans dropped because the exporter did not keep up",
    ),
    (
        "mosaic_trace_export_failures_total",
        "OTLP exports that failed (their spans are lost)",
    ),
];

/// Gauges and their `# HELP` text.
const GAUGES: &[(&str, &str)] = &[
    ("mosaic_requests_in_flight", "HTTP requests being served"),
    ("mosaic_backend_in_flight", "Backend calls in flight"),
    ("mosaic_backend_instances", "Instances of a backend"),
    ("mosaic_backend_instances_ejected", "Instances ejected as outliers"),
    (
        "mosaic_breaker_state",
        "Circuit breaker state: 0 closed, 1 half-open, 2 open",
    ),
    ("mosaic_cache_entries", "Entries in the cache"),
    ("mosaic_websocket_connections", "Open WebSocket connections"),
    ("mosaic_subscriptions_active", "Running subscriptions"),
    ("mosaic_build_info", "The gateway's version (value 1)"),
];

/// Histograms, their units and `# HELP` text.
const HISTOGRAMS: &[(&str, metrics::Unit, &str)] = &[
    (
        "mosaic_operation_duration_seconds",
        metrics::Unit::Seconds,
        "Time to serve a GraphQL operation",
    ),
    (
        "mosaic_backend_duration_seconds",
        metrics::Unit::Seconds,
        "Time of a backend call, retries included",
    ),
    (
        "mosaic_backend_batch_size",
        metrics::Unit::Count,
        "Keys per batched backend request",
    ),
];

/// Registers the `# HELP` text and unit of every metric.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    for (name, help) in COUNTERS {
        describe_counter!(*name, *help);
    }
    for (name, help) in GAUGES {
        describe_gauge!(*name, *help);
    }
    describe_gauge!(
        "mosaic_cache_bytes",
        metrics::Unit::Bytes,
        "Estimated memory of the cached answers"
    );
    for (name, unit, help) in HISTOGRAMS {
        describe_histogram!(*name, *unit, *help);
    }
}

/// One GraphQL operation served.
pub fn operation(name: Option<&str>, kind: &'static str, elapsed: Duration, error_codes: &[String]) {
    let series = OPERATION_SERIES.get_or_init(Mutex::default);
    let Ok(mut series) = series.lock() else { return };
    let (label, (count, duration)) = series.get(name, kind);
    count.increment(1);
    duration.record(elapsed.as_secs_f64());
    if error_codes.is_empty() {
        return;
    }
    let op = label.to_string();
    drop(series);
    for code in error_codes {
        counter!("mosaic_operation_errors_total", "operation" => op.clone(), "code" => bounded_code(code)).increment(1);
    }
}

/// Error codes are ours (a fixed set, listed here) or async-graphql's request errors; anything
/// else is "OTHER", so that no client can grow the label's values.
fn bounded_code(code: &str) -> &'static str {
    const CODES: &[&str] = &[
        // A backend call's outcome.
        "BACKEND_UNAVAILABLE",
        "BACKEND_TIMEOUT",
        "BACKEND_ERROR",
        "BACKEND_SCHEMA_MISMATCH",
        "CIRCUIT_OPEN",
        "BULKHEAD_FULL",
        "RESOLVER_ERROR",
        "STREAM_RECONNECTED",
        "BAD_USER_INPUT",
        "INTERNAL_ERROR",
        // The request.
        "REQUEST_ERROR",
        "BAD_REQUEST",
        "UNAUTHENTICATED",
        "FORBIDDEN",
        "RATE_LIMITED",
        "TOO_MANY_SUBSCRIPTIONS",
        // Query limits.
        "QUERY_TOO_LARGE",
        "QUERY_TOO_DEEP",
        "QUERY_TOO_COMPLEX",
        "TOO_MANY_ALIASES",
        "TOO_MANY_ROOT_FIELDS",
        "FRAGMENT_CYCLE",
        // Persisted and trusted documents.
        "UNTRUSTED_DOCUMENT",
        "PERSISTED_QUERY_NOT_FOUND",
        "PERSISTED_QUERY_NOT_SUPPORTED",
        "PERSISTED_QUERY_HASH_MISMATCH",
        "PERSISTED_QUERY_VERSION",
    ];
    CODES.iter().copied().find(|c| *c == code).unwrap_or("OTHER")
}

/// The series of one backend's calls, registered once: recording a call then builds no key and
/// looks nothing up.
pub struct BackendSeries {
    /// `mosaic_backend_requests_total` by outcome (`ok` or a public error code).
    requests: Vec<(&'static str, Counter)>,
    duration: Histogram,
    coalesced: Counter,
}

impl BackendSeries {
    pub fn new(backend: &str) -> Self {
        const OUTCOMES: [&str; 7] = [
            "ok",
            "BACKEND_UNAVAILABLE",
            "BACKEND_TIMEOUT",
            "BACKEND_ERROR",
            "CIRCUIT_OPEN",
            "BULKHEAD_FULL",
            "OTHER",
        ];
        Self {
            requests: OUTCOMES
                .iter()
                .map(|o| {
                    (
                        *o,
                        counter!("mosaic_backend_requests_total", "backend" => backend.to_string(), "outcome" => *o),
                    )
                })
                .collect(),
            duration: histogram!("mosaic_backend_duration_seconds", "backend" => backend.to_string()),
            coalesced: counter!("mosaic_backend_coalesced_total", "backend" => backend.to_string()),
        }
    }

    /// One backend call that reached the backend or was refused on its way (not a cache hit,
    /// not a call that joined another).
    pub fn call(&self, outcome: &str, elapsed: Duration) {
        let counter = self
            .requests
            .iter()
            .find(|(o, _)| *o == outcome)
            .or_else(|| self.requests.last())
            .map(|(_, c)| c);
        if let Some(c) = counter {
            c.increment(1);
        }
        self.duration.record(elapsed.as_secs_f64());
    }

    /// A call that joined one already in flight.
    pub fn coalesced(&self) {
        self.coalesced.increment(1);
    }
}

/// The number of keys in one batch request.
pub fn batch_size(backend: &str, keys: usize) {
    let sizes = BATCH_SIZES.get_or_init(RwLock::default);
    if let Some(h) = sizes.read().ok().as_ref().and_then(|m| m.get(backend)) {
        h.record(keys as f64);
        return;
    }
    let h = histogram!("mosaic_backend_batch_size", "backend" => backend.to_string());
    h.record(keys as f64);
    if let Ok(mut m) = sizes.write() {
        m.insert(backend.into(), h);
    }
}

/// A circuit breaker changed state.
pub fn breaker_transition(backend: &str, to: &'static str) {
    counter!("mosaic_breaker_transitions_total", "backend" => backend.to_string(), "to" => to).increment(1);
}

fn in_flight(delta: f64) {
    IN_FLIGHT
        .get_or_init(|| gauge!("mosaic_requests_in_flight"))
        .increment(delta);
}

/// One request counted in `mosaic_requests_in_flight` while this lives: dropped when the request
/// ends, and also when it is cancelled (the client went away), so the gauge cannot drift.
#[must_use]
pub struct InFlight(());

impl InFlight {
    pub fn start() -> Self {
        in_flight(1.0);
        Self(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        in_flight(-1.0);
    }
}

pub fn websockets(delta: f64) {
    gauge!("mosaic_websocket_connections").increment(delta);
}

pub fn subscriptions(delta: f64) {
    gauge!("mosaic_subscriptions_active").increment(delta);
}

pub fn reload(ok: bool) {
    counter!("mosaic_config_reloads_total", "result" => if ok { "success" } else { "failure" }).increment(1);
}

/// Log lines that could not be written at once (kept, but counted: see `logging`).
pub fn log_backpressure() {
    counter!("mosaic_log_lines_delayed_total").increment(1);
}

/// Copies the layers' own counters into gauges, then renders the exposition text.
/// What a scrape shows of one backend, read from its layers by the backend module.
#[derive(Debug, Clone)]
pub struct BackendFigures {
    pub backend: String,
    /// `closed`, `half_open`, `open` or `disabled`.
    pub breaker: &'static str,
    pub breaker_rejected: u64,
    pub bulkhead_rejected: u64,
    pub retries: u64,
    pub in_flight: usize,
    pub instances: usize,
    pub ejected: usize,
}

/// What a scrape shows of the response cache.
#[derive(Debug, Clone, Default)]
pub struct CacheFigures {
    pub hits: u64,
    pub stale_hits: u64,
    pub misses: u64,
    pub stores: u64,
    pub stale_if_error: u64,
    pub invalidations: u64,
    pub evictions: u64,
    pub entries: u64,
    pub bytes: u64,
}

/// The exposition text, with the figures the layers keep themselves set first.
pub fn render(handle: &PrometheusHandle, backends: &[BackendFigures], cache: Option<&CacheFigures>) -> String {
    for b in backends {
        let name = b.backend.clone();
        let state = match b.breaker {
            "closed" => 0.0,
            "half_open" => 1.0,
            "open" => 2.0,
            _ => -1.0,
        };
        gauge!("mosaic_breaker_state", "backend" => name.clone()).set(state);
        counter!("mosaic_breaker_rejections_total", "backend" => name.clone()).absolute(b.breaker_rejected);
        counter!("mosaic_bulkhead_rejections_total", "backend" => name.clone()).absolute(b.bulkhead_rejected);
        counter!("mosaic_backend_retries_total", "backend" => name.clone()).absolute(b.retries);
        gauge!("mosaic_backend_in_flight", "backend" => name.clone()).set(b.in_flight as f64);
        gauge!("mosaic_backend_instances", "backend" => name.clone()).set(b.instances as f64);
        gauge!("mosaic_backend_instances_ejected", "backend" => name).set(b.ejected as f64);
    }
    if let Some(c) = cache {
        counter!("mosaic_cache_hits_total").absolute(c.hits);
        counter!("mosaic_cache_stale_hits_total").absolute(c.stale_hits);
        counter!("mosaic_cache_misses_total").absolute(c.misses);
        counter!("mosaic_cache_stores_total").absolute(c.stores);
        counter!("mosaic_cache_stale_if_error_total").absolute(c.stale_if_error);
        counter!("mosaic_cache_invalidations_total").absolute(c.invalidations);
        counter!("mosaic_cache_evictions_total").absolute(c.evictions);
        gauge!("mosaic_cache_entries").set(c.entries as f64);
        gauge!("mosaic_cache_bytes").set(c.bytes as f64);
    }
    handle.render()
}

#[cfg(test)]
mod tests {
    use super::bounded_code;

    #[test]
    fn error_codes_of_ours_are_labels_and_anything_else_is_other() {
        for code in [
            "BACKEND_TIMEOUT",
            "BAD_USER_INPUT",
            "QUERY_TOO_DEEP",
            "UNTRUSTED_DOCUMENT",
            "PERSISTED_QUERY_NOT_FOUND",
        ] {
            assert_eq!(bounded_code(code), code);
        }
        assert_eq!(bounded_code("user-chosen-code-123"), "OTHER");
        assert_eq!(bounded_code(""), "OTHER");
    }
}
