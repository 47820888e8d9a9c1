//! The figures: one row per (target, query), the Mosaic/peer ratios, the printed table and the
//! JSON written to `target/bench-results.json`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::load::LoadResult;
use crate::stack::Gateway;
use crate::{Settings, QUERIES};

const MIB: f64 = 1024.0 * 1024.0;

/// Cores used by processes outside the bench above which a row is called noisy.
const NOISY_CORES: f64 = 0.25;

/// CPU time spent during a measured phase.
pub struct Cpu {
    /// The process under load (a gateway, or the bank for the direct fetch).
    pub target: Duration,
    /// The mock bank.
    pub bank: Duration,
    /// The load generator (this process).
    pub client: Duration,
    /// Every process of the machine.
    pub machine: Duration,
}

/// One measurement.
#[derive(Debug, Serialize)]
pub struct Row {
    pub target: String,
    pub query: String,
    /// The caching pass (`schema` or `off`; `-` for the backend fetched directly).
    pub cache: String,
    pub seconds: f64,
    /// Successful requests (200, no GraphQL errors) in the measured phase.
    pub requests: u64,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub non_200: u64,
    pub graphql_errors: u64,
    pub io_errors: u64,
    /// Requests to all five mock services during the measured phase ÷ requests.
    pub backend_calls_per_query: f64,
    pub backend_calls: u64,
    pub backend_calls_by_endpoint: BTreeMap<String, u64>,
    /// CPU time of the process under load ÷ requests (the gateway's, or the bank's for `direct`).
    pub cpu_us_per_request: f64,
    /// CPU time of the mock bank ÷ requests.
    pub bank_cpu_us_per_request: f64,
    /// CPU time of the load generator ÷ requests.
    pub client_cpu_us_per_request: f64,
    /// Share of one core the process under load used.
    pub cpu_cores_used: f64,
    /// Cores used by processes outside the bench (the machine's busy time minus the process under
    /// load, the bank and the load generator, ÷ the measured time): noise when well above 0.
    pub other_cores_used: f64,
    pub rss_idle_mib: f64,
    pub rss_under_load_mib: f64,
    pub response_bytes: u64,
    /// Mosaic's counters (from its `/metrics`) that changed during the measured phase.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub gateway_metrics: BTreeMap<String, f64>,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn per_request(d: Duration, requests: u64) -> f64 {
    if requests == 0 {
        return f64::NAN;
    }
    d.as_secs_f64() * 1e6 / requests as f64
}

impl Row {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        target: &str,
        query: &str,
        r: &LoadResult,
        cpu: Cpu,
        calls: u64,
        by_endpoint: BTreeMap<String, u64>,
        rss_idle: u64,
        rss_max: u64,
    ) -> Row {
        let h = &r.latency_us;
        let q = |p: f64| {
            if h.is_empty() {
                f64::NAN
            } else {
                ms(h.value_at_quantile(p))
            }
        };
        // Errors made requests too (and cost CPU): divide by every completed request.
        let done = r.completed();
        Row {
            target: target.to_owned(),
            query: query.to_owned(),
            cache: "-".to_owned(),
            seconds: r.elapsed.as_secs_f64(),
            requests: r.ok,
            requests_per_s: r.rps(),
            p50_ms: q(0.50),
            p90_ms: q(0.90),
            p99_ms: q(0.99),
            max_ms: if h.is_empty() { f64::NAN } else { ms(h.max()) },
            non_200: r.non_200,
            graphql_errors: r.graphql_errors,
            io_errors: r.io_errors,
            backend_calls_per_query: if done == 0 {
                f64::NAN
            } else {
                calls as f64 / done as f64
            },
            backend_calls: calls,
            backend_calls_by_endpoint: by_endpoint,
            cpu_us_per_request: per_request(cpu.target, done),
            bank_cpu_us_per_request: per_request(cpu.bank, done),
            client_cpu_us_per_request: per_request(cpu.client, done),
            cpu_cores_used: cpu.target.as_secs_f64() / r.elapsed.as_secs_f64().max(1e-9),
            other_cores_used: {
                // For `direct` the process under load is the bank: count it once.
                let ours = if target == "backend" {
                    cpu.target + cpu.client
                } else {
                    cpu.target + cpu.bank + cpu.client
                };
                cpu.machine.saturating_sub(ours).as_secs_f64() / r.elapsed.as_secs_f64().max(1e-9)
            },
            rss_idle_mib: rss_idle as f64 / MIB,
            rss_under_load_mib: rss_max as f64 / MIB,
            response_bytes: r.body_bytes.checked_div(r.ok).unwrap_or(0),
            gateway_metrics: BTreeMap::new(),
        }
    }

    pub fn errors(&self) -> u64 {
        self.non_200 + self.graphql_errors + self.io_errors
    }

    pub fn one_line(&self) -> String {
        format!(
            "{:<8} {:<7} {:<6} {:>9.0} req/s  p50 {:.2} ms  p99 {:.2} ms  {:.3} calls/q  {:.1} µs CPU/req  {} errors",
            self.target,
            self.query,
            self.cache,
            self.requests_per_s,
            self.p50_ms,
            self.p99_ms,
            self.backend_calls_per_query,
            self.cpu_us_per_request,
            self.errors()
        )
    }
}

