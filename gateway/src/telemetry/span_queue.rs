//! Finished spans on their way to the collector: the request path encodes each span into the
//! current batch's buffer (a lock held for one encoding, a few hundred nanoseconds), and one
//! export task sends each batch as an OTLP request, every `OTEL_BSP_SCHEDULE_DELAY` or as soon as
//! a batch is full. A batch buffer starts with room for the request's head, so it is sent as it
//! is, and is sized from the previous full batch, so it does not grow by copying.
//!
//! Why not the SDK's `BatchSpanProcessor`: its async-runtime variant sends every span through a
//! channel to its task and wakes that task per span, and both variants hold `SpanData` (owned
//! strings and attribute vectors) until the exporter converts it; our overhead benchmark measured
//! that as most of the cost of tracing at 100% sampling. Here a span costs one encoding into a
//! buffer that is reused batch after batch.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::otlp::encode::{Envelope, SpanRecord};
use super::otlp::export::Export;
use super::trace_context::TraceId;

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
    /// The SDK's defaults (2048 spans, batches of 512, every 5 s), overridden by `OTEL_BSP_*`
    /// (read with `env`).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| env(name).and_then(|v| v.trim().parse::<u64>().ok()).filter(|v| *v > 0);
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

/// Encoded spans (entries of `ScopeSpans.spans`) for one export request, after
/// [`Envelope::head_room`] bytes.
#[derive(Debug, Default)]
struct Batch {
    bytes: Vec<u8>,
    spans: usize,
}

#[derive(Debug, Default)]
struct Pending {
    /// Batches that reached `max_batch`, oldest first.
    full: VecDeque<Batch>,
    /// The batch spans are added to.
    current: Batch,
    /// Spans in `full` and `current`.
    queued: usize,
    /// The size of the last full batch: what a new batch buffer is allocated with.
    full_bytes: usize,
}

