//! `bench overhead`: what observability costs on the 2-level query. Three gateways run side by
//! side and are measured in turn, round after round, each round starting with another one (so
//! that a drift of the machine's load hits them alike):
//!
//! - (a) logs at warn, no admin listener: the baseline;
//! - (b) JSON logs at info, `/metrics` on the admin listener scraped every second;
//! - (c) (b) plus `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a tiny OTLP/HTTP sink run by the bench
//!   (it answers 200 to every POST and counts them); if no span reaches it, tracing is reported as
//!   not available rather than measured.
//!
//! Then the time from spawn to ready (`/readyz` 200), and the reload time: SIGHUP, and touching
//! the config, to the log line "configuration reloaded" (its `took_ms`, and the wall time).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::Value;

use super::{fmt_opt, ms, quantile, ConfigFigures};
use crate::load::Target;
use crate::report::Row;
use crate::stack::{self, Gateway, MosaicOptions};
use crate::{Env, Settings};

#[derive(Debug, Clone, clap::Args)]
pub struct OverheadArgs {
    /// Measured time per configuration and round.
    #[arg(long, default_value = "4s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Rounds (each measures a, b and c in turn, starting with another one each round).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Unmeasured load before each measurement.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Concurrent keep-alive connections (each its own page of customers).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Starts timed (spawn → /readyz 200).
    #[arg(long, default_value_t = 5)]
    starts: usize,
    /// SIGHUP reloads timed.
    #[arg(long, default_value_t = 3)]
    reloads: usize,
}

