//! Building a backend HTTP request from a binding: URL, query, headers and body from templates.
//!
//! Pure and synchronous: given the binding, the argument values, the parent object, the client's
//! headers and (for batches) the keys, it produces a [`BackendRequest`]. Sending it is `http`'s job.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::plan::template::{push_scalar_text, Expr, Part, RenderContext, Template};
use crate::plan::{BackendPlan, BatchStyle, Binding, BindingId, BodyTemplate};

/// One call to a backend, ready to send.
#[derive(Debug, Clone)]
pub struct BackendRequest {
    pub binding: BindingId,
    pub backend: crate::plan::BackendId,
    pub method: http::Method,
    /// Path and query, relative to the backend's base URL.
    pub target: String,
    /// The base URL of the instance chosen by the balancer (`http://host:port/prefix`).
    pub base: Option<std::sync::Arc<str>>,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub body: Option<Bytes>,
    /// Identical concurrent calls may share one backend call.
    pub coalesce: bool,
    /// A read: identical calls in one request are made once (a GET, or a batch lookup even when
    /// it is a POST with the keys in its body). Writes are never deduplicated.
    pub read: bool,
    /// The call may be retried (an idempotent method, or a field declaring it safe).
    pub retryable: bool,
    /// A per-field timeout overriding the backend's.
    pub timeout: Option<std::time::Duration>,
    /// The GraphQL request's deadline, shared by all its calls.
    pub deadline: Option<tokio::time::Instant>,
    /// How the answer may be cached (`None`: never).
    pub cache: Option<std::sync::Arc<crate::plan::resilience::CachePolicy>>,
    /// Who is asking, for private cache entries.
    pub principal: Option<std::sync::Arc<str>>,
    /// The trace to continue (`traceparent`); not part of the call's identity.
    pub trace: Option<std::sync::Arc<crate::telemetry::trace_context::CallTrace>>,
    /// What the layers noticed about the call (cache, coalescing, attempts), for its metrics and span.
    pub notes: Option<std::sync::Arc<super::observe::CallNotes>>,
    /// How many client requests wait for this call (`None`: one). Operation coalescing and
    /// single-flight add the requests they join onto it; the breaker counts its outcome that
    /// many times.
    pub waiters: Option<std::sync::Arc<std::sync::atomic::AtomicU32>>,
    /// The call's key, computed once (the memo, the single-flight and the cache all ask for it).
    key: std::sync::OnceLock<CallKey>,
}

impl BackendRequest {
    /// How many client requests wait for this call now.
    pub fn waiting(&self) -> u32 {
        self.waiters
            .as_ref()
            .map_or(1, |w| w.load(std::sync::atomic::Ordering::Relaxed).max(1))
    }

    /// What makes two calls identical (backend, method, URL, headers and body).
    pub fn call_key(&self) -> CallKey {
        self.key.get_or_init(|| self.compute_key()).clone()
    }

    /// Method, target, headers and body: `"GET /path?query\nheader:value..."`.
    pub fn identity(&self) -> &str {
        let key = &self.key.get_or_init(|| self.compute_key()).0;
        key.split_once(' ').map_or(&**key, |(_, rest)| rest)
    }

    fn compute_key(&self) -> CallKey {
        let mut key = String::with_capacity(self.target.len() + 24);
        key.push_str(&self.backend.0.to_string());
        key.push(' ');
        key.push_str(self.method.as_str());
        key.push(' ');
        key.push_str(&self.target);
        for (k, v) in &self.headers {
            key.push('\n');
            key.push_str(k.as_str());
            key.push(':');
            key.push_str(v.to_str().unwrap_or_default());
        }
        if let Some(b) = &self.body {
            key.push_str("\n\n");
            key.push_str(&String::from_utf8_lossy(b));
        }
        CallKey(key.into())
    }
}

impl BackendRequest {
    /// A bare GET, for unit tests of the layers.
    #[cfg(test)]
    pub fn for_test(target: &str) -> Self {
        Self {
            binding: BindingId(0),
            backend: crate::plan::BackendId(0),
            method: http::Method::GET,
            target: target.into(),
            base: None,
            headers: vec![],
            body: None,
            coalesce: true,
            read: true,
            retryable: true,
            timeout: None,
            deadline: None,
            cache: None,
            principal: None,
            trace: None,
            notes: None,
            waiters: None,
            key: std::sync::OnceLock::new(),
        }
    }
}

