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

use super::{fmt_opt, ms, quantile, verdict};
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

#[derive(Debug, Serialize)]
struct Config {
    key: &'static str,
    describe: String,
    rows: Vec<Row>,
    requests_per_s: f64,
    cpu_us_per_request: f64,
    p50_ms: f64,
    p99_ms: f64,
    rps_min: f64,
    rps_max: f64,
    errors: u64,
    /// 1 − req/s ÷ the baseline's.
    throughput_loss: Option<f64>,
    /// CPU µs/req ÷ the baseline's − 1.
    cpu_increase: Option<f64>,
    /// The median over the rounds of 1 − req/s ÷ (a)'s in the same round (less sensitive to the
    /// machine's load drifting than the totals): what the verdict uses.
    paired_loss_median: Option<f64>,
    /// The median over the rounds of CPU µs/req ÷ (a)'s in the same round − 1.
    paired_cpu_increase_median: Option<f64>,
    target_loss: Option<f64>,
    target_met: Option<bool>,
    /// Why the row does not measure what it says (tracing not available).
    unavailable: Option<String>,
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
    let mut rows: Vec<Vec<Row>> = vec![Vec::new(), Vec::new(), Vec::new()];
    let mut c_load_ended = Instant::now();
    for round in 0..rounds {
        // Each round starts with another configuration, so that none is always measured first.
        let order: Vec<usize> = (0..gws.len()).map(|k| (k + round) % gws.len()).collect();
        for i in order {
            let gw = &mut gws[i];
            gw.proc.check_alive()?;
            let t = Target::graphql_each(gw.addr, "/graphql", &queries);
            let pid = gw.proc.pid();
            let key = ["a", "b", "c"][i];
            let row = crate::measure(
                &settings,
                &env.http,
                &mut bank,
                "mosaic",
                "nested2-p20",
                key,
                t,
                pid,
                None,
            )
            .await?;
            if i == 2 {
                c_load_ended = Instant::now();
            }
            eprintln!("bench overhead: round {} {key} done", round + 1);
            rows[i].push(row);
        }
    }

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
    for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
        let scraper = scrapers[i].as_ref();
        let log_bytes = std::fs::metadata(&gws[i].log).map(|m| m.len()).unwrap_or(0);
        configs.push(aggregate(
            key,
            describe[i],
            std::mem::take(&mut rows[i]),
            scraper,
            log_bytes,
        ));
    }
    drop(scrapers);
    let (base_rps, base_cpu) = (configs[0].requests_per_s, configs[0].cpu_us_per_request);
    let base_rounds: Vec<(f64, f64)> = configs[0]
        .rows
        .iter()
        .map(|r| (r.requests_per_s, r.cpu_us_per_request))
        .collect();
    for (i, cfg) in configs.iter_mut().enumerate().skip(1) {
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
        cfg.target_loss = Some(if i == 1 { 0.05 } else { 0.10 });
        cfg.target_met = cfg.paired_loss_median.zip(cfg.target_loss).map(|(l, t)| l <= t);
    }
    if let Some(why) = &tracing_unavailable {
        configs[2].unavailable = Some(why.clone());
        configs[2].target_met = None;
    }
    for cfg in &configs {
        if cfg.target_met == Some(false) {
            suspicious.push(format!(
                "{}: {:.1}% throughput loss against (a) (median of the rounds; {:.1}% over all), target ≤ {:.0}% (CPU µs/req {:+.1}%)",
                cfg.describe,
                cfg.paired_loss_median.unwrap_or(0.0) * 100.0,
                cfg.throughput_loss.unwrap_or(0.0) * 100.0,
                cfg.target_loss.unwrap_or(0.0) * 100.0,
                cfg.paired_cpu_increase_median.unwrap_or(0.0) * 100.0
            ));
        }
        if cfg.errors > 0 {
            problems.push(format!("{}: {} errors", cfg.describe, cfg.errors));
        }
        if cfg.scrape_failures.unwrap_or(0) > 0 {
            suspicious.push(format!(
                "{}: {} failed scrapes of /metrics",
                cfg.describe,
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

    // Startup: spawn → /readyz 200, configuration (a).
    let mut times = Vec::new();
    for i in 0..starts {
        let mut opts = a.clone();
        opts.label = format!("overhead-start-{i}");
        let mut gw =
            stack::start_mosaic_with(&env.schema_dir, &env.mosaic_bin, &env.tmp.path, &opts, &bank, &env.http).await?;
        times.push(ms(gw.ready_in));
        super::stop_gateway(&mut gw, "overhead start", &mut notes);
    }
    let mut sorted = times.clone();
    let startup = Startup {
        starts,
        min_ms: sorted.iter().copied().fold(f64::INFINITY, f64::min),
        median_ms: quantile(&mut sorted, 0.5),
        max_ms: sorted.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        all_ms: times,
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
    let scrapes = scraper.map(|s| s.scrapes.load(Ordering::Relaxed));
    Config {
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
    for c in &r.configs {
        let _ = writeln!(
            s,
            "{:<52} {:>9.0} {:>15} {:>9.1} {:>9.3} {:>8.3} {:>10} {:>8} {:>11} {:>9} {:>7} {:>8}",
            c.describe,
            c.requests_per_s,
            format!("{:.0}..{:.0}", c.rps_min, c.rps_max),
            c.cpu_us_per_request,
            c.p50_ms,
            c.p99_ms,
            c.throughput_loss
                .map_or("-".to_owned(), |l| format!("{:+.1}%", l * 100.0)),
            c.cpu_increase.map_or("-".to_owned(), |l| format!("{:+.1}%", l * 100.0)),
            c.paired_loss_median
                .map_or("-".to_owned(), |l| format!("{:+.1}%", l * 100.0)),
            c.paired_cpu_increase_median
                .map_or("-".to_owned(), |l| format!("{:+.1}%", l * 100.0)),
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
    for c in &r.configs {
        if let Some(why) = &c.unavailable {
            let _ = writeln!(
                s,
                "{}: {why}; its figures are those of (b) with the variable set, not a tracing cost",
                c.describe
            );
        }
        if let Some(n) = c.scrapes {
            let _ = writeln!(
                s,
                "{}: {} scrapes of /metrics ({} bytes each on average), {} failed; log {} bytes",
                c.key,
                n,
                fmt_opt(c.scrape_bytes_avg, 0),
                c.scrape_failures.unwrap_or(0),
                c.log_bytes
            );
        } else {
            let _ = writeln!(s, "{}: log {} bytes", c.key, c.log_bytes);
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
