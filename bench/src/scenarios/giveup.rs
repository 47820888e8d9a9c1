//! `bench chaos --faults give-up`: clients that give up on a slow backend.
//!
//! A ticker backend (in this process, on loopback) answers `GET /tick/{id}` with the moment it
//! produced the answer, after a settable latency. The gateway binds `tick(id:)` to it (a copy of
//! the demo schema with one more backend, caching off, a small bulkhead). Three phases:
//!
//! - `before` (ticker fast): patient clients only;
//! - `give-up` (ticker slow, 400 ms): impatient clients (50 ms timeouts, a hot key and fresh keys)
//!   abandon request after request, while patient clients keep asking;
//! - `after` (ticker fast again): patient clients only.
//!
//! Every answer a patient client gets is checked: an answer produced more than
//! [`STALE_AFTER`] before its request was sent is *stale* (an abandoned call's answer served later
//! as fresh). Joining a call in flight is not stale: its answer is produced after the request was
//! sent, or (the backend answering in well under a millisecond) a moment before. Reported per phase: requests,
//! answers, stale answers, 5xx, `BULKHEAD_FULL`, other errors, p50/p99; then the bulkhead slots
//! still held once every client stopped (from `/healthz`), the time until the first
//! second of clean answers after the phase, and the gateway's RSS.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{json, Value};

use crate::stack::{self, Bank, MosaicOptions};
use crate::Env;

/// The ticker's latency while clients give up.
const SLOW: Duration = Duration::from_millis(400);
/// How long an impatient client waits.
const IMPATIENCE: Duration = Duration::from_millis(50);
/// How much older than its request an answer may be (the time a fast answer spends on its way
/// back to a request that joined its call) before it counts as stale.
const STALE_AFTER: Duration = Duration::from_millis(100);

/// Concurrent impatient and patient clients.
const IMPATIENT: usize = 48;
const PATIENT: usize = 8;

/// The ticker: its latency (ms) and when it started.
#[derive(Clone)]
struct Ticker {
    latency_ms: Arc<AtomicU64>,
    t0: Instant,
    answers: Arc<AtomicU64>,
}

