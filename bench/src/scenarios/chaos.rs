//! `bench chaos`: resilience under steady load. Sixteen connections send the 2-level query (each
//! its own page, caching off) while the accounts service goes through healthy → fault → healed,
//! once per fault: answering 503 (`down`), killed outright (`refused`: a second mock bank serves
//! accounts and is SIGKILLed, then restarted on the same ports), slowed past the gateway's timeout
//! (`slow`), failing half its calls (`errors`).
//!
//! Meanwhile the gateway's `/healthz` (the accounts breaker: state, times opened, retries) and the
//! accounts service's `/_stats` are read every 20 ms, so that the backend calls can be attributed
//! to the moments the breaker was open, and the time it took to close after healing measured.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::json;

use super::{breaker_view, fmt_opt, verdict, BreakerView};
use crate::load::Target;
use crate::stack::{self, Bank, MosaicOptions};
use crate::timeline::{micros, Sample, Summary, TimelineRun};
use crate::Env;

/// How often the breaker and the backend's counters are read.
const MONITOR_EVERY: Duration = Duration::from_millis(20);

/// The backend under fault.
const SERVICE: &str = "accounts";

#[derive(Debug, Clone, clap::Args)]
pub struct ChaosArgs {
    /// Load before the fault (after a short unmeasured warmup).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    healthy: Duration,
    /// How long the fault lasts.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    fault: Duration,
    /// Load after healing (longer if the breaker has not closed by then).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    healed: Duration,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// The faults to run, in order.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Fault::Down, Fault::Refused, Fault::Slow, Fault::Errors, Fault::GiveUp])]
    faults: Vec<Fault>,
    /// The accounts timeout of the `slow` run (in its copy of the config); the latency injected
    /// is this plus max(1 s, 20%): 1s → 2000 ms, 5s (the config's own) → 6000 ms.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    slow_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// `{"down": true}`: every call (and /health) answers 503 at once.
    Down,
    /// The accounts service's process is killed: connections are refused.
    Refused,
    /// `{"latency_ms": …}` past the gateway's timeout.
    Slow,
    /// `{"error_rate": 0.5}`.
    Errors,
    /// Clients giving up on a slow backend (a run of its own: see [`super::giveup`]).
    GiveUp,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Down => "down",
            Fault::Refused => "refused",
            Fault::Slow => "slow",
            Fault::Errors => "errors",
            Fault::GiveUp => "give-up",
        }
    }
}

/// The phases of one run.
#[derive(Debug, Clone, Copy)]
struct Phases {
    warmup: Duration,
    healthy: Duration,
    fault: Duration,
    healed: Duration,
}

/// The accounts backend's settings, as the gateway serving the run reads them.
#[derive(Debug, Clone, Serialize)]
pub struct BackendConf {
    pub timeout_ms: f64,
    pub minimum_calls: i64,
    pub window_size: i64,
    pub wait_in_open_ms: f64,
    pub probe_interval_ms: f64,
    pub half_open_calls: i64,
    pub retry_attempts: i64,
}

impl BackendConf {
    /// From the copy of mosaic.toml (the gateway's defaults where it says nothing).
    fn read(config: &std::path::Path) -> Result<BackendConf> {
        let table: toml::Table = std::fs::read_to_string(config)?.parse()?;
        let backend = table
            .get("backends")
            .and_then(|b| b.get(SERVICE))
            .with_context(|| format!("{}: no [backends.{SERVICE}]", config.display()))?;
        let breaker = backend.get("breaker");
        let dur = |v: Option<&toml::Value>, default: &str| -> Result<Duration> {
            let text = v.and_then(toml::Value::as_str).unwrap_or(default);
            humantime::parse_duration(text).with_context(|| format!("duration {text:?}"))
        };
        let int = |v: Option<&toml::Value>, default: i64| v.and_then(toml::Value::as_integer).unwrap_or(default);
        Ok(BackendConf {
            timeout_ms: super::ms(dur(backend.get("timeout"), "10s")?),
            minimum_calls: int(breaker.and_then(|b| b.get("minimum_calls")), 10),
            window_size: int(breaker.and_then(|b| b.get("window_size")), 20),
            wait_in_open_ms: super::ms(dur(breaker.and_then(|b| b.get("wait_in_open")), "10s")?),
            probe_interval_ms: super::ms(dur(breaker.and_then(|b| b.get("probe_interval")), "1s")?),
            half_open_calls: int(breaker.and_then(|b| b.get("half_open_calls")), 3),
            retry_attempts: int(backend.get("retry").and_then(|r| r.get("attempts")), 3),
        })
    }
}

/// One reading: the breaker, the backend's business calls, the breaker again.
#[derive(Debug, Clone, Serialize)]
pub struct Tick {
    pub before_us: u64,
    pub before: BreakerView,
    pub stats_us: u64,
    /// The accounts service's business calls since the run began (None: it did not answer).
    pub calls: Option<u64>,
    pub after_us: u64,
    pub after: BreakerView,
}

