//! Per-request deduplication: identical calls inside one GraphQL request are made once.
//!
//! Both executors render calls independently in different parts of a query; the memo makes the
//! second identical GET wait for (or reuse) the first. Non-idempotent calls (mutations) are never
//! deduplicated.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::{FutureExt, Shared};

use super::http::CallFuture;
use super::{BackendClients, BackendRequest, CallError, CallFailure, CallKey, Payload};
use crate::telemetry::trace_context::CallTrace;

/// Calls made so far by one request, with what every call of the request carries: its deadline
/// and its principal (for private cache entries).
#[derive(Default)]
pub struct CallMemo {
    calls: Mutex<HashMap<CallKey, Shared<CallFuture>>>,
    deadline: Option<tokio::time::Instant>,
    principal: Option<Arc<str>>,
    trace: Option<Arc<CallTrace>>,
}

impl CallMemo {
    /// A memo for a request that must finish by `deadline`, made by `principal` (if known), in
    /// the trace of the request being served by this task (if any).
    pub fn new(deadline: tokio::time::Instant, principal: Option<Arc<str>>) -> Self {
        Self {
            calls: Mutex::default(),
            deadline: Some(deadline),
            principal,
            trace: crate::telemetry::trace_context::current().map(|c| c.call_trace()),
        }
    }

    /// Makes (or joins) the call; a failure carries the stale answer the cache may still have.
    pub async fn call(&self, clients: &BackendClients, req: BackendRequest) -> Result<Arc<Payload>, CallFailure> {
        let probe = req.cache.is_some().then(|| req.clone());
        match self.call_inner(clients, req).await {
            Ok(p) => Ok(p),
            Err(error) => {
                let stale = probe.and_then(|mut r| {
                    r.principal = self.principal.clone();
                    clients.stale(&r)
                });
                Err(CallFailure { error, stale })
            }
        }
    }

    async fn call_inner(&self, clients: &BackendClients, mut req: BackendRequest) -> Result<Arc<Payload>, CallError> {
        req.deadline = self.deadline;
        req.principal = self.principal.clone();
        req.trace = self.trace.clone();
        let idempotent = matches!(req.method, http::Method::GET | http::Method::HEAD);
        if !idempotent {
            return clients.call(req).await;
        }
        let key = req.call_key();
        let shared = {
            let mut calls = match self.calls.lock() {
                Ok(c) => c,
                Err(poisoned) => poisoned.into_inner(),
            };
            calls
                .entry(key)
                .or_insert_with(|| {
                    let clients = clients.clone();
                    (Box::pin(async move { clients.call(req).await }) as CallFuture).shared()
                })
                .clone()
        };
        shared.await
    }
}
