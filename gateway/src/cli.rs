//! The `mosaic` command: `check`, `serve`, `schema`, `import openapi`, and `demo` (which the
//! binary provides, since the demo's bank is not the engine's business).

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::{ConfigSource, Diagnostics};
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
        /// Admin listen address (/metrics, probes), overriding [server] admin_listen ("" for none).
        #[arg(long, env = "MOSAIC_ADMIN_LISTEN")]
        admin_listen: Option<String>,
    },
    /// Print the public SDL clients see (no directive or backend detail).
    Schema {
        #[arg(short, long, default_value = "mosaic.toml", env = "MOSAIC_CONFIG")]
        config: PathBuf,
        /// Print the subgraph SDL `_service { sdl }` serves (federation directives included).
        #[arg(long)]
        federation: bool,
    },
    /// Generate a facade (mosaic.toml and SDL) from existing API descriptions.
    Import {
        #[command(subcommand)]
        what: ImportCommand,
    },
    /// Start the demo: the mock bank's services and the gateway over them, with the playground.
    Demo {
        /// Address the gateway listens on (0.0.0.0 in a container).
        #[arg(long, default_value = "127.0.0.1", env = "MOSAIC_DEMO_HOST")]
        host: std::net::IpAddr,
        /// Port of the gateway (0 picks a free one).
        #[arg(long, default_value_t = 8080, env = "MOSAIC_DEMO_PORT")]
        port: u16,
        /// First port of the mock services (five in a row; 0 picks free ones).
        #[arg(long, default_value_t = 4001)]
        backend_base_port: u16,
        /// Also serve the bank as an Apollo Federation v2 subgraph (customers and accounts as
        /// entities), for a supergraph gateway in front of it.
        #[arg(long)]
        federation: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// OpenAPI 3.x or Swagger 2.0 documents (JSON or YAML, files or URLs), one backend each.
    Openapi {
        /// The documents.
        #[arg(required = true)]
        inputs: Vec<String>,
        /// The backend name of each document, in order (default: the file's name or the title).
        #[arg(long)]
        backend: Vec<String>,
        /// The folder written: mosaic.toml, generated/, custom/.
        #[arg(short, long)]
        out: PathBuf,
        /// Do not guess relations between resources (`customer_id` → `customer`).
        #[arg(long)]
        no_relations: bool,
    },
}

/// The arguments of `mosaic demo`.
#[derive(Debug, Clone, Copy)]
pub struct DemoArgs {
    pub host: std::net::IpAddr,
    pub port: u16,
    pub backend_base_port: u16,
    pub federation: bool,
}

