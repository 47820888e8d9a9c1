//! `bench`: Mosaic's load benchmark. Starts the mock bank, the Mosaic gateway and a peer gateway
//! (Tailcall 1.0.0) as separate processes on loopback, drives each with the same keep-alive load
//! for a flat, a 2-level and a 3-level query (plus the customers list fetched from the backend
//! directly, the ceiling), and reports requests/s, latency, backend calls per query, gateway CPU
//! per request and memory, with the Mosaic/peer ratios.
//!
//! ```sh
//! cargo run --release -p mosaic-bench -- [--duration 10s] [--connections 32] [--warmup 2s] [--no-peer] [--smoke]
//!     [--cache schema|off|both]
//! cargo run --release -p mosaic-bench -- chaos|cache|overhead|security [--smoke]
//! ```
//!
//! See bench/README.md.

mod expect;
mod floor;
mod load;
mod procs;
mod prom;
mod report;
mod scenarios;
mod stack;
mod tailcall;
mod timeline;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use serde_json::Value;

use crate::load::{LoadRun, Target};
use crate::report::{Peer, Results, Row, TargetInfo};
use crate::stack::{Bank, Gateway};

/// Mosaic's load benchmark: Mosaic vs Tailcall vs the backend directly, on loopback; and the
/// `chaos`, `cache`, `overhead` and `security` scenarios of Mosaic alone.
#[derive(Debug, Parser)]
#[command(name = "bench")]
struct Args {
    #[command(subcommand)]
    scenario: Option<Scenario>,
    #[command(flatten)]
    common: Common,
    /// Measured time per query and target.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured load before each measurement.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Run Mosaic (and the backend ceiling) only.
    #[arg(long)]
    no_peer: bool,
    /// Which caching to measure: as the schema's `@cache` says (mirrored in Tailcall's config with
    /// its `@cache(maxAge:)`), with Mosaic's cache off (and none in Tailcall), or both in turn.
    #[arg(long, value_enum, default_value_t = CacheArg::Both)]
    cache: CacheArg,
    /// Each connection sends the query as its own document (a `# connection N` comment added), so
    /// that gateways cannot share one execution between identical concurrent requests (Tailcall's
    /// operation dedupe); the backend calls can still be coalesced.
    #[arg(long)]
    vary_query: bool,
    /// Measure only these queries (`flat`, `nested2`, `nested3`; repeatable); all by default.
    #[arg(long = "query", value_name = "KEY", value_parser = ["flat", "nested2", "nested3"])]
    queries: Vec<String>,
}

/// Options of every scenario (they may follow the subcommand).
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// A quick check that everything works (under a minute); fails on any problem.
    #[arg(long, global = true)]
    smoke: bool,
    /// Do not build `mosaic` and `mock-bank` first (they must be in target/release).
    #[arg(long, global = true)]
    no_build: bool,
    /// Measure this `mosaic` binary instead of target/release/mosaic (implies --no-build).
    #[arg(long, value_name = "PATH", global = true)]
    mosaic_bin: Option<PathBuf>,
    /// Serve the `mosaic.toml` and `bank.graphql` of this folder (default: schema/ of the workspace).
    #[arg(long, value_name = "DIR", global = true)]
    schema_dir: Option<PathBuf>,
    /// Use this `mock-bank` binary instead of target/release/mock-bank (implies --no-build).
    #[arg(long, value_name = "PATH", global = true)]
    mock_bank_bin: Option<PathBuf>,
    /// Where to write the results (default: target/bench-results.json, target/bench-chaos.json, …;
    /// `-smoke` added with --smoke).
    #[arg(long, global = true)]
    out: Option<PathBuf>,
    /// Keep the temporary directory (configs and process logs).
    #[arg(long, global = true)]
    keep_tmp: bool,
}

