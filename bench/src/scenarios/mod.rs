//! The scenarios of Mosaic alone: `chaos` (resilience), `cache` (caching, coalescing,
//! subscriptions, memory), `overhead` (observability, startup, reload) and `security` (limits and
//! authentication, hostile documents). Each prints a table and writes its JSON next to
//! `target/bench-results.json`. What several of them share lives here: the 2-level query, and
//! gateways measured in turn round after round with their losses against a baseline.

pub mod cache;
pub mod chaos;
pub mod federation;
pub mod giveup;
pub mod import;
pub mod mapping;
pub mod overhead;
pub mod security;
pub mod soak;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::Value;

use crate::load::Target;
use crate::report::Row;
use crate::stack::{Bank, Gateway};
use crate::Settings;

/// The 2-level query of the scenarios: a page of 20 customers and their accounts.
pub fn query_2level(offset: usize) -> String {
    format!("{{ customers(limit: 20, offset: {offset}) {{ id accounts {{ id balance }} }} }}")
}

/// One 2-level query per connection, each on its own page: offsets 0, 12, 24, … (mod 181, a
/// prime, so up to 181 connections get distinct offsets, all within the 200 customers).
pub fn queries_per_connection(connections: usize) -> Vec<String> {
    (0..connections.max(1)).map(|i| query_2level((i * 12) % 181)).collect()
}

/// A backend's breaker as `/healthz` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerView {
    pub state: String,
    pub opened: u64,
    pub rejected: u64,
    pub retries: u64,
}

/// `backend`'s entry of the gateway's `/healthz`.
pub async fn breaker_view(http: &reqwest::Client, healthz: &str, backend: &str) -> Result<BreakerView> {
    let body: Value = http.get(healthz).send().await?.error_for_status()?.json().await?;
    let entry = body
        .get("backends")
        .and_then(Value::as_array)
        .and_then(|list| {
            list.iter()
                .find(|b| b.get("backend").and_then(Value::as_str) == Some(backend))
        })
        .with_context(|| format!("/healthz lists no backend {backend}"))?;
    let n = |k: &str| entry.get(k).and_then(Value::as_u64).unwrap_or(0);
    Ok(BreakerView {
        state: entry.get("breaker").and_then(Value::as_str).unwrap_or("?").to_owned(),
        opened: n("breaker_opened"),
        rejected: n("breaker_rejected"),
        retries: n("retries"),
    })
}

/// POSTs `query` to the gateway; its whole answer, failing on a non-200 status.
pub async fn post_graphql(http: &reqwest::Client, gw: &Gateway, query: &str) -> Result<Value> {
    post_graphql_as(http, gw, query, None).await
}

/// [`post_graphql`] with `Authorization: Bearer {bearer}` when given.
pub async fn post_graphql_as(http: &reqwest::Client, gw: &Gateway, query: &str, bearer: Option<&str>) -> Result<Value> {
    let mut request = http
        .post(gw.url())
        .header("accept", "application/json")
        .json(&serde_json::json!({ "query": query }));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status();
    let body: Value = response.json().await.context("answer is not JSON")?;
    if !status.is_success() {
        bail!("{} answered {status}: {body}", gw.url());
    }
    Ok(body)
}

/// Checks that the gateway answers the 2-level query with 20 customers and no error.
pub async fn check_2level(http: &reqwest::Client, gw: &Gateway) -> Result<()> {
    check_2level_as(http, gw, None).await
}

/// [`check_2level`] with `Authorization: Bearer {bearer}` when given.
pub async fn check_2level_as(http: &reqwest::Client, gw: &Gateway, bearer: Option<&str>) -> Result<()> {
    let body = post_graphql_as(http, gw, &query_2level(0), bearer).await?;
    if let Some(errors) = body.get("errors") {
        bail!("the 2-level query answered errors: {errors}");
    }
    let customers = body
        .pointer("/data/customers")
        .and_then(Value::as_array)
        .context("no data.customers")?;
    if customers.len() != 20 || customers.iter().any(|c| c.get("accounts").is_none()) {
        bail!("unexpected answer to the 2-level query: {body}");
    }
    Ok(())
}

/// What [`measure_in_turn`] measured.
pub struct InTurn {
    /// Per gateway, one row per round.
    pub rows: Vec<Vec<Row>>,
    /// Per gateway, when its last measured load ended.
    pub last_load_ended: Vec<Instant>,
}

