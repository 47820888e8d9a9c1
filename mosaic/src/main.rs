//! The `mosaic` binary: the gateway's command line, plus `mosaic demo`, which starts the mock bank
//! and the gateway over it. The engine (`mosaic-gateway`) knows nothing about the bank.

mod demo;

/// jemalloc instead of the system allocator: on the warm-cache 2-level query (`bench cache`) the
/// gateway spends about 15% less CPU per request (the answer tree is many small allocations freed
/// across worker threads), for ~1 MiB more idle RSS. mimalloc saved as much but cost ~9 MiB idle.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use mosaic_gateway::runtime::ResolverRegistry;

#[tokio::main]
async fn main() {
    let code = mosaic_gateway::cli::run(Some(demo::run), ResolverRegistry::new()).await;
    std::process::exit(code);
}