/// The scenarios besides the default Mosaic-vs-Tailcall run.
#[derive(Debug, clap::Subcommand)]
enum Scenario {
    /// Resilience: steady load while the accounts service is killed, slowed past its timeout or
    /// failing half its calls; 5xx, latency per phase, calls while the breaker is open, retry
    /// amplification, time to close after healing.
    Chaos(scenarios::chaos::ChaosArgs),
    /// Caching: warm-cache throughput and CPU, hit ratio, coalescing of identical queries,
    /// subscription update latency, memory with a full cache.
    Cache(scenarios::cache::CacheArgs),
    /// The cost of observability (logs, metrics scraping, tracing); startup and reload times.
    Overhead(scenarios::overhead::OverheadArgs),
    /// The cost of the query limits, JWT authentication and rate limiting; time to refuse bombs;
    /// answers and memory under a hostile suite.
    Security(scenarios::security::SecurityArgs),
    /// Memory under minutes of full load with nobody scraping `/metrics`: the RSS curve.
    Soak(scenarios::soak::SoakArgs),
    /// The mapping layer's cost: an unfamiliar REST API bound with renames, expressions, hidden
    /// keys, a scalar batch and a fan-out, against the same shape bound plainly.
    Mapping(scenarios::mapping::MappingArgs),
    /// `mosaic import openapi` on GitHub's full description (about 1,000 operations): seconds
    /// per import, its check included.
    Import(scenarios::import::ImportArgs),
    /// Federation: `_entities` with 1, 10 and 100 representations of one and two types, against
    /// the same data fetched as ordinary fields: CPU per request and backend calls.
    Federation(scenarios::federation::FederationArgs),
    /// The hand-written floor of the flat query (started by the main run as its own process).
    #[command(hide = true)]
    Floor(floor::FloorArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CacheArg {
    Schema,
    Off,
    Both,
}

impl CacheArg {
    fn modes(self) -> Vec<CacheMode> {
        match self {
            CacheArg::Schema => vec![CacheMode::Schema],
            CacheArg::Off => vec![CacheMode::Off],
            CacheArg::Both => vec![CacheMode::Schema, CacheMode::Off],
        }
    }
}

/// How the gateways cache in one pass of the queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// As the schema's `@cache` says (Tailcall: `@cache(maxAge:)` on the same fields).
    Schema,
    /// Mosaic with `[cache] enabled = false`; Tailcall without `@cache`.
    Off,
}

impl CacheMode {
    pub fn name(self) -> &'static str {
        match self {
            CacheMode::Schema => "schema",
            CacheMode::Off => "off",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            CacheMode::Schema => "caching as schema/bank.graphql's @cache says, the same TTLs in Tailcall",
            CacheMode::Off => "Mosaic's [cache] off, no @cache in Tailcall (coalescing and dedupe only)",
        }
    }
}

/// One query of the bench.
pub struct QuerySpec {
    pub key: &'static str,
    pub label: &'static str,
    pub query: &'static str,
    /// Backend calls one request needs at most: one per (endpoint, nesting level).
    pub expected_calls: f64,
}

pub const QUERIES: [QuerySpec; 3] = [
    QuerySpec {
        key: "flat",
        label: "flat list (100)",
        query: "{ customers(limit: 100) { id name district tier } }",
        expected_calls: 1.0,
    },
    QuerySpec {
        key: "nested2",
        label: "2-level nested",
        query: "{ customers(limit: 100) { id name accounts { id balance currency } } }",
        expected_calls: 2.0,
    },
    QuerySpec {
        key: "nested3",
        label: "3-level nested",
        query: "{ customers(limit: 100) { id accounts { id transfers(last: 2) { id amount status } } } }",
        expected_calls: 3.0,
    },
];

/// `transfers(last:)` in the 3-level query.
const TRANSFERS_LAST: u32 = 2;

/// The backend list fetched directly: the ceiling.
const DIRECT_PATH: &str = "/customers?limit=100";

