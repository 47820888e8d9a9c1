//! The span of one operation (`graphql.operation.type`, `.name`, the document's hash — never the
//! document or its variables), and the operation noted in the request's trace context for the log
//! lines about its backend calls.

use super::prepare::{Prepared, Route};
use super::Outcome;

/// Records the span of one operation: `graphql.operation.type`, `.name` and the document's hash,
/// never the document or its variables.
pub(super) fn record_operation_span(
    op: &crate::telemetry::trace_context::TraceContext,
    start: std::time::SystemTime,
    requested: Option<&str>,
    out: &Outcome,
) {
    use crate::telemetry::otlp::encode::{Attribute, SpanKind, SpanRecord};
    let Some(tracer) = &op.tracer else { return };
    let (executed, kind, codes, prepared) = out;
    let name = prepared.as_ref().and_then(|p| p.name.as_deref()).or(requested);
    let hits = op.cache_hits.load(std::sync::atomic::Ordering::Relaxed);
    let error_codes = (!codes.is_empty()).then(|| {
        let mut unique: Vec<&str> = codes.iter().map(String::as_str).collect();
        unique.sort_unstable();
        unique.dedup();
        unique.join(",")
    });
    let executor = prepared.as_ref().map(|p| match p.route {
        Route::Compiled { .. } => "compiled",
        _ => "dynamic",
    });
    let links: &[_] = match op.coalesced_with.get() {
        Some(leader) => std::slice::from_ref(leader),
        None => &[],
    };
    let span_name: &[&str] = match name {
        Some(n) => &[kind, " ", n],
        None => &[kind],
    };
    tracer.record(
        op.trace_id,
        &SpanRecord {
            name: span_name,
            kind: SpanKind::Internal,
            span_id: op.span_id,
            parent_span_id: op.parent_span_id.unwrap_or(0),
            parent_is_remote: false,
            start,
            end: std::time::SystemTime::now(),
            attributes: &[
                Some(Attribute::str("graphql.operation.type", kind)),
                name.map(|n| Attribute::str("graphql.operation.name", n)),
                prepared
                    .as_ref()
                    .map(|p| Attribute::str("graphql.document.hash", &p.hash)),
                executor.map(|e| Attribute::str("mosaic.executor", e)),
                (hits > 0).then(|| Attribute::i64("mosaic.cache.hits", i64::from(hits))),
                // Its backend calls are in the linked operation's trace.
                op.coalesced_with
                    .get()
                    .map(|_| Attribute::bool("mosaic.coalesced", true)),
                error_codes.as_deref().map(|c| Attribute::str("mosaic.error_codes", c)),
            ],
            error: executed.request_error.then_some("request error"),
            links,
        },
    );
}

/// Notes the operation in the request's trace context: the log lines about its backend calls
/// say which operation (name, type, document hash) they belong to. Never the variables.
pub(super) fn note_operation(prepared: &Prepared, kind: &'static str) {
    if let Some(ctx) = crate::telemetry::trace_context::current() {
        let _ = ctx.operation.set(crate::telemetry::trace_context::OperationLabel {
            name: prepared.name.clone(),
            kind,
            document: prepared.hash.clone(),
        });
    }
}
