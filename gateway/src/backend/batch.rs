//! Batched calls: the keys of many parents sent as one request (or one per `maxSize` keys, in
//! parallel), and each key's items found in the answers.
//!
//! Shared by both executors so they make the same calls and match the same way.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::payload::key_text;
use super::request::render;
use super::{BackendClients, CallError, CallFailure, CallMemo, Payload};
use crate::plan::template::RenderContext;
use crate::plan::{Binding, Plan};

/// The answers of one batched field for a set of keys.
pub struct BatchAnswers {
    /// One entry per chunk of keys, in order.
    pub chunks: Vec<Result<Arc<Payload>, CallFailure>>,
    /// Keys per chunk.
    pub chunk_size: usize,
}

impl BatchAnswers {
    /// The number of chunks (requests) the batch was sent as.
    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }
}

/// Where one key's items are.
pub enum KeyItems<'a> {
    /// The key's items; `stale_after` when they come from a stale answer served after a failure.
    Found {
        payload: &'a Arc<Payload>,
        indices: std::borrow::Cow<'a, [u32]>,
        stale_after: Option<&'a CallError>,
    },
    Failed(&'a CallError),
}

impl BatchAnswers {
    /// The items for the key at position `pos` of the key list the batch was made with.
    pub fn items_for(&self, binding: &Binding, pos: usize, key: &str) -> KeyItems<'_> {
        let none = KeyItems::Found {
            payload: empty(),
            indices: std::borrow::Cow::Borrowed(&[]),
            stale_after: None,
        };
        if binding.batch.is_none() {
            return none;
        }
        let (payload, stale_after) = match self.chunks.get(pos / self.chunk_size.max(1)) {
            Some(Ok(p)) => (p, None),
            Some(Err(CallFailure {
                error,
                stale: Some(stale),
            })) => (stale, Some(error)),
            Some(Err(f)) => return KeyItems::Failed(&f.error),
            None => return none,
        };
        KeyItems::Found {
            payload,
            indices: payload.key_indices(binding, key),
            stale_after,
        }
    }
}

fn empty() -> &'static Arc<Payload> {
    static EMPTY: std::sync::OnceLock<Arc<Payload>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| Arc::new(Payload::new(Value::Null)))
}

/// What a batch needs from the request that makes it.
pub struct RequestScope<'a> {
    pub plan: &'a Plan,
    pub clients: &'a BackendClients,
    pub memo: &'a CallMemo,
    pub headers: &'a http::HeaderMap,
    pub claims: Option<&'a Value>,
}

/// Sends the batch for `keys` (already deduplicated and sorted), split by the rule's `max_size`.
pub async fn call_batch(
    scope: &RequestScope<'_>,
    binding: &Binding,
    args: &Map<String, Value>,
    keys: &[&Value],
) -> BatchAnswers {
    let RequestScope {
        plan,
        clients,
        memo,
        headers,
        claims,
    } = *scope;
    let chunk_size = binding.batch.as_ref().map_or(usize::MAX, |r| r.max_size.max(1));
    let backend = plan.backend(binding.backend);
    let ctx = RenderContext {
        args,
        parent: None,
        headers,
        claims,
    };
    let calls = keys.chunks(chunk_size).map(|chunk| {
        crate::telemetry::metrics::batch_size(&backend.name, chunk.len());
        let req = render(binding, backend, &ctx, Some(chunk));
        async move {
            match req {
                Ok(req) => memo.call(clients, req).await,
                Err(e) => Err(CallError::from(e).into()),
            }
        }
    });
    BatchAnswers {
        chunks: futures::future::join_all(calls).await,
        chunk_size,
    }
}

/// The text of a parent's batch key, if it has one.
pub fn parent_key<'v>(binding: &Binding, parent: &'v Value) -> Option<(std::borrow::Cow<'v, str>, &'v Value)> {
    let rule = binding.batch.as_ref()?;
    let v = rule.parent_key.get(parent)?;
    key_text(v).map(|k| (k, v))
}