/// Longest a single request may take before it counts as an error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of one bench run.
pub struct Settings {
    pub duration: Duration,
    pub warmup: Duration,
    pub connections: usize,
    pub smoke: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Scenario::Floor(a)) = args.scenario {
        return match floor::serve(a).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench floor: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let started = Instant::now();
    let outcome = tokio::select! {
        r = dispatch(args) => r,
        signal = interrupted() => Err(anyhow!("interrupted by {signal}; stopping every process started")),
    };
    // `run` has been dropped here: every child process is stopped.
    match outcome {
        Ok(problems) if problems.is_empty() => {
            eprintln!("bench: done in {:.1} s", started.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Ok(problems) => {
            eprintln!("\nbench: FAILED ({} problem(s)):", problems.len());
            for p in problems {
                eprintln!("  - {p}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return "Ctrl-C";
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = term.recv() => "SIGTERM",
    }
}

/// The workspace root (this crate's parent folder).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_owned()
}

fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// Removes the temporary directory on drop (unless kept). Declared before the processes so it is
/// dropped after them.
pub struct TmpDir {
    pub path: PathBuf,
    keep: bool,
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("bench: kept {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// What every run needs: the binaries, the schema, a temporary folder, an HTTP client.
pub struct Env {
    pub target: PathBuf,
    pub mosaic_bin: PathBuf,
    pub bank_bin: PathBuf,
    pub schema_dir: PathBuf,
    pub tmp: TmpDir,
    pub http: reqwest::Client,
    pub cores: usize,
    pub smoke: bool,
    out: Option<PathBuf>,
}

impl Env {
    /// Builds the binaries (unless told not to) and checks they are there.
    fn prepare(common: &Common) -> Result<Env> {
        let root = workspace_root();
        let target = target_dir(&root);
        let release = target.join("release");
        if !common.no_build && common.mosaic_bin.is_none() && common.mock_bank_bin.is_none() {
            build(&root)?;
        }
        let mosaic_bin = common.mosaic_bin.clone().unwrap_or_else(|| release.join("mosaic"));
        let bank_bin = common
            .mock_bank_bin
            .clone()
            .unwrap_or_else(|| release.join("mock-bank"));
        for bin in [&mosaic_bin, &bank_bin] {
            if !bin.is_file() {
                bail!(
                    "{} is missing: build it with `cargo build --release -p mosaic -p mosaic-mock-bank`",
                    bin.display()
                );
            }
        }
        let tmp = TmpDir {
            path: std::env::temp_dir().join(format!("mosaic-bench-{}", std::process::id())),
            keep: common.keep_tmp,
        };
        std::fs::create_dir_all(&tmp.path)?;
        let http = reqwest::Client::builder().no_proxy().timeout(REQUEST_TIMEOUT).build()?;
        Ok(Env {
            target,
            mosaic_bin,
            bank_bin,
            schema_dir: common.schema_dir.clone().unwrap_or_else(|| root.join("schema")),
            tmp,
            http,
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            smoke: common.smoke,
            out: common.out.clone(),
        })
    }

    /// Where results named `name` go: `--out`, else `target/{name}.json` (`{name}-smoke.json`).
    pub fn out_path(&self, name: &str) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            self.target.join(if self.smoke {
                format!("{name}-smoke.json")
            } else {
                format!("{name}.json")
            })
        })
    }

    /// Writes `value` as pretty JSON to [`Env::out_path`].
    pub fn write_results(&self, name: &str, value: &impl serde::Serialize) -> Result<PathBuf> {
        let out = self.out_path(name);
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&out, serde_json::to_string_pretty(value)?)
            .with_context(|| format!("writing {}", out.display()))?;
        eprintln!("bench: results written to {}", out.display());
        Ok(out)
    }

    /// Starts the mock bank on ephemeral ports.
    pub fn start_bank(&self) -> Result<Bank> {
        let bank = Bank::start(&self.bank_bin, &self.tmp.path, 0)?;
        eprintln!(
            "bench: mock bank pid {} ({})",
            bank.proc.pid(),
            bank.services
                .iter()
                .map(|(name, url)| format!("{name} {url}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        Ok(bank)
    }
}

async fn dispatch(args: Args) -> Result<Vec<String>> {
    let env = Env::prepare(&args.common)?;
    match args.scenario {
        None => run(args, env).await,
        Some(Scenario::Chaos(a)) => scenarios::chaos::run(a, env).await,
        Some(Scenario::Cache(a)) => scenarios::cache::run(a, env).await,
        Some(Scenario::Overhead(a)) => scenarios::overhead::run(a, env).await,
        Some(Scenario::Security(a)) => scenarios::security::run(a, env).await,
        Some(Scenario::Soak(a)) => scenarios::soak::run(a, env).await,
        Some(Scenario::Mapping(a)) => scenarios::mapping::run(a, env).await,
        Some(Scenario::Import(a)) => scenarios::import::run(a, env).await,
        Some(Scenario::Federation(a)) => scenarios::federation::run(a, env).await,
        // Served by `main` before anything is dispatched.
        Some(Scenario::Floor(_)) => Ok(Vec::new()),
    }
}

/// Runs the whole bench; the problems found (an empty list when all is well).
async fn run(args: Args, env: Env) -> Result<Vec<String>> {
    let settings = if args.common.smoke {
        Settings {
            duration: Duration::from_secs(1),
            warmup: Duration::from_millis(250),
            connections: 4,
            smoke: true,
        }
    } else {
        Settings {
            duration: args.duration,
            warmup: args.warmup,
            connections: args.connections.max(1),
            smoke: false,
        }
    };
    let target = env.target.clone();
    let (mosaic_bin, bank_bin) = (env.mosaic_bin.clone(), env.bank_bin.clone());
    let tmp = &env.tmp;
    let http = env.http.clone();

    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    eprintln!(
        "bench: {} cores shared by the load generator, the backends and the gateways; {} connections, \
         {:?} warmup + {:?} measured per query and target",
        cores, settings.connections, settings.warmup, settings.duration
    );

    let peer_bin = if args.no_peer {
        Err("--no-peer".to_owned())
    } else {
        let cache = target.join("bench-cache");
        tokio::task::block_in_place(|| tailcall::binary(&cache)).map_err(|e| format!("{e:#}"))
    };
    let (mut bank, collisions_avoided) = start_bank(&bank_bin, &tmp.path, &http, peer_bin.is_ok()).await?;
    eprintln!(
        "bench: mock bank pid {} ({})",
        bank.proc.pid(),
        bank.services
            .iter()
            .map(|(name, url)| format!("{name} {url}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let schema_dir = env.schema_dir.clone();
    let sdl = std::fs::read_to_string(schema_dir.join("bank.graphql"))
        .with_context(|| format!("reading {}", schema_dir.join("bank.graphql").display()))?;
    let ttls = tailcall::CacheTtls::from_schema(&sdl);
    if !ttls.any() {
        eprintln!("bench: the schema caches none of the fields queried (no @cache(ttl:)); Tailcall gets no @cache");
    }

    let mut problems = Vec::new();
    let peer = match &peer_bin {
        Ok(bin) => Peer::available(bin),
        Err(why) if args.no_peer => {
            eprintln!("bench: --no-peer: Mosaic and the backend ceiling only");
            Peer::unavailable(why)
        }
        Err(why) => {
            peer_unavailable(why);
            Peer::unavailable(why)
        }
    };
    let mut results = Results::new(&settings, cores, peer);
    results.mosaic_binary = mosaic_bin.display().to_string();
    results.schema_cache_ttls = ttls.describe();
    results.peer.url_hash_collisions_avoided = collisions_avoided;
    let bank_data = expect::BankData::fetch(&http, &bank, DIRECT_PATH, TRANSFERS_LAST).await?;

    // The ceiling: the customers list from the backend directly, with the same load client.
    let customers = stack::addr_of(bank.url("customers"))?;
    let direct = Target::get(customers, DIRECT_PATH);
    let pid = bank.proc.pid();
    let row = measure(&settings, &http, &mut bank, "backend", "direct", "-", direct, pid, None).await?;
    results.rows.push(row);

    let variants = if args.vary_query { settings.connections } else { 1 };
    let measured: Vec<&QuerySpec> = QUERIES
        .iter()
        .filter(|q| args.queries.is_empty() || args.queries.iter().any(|k| k == q.key))
        .collect();
    let flat = &QUERIES[0];

    results.vary_query = args.vary_query;
    for mode in args.cache.modes() {
        let label = mode.name();
        let cache_off = mode == CacheMode::Off;
        eprintln!("bench: --- cache {label}: {} ---", mode.describe());
        let mut mosaic =
            stack::start_mosaic(&schema_dir, &mosaic_bin, &tmp.path, label, cache_off, &bank, &http).await?;
        eprintln!(
            "bench: mosaic pid {} at {} (ready in {:.0} ms)",
            mosaic.proc.pid(),
            mosaic.addr,
            mosaic.ready_in.as_secs_f64() * 1e3
        );
        results.targets.push(TargetInfo::of("mosaic", label, &mosaic)?);
        let peer_ttls = if cache_off {
            tailcall::CacheTtls::default()
        } else {
            ttls
        };
        let mut peer_gw = match &peer_bin {
            Ok(bin) => match stack::start_tailcall(bin, &tmp.path, label, &peer_ttls, &bank, &http).await {
                Ok((gw, config, path)) => {
                    eprintln!(
                        "bench: tailcall {} pid {} at {} (ready in {:.0} ms), config {}",
                        tailcall::VERSION,
                        gw.proc.pid(),
                        gw.addr,
                        gw.ready_in.as_secs_f64() * 1e3,
                        path.display()
                    );
                    results.targets.push(TargetInfo::of("tailcall", label, &gw)?);
                    results.peer.configs.insert(label.to_owned(), config);
                    Some(gw)
                }
                Err(e) => {
                    let why = format!("tailcall did not start: {e:#}");
                    peer_unavailable(&why);
                    results.peer.unavailable = Some(why);
                    None
                }
            },
            Err(_) => None,
        };

        // The right data from every gateway, before measuring anything.
        for q in &QUERIES {
            let expected = bank_data.expected(q.key)?;
            let verdict = verify(&http, &expected, &mosaic, peer_gw.as_ref(), q, &target).await;
            let key = format!("{label}/{}", q.key);
            match &verdict {
                Ok(note) => eprintln!("bench: {key}: {note}"),
                Err(e) => {
                    eprintln!("\n!!! DATA MISMATCH on {key}: {e:#}\n");
                    problems.push(format!("{key}: {e:#}"));
                }
            }
            results
                .verification
                .insert(key, verdict.map_err(|e| format!("{e:#}")).unwrap_or_else(|e| e));
        }

        // The floor: a hand-written handler for the flat query alone (see floor.rs), getting the
        // backend's answer as Mosaic does in this pass. Measured right before Mosaic's flat row,
        // so that the two rows see the machine in the same state (its speed drifts by minutes).
        let mut floor = if measured.iter().any(|q| q.key == flat.key) {
            let floor_mode = match mode {
                CacheMode::Schema => floor::FloorMode::Cached,
                CacheMode::Off => floor::FloorMode::Coalesced,
            };
            let floor = stack::start_floor(&tmp.path, &bank, &http, floor_mode).await?;
            let floor_data = fetch_data(&http, &floor.url(), flat.query).await.context("the floor")?;
            if let Some(diff) = report::first_difference(&floor_data, &bank_data.expected(flat.key)?, "data") {
                problems.push(format!(
                    "floor/{}: other data than the backends hold, at {diff}",
                    flat.key
                ));
            }
            Some(floor)
        } else {
            None
        };

        for q in measured.iter().copied() {
            if let (Some(f), true) = (&floor, q.key == flat.key) {
                let t = Target::graphql(f.addr, "/graphql", flat.query, variants);
                let pid = f.proc.pid();
                let row = measure(&settings, &http, &mut bank, "floor", flat.key, label, t, pid, None).await?;
                results.rows.push(row);
            }
            let t = Target::graphql(mosaic.addr, "/graphql", q.query, variants);
            mosaic.proc.check_alive()?;
            let pid = mosaic.proc.pid();
            let metrics = mosaic.metrics_url();
            let row = measure(
                &settings,
                &http,
                &mut bank,
                "mosaic",
                q.key,
                label,
                t,
                pid,
                metrics.as_deref(),
            )
            .await?;
            results.rows.push(row);
            if let Some(gw) = peer_gw.as_mut() {
                gw.proc.check_alive()?;
                let t = Target::graphql(gw.addr, "/graphql", q.query, variants);
                let pid = gw.proc.pid();
                let row = measure(&settings, &http, &mut bank, "tailcall", q.key, label, t, pid, None).await?;
                results.rows.push(row);
            }
        }
        if let Some(mut f) = floor.take() {
            f.proc.stop();
        }
        mosaic.proc.check_alive()?;
        // Both gateways wind down together; Mosaic drains before it exits.
        mosaic.proc.terminate();
        if let Some(mut gw) = peer_gw.take() {
            gw.proc.check_alive()?;
            gw.proc.stop();
        }
        match mosaic.proc.stop() {
            Some(took) => eprintln!("bench: mosaic exited {:.1} s after SIGTERM", took.as_secs_f64()),
            None => results
                .suspicious_extra
                .push(format!("mosaic (cache {label}) did not exit within 30 s of SIGTERM")),
        }
    }
    bank.proc.check_alive()?;

    results.finish();
    problems.extend(results.problems());
    println!("{}", results.render());

    env.write_results("bench-results", &results)?;

    let _ = bank.proc.stop();
    Ok(problems)
}

/// Base ports tried for the mock bank when its first ports would confuse Tailcall: below Linux's
/// ephemeral range (32768..), so no outgoing connection holds them.
const BANK_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// Starts the mock bank. With the peer, on ports where no two upstream URLs Tailcall will issue
/// share one of its 64-bit request hashes (Tailcall 1.0 would serve one's answer for the other;
/// see [`tailcall::request_hashes`]): if the first, ephemeral, ports would, the bank is restarted on
/// ports found free of collisions. Returns the bank and the collisions avoided.
async fn start_bank(bin: &Path, tmp: &Path, http: &reqwest::Client, peer: bool) -> Result<(Bank, usize)> {
    let bank = Bank::start(bin, tmp, 0)?;
    if !peer {
        return Ok((bank, 0));
    }
    let data = expect::BankData::fetch(http, &bank, DIRECT_PATH, TRANSFERS_LAST).await?;
    let (customer_ids, account_ids) = (data.customer_ids(), data.account_ids());
    let urls_on = |customers: &str, accounts: &str, transfers: &str| {
        let up = tailcall::Upstreams {
            customers,
            accounts,
            transfers,
        };
        tailcall::upstream_urls(&up, &customer_ids, &account_ids, TRANSFERS_LAST)
    };
    let clashes = tailcall::collisions(&urls_on(
        bank.url("customers"),
        bank.url("accounts"),
        bank.url("transfers"),
    ));
    if clashes.is_empty() {
        return Ok((bank, 0));
    }
    eprintln!(
        "bench: on these ports Tailcall 1.0 would take {} pair(s) of distinct upstream URLs for one (same \
         64-bit FxHash, e.g. {} and {}); restarting the mock bank on ports where none do",
        clashes.len(),
        clashes[0].0,
        clashes[0].1
    );
    drop(bank);
    // A pseudo-random walk over the range, so that concurrent runs do not all try the same ports.
    let span = u32::from(BANK_PORTS.end - BANK_PORTS.start);
    let offset = std::process::id() % span;
    for i in 0..span {
        let base = BANK_PORTS.start + u16::try_from((offset + i * 7919) % span).unwrap_or(0);
        let url = |i: u16| format!("http://127.0.0.1:{}", base + i);
        if !tailcall::collisions(&urls_on(&url(0), &url(1), &url(2))).is_empty()
            || !procs::ports_free(base, stack::SERVICES.len() as u16)
        {
            continue;
        }
        match Bank::start(bin, tmp, base) {
            Ok(bank) => return Ok((bank, clashes.len())),
            Err(e) => eprintln!("bench: mock bank on base port {base}: {e:#}; trying other ports"),
        }
    }
    bail!("found no ports on which Tailcall's upstream URLs do not collide")
}

fn build(root: &Path) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("bench: cargo build --release -p mosaic -p mosaic-mock-bank");
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "mosaic",
            "-p",
            "mosaic-mock-bank",
        ])
        .current_dir(root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release -p mosaic -p mosaic-mock-bank failed ({status})");
    }
    Ok(())
}

fn peer_unavailable(why: &str) {
    eprintln!("\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    eprintln!("!!! peer unavailable: {why}");
    eprintln!("!!! continuing with Mosaic and the backend ceiling only");
    eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
}

/// POSTs `query` and returns its `data`, failing on a non-200 answer or GraphQL errors.
async fn fetch_data(http: &reqwest::Client, url: &str, query: &str) -> Result<Value> {
    let response = http
        .post(url)
        .header("accept", "application/json")
        .json(&serde_json::json!({ "query": query }))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await.context("answer is not JSON")?;
    if !status.is_success() {
        bail!("{url} answered {status}: {body}");
    }
    if let Some(errors) = body.get("errors") {
        bail!("{url} answered GraphQL errors: {errors}");
    }
    body.get("data")
        .cloned()
        .filter(|d| !d.is_null())
        .with_context(|| format!("{url} answered no data"))
}

/// Checks that Mosaic, and the peer when there is one, answer exactly the data the bench builds
/// from the bank's REST API. On a difference both answers are written next to the results.
async fn verify(
    http: &reqwest::Client,
    expected: &Value,
    mosaic: &Gateway,
    peer: Option<&Gateway>,
    q: &QuerySpec,
    out_dir: &Path,
) -> Result<String> {
    let mut gateways = vec![("mosaic", mosaic)];
    gateways.extend(peer.map(|p| ("tailcall", p)));
    let mut wrong = Vec::new();
    for (name, gw) in &gateways {
        let data = fetch_data(http, &gw.url(), q.query).await.context(*name)?;
        if let Some(diff) = report::first_difference(&data, expected, "data") {
            let path = out_dir.join(format!("bench-mismatch-{}-{name}.json", q.key));
            let _ = std::fs::write(&path, serde_json::to_string_pretty(&data).unwrap_or_default());
            wrong.push(format!(
                "{name} answers other data than the backends hold: at {diff} (its answer: {})",
                path.display()
            ));
        }
    }
    if !wrong.is_empty() {
        let path = out_dir.join(format!("bench-mismatch-{}-expected.json", q.key));
        let _ = std::fs::write(&path, serde_json::to_string_pretty(expected).unwrap_or_default());
        bail!("{} (expected: {})", wrong.join("; "), path.display());
    }
    let names: Vec<&str> = gateways.iter().map(|(n, _)| *n).collect();
    Ok(format!(
        "{} {} the data the backends hold ({} bytes of JSON)",
        names.join(" and "),
        if names.len() == 1 { "answers" } else { "answer" },
        serde_json::to_string(expected)?.len()
    ))
}

/// Drives `target` with the configured load and collects every figure of one row.
#[allow(clippy::too_many_arguments)]
pub async fn measure(
    settings: &Settings,
    http: &reqwest::Client,
    bank: &mut Bank,
    target_name: &str,
    query: &str,
    cache: &str,
    target: Target,
    pid: u32,
    metrics: Option<&str>,
) -> Result<Row> {
    bank.proc.check_alive()?;
    let bank_pid = bank.proc.pid();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_idle = procs::rss_bytes(pid)?;
    let mut run = LoadRun::start(Arc::new(target), settings.connections, REQUEST_TIMEOUT).await?;
    tokio::time::sleep(settings.warmup).await;

    bank.reset_stats(http).await?;
    let cpu0 = procs::cpu_time(pid)?;
    let bank_cpu0 = procs::cpu_time(bank_pid)?;
    let own_cpu0 = procs::own_cpu_time()?;
    let machine0 = procs::machine_busy_time()?;
    let metrics0 = match metrics {
        Some(url) => Some(prom::Metrics::scrape(http, url).await?),
        None => None,
    };
    run.measure();
    let start = Instant::now();
    let mut rss_max = procs::rss_bytes(pid)?;
    while start.elapsed() < settings.duration {
        let left = settings.duration.saturating_sub(start.elapsed());
        tokio::time::sleep(left.min(Duration::from_millis(50))).await;
        rss_max = rss_max.max(procs::rss_bytes(pid)?);
    }
    let elapsed = run.end_measure();
    let cpu = procs::cpu_time(pid)?.saturating_sub(cpu0);
    let bank_cpu = procs::cpu_time(bank_pid)?.saturating_sub(bank_cpu0);
    let own_cpu = procs::own_cpu_time()?.saturating_sub(own_cpu0);
    let machine = procs::machine_busy_time()?.saturating_sub(machine0);
    let metrics_delta = match (metrics, metrics0) {
        (Some(url), Some(before)) => prom::Metrics::scrape(http, url).await?.counter_deltas(&before),
        _ => Default::default(),
    };
    let (calls, per_endpoint) = bank.stats(http).await?;
    let result = run.finish(elapsed).await;

    let mut row = Row::new(
        target_name,
        query,
        &result,
        report::Cpu {
            target: cpu,
            bank: bank_cpu,
            client: own_cpu,
            machine,
        },
        calls,
        per_endpoint,
        rss_idle,
        rss_max,
    );
    row.cache = cache.to_owned();
    row.gateway_metrics = metrics_delta;
    eprintln!("bench: {}", row.one_line());
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nested_query_asks_the_transfers_the_peer_urls_assume() {
        assert!(QUERIES[2].query.contains(&format!("transfers(last: {TRANSFERS_LAST})")));
    }
}
