//! One GraphQL operation in, response bytes out: validate a document the first time it is seen
//! ([`prepare`]), compile it once, then run every later request on the compiled executor —
//! sharing identical queries in flight ([`coalesce`]) — or on async-graphql's executor for what the
//! compiled one does not cover (introspection, Rust resolvers). The operation's span is
//! [`trace`]'s; warm-up before ready is [`warmup`]'s; subscriptions and streamed operations are
//! [`stream`]'s; the request errors written before execution are [`errors`]'.

mod coalesce;
mod errors;
mod prepare;
mod stream;
mod trace;
mod warmup;

use std::sync::Arc;

use async_graphql::parser::types::OperationType;
use serde_json::{Map, Value};

use super::Runtime;
use crate::exec::{self, RunError};
pub(super) use coalesce::{InFlight, MAX_COALESCED_OPERATIONS};
pub use errors::is_request_error;
use errors::{coded_error, error_codes, mutations_disabled, request_error, to_async_graphql};
use prepare::{cache_key, Prepared};
pub(super) use prepare::{new_cache, PlanCache};
use trace::{note_operation, record_operation_span};

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
    pub(super) fn new(body: impl Into<bytes::Bytes>) -> Self {
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

/// What running one operation gave: the response, the operation type (for metrics), the error
/// codes, and the prepared operation (when the document was valid).
pub(super) type Outcome = (Executed, &'static str, Vec<String>, Option<Arc<Prepared>>);

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
            // Boxed, as below: first sight and async-graphql's executor are rare on a warm
            // gateway, and their futures would otherwise make every request's future (moved into
            // a box per request by the server) several KiB larger.
            _ => match Box::pin(self.prepare(&req)).await {
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
                let response = async_graphql::Response::from_errors(vec![crate::runtime::capture::limit_error(&e)]);
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
                // Boxed: the executor's future is large, and is moved into the server's box of
                // every request otherwise (coalesced runs are boxed by the coalescer).
                Box::pin(exec::run(
                    &self.engine.plan,
                    &self.engine.clients,
                    &op,
                    &req.variables,
                    headers,
                    None,
                ))
                .await
            };
            match run {
                Ok((body, codes)) => return (Executed::new(body), kind, codes, Some(prepared)),
                // Invalid variables: async-graphql writes the canonical error below.
                Err(RunError::InvalidVariables) => {}
            }
        }
        let (executed, codes) = Box::pin(self.execute_dynamic_bytes(req, headers)).await;
        (executed, kind, codes, Some(prepared))
    }

    /// Runs an operation on the compiled executor only: `None` when it cannot (invalid, not
    /// compilable, or invalid variables). For differential tests against [`Runtime::execute_dynamic`].
    pub async fn execute_compiled_only(&self, req: &GraphQLRequest, headers: &http::HeaderMap) -> Option<Vec<u8>> {
        let prepared = self.prepare(req).await.ok()?;
        let op = self.compiled_plan(&prepared, &req.variables)?;
        exec::run(
            &self.engine.plan,
            &self.engine.clients,
            &op,
            &req.variables,
            headers,
            None,
        )
        .await
        .ok()
        .map(|(body, _)| body.to_vec())
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