/// Reads the breaker and the backend's counters until stopped.
struct Monitor {
    ticks: Arc<Mutex<Vec<Tick>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Monitor {
    fn start(healthz: String, stats: String, t0: Instant) -> Result<Monitor> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(1))
            .build()?;
        let ticks = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let (ticks, stop) = (ticks.clone(), stop.clone());
            tokio::spawn(async move {
                let now = || micros(t0.elapsed());
                while !stop.load(Ordering::Relaxed) {
                    let before_us = now();
                    let before = breaker_view(&http, &healthz, SERVICE).await;
                    let stats_us = now();
                    let calls = service_total(&http, &stats).await.ok();
                    let after_us = now();
                    let after = breaker_view(&http, &healthz, SERVICE).await;
                    if let (Ok(before), Ok(after)) = (before, after) {
                        let tick = Tick {
                            before_us,
                            before,
                            stats_us,
                            calls,
                            after_us,
                            after,
                        };
                        ticks.lock().unwrap_or_else(|p| p.into_inner()).push(tick);
                    }
                    tokio::time::sleep(MONITOR_EVERY).await;
                }
            })
        };
        Ok(Monitor { ticks, stop, task })
    }

    fn snapshot(&self) -> Vec<Tick> {
        self.ticks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn finish(mut self) -> Vec<Tick> {
        self.stop.store(true, Ordering::SeqCst);
        let _ = (&mut self.task).await;
        self.snapshot()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

async fn service_total(http: &reqwest::Client, stats_url: &str) -> Result<u64> {
    let v: serde_json::Value = http.get(stats_url).send().await?.error_for_status()?.json().await?;
    v.get("total").and_then(serde_json::Value::as_u64).context("no total")
}

/// Per phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseRow {
    pub phase: String,
    #[serde(flatten)]
    pub summary: Summary,
}

/// A breaker state change seen by the monitor.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// Since the fault began (negative: before).
    pub at_ms: f64,
    pub to: String,
}

/// Everything about one fault.
#[derive(Debug, Clone, Serialize)]
pub struct ChaosRun {
    pub fault: Fault,
    /// What was done to the accounts service.
    pub injected: String,
    pub backend: BackendConf,
    pub phases: Vec<PhaseRow>,
    /// Requests sent and answered while the breaker was open (the whole request).
    pub while_open: Summary,
    /// Share of all requests answered 5xx.
    pub share_5xx: f64,
    /// Requests started during the fault that took longer than the accounts timeout + 10%.
    pub fault_over_timeout: u64,
    /// From the fault to the first reading of the breaker not closed.
    pub opened_after_ms: Option<f64>,
    /// Times the breaker opened during the run.
    pub times_opened: u64,
    /// Time the breaker was seen open (between readings that both saw it open, with no reopening).
    pub open_ms: f64,
    /// Business calls the accounts service received while the breaker was open (its `/health`,
    /// which the probes use, is not counted). None: the service could not be asked (killed).
    pub calls_while_open: Option<u64>,
    /// The gateway's retries of accounts calls while it was open.
    pub retries_while_open: u64,
    /// Of those, the calls counted more than 200 ms after the breaker was seen opening (the rest
    /// is the tail of what it let through before: requests in flight, retries in their backoff).
    pub calls_while_open_late: Option<u64>,
    /// Where those calls fell: (ms since the fault began, calls, retries) per reading interval.
    pub calls_while_open_at: Vec<(f64, u64, u64)>,
    /// Calls the breaker rejected during the fault.
    pub rejected_during_fault: u64,
    /// Business calls the accounts service received during the fault.
    pub backend_calls_during_fault: Option<u64>,
    /// The gateway's retries of accounts calls during the fault (/healthz backends[].retries).
    pub retries_during_fault: u64,
    /// Backend calls ÷ logical calls (backend calls − retries) during the fault.
    pub retry_amplification: Option<f64>,
    /// From the healing (faults reset, or the killed service listening again) to /healthz
    /// showing the breaker closed; None if it never closed (or never opened: see `never_opened`).
    pub time_to_close_ms: Option<f64>,
    pub never_opened: bool,
    /// `refused`: how long the killed service took to start again.
    pub restart_ms: Option<f64>,
    /// Breaker state changes (first 40).
    pub changes: Vec<Change>,
    pub targets: Targets,
}

/// The targets, met or not (None: not applicable).
#[derive(Debug, Clone, Serialize)]
pub struct Targets {
    pub no_5xx: Option<bool>,
    /// p99 during the fault ≤ the backend timeout + 10%.
    pub fault_p99_within_timeout: Option<bool>,
    /// p99 while open ≤ healthy p99 + 1 ms.
    pub open_p99_near_healthy: Option<bool>,
    /// No business call reached the backend while open, but for the tail of the opening.
    pub no_calls_while_open: Option<bool>,
    pub amplification_at_most_1_1: Option<bool>,
    /// Time to close ≤ wait_in_open + one probe interval.
    pub closes_in_time: Option<bool>,
}

