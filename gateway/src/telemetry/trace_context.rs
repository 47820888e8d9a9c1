//! W3C trace context: every request gets a trace id (the client's `traceparent`, or a new one) and
//! a request id (the client's `x-request-id`, or a new one). Both are on every log line of the
//! request, the request id is returned in a response header, and the trace is propagated to every
//! backend call as `traceparent`.
//!
//! These ids are also the ids of the exported spans ([`super::traces`]), so a trace id found in a
//! log line finds the trace, and a backend's parent span id is the gateway span that called it.

use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use rand::Rng;

use super::traces::Tracer;

/// The trace and request ids of one request (or of one operation inside it).
#[derive(Clone)]
pub struct TraceContext {
    pub trace_id: TraceId,
    /// The current gateway span: the parent of what this request does next.
    pub span_id: u64,
    /// The client's span, when it sent a `traceparent`.
    pub parent_span_id: Option<u64>,
    pub sampled: bool,
    pub request_id: String,
    /// The client's `tracestate`, passed on as it is.
    pub tracestate: Option<String>,
    /// Where this request's spans go: set when traces are exported and this trace is sampled.
    pub tracer: Option<Arc<Tracer>>,
    /// Calls answered by a fresh cache entry: they get no span of their own (nothing happened on
    /// the wire), they are counted on the operation's span (`mosaic.cache.hits`).
    pub cache_hits: Arc<AtomicU32>,
    /// Set when this operation joined an identical one in flight (another request's): that
    /// operation's trace and span, linked from this one's span.
    pub coalesced_with: std::sync::OnceLock<(TraceId, u64)>,
    /// The operation being served, once it is known: named on the log lines about its backend
    /// calls (a field of each line rather than of the request's log span, whose fields cost a
    /// JSON re-encoding per change).
    pub operation: std::sync::OnceLock<OperationLabel>,
}

/// What log lines say of an operation: never its variables.
#[derive(Clone, Debug)]
pub struct OperationLabel {
    pub name: Option<Arc<str>>,
    /// `query`, `mutation` or `subscription`.
    pub kind: &'static str,
    /// SHA-256 of the document (hex), as in traces and persisted queries.
    pub document: Arc<str>,
}

/// The operation the current request serves, if known yet.
pub fn operation() -> Option<OperationLabel> {
    CURRENT.try_with(|c| c.operation.get().cloned()).ok().flatten()
}

impl std::fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceContext")
            .field("trace_id", &self.trace_id)
            .field("span_id", &SpanIdHex(self.span_id))
            .field("sampled", &self.sampled)
            .field("request_id", &self.request_id)
            .field("recording", &self.tracer.is_some())
            .finish()
    }
}

/// A 128-bit trace id, shown as 32 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TraceId(pub u128);

impl std::fmt::Display for TraceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl std::fmt::Debug for TraceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// A 64-bit span id, shown as 16 lower-case hex digits.
pub struct SpanIdHex(pub u64);

impl std::fmt::Debug for SpanIdHex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

tokio::task_local! {
    /// The trace context of the request being served by this task.
    static CURRENT: Arc<TraceContext>;
}

/// Runs `f` with `ctx` as the current request's trace context.
pub async fn scope<F: std::future::Future>(ctx: Arc<TraceContext>, f: F) -> F::Output {
    CURRENT.scope(ctx, f).await
}

/// The current request's trace context, if any.
pub fn current() -> Option<Arc<TraceContext>> {
    CURRENT.try_with(|c| c.clone()).ok()
}

/// A new non-zero span id.
pub fn new_span_id() -> u64 {
    rand::rng().random::<u64>() | 1
}

fn new_trace_id() -> u128 {
    rand::rng().random::<u128>() | 1
}

/// `v` as 32 lower-case hex digits: a new request id, made for every request that brings none
/// (written by hand: `format!("{:032x}")` took 0.7 % of the gateway's CPU on a cached query).
fn hex32(v: u128) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    (0..32)
        .rev()
        .map(|i| char::from(DIGITS[((v >> (i * 4)) & 0xf) as usize]))
        .collect()
}

/// `s` as lower-case hex of exactly `len` digits, not all zero (W3C).
fn parse_hex(s: &str, len: usize) -> Option<u128> {
    let valid = s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    valid
        .then(|| u128::from_str_radix(s, 16).ok())
        .flatten()
        .filter(|v| *v != 0)
}

/// The client's `traceparent`: (trace id, its span id, sampled).
fn parse_traceparent(v: &str) -> Option<(u128, u64, bool)> {
    let mut parts = v.trim().split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    // Version 00 has exactly four parts; later versions may append more (W3C: parse the first four).
    if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) || flags.len() != 2 {
        return None;
    }
    let trace = parse_hex(trace, 32)?;
    let span = parse_hex(span, 16)? as u64;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some((trace, span, flags & 1 == 1))
}

