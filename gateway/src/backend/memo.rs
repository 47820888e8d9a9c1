//! Per-request deduplication: identical calls inside one GraphQL request are made once.
//!
//! Both executors render calls independently in different parts of a query; the memo makes the
//! second identical GET wait for (or reuse) the first. Non-idempotent calls (mutations) are never
//! deduplicated.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::{FutureExt, Shared};

use super::http::CallFuture;
use super::{BackendClients, BackendRequest, CallError, CallKey, Payload};

/// Calls made so far by one request, and the request's deadline (which every call carries).
#[derive(Default)]
pub struct CallMemo {
    calls: Mutex<HashMap<CallKey, Shared<CallFuture>>>,
    deadline: Option<tokio::time::Instant>,
}

impl CallMemo {
    /// A memo for a request that must finish by `deadline`.
    pub fn with_deadline(deadline: tokio::time::Instant) -> Self {
        Self {
            calls: Mutex::default(),
            deadline: Some(deadline),
        }
    }

    pub async fn call(&self, clients: &BackendClients, mut req: BackendRequest) -> Result<Arc<Payload>, CallError> {
        req.deadline = self.deadline;
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