/// Identity of a call for deduplication and coalescing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CallKey(pub std::sync::Arc<str>);

/// Why a request could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A path expression had no value: the call is skipped and the field is null.
    #[error("no value for {0} in the request path")]
    MissingPathValue(String),
    #[error("header {0} would not be a valid HTTP header value")]
    InvalidHeader(String),
    /// The arguments make the path and query longer than the backend's `max_url_bytes`.
    #[error("the path and query would be {bytes} bytes long, over max_url_bytes ({max})")]
    UrlTooLong { bytes: usize, max: usize },
    /// A value cannot be converted as its template says (`{{args.id | int}}` with `"abc"`).
    #[error(transparent)]
    Conversion(#[from] crate::plan::template::ConversionError),
}

impl From<RenderError> for super::error::CallError {
    fn from(e: RenderError) -> Self {
        match e {
            RenderError::UrlTooLong { .. } => Self::Input(e.to_string()),
            RenderError::Conversion(_) => Self::Unconvertible(e.to_string()),
            _ => Self::Request(e.to_string()),
        }
    }
}

/// Renders a binding into a request. `keys` are the batch keys when the binding is batched.
pub fn render(
    binding: &Binding,
    backend: &BackendPlan,
    ctx: &RenderContext<'_>,
    keys: Option<&[&Value]>,
) -> Result<BackendRequest, RenderError> {
    let mut url = String::with_capacity(64);
    render_path(&binding.path, ctx, &mut url)?;

    let mut first = true;
    for (name, t) in &binding.query {
        match t.as_single_expr() {
            Some(e) => match e.eval_checked(ctx)?.as_deref() {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => {
                    for item in items {
                        push_query(&mut url, &mut first, name, &scalar_text(item));
                    }
                }
                Some(v) => push_query(&mut url, &mut first, name, &scalar_text(v)),
            },
            None => push_query(&mut url, &mut first, name, &render_text(t, ctx)?),
        }
    }
    let mut body = match &binding.body {
        Some(b) => Some(render_body(b, ctx)?.unwrap_or(Value::Null)),
        None => None,
    };
    if let (Some(rule), Some(keys)) = (&binding.batch, keys) {
        match rule.style {
            BatchStyle::Repeat => {
                for k in keys {
                    push_query(&mut url, &mut first, &rule.param, &scalar_text(k));
                }
            }
            BatchStyle::Comma => {
                let mut joined = String::with_capacity(keys.len() * 8);
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        joined.push(',');
                    }
                    push_scalar_text(&mut joined, k);
                }
                push_query(&mut url, &mut first, &rule.param, &joined);
            }
            BatchStyle::JsonBody => {
                let list = Value::Array(keys.iter().map(|k| (*k).clone()).collect());
                body = Some(match (body, rule.param.is_empty()) {
                    (_, true) => list,
                    (Some(Value::Object(mut m)), false) => {
                        m.insert(rule.param.clone(), list);
                        Value::Object(m)
                    }
                    (_, false) => {
                        let mut m = Map::new();
                        m.insert(rule.param.clone(), list);
                        Value::Object(m)
                    }
                });
            }
        }
    }

    if url.len() > backend.max_url_bytes {
        return Err(RenderError::UrlTooLong {
            bytes: url.len(),
            max: backend.max_url_bytes,
        });
    }

    let mut headers = backend.headers.clone();
    for name in &backend.forward_headers {
        for value in ctx.headers.get_all(name) {
            headers.push((name.clone(), value.clone()));
        }
    }
    for (name, t) in &binding.headers {
        let text = match t.as_single_expr() {
            Some(e) => match e.eval_checked(ctx)?.as_deref() {
                None | Some(Value::Null) => continue,
                Some(v) => scalar_text(v),
            },
            None => render_text(t, ctx)?,
        };
        let value = http::HeaderValue::from_str(&text).map_err(|_| RenderError::InvalidHeader(name.to_string()))?;
        headers.push((name.clone(), value));
    }
    let body = body.map(|b| Bytes::from(serde_json::to_vec(&b).unwrap_or_default()));
    if body.is_some() {
        headers.push((
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        ));
    }
    let idempotent = matches!(binding.method, http::Method::GET | http::Method::HEAD);
    Ok(BackendRequest {
        binding: binding.id,
        backend: backend.id,
        method: binding.method.clone(),
        target: url,
        base: None,
        headers,
        body,
        coalesce: binding.singleflight,
        read: idempotent || binding.batch.is_some(),
        retryable: idempotent || binding.retryable,
        timeout: binding.timeout,
        deadline: None,
        cache: binding.cache.clone(),
        principal: None,
        trace: None,
        notes: None,
        waiters: None,
        key: std::sync::OnceLock::new(),
    })
}

