//! Mosaic's mock bank: five small HTTP services (customers, accounts,
//! transfers, external bank, ledger) on loopback ports, built from one
//! deterministic seed, each with fault injection and request statistics.
//! The transfers service (command side) publishes an event per finished
//! transfer; the ledger (query side) applies each exactly once to live
//! aggregates it serves as JSON and Server-Sent Events. The events travel
//! in process by default, or through a Redis stream
//! ([`BankConfig::redis_url`]), and the ledger can be restarted on its own
//! ([`Bank::restart_ledger`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), mock_bank::BankError> {
//! use mock_bank::{start, BankConfig, Service};
//! let bank = start(BankConfig::default()).await?;
//! println!("customers at {}", bank.url(Service::Customers));
//! bank.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod bookshop;
pub mod common;

mod accounts;
mod customers;
mod external_bank;
mod ledger;
mod transfers;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::common::bus::EventBus;
use crate::common::seed;
use crate::common::service::serve;
use crate::common::traces::ServiceTracer;
pub use crate::common::traces::TraceExport;
use crate::ledger::runtime::{self as ledger_runtime, LedgerSpec, Running};
use crate::ledger::state::Baseline;

/// How long [`Bank::shutdown`] waits for in-flight requests before aborting.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Where and from what seed to start the bank.
#[derive(Debug, Clone)]
pub struct BankConfig {
    /// The address every service binds (default 127.0.0.1).
    pub host: IpAddr,
    /// One port per service; 0 picks an ephemeral port.
    pub ports: ServicePorts,
    /// Seed of the deterministic data (default 42).
    pub seed: u64,
    /// When set (`redis://127.0.0.1:6379`), transfer events travel through
    /// a Redis stream and the ledger keeps its aggregates in Redis; the
    /// bank's keys there are reset at start. Default: in process.
    pub redis_url: Option<String>,
    /// Prefix of the bank's Redis keys (default `bank`: `bank:events`,
    /// `bank:ledger:*`).
    pub redis_prefix: String,
    /// Events queued per SSE client before it is disconnected as too slow
    /// (default 1024).
    pub sse_buffer: usize,
    /// Export OpenTelemetry spans of traced requests (default: off).
    pub traces: Option<TraceExport>,
    /// Run only these services (default: all five). Split across processes, the transfers
    /// service needs `upstreams` and, with the ledger elsewhere, `redis_url` for its events.
    pub only: Option<Vec<Service>>,
    /// Where the transfers service calls accounts and external-bank (default: this bank's own).
    pub upstreams: UpstreamUrls,
}

/// Base URLs of the services the transfers service calls, when they run elsewhere.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UpstreamUrls {
    pub accounts: Option<String>,
    pub external_bank: Option<String>,
}

impl BankConfig {
    /// Whether `service` runs in this bank (all do unless `only` says otherwise).
    pub fn runs(&self, service: Service) -> bool {
        self.only.as_ref().is_none_or(|only| only.contains(&service))
    }
}

impl Default for BankConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ports: ServicePorts::default(),
            seed: 42,
            redis_url: None,
            redis_prefix: "bank".to_owned(),
            sse_buffer: 1024,
            traces: None,
            only: None,
            upstreams: UpstreamUrls::default(),
        }
    }
}

/// The port of each service; 0 means ephemeral.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ServicePorts {
    pub customers: u16,
    pub accounts: u16,
    pub transfers: u16,
    pub external_bank: u16,
    pub ledger: u16,
}

impl ServicePorts {
    /// The configured port of `service`.
    pub fn get(&self, service: Service) -> u16 {
        match service {
            Service::Customers => self.customers,
            Service::Accounts => self.accounts,
            Service::Transfers => self.transfers,
            Service::ExternalBank => self.external_bank,
            Service::Ledger => self.ledger,
        }
    }
}

/// One of the bank's services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    Customers,
    Accounts,
    Transfers,
    ExternalBank,
    Ledger,
}

