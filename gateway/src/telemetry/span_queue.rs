//! Finished spans on their way to the OTLP exporter: a bounded buffer the request path pushes
//! into (a lock held for one `push`), drained in batches by one export task, every
//! `OTEL_BSP_SCHEDULE_DELAY` or as soon as a batch is full.
//!
//! Why not the SDK's `BatchSpanProcessor`: its async-runtime variant sends every span through a
//! channel to its task and wakes that task per span, which our overhead benchmark measured as most
//! of the cost of tracing at 100% sampling; its thread variant drives the exporter with a blocking
//! executor, which our Tokio-based exporters (reqwest, tonic) cannot run on. The exporter itself
//! (batch → OTLP protobuf → HTTP or gRPC) is the SDK's.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tokio::sync::Notify;

/// Sizes and delays, from the standard `OTEL_BSP_*` variables (and `[telemetry] export_delay`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueConfig {
    /// Spans kept while waiting for export; beyond, new spans are dropped (and counted).
    pub max_queue: usize,
    /// Spans per export request.
    pub max_batch: usize,
    /// Time between exports when no batch fills up.
    pub delay: Duration,
    /// How long one export may take.
    pub export_timeout: Duration,
}

impl QueueConfig {
    /// The SDK's defaults (2048 spans, batches of 512, every 5 s), overridden by `OTEL_BSP_*`.
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|v| *v > 0)
        };
        let max_queue = var("OTEL_BSP_MAX_QUEUE_SIZE").map_or(2048, |v| v as usize);
        Self {
            max_queue,
            max_batch: var("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
                .map_or(512, |v| v as usize)
                .min(max_queue),
            delay: Duration::from_millis(var("OTEL_BSP_SCHEDULE_DELAY").unwrap_or(5000)),
            export_timeout: Duration::from_millis(var("OTEL_BSP_EXPORT_TIMEOUT").unwrap_or(30_000)),
        }
    }
}

/// The request path's side: where finished spans go.
pub struct SpanQueue {
    spans: Mutex<Vec<SpanData>>,
    config: QueueConfig,
    batch_ready: Notify,
    stop: Notify,
    dropped: AtomicU64,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl SpanQueue {
    /// Starts the export task on the current Tokio runtime.
    pub fn start<E: SpanExporter + 'static>(exporter: E, config: QueueConfig) -> Arc<Self> {
        let queue = Arc::new(Self {
            spans: Mutex::new(Vec::with_capacity(config.max_batch)),
            config,
            batch_ready: Notify::new(),
            stop: Notify::new(),
            dropped: AtomicU64::new(0),
            task: Mutex::new(None),
        });
        let task = tokio::spawn(export_loop(queue.clone(), exporter));
        if let Ok(mut t) = queue.task.lock() {
            *t = Some(task);
        }
        queue
    }

    /// Queues a finished span; drops it (counted in `mosaic_trace_spans_dropped_total`) when the
    /// queue is full, as the exporter is not keeping up.
    pub fn push(&self, span: SpanData) {
        let Ok(mut spans) = self.spans.lock() else { return };
        if spans.len() >= self.config.max_queue {
            drop(spans);
            if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    max_queue = self.config.max_queue,
                    "the trace exporter is not keeping up: spans are dropped (see mosaic_trace_spans_dropped_total)"
                );
            }
            metrics::counter!("mosaic_trace_spans_dropped_total").increment(1);
            return;
        }
        spans.push(span);
        let full = spans.len() == self.config.max_batch;
        drop(spans);
        if full {
            self.batch_ready.notify_one();
        }
    }

    /// Up to one batch of the oldest spans.
    fn take_batch(&self) -> Vec<SpanData> {
        let Ok(mut spans) = self.spans.lock() else {
            return Vec::new();
        };
        if spans.len() <= self.config.max_batch {
            return std::mem::replace(&mut *spans, Vec::with_capacity(self.config.max_batch));
        }
        let rest = spans.split_off(self.config.max_batch);
        std::mem::replace(&mut *spans, rest)
    }

    /// Exports what is queued, then stops the export task (at shutdown); bounded by the export
    /// timeout per batch.
    pub async fn shutdown(&self) {
        self.stop.notify_one();
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

async fn export_loop<E: SpanExporter>(queue: Arc<SpanQueue>, exporter: E) {
    let failing = AtomicBool::new(false);
    let mut stopping = false;
    while !stopping {
        tokio::select! {
            _ = tokio::time::sleep(queue.config.delay) => {}
            _ = queue.batch_ready.notified() => {}
            _ = queue.stop.notified() => stopping = true,
        }
        loop {
            let batch = queue.take_batch();
            if batch.is_empty() {
                break;
            }
            let full = batch.len() == queue.config.max_batch;
            let spans = batch.len();
            match tokio::time::timeout(queue.config.export_timeout, exporter.export(batch)).await {
                Ok(Ok(())) => {
                    if failing.swap(false, Ordering::Relaxed) {
                        tracing::info!("trace export works again");
                    }
                }
                Ok(Err(e)) => {
                    if !failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %e, spans, "trace export failed; spans of this batch are lost");
                    }
                }
                Err(_) => {
                    if !failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(spans, timeout = ?queue.config.export_timeout, "trace export timed out");
                    }
                }
            }
            // A partial batch was all there was; wait for the next tick.
            if !full && !stopping {
                break;
            }
        }
    }
    let _ = exporter.shutdown();
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanKind, Status};
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

    #[derive(Debug, Default, Clone)]
    struct Collect(Arc<Mutex<Vec<usize>>>);

    impl SpanExporter for Collect {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.lock().expect("not poisoned").push(batch.len());
            Ok(())
        }
    }

    fn span() -> SpanData {
        SpanData {
            span_context: SpanContext::empty_context(),
            parent_span_id: opentelemetry::trace::SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "s".into(),
            start_time: std::time::SystemTime::now(),
            end_time: std::time::SystemTime::now(),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: Default::default(),
        }
    }

    fn config() -> QueueConfig {
        QueueConfig {
            max_queue: 10,
            max_batch: 4,
            delay: Duration::from_secs(3600),
            export_timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn full_batches_go_at_once_and_the_rest_at_shutdown() {
        let exported = Collect::default();
        let queue = SpanQueue::start(exported.clone(), config());
        for _ in 0..9 {
            queue.push(span());
        }
        tokio::time::timeout(Duration::from_secs(5), async {
            while exported.0.lock().expect("not poisoned").iter().sum::<usize>() < 8 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("two full batches exported without waiting for the delay");
        queue.shutdown().await;
        assert_eq!(*exported.0.lock().expect("not poisoned"), [4, 4, 1]);
    }

    #[tokio::test]
    async fn a_full_queue_drops_new_spans() {
        let exported = Collect::default();
        let queue = SpanQueue::start(exported.clone(), config());
        // The export task has not run yet (single-threaded test runtime): 10 fit, 5 are dropped.
        for _ in 0..15 {
            queue.push(span());
        }
        assert_eq!(queue.dropped.load(Ordering::Relaxed), 5);
        queue.shutdown().await;
        assert_eq!(exported.0.lock().expect("not poisoned").iter().sum::<usize>(), 10);
    }
}