/// The peer gateway: what ran, or why it did not.
#[derive(Debug, Serialize)]
pub struct Peer {
    pub name: &'static str,
    pub package: &'static str,
    pub binary: Option<String>,
    pub unavailable: Option<String>,
    /// The exact Tailcall configuration used, per caching pass.
    pub configs: BTreeMap<String, String>,
    /// Pairs of upstream URLs that would have shared one of Tailcall's 64-bit request hashes on the
    /// mock bank's first ports (Tailcall 1.0 would serve one's answer for the other), avoided by
    /// moving the bank to other ports; 0 when the first ports were fine.
    pub url_hash_collisions_avoided: usize,
}

impl Peer {
    pub fn unavailable(why: &str) -> Peer {
        Peer {
            name: "tailcall",
            package: crate::tailcall::PACKAGE,
            binary: None,
            unavailable: Some(why.to_owned()),
            configs: BTreeMap::new(),
            url_hash_collisions_avoided: 0,
        }
    }

    pub fn available(bin: &Path) -> Peer {
        Peer {
            name: "tailcall",
            package: crate::tailcall::PACKAGE,
            binary: Some(bin.display().to_string()),
            unavailable: None,
            configs: BTreeMap::new(),
            url_hash_collisions_avoided: 0,
        }
    }
}

/// A gateway as started.
#[derive(Debug, Serialize)]
pub struct TargetInfo {
    pub name: String,
    pub cache: String,
    pub ready_ms: f64,
    pub rss_after_start_mib: f64,
}

impl TargetInfo {
    pub fn of(name: &str, cache: &str, gw: &Gateway) -> anyhow::Result<TargetInfo> {
        Ok(TargetInfo {
            name: name.to_owned(),
            cache: cache.to_owned(),
            ready_ms: gw.ready_in.as_secs_f64() * 1e3,
            rss_after_start_mib: crate::procs::rss_bytes(gw.proc.pid())? as f64 / MIB,
        })
    }
}

/// Mosaic against the peer and the ceiling on one query.
#[derive(Debug, Serialize)]
pub struct Ratio {
    pub cache: String,
    pub query: String,
    /// Mosaic req/s ÷ Tailcall req/s (> 1: Mosaic serves more).
    pub rps_mosaic_over_tailcall: Option<f64>,
    /// Mosaic CPU µs/req ÷ Tailcall CPU µs/req (< 1: Mosaic spends less).
    pub cpu_mosaic_over_tailcall: Option<f64>,
    /// Mosaic req/s ÷ the backend list fetched directly.
    pub rps_mosaic_over_direct: Option<f64>,
    pub rps_tailcall_over_direct: Option<f64>,
    /// The flat query: Mosaic CPU µs/req ÷ the hand-written floor's (≤ 1: no dearer than it).
    pub cpu_mosaic_over_floor: Option<f64>,
    /// The flat query: Mosaic req/s ÷ the hand-written floor's.
    pub rps_mosaic_over_floor: Option<f64>,
}

