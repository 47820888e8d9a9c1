//! Bindings: a field's backend call as declared by `@http`, compiled and validated.
//!
//! A binding says which backend, which method, how the path, query, headers and body are built
//! from templates, which part of the answer is the field's value, and how calls for many parents
//! are batched. Building the HTTP request from a binding is `backend::request`'s job.

use std::time::Duration;

use serde_json::Value;

use super::mapping::Mapping;
use super::resilience::{BreakerSettings, BulkheadSettings, OutlierSettings, RetrySettings, WindowKind};
use super::template::{Expr, Template};

/// Index of a binding in [`Plan::bindings`](super::Plan::bindings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BindingId(pub usize);

/// Index of a backend in [`Plan::backends`](super::Plan::backends).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BackendId(pub usize);

/// One REST backend, validated.
#[derive(Debug, Clone)]
pub struct BackendPlan {
    pub id: BackendId,
    /// The name used in bindings and in errors shown to clients.
    pub name: String,
    /// Base URLs of the instances, without a trailing slash (at least one).
    pub instances: Vec<String>,
    /// Re-resolve the (single) URL's host every `Duration`, one instance per address.
    pub dns_refresh: Option<Duration>,
    /// Path of the health endpoint probed while the breaker is open.
    pub health_path: String,
    /// Readiness (`/readyz`) requires this backend to be available.
    pub critical: bool,
    pub retry: RetrySettings,
    pub bulkhead: BulkheadSettings,
    /// The breaker, unless disabled; and how often to probe while open (`None`: never).
    pub breaker: Option<(BreakerSettings, Option<Duration>)>,
    pub outlier: OutlierSettings,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub singleflight: bool,
    pub pool_max_idle: usize,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Client headers forwarded as they are.
    pub forward_headers: Vec<http::HeaderName>,
    pub max_response_bytes: usize,
    /// Longest path and query string a call may have (arguments making it longer are refused).
    pub max_url_bytes: usize,
}

impl BackendPlan {
    /// A plan with default resilience settings (tests and embedders).
    pub fn with_defaults(id: BackendId, name: &str, base: &str) -> Self {
        Self {
            id,
            name: name.to_string(),
            instances: vec![base.trim_end_matches('/').to_string()],
            dns_refresh: None,
            health_path: "/health".into(),
            critical: false,
            retry: RetrySettings::default(),
            bulkhead: BulkheadSettings::default(),
            breaker: Some((BreakerSettings::default(), Some(Duration::from_secs(1)))),
            outlier: OutlierSettings::default(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            singleflight: true,
            pool_max_idle: 64,
            headers: Vec::new(),
            forward_headers: Vec::new(),
            max_response_bytes: 16 << 20,
            max_url_bytes: 16 << 10,
        }
    }
}

/// A window kind, for settings readers.
pub fn window_kind(count: bool, size: usize, duration: Duration) -> WindowKind {
    if count {
        WindowKind::Count(size)
    } else {
        WindowKind::Time(duration)
    }
}

/// A compiled `@http` binding.
#[derive(Debug, Clone)]
pub struct Binding {
    pub id: BindingId,
    pub backend: BackendId,
    pub method: http::Method,
    pub path: Template,
    pub query: Vec<(String, Template)>,
    pub headers: Vec<(http::HeaderName, Template)>,
    pub body: Option<BodyTemplate>,
    /// Where the field's value is in the (whole) answer — for a batch, the list of items: a path
    /// or an expression (evaluated once per answer and kept with it).
    pub select: Mapping,
    /// What each parent gets: applied to each of its items (batch, fan-out) or to the selected
    /// answer; `None`: the item or answer itself.
    pub value: Option<Mapping>,
    pub batch: Option<BatchRule>,
    /// One call per distinct key over a level (no batch endpoint).
    pub fanout: Option<FanoutRule>,
    /// 4xx answers whose reason the client may see.
    pub errors: Vec<ErrorRule>,
    /// Whether identical concurrent calls may share one backend call.
    pub singleflight: bool,
    /// A non-idempotent call the schema declares safe to retry (`@http(retry: true)`).
    pub retryable: bool,
    /// Per-field timeout (`@http(timeout: "500ms")`), overriding the backend's.
    pub timeout: Option<Duration>,
    /// How answers are cached; `None` for calls that are never cached (not GET, cache off).
    pub cache: Option<std::sync::Arc<super::resilience::CachePolicy>>,
    /// Cached GET answers a successful call makes stale: (backend, path prefix template).
    pub invalidates: Vec<(BackendId, Template)>,
    /// `Type.field` this binding belongs to, for diagnostics, logs and metrics.
    pub owner: String,
}

impl Binding {
    /// Whether the call depends on the parent object (so it is made once per parent, or batched).
    pub fn uses_parent(&self) -> bool {
        self.batch.is_some()
            || self.fanout.is_some()
            || self.path.uses_parent()
            || self.query.iter().any(|(_, t)| t.uses_parent())
            || self.headers.iter().any(|(_, t)| t.uses_parent())
            || self.body.as_ref().is_some_and(BodyTemplate::uses_parent)
    }