async fn tick(
    axum::extract::State(t): axum::extract::State<Ticker>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> axum::Json<Value> {
    let latency = t.latency_ms.load(Ordering::Relaxed);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let n = t.answers.fetch_add(1, Ordering::Relaxed) + 1;
    axum::Json(json!({ "id": id, "n": n, "atUs": t.t0.elapsed().as_micros() as u64 }))
}

async fn start_ticker(t0: Instant) -> Result<(SocketAddr, Ticker, tokio::task::JoinHandle<()>)> {
    let ticker = Ticker {
        latency_ms: Arc::default(),
        t0,
        answers: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/tick/{id}", axum::routing::get(tick))
        .route("/health", axum::routing::get(|| async { "ok" }))
        .with_state(ticker.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, ticker, task))
}

/// The demo schema plus `tick(id:)` bound to the ticker.
fn schema_with_ticker(env: &Env) -> Result<std::path::PathBuf> {
    let dir = env.tmp.path.join("giveup-schema");
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(env.schema_dir.join("mosaic.toml"), dir.join("mosaic.toml"))?;
    let sdl = std::fs::read_to_string(env.schema_dir.join("bank.graphql")).context("bank.graphql")?;
    let extra = "\ntype Tick {\n  id: ID!\n  n: Int!\n  atUs: Float!\n}\n\nextend type Query {\n  tick(id: ID!): Tick @http(backend: \"ticker\", path: \"/tick/{{args.id}}\")\n}\n";
    std::fs::write(dir.join("bank.graphql"), format!("{sdl}{extra}"))?;
    Ok(dir)
}

/// What one phase's patient clients saw.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PhaseCounts {
    pub phase: String,
    pub seconds: f64,
    pub requests: u64,
    pub answers: u64,
    pub stale: u64,
    pub status_5xx: u64,
    pub bulkhead_full: u64,
    pub other_errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Requests the impatient clients abandoned (timed out).
    pub abandoned: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct GiveUpRun {
    pub slow_ms: f64,
    pub impatience_ms: f64,
    pub impatient_clients: usize,
    pub patient_clients: usize,
    pub phases: Vec<PhaseCounts>,
    /// Bulkhead slots of the ticker still taken once every client stopped (and 200 ms passed).
    pub held_after: Option<u64>,
    /// From the end of the give-up phase to the first second of only clean, fresh answers.
    pub recovery_ms: Option<f64>,
    pub rss_before_mib: f64,
    pub rss_after_mib: f64,
}

/// One patient answer: when it was sent and answered (µs since t0), and what it was.
struct Outcome {
    sent_us: u64,
    done_us: u64,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fresh,
    Stale,
    Status5xx,
    BulkheadFull,
    OtherError,
}

fn classify(status: u16, body: &Value, sent_us: u64) -> Kind {
    if status >= 500 {
        return Kind::Status5xx;
    }
    if let Some(errors) = body.get("errors").and_then(Value::as_array) {
        let full = errors
            .iter()
            .any(|e| e["extensions"]["code"].as_str() == Some("BULKHEAD_FULL"));
        return if full { Kind::BulkheadFull } else { Kind::OtherError };
    }
    match body["data"]["tick"]["atUs"].as_f64() {
        Some(at) if (at as u64) + (STALE_AFTER.as_micros() as u64) < sent_us => Kind::Stale,
        Some(_) => Kind::Fresh,
        None => Kind::OtherError,
    }
}

async fn ask(http: &reqwest::Client, url: &str, id: &str) -> Result<(u16, Value)> {
    let response = http
        .post(url)
        .json(&json!({ "query": "query($id: ID!) { tick(id: $id) { id n atUs } }", "variables": { "id": id } }))
        .send()
        .await?;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

pub async fn run(env: &Env, bank: &Bank, notes: &mut Vec<String>) -> Result<GiveUpRun> {
    let t0 = Instant::now();
    let us = move || t0.elapsed().as_micros() as u64;
    let (addr, ticker, ticker_task) = start_ticker(t0).await?;
    let schema = schema_with_ticker(env)?;
    let opts = MosaicOptions::new("chaos-give-up")
        .edit("server.drain_delay", "0s")
        .edit("cache.enabled", false)
        .edit("backends.ticker.url", format!("http://{addr}"))
        .edit("backends.ticker.timeout", "2s")
        .edit("backends.ticker.bulkhead.max_concurrent", 32i64)
        .edit("backends.ticker.bulkhead.max_queue", 32i64);
    let mut gw = stack::start_mosaic_with(&schema, &env.mosaic_bin, &env.tmp.path, &opts, bank, &env.http).await?;
    let url = gw.url();
    let healthz = format!("http://{}/healthz", gw.addr);
    let rss = |pid| {
        crate::procs::rss_bytes(pid)
            .map(|b| b as f64 / 1048576.0)
            .unwrap_or(f64::NAN)
    };
    let rss_before = rss(gw.proc.pid());
    let (before, during, after) = if env.smoke {
        (Duration::from_secs(1), Duration::from_secs(3), Duration::from_secs(3))
    } else {
        (Duration::from_secs(3), Duration::from_secs(10), Duration::from_secs(8))
    };

    // Patient clients run throughout; their outcomes are split by phase afterwards.
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let keys = Arc::new(AtomicU64::new(0));
    let mut patient = Vec::new();
    for i in 0..PATIENT {
        let (stop, outcomes, keys, url) = (stop.clone(), outcomes.clone(), keys.clone(), url.clone());
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()?;
        patient.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                // Half ask the hot key (coalesced with the impatient ones), half fresh keys.
                let id = if i % 2 == 0 {
                    "hot".to_owned()
                } else {
                    format!("p{}", keys.fetch_add(1, Ordering::Relaxed))
                };
                let sent_us = us();
                let kind = match ask(&http, &url, &id).await {
                    Ok((status, body)) => classify(status, &body, sent_us),
                    Err(_) => Kind::OtherError,
                };
                let done_us = us();
                outcomes
                    .lock()
                    .map(|mut o| o.push(Outcome { sent_us, done_us, kind }))
                    .ok();
            }
        }));
    }
    tokio::time::sleep(before).await;

    // Give-up phase.
    let t_slow = us();
    ticker.latency_ms.store(SLOW.as_millis() as u64, Ordering::Relaxed);
    let stop_impatient = Arc::new(AtomicBool::new(false));
    let abandoned = Arc::new(AtomicU64::new(0));
    let mut impatient = Vec::new();
    for i in 0..IMPATIENT {
        let (stop, keys, url, abandoned) = (stop_impatient.clone(), keys.clone(), url.clone(), abandoned.clone());
        let http = reqwest::Client::builder().no_proxy().timeout(IMPATIENCE).build()?;
        impatient.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let id = if i % 2 == 0 {
                    "hot".to_owned()
                } else {
                    format!("i{}", keys.fetch_add(1, Ordering::Relaxed))
                };
                if ask(&http, &url, &id).await.is_err() {
                    abandoned.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(during).await;
    stop_impatient.store(true, Ordering::Relaxed);
    for task in impatient {
        let _ = task.await;
    }
    let t_fast = us();
    ticker.latency_ms.store(0, Ordering::Relaxed);
    tokio::time::sleep(after).await;
    stop.store(true, Ordering::Relaxed);
    for task in patient {
        let _ = task.await;
    }
    let t_end = us();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let held_after = ticker_in_flight(&env.http, &healthz).await;
    let rss_after = rss(gw.proc.pid());
    gw.proc.check_alive()?;
    super::stop_gateway(&mut gw, "chaos give-up", notes);
    ticker_task.abort();

    let outcomes = std::mem::take(&mut *outcomes.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    let phase = |name: &str, from: u64, to: u64, abandoned: u64| {
        let mut c = PhaseCounts {
            phase: name.to_owned(),
            seconds: (to - from) as f64 / 1e6,
            abandoned,
            ..PhaseCounts::default()
        };
        let mut latencies: Vec<u64> = Vec::new();
        for o in outcomes.iter().filter(|o| o.sent_us >= from && o.sent_us < to) {
            c.requests += 1;
            latencies.push(o.done_us - o.sent_us);
            match o.kind {
                Kind::Fresh => c.answers += 1,
                Kind::Stale => {
                    c.answers += 1;
                    c.stale += 1
                }
                Kind::Status5xx => c.status_5xx += 1,
                Kind::BulkheadFull => c.bulkhead_full += 1,
                Kind::OtherError => c.other_errors += 1,
            }
        }
        latencies.sort_unstable();
        let pct = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                .map_or(f64::NAN, |v| *v as f64 / 1e3)
        };
        c.p50_ms = pct(0.5);
        c.p99_ms = pct(0.99);
        c
    };
    // Recovery: the first second after the phase in which every answer sent was fresh.
    let mut recovery_ms = None;
    let mut start = t_fast;
    while start + 1_000_000 <= t_end {
        let window: Vec<&Outcome> = outcomes
            .iter()
            .filter(|o| o.sent_us >= start && o.sent_us < start + 1_000_000)
            .collect();
        if !window.is_empty() && window.iter().all(|o| o.kind == Kind::Fresh) {
            recovery_ms = Some((start - t_fast) as f64 / 1e3);
            break;
        }
        start += 50_000;
    }
    Ok(GiveUpRun {
        slow_ms: super::ms(SLOW),
        impatience_ms: super::ms(IMPATIENCE),
        impatient_clients: IMPATIENT,
        patient_clients: PATIENT,
        phases: vec![
            phase("before", 0, t_slow, 0),
            phase("give-up", t_slow, t_fast, abandoned.load(Ordering::Relaxed)),
            phase("after", t_fast, t_end, 0),
        ],
        held_after,
        recovery_ms,
        rss_before_mib: rss_before,
        rss_after_mib: rss_after,
    })
}

/// The ticker's bulkhead slots in use, from `/healthz`.
async fn ticker_in_flight(http: &reqwest::Client, healthz: &str) -> Option<u64> {
    let body: Value = http.get(healthz).send().await.ok()?.json().await.ok()?;
    body["backends"].as_array()?.iter().find(|b| b["backend"] == "ticker")?["in_flight"].as_u64()
}

/// The run's problems (targets: no stale answer, no 5xx, no `BULKHEAD_FULL` and no slot held
/// after the phase, clean within a second).
pub fn suspicions(r: &GiveUpRun) -> Vec<String> {
    let mut out = Vec::new();
    for p in &r.phases {
        if p.stale > 0 {
            out.push(format!("give-up: {} stale answers in phase {}", p.stale, p.phase));
        }
        if p.status_5xx > 0 {
            out.push(format!("give-up: {} 5xx in phase {}", p.status_5xx, p.phase));
        }
    }
    if let Some(after) = r.phases.last() {
        if after.bulkhead_full > 0 {
            out.push(format!(
                "give-up: {} BULKHEAD_FULL after the phase",
                after.bulkhead_full
            ));
        }
    }
    if r.held_after.unwrap_or(1) > 0 {
        out.push(format!(
            "give-up: bulkhead slots still held after the phase: {:?}",
            r.held_after
        ));
    }
    match r.recovery_ms {
        Some(ms) if ms <= 1000.0 => {}
        other => out.push(format!("give-up: recovery took {other:?} ms (target ≤ 1000)")),
    }
    out
}

/// The run as a table.
pub fn render(r: &GiveUpRun) -> String {
    let mut out = format!(
        "\nClients giving up: ticker latency {:.0} ms during the phase; {} impatient clients ({:.0} ms timeouts, a hot key and fresh keys), {} patient clients (5 s) throughout\n",
        r.slow_ms, r.impatient_clients, r.impatience_ms, r.patient_clients
    );
    out.push_str(&format!(
        "{:<8} {:>6} {:>9} {:>8} {:>7} {:>5} {:>13} {:>6} {:>8} {:>8} {:>10}\n",
        "phase", "s", "requests", "answers", "stale", "5xx", "BULKHEAD_FULL", "other", "p50 ms", "p99 ms", "abandoned"
    ));
    for p in &r.phases {
        out.push_str(&format!(
            "{:<8} {:>6.1} {:>9} {:>8} {:>7} {:>5} {:>13} {:>6} {:>8.1} {:>8.1} {:>10}\n",
            p.phase,
            p.seconds,
            p.requests,
            p.answers,
            p.stale,
            p.status_5xx,
            p.bulkhead_full,
            p.other_errors,
            p.p50_ms,
            p.p99_ms,
            p.abandoned
        ));
    }
    out.push_str(&format!(
        "bulkhead slots held once the clients stopped: {} (target 0); clean and fresh again after: {} ms (target ≤ 1000); gateway RSS {:.1} → {:.1} MiB\n",
        r.held_after.map_or("n/a".to_owned(), |n| n.to_string()),
        super::fmt_opt(r.recovery_ms, 0),
        r.rss_before_mib,
        r.rss_after_mib
    ));
    out
}