/// Everything the run produced.
#[derive(Debug, Serialize)]
pub struct Results {
    pub duration_s: f64,
    pub warmup_s: f64,
    pub connections: usize,
    /// Each connection sent its own document (`--vary-query`), defeating whole-operation dedupe.
    pub vary_query: bool,
    pub smoke: bool,
    pub cores: usize,
    /// The `mosaic` binary measured.
    pub mosaic_binary: String,
    /// The `@cache(ttl:)` of the queried fields in the schema served.
    pub schema_cache_ttls: String,
    pub queries: BTreeMap<String, String>,
    pub peer: Peer,
    pub targets: Vec<TargetInfo>,
    /// Per query: the data check before measuring.
    pub verification: BTreeMap<String, String>,
    pub rows: Vec<Row>,
    pub ratios: Vec<Ratio>,
    /// Anything that looks wrong (more backend calls than expected, errors, …).
    pub suspicious: Vec<String>,
    /// Other observations made while running (e.g. a slow shutdown).
    #[serde(skip)]
    pub suspicious_extra: Vec<String>,
}

impl Results {
    pub fn new(settings: &Settings, cores: usize, peer: Peer) -> Results {
        Results {
            duration_s: settings.duration.as_secs_f64(),
            warmup_s: settings.warmup.as_secs_f64(),
            connections: settings.connections,
            vary_query: false,
            smoke: settings.smoke,
            cores,
            mosaic_binary: String::new(),
            schema_cache_ttls: String::new(),
            queries: QUERIES
                .iter()
                .map(|q| (q.key.to_owned(), q.query.to_owned()))
                .chain([("direct".to_owned(), format!("GET {}", crate::DIRECT_PATH))])
                .collect(),
            peer,
            targets: Vec::new(),
            verification: BTreeMap::new(),
            rows: Vec::new(),
            ratios: Vec::new(),
            suspicious: Vec::new(),
            suspicious_extra: Vec::new(),
        }
    }

