//! `bench cache`: what caching and sharing buy. Four measurements, each on a gateway of its own:
//!
//! - warm cache: throughput and gateway CPU per request on the 2-level query with the default
//!   config (customers and accounts cached), and the hit ratio from `/metrics`;
//! - coalescing: 64 concurrent identical queries with caching off and 50 ms of latency on the
//!   customers and accounts services, so that requests overlap: gateway requests ÷ backend calls
//!   (and the same with each connection its own document, where only backend calls can be shared);
//! - subscription update latency: `districtBalance` over SSE while transfers are sent through the
//!   gateway one at a time, from the mutation's response (and from its sending) to the event;
//! - memory with a full cache: RSS before and after loading 1,000 distinct cached queries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{fmt_opt, ms, post_graphql, quantile, verdict};
use crate::load::Target;
use crate::procs;
use crate::prom::Metrics;
use crate::report::Row;
use crate::stack::{self, Bank, Gateway, MosaicOptions};
use crate::{Env, Settings};

/// CPU per request targeted for the warm-cache 2-level query.
const CPU_TARGET_US: f64 = 30.0;

#[derive(Debug, Clone, clap::Args)]
pub struct CacheArgs {
    /// Measured time of the warm-cache throughput.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured load first (it also fills the cache).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Connections of the warm-cache throughput (each its own page of customers).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Concurrent identical queries of the coalescing burst.
    #[arg(long, default_value_t = 64)]
    burst_connections: usize,
    /// Length of each coalescing burst.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    burst: Duration,
    /// Latency added to customers and accounts during the bursts.
    #[arg(long, default_value_t = 50)]
    burst_latency_ms: u64,
    /// Transfers sent while subscribed.
    #[arg(long, default_value_t = 100)]
    transfers: usize,
    /// Distinct cached queries loaded for the memory figure.
    #[arg(long, default_value_t = 1000)]
    cached_queries: usize,
}

#[derive(Debug, Serialize)]
struct Warm {
    connections: usize,
    row: Row,
    cache_hits: f64,
    cache_stale_hits: f64,
    cache_misses: f64,
    hit_ratio: Option<f64>,
    cpu_target_met: bool,
}

#[derive(Debug, Serialize)]
struct Burst {
    documents: &'static str,
    /// The backends' `singleflight` (coalescing of identical backend calls in flight).
    singleflight: bool,
    row: Row,
    /// Gateway requests ÷ backend calls.
    requests_per_backend_call: f64,
    /// Backend calls ÷ requests (2 when nothing is shared: customers + accounts).
    backend_calls_per_request: f64,
}

#[derive(Debug, Default, Serialize)]
struct Subscription {
    district: String,
    transfers_sent: usize,
    completed: usize,
    failed: usize,
    events: usize,
    /// Completed transfers whose event did not come within 5 s.
    missing_events: usize,
    /// Events whose total was not the previous one minus the amount.
    unexpected_totals: usize,
    /// Events that arrived before the mutation's response.
    before_response: usize,
    from_response_p50_ms: f64,
    from_response_p99_ms: f64,
    from_response_max_ms: f64,
    from_send_p50_ms: f64,
    from_send_p99_ms: f64,
    from_send_max_ms: f64,
    mutation_p50_ms: f64,
    mutation_p99_ms: f64,
    first_event_ms: f64,
}

#[derive(Debug, Serialize)]
struct Memory {
    form: &'static str,
    /// false: the control, caching off (what serving the same queries costs without a cache).
    cache: bool,
    queries: usize,
    rss_before_mib: f64,
    rss_after_mib: f64,
    cache_entries: f64,
    cache_bytes: f64,
    /// (RSS after − before) ÷ cache entries.
    rss_bytes_per_entry: Option<f64>,
    errors: usize,
    load_seconds: f64,
}

#[derive(Debug, Serialize)]
struct Results {
    smoke: bool,
    cores: usize,
    query: String,
    warm: Option<Warm>,
    bursts: Vec<Burst>,
    burst_connections: usize,
    burst_latency_ms: u64,
    subscription: Option<Subscription>,
    memory: Vec<Memory>,
    notes: Vec<String>,
    suspicious: Vec<String>,
}

