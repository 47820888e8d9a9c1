//! What the gateway tells operators: logs ([`logging`]), Prometheus metrics ([`metrics`]) and
//! traces ([`tracing`], [`trace_context`]). Nothing here changes a response.

pub mod logging;
pub mod metrics;
pub mod trace_context;
pub mod tracing;