fn render_path(t: &Template, ctx: &RenderContext<'_>, out: &mut String) -> Result<(), RenderError> {
    for part in &t.parts {
        match part {
            Part::Lit(s) => out.push_str(s),
            Part::Expr(e) => match e.eval_checked(ctx)?.as_deref() {
                None | Some(Value::Null) => return Err(RenderError::MissingPathValue(describe(e))),
                Some(v) => push_encoded(out, &scalar_text(v), PATH_SEGMENT),
            },
        }
    }
    Ok(())
}

fn render_text(t: &Template, ctx: &RenderContext<'_>) -> Result<String, RenderError> {
    let mut out = String::new();
    for part in &t.parts {
        match part {
            Part::Lit(s) => out.push_str(s),
            Part::Expr(e) => {
                if let Some(v) = e.eval_checked(ctx)? {
                    push_scalar_text(&mut out, &v);
                }
            }
        }
    }
    Ok(out)
}

/// A body value; `None` when it is a single expression without a value (an argument not given),
/// which an object leaves out (an explicit `null` stays `null`).
fn render_body(b: &BodyTemplate, ctx: &RenderContext<'_>) -> Result<Option<Value>, RenderError> {
    Ok(Some(match b {
        BodyTemplate::Const(v) => v.clone(),
        BodyTemplate::Expr(e) => match e.eval_checked(ctx)? {
            Some(v) => v.into_owned(),
            None => return Ok(None),
        },
        BodyTemplate::Text(t) => Value::String(render_text(t, ctx)?),
        BodyTemplate::Object(fields) => {
            let mut m = Map::with_capacity(fields.len());
            for (k, v) in fields {
                if let Some(v) = render_body(v, ctx)? {
                    m.insert(k.clone(), v);
                }
            }
            Value::Object(m)
        }
        BodyTemplate::List(items) => {
            let mut out = Vec::with_capacity(items.len());
            for v in items {
                out.push(render_body(v, ctx)?.unwrap_or(Value::Null));
            }
            Value::Array(out)
        }
    }))
}

fn describe(e: &Expr) -> String {
    e.describe()
}

/// Text form of a JSON scalar for URLs (strings unquoted).
pub fn scalar_text(v: &Value) -> String {
    let mut s = String::new();
    push_scalar_text(&mut s, v);
    s
}

fn push_query(url: &mut String, first: &mut bool, name: &str, value: &str) {
    url.push(if *first { '?' } else { '&' });
    *first = false;
    push_encoded(url, name, QUERY_COMPONENT);
    url.push('=');
    push_encoded(url, value, QUERY_COMPONENT);
}

/// Bytes kept as they are in a path segment (RFC 3986 unreserved plus a few sub-delims).
const PATH_SEGMENT: &[u8] = b"-._~!$&'()*+,;=:@";
/// Bytes kept as they are in a query name or value.
const QUERY_COMPONENT: &[u8] = b"-._~!$'()*,;:@/";

