//! Starting what is measured, each as its own process: the mock bank, the Mosaic gateway and the
//! peer gateway; and talking to their admin endpoints.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::procs::{self, Proc};

/// How long Mosaic gets to exit after SIGTERM.
const MOSAIC_GRACE: Duration = Duration::from_secs(30);

/// How long a process gets to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The mock bank's services, in the order `mock-bank` starts and announces them.
pub const SERVICES: [&str; 5] = ["customers", "accounts", "transfers", "external-bank", "ledger"];

/// A service's `GET /_stats` document.
#[derive(Debug, Deserialize)]
struct StatsSnapshot {
    total: u64,
    endpoints: BTreeMap<String, u64>,
}

/// The running mock bank: one process, five services.
pub struct Bank {
    pub proc: Proc,
    /// Service name → base URL, in service order.
    pub services: Vec<(String, String)>,
}

impl Bank {
    /// Starts `mock-bank` with its services on `base_port`.. (0: ephemeral ports).
    pub fn start(bin: &Path, tmp: &Path, base_port: u16) -> Result<Bank> {
        Bank::start_named(bin, tmp, base_port, "mock-bank")
    }

    /// Like [`Bank::start`], logging to `tmp/{name}.log`.
    pub fn start_named(bin: &Path, tmp: &Path, base_port: u16, name: &str) -> Result<Bank> {
        let mut proc = Proc::spawn(
            name,
            Command::new(bin)
                .arg("--base-port")
                .arg(base_port.to_string())
                .env("RUST_LOG", "warn"),
            &tmp.join(format!("{name}.log")),
            true,
        )?;
        let stdout = proc.take_stdout().context("mock-bank stdout")?;
        let want = SERVICES.len();
        let lines = procs::read_lines(stdout, want, READY_TIMEOUT).with_context(|| {
            format!(
                "mock-bank did not print its {want} service URLs; its log:\n{}",
                proc.log_tail(20)
            )
        })?;
        let mut services = Vec::with_capacity(want);
        for line in lines {
            let (name, url) = line
                .split_once(' ')
                .with_context(|| format!("unexpected mock-bank line: {line:?}"))?;
            services.push((name.to_owned(), url.trim().to_owned()));
        }
        for service in SERVICES {
            if !services.iter().any(|(n, _)| n == service) {
                bail!("mock-bank did not announce the {service} service");
            }
        }
        Ok(Bank { proc, services })
    }

    /// The base URL of `service` (one of [`SERVICES`]).
    pub fn url(&self, service: &str) -> &str {
        self.services
            .iter()
            .find(|(n, _)| n == service)
            .map(|(_, u)| u.as_str())
            .unwrap_or_default()
    }

    /// Zeroes every service's request counters.
    pub async fn reset_stats(&self, http: &reqwest::Client) -> Result<()> {
        for (name, url) in &self.services {
            let status = http.post(format!("{url}/_stats/reset")).send().await?.status();
            if !status.is_success() {
                bail!("{name}: POST /_stats/reset answered {status}");
            }
        }
        Ok(())
    }