#[derive(Debug, Serialize)]
struct Results {
    smoke: bool,
    cores: usize,
    connections: usize,
    query: String,
    config: String,
    healthy_s: f64,
    fault_s: f64,
    healed_s: f64,
    monitor_every_ms: f64,
    runs: Vec<ChaosRun>,
    give_up: Option<super::giveup::GiveUpRun>,
    suspicious: Vec<String>,
}

pub async fn run(args: ChaosArgs, env: Env) -> Result<Vec<String>> {
    let phases = if env.smoke {
        Phases {
            warmup: Duration::from_millis(250),
            healthy: Duration::from_secs(1),
            fault: Duration::from_secs(3),
            healed: Duration::from_secs(2),
        }
    } else {
        Phases {
            warmup: Duration::from_millis(500),
            healthy: args.healthy,
            fault: args.fault,
            healed: args.healed,
        }
    };
    let connections = args.connections.max(1);
    eprintln!(
        "bench chaos: {} cores shared by everything; {connections} connections; phases healthy {:?} → fault {:?} → healed {:?}; faults: {}",
        env.cores,
        phases.healthy,
        phases.fault,
        phases.healed,
        args.faults.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
    );
    let bank = env.start_bank()?;
    let mut runs = Vec::new();
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let mut give_up = None;
    for &fault in &args.faults {
        eprintln!("bench chaos: --- {} ---", fault.name());
        if fault == Fault::GiveUp {
            match super::giveup::run(&env, &bank, &mut notes).await {
                Ok(r) => give_up = Some(r),
                Err(e) => problems.push(format!("give-up: {e:#}")),
            }
            continue;
        }
        match run_one(&env, &bank, fault, &args, phases, connections, &mut notes).await {
            Ok(r) => runs.push(r),
            Err(e) => {
                eprintln!("bench chaos: {}: {e:#}", fault.name());
                problems.push(format!("{}: {e:#}", fault.name()));
            }
        }
        bank.reset_faults(&env.http, SERVICE).await?;
    }
    let mut suspicious = notes;
    for r in &runs {
        suspicious.extend(suspicions(r));
    }
    if let Some(g) = &give_up {
        suspicious.extend(super::giveup::suspicions(g));
    }
    let results = Results {
        smoke: env.smoke,
        cores: env.cores,
        connections,
        query: super::query_2level(0).replace("offset: 0", "offset: N"),
        config: "schema/mosaic.toml with [cache] enabled = false and [server] drain_delay = \"0s\"".to_owned(),
        healthy_s: phases.healthy.as_secs_f64(),
        fault_s: phases.fault.as_secs_f64(),
        healed_s: phases.healed.as_secs_f64(),
        monitor_every_ms: super::ms(MONITOR_EVERY),
        runs,
        give_up,
        suspicious,
    };
    println!("{}", render(&results));
    env.write_results("bench-chaos", &results)?;
    for r in &results.runs {
        if r.phases.iter().any(|p| p.summary.requests == 0) {
            problems.push(format!("{}: a phase without any request", r.fault.name()));
        }
    }
    Ok(problems)
}

