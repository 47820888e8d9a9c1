//! The `mosaic` binary: the gateway's command line, plus `mosaic demo`, which starts the mock bank
//! and the gateway over it. The engine (`mosaic-gateway`) knows nothing about the bank.

mod demo;

/// jemalloc instead of the system allocator: on the warm-cache 2-level query (`bench cache`) the
/// gateway spends about 15% less CPU per request (the answer tree is many small allocations freed
/// across worker threads), for ~1 MiB more idle RSS. mimalloc saved as much but cost ~9 MiB idle.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options (its `malloc_conf`, read when it starts; `_RJEM_MALLOC_CONF` in the
/// environment still overrides them): one background thread returns unused pages to the system
/// after `dirty_decay_ms` even when the gateway is idle. Without it pages are returned only while
/// the gateway keeps allocating, so a burst (e.g. of hostile 1 MiB requests) left its RSS high.
#[export_name = "_rjem_malloc_conf"]
static MALLOC_CONF: Option<&u8> =
    Some(&b"background_thread:true,max_background_threads:1,dirty_decay_ms:5000,muzzy_decay_ms:0\0"[0]);

use mosaic_gateway::runtime::ResolverRegistry;

#[tokio::main]
async fn main() {
    let code = mosaic_gateway::cli::run(Some(demo::run), ResolverRegistry::new()).await;
    std::process::exit(code);
}
