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

/// Calls made so far by one request.
#[derive(Default)]
pub struct CallMemo {
    calls: Mutex<HashMap<CallKey, Shared<CallFuture>>>,
}

impl CallMemo {
    pub async fn call(&self, clients: &BackendClients, req: BackendRequest) -> Result<Arc<Payload>, CallError> {
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
