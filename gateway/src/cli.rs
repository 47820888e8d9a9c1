//! The `mosaic` command: `check`, `serve`, `schema`, and `demo` (which the binary provides, since
//! the demo's bank is not the engine's business).

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::{self, ConfigSource, Diagnostics};
use crate::plan::{self, summary::Summary, Plan};
use crate::runtime::{ResolverRegistry, Runtime};
use crate::server::{self, AppState};

#[derive(Parser, Debug)]
#[command(
    name = "mosaic",
    version,
    about = "A GraphQL BFF gateway over REST services, declared in SDL"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate mosaic.toml and the schema; list every problem with file:line:col.
    Check {
        #[arg(short, long, default_value = "mosaic.toml", env = "MOSAIC_CONFIG")]
        config: PathBuf,
    },
    /// Serve GraphQL (and the playground) as configured.
    Serve {
        #[arg(short, long, default_value = "mosaic.toml", env = "MOSAIC_CONFIG")]
        config: PathBuf,
        /// Listen address, overriding [server] listen.
        #[arg(long, env = "MOSAIC_LISTEN")]
        listen: Option<SocketAddr>,
    },
    /// Print the public SDL clients see (no directive or backend detail).
    Schema {
        #[arg(short, long, default_value = "mosaic.toml", env = "MOSAIC_CONFIG")]
        config: PathBuf,
    },
    /// Start the demo: the mock bank's services and the gateway over them, with the playground.
    Demo {
        /// Port of the gateway (0 picks a free one).
        #[arg(long, default_value_t = 8080, env = "MOSAIC_DEMO_PORT")]
        port: u16,
        /// First port of the mock services (five in a row; 0 picks free ones).
        #[arg(long, default_value_t = 4001)]
        backend_base_port: u16,
    },
}

/// The arguments of `mosaic demo`.
#[derive(Debug, Clone, Copy)]
pub struct DemoArgs {
    pub port: u16,
    pub backend_base_port: u16,
}

/// Runs the demo (provided by the binary).
pub type DemoFn = fn(DemoArgs) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Parses the command line and runs it; returns the process exit code.
pub async fn run(demo: Option<DemoFn>, resolvers: ResolverRegistry) -> i32 {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Check { config } => match load_plan(&config, &resolvers) {
            Ok(plan) => {
                println!("{}", Summary::of(&plan));
                0
            }
            Err(d) => report(&d),
        },
        Command::Schema { config } => {
            match load_plan(&config, &resolvers).map(|p| Runtime::new(p, resolvers.clone())) {
                Ok(Ok(rt)) => {
                    print!("{}", rt.public_sdl());
                    0
                }
                Ok(Err(e)) => {
                    eprintln!("error: {e}");
                    1
                }
                Err(d) => report(&d),
            }
        }
        Command::Serve { config, listen } => {
            let plan = match load_plan(&config, &resolvers) {
                Ok(p) => p,
                Err(d) => return report(&d),
            };
            match serve_plan(plan, resolvers, listen, String::new(), shutdown_signal()).await {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("error: {e}");
                    1
                }
            }
        }
        Command::Demo {
            port,
            backend_base_port,
        } => match demo {
            Some(d) => match d(DemoArgs {
                port,
                backend_base_port,
            })
            .await
            {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("error: {e}");
                    1
                }
            },
            None => {
                eprintln!("error: this build has no demo");
                2
            }
        },
    }
}

fn report(d: &Diagnostics) -> i32 {
    eprintln!("{d}");
    eprintln!("\n{} problem(s) found", d.len());
    1
}

/// Reads and validates a config file.
pub fn load_plan(path: &Path, resolvers: &ResolverRegistry) -> Result<Plan, Diagnostics> {
    let src = config::load_from_path(path)?;
    build_plan(&src, resolvers)
}

pub fn build_plan(src: &ConfigSource, resolvers: &ResolverRegistry) -> Result<Plan, Diagnostics> {
    plan::build(src, &resolvers.names())
}

/// A running gateway.
pub struct Running {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Binds and starts serving `plan` in the background.
pub async fn start(
    plan: Plan,
    resolvers: ResolverRegistry,
    listen: Option<SocketAddr>,
    default_query: String,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, String> {
    let addr = match listen {
        Some(a) => a,
        None => plan
            .server
            .listen
            .parse()
            .map_err(|e| format!("[server] listen {:?} is not an address: {e}", plan.server.listen))?,
    };
    let runtime = Runtime::new(plan, resolvers).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let state = Arc::new(AppState::new(Arc::new(runtime)).with_default_query(default_query));
    let task = tokio::spawn(server::serve(listener, state.clone(), shutdown));
    Ok(Running { addr, state, task })
}

async fn serve_plan(
    plan: Plan,
    resolvers: ResolverRegistry,
    listen: Option<SocketAddr>,
    default_query: String,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let running = start(plan, resolvers, listen, default_query, shutdown).await?;
    tracing::info!(addr = %running.addr, "mosaic is serving");
    running
        .task
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MOSAIC_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("MOSAIC_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