#[allow(clippy::too_many_arguments)]
async fn run_one(
    env: &Env,
    bank: &Bank,
    fault: Fault,
    args: &ChaosArgs,
    phases: Phases,
    connections: usize,
    notes: &mut Vec<String>,
) -> Result<ChaosRun> {
    let http = &env.http;
    // `refused`: accounts from a bank of its own (same seed, same data), which can be killed.
    let mut own_bank = None;
    let mut opts = MosaicOptions::new(&format!("chaos-{}", fault.name()))
        .edit("server.drain_delay", "0s")
        .edit("cache.enabled", false);
    if fault == Fault::Refused {
        let base = crate::procs::free_port_run(stack::SERVICES.len() as u16)?;
        let b = Bank::start_named(&env.bank_bin, &env.tmp.path, base, "mock-bank-accounts")?;
        opts.urls.insert(SERVICE.to_owned(), b.url(SERVICE).to_owned());
        own_bank = Some((b, base));
    }
    let slow_latency = args.slow_timeout + (args.slow_timeout / 5).max(Duration::from_secs(1));
    if fault == Fault::Slow {
        opts = opts.edit(
            &format!("backends.{SERVICE}.timeout"),
            format!("{}ms", args.slow_timeout.as_millis()),
        );
    }
    let injected = match fault {
        Fault::Down => json!({"down": true}).to_string(),
        Fault::Refused => {
            "the accounts service's process SIGKILLed (connections refused), restarted on the same port to heal"
                .to_owned()
        }
        Fault::Slow => json!({"latency_ms": slow_latency.as_millis() as u64}).to_string(),
        Fault::Errors => json!({"error_rate": 0.5}).to_string(),
        Fault::GiveUp => anyhow::bail!("the give-up run is not a fault on accounts"),
    };
    let accounts_url = match &own_bank {
        Some((b, _)) => b.url(SERVICE).to_owned(),
        None => bank.url(SERVICE).to_owned(),
    };
    let mut gw = stack::start_mosaic_with(&env.schema_dir, &env.mosaic_bin, &env.tmp.path, &opts, bank, http).await?;
    let conf = BackendConf::read(gw.config.as_deref().context("no config path")?)?;
    eprintln!(
        "bench chaos: mosaic pid {} at {} (accounts timeout {:.0} ms, breaker: minimum_calls {}, window {}, wait {:.0} ms, probe {:.0} ms, half_open_calls {}); fault: {injected}",
        gw.proc.pid(),
        gw.addr,
        conf.timeout_ms,
        conf.minimum_calls,
        conf.window_size,
        conf.wait_in_open_ms,
        conf.probe_interval_ms,
        conf.half_open_calls
    );
    super::check_2level(http, &gw).await?;
    let stats_reset = format!("{accounts_url}/_stats/reset");
    http.post(&stats_reset).send().await?.error_for_status()?;

    let target = Arc::new(Target::graphql_each(
        gw.addr,
        "/graphql",
        &super::queries_per_connection(connections),
    ));
    let load = TimelineRun::start(target, connections, crate::REQUEST_TIMEOUT).await?;
    let t0 = load.t0();
    let healthz = format!("http://{}/healthz", gw.addr);
    let monitor = Monitor::start(healthz, format!("{accounts_url}/_stats"), t0)?;
    let us = |d: Duration| micros(d);
    tokio::time::sleep(phases.warmup).await;
    let t_healthy = load.now_us();
    tokio::time::sleep(phases.healthy).await;

    // The fault.
    let t_fault = load.now_us();
    match fault {
        Fault::Refused => {
            if let Some((b, _)) = own_bank.as_mut() {
                b.proc.kill_now();
            }
        }
        Fault::Down => bank.set_faults(http, SERVICE, &json!({"down": true})).await?,
        Fault::Slow => {
            bank.set_faults(http, SERVICE, &json!({"latency_ms": slow_latency.as_millis() as u64}))
                .await?
        }
        Fault::Errors => bank.set_faults(http, SERVICE, &json!({"error_rate": 0.5})).await?,
        Fault::GiveUp => {}
    }
    tokio::time::sleep(
        phases
            .fault
            .saturating_sub(Duration::from_micros(load.now_us() - t_fault)),
    )
    .await;

    // Healing.
    let mut restart_ms = None;
    let t_heal = match fault {
        Fault::Refused => {
            let (_, base) = own_bank.take().context("no own bank")?;
            let started = Instant::now();
            let b = Bank::start_named(&env.bank_bin, &env.tmp.path, base, "mock-bank-accounts")?;
            restart_ms = Some(super::ms(started.elapsed()));
            own_bank = Some((b, base));
            load.now_us()
        }
        _ => {
            let t = load.now_us();
            bank.reset_faults(http, SERVICE).await?;
            t
        }
    };
    // The healed phase lasts its time, and longer if the breaker has not closed by then (at most
    // the wait in open + a probe interval + 5 s).
    let cap = t_heal
        + us(Duration::from_secs_f64(
            (conf.wait_in_open_ms + conf.probe_interval_ms) / 1e3 + 5.0,
        ));
    let planned_end = t_heal + us(phases.healed);
    loop {
        let now = load.now_us();
        let closed = monitor
            .snapshot()
            .iter()
            .any(|t| t.before_us >= t_heal && t.before.state == "closed");
        if (now >= planned_end && closed) || now >= cap.max(planned_end) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t_end = load.now_us();
    let samples = load.finish().await;
    let ticks = monitor.finish().await;
    gw.proc.check_alive()?;
    super::stop_gateway(&mut gw, &format!("chaos {}", fault.name()), notes);
    drop(own_bank);

    Ok(analyse(
        fault,
        injected,
        conf,
        &samples,
        &ticks,
        [t_healthy, t_fault, t_heal, t_end],
        restart_ms,
    ))
}

/// Calls counted within this long of the breaker opening are the tail of what it let through
/// before (requests in flight, retries scheduled with their backoff: 25 ms, then 50 ms).
const OPENING_TAIL: Duration = Duration::from_millis(200);

/// Windows during which the breaker was open throughout, with the calls and retries in them.
struct OpenWindow {
    /// When this opening was first seen.
    opened_us: u64,
    /// The end of the window's `/_stats` interval.
    stats_end_us: u64,
    /// From the reading before to the reading after: the breaker was open all along.
    from_us: u64,
    to_us: u64,
    /// Calls counted between the two readings of `/_stats` (within the window).
    calls: Option<u64>,
    stats_span_us: u64,
    retries: u64,
}

fn open_windows(ticks: &[Tick]) -> Vec<OpenWindow> {
    let first_seen = |opened: u64| {
        ticks
            .iter()
            .flat_map(|t| [(t.before_us, &t.before), (t.after_us, &t.after)])
            .find(|(_, v)| v.state == "open" && v.opened == opened)
            .map_or(0, |(at, _)| at)
    };
    ticks
        .windows(2)
        .filter(|w| {
            w[0].before.state == "open" && w[1].after.state == "open" && w[0].before.opened == w[1].after.opened
        })
        .map(|w| OpenWindow {
            opened_us: first_seen(w[0].before.opened),
            stats_end_us: w[1].stats_us,
            from_us: w[0].before_us,
            to_us: w[1].after_us,
            calls: w[0].calls.zip(w[1].calls).map(|(a, b)| b.saturating_sub(a)),
            stats_span_us: w[1].stats_us - w[0].stats_us,
            retries: w[1].after.retries.saturating_sub(w[0].before.retries),
        })
        .collect()
}

/// Merges overlapping windows into sorted, disjoint intervals.
fn merge(windows: &[OpenWindow]) -> Vec<(u64, u64)> {
    let mut spans: Vec<(u64, u64)> = windows.iter().map(|w| (w.from_us, w.to_us)).collect();
    spans.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (a, b) in spans {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

/// Whether [a, b] lies within one of the sorted, disjoint `intervals`.
fn within(intervals: &[(u64, u64)], a: u64, b: u64) -> bool {
    let i = intervals.partition_point(|&(from, _)| from <= a);
    i > 0 && intervals[i - 1].1 >= b
}

/// The last tick read before `t`, and the first after.
fn tick_before(ticks: &[Tick], t: u64) -> Option<&Tick> {
    ticks.iter().rev().find(|k| k.after_us <= t)
}

fn tick_after(ticks: &[Tick], t: u64) -> Option<&Tick> {
    ticks.iter().find(|k| k.before_us >= t)
}

fn analyse(
    fault: Fault,
    injected: String,
    conf: BackendConf,
    samples: &[Sample],
    ticks: &[Tick],
    [t_healthy, t_fault, t_heal, t_end]: [u64; 4],
    restart_ms: Option<f64>,
) -> ChaosRun {
    let secs = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / 1e6;
    let in_range = |a: u64, b: u64| samples.iter().filter(move |s| s.start_us >= a && s.start_us < b);
    let phase = |name: &str, a: u64, b: u64| PhaseRow {
        phase: name.to_owned(),
        summary: Summary::of(in_range(a, b), secs(a, b)),
    };
    let phases = vec![
        phase("healthy", t_healthy, t_fault),
        phase("fault", t_fault, t_heal),
        phase("healed", t_heal, t_end),
    ];
    let all = Summary::of(in_range(t_healthy, t_end), secs(t_healthy, t_end));
    let fault_over_timeout = in_range(t_fault, t_heal)
        .filter(|s| s.answered() && s.latency_us as f64 > conf.timeout_ms * 1.1 * 1e3)
        .count() as u64;

    let windows = open_windows(ticks);
    let intervals = merge(&windows);
    let open_samples: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.start_us >= t_healthy && within(&intervals, s.start_us, s.end_us()))
        .collect();
    let open_us: u64 = windows.iter().map(|w| w.stats_span_us).sum();
    let while_open = Summary::of(open_samples.iter().copied(), open_us as f64 / 1e6);
    let calls_while_open = windows
        .iter()
        .map(|w| w.calls)
        .try_fold(0u64, |acc, c| c.map(|c| acc + c));
    let retries_while_open = windows.iter().map(|w| w.retries).sum();
    let calls_while_open_late = windows
        .iter()
        .filter(|w| w.stats_end_us.saturating_sub(w.opened_us) > micros(OPENING_TAIL))
        .map(|w| w.calls)
        .try_fold(0u64, |acc, c| c.map(|c| acc + c));
    let calls_while_open_at = windows
        .iter()
        .filter(|w| w.calls.unwrap_or(0) > 0 || w.retries > 0)
        .map(|w| {
            (
                (w.from_us as f64 - t_fault as f64) / 1e3,
                w.calls.unwrap_or(0),
                w.retries,
            )
        })
        .collect();

    let first = ticks.first().map(|t| t.before.clone());
    let last = ticks.last().map(|t| t.after.clone());
    let times_opened = first
        .zip(last)
        .map(|(a, b)| b.opened.saturating_sub(a.opened))
        .unwrap_or(0);
    let opened_after_ms = ticks
        .iter()
        .find(|t| t.before_us >= t_fault && t.before.state != "closed")
        .map(|t| (t.before_us - t_fault) as f64 / 1e3);

    // During the fault: from the last reading before it to the first after healing.
    let (f0, f1) = (tick_before(ticks, t_fault), tick_after(ticks, t_heal));
    let backend_calls_during_fault = f0
        .zip(f1)
        .and_then(|(a, b)| a.calls.zip(b.calls))
        .map(|(a, b)| b.saturating_sub(a));
    // `refused`: the restarted service counts from zero; before the fault it was the old one.
    let backend_calls_during_fault = if fault == Fault::Refused {
        None
    } else {
        backend_calls_during_fault
    };
    let (retries_during_fault, rejected_during_fault) = f0
        .zip(f1)
        .map(|(a, b)| {
            (
                b.before.retries.saturating_sub(a.after.retries),
                b.before.rejected.saturating_sub(a.after.rejected),
            )
        })
        .unwrap_or((0, 0));
    let retry_amplification = backend_calls_during_fault.and_then(|calls| {
        let logical = calls.saturating_sub(retries_during_fault);
        (logical > 0).then(|| calls as f64 / logical as f64)
    });

    let opened_during_fault = f0.zip(f1).is_some_and(|(a, b)| b.before.opened > a.before.opened)
        || ticks
            .iter()
            .any(|t| t.before_us >= t_fault && t.before_us < t_heal && t.before.state != "closed");
    let closed_at = ticks
        .iter()
        .find(|t| t.before_us >= t_heal && t.before.state == "closed")
        .map(|t| (t.before_us - t_heal) as f64 / 1e3);
    let never_opened = !opened_during_fault;
    let time_to_close_ms = if never_opened { None } else { closed_at };

    let mut changes = Vec::new();
    let mut state = ticks.first().map(|t| t.before.state.clone()).unwrap_or_default();
    for t in ticks {
        for (at, view) in [(t.before_us, &t.before), (t.after_us, &t.after)] {
            if view.state != state && changes.len() < 40 {
                changes.push(Change {
                    at_ms: (at as f64 - t_fault as f64) / 1e3,
                    to: view.state.clone(),
                });
            }
            state = view.state.clone();
        }
    }

    let healthy_p99 = phases[0].summary.p99_ms;
    let fault_p99 = phases[1].summary.p99_ms;
    let targets = Targets {
        no_5xx: Some(all.status_5xx == 0),
        fault_p99_within_timeout: fault_p99.is_finite().then_some(fault_p99 <= conf.timeout_ms * 1.1),
        open_p99_near_healthy: (while_open.requests > 0 && healthy_p99.is_finite())
            .then_some(while_open.p99_ms <= healthy_p99 + 1.0),
        no_calls_while_open: if open_us == 0 {
            None
        } else {
            calls_while_open_late.map(|c| c == 0)
        },
        amplification_at_most_1_1: retry_amplification.map(|a| a <= 1.1),
        closes_in_time: if never_opened {
            None
        } else {
            Some(time_to_close_ms.is_some_and(|t| t <= conf.wait_in_open_ms + conf.probe_interval_ms))
        },
    };
    ChaosRun {
        fault,
        injected,
        backend: conf,
        phases,
        while_open,
        share_5xx: all.share_5xx(),
        fault_over_timeout,
        opened_after_ms,
        times_opened,
        open_ms: open_us as f64 / 1e3,
        calls_while_open,
        retries_while_open,
        calls_while_open_late,
        calls_while_open_at,
        rejected_during_fault,
        backend_calls_during_fault,
        retries_during_fault,
        retry_amplification,
        time_to_close_ms,
        never_opened,
        restart_ms,
        changes,
        targets,
    }
}

fn suspicions(r: &ChaosRun) -> Vec<String> {
    let mut s = Vec::new();
    let name = r.fault.name();
    let t = &r.targets;
    if t.no_5xx == Some(false) {
        let n: u64 = r.phases.iter().map(|p| p.summary.status_5xx).sum();
        s.push(format!(
            "{name}: the gateway answered {n} requests with 5xx ({:.2}%)",
            r.share_5xx * 100.0
        ));
    }
    if t.fault_p99_within_timeout == Some(false) {
        s.push(format!(
            "{name}: p99 during the fault {:.0} ms > the accounts timeout {:.0} ms + 10%",
            r.phases[1].summary.p99_ms, r.backend.timeout_ms
        ));
    }
    if t.open_p99_near_healthy == Some(false) {
        s.push(format!(
            "{name}: p99 while the breaker was open {:.2} ms > healthy p99 {:.2} ms + 1 ms",
            r.while_open.p99_ms, r.phases[0].summary.p99_ms
        ));
    }
    if t.no_calls_while_open == Some(false) {
        s.push(format!(
            "{name}: the accounts service received {} business calls while the breaker was open, {} of them over 200 ms after it opened ({} retries by the gateway while open)",
            r.calls_while_open.unwrap_or(0),
            r.calls_while_open_late.unwrap_or(0),
            r.retries_while_open
        ));
    } else if r.calls_while_open.unwrap_or(0) > 0 {
        s.push(format!(
            "{name}: the accounts service received {} business calls while the breaker was open, all within 200 ms of its opening ({} retries by the gateway while open): the tail of calls let through before it opened (requests in flight, retries in their backoff, which the retry layer inside the breaker sends whatever its state)",
            r.calls_while_open.unwrap_or(0),
            r.retries_while_open
        ));
    }
    if t.amplification_at_most_1_1 == Some(false) {
        s.push(format!(
            "{name}: retry amplification {:.2}x during the fault (> 1.1x): {} backend calls, {} retries",
            r.retry_amplification.unwrap_or(f64::NAN),
            r.backend_calls_during_fault.unwrap_or(0),
            r.retries_during_fault
        ));
    }
    if t.closes_in_time == Some(false) {
        s.push(format!(
            "{name}: the breaker {} after healing (target ≤ wait_in_open {:.0} ms + probe {:.0} ms)",
            match r.time_to_close_ms {
                Some(ms) => format!("closed {ms:.0} ms"),
                None => "did not close".to_owned(),
            },
            r.backend.wait_in_open_ms,
            r.backend.probe_interval_ms
        ));
    }
    if r.fault_over_timeout > 0 {
        s.push(format!(
            "{name}: {} requests started during the fault took longer than the accounts timeout {:.0} ms + 10% (max {:.0} ms): each attempt gets the whole timeout, and retries add attempts",
            r.fault_over_timeout, r.backend.timeout_ms, r.phases[1].summary.max_ms
        ));
    }
    let io: u64 = r.phases.iter().map(|p| p.summary.io_errors).sum();
    if io > 0 {
        s.push(format!(
            "{name}: {io} requests got no answer (connection error or 10 s client timeout)"
        ));
    }
    if r.never_opened && r.fault != Fault::Errors {
        s.push(format!("{name}: the breaker never opened during the fault"));
    }
    s
}

fn render(r: &Results) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nMosaic chaos bench: {} connections, each its own page of `{}`; {}; phases healthy {:.0} s → fault {:.0} s → healed {:.0} s (longer until closed); {} cores shared by everything",
        r.connections, r.query, r.config, r.healthy_s, r.fault_s, r.healed_s, r.cores
    );
    let _ = writeln!(
        s,
        "(latency of every answered request, by the phase it started in; `open`: requests sent and answered while /healthz showed the accounts breaker open; partial = 200 with GraphQL errors, e.g. accounts [] by @fallback)\n"
    );
    let _ = writeln!(
        s,
        "{:<8} {:>8} {:<8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>8} {:>6} {:>6}",
        "fault", "timeout", "phase", "req/s", "p50 ms", "p99 ms", "max ms", "requests", "partial", "5xx", "4xx", "io"
    );
    let _ = writeln!(s, "{}", "-".repeat(110));
    for run in &r.runs {
        let rows = run
            .phases
            .iter()
            .map(|p| (p.phase.as_str(), &p.summary))
            .chain([("open", &run.while_open)]);
        for (i, (phase, p)) in rows.enumerate() {
            let _ = writeln!(
                s,
                "{:<8} {:>8} {:<8} {:>8.0} {:>8.3} {:>8.3} {:>9.1} {:>9} {:>8} {:>8} {:>6} {:>6}",
                if i == 0 { run.fault.name() } else { "" },
                if i == 0 {
                    format!("{:.0} ms", run.backend.timeout_ms)
                } else {
                    String::new()
                },
                phase,
                p.requests_per_s,
                p.p50_ms,
                p.p99_ms,
                p.max_ms,
                p.requests,
                p.partial,
                p.status_5xx,
                p.status_4xx,
                p.io_errors
            );
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<8} {:>6} {:>9} {:>7} {:>8} {:>17} {:>9} {:>9} {:>10} {:>9} {:>8} {:>10}",
        "fault",
        "5xx %",
        "opened @",
        "opened",
        "open ms",
        "calls@open (late)",
        "retr@open",
        "rejected",
        "calls@flt",
        "retr@flt",
        "ampl.",
        "to close"
    );
    let _ = writeln!(s, "{}", "-".repeat(123));
    for run in &r.runs {
        let _ = writeln!(
            s,
            "{:<8} {:>6.2} {:>9} {:>7} {:>8.0} {:>17} {:>9} {:>9} {:>10} {:>9} {:>8} {:>10}",
            run.fault.name(),
            run.share_5xx * 100.0,
            run.opened_after_ms.map_or("-".to_owned(), |v| format!("{v:.0} ms")),
            run.times_opened,
            run.open_ms,
            run.calls_while_open
                .zip(run.calls_while_open_late)
                .map_or("n/a".to_owned(), |(c, l)| format!("{c} ({l})")),
            run.retries_while_open,
            run.rejected_during_fault,
            run.backend_calls_during_fault
                .map_or("n/a".to_owned(), |c| c.to_string()),
            run.retries_during_fault,
            run.retry_amplification.map_or("n/a".to_owned(), |a| format!("{a:.3}x")),
            if run.never_opened {
                "never open".to_owned()
            } else {
                run.time_to_close_ms
                    .map_or("NOT CLOSED".to_owned(), |v| format!("{v:.0} ms"))
            }
        );
    }
    let _ = writeln!(
        s,
        "(opened @: first reading not closed after the fault began; opened: times it opened; open ms: time seen open; calls@open: \
         business calls the accounts service counted while open — the probes' /health is not counted — and (late) those over 200 ms after it opened; retr: the gateway's retries \
         of accounts calls; rejected: calls the breaker refused during the fault; calls@flt: accounts business calls during the \
         fault; ampl.: calls@flt ÷ (calls@flt − retr@flt); to close: from healing to /healthz closed)"
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<8} {:>7} {:>15} {:>18} {:>17} {:>8} {:>16}",
        "targets",
        "no 5xx",
        "p99≤timeout+10%",
        "open p99≤healthy+1",
        "0 late calls@open",
        "ampl≤1.1",
        "close≤wait+probe"
    );
    for run in &r.runs {
        let t = &run.targets;
        let _ = writeln!(
            s,
            "{:<8} {:>7} {:>15} {:>18} {:>17} {:>8} {:>16}",
            run.fault.name(),
            verdict(t.no_5xx),
            verdict(t.fault_p99_within_timeout),
            verdict(t.open_p99_near_healthy),
            verdict(t.no_calls_while_open),
            verdict(t.amplification_at_most_1_1),
            verdict(t.closes_in_time)
        );
    }
    let _ = writeln!(s);
    for run in &r.runs {
        let _ = writeln!(s, "{}: {}", run.fault.name(), run.injected);
        if let Some(ms) = run.restart_ms {
            let _ = writeln!(
                s,
                "  the killed service listened again {ms:.0} ms after being restarted"
            );
        }
        let changes: Vec<String> = run
            .changes
            .iter()
            .take(14)
            .map(|c| format!("{:+.2} s {}", c.at_ms / 1e3, c.to))
            .collect();
        let _ = writeln!(
            s,
            "  breaker (s from the fault): {}{}",
            if changes.is_empty() {
                "no change".to_owned()
            } else {
                changes.join(", ")
            },
            if run.changes.len() > 14 { ", …" } else { "" }
        );
        let _ = writeln!(
            s,
            "  breaker settings: timeout {:.0} ms, minimum_calls {}, window {}, wait_in_open {:.0} ms, probe {:.0} ms, half_open_calls {}, retry attempts {}",
            run.backend.timeout_ms,
            run.backend.minimum_calls,
            run.backend.window_size,
            run.backend.wait_in_open_ms,
            run.backend.probe_interval_ms,
            run.backend.half_open_calls,
            run.backend.retry_attempts
        );
        if !run.calls_while_open_at.is_empty() {
            let at: Vec<String> = run
                .calls_while_open_at
                .iter()
                .take(12)
                .map(|(at, calls, retries)| format!("{:+.3} s: {calls} calls/{retries} retries", at / 1e3))
                .collect();
            let _ = writeln!(
                s,
                "  calls while open (s from the fault): {}{}",
                at.join(", "),
                if run.calls_while_open_at.len() > 12 {
                    ", …"
                } else {
                    ""
                }
            );
        }
        let _ = writeln!(
            s,
            "  healthy p99 {} ms, while open p99 {} ms ({} requests)",
            fmt_opt(Some(run.phases[0].summary.p99_ms), 3),
            fmt_opt(Some(run.while_open.p99_ms), 3),
            run.while_open.requests
        );
    }
    if let Some(g) = &r.give_up {
        s.push_str(&super::giveup::render(g));
    }
    if !r.suspicious.is_empty() {
        let _ = writeln!(s, "\nSuspicious:");
        for note in &r.suspicious {
            let _ = writeln!(s, "  ! {note}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(state: &str, opened: u64, retries: u64) -> BreakerView {
        BreakerView {
            state: state.to_owned(),
            opened,
            rejected: 0,
            retries,
        }
    }

    fn tick(t: u64, state: &str, opened: u64, calls: u64) -> Tick {
        Tick {
            before_us: t,
            before: view(state, opened, 0),
            stats_us: t + 1,
            calls: Some(calls),
            after_us: t + 2,
            after: view(state, opened, 0),
        }
    }

    #[test]
    fn calls_count_only_between_two_open_readings_of_one_opening() {
        let ticks = vec![
            tick(0, "closed", 0, 10),
            tick(10, "open", 1, 12),
            tick(20, "open", 1, 12),
            tick(30, "open", 2, 14), // reopened in between: not attributable
            tick(40, "open", 2, 15),
            tick(50, "closed", 2, 20),
        ];
        let w = open_windows(&ticks);
        assert_eq!(w.len(), 2);
        assert_eq!(w.iter().map(|w| w.calls.unwrap_or(0)).sum::<u64>(), 1);
        let merged = merge(&w);
        assert_eq!(merged, vec![(10, 22), (30, 42)]);
        assert!(within(&merged, 11, 21));
        assert!(!within(&merged, 11, 25));
        assert!(within(&merged, 30, 42));
    }
}