pub async fn run(args: CacheArgs, env: Env) -> Result<Vec<String>> {
    let smoke = env.smoke;
    let warm_settings = Settings {
        duration: if smoke { Duration::from_secs(1) } else { args.duration },
        warmup: if smoke { Duration::from_millis(500) } else { args.warmup },
        connections: if smoke { 8 } else { args.connections.max(1) },
        smoke,
    };
    let burst = if smoke { Duration::from_secs(1) } else { args.burst };
    let transfers = if smoke { 20 } else { args.transfers };
    let cached_queries = if smoke { 200 } else { args.cached_queries };
    eprintln!(
        "bench cache: {} cores shared by everything; warm cache {} connections {:?}+{:?}; bursts of {} identical queries for {:?}; {} transfers; {} cached queries",
        env.cores,
        warm_settings.connections,
        warm_settings.warmup,
        warm_settings.duration,
        args.burst_connections,
        burst,
        transfers,
        cached_queries
    );
    let mut bank = env.start_bank()?;
    let mut notes = Vec::new();
    let mut suspicious = Vec::new();
    let mut problems = Vec::new();

    // Warm cache, then the subscription on the same gateway.
    let opts = MosaicOptions::new("cache-warm").edit("server.drain_delay", "0s");
    let mut gw =
        stack::start_mosaic_with(&env.schema_dir, &env.mosaic_bin, &env.tmp.path, &opts, &bank, &env.http).await?;
    super::check_2level(&env.http, &gw).await?;
    let warm = warm_cache(&env, &mut bank, &gw, &warm_settings).await?;
    if !warm.cpu_target_met {
        suspicious.push(format!(
            "warm cache: {:.1} µs of gateway CPU per request > the {CPU_TARGET_US} µs target",
            warm.row.cpu_us_per_request
        ));
    }
    if warm.row.errors() > 0 {
        problems.push(format!("warm cache: {} errors", warm.row.errors()));
    }
    let subscription = match subscription(&env, &gw, transfers).await {
        Ok(s) => Some(s),
        Err(e) => {
            problems.push(format!("subscription: {e:#}"));
            None
        }
    };
    if let Some(s) = &subscription {
        if s.missing_events > 0 || s.unexpected_totals > 0 {
            suspicious.push(format!(
                "subscription: {} completed transfers without an event within 5 s, {} events with an unexpected total",
                s.missing_events, s.unexpected_totals
            ));
        }
    }
    gw.proc.check_alive()?;
    super::stop_gateway(&mut gw, "cache warm", &mut notes);
    drop(gw);

    // Coalescing, caching off: with the backend calls' single-flight (the default), then without.
    let latency = json!({ "latency_ms": args.burst_latency_ms });
    let burst_settings = Settings {
        duration: burst,
        warmup: Duration::from_millis(500),
        connections: args.burst_connections.max(1),
        smoke,
    };
    let mut bursts = Vec::new();
    for singleflight in [true, false] {
        let mut opts = MosaicOptions::new(if singleflight { "cache-off" } else { "cache-off-nosf" })
            .edit("server.drain_delay", "0s")
            .edit("cache.enabled", false);
        if !singleflight {
            opts = opts
                .edit("backends.customers.singleflight", false)
                .edit("backends.accounts.singleflight", false);
        }
        let mut gw =
            stack::start_mosaic_with(&env.schema_dir, &env.mosaic_bin, &env.tmp.path, &opts, &bank, &env.http).await?;
        super::check_2level(&env.http, &gw).await?;
        for service in ["customers", "accounts"] {
            bank.set_faults(&env.http, service, &latency).await?;
        }
        let measured = async {
            for (documents, variants) in [("identical", 1), ("one per connection", burst_settings.connections)] {
                let t = Target::graphql(gw.addr, "/graphql", &super::query_2level(0), variants);
                let pid = gw.proc.pid();
                let row = crate::measure(
                    &burst_settings,
                    &env.http,
                    &mut bank,
                    "mosaic",
                    "nested2-p20",
                    "off",
                    t,
                    pid,
                    None,
                )
                .await?;
                let requests = (row.requests + row.errors()) as f64;
                bursts.push(Burst {
                    documents,
                    singleflight,
                    requests_per_backend_call: requests / (row.backend_calls.max(1)) as f64,
                    backend_calls_per_request: row.backend_calls as f64 / requests.max(1.0),
                    row,
                });
            }
            anyhow::Ok(())
        }
        .await;
        for service in ["customers", "accounts"] {
            bank.reset_faults(&env.http, service).await?;
        }
        measured?;
        gw.proc.check_alive()?;
        super::stop_gateway(&mut gw, "cache off", &mut notes);
    }
    for b in &bursts {
        if b.row.errors() > 0 {
            problems.push(format!(
                "coalescing ({} documents): {} errors",
                b.documents,
                b.row.errors()
            ));
        }
    }

    // Memory with a full cache: a fresh gateway per form of the queries.
    let mut memory = Vec::new();
    for (form, cache_on) in [
        (Form::Variables, true),
        (Form::Documents, true),
        (Form::Variables, false),
    ] {
        let mut opts =
            MosaicOptions::new(&format!("cache-memory-{}-{cache_on}", form.key())).edit("server.drain_delay", "0s");
        opts.cache_off = !cache_on;
        let mut gw =
            stack::start_mosaic_with(&env.schema_dir, &env.mosaic_bin, &env.tmp.path, &opts, &bank, &env.http).await?;
        let m = fill_cache(&env, &gw, form, cache_on, cached_queries).await?;
        if m.errors > 0 {
            problems.push(format!("memory ({}): {} errors", m.form, m.errors));
        }
        memory.push(m);
        gw.proc.check_alive()?;
        super::stop_gateway(&mut gw, "cache memory", &mut notes);
    }
    bank.proc.check_alive()?;

    suspicious.extend(notes.iter().cloned());
    let results = Results {
        smoke,
        cores: env.cores,
        query: super::query_2level(0).replace("offset: 0", "offset: N"),
        warm: Some(warm),
        bursts,
        burst_connections: burst_settings.connections,
        burst_latency_ms: args.burst_latency_ms,
        subscription,
        memory,
        notes,
        suspicious,
    };
    println!("{}", render(&results));
    env.write_results("bench-cache", &results)?;
    Ok(problems)
}