impl Service {
    /// All services, in start (and port) order.
    pub const ALL: [Service; 5] = [
        Service::Customers,
        Service::Accounts,
        Service::Transfers,
        Service::ExternalBank,
        Service::Ledger,
    ];

    /// The service called `name` (as [`Service::name`] writes it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// `customers`, `accounts`, `transfers`, `external-bank` or `ledger`.
    pub fn name(self) -> &'static str {
        match self {
            Service::Customers => "customers",
            Service::Accounts => "accounts",
            Service::Transfers => "transfers",
            Service::ExternalBank => "external-bank",
            Service::Ledger => "ledger",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why the bank could not start.
#[derive(Debug, thiserror::Error)]
pub enum BankError {
    #[error("cannot bind {service} to {addr}: {source}")]
    Bind {
        service: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot build the HTTP client of the transfers service: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("cannot export traces: {0}")]
    Traces(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// A running bank. Dropping it also tells the servers to stop, but only
/// [`Bank::shutdown`] waits for them.
#[derive(Debug)]
pub struct Bank {
    addrs: [SocketAddr; 5],
    shutdown: watch::Sender<bool>,
    /// The servers of every service but the ledger.
    tasks: Vec<(Service, JoinHandle<std::io::Result<()>>)>,
    /// The relay from the event log to Redis, in distributed mode.
    relay: Option<JoinHandle<()>>,
    ledger: tokio::sync::Mutex<LedgerSlot>,
    /// Each service's tracer, when traces are exported.
    tracers: Vec<Arc<ServiceTracer>>,
}

/// The ledger, restartable on its own.
#[derive(Debug)]
struct LedgerSlot {
    spec: LedgerSpec,
    running: Option<Running>,
}

impl Bank {
    /// The address `service` listens on.
    pub fn addr(&self, service: Service) -> SocketAddr {
        self.addrs[service.index()]
    }

    /// The base URL of `service`, e.g. `http://127.0.0.1:4001`. A service
    /// bound to an unspecified address (0.0.0.0) is reached via loopback.
    pub fn url(&self, service: Service) -> String {
        format!("http://{}", reachable(self.addr(service)))
    }

    /// Stops the ledger as a crash would: its consumer is aborted wherever
    /// it is (maybe between applying an event and acknowledging it), its
    /// SSE clients are cut and its port closes. Events published meanwhile
    /// wait in the log or the Redis stream. A no-op if already stopped.
    pub async fn stop_ledger(&self) {
        let mut slot = self.ledger.lock().await;
        if let Some(running) = slot.running.take() {
            running.stop().await;
        }
    }

    /// Starts a stopped ledger again on the same address, with fresh
    /// in-memory state: the seed plus a replay of the in-process log, or
    /// the aggregates kept in Redis plus the consumer group's pending then
    /// new entries. Returns once it listens; a no-op if already running.
    pub async fn start_ledger(&self) -> Result<(), BankError> {
        let mut slot = self.ledger.lock().await;
        if slot.running.is_some() {
            return Ok(());
        }
        let addr = self.addr(Service::Ledger);
        let listener = ledger_runtime::bind(addr).await.map_err(|source| BankError::Bind {
            service: Service::Ledger.name(),
            addr,
            source,
        })?;
        slot.running = Some(ledger_runtime::launch(&slot.spec, listener).await?);
        Ok(())
    }

    /// [`Bank::stop_ledger`] then [`Bank::start_ledger`].
    pub async fn restart_ledger(&self) -> Result<(), BankError> {
        self.stop_ledger().await;
        self.start_ledger().await
    }

    /// Stops all servers gracefully: in-flight requests (including hung
    /// ones) are released, then each server gets a few seconds to finish.
    pub async fn shutdown(mut self) {
        self.stop_ledger().await;
        self.shutdown.send_replace(true);
        if let Some(mut relay) = self.relay.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut relay).await.is_err() {
                tracing::warn!("the event relay did not stop in time; aborting");
                relay.abort();
            }
        }
        for (service, mut task) in std::mem::take(&mut self.tasks) {
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
                Ok(Ok(Ok(()))) => tracing::debug!(service = service.name(), "stopped"),
                Ok(Ok(Err(e))) => tracing::warn!(service = service.name(), "server error: {e}"),
                Ok(Err(e)) => tracing::warn!(service = service.name(), "server task failed: {e}"),
                Err(_) => {
                    tracing::warn!(service = service.name(), "did not stop in time; aborting");
                    task.abort();
                }
            }
        }
        for tracer in &self.tracers {
            tracer.flush().await;
        }
    }
}

impl Drop for Bank {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(running) = &self.ledger.get_mut().running {
            running.signal_stop();
        }
    }
}

