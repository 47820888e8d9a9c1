//! The `mosaic` binary: the gateway's command line, plus `mosaic demo`, which starts the mock bank
//! and the gateway over it. The engine (`mosaic-gateway`) knows nothing about the bank.

mod demo;

use mosaic_gateway::runtime::ResolverRegistry;

#[tokio::main]
async fn main() {
    let code = mosaic_gateway::cli::run(Some(demo::run), ResolverRegistry::new()).await;
    std::process::exit(code);
}
