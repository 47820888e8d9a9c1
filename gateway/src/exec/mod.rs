//! The compiled executor: each validated operation is compiled once into an [`OpPlan`]; running it
//! fetches all backend data level by level (batched, concurrent), then writes the response JSON
//! straight from the backends' JSON.
//!
//! It covers queries and mutations over bound fields with the whole of GraphQL's selection
//! semantics; introspection, Rust resolvers and subscriptions go to async-graphql's executor.

mod args;
mod compile;
mod entities;
mod fetch;
mod memo;
mod resolve;
mod vars;
mod write;

use async_graphql::parser::types::{ExecutableDocument, OperationType};
use serde_json::{Map, Value};

pub use compile::{compile, condition_variables, find_operation, Compiled, NotCompilable, OpPlan};

use crate::backend::{BackendClients, CallMemo};
use crate::plan::Plan;

/// Why a compiled operation could not run (the caller falls back to async-graphql).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunError {
    /// The variables do not fit their types; async-graphql reports it in its words.
    InvalidVariables,
}

/// The kind of the named (or only) operation of a document.
pub fn operation_kind(doc: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    compile::find_operation(doc, name).map(|op| op.node.ty)
}

/// Who is asking, for private cache entries: the verified token's subject, else the configured
/// principal header's value.
pub fn principal(plan: &Plan, headers: &http::HeaderMap) -> Option<std::sync::Arc<str>> {
    if let Some(sub) = crate::auth::identity::current().subject() {
        return Some(std::sync::Arc::from(sub));
    }
    let name = plan.cache.principal_header.as_deref()?;
    let value = headers.get(name)?.to_str().ok()?;
    (!value.is_empty()).then(|| std::sync::Arc::from(value))
}

/// Runs a compiled operation; `waiters` counts the requests sharing this execution (operation
/// coalescing), carried by its backend calls to the breakers.
pub async fn run(
    plan: &Plan,
    clients: &BackendClients,
    op: &OpPlan,
    variables: &Map<String, Value>,
    headers: &http::HeaderMap,
    waiters: Option<std::sync::Arc<std::sync::atomic::AtomicU32>>,
) -> Result<(bytes::Bytes, Vec<String>), RunError> {
    let vars = vars::coerce_variables(plan, op, variables).ok_or(RunError::InvalidVariables)?;
    let identity = crate::auth::identity::current();
    let memo = CallMemo::new(
        tokio::time::Instant::now() + plan.limits.request_timeout.0,
        principal(plan, headers),
    )
    .with_waiters(waiters);
    let cx = fetch::FetchContext {
        plan,
        identity: &identity,
        clients,
        memo: &memo,
        headers,
        vars: &vars,
    };
    let fetched = fetch::fetch(&cx, op).await;
    let answers = op.memoizable.then(|| fetched.answers()).flatten();
    if let Some(body) = answers.as_deref().and_then(|a| op.memo.get(a)) {
        return Ok((body, Vec::new()));
    }
    let hint = op.size_hint.load(std::sync::atomic::Ordering::Relaxed);
    let (body, codes) = write::write_response(plan, op, &fetched, &identity, hint + hint / 8);
    op.size_hint.store(body.len(), std::sync::atomic::Ordering::Relaxed);
    let body = bytes::Bytes::from(body);
    if let (Some(answers), true) = (&answers, codes.is_empty()) {
        op.memo.put(answers, &body);
    }
    Ok((body, codes))
}