async fn warm_cache(env: &Env, bank: &mut Bank, gw: &Gateway, settings: &Settings) -> Result<Warm> {
    let queries = super::queries_per_connection(settings.connections);
    let target = Target::graphql_each(gw.addr, "/graphql", &queries);
    let metrics = gw.metrics_url().context("no admin listener")?;
    let row = crate::measure(
        settings,
        &env.http,
        bank,
        "mosaic",
        "nested2-p20",
        "schema",
        target,
        gw.proc.pid(),
        Some(&metrics),
    )
    .await?;
    let get = |k: &str| row.gateway_metrics.get(k).copied().unwrap_or(0.0);
    let (hits, stale, misses) = (
        get("mosaic_cache_hits_total"),
        get("mosaic_cache_stale_hits_total"),
        get("mosaic_cache_misses_total"),
    );
    let lookups = hits + stale + misses;
    Ok(Warm {
        connections: settings.connections,
        cpu_target_met: row.cpu_us_per_request <= CPU_TARGET_US,
        hit_ratio: (lookups > 0.0).then(|| (hits + stale) / lookups),
        cache_hits: hits,
        cache_stale_hits: stale,
        cache_misses: misses,
        row,
    })
}

/// Reads Server-Sent Events from `response` into `tx`: (arrival, `data` as JSON) per event.
async fn read_events(mut response: reqwest::Response, tx: mpsc::UnboundedSender<(Instant, Value)>) {
    let mut buf = String::new();
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(c)) => c,
            _ => return,
        };
        let at = Instant::now();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        if buf.contains('\r') {
            buf = buf.replace("\r\n", "\n");
        }
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut event = "message";
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = if v.trim() == "next" { "next" } else { "other" };
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if event == "other" || data.is_empty() {
                continue;
            }
            if let Ok(v) = serde_json::from_str::<Value>(&data) {
                if tx.send((at, v)).is_err() {
                    return;
                }
            }
        }
    }
}

