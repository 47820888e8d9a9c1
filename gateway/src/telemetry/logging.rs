//! Logs: structured JSON lines (the default when stderr is not a terminal, as in containers) or
//! human-readable text (on a terminal), filtered in `RUST_LOG` syntax. What to log and how come
//! from `[log]`, overridden by `MOSAIC_LOG` (or `RUST_LOG`) and `MOSAIC_LOG_FORMAT`; a reload
//! applies a changed `[log] level` unless a variable set it.
//!
//! Logs are for troubleshooting and must not be lost. They are written by a background thread so
//! the request path does not wait on the terminal or the log collector, through tracing-appender's
//! non-blocking writer in its *lossless* mode: when its buffer (`[log] buffer_lines`) is full, the
//! writer waits instead of dropping the line. Such waits are counted
//! (`mosaic_log_lines_delayed_total`).

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

use crate::config::settings::{LogFormat, LogToml};

/// Keeps the log writer alive; dropping it flushes every buffered line.
pub struct LogGuard {
    _writer: WorkerGuard,
}

/// The log format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
}

/// How logging is set up: the filter, the format and the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSetup {
    pub filter: String,
    pub format: Format,
    pub buffer_lines: usize,
    /// The filter came from `MOSAIC_LOG`/`RUST_LOG`: reloads leave it alone.
    pub filter_from_env: bool,
}

impl LogSetup {
    /// `[log]` under the variables `env` reads; `terminal`: whether stderr is one.
    pub fn resolve(settings: &LogToml, env: &dyn Fn(&str) -> Option<String>, terminal: bool) -> Self {
        let from_env = env("MOSAIC_LOG")
            .or_else(|| env("RUST_LOG"))
            .filter(|f| parse_filter(f).is_ok());
        let format = match env("MOSAIC_LOG_FORMAT").as_deref() {
            Some("json") => Format::Json,
            Some("text") => Format::Text,
            _ => match settings.format {
                LogFormat::Json => Format::Json,
                LogFormat::Text => Format::Text,
                LogFormat::Auto if terminal => Format::Text,
                LogFormat::Auto => Format::Json,
            },
        };
        Self {
            filter_from_env: from_env.is_some(),
            filter: from_env.unwrap_or_else(|| settings.level.get_ref().clone()),
            format,
            buffer_lines: settings.buffer_lines.max(64),
        }
    }

    /// From the process's environment and stderr.
    pub fn from_process(settings: &LogToml) -> Self {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self::resolve(settings, &env, std::io::stderr().is_terminal())
    }
}

/// A filter in `RUST_LOG` syntax, or why it is not one.
pub fn parse_filter(text: &str) -> Result<EnvFilter, String> {
    EnvFilter::builder().parse(text).map_err(|e| e.to_string())
}

/// The installed filter, for reloads.
static FILTER: OnceLock<(reload::Handle<EnvFilter, Registry>, bool)> = OnceLock::new();

/// Applies a reloaded `[log] level` (unless the variables set the filter at start).
pub fn apply_level(level: &str) {
    let Some((handle, from_env)) = FILTER.get() else { return };
    if *from_env {
        return;
    }
    let Ok(filter) = parse_filter(level) else { return };
    let changed = handle
        .with_current(|current| current.to_string() != filter.to_string())
        .unwrap_or(false);
    if changed && handle.reload(filter).is_ok() {
        tracing::info!(level, "log level changed");
    }
}

/// A write to the background writer's queue takes well under a microsecond; one that takes longer
/// than this waited for room.
const DELAYED: std::time::Duration = std::time::Duration::from_millis(1);

/// The non-blocking writer, counting the lines that had to wait for room in its buffer.
#[derive(Clone)]
struct Timed(NonBlocking);

impl std::io::Write for Timed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let started = std::time::Instant::now();
        let written = self.0.write(buf);
        if started.elapsed() > DELAYED {
            super::metrics::log_backpressure();
        }
        written
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Timed {
    type Writer = Timed;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Installs the global subscriber: logs to stderr.
/// Returns `None` if a subscriber was already installed (tests).
pub fn init(setup: &LogSetup) -> Option<LogGuard> {
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(setup.buffer_lines)
        .thread_name("mosaic-log")
        .finish(std::io::stderr());
    let writer = Timed(writer);
    let filter = parse_filter(&setup.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let fmt = match setup.format {
        Format::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .boxed(),
        Format::Text => tracing_subscriber::fmt::layer().with_writer(writer).boxed(),
    };
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .try_init()
        .ok()?;
    let _ = FILTER.set((handle, setup.filter_from_env));
    Some(LogGuard { _writer: guard })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> LogToml {
        toml::from_str(text).expect("a valid [log] table")
    }

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn the_file_sets_level_format_and_buffer() {
        let s = settings("level = \"warn,mosaic_gateway::backend=debug\"\nformat = \"text\"\nbuffer_lines = 1000");
        let setup = LogSetup::resolve(&s, &vars(&[]), false);
        assert_eq!(setup.filter, "warn,mosaic_gateway::backend=debug");
        assert_eq!(setup.format, Format::Text);
        assert_eq!(setup.buffer_lines, 1000);
        assert!(!setup.filter_from_env);
    }

    #[test]
    fn variables_win_over_the_file_and_mosaic_log_over_rust_log() {
        let s = settings("level = \"warn\"\nformat = \"text\"");
        let setup = LogSetup::resolve(
            &s,
            &vars(&[
                ("RUST_LOG", "debug"),
                ("MOSAIC_LOG", "error"),
                ("MOSAIC_LOG_FORMAT", "json"),
            ]),
            true,
        );
        assert_eq!((setup.filter.as_str(), setup.format), ("error", Format::Json));
        assert!(setup.filter_from_env);
        let rust_log = LogSetup::resolve(&s, &vars(&[("RUST_LOG", "debug")]), true);
        assert_eq!(rust_log.filter, "debug");
    }

    #[test]
    fn auto_is_text_on_a_terminal_and_json_elsewhere() {
        let s = LogToml::default();
        assert_eq!(LogSetup::resolve(&s, &vars(&[]), true).format, Format::Text);
        assert_eq!(LogSetup::resolve(&s, &vars(&[]), false).format, Format::Json);
        assert_eq!(LogSetup::resolve(&s, &vars(&[]), false).filter, "info");
    }

    #[test]
    fn an_invalid_variable_filter_is_ignored_for_the_files() {
        let s = settings("level = \"warn\"");
        let setup = LogSetup::resolve(&s, &vars(&[("MOSAIC_LOG", "=[")]), false);
        assert_eq!(setup.filter, "warn");
        assert!(parse_filter("=[").is_err());
        assert!(parse_filter("info,hyper=off").is_ok());
    }
}
