//! What the gateway tells operators: logs ([`logging`]), Prometheus metrics ([`metrics`]) and
//! OpenTelemetry traces ([`traces`], [`trace_context`]). Nothing here changes a response.

pub mod logging;
pub mod metrics;
pub mod otlp;
pub mod span_queue;
pub mod trace_context;
pub mod traces;
