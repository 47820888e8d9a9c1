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

/// The names of the request headers an execution's answers may depend on: those templates may
/// read, the principal's, and those forwarded to backends. Operation coalescing and the response
/// memo compare these, and nothing else of the headers.
pub fn input_header_names(plan: &Plan) -> impl Iterator<Item = &str> {
    (plan.request_headers.iter().chain(plan.cache.principal_header.iter()))
        .map(String::as_str)
        .chain(
            plan.backends
                .iter()
                .flat_map(|b| b.forward_headers.iter().map(|n| n.as_str())),
        )
}

/// The request's headers named by [`input_header_names`], every value of each.
pub fn input_headers(plan: &Plan, headers: &http::HeaderMap) -> http::HeaderMap {
    let mut out = http::HeaderMap::new();
    for name in input_header_names(plan) {
        let values = headers.get_all(name);
        // Absent, or taken already under another list.
        if values.iter().next().is_none() || out.contains_key(name) {
            continue;
        }
        let Ok(header) = http::HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        for value in values {
            out.append(header.clone(), value.clone());
        }
    }
    out
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
    let identity = crate::auth::identity::current();
    // The last response, when nothing it was made from can have changed (see `memo`). Not with
    // debug logging on, where every call gets its line.
    let cache = clients
        .cache()
        .filter(|_| op.memoizable && !tracing::enabled!(tracing::Level::DEBUG));
    let changes = cache.map(|c| c.changes());
    if let (Some(cache), Some(changes)) = (cache, changes) {
        if let Some((body, hits)) = op.memo.known(
            input_header_names(plan),
            changes,
            variables,
            headers,
            identity.claims.as_ref(),
        ) {
            cache.count_hits(u64::from(hits));
            if let Some(trace) = crate::telemetry::trace_context::current() {
                trace.count_cache_hits(hits);
            }
            return Ok((body, Vec::new()));
        }
    }
    let vars = vars::coerce_variables(plan, op, variables).ok_or(RunError::InvalidVariables)?;
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
    // Known to hold before the next fetch, when every call found a fresh entry in memory.
    let known = || {
        changes
            .zip(memo.all_fresh())
            .map(|(changes, (hits, fresh_until))| memo::Known {
                changes,
                fresh_until,
                hits,
                inputs: memo::Inputs::new(variables, input_headers(plan, headers), identity.claims.as_ref()),
            })
    };
    if let Some(answers) = answers.as_deref() {
        if let Some((body, known_at)) = op.memo.get(answers) {
            // Written from these very answers, but not known as of this cache state (say, the
            // request that wrote it fetched an answer this one found fresh): known from now on.
            if known_at != changes {
                if let Some(known) = known() {
                    op.memo.put(answers, &body, Some(known));
                }
            }
            return Ok((body, Vec::new()));
        }
    }
    let hint = op.size_hint.load(std::sync::atomic::Ordering::Relaxed);
    let (body, codes) = write::write_response(plan, op, &fetched, &identity, hint + hint / 8);
    op.size_hint.store(body.len(), std::sync::atomic::Ordering::Relaxed);
    let body = bytes::Bytes::from(body);
    if let (Some(answers), true) = (&answers, codes.is_empty()) {
        op.memo.put(answers, &body, known());
    }
    Ok((body, codes))
}
