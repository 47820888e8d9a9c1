//! OpenTelemetry traces (off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set): placeholder until the
//! OTLP exporter lands; trace ids are still carried (W3C `traceparent`) by `trace_context`.

use tracing_subscriber::registry::LookupSpan;

/// Keeps the exporter alive; dropping it flushes spans.
pub struct TracingGuard;

/// The OpenTelemetry layer, when tracing is configured.
pub fn layer<S>() -> Option<(Box<dyn tracing_subscriber::Layer<S> + Send + Sync>, TracingGuard)>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    None
}