/// `addr` with an unspecified IP replaced by loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

/// Binds the listeners (of all five services, or of `config.only`), spawns the servers (the
/// ledger once it has loaded its state) and returns once all are listening.
pub async fn start(config: BankConfig) -> Result<Bank, BankError> {
    let mut listeners = Vec::with_capacity(Service::ALL.len());
    let mut addrs = [SocketAddr::new(config.host, 0); 5];
    for service in Service::ALL {
        if !config.runs(service) {
            listeners.push(None);
            continue;
        }
        let addr = SocketAddr::new(config.host, config.ports.get(service));
        let bind_error = |source| BankError::Bind {
            service: service.name(),
            addr,
            source,
        };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        addrs[service.index()] = listener.local_addr().map_err(bind_error)?;
        listeners.push(Some(listener));
    }
    let url = |service: Service| format!("http://{}", reachable(addrs[service.index()]));

    let bus = match &config.redis_url {
        None => EventBus::in_process(),
        Some(url) => {
            let bus = EventBus::redis(url, &config.redis_prefix)?;
            // The ledger's process owns the bank's keys: the others only publish.
            if let Some(client) = bus.redis_client().filter(|_| config.runs(Service::Ledger)) {
                ledger::reset_redis(client, &config.redis_prefix).await?;
            }
            bus
        }
    };
    let tracers = match &config.traces {
        Some(export) => Service::ALL
            .iter()
            .map(|s| ServiceTracer::start(export, s.name()))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let data = seed::generate(config.seed);
    let spec = LedgerSpec {
        tracer: tracers.get(Service::Ledger.index()).cloned(),
        baseline: Arc::new(Baseline::from_seed(&data)),
        bus: bus.clone(),
        redis_prefix: config.redis_prefix.clone(),
        sse_buffer: config.sse_buffer,
    };
    let ledger = match listeners.pop().flatten() {
        Some(listener) => {
            let running = ledger_runtime::launch(&spec, listener).await?;
            tracing::info!(service = Service::Ledger.name(), url = %url(Service::Ledger), "listening");
            Some(running)
        }
        None => None,
    };

    let (shutdown, rx) = watch::channel(false);
    let relay = bus.spawn_relay(rx.clone()).await?;
    let upstreams = transfers::Upstreams {
        accounts: config
            .upstreams
            .accounts
            .clone()
            .unwrap_or_else(|| url(Service::Accounts)),
        external_bank: config
            .upstreams
            .external_bank
            .clone()
            .unwrap_or_else(|| url(Service::ExternalBank)),
    };
    let apps = [
        customers::router(&data, rx.clone()),
        accounts::router(&data, rx.clone()),
        transfers::router(&data, rx.clone(), upstreams, bus)?,
        external_bank::router(&data, rx.clone()),
    ];

    let mut tasks = Vec::with_capacity(Service::ALL.len());
    for ((service, listener), app) in Service::ALL.into_iter().zip(listeners).zip(apps) {
        let Some(listener) = listener else { continue };
        let app = match tracers.get(service.index()) {
            Some(t) => common::traces::layer(app, t.clone()),
            None => app,
        };
        tracing::info!(service = service.name(), url = %url(service), "listening");
        tasks.push((service, tokio::spawn(serve(listener, app, rx.clone()))));
    }
    Ok(Bank {
        addrs,
        shutdown,
        tasks,
        relay,
        ledger: tokio::sync::Mutex::new(LedgerSlot { spec, running: ledger }),
        tracers,
    })
}