/// Measures `gateways[i]` with `targets[i]` in turn, `rounds` times, each round starting with
/// another gateway (so that a drift of the machine's load hits them alike); `keys[i]` names the
/// rows of gateway `i`.
#[allow(clippy::too_many_arguments)]
pub async fn measure_in_turn(
    settings: &Settings,
    http: &reqwest::Client,
    bank: &mut Bank,
    gateways: &mut [Gateway],
    targets: &[Target],
    keys: &[&'static str],
    rounds: usize,
    scenario: &str,
) -> Result<InTurn> {
    let n = gateways.len();
    let mut rows: Vec<Vec<Row>> = (0..n).map(|_| Vec::new()).collect();
    let mut last_load_ended = vec![Instant::now(); n];
    for round in 0..rounds {
        for i in (0..n).map(|k| (k + round) % n) {
            let gw = &mut gateways[i];
            gw.proc.check_alive()?;
            let pid = gw.proc.pid();
            let row = crate::measure(
                settings,
                http,
                bank,
                "mosaic",
                "nested2-p20",
                keys[i],
                targets[i].clone(),
                pid,
                None,
            )
            .await?;
            last_load_ended[i] = Instant::now();
            eprintln!("bench {scenario}: round {} {} done", round + 1, keys[i]);
            rows[i].push(row);
        }
    }
    Ok(InTurn { rows, last_load_ended })
}

/// One gateway configuration of a side-by-side comparison: its rows (one per round), what they
/// add up to, and its loss against the first configuration (the baseline).
#[derive(Debug, Serialize)]
pub struct ConfigFigures {
    pub key: &'static str,
    pub describe: String,
    pub rows: Vec<Row>,
    pub requests_per_s: f64,
    pub cpu_us_per_request: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub rps_min: f64,
    pub rps_max: f64,
    pub errors: u64,
    /// 1 − req/s ÷ the baseline's.
    pub throughput_loss: Option<f64>,
    /// CPU µs/req ÷ the baseline's − 1.
    pub cpu_increase: Option<f64>,
    /// The median over the rounds of 1 − req/s ÷ the baseline's in the same round (less
    /// sensitive to the machine's load drifting than the totals): what the verdict uses.
    pub paired_loss_median: Option<f64>,
    /// The median over the rounds of CPU µs/req ÷ the baseline's in the same round − 1.
    pub paired_cpu_increase_median: Option<f64>,
    pub target_loss: Option<f64>,
    pub target_met: Option<bool>,
    /// Why the row does not measure what it says (e.g. tracing not available).
    pub unavailable: Option<String>,
}

impl ConfigFigures {
    /// The totals of `rows`, not yet compared with a baseline.
    pub fn of_rounds(key: &'static str, describe: &str, rows: Vec<Row>) -> ConfigFigures {
        let requests: u64 = rows.iter().map(|r| r.requests).sum();
        let completed: u64 = rows.iter().map(|r| r.requests + r.errors()).sum();
        let seconds: f64 = rows.iter().map(|r| r.seconds).sum();
        let cpu_us: f64 = rows
            .iter()
            .map(|r| r.cpu_us_per_request * (r.requests + r.errors()) as f64)
            .filter(|v| v.is_finite())
            .sum();
        let mut p50: Vec<f64> = rows.iter().map(|r| r.p50_ms).collect();
        let mut p99: Vec<f64> = rows.iter().map(|r| r.p99_ms).collect();
        let rps: Vec<f64> = rows.iter().map(|r| r.requests_per_s).collect();
        ConfigFigures {
            key,
            describe: describe.to_owned(),
            requests_per_s: requests as f64 / seconds.max(1e-9),
            cpu_us_per_request: cpu_us / completed.max(1) as f64,
            p50_ms: quantile(&mut p50, 0.5),
            p99_ms: quantile(&mut p99, 0.5),
            rps_min: rps.iter().copied().fold(f64::INFINITY, f64::min),
            rps_max: rps.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            errors: rows.iter().map(Row::errors).sum(),
            rows,
            throughput_loss: None,
            cpu_increase: None,
            paired_loss_median: None,
            paired_cpu_increase_median: None,
            target_loss: None,
            target_met: None,
            unavailable: None,
        }
    }

    /// Why it missed its target, when it did.
    pub fn missed(&self) -> Option<String> {
        (self.target_met == Some(false)).then(|| {
            format!(
                "{}: {:.1}% throughput loss against (a) (median of the rounds; {:.1}% over all), target ≤ {:.0}% (CPU µs/req {:+.1}%)",
                self.describe,
                self.paired_loss_median.unwrap_or(0.0) * 100.0,
                self.throughput_loss.unwrap_or(0.0) * 100.0,
                self.target_loss.unwrap_or(0.0) * 100.0,
                self.paired_cpu_increase_median.unwrap_or(0.0) * 100.0
            )
        })
    }
}

/// Compares every configuration after the first with the first (the baseline), round by round,
/// and judges it against `target_loss(i)` (a share of throughput, for configuration `i`).
pub fn judge_against_baseline<'a>(
    configs: impl IntoIterator<Item = &'a mut ConfigFigures>,
    target_loss: impl Fn(usize) -> Option<f64>,
) {
    let mut configs = configs.into_iter();
    let Some(base) = configs.next() else {
        return;
    };
    let (base_rps, base_cpu) = (base.requests_per_s, base.cpu_us_per_request);
    let base_rounds: Vec<(f64, f64)> = base
        .rows
        .iter()
        .map(|r| (r.requests_per_s, r.cpu_us_per_request))
        .collect();
    for (i, cfg) in configs.enumerate() {
        cfg.throughput_loss = Some(1.0 - cfg.requests_per_s / base_rps);
        cfg.cpu_increase = Some(cfg.cpu_us_per_request / base_cpu - 1.0);
        let (mut losses, mut cpus): (Vec<f64>, Vec<f64>) = cfg
            .rows
            .iter()
            .zip(&base_rounds)
            .map(|(r, (rps, cpu))| (1.0 - r.requests_per_s / rps, r.cpu_us_per_request / cpu - 1.0))
            .unzip();
        cfg.paired_loss_median = Some(quantile(&mut losses, 0.5)).filter(|v| v.is_finite());
        cfg.paired_cpu_increase_median = Some(quantile(&mut cpus, 0.5)).filter(|v| v.is_finite());
        cfg.target_loss = target_loss(i + 1);
        cfg.target_met = cfg.paired_loss_median.zip(cfg.target_loss).map(|(l, t)| l <= t);
    }
}

