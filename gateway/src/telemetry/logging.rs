//! Logs: structured JSON lines (the default when stderr is not a terminal, as in containers) or
//! human-readable text (on a terminal), filtered by `MOSAIC_LOG` (`RUST_LOG` syntax).
//!
//! Logs are for troubleshooting and must not be lost. They are written by a background thread so
//! the request path does not wait on the terminal or the log collector, through tracing-appender's
//! non-blocking writer in its *lossless* mode: when its (large) buffer is full, the writer waits
//! instead of dropping the line. Such waits are counted (`mosaic_log_lines_delayed_total`).

use std::io::IsTerminal;

use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

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

impl Format {
    /// `MOSAIC_LOG_FORMAT` (`json` | `text`), else JSON unless stderr is a terminal.
    pub fn from_env() -> Self {
        match std::env::var("MOSAIC_LOG_FORMAT").as_deref() {
            Ok("json") => Format::Json,
            Ok("text") => Format::Text,
            _ if std::io::stderr().is_terminal() => Format::Text,
            _ => Format::Json,
        }
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
pub fn init(format: Format) -> Option<LogGuard> {
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(256 * 1024)
        .thread_name("mosaic-log")
        .finish(std::io::stderr());
    let writer = Timed(writer);
    let filter = EnvFilter::try_from_env("MOSAIC_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = match format {
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
    Some(LogGuard { _writer: guard })
}
