//! Per-request deduplication: identical calls inside one GraphQL request are made once.
//!
//! Both executors render calls independently in different parts of a query; the memo makes the
//! second identical read (a GET, or a batch lookup) wait for (or reuse) the first. Writes are never
//! deduplicated. The memo is a [`Coalescer`] that keeps finished answers for the request's
//! lifetime; a call every part of the request stopped waiting for is cancelled, not kept.

use std::sync::Arc;

use super::{BackendClients, BackendRequest, CallError, CallFailure, CallKey, Payload};
use crate::coalesce::{Coalescer, Retention};
use crate::telemetry::trace_context::CallTrace;

/// Calls made so far by one request, with what every call of the request carries: its deadline
/// and its principal (for private cache entries).
pub struct CallMemo {
    calls: Coalescer<CallKey, Result<Arc<Payload>, CallError>>,
    deadline: Option<tokio::time::Instant>,
    principal: Option<Arc<str>>,
    trace: Option<Arc<CallTrace>>,
    /// How many client requests share this request's execution (operation coalescing).
    waiters: Option<Arc<std::sync::atomic::AtomicU32>>,
    found: std::sync::Mutex<Found>,
}

/// What the request's calls found: how many were answered by a fresh entry of the memory cache
/// (and until when the first of those stays fresh), and whether any was not.
#[derive(Default)]
struct Found {
    fresh: u32,
    fresh_until: Option<tokio::time::Instant>,
    other: bool,
}

/// Most distinct calls one request remembers; beyond, calls are made without the memo.
const MAX_CALLS: usize = 4096;

impl Default for CallMemo {
    fn default() -> Self {
        Self {
            calls: Coalescer::new(MAX_CALLS, Retention::ForLifetime),
            deadline: None,
            principal: None,
            trace: None,
            waiters: None,
            found: Default::default(),
        }
    }
}

impl CallMemo {
    /// A memo for a request that must finish by `deadline`, made by `principal` (if known), in
    /// the trace of the request being served by this task (if any).
    pub fn new(deadline: tokio::time::Instant, principal: Option<Arc<str>>) -> Self {
        Self {
            calls: Coalescer::new(MAX_CALLS, Retention::ForLifetime),
            deadline: Some(deadline),
            principal,
            trace: crate::telemetry::trace_context::current().map(|c| c.call_trace()),
            waiters: None,
            found: Default::default(),
        }
    }

    /// The calls carry `waiters`: the requests sharing this execution.
    pub fn with_waiters(mut self, waiters: Option<Arc<std::sync::atomic::AtomicU32>>) -> Self {
        self.waiters = waiters;
        self
    }

    /// Makes (or joins) the call; a failure carries the stale answer the cache may still have.
    /// A read with a fresh answer in the memory cache takes it there, without the memo: nothing
    /// is called, so there is nothing to make once.
    pub async fn call(&self, clients: &BackendClients, mut req: BackendRequest) -> Result<Arc<Payload>, CallFailure> {
        req.principal = self.principal.clone();
        req.trace = self.trace.clone();
        let fresh = if req.read { clients.fresh(&req) } else { None };
        if let Ok(mut found) = self.found.lock() {
            match &fresh {
                Some((_, until)) => {
                    found.fresh += 1;
                    found.fresh_until = Some(found.fresh_until.map_or(*until, |u| u.min(*until)));
                }
                None => found.other = true,
            }
        }
        if let Some((p, _)) = fresh {
            return Ok(p);
        }
        let probe = req.cache.is_some().then(|| req.clone());
        match self.call_inner(clients, req).await {
            Ok(p) => Ok(p),
            Err(error) => {
                let stale = probe.and_then(|r| clients.stale(&r));
                Err(CallFailure { error, stale })
            }
        }
    }

    /// When every call so far was answered by a fresh entry of the memory cache (and there was
    /// at least one): how many, and when the first of those answers stops being fresh.
    pub fn all_fresh(&self) -> Option<(u32, tokio::time::Instant)> {
        let found = self.found.lock().ok()?;
        if found.other {
            return None;
        }
        Some((found.fresh, found.fresh_until?))
    }

    async fn call_inner(&self, clients: &BackendClients, mut req: BackendRequest) -> Result<Arc<Payload>, CallError> {
        req.deadline = self.deadline;
        req.waiters = self.waiters.clone();
        if !req.read {
            return clients.call(req).await;
        }
        let key = req.call_key();
        let clients = clients.clone();
        let (joined, _) = self.calls.join(key, (), || async move { clients.call(req).await });
        joined.await
    }
}
