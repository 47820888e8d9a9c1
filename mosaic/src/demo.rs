//! `mosaic demo`: the mock bank's five services and the gateway with the bank schema (embedded in
//! the binary), in one process, until Ctrl-C.

use std::future::Future;
use std::pin::Pin;

use mock_bank::{BankConfig, Service, ServicePorts};
use mosaic_gateway::cli::{self, DemoArgs};
use mosaic_gateway::config::{self, SourceFile};
use mosaic_gateway::runtime::ResolverRegistry;

/// The bank schema, its config and the example queries, embedded.
pub const CONFIG: &str = include_str!("../../schema/mosaic.toml");
pub const SCHEMA: &str = include_str!("../../schema/bank.graphql");
/// `mosaic demo --federation`: the bank's entities for a supergraph.
pub const FEDERATION: &str = include_str!("../../schema/federation.graphql");
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "customer-with-accounts-and-transfers",
        include_str!("../../schema/examples/customer-with-accounts-and-transfers.graphql"),
    ),
    (
        "district-balances",
        include_str!("../../schema/examples/district-balances.graphql"),
    ),
    (
        "external-bank-calls",
        include_str!("../../schema/examples/external-bank-calls.graphql"),
    ),
    (
        "gangnam-total",
        include_str!("../../schema/examples/gangnam-total.graphql"),
    ),
    (
        "live-district-balance",
        include_str!("../../schema/examples/live-district-balance.graphql"),
    ),
    (
        "send-transfer",
        include_str!("../../schema/examples/send-transfer.graphql"),
    ),
];

pub fn run(args: DemoArgs) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> {
    Box::pin(run_demo(args))
}

fn port(base: u16, offset: u16) -> u16 {
    if base == 0 {
        0
    } else {
        base + offset
    }
}

async fn run_demo(args: DemoArgs) -> Result<(), String> {
    let b = args.backend_base_port;
    // With OTEL_EXPORTER_OTLP_ENDPOINT set, the bank's services continue the gateway's traces.
    let traces = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .map(|endpoint| mock_bank::TraceExport {
            endpoint,
            delay: std::time::Duration::from_secs(1),
        });
    let bank = mock_bank::start(BankConfig {
        traces,
        ports: ServicePorts {
            customers: port(b, 0),
            accounts: port(b, 1),
            transfers: port(b, 2),
            external_bank: port(b, 3),
            ledger: port(b, 4),
        },
        ..BankConfig::default()
    })
    .await
    .map_err(|e| format!("cannot start the mock bank: {e}"))?;

    let mut sdl = vec![SourceFile::new("schema/bank.graphql", SCHEMA)];
    if args.federation {
        sdl.push(SourceFile::new("schema/federation.graphql", FEDERATION));
    }
    let mut src =
        config::load_from_sources(SourceFile::new("schema/mosaic.toml", CONFIG), sdl).map_err(|d| d.to_string())?;
    src.settings.federation.enabled = args.federation;
    for s in Service::ALL {
        src.set_backend_url(s.name(), &bank.url(s));
    }
    let resolvers = ResolverRegistry::new();
    let plan = cli::build_plan(&src, &resolvers).map_err(|d| d.to_string())?;
    let mut opts = cli::ServeOptions::new(plan, resolvers);
    opts.listen = Some(std::net::SocketAddr::new(args.host, args.port));
    // Metrics on an admin port only when asked (MOSAIC_ADMIN_LISTEN), so two demos never collide.
    opts.admin_listen = Some(std::env::var("MOSAIC_ADMIN_LISTEN").ok().and_then(|a| a.parse().ok()));
    opts.default_query = EXAMPLES[0].1.to_string();
    opts.warmup = EXAMPLES.iter().map(|(_, q)| q.to_string()).collect();
    let running = cli::start(opts, cli::shutdown_signal()).await?;

    println!("Mosaic demo is running.\n");
    println!("  playground  http://{}/", running.addr);
    println!("  GraphQL     http://{}/graphql", running.addr);
    if args.federation {
        println!(
            "  subgraph    http://{}/graphql  (Apollo Federation v2: _service, _entities)",
            running.addr
        );
    }
    if let Some(admin) = running.admin_addr {
        println!("  metrics     http://{admin}/metrics");
    }
    println!();
    println!("Mock bank services (fault injection: PUT <service>/_faults, counters: GET <service>/_stats):");
    for s in Service::ALL {
        println!("  {:<14}{}", s.name(), bank.url(s));
    }
    println!("\nExample queries (paste into the playground):");
    for (name, q) in EXAMPLES {
        println!("\n# --- {name} ---\n{}", q.trim());
    }
    println!(
        "\nTry breaking a backend:  curl -X PUT {}/_faults -H 'content-type: application/json' -d '{{\"down\":true}}'",
        bank.url(Service::Accounts)
    );
    println!("Press Ctrl-C to stop.");

    let result = running.task.await;
    bank.shutdown().await;
    result.map_err(|e| e.to_string())?.map_err(|e| e.to_string())
}