    fn row(&self, target: &str, query: &str, cache: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.target == target && r.query == query && r.cache == cache)
    }

    /// The caching passes measured, in order.
    fn passes(&self) -> Vec<String> {
        let mut passes: Vec<String> = Vec::new();
        for r in &self.rows {
            if r.cache != "-" && !passes.contains(&r.cache) {
                passes.push(r.cache.clone());
            }
        }
        passes
    }

    /// Computes the ratios and the list of suspicious figures.
    pub fn finish(&mut self) {
        let direct = self.row("backend", "direct", "-").map(|r| r.requests_per_s);
        let ratio = |a: f64, b: f64| (a.is_finite() && b.is_finite() && b > 0.0).then(|| a / b);
        let mut ratios = Vec::new();
        let mut suspicious = Vec::new();
        for (cache, q) in self
            .passes()
            .into_iter()
            .flat_map(|c| QUERIES.iter().map(move |q| (c.clone(), q)))
        {
            let mosaic = self.row("mosaic", q.key, &cache);
            let peer = self.row("tailcall", q.key, &cache);
            let floor = self.row("floor", q.key, &cache);
            if mosaic.is_none() && peer.is_none() {
                // Not measured (`--query`).
                continue;
            }
            ratios.push(Ratio {
                cache: cache.clone(),
                query: q.key.to_owned(),
                rps_mosaic_over_tailcall: mosaic
                    .zip(peer)
                    .and_then(|(m, t)| ratio(m.requests_per_s, t.requests_per_s)),
                cpu_mosaic_over_tailcall: mosaic
                    .zip(peer)
                    .and_then(|(m, t)| ratio(m.cpu_us_per_request, t.cpu_us_per_request)),
                rps_mosaic_over_direct: mosaic.zip(direct).and_then(|(m, d)| ratio(m.requests_per_s, d)),
                rps_tailcall_over_direct: peer.zip(direct).and_then(|(t, d)| ratio(t.requests_per_s, d)),
                cpu_mosaic_over_floor: mosaic
                    .zip(floor)
                    .and_then(|(m, f)| ratio(m.cpu_us_per_request, f.cpu_us_per_request)),
                rps_mosaic_over_floor: mosaic
                    .zip(floor)
                    .and_then(|(m, f)| ratio(m.requests_per_s, f.requests_per_s)),
            });
            for row in [mosaic, peer].into_iter().flatten() {
                if row.backend_calls_per_query > q.expected_calls + 1e-6 {
                    suspicious.push(format!(
                        "{} on {} (cache {}): {:.3} backend calls per query, expected at most {} (one per endpoint and level): {}",
                        row.target,
                        q.key,
                        cache,
                        row.backend_calls_per_query,
                        q.expected_calls,
                        endpoints(&row.backend_calls_by_endpoint, row.requests + row.errors())
                    ));
                }
            }
        }
        let noisy: Vec<String> = self
            .rows
            .iter()
            .filter(|r| r.other_cores_used > NOISY_CORES)
            .map(|r| format!("{} {} {} ({:.2})", r.target, r.query, r.cache, r.other_cores_used))
            .collect();
        if !noisy.is_empty() {
            suspicious.push(format!(
                "other processes kept the CPU busy during {} of {} rows (cores used outside the bench): {}; \
                 the figures are noisy, ratios within this run are less affected",
                noisy.len(),
                self.rows.len(),
                noisy.join(", ")
            ));
        }
        for row in &self.rows {
            if row.errors() > 0 {
                suspicious.push(format!(
                    "{} on {} (cache {}): {} errors ({} non-200, {} GraphQL errors, {} I/O or timeout)",
                    row.target,
                    row.query,
                    row.cache,
                    row.errors(),
                    row.non_200,
                    row.graphql_errors,
                    row.io_errors
                ));
            }
        }
        suspicious.append(&mut self.suspicious_extra);
        self.ratios = ratios;
        self.suspicious = suspicious;
    }

    /// What makes the run fail: no successful request, errors, or data that differs.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for row in &self.rows {
            if row.requests == 0 {
                problems.push(format!(
                    "{} on {} (cache {}): no successful request",
                    row.target, row.query, row.cache
                ));
            }
            if row.errors() > 0 {
                problems.push(format!(
                    "{} on {} (cache {}): {} errors",
                    row.target,
                    row.query,
                    row.cache,
                    row.errors()
                ));
            }
        }
        problems
    }

    /// The table, the ratios and the notes, as printed.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "\nMosaic load bench: {} connections{}, {:.1} s measured after {:.1} s warmup per row; {} cores shared by everything",
            self.connections,
            if self.vary_query {
                " (each its own document: --vary-query)"
            } else {
                " (all sending the same document)"
            },
            self.duration_s,
            self.warmup_s,
            self.cores
        );
        let _ = writeln!(
            s,
            "(CPU µs/r: the process under load — the gateway, or the mock bank for `direct`; bank and client µs per request \
             for context; others: cores busy with processes outside the bench, noise when well above 0)\n"
        );
        let _ = writeln!(
            s,
            "{:<9} {:<8} {:<6} {:>9} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7}",
            "target",
            "query",
            "cache",
            "req/s",
            "p50 ms",
            "p99 ms",
            "calls/q",
            "CPU µs/r",
            "bank µs",
            "client",
            "RSS idle",
            "RSS load",
            "errors",
            "others"
        );
        let _ = writeln!(s, "{}", "-".repeat(127));
        for r in &self.rows {
            let _ = writeln!(
                s,
                "{:<9} {:<8} {:<6} {:>9.0} {:>8.3} {:>8.3} {:>8.3} {:>9.1} {:>8.1} {:>8.1} {:>7.1}M {:>7.1}M {:>7} {:>7.2}",
                r.target,
                r.query,
                r.cache,
                r.requests_per_s,
                r.p50_ms,
                r.p99_ms,
                r.backend_calls_per_query,
                r.cpu_us_per_request,
                r.bank_cpu_us_per_request,
                r.client_cpu_us_per_request,
                r.rss_idle_mib,
                r.rss_under_load_mib,
                r.errors(),
                r.other_cores_used
            );
        }
        let _ = writeln!(s);
        let fmt = |v: Option<f64>, suffix: &str| v.map_or("n/a".to_owned(), |v| format!("{v:.2}{suffix}"));
        let pct = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{:.0}%", v * 100.0));
        let _ = writeln!(
            s,
            "{:<8} {:<6} {:>22} {:>27} {:>17} {:>19}",
            "query",
            "cache",
            "req/s Mosaic/Tailcall",
            "CPU µs/req Mosaic/Tailcall",
            "Mosaic vs direct",
            "Tailcall vs direct"
        );
        let _ = writeln!(s, "{}", "-".repeat(103));
        for r in &self.ratios {
            let _ = writeln!(
                s,
                "{:<8} {:<6} {:>22} {:>27} {:>17} {:>19}",
                r.query,
                r.cache,
                fmt(r.rps_mosaic_over_tailcall, "x"),
                fmt(r.cpu_mosaic_over_tailcall, "x"),
                pct(r.rps_mosaic_over_direct),
                pct(r.rps_tailcall_over_direct)
            );
        }
        for r in self.ratios.iter().filter(|r| r.cpu_mosaic_over_floor.is_some()) {
            let _ = writeln!(
                s,
                "{} (cache {}) against the hand-written floor: CPU µs/req Mosaic/floor {}, req/s Mosaic/floor {} \
                 (target: CPU ≤ 1.00, req/s ≥ 1.00)",
                r.query,
                r.cache,
                fmt(r.cpu_mosaic_over_floor, "x"),
                fmt(r.rps_mosaic_over_floor, "x")
            );
        }
        let _ = writeln!(
            s,
            "(req/s ratio > 1: Mosaic serves more; CPU ratio < 1: Mosaic spends less per request; \
             \"vs direct\": share of the req/s of GET {} on the backend itself)",
            crate::DIRECT_PATH
        );
        if let Some(why) = &self.peer.unavailable {
            let _ = writeln!(s, "\n!!! peer unavailable: {why}");
        }
        if self.peer.url_hash_collisions_avoided > 0 {
            let _ = writeln!(
                s,
                "mock bank moved to other ports: on its first ones Tailcall 1.0, which keys upstream requests by \
                 a 64-bit FxHash of the URL, would have confused {} pair(s) of URLs",
                self.peer.url_hash_collisions_avoided
            );
        }
        let _ = writeln!(
            s,
            "cache passes: schema = as the schema's @cache says ({}), the same TTLs as Tailcall @cache(maxAge:); \
             off = Mosaic [cache] enabled = false, no @cache in Tailcall",
            self.schema_cache_ttls
        );
        for t in &self.targets {
            let _ = writeln!(
                s,
                "{} (cache {}): ready {:.0} ms after start, RSS {:.1} MiB after start",
                t.name, t.cache, t.ready_ms, t.rss_after_start_mib
            );
        }
        for (q, v) in &self.verification {
            let _ = writeln!(s, "data check {q}: {v}");
        }
        if !self.suspicious.is_empty() {
            let _ = writeln!(s, "\nSuspicious:");
            for note in &self.suspicious {
                let _ = writeln!(s, "  ! {note}");
            }
        }
        s
    }
}

