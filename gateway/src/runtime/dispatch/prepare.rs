//! First sight of a document: parsed and validated by async-graphql (with our limits and codes),
//! kept in the plan cache by (document, operation name), and compiled into plans — one per set of
//! `@skip`/`@include` values — on the compiled executor's terms.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use serde_json::{Map, Value};

use super::super::Runtime;
use super::errors::{error_codes, request_error, to_async_graphql};
use super::{Executed, GraphQLRequest};
use crate::exec::{self, Compiled, OpPlan};
use crate::runtime::capture::ValidateOnly;

/// What is kept per distinct (document, operation name).
pub(in crate::runtime) struct Prepared {
    /// The document's cost depends on its variables: checked again per request.
    pub(super) variable_cost: bool,
    pub(super) query: Box<str>,
    pub(super) operation_name: Option<Box<str>>,
    /// The operation's name: the requested one, or the name of the document's only operation.
    pub(super) name: Option<Arc<str>>,
    /// SHA-256 of the document (hex): what traces show of it (the APQ hash).
    pub(super) hash: Arc<str>,
    pub(super) kind: OperationType,
    pub(super) document: Arc<ExecutableDocument>,
    pub(super) route: Route,
}

/// A plan for one combination of `@skip`/`@include` values.
type ConditionalPlan = (Vec<bool>, Option<Arc<OpPlan>>);

pub(super) enum Route {
    Dynamic,
    /// Compiled plans by the values of the `@skip`/`@include` variables (usually just one);
    /// `None` when those values select something only async-graphql runs.
    Compiled {
        condition_vars: Vec<String>,
        plans: Mutex<Vec<ConditionalPlan>>,
    },
}

pub(in crate::runtime) type PlanCache = moka::sync::Cache<u64, Arc<Prepared>>;

pub(in crate::runtime) fn new_cache(size: u64) -> PlanCache {
    moka::sync::Cache::builder().max_capacity(size.max(1)).build()
}

pub(super) fn cache_key(query: &str, op: Option<&str>) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    query.hash(&mut h);
    op.hash(&mut h);
    h.finish()
}

impl Runtime {
    /// First sight of a document: parse and validate it (async-graphql, with our limits), then
    /// compile it; the error answer and its codes when it is refused.
    pub(super) async fn prepare(&self, req: &GraphQLRequest) -> Result<Arc<Prepared>, (Executed, Vec<String>)> {
        let slot = Arc::new(ValidateOnly::default());
        let request = to_async_graphql(req).data(slot.clone());
        let mut response = self.schema.execute(request).await;
        crate::runtime::capture::ensure_codes(&mut response);
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

    pub(super) fn compiled_plan(&self, prepared: &Prepared, variables: &Map<String, Value>) -> Option<Arc<OpPlan>> {
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
}
