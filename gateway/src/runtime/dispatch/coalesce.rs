//! Identical queries in flight at the same moment share one execution: same document and
//! operation, variables, the request headers templates read or backends receive, and identity.
//! The [`Coalescer`](crate::coalesce::Coalescer) cancels an execution every requester gave up on.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use serde_json::Value;

use super::super::Runtime;
use super::prepare::Prepared;
use super::GraphQLRequest;
use crate::exec::{self, OpPlan, RunError};

/// The shared result of one compiled execution.
pub(in crate::runtime) type SharedRun = Result<(bytes::Bytes, Arc<Vec<String>>), RunError>;

/// What the operation leading an execution leaves its followers: its trace and span, when traced
/// (followers link to it), and the count of requests waiting for the execution (its backend
/// calls carry it to the breaker).
#[derive(Clone)]
pub(in crate::runtime) struct Leader {
    span: Option<(crate::telemetry::trace_context::TraceId, u64)>,
    waiters: Arc<AtomicU32>,
}

/// Executions in flight, by what makes two requests identical. An execution every requester
/// gave up on is cancelled (see [`crate::coalesce`]): it keeps neither its backend calls nor the
/// `Engine` it started under.
pub(in crate::runtime) type InFlight = crate::coalesce::Coalescer<u64, SharedRun, Leader>;

/// Most distinct executions coalesced at once; beyond, queries run uncoalesced.
pub(in crate::runtime) const MAX_COALESCED_OPERATIONS: usize = 4096;

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

impl Runtime {
    /// Runs a query on the compiled executor, sharing the execution with identical queries in
    /// flight at the same moment: same document and operation, same variables, same values of
    /// the request headers templates may read or backends receive, and the same identity. One execution, one set of
    /// backend calls, the same response bytes for all of them.
    pub(super) async fn run_coalesced(
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
        // Whatever else decides what the backends answer: the request headers templates may read,
        // the principal's, the headers forwarded to backends (every value of each) — and who is
        // asking (their claims reach templates, `@auth` and private cache entries). The shared
        // execution gets those headers only: it cannot depend on any other.
        let relevant = exec::input_headers(plan, headers);
        for (name, value) in &relevant {
            name.as_str().hash(&mut h);
            value.as_bytes().hash(&mut h);
        }
        if let Some(claims) = &crate::auth::identity::current().claims {
            hash_json(claims, &mut h);
        }
        let key = h.finish();
        let traced = crate::telemetry::trace_context::current().filter(|c| c.tracer.is_some());
        let leader = Leader {
            span: traced.as_ref().map(|t| (t.trace_id, t.span_id)),
            waiters: Arc::new(AtomicU32::new(1)),
        };
        let engine = self.engine.clone();
        let waiters = leader.waiters.clone();
        let start = || {
            let variables = req.variables.clone();
            async move {
                exec::run(&engine.plan, &engine.clients, &op, &variables, &relevant, Some(waiters))
                    .await
                    .map(|(body, codes)| (body, Arc::new(codes)))
            }
        };
        // A query whose answers are all in memory finishes on its first poll: it is never in
        // flight, so it is never registered (see `join_after_first_poll`).
        let (joined, role) = match self.inflight.join_after_first_poll(key, leader, start).await {
            crate::coalesce::Started::Done(run) => return run.map(|(body, codes)| (body, (*codes).clone())),
            crate::coalesce::Started::Waiting(joined, role) => (joined, role),
        };
        if let crate::coalesce::Role::Follower(leader) = role {
            leader.waiters.fetch_add(1, Ordering::Relaxed);
            if let (Some(me), Some(span)) = (&traced, leader.span) {
                let _ = me.coalesced_with.set(span);
            }
        }
        joined.await.map(|(body, codes)| (body, (*codes).clone()))
    }
}