/// `endpoint: calls/query` for each endpoint called.
fn endpoints(by_endpoint: &BTreeMap<String, u64>, requests: u64) -> String {
    by_endpoint
        .iter()
        .map(|(e, n)| format!("{e} {:.3}/q", *n as f64 / requests.max(1) as f64))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first place two JSON values differ, as `path: left vs right`.
pub fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    let short = |v: &Value| {
        let s = v.to_string();
        if s.len() > 80 {
            format!("{}…", &s[..s.floor_char_boundary_compat(80)])
        } else {
            s
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => {
                        if let Some(d) = first_difference(v, w, &format!("{path}.{k}")) {
                            return Some(d);
                        }
                    }
                    None => return Some(format!("{path}.{k}: {} vs (missing)", short(v))),
                }
            }
            y.keys()
                .find(|k| !x.contains_key(*k))
                .map(|k| format!("{path}.{k}: (missing) vs {}", short(&y[k])))
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                if let Some(d) = first_difference(v, w, &format!("{path}[{i}]")) {
                    return Some(d);
                }
            }
            (x.len() != y.len()).then(|| format!("{path}: {} items vs {} items", x.len(), y.len()))
        }
        _ => (a != b).then(|| format!("{path}: {} vs {}", short(a), short(b))),
    }
}

trait CharBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}

impl CharBoundary for String {
    fn floor_char_boundary_compat(&self, mut i: usize) -> usize {
        while i > 0 && !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_the_first_difference() {
        let a = json!({"customers": [{"id": "C1", "accounts": [{"id": "A1"}]}]});
        assert_eq!(first_difference(&a, &a.clone(), "data"), None);
        let b = json!({"customers": [{"id": "C1", "accounts": [{"id": "A2"}]}]});
        assert_eq!(
            first_difference(&a, &b, "data").as_deref(),
            Some(r#"data.customers[0].accounts[0].id: "A1" vs "A2""#)
        );
        let c = json!({"customers": []});
        assert_eq!(
            first_difference(&a, &c, "data").as_deref(),
            Some("data.customers: 1 items vs 0 items")
        );
    }
}
