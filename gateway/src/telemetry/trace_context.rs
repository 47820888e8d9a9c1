//! W3C trace context: every request gets a trace id (the client's `traceparent`, or a new one) and
//! a request id (the client's `x-request-id`, or a new one). Both are on every log line of the
//! request, the request id is returned in a response header, and the trace is propagated to every
//! backend call as `traceparent`.

use rand::Rng;

/// The trace and request ids of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits: the gateway's span, parent of every backend call.
    pub span_id: String,
    pub sampled: bool,
    pub request_id: String,
    /// The client's `tracestate`, passed on as it is.
    pub tracestate: Option<String>,
}

tokio::task_local! {
    /// The trace context of the request being served by this task.
    static CURRENT: std::sync::Arc<TraceContext>;
}

/// Runs `f` with `ctx` as the current request's trace context.
pub async fn scope<F: std::future::Future>(ctx: std::sync::Arc<TraceContext>, f: F) -> F::Output {
    CURRENT.scope(ctx, f).await
}

/// The current request's trace context, if any.
pub fn current() -> Option<std::sync::Arc<TraceContext>> {
    CURRENT.try_with(|c| c.clone()).ok()
}

/// The headers a backend call carries to continue the trace.
#[derive(Clone, Debug)]
pub struct TraceHeaders {
    pub traceparent: http::HeaderValue,
    pub tracestate: Option<http::HeaderValue>,
}

impl TraceHeaders {
    pub fn of(ctx: &TraceContext) -> Option<std::sync::Arc<Self>> {
        Some(std::sync::Arc::new(Self {
            traceparent: http::HeaderValue::from_str(&ctx.traceparent()).ok()?,
            tracestate: ctx
                .tracestate
                .as_deref()
                .and_then(|t| http::HeaderValue::from_str(t).ok()),
        }))
    }
}

/// `bytes` random bytes in lower-case hex (8 or 16 bytes).
fn hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    if bytes <= 8 {
        format!("{:016x}", rng.random::<u64>() | 1)
    } else {
        format!("{:032x}", rng.random::<u128>() | 1)
    }
}

fn valid_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        && s.bytes().any(|b| b != b'0')
}

impl TraceContext {
    /// From the client's headers, or new ids.
    pub fn from_headers(headers: &http::HeaderMap) -> Self {
        let parent = headers.get("traceparent").and_then(|v| v.to_str().ok()).and_then(|v| {
            let parts: Vec<&str> = v.trim().split('-').collect();
            match parts.as_slice() {
                [version, trace, span, flags]
                    if version.len() == 2
                        && *version != "ff"
                        && valid_hex(trace, 32)
                        && valid_hex(span, 16)
                        && flags.len() == 2 =>
                {
                    let sampled = u8::from_str_radix(flags, 16).map(|f| f & 1 == 1).unwrap_or(false);
                    Some((trace.to_string(), sampled))
                }
                _ => None,
            }
        });
        let request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_string)
            .unwrap_or_else(|| hex(16));
        let (trace_id, sampled) = parent.unwrap_or_else(|| (hex(16), true));
        Self {
            trace_id,
            span_id: hex(8),
            sampled,
            request_id,
            tracestate: headers
                .get("tracestate")
                .and_then(|v| v.to_str().ok())
                .filter(|v| v.len() <= 512)
                .map(str::to_string),
        }
    }

    /// The `traceparent` a backend call carries (its parent is the gateway's span).
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{}",
            self.trace_id,
            self.span_id,
            if self.sampled { "01" } else { "00" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_client_traceparent_is_continued() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "traceparent",
            http::HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        h.insert("x-request-id", http::HeaderValue::from_static("req-1"));
        let t = TraceContext::from_headers(&h);
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.request_id, "req-1");
        assert!(t.traceparent().starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert_ne!(t.span_id, "00f067aa0ba902b7", "the gateway's own span");
    }

    #[test]
    fn invalid_or_missing_headers_give_new_ids() {
        let mut h = http::HeaderMap::new();
        h.insert("traceparent", http::HeaderValue::from_static("00-0000-zz-01"));
        let t = TraceContext::from_headers(&h);
        assert_eq!(t.trace_id.len(), 32);
        assert_eq!(t.request_id.len(), 32);
    }
}