/// The table of a side-by-side comparison, its legend included.
pub fn render_comparison(configs: &[&ConfigFigures]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<52} {:>9} {:>15} {:>9} {:>9} {:>8} {:>10} {:>8} {:>11} {:>9} {:>7} {:>8}",
        "configuration",
        "req/s",
        "(rounds)",
        "CPU µs/r",
        "p50 ms",
        "p99 ms",
        "req/s loss",
        "CPU",
        "loss (med.)",
        "CPU (med.)",
        "target",
        "verdict"
    );
    let _ = writeln!(s, "{}", "-".repeat(172));
    let pct = |v: Option<f64>| v.map_or("-".to_owned(), |l| format!("{:+.1}%", l * 100.0));
    for c in configs {
        let _ = writeln!(
            s,
            "{:<52} {:>9.0} {:>15} {:>9.1} {:>9.3} {:>8.3} {:>10} {:>8} {:>11} {:>9} {:>7} {:>8}",
            c.describe,
            c.requests_per_s,
            format!("{:.0}..{:.0}", c.rps_min, c.rps_max),
            c.cpu_us_per_request,
            c.p50_ms,
            c.p99_ms,
            pct(c.throughput_loss),
            pct(c.cpu_increase),
            pct(c.paired_loss_median),
            pct(c.paired_cpu_increase_median),
            c.target_loss.map_or("-".to_owned(), |t| format!("≤{:.0}%", t * 100.0)),
            if c.unavailable.is_some() {
                "n/a".to_owned()
            } else {
                verdict(c.target_met).to_owned()
            }
        );
    }
    let _ = writeln!(
        s,
        "(req/s loss: 1 − req/s ÷ (a)'s over all rounds; CPU: gateway CPU µs per request against (a)'s; (med.): the median over the rounds of the same against (a) in the same round — the verdict; p50/p99: median over the rounds)"
    );
    s
}

/// Stops a gateway (SIGTERM, then SIGKILL after its grace); a note if it had to be killed.
pub fn stop_gateway(gw: &mut Gateway, what: &str, notes: &mut Vec<String>) {
    let started = Instant::now();
    if gw.proc.stop().is_none() {
        notes.push(format!(
            "{what}: mosaic did not exit within {:.0} s of SIGTERM and was killed",
            started.elapsed().as_secs_f64()
        ));
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `12.3` or `n/a` for a missing or non-finite figure.
pub fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => "n/a".to_owned(),
    }
}

/// A verdict against a target: `ok`, `MISSED` or `n/a`.
pub fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "ok",
        Some(false) => "MISSED",
        None => "n/a",
    }
}

/// The p-quantile (0..=1) of `values` (sorted in place); NaN when empty.
pub fn quantile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let i = ((values.len() - 1) as f64 * p).round() as usize;
    values[i.min(values.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_get_distinct_pages_within_the_customers() {
        let q = queries_per_connection(64);
        let distinct: std::collections::HashSet<&String> = q.iter().collect();
        assert_eq!(distinct.len(), 64);
        assert!((0..64).all(|i| (i * 12) % 181 <= 180));
        assert_eq!(
            query_2level(12),
            "{ customers(limit: 20, offset: 12) { id accounts { id balance } } }"
        );
    }

    #[test]
    fn quantiles() {
        let mut v = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&mut v, 0.5), 3.0);
        assert_eq!(quantile(&mut v, 1.0), 5.0);
        assert!(quantile(&mut [], 0.5).is_nan());
    }
}
