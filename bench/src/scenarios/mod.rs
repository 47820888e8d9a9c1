//! The scenarios of Mosaic alone: `chaos` (resilience), `cache` (caching, coalescing,
//! subscriptions, memory) and `overhead` (observability, startup, reload). Each prints a table and
//! writes its JSON next to `target/bench-results.json`.

pub mod cache;
pub mod chaos;
pub mod overhead;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::Value;

use crate::stack::Gateway;

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
    let response = http
        .post(gw.url())
        .header("accept", "application/json")
        .json(&serde_json::json!({ "query": query }))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await.context("answer is not JSON")?;
    if !status.is_success() {
        bail!("{} answered {status}: {body}", gw.url());
    }
    Ok(body)
}

/// Checks that the gateway answers the 2-level query with 20 customers and no error.
pub async fn check_2level(http: &reqwest::Client, gw: &Gateway) -> Result<()> {
    let body = post_graphql(http, gw, &query_2level(0)).await?;
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
