//! `mock-bank`: runs the five mock services until SIGINT/SIGTERM (transfer
//! events in process, or through Redis with `--redis-url`).

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

use clap::Parser;
use mock_bank::{start, BankConfig, Service, ServicePorts, TraceExport};

/// Mosaic's mock bank: customers, accounts, transfers, external-bank and
/// ledger services on consecutive ports.
#[derive(Debug, Parser)]
#[command(name = "mock-bank", version)]
struct Args {
    /// Address to bind.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    /// Port of the first service; the others follow (0 = ephemeral ports).
    #[arg(long, default_value_t = 4001)]
    base_port: u16,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Carry transfer events through this Redis (a stream read by the
    /// ledger's consumer group) instead of in process, e.g.
    /// redis://127.0.0.1:6379. The bank's keys there are reset at start.
    #[arg(long, env = "MOCK_BANK_REDIS_URL")]
    redis_url: Option<String>,
    /// Prefix of the bank's Redis keys.
    #[arg(long, default_value = "bank")]
    redis_prefix: String,
    /// Export the spans of traced requests to this OTLP/HTTP collector,
    /// e.g. http://127.0.0.1:4318 (each service as `bank-<service>`).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// Run only these services (comma-separated: customers, accounts, transfers,
    /// external-bank, ledger), each still on its own port of --base-port's sequence; e.g. one
    /// container per service. Transfers then needs --accounts-url and --external-bank-url, and
    /// --redis-url when the ledger runs elsewhere.
    #[arg(long, value_delimiter = ',', value_parser = parse_service)]
    only: Option<Vec<Service>>,
    /// Where the transfers service calls the accounts service (default: this bank's).
    #[arg(long)]
    accounts_url: Option<String>,
    /// Where the transfers service calls the external bank (default: this bank's).
    #[arg(long)]
    external_bank_url: Option<String>,
}

fn parse_service(name: &str) -> Result<Service, String> {
    Service::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Service::ALL.iter().map(|s| s.name()).collect();
        format!("no service {name:?}; one of {}", names.join(", "))
    })
}

/// Ports `base..base+4` in service order, or all ephemeral for 0.
fn ports(base: u16) -> Option<ServicePorts> {
    if base == 0 {
        return Some(ServicePorts::default());
    }
    let port = |offset: u16| base.checked_add(offset);
    Some(ServicePorts {
        customers: port(0)?,
        accounts: port(1)?,
        transfers: port(2)?,
        external_bank: port(3)?,
        ledger: port(4)?,
    })
}

async fn terminated() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let Some(ports) = ports(args.base_port) else {
        eprintln!("mock-bank: --base-port {} leaves no room for 5 ports", args.base_port);
        return ExitCode::FAILURE;
    };
    let config = BankConfig {
        host: args.host,
        ports,
        seed: args.seed,
        redis_url: args.redis_url,
        redis_prefix: args.redis_prefix,
        traces: args.otlp_endpoint.map(|endpoint| TraceExport {
            endpoint,
            delay: std::time::Duration::from_secs(1),
        }),
        upstreams: mock_bank::UpstreamUrls {
            accounts: args.accounts_url,
            external_bank: args.external_bank_url,
        },
        only: args.only,
        ..BankConfig::default()
    };
    let running: Vec<Service> = Service::ALL.into_iter().filter(|s| config.runs(*s)).collect();
    let bank = match start(config).await {
        Ok(bank) => bank,
        Err(e) => {
            eprintln!("mock-bank: {e}");
            return ExitCode::FAILURE;
        }
    };
    for service in running {
        println!("{} {}", service.name(), bank.url(service));
    }
    terminated().await;
    bank.shutdown().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::ports;

    #[test]
    fn ports_follow_the_base_port() {
        let p = ports(4001).unwrap_or_default();
        assert_eq!(
            [p.customers, p.accounts, p.transfers, p.external_bank, p.ledger],
            [4001, 4002, 4003, 4004, 4005]
        );
        assert_eq!(ports(0), Some(Default::default()));
        assert_eq!(ports(65533), None);
    }
}