    /// Every template expression of the binding (path, query, headers, body).
    pub fn exprs(&self) -> Vec<&Expr> {
        let mut out: Vec<&Expr> = self.path.exprs().collect();
        for (_, t) in &self.query {
            out.extend(t.exprs());
        }
        for (_, t) in &self.headers {
            out.extend(t.exprs());
        }
        if let Some(b) = &self.body {
            b.collect_exprs(&mut out);
        }
        out
    }
}

/// How calls for many parents are sent as one request.
#[derive(Debug, Clone)]
pub struct BatchRule {
    /// Each parent's key (or list of keys) in the parent's backend JSON (`from`).
    pub parent_key: Mapping,
    /// `from` as written (for messages).
    pub from_field: String,
    /// Each returned item's key in the item's backend JSON (`key`).
    pub item_key: Mapping,
    /// The item field the key is matched on (for messages).
    pub key_field: String,
    /// Query parameter (or body field) carrying the keys.
    pub param: String,
    pub style: BatchStyle,
    /// Most keys per request; more keys are split into parallel requests.
    pub max_size: usize,
    /// Each key matches many items (a list field) rather than one.
    pub many: bool,
}

/// A fan-out: the binding's templates read `{{key}}`; one call is made per distinct key over all
/// the parents of a level, at most `concurrency` at once.
#[derive(Debug, Clone)]
pub struct FanoutRule {
    /// Each parent's key, or list of keys, in its backend JSON.
    pub from: Mapping,
    pub concurrency: usize,
    /// The field is a list: each parent gets a list (one item per key, or the items of its
    /// key's answer).
    pub many: bool,
}

/// A backend 4xx answer turned into an error the client may read.
#[derive(Debug, Clone)]
pub struct ErrorRule {
    /// Statuses it applies to; empty: every 4xx but 404.
    pub statuses: Vec<u16>,
    /// The message, read from the answer's JSON body; `None`: a generic message.
    pub message: Option<Mapping>,
    pub code: std::sync::Arc<str>,
}

impl ErrorRule {
    pub fn applies(&self, status: u16) -> bool {
        if self.statuses.is_empty() {
            (400..500).contains(&status) && status != 404
        } else {
            self.statuses.contains(&status)
        }
    }
}

/// How the keys of a batch are written into the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchStyle {
    /// `?id=1&id=2`
    Repeat,
    /// `?ids=1,2`
    Comma,
    /// A JSON body `{"<param>": [1, 2]}`, or the bare list `[1, 2]` when `param` is empty.
    JsonBody,
}

/// A JSON body with templates in its strings.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyTemplate {
    /// A constant JSON value.
    Const(Value),
    /// A string that is exactly one `{{expr}}`: the value keeps its JSON type.
    Expr(Expr),
    /// A string with literals and expressions: rendered as a string.
    Text(Template),
    Object(Vec<(String, BodyTemplate)>),
    List(Vec<BodyTemplate>),
}

impl BodyTemplate {
    /// Compiles a JSON value whose strings may hold templates.
    pub fn compile(value: &Value) -> Result<Self, super::template::TemplateError> {
        Ok(match value {
            Value::String(s) => {
                let t = Template::parse(s)?;
                if let Some(e) = t.as_single_expr() {
                    BodyTemplate::Expr(e.clone())
                } else if t.exprs().next().is_none() {
                    BodyTemplate::Const(value.clone())
                } else {
                    BodyTemplate::Text(t)
                }
            }
            Value::Array(items) => {
                BodyTemplate::List(items.iter().map(BodyTemplate::compile).collect::<Result<_, _>>()?)
            }
            Value::Object(map) => BodyTemplate::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), BodyTemplate::compile(v)?)))
                    .collect::<Result<_, _>>()?,
            ),
            other => BodyTemplate::Const(other.clone()),
        })
    }

    pub fn uses_parent(&self) -> bool {
        let mut exprs = Vec::new();
        self.collect_exprs(&mut exprs);
        exprs.iter().any(|e| matches!(e.base(), Expr::Parent { .. }))
    }

    pub fn collect_exprs<'a>(&'a self, out: &mut Vec<&'a Expr>) {
        match self {
            BodyTemplate::Const(_) => {}
            BodyTemplate::Expr(e) => out.push(e),
            BodyTemplate::Text(t) => out.extend(t.exprs()),
            BodyTemplate::Object(fields) => fields.iter().for_each(|(_, b)| b.collect_exprs(out)),
            BodyTemplate::List(items) => items.iter().for_each(|b| b.collect_exprs(out)),
        }
    }

    pub fn exprs_mut(&mut self) -> Vec<&mut Expr> {
        let mut out = Vec::new();
        self.collect_exprs_mut(&mut out);
        out
    }

    fn collect_exprs_mut<'a>(&'a mut self, out: &mut Vec<&'a mut Expr>) {
        match self {
            BodyTemplate::Const(_) => {}
            BodyTemplate::Expr(e) => out.push(e),
            BodyTemplate::Text(t) => out.extend(t.exprs_mut()),
            BodyTemplate::Object(fields) => fields.iter_mut().for_each(|(_, b)| b.collect_exprs_mut(out)),
            BodyTemplate::List(items) => items.iter_mut().for_each(|b| b.collect_exprs_mut(out)),
        }
    }
}