fn total_of(event: &Value) -> Option<i64> {
    let v = event.pointer("/data/districtBalance/totalBalance")?;
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

async fn subscription(env: &Env, gw: &Gateway, transfers: usize) -> Result<Subscription> {
    const FROM: &str = "A0001";
    const AMOUNT: i64 = 100;
    let owner = post_graphql(
        &env.http,
        gw,
        &format!("{{ account(id: \"{FROM}\") {{ balance owner {{ district }} }} }}"),
    )
    .await?;
    let district = owner
        .pointer("/data/account/owner/district")
        .and_then(Value::as_str)
        .context("no district for A0001")?
        .to_owned();
    let balance = owner
        .pointer("/data/account/balance")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if balance < AMOUNT * transfers as i64 {
        bail!("{FROM} holds {balance}, too little for {transfers} transfers of {AMOUNT}");
    }
    // A client of its own: no overall timeout on the stream.
    let sse = reqwest::Client::builder().no_proxy().build()?;
    let opened = Instant::now();
    let response = sse
        .post(gw.url())
        .header("accept", "text/event-stream")
        .json(&json!({
            "query": format!("subscription {{ districtBalance(district: \"{district}\") {{ totalBalance }} }}")
        }))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("subscribing answered {}", response.status());
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reader = tokio::spawn(read_events(response, tx));
    let _abort = AbortOnDrop(reader);
    let (first_at, first) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .context("no first event within 5 s")?
        .context("the event stream ended")?;
    let mut total = total_of(&first).with_context(|| format!("first event without a total: {first}"))?;
    let mut s = Subscription {
        district,
        first_event_ms: ms(first_at.duration_since(opened)),
        ..Subscription::default()
    };
    let (mut from_resp, mut from_send, mut round_trip) = (Vec::new(), Vec::new(), Vec::new());
    let run = std::process::id();
    for i in 0..transfers {
        let key = format!("bench-{run}-{i}-{}", opened.elapsed().as_nanos());
        let mutation = format!(
            "mutation {{ transfer(input: {{fromAccount: \"{FROM}\", toAccount: \"EXT-0042\", toBank: \"Hana Bank\", amount: {AMOUNT}, idempotencyKey: \"{key}\"}}) {{ id status }} }}"
        );
        let sent = Instant::now();
        let answer = post_graphql(&env.http, gw, &mutation).await?;
        let answered = Instant::now();
        s.transfers_sent += 1;
        round_trip.push(ms(answered - sent));
        match answer.pointer("/data/transfer/status").and_then(Value::as_str) {
            Some("COMPLETED") => s.completed += 1,
            Some(_) => {
                s.failed += 1;
                continue;
            }
            None => bail!("transfer answered {answer}"),
        }
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some((at, event))) => {
                s.events += 1;
                let new_total = total_of(&event);
                if new_total != Some(total - AMOUNT) {
                    s.unexpected_totals += 1;
                }
                total = new_total.unwrap_or(total - AMOUNT);
                if at < answered {
                    s.before_response += 1;
                }
                from_resp.push(ms(at.saturating_duration_since(answered)));
                from_send.push(ms(at.saturating_duration_since(sent)));
            }
            Ok(None) => bail!("the event stream ended after {} events", s.events),
            Err(_) => s.missing_events += 1,
        }
    }
    let max = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max);
    s.from_response_p50_ms = quantile(&mut from_resp, 0.5);
    s.from_response_p99_ms = quantile(&mut from_resp, 0.99);
    s.from_response_max_ms = max(&from_resp);
    s.from_send_p50_ms = quantile(&mut from_send, 0.5);
    s.from_send_p99_ms = quantile(&mut from_send, 0.99);
    s.from_send_max_ms = max(&from_send);
    s.mutation_p50_ms = quantile(&mut round_trip, 0.5);
    s.mutation_p99_ms = quantile(&mut round_trip, 0.99);
    Ok(s)
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Debug, Clone, Copy)]
enum Form {
    /// One document, `limit` and `offset` as variables.
    Variables,
    /// Each combination its own document (literals): also fills the plan cache.
    Documents,
}

impl Form {
    fn key(self) -> &'static str {
        match self {
            Form::Variables => "variables",
            Form::Documents => "documents",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Form::Variables => "one document, variables",
            Form::Documents => "one document each",
        }
    }

    fn body(self, limit: usize, offset: usize) -> Value {
        match self {
            Form::Variables => json!({
                "query": "query Page($limit: Int, $offset: Int) { customers(limit: $limit, offset: $offset) { id name accounts { id balance currency } } }",
                "variables": { "limit": limit, "offset": offset },
            }),
            Form::Documents => json!({
                "query": format!("{{ customers(limit: {limit}, offset: {offset}) {{ id name accounts {{ id balance currency }} }} }}"),
            }),
        }
    }
}

