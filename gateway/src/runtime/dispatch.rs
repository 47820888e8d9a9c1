//! One GraphQL operation in, response bytes out: validate a document the first time it is seen,
//! compile it once, then run every later request on the compiled executor (or on async-graphql's
//! executor for what the compiled one does not cover: introspection, Rust resolvers).

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use serde_json::{Map, Value};

use super::capture::ValidateOnly;
use super::Runtime;
use crate::exec::{self, Compiled, OpPlan, RunError};

/// One operation as the client sent it.
#[derive(Debug, Clone, Default)]
pub struct GraphQLRequest {
    pub query: String,
    pub operation_name: Option<String>,
    pub variables: Map<String, Value>,
    pub extensions: Map<String, Value>,
}

/// Which operations a transport accepts (GET carries queries only).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OperationFilter {
    Any,
    QueriesOnly,
}

/// The response of one operation.
#[derive(Debug)]
pub struct Executed {
    /// The JSON response (shared by the requests an in-flight execution served).
    pub body: bytes::Bytes,
    /// The request failed before execution (parse, validation or variable errors): no `data`.
    pub request_error: bool,
    /// The operation is not allowed on this transport (a mutation over GET).
    pub not_allowed: bool,
}

impl Executed {
    fn new(body: impl Into<bytes::Bytes>) -> Self {
        Self {
            body: body.into(),
            request_error: false,
            not_allowed: false,
        }
    }
}

fn kind_label(kind: OperationType) -> &'static str {
    match kind {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    }
}

/// What is kept per distinct (document, operation name).
pub(super) struct Prepared {
    /// The document's cost depends on its variables: checked again per request.
    variable_cost: bool,
    query: Box<str>,
    operation_name: Option<Box<str>>,
    /// The operation's name: the requested one, or the name of the document's only operation.
    name: Option<Arc<str>>,
    /// SHA-256 of the document (hex): what traces show of it (the APQ hash).
    hash: Arc<str>,
    kind: OperationType,
    document: Arc<ExecutableDocument>,
    route: Route,
}

/// A plan for one combination of `@skip`/`@include` values.
type ConditionalPlan = (Vec<bool>, Option<Arc<OpPlan>>);

enum Route {
    Dynamic,
    /// Compiled plans by the values of the `@skip`/`@include` variables (usually just one);
    /// `None` when those values select something only async-graphql runs.
    Compiled {
        condition_vars: Vec<String>,
        plans: Mutex<Vec<ConditionalPlan>>,
    },
}

pub(super) type PlanCache = moka::sync::Cache<u64, Arc<Prepared>>;