impl TraceContext {
    /// From the client's headers, or new ids. With a `tracer`, the trace is recorded when the
    /// client sampled it or, for a new trace, by the tracer's sampler.
    pub fn from_headers(headers: &http::HeaderMap, tracer: Option<&Arc<Tracer>>) -> Self {
        let parent = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_traceparent);
        let request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_string)
            .unwrap_or_else(|| hex32(new_trace_id()));
        let trace_id = parent.map_or_else(new_trace_id, |p| p.0);
        let sampled = match tracer {
            Some(t) => t.sampler().sample(parent.map(|p| p.2), trace_id),
            // Not recording here: pass the client's decision on, or let backends decide.
            None => parent.is_none_or(|p| p.2),
        };
        Self {
            trace_id: TraceId(trace_id),
            span_id: new_span_id(),
            parent_span_id: parent.map(|p| p.1),
            sampled,
            request_id,
            tracestate: headers
                .get("tracestate")
                .and_then(|v| v.to_str().ok())
                .filter(|v| v.len() <= 512)
                .map(str::to_string),
            tracer: tracer.filter(|_| sampled).cloned(),
            cache_hits: Arc::default(),
            coalesced_with: std::sync::OnceLock::new(),
            operation: std::sync::OnceLock::new(),
        }
    }

    /// The context of a new span under this one (same trace, this span as parent).
    pub fn child(&self) -> Self {
        Self {
            parent_span_id: Some(self.span_id),
            span_id: new_span_id(),
            coalesced_with: std::sync::OnceLock::new(),
            operation: std::sync::OnceLock::new(),
            ..self.clone()
        }
    }

    /// Counts `n` calls answered by fresh cache entries on the operation's span, when this trace
    /// is recorded.
    pub fn count_cache_hits(&self, n: u32) {
        if self.tracer.is_some() {
            self.cache_hits.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// What a backend call made in this context carries.
    pub fn call_trace(&self) -> Arc<CallTrace> {
        Arc::new(CallTrace {
            trace_id: self.trace_id,
            parent_span_id: self.span_id,
            sampled: self.sampled,
            tracestate: self
                .tracestate
                .as_deref()
                .and_then(|t| http::HeaderValue::from_str(t).ok()),
            tracer: self.tracer.clone(),
            cache_hits: self.cache_hits.clone(),
        })
    }
}

/// The trace a backend call continues: its parent span and where its own spans go.
#[derive(Clone)]
pub struct CallTrace {
    pub trace_id: TraceId,
    /// The gateway span the call belongs to.
    pub parent_span_id: u64,
    pub sampled: bool,
    pub tracestate: Option<http::HeaderValue>,
    /// Set when the call's spans are recorded.
    pub tracer: Option<Arc<Tracer>>,
    /// The request's count of calls answered from the cache (see [`TraceContext::cache_hits`]).
    pub cache_hits: Arc<AtomicU32>,
}

impl std::fmt::Debug for CallTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallTrace")
            .field("trace_id", &self.trace_id)
            .field("parent_span_id", &SpanIdHex(self.parent_span_id))
            .field("sampled", &self.sampled)
            .finish()
    }
}

impl CallTrace {
    /// The `traceparent` naming `span_id` as the parent of what the backend does.
    pub fn traceparent(&self, span_id: u64) -> http::HeaderValue {
        let text = format!(
            "00-{}-{:016x}-{}",
            self.trace_id,
            span_id,
            if self.sampled { "01" } else { "00" }
        );
        // Hex digits and dashes only: always a valid header value.
        http::HeaderValue::from_str(&text).unwrap_or_else(|_| http::HeaderValue::from_static(""))
    }

    /// The same trace, under the span `span_id`.
    pub fn under(&self, span_id: u64) -> Arc<Self> {
        Arc::new(Self {
            parent_span_id: span_id,
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_request_ids_are_32_hex_digits_as_format_writes_them() {
        for v in [1u128, 0xabc, u128::MAX, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210] {
            assert_eq!(hex32(v), format!("{v:032x}"));
        }
    }

    #[test]
    fn a_valid_client_traceparent_is_continued() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "traceparent",
            http::HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        h.insert("x-request-id", http::HeaderValue::from_static("req-1"));
        let t = TraceContext::from_headers(&h, None);
        assert_eq!(t.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.request_id, "req-1");
        assert_eq!(t.parent_span_id, Some(0x00f067aa0ba902b7));
        assert!(t.sampled);
        let sent = t.call_trace().traceparent(t.span_id);
        let sent = sent.to_str().expect("ascii");
        assert!(sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{sent}");
        assert!(sent.ends_with("-01"), "{sent}");
        assert!(!sent.contains("00f067aa0ba902b7"), "the gateway's own span: {sent}");
    }

    #[test]
    fn an_unsampled_client_trace_stays_unsampled() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "traceparent",
            http::HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
        );
        let t = TraceContext::from_headers(&h, None);
        assert!(!t.sampled);
        assert!(t.call_trace().traceparent(1).to_str().is_ok_and(|v| v.ends_with("-00")));
    }

    #[test]
    fn invalid_or_missing_headers_give_new_ids() {
        for bad in [
            "00-0000-zz-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            let mut h = http::HeaderMap::new();
            h.insert("traceparent", http::HeaderValue::from_static(bad));
            let t = TraceContext::from_headers(&h, None);
            assert_ne!(t.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736", "{bad}");
            assert_eq!(t.parent_span_id, None, "{bad}");
            assert_eq!(t.request_id.len(), 32);
        }
    }

    #[test]
    fn a_child_span_keeps_the_trace_and_points_at_its_parent() {
        let t = TraceContext::from_headers(&http::HeaderMap::new(), None);
        let c = t.child();
        assert_eq!(c.trace_id, t.trace_id);
        assert_eq!(c.parent_span_id, Some(t.span_id));
        assert_ne!(c.span_id, t.span_id);
    }
}
