//! Mosaic's mock bank: five small HTTP services (customers, accounts,
//! transfers, external bank, ledger) on loopback ports, built from one
//! deterministic seed, each with fault injection and request statistics.
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

pub mod common;

mod accounts;
mod customers;
mod external_bank;
mod ledger;
mod transfers;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::common::seed;
use crate::common::service::serve;

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
}

impl Default for BankConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ports: ServicePorts::default(),
            seed: 42,
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
}

/// A running bank. Dropping it also tells the servers to stop, but only
/// [`Bank::shutdown`] waits for them.
#[derive(Debug)]
pub struct Bank {
    addrs: [SocketAddr; 5],
    shutdown: watch::Sender<bool>,
    tasks: Vec<(Service, JoinHandle<std::io::Result<()>>)>,
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

    /// Stops all servers gracefully: in-flight requests (including hung
    /// ones) are released, then each server gets a few seconds to finish.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
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
    }
}

impl Drop for Bank {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
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

/// Binds all five listeners, spawns the servers and returns once all are
/// listening.
pub async fn start(config: BankConfig) -> Result<Bank, BankError> {
    let mut listeners = Vec::with_capacity(Service::ALL.len());
    let mut addrs = [SocketAddr::new(config.host, 0); 5];
    for service in Service::ALL {
        let addr = SocketAddr::new(config.host, config.ports.get(service));
        let bind_error = |source| BankError::Bind {
            service: service.name(),
            addr,
            source,
        };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        addrs[service.index()] = listener.local_addr().map_err(bind_error)?;
        listeners.push(listener);
    }
    let url = |service: Service| format!("http://{}", reachable(addrs[service.index()]));

    let data = seed::generate(config.seed);
    let (shutdown, rx) = watch::channel(false);
    let upstreams = transfers::Upstreams {
        accounts: url(Service::Accounts),
        external_bank: url(Service::ExternalBank),
    };
    let apps = [
        customers::router(&data, rx.clone()),
        accounts::router(&data, rx.clone()),
        transfers::router(&data, rx.clone(), upstreams)?,
        external_bank::router(&data, rx.clone()),
        ledger::router(&data, rx.clone()),
    ];

    let mut tasks = Vec::with_capacity(Service::ALL.len());
    for ((service, listener), app) in Service::ALL.into_iter().zip(listeners).zip(apps) {
        tracing::info!(service = service.name(), url = %url(service), "listening");
        tasks.push((service, tokio::spawn(serve(listener, app, rx.clone()))));
    }
    Ok(Bank { addrs, shutdown, tasks })
}