/// What running one operation gave: the response, the operation type (for metrics), the error
/// codes, and the prepared operation (when the document was valid).
type Outcome = (Executed, &'static str, Vec<String>, Option<Arc<Prepared>>);

/// Records the span of one operation: `graphql.operation.type`, `.name` and the document's hash,
/// never the document or its variables.
fn record_operation_span(
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
fn note_operation(prepared: &Prepared, kind: &'static str) {
    if let Some(ctx) = crate::telemetry::trace_context::current() {
        let _ = ctx.operation.set(crate::telemetry::trace_context::OperationLabel {
            name: prepared.name.clone(),
            kind,
            document: prepared.hash.clone(),
        });
    }
}

/// The `extensions.code` of each error of `response` (`REQUEST_ERROR` when it has none).
fn error_codes(response: &async_graphql::Response) -> Vec<String> {
    response
        .errors
        .iter()
        .map(|e| {
            e.extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .map(|c| c.to_string().trim_matches('"').to_string())
                .unwrap_or_else(|| "REQUEST_ERROR".to_string())
        })
        .collect()
}

/// The shared result of one compiled execution.
pub(super) type SharedRun = Result<(bytes::Bytes, Arc<Vec<String>>), RunError>;

/// Executions in flight, by what makes two requests identical. With each: the trace and span of
/// the operation that runs it, when traced (followers link to it). An execution every requester
/// gave up on is cancelled (see [`crate::coalesce`]): it keeps neither its backend calls nor the
/// `Engine` it started under.
pub(super) type InFlight =
    crate::coalesce::Coalescer<u64, SharedRun, Option<(crate::telemetry::trace_context::TraceId, u64)>>;

/// Most distinct executions coalesced at once; beyond, queries run uncoalesced.
pub(super) const MAX_COALESCED_OPERATIONS: usize = 4096;

pub(super) fn new_cache(size: u64) -> PlanCache {
    moka::sync::Cache::builder().max_capacity(size.max(1)).build()
}

/// Feeds a JSON value to a hasher, structurally (object keys in their map's order, which is
/// sorted): equal values hash equally, without serializing them first.
fn hash_json<H: Hasher>(value: &Value, h: &mut H) {
    match value {
        Value::Null => h.write_u8(0),
        Value::Bool(b) => {
            h.write_u8(1);
            b.hash(h);
        }
        Value::Number(n) => {
            h.write_u8(2);
            n.hash(h);
        }
        Value::String(s) => {
            h.write_u8(3);
            s.hash(h);
        }
        Value::Array(items) => {
            h.write_u8(4);
            h.write_usize(items.len());
            for item in items {
                hash_json(item, h);
            }
        }
        Value::Object(map) => {
            h.write_u8(5);
            h.write_usize(map.len());
            for (k, v) in map {
                k.hash(h);
                hash_json(v, h);
            }
        }
    }
}

fn cache_key(query: &str, op: Option<&str>) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    query.hash(&mut h);
    op.hash(&mut h);
    h.finish()
}

impl Runtime {
    /// Runs one operation, and records its metrics and (when the request is traced) its span.
    pub async fn execute(&self, req: GraphQLRequest, headers: &http::HeaderMap, filter: OperationFilter) -> Executed {
        let started = std::time::Instant::now();
        let requested = req.operation_name.clone();
        let traced = crate::telemetry::trace_context::current().filter(|c| c.tracer.is_some());
        let (executed, kind, codes, prepared) = match &traced {
            None => self.execute_inner(req, headers, filter).await,
            Some(request) => {
                let op = Arc::new(request.child());
                let start = std::time::SystemTime::now();
                let out =
                    crate::telemetry::trace_context::scope(op.clone(), self.execute_inner(req, headers, filter)).await;
                record_operation_span(&op, start, requested.as_deref(), &out);
                out
            }
        };
        let name = prepared
            .as_ref()
            .and_then(|p| p.name.as_deref())
            .or(requested.as_deref());
        crate::telemetry::metrics::operation(name, kind, started.elapsed(), &codes);
        executed
    }

    async fn execute_inner(
        &self,
        mut req: GraphQLRequest,
        headers: &http::HeaderMap,
        filter: OperationFilter,
    ) -> Outcome {
        match self.persisted.resolve(&req.query, &req.extensions) {
            Ok(Some(document)) => req.query = document.to_string(),
            Ok(None) => {}
            Err(e) => {
                let response = async_graphql::Response::from_errors(vec![coded_error(e.to_string(), e.code())]);
                let mut executed = request_error(&response);
                // Apollo's persisted-query link reads this answer as a normal one and sends the
                // query with its hash next: not a request failure.
                executed.request_error = e != super::persisted::PersistedError::NotFound;
                return (executed, "invalid", vec![e.code().to_string()], None);
            }
        }
        let key = cache_key(&req.query, req.operation_name.as_deref());
        let prepared = match self.plans.get(&key) {
            Some(p) if *p.query == *req.query && p.operation_name.as_deref() == req.operation_name.as_deref() => p,
            _ => match self.prepare(&req).await {
                Ok(p) => {
                    tracing::debug!(
                        operation = p.name.as_deref(),
                        document = &*p.hash,
                        "operation compiled on first sight"
                    );
                    self.plans.insert(key, p.clone());
                    p
                }
                Err((executed, codes)) => return (executed, "invalid", codes, None),
            },
        };
        let kind = kind_label(prepared.kind);
        note_operation(&prepared, kind);
        if prepared.kind == OperationType::Mutation && !self.engine.plan.security.allow_mutations {
            return (
                request_error(&async_graphql::Response::from_errors(vec![mutations_disabled()])),
                kind,
                vec!["FORBIDDEN".into()],
                Some(prepared),
            );
        }
        if prepared.variable_cost {
            let limits = &self.engine.plan.limits;
            if let Err(e) = super::limits::check_document(
                &self.engine.plan,
                &prepared.document,
                req.operation_name.as_deref(),
                &req.variables,
                limits,
            ) {
                let response = async_graphql::Response::from_errors(vec![super::capture::limit_error(&e)]);
                return (
                    request_error(&response),
                    kind,
                    vec![e.code().to_string()],
                    Some(prepared),
                );
            }
        }
        if filter == OperationFilter::QueriesOnly && prepared.kind != OperationType::Query {
            let refused = Executed {
                body: bytes::Bytes::new(),
                request_error: true,
                not_allowed: true,
            };
            return (refused, kind, vec!["REQUEST_ERROR".to_string()], Some(prepared));
        }
        if let Some(op) = self.compiled_plan(&prepared, &req.variables) {
            let run = if prepared.kind == OperationType::Query && self.engine.plan.server.coalesce_operations {
                self.run_coalesced(&prepared, op, &req, headers).await
            } else {
                exec::run(&self.engine.plan, &self.engine.clients, &op, &req.variables, headers).await
            };
            match run {
                Ok((body, codes)) => return (Executed::new(body), kind, codes, Some(prepared)),
                // Invalid variables: async-graphql writes the canonical error below.
                Err(RunError::InvalidVariables) => {}
            }
        }
        let (executed, codes) = self.execute_dynamic_bytes(req, headers).await;
        (executed, kind, codes, Some(prepared))
    }

    /// Runs a query on the compiled executor, sharing the execution with identical queries in
    /// flight at the same moment: same document and operation, same variables, same values of
    /// the request headers templates may read or backends receive, and the same identity. One execution, one set of
    /// backend calls, the same response bytes for all of them.
    async fn run_coalesced(
        &self,
        prepared: &Arc<Prepared>,
        op: Arc<OpPlan>,
        req: &GraphQLRequest,
        headers: &http::HeaderMap,
    ) -> Result<(bytes::Bytes, Vec<String>), RunError> {
        let plan = &self.engine.plan;
        let mut h = rustc_hash::FxHasher::default();
        (Arc::as_ptr(prepared) as usize).hash(&mut h);
        for (name, value) in &req.variables {
            name.hash(&mut h);
            hash_json(value, &mut h);
        }
        for name in plan.request_headers.iter().chain(plan.cache.principal_header.iter()) {
            headers.get(name.as_str()).map(|v| v.as_bytes()).hash(&mut h);
        }
        // Whatever else decides what the backends answer: the headers forwarded to them and who is
        // asking (their claims reach templates, `@auth` and private cache entries).
        for b in &plan.backends {
            for name in &b.forward_headers {
                headers.get(name).map(|v| v.as_bytes()).hash(&mut h);
            }
        }
        if let Some(claims) = &super::identity::current().claims {
            hash_json(claims, &mut h);
        }
        let key = h.finish();
        let traced = crate::telemetry::trace_context::current().filter(|c| c.tracer.is_some());
        let leader = traced.as_ref().map(|t| (t.trace_id, t.span_id));
        let engine = self.engine.clone();
        let (joined, role) = self.inflight.join(key, leader, || {
            let variables = req.variables.clone();
            let headers = headers.clone();
            async move {
                exec::run(&engine.plan, &engine.clients, &op, &variables, &headers)
                    .await
                    .map(|(body, codes)| (body, Arc::new(codes)))
            }
        });
        if let (Some(me), crate::coalesce::Role::Follower(Some(leader))) = (&traced, role) {
            let _ = me.coalesced_with.set(leader);
        }
        joined.await.map(|(body, codes)| (body, (*codes).clone()))
    }

    /// Runs an operation on the compiled executor only: `None` when it cannot (invalid, not
    /// compilable, or invalid variables). For differential tests against [`Runtime::execute_dynamic`].
    pub async fn execute_compiled_only(&self, req: &GraphQLRequest, headers: &http::HeaderMap) -> Option<Vec<u8>> {
        let prepared = self.prepare(req).await.ok()?;
        let op = self.compiled_plan(&prepared, &req.variables)?;
        exec::run(&self.engine.plan, &self.engine.clients, &op, &req.variables, headers)
            .await
            .ok()
            .map(|(body, _)| body.to_vec())
    }

    /// First sight of a document: parse and validate it (async-graphql, with our limits), then
    /// compile it; the error answer and its codes when it is refused.
    async fn prepare(&self, req: &GraphQLRequest) -> Result<Arc<Prepared>, (Executed, Vec<String>)> {
        let slot = Arc::new(ValidateOnly::default());
        let request = to_async_graphql(req).data(slot.clone());
        let mut response = self.schema.execute(request).await;
        super::capture::ensure_codes(&mut response);
        if !response.errors.is_empty() {
            return Err((request_error(&response), error_codes(&response)));
        }
        let document = slot.document.lock().ok().and_then(|mut d| d.take());
        let Some(document) = document else {
            return Err((request_error(&response), vec!["REQUEST_ERROR".to_string()]));
        };
        let kind = exec::operation_kind(&document, req.operation_name.as_deref()).unwrap_or(OperationType::Query);
        let route = match exec::condition_variables(&document, req.operation_name.as_deref()) {
            Some(vars) if kind != OperationType::Subscription => Route::Compiled {
                condition_vars: vars,
                plans: Mutex::new(Vec::new()),
            },
            _ => Route::Dynamic,
        };
        let name = match (&req.operation_name, &document.operations) {
            (Some(n), _) => Some(n.as_str().into()),
            (None, DocumentOperations::Multiple(ops)) if ops.len() == 1 => ops.keys().next().map(|n| n.as_str().into()),
            _ => None,
        };
        let hash = crate::plan::documents::sha256_hex(&req.query).into();
        Ok(Arc::new(Prepared {
            variable_cost: slot.variable_cost.load(std::sync::atomic::Ordering::Relaxed),
            query: req.query.as_str().into(),
            operation_name: req.operation_name.as_deref().map(Into::into),
            name,
            hash,
            kind,
            document: Arc::new(document),
            route,
        }))
    }

    fn compiled_plan(&self, prepared: &Prepared, variables: &Map<String, Value>) -> Option<Arc<OpPlan>> {
        let Route::Compiled { condition_vars, plans } = &prepared.route else {
            return None;
        };
        let values: Vec<bool> = condition_vars
            .iter()
            .map(|v| variables.get(v).and_then(Value::as_bool).unwrap_or(false))
            .collect();
        let mut plans = plans.lock().ok()?;
        if let Some((_, p)) = plans.iter().find(|(v, _)| *v == values) {
            return p.clone();
        }
        let conditions: Vec<(String, bool)> = condition_vars.iter().cloned().zip(values.iter().copied()).collect();
        match exec::compile(
            &self.engine.plan,
            &prepared.document,
            prepared.operation_name.as_deref(),
            &conditions,
        ) {
            Compiled::Plan(p) => {
                let p = Arc::new(p);
                if plans.len() < 16 {
                    plans.push((values, Some(p.clone())));
                }
                Some(p)
            }
            Compiled::NotCompilable(_) => {
                if plans.len() < 16 {
                    plans.push((values, None));
                }
                None
            }
        }
    }

    async fn execute_dynamic_bytes(&self, req: GraphQLRequest, headers: &http::HeaderMap) -> (Executed, Vec<String>) {
        let response = self.execute_dynamic(to_async_graphql(&req), headers.clone()).await;
        let codes = error_codes(&response);
        if is_request_error(&response) {
            return (self::request_error(&response), codes);
        }
        (Executed::new(serde_json::to_vec(&response).unwrap_or_default()), codes)
    }
}

impl Runtime {
    /// Before reporting ready: compiles the given documents' operations (so the first real
    /// requests find their plans) and opens a connection to every backend instance.
    pub async fn warm_up(&self, documents: &[String]) {
        let started = std::time::Instant::now();
        let trusted = self.persisted.trusted_documents();
        let documents = documents.iter().map(String::as_str).chain(trusted.iter().map(|d| &**d));
        let mut compiled = 0usize;
        for doc in documents {
            let Ok(parsed) = async_graphql::parser::parse_query(doc) else {
                tracing::warn!("a warm-up document does not parse; skipped");
                continue;
            };
            // Requests name the operation or, when the document has only one, often do not:
            // both are warmed (they are cached apart); each operation is counted once.
            let names: Vec<(Option<String>, bool)> = match &parsed.operations {
                async_graphql::parser::types::DocumentOperations::Single(_) => vec![(None, true)],
                async_graphql::parser::types::DocumentOperations::Multiple(ops) => {
                    let mut names: Vec<(Option<String>, bool)> =
                        ops.keys().map(|n| (Some(n.to_string()), true)).collect();
                    if ops.len() == 1 {
                        names.push((None, false));
                    }
                    names
                }
            };
            for (name, counted) in names {
                let req = GraphQLRequest {
                    query: doc.to_string(),
                    operation_name: name,
                    ..GraphQLRequest::default()
                };
                match self.prepare(&req).await {
                    Ok(p) => {
                        let key = cache_key(&req.query, req.operation_name.as_deref());
                        let _ = self.compiled_plan(&p, &Map::new());
                        self.plans.insert(key, p);
                        compiled += usize::from(counted);
                    }
                    Err(_) => {
                        tracing::warn!(operation = ?req.operation_name, "a warm-up operation is invalid; skipped")
                    }
                }
            }
        }
        let probes = self.engine.plan.backends.iter().flat_map(|b| {
            let client = self.engine.clients.client(b.id).http.clone();
            b.instances.iter().map(move |base| {
                let url = format!("{base}{}", b.health_path);
                let client = client.clone();
                async move {
                    let _ = client.get(url).timeout(std::time::Duration::from_secs(1)).send().await;
                }
            })
        });
        futures::future::join_all(probes).await;
        tracing::info!(
            operations = compiled,
            took_ms = started.elapsed().as_millis() as u64,
            "warmed up: operations compiled, backend connections opened"
        );
    }

    /// Runs an operation as a stream of responses: a subscription's events, or the single response
    /// of a query or mutation (graphql-transport-ws and SSE clients send those too). Runs on
    /// async-graphql's executor; each response gets its nulls and errors applied.
    ///
    /// As over HTTP, the document may be named by its persisted-query hash (and must be trusted in
    /// trusted-documents mode), and a read-only gateway refuses mutations.
    pub fn subscribe(
        self: &Arc<Self>,
        req: &GraphQLRequest,
        headers: &http::HeaderMap,
    ) -> futures::stream::BoxStream<'static, async_graphql::Response> {
        use futures::StreamExt;
        let mut req = req.clone();
        let kind = match self.admit_stream(&mut req) {
            Ok(kind) => kind,
            Err(refused) => {
                return futures::stream::once(async move { async_graphql::Response::from_errors(vec![refused]) })
                    .boxed()
            }
        };
        if kind != Some(OperationType::Subscription) {
            // A query or mutation: one response (also on schemas without a Subscription type).
            let runtime = self.clone();
            let headers = headers.clone();
            return futures::stream::once(
                async move { runtime.execute_dynamic(to_async_graphql(&req), headers).await },
            )
            .boxed();
        }
        let (request, state) = self.dynamic_request(to_async_graphql(&req), headers.clone());
        self.schema
            .execute_stream(request)
            .map(move |mut resp| {
                state.finish(&mut resp);
                resp
            })
            .boxed()
    }
}