/// Loads `n` distinct (limit 1..=50, offset 0..) queries, 16 at a time, and reads RSS and the
/// cache's size.
async fn fill_cache(env: &Env, gw: &Gateway, form: Form, cache_on: bool, n: usize) -> Result<Memory> {
    let pid = gw.proc.pid();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = procs::rss_bytes(pid)?;
    let started = Instant::now();
    let bodies: Vec<Value> = (0..n).map(|i| form.body(1 + i % 50, i / 50)).collect();
    let bodies = Arc::new(bodies);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (bodies, next, http, url) = (bodies.clone(), next.clone(), env.http.clone(), gw.url());
        tasks.push(tokio::spawn(async move {
            let mut errors = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { return errors };
                let ok = match http.post(&url).json(body).send().await {
                    Ok(r) if r.status().is_success() => r
                        .json::<Value>()
                        .await
                        .map(|v| v.get("errors").is_none() && v.get("data").is_some())
                        .unwrap_or(false),
                    _ => false,
                };
                errors += usize::from(!ok);
            }
        }));
    }
    let mut errors = 0;
    for t in tasks {
        errors += t.await.unwrap_or(1);
    }
    let load_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = procs::rss_bytes(pid)?;
    let metrics = Metrics::scrape(&env.http, &gw.metrics_url().context("no admin listener")?).await?;
    let entries = metrics.sum("mosaic_cache_entries");
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    Ok(Memory {
        form: form.describe(),
        cache: cache_on,
        queries: n,
        rss_before_mib: mib(before),
        rss_after_mib: mib(after),
        cache_entries: entries,
        cache_bytes: metrics.sum("mosaic_cache_bytes"),
        rss_bytes_per_entry: (entries > 0.0).then(|| (after as f64 - before as f64) / entries),
        errors,
        load_seconds,
    })
}