    /// Sets faults on `service` (`PUT /_faults`, e.g. `{"down": true}`).
    pub async fn set_faults(&self, http: &reqwest::Client, service: &str, faults: &serde_json::Value) -> Result<()> {
        let url = format!("{}/_faults", self.url(service));
        let response = http.put(&url).json(faults).send().await?;
        let status = response.status();
        if !status.is_success() {
            bail!(
                "PUT {url} {faults} answered {status}: {}",
                response.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Clears every fault of `service` (`POST /_faults/reset`).
    pub async fn reset_faults(&self, http: &reqwest::Client, service: &str) -> Result<()> {
        let url = format!("{}/_faults/reset", self.url(service));
        let status = http.post(&url).send().await?.status();
        if !status.is_success() {
            bail!("POST {url} answered {status}");
        }
        Ok(())
    }

    /// Business requests `service` received since its last reset (`GET /_stats` total).
    pub async fn service_total(&self, http: &reqwest::Client, service: &str) -> Result<u64> {
        let snap: StatsSnapshot = http
            .get(format!("{}/_stats", self.url(service)))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(snap.total)
    }

    /// Requests per `service: METHOD /route` since the last reset, and their total.
    pub async fn stats(&self, http: &reqwest::Client) -> Result<(u64, BTreeMap<String, u64>)> {
        let mut total = 0;
        let mut per_endpoint = BTreeMap::new();
        for (name, url) in &self.services {
            let snap: StatsSnapshot = http
                .get(format!("{url}/_stats"))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await
                .with_context(|| format!("{name}: GET /_stats"))?;
            total += snap.total;
            for (endpoint, n) in snap.endpoints {
                per_endpoint.insert(format!("{name}: {endpoint}"), n);
            }
        }
        Ok((total, per_endpoint))
    }
}

/// A gateway process listening on loopback.
pub struct Gateway {
    pub proc: Proc,
    pub addr: SocketAddr,
    /// From spawn to the first successful readiness probe.
    pub ready_in: Duration,
    /// Mosaic's admin listener (`/metrics`), when it has one.
    pub admin: Option<SocketAddr>,
    /// The process's log (stdout and stderr).
    pub log: PathBuf,
    /// The configuration file it serves (Mosaic).
    pub config: Option<PathBuf>,
}

impl Gateway {
    pub fn url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    /// `/metrics` on the admin listener.
    pub fn metrics_url(&self) -> Option<String> {
        self.admin.map(|a| format!("http://{a}/metrics"))
    }
}

/// How to start `mosaic serve` (see [`start_mosaic_with`]).
#[derive(Debug, Clone)]
pub struct MosaicOptions {
    /// Names its folder and log.
    pub label: String,
    /// `[cache] enabled = false` in the copy of the config.
    pub cache_off: bool,
    /// An admin listener (`/metrics`) on a free loopback port; none otherwise (`--admin-listen ""`).
    pub admin: bool,
    /// `MOSAIC_LOG` (`RUST_LOG` syntax).
    pub log_level: String,
    /// Other variables, e.g. `MOSAIC_LOG_FORMAT`, `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub env: Vec<(String, String)>,
    /// Values set in the copy of mosaic.toml: dotted path (`backends.accounts.timeout`) → value.
    pub edits: Vec<(String, toml::Value)>,
    /// Backend URLs other than the bank's (service → base URL).
    pub urls: BTreeMap<String, String>,
}

impl MosaicOptions {
    pub fn new(label: &str) -> MosaicOptions {
        MosaicOptions {
            label: label.to_owned(),
            cache_off: false,
            admin: true,
            log_level: "warn".to_owned(),
            env: Vec::new(),
            edits: Vec::new(),
            urls: BTreeMap::new(),
        }
    }

    /// Sets `path` (dotted) to `value` in the copy of the config.
    pub fn edit(mut self, path: &str, value: impl Into<toml::Value>) -> MosaicOptions {
        self.edits.push((path.to_owned(), value.into()));
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> MosaicOptions {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// Sets the dotted `path` of `table` to `value`, creating the tables on the way.
pub fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) -> Result<()> {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().context("empty config path")?;
    let mut here = table;
    for part in parts {
        here = here
            .entry(part.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .with_context(|| format!("mosaic.toml: `{part}` of `{path}` is not a table"))?;
    }
    here.insert(last.to_owned(), value);
    Ok(())
}

/// Starts `mosaic serve` over a copy of `schema_dir`'s `mosaic.toml` and `bank.graphql`, with the
/// backends pointed at the bank (through the `MOSAIC_*_URL` variables the config reads); with
/// `cache_off`, the copy says `[cache] enabled = false`. `label` names its folder and log.
pub async fn start_mosaic(
    schema_dir: &Path,
    bin: &Path,
    tmp: &Path,
    label: &str,
    cache_off: bool,
    bank: &Bank,
    http: &reqwest::Client,
) -> Result<Gateway> {
    let mut opts = MosaicOptions::new(label);
    opts.cache_off = cache_off;
    start_mosaic_with(schema_dir, bin, tmp, &opts, bank, http).await
}

/// Writes the copy of the config `opts` describes into `tmp/mosaic-{label}/`; returns its path.
pub fn write_mosaic_config(schema_dir: &Path, tmp: &Path, opts: &MosaicOptions) -> Result<PathBuf> {
    let dir = tmp.join(format!("mosaic-{}", opts.label));
    std::fs::create_dir_all(&dir)?;
    for file in ["mosaic.toml", "bank.graphql"] {
        let from = schema_dir.join(file);
        std::fs::copy(&from, dir.join(file)).with_context(|| format!("copying {}", from.display()))?;
    }
    let path = dir.join("mosaic.toml");
    let mut edits = opts.edits.clone();
    if opts.cache_off {
        edits.push(("cache.enabled".to_owned(), toml::Value::Boolean(false)));
    }
    if !edits.is_empty() {
        let mut config: toml::Table = std::fs::read_to_string(&path)?
            .parse()
            .with_context(|| format!("parsing {}", path.display()))?;
        for (key, value) in edits {
            set_path(&mut config, &key, value)?;
        }
        std::fs::write(&path, toml::to_string(&config)?)?;
    }
    Ok(path)
}

/// Starts `mosaic serve` as `opts` says, over a copy of `schema_dir`'s `mosaic.toml` and
/// `bank.graphql`, with the backends pointed at the bank (through the `MOSAIC_*_URL` variables the
/// config reads) unless `opts.urls` says otherwise; ready once `/readyz` answers 200.
pub async fn start_mosaic_with(
    schema_dir: &Path,
    bin: &Path,
    tmp: &Path,
    opts: &MosaicOptions,
    bank: &Bank,
    http: &reqwest::Client,
) -> Result<Gateway> {
    let config = write_mosaic_config(schema_dir, tmp, opts)?;
    let port = procs::free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let admin = if opts.admin {
        Some(SocketAddr::from(([127, 0, 0, 1], procs::free_port()?)))
    } else {
        None
    };
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--admin-listen")
        .arg(admin.map(|a| a.to_string()).unwrap_or_default());
    for var in [
        "MOSAIC_CONFIG",
        "MOSAIC_LISTEN",
        "MOSAIC_ADMIN_LISTEN",
        "MOSAIC_LOG_FORMAT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_TRACES_EXPORTER",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_SDK_DISABLED",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("MOSAIC_LOG", &opts.log_level);
    for service in SERVICES {
        let var = format!("MOSAIC_{}_URL", service.to_uppercase().replace('-', "_"));
        let url = opts.urls.get(service).map(String::as_str).unwrap_or(bank.url(service));
        cmd.env(var, url);
    }
    for (name, value) in &opts.env {
        cmd.env(name, value);
    }
    let log = tmp.join(format!("mosaic-{}.log", opts.label));
    let started = Instant::now();
    // Mosaic drains for `[server] drain_delay` (5 s by default) after SIGTERM, then waits up to
    // `shutdown_timeout` for requests in flight.
    let mut proc = Proc::spawn("mosaic", &mut cmd, &log, false)?.with_grace(MOSAIC_GRACE);
    let ready = format!("http://{addr}/readyz");
    wait_ready(&mut proc, || async {
        matches!(http.get(&ready).send().await, Ok(r) if r.status().is_success())
    })
    .await?;
    Ok(Gateway {
        proc,
        addr,
        ready_in: started.elapsed(),
        admin,
        log,
        config: Some(config),
    })
}

/// Starts the hand-written floor of the flat query (this binary, `bench floor`) over the bank's
/// customers service, getting its answer as `mode` says; ready once it answers the flat query.
pub async fn start_floor(
    tmp: &Path,
    bank: &Bank,
    http: &reqwest::Client,
    mode: crate::floor::FloorMode,
) -> Result<Gateway> {
    let port = procs::free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let exe = std::env::current_exe().context("the bench's own path")?;
    let mut cmd = Command::new(exe);
    cmd.arg("floor")
        .arg("--upstream")
        .arg(bank.url("customers"))
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--mode")
        .arg(mode.name());
    let started = Instant::now();
    let log = tmp.join(format!("floor-{}.log", mode.name()));
    let mut proc = Proc::spawn("floor", &mut cmd, &log, false)?;
    wait_answering(&mut proc, http, addr, crate::QUERIES[0].query).await?;
    Ok(graphql_gateway(proc, addr, started, log))
}

/// A GraphQL server the bench started (no admin listener, no Mosaic config).
fn graphql_gateway(proc: Proc, addr: SocketAddr, started: Instant, log: PathBuf) -> Gateway {
    Gateway {
        proc,
        addr,
        ready_in: started.elapsed(),
        admin: None,
        log,
        config: None,
    }
}

/// Waits until the server at `addr` answers `query` on `/graphql` with a success status.
async fn wait_answering(proc: &mut Proc, http: &reqwest::Client, addr: SocketAddr, query: &str) -> Result<()> {
    let url = format!("http://{addr}/graphql");
    wait_ready(proc, || async {
        let answer = http
            .post(&url)
            .json(&serde_json::json!({ "query": query }))
            .send()
            .await;
        matches!(answer, Ok(r) if r.status().is_success())
    })
    .await
}

/// Starts `tailcall start` over its config (see [`crate::tailcall::config`], written into `tmp`),
/// offline: no usage tracking, and a fresh cache dir so its update check only creates its marker
/// file. `label` names its folder and log.
pub async fn start_tailcall(
    bin: &Path,
    tmp: &Path,
    label: &str,
    ttls: &crate::tailcall::CacheTtls,
    bank: &Bank,
    http: &reqwest::Client,
) -> Result<(Gateway, String, PathBuf)> {
    let dir = tmp.join(format!("tailcall-{label}"));
    let home = dir.join("home");
    std::fs::create_dir_all(&home)?;
    let port = procs::free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let sdl = crate::tailcall::config(
        port,
        &crate::tailcall::Upstreams {
            customers: bank.url("customers"),
            accounts: bank.url("accounts"),
            transfers: bank.url("transfers"),
        },
        ttls,
    );
    let path = dir.join("bank.graphql");
    std::fs::write(&path, &sdl)?;
    let mut cmd = Command::new(bin);
    cmd.arg("start")
        .arg(&path)
        .current_dir(&dir)
        .env("TAILCALL_TRACKER", "false")
        .env("TC_TRACKER", "false")
        .env("TAILCALL_LOG_LEVEL", "warn")
        .env("HOME", &home)
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_CONFIG_HOME", home.join(".config"));
    let started = Instant::now();
    let log = tmp.join(format!("tailcall-{label}.log"));
    let mut proc = Proc::spawn("tailcall", &mut cmd, &log, false)?;
    wait_answering(&mut proc, http, addr, "{ __typename }").await?;
    Ok((graphql_gateway(proc, addr, started, log), sdl, path))
}

async fn wait_ready<F, Fut>(proc: &mut Proc, probe: F) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        proc.check_alive()?;
        if probe().await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "{} not ready within {READY_TIMEOUT:?}; its log:\n{}",
                proc.name(),
                proc.log_tail(20)
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `http://127.0.0.1:PORT` → its socket address.
pub fn addr_of(url: &str) -> Result<SocketAddr> {
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    host.parse()
        .with_context(|| format!("not an http://IP:PORT URL: {url}"))
}