/// Runs the demo (provided by the binary).
pub type DemoFn = fn(DemoArgs) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Parses the command line and runs it; returns the process exit code.
pub async fn run(demo: Option<DemoFn>, resolvers: ResolverRegistry) -> i32 {
    let cli = Cli::parse();
    let _logs = init_logging(&cli.command);
    match cli.command {
        Command::Check { config } => match load_plan(&config, &resolvers) {
            Ok(plan) => {
                out(&format!("{}\n", Summary::of(&plan)));
                0
            }
            Err(d) => report(&d),
        },
        Command::Import {
            what:
                ImportCommand::Openapi {
                    inputs,
                    backend,
                    out: dir,
                    no_relations,
                },
        } => {
            import_openapi(
                crate::import::Options {
                    inputs,
                    backends: backend,
                    out: dir,
                    relations: !no_relations,
                },
                &resolvers,
            )
            .await
        }
        Command::Schema { config, federation } => {
            match load_plan(&config, &resolvers).map(|p| Runtime::new(p, resolvers.clone())) {
                Ok(Ok(rt)) if federation => match rt.subgraph_sdl() {
                    Some(sdl) => {
                        out(&sdl);
                        0
                    }
                    None => {
                        eprintln!(
                            "error: federation is off: set `[federation] enabled = true` in {}",
                            config.display()
                        );
                        1
                    }
                },
                Ok(Ok(rt)) => {
                    out(&rt.public_sdl());
                    0
                }
                Ok(Err(e)) => {
                    eprintln!("error: {e}");
                    1
                }
                Err(d) => report(&d),
            }
        }
        Command::Serve {
            config,
            listen,
            admin_listen,
        } => {
            let watched = server::reload::Watched::before_loading(config.clone());
            let plan = match load_plan(&config, &resolvers) {
                Ok(p) => p,
                Err(d) => return report(&d),
            };
            let mut opts = ServeOptions::new(plan, resolvers);
            opts.warmup = warmup_documents(&config, &opts.plan);
            opts.listen = listen;
            opts.admin_listen = admin_listen.map(|a| (!a.is_empty()).then(|| a.parse().ok()).flatten());
            opts.reload_from = Some(watched);
            match start(opts, shutdown_signal()).await {
                Ok(running) => match running.task.await {
                    Ok(Ok(())) => 0,
                    Ok(Err(e)) => {
                        eprintln!("error: {e}");
                        1
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        1
                    }
                },
                Err(e) => {
                    eprintln!("error: {e}");
                    1
                }
            }
        }
        Command::Demo {
            host,
            port,
            backend_base_port,
            federation,
        } => match demo {
            Some(d) => match d(DemoArgs {
                host,
                port,
                backend_base_port,
                federation,
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

/// Writes to stdout; a closed pipe (`mosaic schema | head`) is not an error worth a panic.
/// `mosaic import openapi`: writes the files, prints the summary, then checks the result the
/// way `mosaic check` would (exit 1 when it does not pass).
async fn import_openapi(opts: crate::import::Options, resolvers: &ResolverRegistry) -> i32 {
    match crate::import::run(&opts).await {
        Ok(summary) => {
            out(&format!("{summary}"));
            let config = opts.out.join("mosaic.toml");
            match load_plan(&config, resolvers) {
                Ok(plan) => {
                    out(&format!(
                        "mosaic check {}: ok\n{}\n",
                        config.display(),
                        Summary::of(&plan)
                    ));
                    0
                }
                Err(d) => {
                    eprintln!("mosaic check {} failed:", config.display());
                    report(&d)
                }
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
}

fn report(d: &Diagnostics) -> i32 {
    eprintln!("{d}");
    eprintln!("\n{} problem(s) found", d.len());
    1
}

/// Reads and validates a config file.
pub fn load_plan(path: &Path, resolvers: &ResolverRegistry) -> Result<Plan, Diagnostics> {
    plan::load(path, &resolvers.names())
}

pub fn build_plan(src: &ConfigSource, resolvers: &ResolverRegistry) -> Result<Plan, Diagnostics> {
    plan::build(src, &resolvers.names())
}

/// A running gateway.
pub struct Running {
    pub addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    pub state: Arc<AppState>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// How to start serving.
pub struct ServeOptions {
    pub plan: Plan,
    pub resolvers: ResolverRegistry,
    /// Overrides `[server] listen`.
    pub listen: Option<SocketAddr>,
    /// Overrides `[server] admin_listen` (`Some(None)`: no admin listener).
    pub admin_listen: Option<Option<SocketAddr>>,
    /// The query the playground opens with.
    pub default_query: String,
    /// Operations compiled before the gateway reports ready.
    pub warmup: Vec<String>,
    /// The config file to reload on SIGHUP or when it (or a schema file) changes.
    pub reload_from: Option<server::reload::Watched>,
}

impl ServeOptions {
    pub fn new(plan: Plan, resolvers: ResolverRegistry) -> Self {
        Self {
            plan,
            resolvers,
            listen: None,
            admin_listen: None,
            default_query: String::new(),
            warmup: Vec::new(),
            reload_from: None,
        }
    }
}

fn parse_addr(what: &str, text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|e| format!("{what} {text:?} is not an address: {e}"))
}

/// Binds, warms up (operations compiled, backend pools opened) and starts serving in the
/// background; the gateway reports ready once warm.
pub async fn start(opts: ServeOptions, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<Running, String> {
    let addr = match opts.listen {
        Some(a) => a,
        None => parse_addr("[server] listen", &opts.plan.server.listen)?,
    };
    let admin = match opts.admin_listen {
        Some(a) => a,
        None if opts.plan.server.admin_listen.is_empty() => None,
        None => Some(parse_addr("[server] admin_listen", &opts.plan.server.admin_listen)?),
    };
    let started = std::time::Instant::now();
    // Before anything records a metric (warm-up, the backends' series).
    crate::telemetry::metrics::install();
    let tracer = crate::telemetry::traces::Tracer::from_settings(&opts.plan.telemetry).map_err(|e| e.to_string())?;
    if let Some(t) = &tracer {
        tracing::info!(sampler = ?t.sampler(), "exporting traces over OTLP");
    }
    let runtime = Runtime::new(opts.plan, opts.resolvers.clone()).map_err(|e| e.to_string())?;
    runtime.warm_up(&opts.warmup).await;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let admin_listener = match admin {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .map_err(|e| format!("cannot listen on {a} (admin): {e}"))?,
        ),
        None => None,
    };
    let admin_addr = admin_listener.as_ref().and_then(|l| l.local_addr().ok());
    let state = Arc::new(
        AppState::new(Arc::new(runtime))
            .with_default_query(opts.default_query)
            .with_tracer(tracer),
    );
    if let Some(watched) = opts.reload_from {
        server::reload::watch(state.clone(), watched, opts.resolvers, opts.warmup);
    }
    let task = tokio::spawn(server::serve(listener, admin_listener, state.clone(), shutdown));
    tracing::info!(%addr, admin = ?admin_addr, ready_in_ms = started.elapsed().as_millis() as u64, "mosaic is serving");
    Ok(Running {
        addr,
        admin_addr,
        state,
        task,
    })
}

/// The warm-up documents `[server] warmup` names for `config` (see [`plan::warmup`]).
pub fn warmup_documents(config: &Path, plan: &Plan) -> Vec<String> {
    plan::warmup::documents(config, plan)
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

fn init_logging(command: &Command) -> Option<crate::telemetry::logging::LogGuard> {
    let settings = log_settings(command);
    crate::telemetry::logging::init(&crate::telemetry::logging::LogSetup::from_process(&settings))
}

/// The `[log]` table of the config file `command` reads, before the file is loaded (logging is
/// set up first); the defaults when there is none or it is invalid (loading says why).
fn log_settings(command: &Command) -> crate::config::settings::LogToml {
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        log: crate::config::settings::LogToml,
    }
    match command {
        Command::Check { config } | Command::Serve { config, .. } | Command::Schema { config, .. } => {
            std::fs::read_to_string(config)
                .ok()
                .and_then(|text| toml::from_str::<File>(&text).ok())
                .map(|f| f.log)
                .unwrap_or_default()
        }
        _ => Default::default(),
    }
}
