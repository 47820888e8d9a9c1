//! Hot reload: on SIGHUP, or when the config file, a schema file, the trusted-documents manifest or
//! the JWKS file changes, the new configuration
//! is loaded and validated first; if valid it is swapped in atomically (requests in flight finish
//! on the old one), if not the old one keeps serving and every problem is logged and counted.
//!
//! Files are watched by polling their modification times every two seconds: simple, portable,
//! and it also sees files replaced by a Kubernetes ConfigMap update (a symlink swap).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::AppState;
use crate::runtime::{ResolverRegistry, Runtime};
use crate::telemetry::metrics;

/// The config file to watch, and the modification times of it and its schema files taken
/// *before* they were loaded: a change made while the gateway loads, compiles or warms up is then
/// seen at the first poll instead of becoming the baseline.
#[derive(Debug, Clone)]
pub struct Watched {
    config: PathBuf,
    baseline: (Vec<PathBuf>, Vec<Option<SystemTime>>),
}

impl Watched {
    /// Call before loading `config`.
    pub fn before_loading(config: PathBuf) -> Self {
        let baseline = stamps(&config);
        Self { config, baseline }
    }
}

/// Starts watching the config (and the schema files it names) for the gateway in `state`.
pub fn watch(state: Arc<AppState>, watched: Watched, resolvers: ResolverRegistry, warmup: Vec<String>) {
    tokio::spawn(async move {
        let Watched { config, baseline } = watched;
        let mut watched = baseline;
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut closing = state.closing();
        loop {
            let signalled = async {
                #[cfg(unix)]
                if let Some(h) = hup.as_mut() {
                    h.recv().await;
                    return;
                }
                std::future::pending::<()>().await
            };
            let reason = tokio::select! {
                _ = signalled => "SIGHUP",
                _ = tokio::time::sleep(Duration::from_secs(2)) => {
                    let now = stamps_of(&watched.0);
                    if now == watched.1 {
                        continue;
                    }
                    "file change"
                }
                _ = closing.changed() => return,
            };
            let started = std::time::Instant::now();
            // Taken before reading the files, for the same reason as the first baseline.
            let next = stamps(&config);
            match reload(&config, &resolvers, &warmup).await {
                Ok(runtime) => {
                    crate::telemetry::logging::apply_level(runtime.plan().log.level.get_ref());
                    state.replace_runtime(Arc::new(runtime));
                    metrics::reload(true);
                    tracing::info!(
                        reason,
                        took_ms = started.elapsed().as_millis() as u64,
                        "configuration reloaded"
                    );
                }
                Err(problems) => {
                    metrics::reload(false);
                    tracing::error!(reason, problems = %problems, "new configuration rejected; the current one keeps serving");
                }
            }
            watched = next;
        }
    });
}

async fn reload(config: &Path, resolvers: &ResolverRegistry, warmup: &[String]) -> Result<Runtime, String> {
    let plan = crate::plan::load(config, &resolvers.names()).map_err(|d| d.to_string())?;
    // The documents given at start, and those the (possibly changed) `[server] warmup` names now.
    let mut documents = warmup.to_vec();
    documents.extend(crate::plan::warmup::documents(config, &plan));
    documents.sort();
    documents.dedup();
    let runtime = Runtime::new(plan, resolvers.clone()).map_err(|e| e.to_string())?;
    runtime.warm_up(&documents).await;
    Ok(runtime)
}

/// The files to watch and their modification times.
fn stamps(config: &Path) -> (Vec<PathBuf>, Vec<Option<SystemTime>>) {
    let mut files = vec![config.to_path_buf()];
    if let Ok(src) = crate::config::load_from_path(config) {
        files.extend(src.sdl.iter().map(|f| PathBuf::from(&*f.file.name)));
        // The files the config names: the trusted-documents manifest and the JWKS.
        let dir = config.parent().unwrap_or(Path::new(""));
        let named = [
            src.settings.security.trusted_documents.as_ref(),
            src.settings.auth.jwks_file.as_ref(),
        ];
        files.extend(named.into_iter().flatten().map(|f| dir.join(f.get_ref())));
    }
    let times = stamps_of(&files);
    (files, times)
}

fn stamps_of(files: &[PathBuf]) -> Vec<Option<SystemTime>> {
    files
        .iter()
        .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        .collect()
}