/// A tiny OTLP/HTTP receiver: 200 to every POST, counted per path.
struct Sink {
    addr: SocketAddr,
    traces: Arc<AtomicU64>,
    other: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Sink {
    async fn start() -> Result<Sink> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (traces, other, bytes) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let task = {
            let (traces, other, bytes) = (traces.clone(), other.clone(), bytes.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let (traces, other, bytes) = (traces.clone(), other.clone(), bytes.clone());
                    tokio::spawn(async move {
                        let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                            let (traces, other, bytes) = (traces.clone(), other.clone(), bytes.clone());
                            async move {
                                let is_traces = req.method() == hyper::Method::POST && req.uri().path() == "/v1/traces";
                                let body = req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                                if is_traces {
                                    traces.fetch_add(1, Ordering::Relaxed);
                                } else {
                                    other.fetch_add(1, Ordering::Relaxed);
                                }
                                // An empty protobuf message is a valid ExportTraceServiceResponse.
                                let response = hyper::Response::builder()
                                    .status(200)
                                    .header("content-type", "application/x-protobuf")
                                    .body(Full::new(Bytes::new()))
                                    .unwrap_or_default();
                                Ok::<_, Infallible>(response)
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            })
        };
        Ok(Sink {
            addr,
            traces,
            other,
            bytes,
            task,
        })
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Scrapes `/metrics` every second until dropped.
struct Scraper {
    stop: Arc<AtomicBool>,
    scrapes: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Scraper {
    fn start(http: reqwest::Client, url: String) -> Scraper {
        let stop = Arc::new(AtomicBool::new(false));
        let (scrapes, failures, bytes) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let task = {
            let (stop, scrapes, failures, bytes) = (stop.clone(), scrapes.clone(), failures.clone(), bytes.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match http.get(&url).send().await {
                        Ok(r) if r.status().is_success() => {
                            let body = r.bytes().await.unwrap_or_default();
                            bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                            scrapes.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            })
        };
        Scraper {
            stop,
            scrapes,
            failures,
            bytes,
            task,
        }
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.abort();
    }
}

/// One configuration: its throughput figures, and what its telemetry produced.
#[derive(Debug, Serialize)]
struct Config {
    #[serde(flatten)]
    figures: ConfigFigures,
    scrapes: Option<u64>,
    scrape_failures: Option<u64>,
    scrape_bytes_avg: Option<f64>,
    log_bytes: u64,
}

#[derive(Debug, Serialize)]
struct Startup {
    starts: usize,
    min_ms: f64,
    median_ms: f64,
    max_ms: f64,
    all_ms: Vec<f64>,
    /// The first requests after ready with their operation in `[server] warmup`.
    first_requests_warmed: FirstSummary,
    /// The same without it (compiled on first sight).
    first_requests_cold: FirstSummary,
}

/// One document with a variable: each request asks for a page no earlier request asked for, so
/// every one misses the cache and calls both backends; only the first meets an uncompiled
/// operation (when it was not warmed up) and a new client connection.
const FIRST_QUERY: &str =
    "query FirstRequests($offset: Int) { customers(limit: 20, offset: $offset) { id accounts { id balance } } }";

/// Requests timed after each start: the first, and the ones after it.
const NEXT_REQUESTS: usize = 10;

#[derive(Debug, Default)]
struct FirstRequests {
    first_ms: Vec<f64>,
    next_ms: Vec<f64>,
}

#[derive(Debug, Serialize)]
struct FirstSummary {
    /// Median over the starts of the first request's latency.
    first_median_ms: f64,
    first_all_ms: Vec<f64>,
    /// Median of the next requests' latencies, over all starts.
    next_median_ms: f64,
}

impl FirstRequests {
    fn summary(mut self) -> FirstSummary {
        FirstSummary {
            first_median_ms: quantile(&mut self.first_ms.clone(), 0.5),
            first_all_ms: std::mem::take(&mut self.first_ms),
            next_median_ms: quantile(&mut self.next_ms, 0.5),
        }
    }
}

/// Times the first request to a gateway that just became ready (over a new connection), then
/// [`NEXT_REQUESTS`] more on that connection; each must answer data without errors.
async fn first_requests(addr: SocketAddr) -> Result<(f64, Vec<f64>)> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()?;
    let url = format!("http://{addr}/graphql");
    let mut times = Vec::with_capacity(NEXT_REQUESTS + 1);
    for i in 0..=NEXT_REQUESTS {
        let body = serde_json::json!({"query": FIRST_QUERY, "variables": {"offset": i * 20}});
        let started = Instant::now();
        let answer: Value = http.post(&url).json(&body).send().await?.json().await?;
        times.push(ms(started.elapsed()));
        if answer.get("errors").is_some() || !answer["data"]["customers"].is_array() {
            bail!("the first requests after start failed: {answer}");
        }
    }
    let first = times.remove(0);
    Ok((first, times))
}

#[derive(Debug, Serialize)]
struct Reload {
    trigger: String,
    /// From the signal (or the touch) to the log line.
    wall_ms: Option<f64>,
    /// The `took_ms` the log line reports.
    took_ms: Option<f64>,
    note: Option<String>,
}

#[derive(Debug, Serialize)]
struct Results {
    smoke: bool,
    cores: usize,
    connections: usize,
    query: String,
    rounds: usize,
    duration_per_round_s: f64,
    configs: Vec<Config>,
    otlp_sink: SinkReport,
    startup: Option<Startup>,
    reloads: Vec<Reload>,
    suspicious: Vec<String>,
}

#[derive(Debug, Serialize)]
struct SinkReport {
    addr: String,
    trace_posts: u64,
    other_posts: u64,
    bytes: u64,
}

pub async fn run(args: OverheadArgs, env: Env) -> Result<Vec<String>> {
    let smoke = env.smoke;
    let settings = Settings {
        duration: if smoke { Duration::from_secs(1) } else { args.duration },
        warmup: if smoke { Duration::from_millis(300) } else { args.warmup },
        connections: if smoke { 8 } else { args.connections.max(1) },
        smoke,
    };
    let rounds = if smoke { 1 } else { args.rounds.max(1) };
    let starts = if smoke { 2 } else { args.starts.max(1) };
    let reloads = if smoke { 1 } else { args.reloads };
    eprintln!(
        "bench overhead: {} cores shared by everything; {} connections; {rounds} round(s) of {:?}+{:?} per configuration",
        env.cores, settings.connections, settings.warmup, settings.duration
    );
    let mut bank = env.start_bank()?;
    let sink = Sink::start().await?;
    let endpoint = format!("http://{}", sink.addr);
    let mut problems = Vec::new();
    let mut suspicious = Vec::new();

    let base = |label: &str| {
        MosaicOptions::new(label)
            .edit("server.drain_delay", "0s")
            .env("MOSAIC_LOG_FORMAT", "json")
    };
    let mut a = base("overhead-a");
    a.admin = false;
    let mut b = base("overhead-b");
    b.log_level = "info".to_owned();
    let mut c = base("overhead-c")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_BSP_SCHEDULE_DELAY", "1000")
        .env("OTEL_SERVICE_NAME", "mosaic-bench");
    c.log_level = "info".to_owned();
    let describe = [
        "(a) logs at warn, no admin listener",
        "(b) JSON logs at info + /metrics scraped every 1 s",
        "(c) (b) + OTLP tracing to a local sink",
    ];
    let mut gws = Vec::new();
    for opts in [&a, &b, &c] {
        let gw =
            stack::start_mosaic_with(&env.schema_dir, &env.mosaic_bin, &env.tmp.path, opts, &bank, &env.http).await?;
        super::check_2level(&env.http, &gw).await?;
        eprintln!("bench overhead: {} pid {} at {}", opts.label, gw.proc.pid(), gw.addr);
        gws.push(gw);
    }
    let scrapers: Vec<Option<Scraper>> = gws
        .iter()
        .map(|gw| gw.metrics_url().map(|u| Scraper::start(env.http.clone(), u)))
        .collect();

    let queries = super::queries_per_connection(settings.connections);
    let targets: Vec<Target> = gws
        .iter()
        .map(|gw| Target::graphql_each(gw.addr, "/graphql", &queries))
        .collect();
    let keys = ["a", "b", "c"];
    let measured = super::measure_in_turn(
        &settings, &env.http, &mut bank, &mut gws, &targets, &keys, rounds, "overhead",
    )
    .await?;
    let c_load_ended = measured.last_load_ended[2];

    // Reloads on (b): JSON logs at info.
    let mut reload_results = Vec::new();
    match reload_times(&mut gws[1], reloads).await {
        Ok(r) => reload_results = r,
        Err(e) => problems.push(format!("reload: {e:#}")),
    }
    if let Err(e) = super::check_2level(&env.http, &gws[1]).await {
        problems.push(format!("after the reloads: {e:#}"));
    }

    // Tracing: did any span arrive? The exporter flushes every second (OTEL_BSP_SCHEDULE_DELAY);
    // give it 3 s after (c)'s last load.
    let wait = Duration::from_secs(3).saturating_sub(c_load_ended.elapsed());
    tokio::time::sleep(wait).await;
    let trace_posts = sink.traces.load(Ordering::Relaxed);
    let tracing_unavailable = (trace_posts == 0).then(|| {
        format!(
            "tracing not available: OTEL_EXPORTER_OTLP_ENDPOINT={endpoint} was set and the sink received no span in {:.0} s \
             (the gateway exports no traces: see its telemetry/tracing.rs)",
            c_load_ended.elapsed().as_secs_f64()
        )
    });

    let mut configs = Vec::new();
    for (i, rows) in measured.rows.into_iter().enumerate() {
        let log_bytes = std::fs::metadata(&gws[i].log).map(|m| m.len()).unwrap_or(0);
        configs.push(aggregate(keys[i], describe[i], rows, scrapers[i].as_ref(), log_bytes));
    }
    drop(scrapers);
    super::judge_against_baseline(configs.iter_mut().map(|c| &mut c.figures), |i| {
        Some(if i == 1 { 0.05 } else { 0.10 })
    });
    if let Some(why) = &tracing_unavailable {
        configs[2].figures.unavailable = Some(why.clone());
        configs[2].figures.target_met = None;
    }
    for cfg in &configs {
        suspicious.extend(cfg.figures.missed());
        if cfg.figures.errors > 0 {
            problems.push(format!("{}: {} errors", cfg.figures.describe, cfg.figures.errors));
        }
        if cfg.scrape_failures.unwrap_or(0) > 0 {
            suspicious.push(format!(
                "{}: {} failed scrapes of /metrics",
                cfg.figures.describe,
                cfg.scrape_failures.unwrap_or(0)
            ));
        }
    }
    let mut notes = Vec::new();
    for (i, gw) in gws.iter_mut().enumerate() {
        gw.proc.check_alive()?;
        super::stop_gateway(gw, ["overhead a", "overhead b", "overhead c"][i], &mut notes);
    }
    drop(gws);

    // Startup: spawn → /readyz 200, configuration (a); then the first requests, with the
    // operation they run named in `[server] warmup` or not, in alternation.
    let warmup_file = env.tmp.path.join("first-requests.graphql");
    std::fs::write(&warmup_file, FIRST_QUERY).context("writing the warm-up document")?;
    let mut times = Vec::new();
    let (mut warm, mut cold) = (FirstRequests::default(), FirstRequests::default());
    for i in 0..starts * 2 {
        let warmed = i % 2 == 0;
        let mut opts = a.clone();
        opts.label = format!("overhead-start-{i}");
        if warmed {
            let file = toml::Value::String(warmup_file.display().to_string());
            opts = opts.edit("server.warmup", toml::Value::Array(vec![file]));
        }
        let mut gw =
            stack::start_mosaic_with(&env.schema_dir, &env.mosaic_bin, &env.tmp.path, &opts, &bank, &env.http).await?;
        if warmed {
            times.push(ms(gw.ready_in));
        }
        let (first, rest) = first_requests(gw.addr).await?;
        let into = if warmed { &mut warm } else { &mut cold };
        into.first_ms.push(first);
        into.next_ms.extend(rest);
        super::stop_gateway(&mut gw, "overhead start", &mut notes);
    }
    let mut sorted = times.clone();
    let startup = Startup {
        starts,
        min_ms: sorted.iter().copied().fold(f64::INFINITY, f64::min),
        median_ms: quantile(&mut sorted, 0.5),
        max_ms: sorted.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        all_ms: times,
        first_requests_warmed: warm.summary(),
        first_requests_cold: cold.summary(),
    };
    bank.proc.check_alive()?;
    suspicious.extend(notes);
    for r in &reload_results {
        if let Some(n) = &r.note {
            suspicious.push(format!("reload ({}): {n}", r.trigger));
        }
    }

    let results = Results {
        smoke,
        cores: env.cores,
        connections: settings.connections,
        query: super::query_2level(0).replace("offset: 0", "offset: N"),
        rounds,
        duration_per_round_s: settings.duration.as_secs_f64(),
        configs,
        otlp_sink: SinkReport {
            addr: endpoint,
            trace_posts,
            other_posts: sink.other.load(Ordering::Relaxed),
            bytes: sink.bytes.load(Ordering::Relaxed),
        },
        startup: Some(startup),
        reloads: reload_results,
        suspicious,
    };
    println!("{}", render(&results));
    env.write_results("bench-overhead", &results)?;
    Ok(problems)
}

fn aggregate(key: &'static str, describe: &str, rows: Vec<Row>, scraper: Option<&Scraper>, log_bytes: u64) -> Config {
    let scrapes = scraper.map(|s| s.scrapes.load(Ordering::Relaxed));
    Config {
        figures: ConfigFigures::of_rounds(key, describe, rows),
        scrapes,
        scrape_failures: scraper.map(|s| s.failures.load(Ordering::Relaxed)),
        scrape_bytes_avg: scraper.and_then(|s| {
            let n = s.scrapes.load(Ordering::Relaxed);
            (n > 0).then(|| s.bytes.load(Ordering::Relaxed) as f64 / n as f64)
        }),
        log_bytes,
    }
}

/// Waits for a new "configuration reloaded" line in `log` after byte `from`; its JSON.
async fn reloaded_line(log: &Path, from: u64, within: Duration) -> Result<Value> {
    let deadline = Instant::now() + within;
    loop {
        let text = std::fs::read(log).unwrap_or_default();
        let fresh = String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default()).into_owned();
        for line in fresh.lines() {
            if line.contains("configuration reloaded") {
                return serde_json::from_str(line).with_context(|| format!("not a JSON log line: {line}"));
            }
            if line.contains("new configuration rejected") {
                bail!("the reload was rejected: {line}");
            }
        }
        if Instant::now() >= deadline {
            bail!("no \"configuration reloaded\" line within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn took_ms(line: &Value) -> Option<f64> {
    line.pointer("/fields/took_ms")
        .or_else(|| line.get("took_ms"))
        .and_then(Value::as_f64)
}

async fn reload_times(gw: &mut Gateway, sighups: usize) -> Result<Vec<Reload>> {
    let mut out = Vec::new();
    let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    for _ in 0..sighups {
        let from = len(&gw.log);
        let sent = Instant::now();
        gw.proc.signal(libc::SIGHUP)?;
        let line = reloaded_line(&gw.log, from, Duration::from_secs(10)).await;
        let wall = sent.elapsed();
        out.push(match line {
            Ok(v) => Reload {
                trigger: "SIGHUP".to_owned(),
                wall_ms: Some(ms(wall)),
                took_ms: took_ms(&v),
                note: None,
            },
            Err(e) => Reload {
                trigger: "SIGHUP".to_owned(),
                wall_ms: None,
                took_ms: None,
                note: Some(format!("{e:#}")),
            },
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Touching the config: noticed by the gateway's 2-second poll of the files' modification times.
    let config = gw.config.clone().context("no config path")?;
    let from = len(&gw.log);
    let touched = Instant::now();
    std::fs::File::options()
        .write(true)
        .open(&config)?
        .set_modified(SystemTime::now() + Duration::from_secs(1))?;
    let line = reloaded_line(&gw.log, from, Duration::from_secs(8)).await;
    let wall = touched.elapsed();
    out.push(match line {
        Ok(v) => Reload {
            trigger: "touch mosaic.toml".to_owned(),
            wall_ms: Some(ms(wall)),
            took_ms: took_ms(&v),
            note: None,
        },
        Err(e) => Reload {
            trigger: "touch mosaic.toml".to_owned(),
            wall_ms: None,
            took_ms: None,
            note: Some(format!("{e:#}")),
        },
    });
    Ok(out)
}

fn render(r: &Results) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nMosaic observability overhead: {} connections, each its own page of `{}`, default config (cache on); {} round(s) of {:.0} s per configuration, measured in turn; {} cores shared by everything",
        r.connections, r.query, r.rounds, r.duration_per_round_s, r.cores
    );
    let figures: Vec<&ConfigFigures> = r.configs.iter().map(|c| &c.figures).collect();
    s.push_str(&super::render_comparison(&figures));
    for c in &r.configs {
        if let Some(why) = &c.figures.unavailable {
            let _ = writeln!(
                s,
                "{}: {why}; its figures are those of (b) with the variable set, not a tracing cost",
                c.figures.describe
            );
        }
        if let Some(n) = c.scrapes {
            let _ = writeln!(
                s,
                "{}: {} scrapes of /metrics ({} bytes each on average), {} failed; log {} bytes",
                c.figures.key,
                n,
                fmt_opt(c.scrape_bytes_avg, 0),
                c.scrape_failures.unwrap_or(0),
                c.log_bytes
            );
        } else {
            let _ = writeln!(s, "{}: log {} bytes", c.figures.key, c.log_bytes);
        }
    }
    let _ = writeln!(
        s,
        "OTLP sink {}: {} POST /v1/traces, {} other requests, {} bytes",
        r.otlp_sink.addr, r.otlp_sink.trace_posts, r.otlp_sink.other_posts, r.otlp_sink.bytes
    );
    if let Some(st) = &r.startup {
        let _ = writeln!(
            s,
            "\nStartup (spawn → /readyz 200, configuration (a)), {} starts: min {:.0} ms, median {:.0} ms, max {:.0} ms",
            st.starts, st.min_ms, st.median_ms, st.max_ms
        );
        let _ = writeln!(
            s,
            "First requests after ready (a new connection, cold cache, every request a cache miss; medians over {} starts each):",
            st.starts
        );
        for (label, f) in [
            ("operation in [server] warmup", &st.first_requests_warmed),
            ("not warmed up", &st.first_requests_cold),
        ] {
            let _ = writeln!(
                s,
                "  {label:<30} first {:.2} ms, the {NEXT_REQUESTS} after it {:.2} ms (first/next {:.2}x)",
                f.first_median_ms,
                f.next_median_ms,
                f.first_median_ms / f.next_median_ms.max(1e-9)
            );
        }
    }
    if !r.reloads.is_empty() {
        let _ = writeln!(s, "\nReload (configuration (b), under no load)");
        let _ = writeln!(s, "{:<20} {:>12} {:>10}", "trigger", "wall ms", "took_ms");
        let _ = writeln!(s, "{}", "-".repeat(44));
        for rl in &r.reloads {
            let _ = writeln!(
                s,
                "{:<20} {:>12} {:>10}",
                rl.trigger,
                fmt_opt(rl.wall_ms, 1),
                fmt_opt(rl.took_ms, 0)
            );
        }
        let _ = writeln!(
            s,
            "(wall: from the signal or the touch to the log line \"configuration reloaded\" appearing in the log; took_ms: as the line says; a touch is noticed by the gateway's 2-second poll)"
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