fn render(r: &Results) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nMosaic cache bench ({} cores shared by the load generator, the mock bank and the gateway)",
        r.cores
    );
    if let Some(w) = &r.warm {
        let _ = writeln!(
            s,
            "\nWarm cache: `{}`, {} connections each on its own page, default config (customers @cache 30s, accounts 10s); {:.0} s measured",
            r.query,
            w.connections,
            w.row.seconds
        );
        let _ = writeln!(
            s,
            "{:>9} {:>8} {:>8} {:>10} {:>8} {:>9} {:>10} {:>9} {:>8} {:>7} {:>7}",
            "req/s",
            "p50 ms",
            "p99 ms",
            "CPU µs/r",
            "target",
            "hit ratio",
            "stale hits",
            "calls/q",
            "bank µs",
            "errors",
            "others"
        );
        let _ = writeln!(s, "{}", "-".repeat(105));
        let _ = writeln!(
            s,
            "{:>9.0} {:>8.3} {:>8.3} {:>10.1} {:>8} {:>9} {:>10.0} {:>9.4} {:>8.1} {:>7} {:>7.2}",
            w.row.requests_per_s,
            w.row.p50_ms,
            w.row.p99_ms,
            w.row.cpu_us_per_request,
            format!("≤{CPU_TARGET_US:.0} {}", verdict(Some(w.cpu_target_met))),
            w.hit_ratio.map_or("n/a".to_owned(), |h| format!("{:.2}%", h * 100.0)),
            w.cache_stale_hits,
            w.row.backend_calls_per_query,
            w.row.bank_cpu_us_per_request,
            w.row.errors(),
            w.row.other_cores_used
        );
        let _ = writeln!(
            s,
            "(hit ratio: mosaic_cache_hits_total ÷ (hits + stale hits + misses) over the measured window: {:.0} hits, {:.0} stale, {:.0} misses; calls/q: backend calls per request)",
            w.cache_hits, w.cache_stale_hits, w.cache_misses
        );
    }
    if !r.bursts.is_empty() {
        let _ = writeln!(
            s,
            "\nCoalescing: {} connections sending `{}` (offset 0) back to back, caching off, {} ms latency added to customers and accounts",
            r.burst_connections,
            r.query.replace("offset: N", "offset: 0"),
            r.burst_latency_ms
        );
        let _ = writeln!(
            s,
            "{:<20} {:>12} {:>8} {:>8} {:>8} {:>9} {:>13} {:>10} {:>10} {:>9} {:>7}",
            "documents",
            "singleflight",
            "req/s",
            "p50 ms",
            "p99 ms",
            "requests",
            "backend calls",
            "req/call",
            "calls/req",
            "CPU µs/r",
            "errors"
        );
        let _ = writeln!(s, "{}", "-".repeat(123));
        for b in &r.bursts {
            let _ = writeln!(
                s,
                "{:<20} {:>12} {:>8.0} {:>8.1} {:>8.1} {:>9} {:>13} {:>10.2} {:>10.4} {:>9.1} {:>7}",
                b.documents,
                if b.singleflight { "on" } else { "off" },
                b.row.requests_per_s,
                b.row.p50_ms,
                b.row.p99_ms,
                b.row.requests + b.row.errors(),
                b.row.backend_calls,
                b.requests_per_backend_call,
                b.backend_calls_per_request,
                b.row.cpu_us_per_request,
                b.row.errors()
            );
        }
        let _ = writeln!(
            s,
            "(req/call: the coalescing factor, gateway requests ÷ backend calls; without any sharing every request makes 2 calls, customers + accounts: calls/req 2, req/call 0.5; identical documents may share whole executions (operation coalescing), documents differing by a comment only backend calls (single-flight))"
        );
    }
    if let Some(sub) = &r.subscription {
        let _ = writeln!(
            s,
            "\nSubscription: districtBalance(district: \"{}\") over SSE; {} transfers of 100 from A0001 to EXT-0042 (Hana Bank) through the gateway, one at a time",
            sub.district, sub.transfers_sent
        );
        let _ = writeln!(
            s,
            "{:<28} {:>8} {:>8} {:>8}",
            "update latency", "p50 ms", "p99 ms", "max ms"
        );
        let _ = writeln!(s, "{}", "-".repeat(56));
        let _ = writeln!(
            s,
            "{:<28} {:>8.2} {:>8.2} {:>8.2}",
            "from the mutation's response",
            sub.from_response_p50_ms,
            sub.from_response_p99_ms,
            sub.from_response_max_ms
        );
        let _ = writeln!(
            s,
            "{:<28} {:>8.2} {:>8.2} {:>8.2}",
            "from sending the mutation", sub.from_send_p50_ms, sub.from_send_p99_ms, sub.from_send_max_ms
        );
        let _ = writeln!(
            s,
            "{:<28} {:>8.2} {:>8.2}",
            "(mutation round trip)", sub.mutation_p50_ms, sub.mutation_p99_ms
        );
        let _ = writeln!(
            s,
            "completed {}, failed {} (the external bank's natural flakiness), events {}, missing {}, unexpected totals {}, events before the mutation's response {} (counted as 0 ms); first event {:.1} ms after subscribing",
            sub.completed,
            sub.failed,
            sub.events,
            sub.missing_events,
            sub.unexpected_totals,
            sub.before_response,
            sub.first_event_ms
        );
    }
    if !r.memory.is_empty() {
        let _ = writeln!(
            s,
            "\nMemory with a full cache: distinct `customers(limit: 1..50, offset: 0..) {{ id name accounts {{ id balance currency }} }}`, 16 at a time, on a fresh gateway"
        );
        let _ = writeln!(
            s,
            "{:<24} {:>6} {:>8} {:>11} {:>10} {:>9} {:>9} {:>12} {:>12} {:>7}",
            "form",
            "cache",
            "queries",
            "RSS before",
            "RSS after",
            "Δ MiB",
            "entries",
            "cache bytes",
            "Δ RSS/entry",
            "errors"
        );
        let _ = writeln!(s, "{}", "-".repeat(119));
        for m in &r.memory {
            let _ = writeln!(
                s,
                "{:<24} {:>6} {:>8} {:>10.1}M {:>9.1}M {:>9.1} {:>9.0} {:>12.0} {:>12} {:>7}",
                m.form,
                if m.cache { "on" } else { "off" },
                m.queries,
                m.rss_before_mib,
                m.rss_after_mib,
                m.rss_after_mib - m.rss_before_mib,
                m.cache_entries,
                m.cache_bytes,
                fmt_opt(m.rss_bytes_per_entry, 0),
                m.errors
            );
        }
        let _ = writeln!(
            s,
            "(entries and bytes: mosaic_cache_entries and mosaic_cache_bytes, the estimated memory of the answers held, which [cache] max_bytes (64 MiB) bounds; a query makes 2 entries, its customers page and its accounts batch; \"one document each\" also fills the plan cache; cache off: the control, what serving the same queries costs without caching)"
        );
    }
    if !r.suspicious.is_empty() {
        let _ = writeln!(s, "\nSuspicious:");
        for note in &r.suspicious {
            let _ = writeln!(s, "  ! {note}");
        }
    }
    s
}