impl Runtime {
    /// The checks a streamed operation passes before it runs (the HTTP path makes the same ones in
    /// `execute_inner`, where they share the plan cache). Gives the operation's type when the
    /// document parses (else the executor reports the syntax error).
    fn admit_stream(&self, req: &mut GraphQLRequest) -> Result<Option<OperationType>, async_graphql::ServerError> {
        match self.persisted.resolve(&req.query, &req.extensions) {
            Ok(Some(document)) => req.query = document.to_string(),
            Ok(None) => {}
            Err(e) => return Err(coded_error(e.to_string(), e.code())),
        }
        let kind = async_graphql::parser::parse_query(&req.query)
            .ok()
            .and_then(|doc| exec::operation_kind(&doc, req.operation_name.as_deref()));
        if kind == Some(OperationType::Mutation) && !self.engine.plan.security.allow_mutations {
            return Err(mutations_disabled());
        }
        Ok(kind)
    }
}

/// A request error with `extensions.code`.
fn coded_error(message: impl Into<String>, code: &str) -> async_graphql::ServerError {
    let mut err = async_graphql::ServerError::new(message, None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", code);
    err.extensions = Some(ext);
    err
}

fn mutations_disabled() -> async_graphql::ServerError {
    coded_error("mutations are disabled on this gateway", "FORBIDDEN")
}

/// Whether a response failed before execution (parse, validation, variables): no `data`.
pub fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

fn to_async_graphql(req: &GraphQLRequest) -> async_graphql::Request {
    let mut r = async_graphql::Request::new(req.query.clone()).variables(async_graphql::Variables::from_json(
        Value::Object(req.variables.clone()),
    ));
    if let Some(op) = &req.operation_name {
        r = r.operation_name(op.clone());
    }
    r
}

/// A response that never reached execution: `{"errors": [...]}`, no `data`.
fn request_error(response: &async_graphql::Response) -> Executed {
    #[derive(serde::Serialize)]
    struct Errors<'a> {
        errors: &'a [async_graphql::ServerError],
    }
    Executed {
        body: serde_json::to_vec(&Errors {
            errors: &response.errors,
        })
        .unwrap_or_default()
        .into(),
        request_error: true,
        not_allowed: false,
    }
}