/// The request path's side: where finished spans go.
pub struct SpanQueue {
    pending: Mutex<Pending>,
    /// Bytes left at the start of each batch for the request's head.
    head_room: usize,
    config: QueueConfig,
    batch_ready: Notify,
    stop: Notify,
    dropped: AtomicU64,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl SpanQueue {
    /// Starts the export task on the current Tokio runtime.
    pub fn start<E: Export>(exporter: E, envelope: Envelope, config: QueueConfig) -> Arc<Self> {
        let queue = Arc::new(Self {
            pending: Mutex::new(Pending::default()),
            head_room: envelope.head_room(),
            config,
            batch_ready: Notify::new(),
            stop: Notify::new(),
            dropped: AtomicU64::new(0),
            task: Mutex::new(None),
        });
        let task = tokio::spawn(export_loop(queue.clone(), exporter, envelope));
        if let Ok(mut t) = queue.task.lock() {
            *t = Some(task);
        }
        queue
    }

    /// Queues a finished span; drops it (counted in `mosaic_trace_spans_dropped_total`) when the
    /// queue is full, as the exporter is not keeping up.
    pub fn push(&self, trace_id: TraceId, span: &SpanRecord<'_>) {
        let Ok(mut pending) = self.pending.lock() else { return };
        if pending.queued >= self.config.max_queue {
            drop(pending);
            if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    max_queue = self.config.max_queue,
                    "the trace exporter is not keeping up: spans are dropped (see mosaic_trace_spans_dropped_total)"
                );
            }
            metrics::counter!("mosaic_trace_spans_dropped_total").increment(1);
            return;
        }
        let pending = &mut *pending;
        if pending.current.spans == 0 {
            let mut bytes = Vec::with_capacity(pending.full_bytes.max(self.head_room + 1024));
            bytes.resize(self.head_room, 0);
            pending.current.bytes = bytes;
        }
        span.encode_entry(trace_id, &mut pending.current.bytes);
        pending.current.spans += 1;
        pending.queued += 1;
        if pending.current.spans == self.config.max_batch {
            let full = std::mem::take(&mut pending.current);
            // Room for one more span's worth of variation.
            pending.full_bytes = full.bytes.len() + full.bytes.len() / full.spans.max(1) * 8;
            pending.full.push_back(full);
            self.batch_ready.notify_one();
        }
    }

    /// The oldest batch (full, else the one being filled); `None` when nothing is queued.
    fn take_batch(&self) -> Option<Batch> {
        let mut pending = self.pending.lock().ok()?;
        let batch = match pending.full.pop_front() {
            Some(b) => b,
            None if pending.current.spans > 0 => std::mem::take(&mut pending.current),
            None => return None,
        };
        pending.queued -= batch.spans;
        Some(batch)
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

async fn export_loop<E: Export>(queue: Arc<SpanQueue>, exporter: E, envelope: Envelope) {
    // Failures are logged when exports start failing and when they work again, not per batch.
    let mut failing = false;
    let mut stopping = false;
    while !stopping {
        tokio::select! {
            _ = tokio::time::sleep(queue.config.delay) => {}
            _ = queue.batch_ready.notified() => {}
            _ = queue.stop.notified() => stopping = true,
        }
        while let Some(batch) = queue.take_batch() {
            let full = batch.spans == queue.config.max_batch;
            let spans = batch.spans;
            let request = envelope.wrap(batch.bytes);
            let failure = match tokio::time::timeout(queue.config.export_timeout, exporter.export(request)).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("no answer within {:?}", queue.config.export_timeout)),
            };
            match failure {
                None => {
                    metrics::counter!("mosaic_trace_spans_exported_total").increment(spans as u64);
                    if std::mem::replace(&mut failing, false) {
                        tracing::info!("trace export works again");
                    }
                }
                Some(error) => {
                    metrics::counter!("mosaic_trace_export_failures_total").increment(1);
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(%error, spans, "trace export failed; spans of this batch are lost");
                    }
                }
            }
            // A partial batch was all there was; wait for the next tick.
            if !full && !stopping {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::otlp::encode::SpanKind;
    use crate::telemetry::otlp::export::ExportError;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    /// Decodes every request and keeps the span count of each.
    #[derive(Debug, Default, Clone)]
    struct Collect(Arc<Mutex<Vec<usize>>>);

    impl Export for Collect {
        async fn export(&self, request: bytes::Bytes) -> Result<(), ExportError> {
            let decoded = ExportTraceServiceRequest::decode(request).expect("valid OTLP");
            let spans = decoded.resource_spans[0].scope_spans[0].spans.len();
            self.0.lock().expect("not poisoned").push(spans);
            Ok(())
        }
    }

    fn push(queue: &SpanQueue, id: u64) {
        queue.push(
            TraceId(1),
            &SpanRecord {
                name: &["s"],
                kind: SpanKind::Internal,
                span_id: id,
                parent_span_id: 0,
                parent_is_remote: false,
                start: std::time::SystemTime::now(),
                end: std::time::SystemTime::now(),
                attributes: &[],
                error: None,
                links: &[],
            },
        );
    }

    fn config() -> QueueConfig {
        QueueConfig {
            max_queue: 10,
            max_batch: 4,
            delay: Duration::from_secs(3600),
            export_timeout: Duration::from_secs(5),
        }
    }

    fn envelope() -> Envelope {
        Envelope::new(&[("service.name".into(), "t".into())], "mosaic", "0")
    }

    #[tokio::test]
    async fn full_batches_go_at_once_and_the_rest_at_shutdown() {
        let exported = Collect::default();
        let queue = SpanQueue::start(exported.clone(), envelope(), config());
        for i in 1..=9 {
            push(&queue, i);
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
        let queue = SpanQueue::start(exported.clone(), envelope(), config());
        // The export task has not run yet (single-threaded test runtime): 10 fit, 5 are dropped.
        for i in 1..=15 {
            push(&queue, i);
        }
        assert_eq!(queue.dropped.load(Ordering::Relaxed), 5);
        queue.shutdown().await;
        assert_eq!(exported.0.lock().expect("not poisoned").iter().sum::<usize>(), 10);
    }

    #[tokio::test]
    async fn a_new_batch_has_room_for_the_head_and_the_size_of_the_last_full_one() {
        let queue = SpanQueue::start(Collect::default(), envelope(), config());
        for i in 1..=5 {
            push(&queue, i);
        }
        {
            let pending = queue.pending.lock().expect("not poisoned");
            let full = &pending.full[0];
            assert_eq!(full.spans, 4);
            assert!(
                full.bytes[..queue.head_room].iter().all(|b| *b == 0),
                "the head's room is left free"
            );
            assert!(pending.full_bytes > full.bytes.len());
            assert!(
                pending.current.bytes.capacity() >= pending.full_bytes,
                "sized from the last full batch"
            );
        }
        queue.shutdown().await;
    }
}