// Percent-encoding by hand: a dozen lines, against pulling a crate for one function.
fn push_encoded(out: &mut String, text: &str, keep: &[u8]) {
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(HEX[(b >> 4) as usize]));
            out.push(char::from(HEX[(b & 15) as usize]));
        }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{BackendId, BatchRule, JsonPath};
    use serde_json::json;

    fn backend() -> BackendPlan {
        BackendPlan::with_defaults(BackendId(0), "b", "http://h:1")
    }

    fn binding(path: &str, query: &[(&str, &str)]) -> Binding {
        Binding {
            id: BindingId(0),
            backend: BackendId(0),
            method: http::Method::GET,
            path: Template::parse(path).expect("valid"),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), Template::parse(v).expect("valid")))
                .collect(),
            headers: vec![],
            body: None,
            select: crate::plan::mapping::Mapping::from_path(JsonPath::default()),
            value: None,
            batch: None,
            fanout: None,
            errors: vec![],
            singleflight: true,
            retryable: false,
            timeout: None,
            cache: None,
            invalidates: vec![],
            owner: "Query.x".into(),
        }
    }

    fn ctx<'a>(args: &'a Value, headers: &'a http::HeaderMap) -> RenderContext<'a> {
        RenderContext {
            args: args.as_object().expect("object"),
            parent: None,
            headers,
            claims: None,
            key: None,
        }
    }

    #[test]
    fn path_values_are_percent_encoded_and_null_query_params_omitted() {
        let args = json!({"id": "a b/c", "district": null, "tier": "GOLD"});
        let h = http::HeaderMap::new();
        let b = binding(
            "/c/{{args.id}}",
            &[("district", "{{args.district}}"), ("tier", "{{args.tier}}")],
        );
        let r = render(&b, &backend(), &ctx(&args, &h), None).expect("renders");
        assert_eq!(r.target, "/c/a%20b%2Fc?tier=GOLD");
    }

    #[test]
    fn list_arguments_repeat_the_query_parameter() {
        let args = json!({"ids": [1, 2]});
        let h = http::HeaderMap::new();
        let b = binding("/x", &[("id", "{{args.ids}}")]);
        let r = render(&b, &backend(), &ctx(&args, &h), None).expect("renders");
        assert_eq!(r.target, "/x?id=1&id=2");
    }

    #[test]
    fn missing_path_value_skips_the_call() {
        let args = json!({});
        let h = http::HeaderMap::new();
        let b = binding("/c/{{args.id}}", &[]);
        assert!(matches!(
            render(&b, &backend(), &ctx(&args, &h), None),
            Err(RenderError::MissingPathValue(_))
        ));
    }

    #[test]
    fn arguments_making_the_url_too_long_are_the_clients_error() {
        let h = http::HeaderMap::new();
        let b = binding("/c/{{args.id}}", &[("q", "{{args.q}}")]);
        let mut small = backend();
        small.max_url_bytes = 300;
        let fits = json!({"id": "1", "q": "y".repeat(280)});
        assert!(render(&b, &small, &ctx(&fits, &h), None).is_ok());
        let long = json!({"id": "1", "q": "y".repeat(300)});
        let err = render(&b, &small, &ctx(&long, &h), None).expect_err("too long");
        assert_eq!(err, RenderError::UrlTooLong { bytes: 307, max: 300 });
        let call = super::super::error::CallError::from(err);
        assert_eq!(call.public_code(), "BAD_USER_INPUT");
        assert!(!call.public_message("c").contains("yyy"));
    }

    #[test]
    fn batch_keys_are_written_in_each_style() {
        let args = json!({});
        let h = http::HeaderMap::new();
        let (c1, c2) = (json!("C1"), json!("C2"));
        let keys = [&c1, &c2];
        for (style, url, body) in [
            (BatchStyle::Repeat, "/x?id=C1&id=C2", None),
            (BatchStyle::Comma, "/x?id=C1,C2", None),
            (BatchStyle::JsonBody, "/x", Some(r#"{"id":["C1","C2"]}"#)),
        ] {
            let mut b = binding("/x", &[]);
            b.batch = Some(BatchRule {
                parent_key: crate::plan::mapping::Mapping::from_path(JsonPath::key("id")),
                from_field: "id".into(),
                item_key: crate::plan::mapping::Mapping::from_path(JsonPath::key("id")),
                key_field: "id".into(),
                param: "id".into(),
                style,
                max_size: 10,
                many: false,
            });
            let r = render(&b, &backend(), &ctx(&args, &h), Some(&keys)).expect("renders");
            assert_eq!(r.target, url);
            assert_eq!(r.body.as_deref(), body.map(str::as_bytes));
        }
    }
}
