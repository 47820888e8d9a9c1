//! Batched calls: the keys of many parents sent as one request (or one per `maxSize` keys, in
//! parallel), and each key's items found in the answers.
//!
//! Shared by both executors so they make the same calls and match the same way.

use serde_json::{Map, Value};

pub use super::call::{reply, Failed, Reply, RequestScope};
use super::payload::{key_text, Answer};
use super::request::render;
use super::CallError;
use crate::plan::template::RenderContext;
use crate::plan::Binding;

/// The answers of one batched field for a set of keys.
pub struct BatchAnswers {
    /// One entry per chunk of keys, in order.
    pub chunks: Vec<Result<Answer, Failed>>,
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
        answer: &'a Answer,
        indices: &'a [u32],
        stale_after: Option<&'a CallError>,
    },
    /// No answer holds the key.
    None,
    Failed(&'a CallError),
}

impl BatchAnswers {
    /// The items for the key at position `pos` of the key list the batch was made with.
    pub fn items_for(&self, binding: &Binding, pos: usize, key: &str) -> KeyItems<'_> {
        if binding.batch.is_none() {
            return KeyItems::None;
        }
        let (answer, stale_after) = match self.chunks.get(pos / self.chunk_size.max(1)) {
            Some(Ok(a)) => (a, None),
            Some(Err(Failed {
                error,
                stale: Some(stale),
            })) => (stale, Some(error)),
            Some(Err(f)) => return KeyItems::Failed(&f.error),
            None => return KeyItems::None,
        };
        KeyItems::Found {
            answer,
            indices: answer.key_indices(binding, key),
            stale_after,
        }
    }
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
        key: None,
    };
    let calls = keys.chunks(chunk_size).map(|chunk| {
        crate::telemetry::metrics::batch_size(&backend.name, chunk.len());
        let req = render(binding, backend, &ctx, Some(chunk));
        async move {
            let r = match req {
                Ok(req) => reply(memo.call(clients, req).await, binding),
                Err(e) => Err(Failed::from(CallError::from(e))),
            };
            if let Err(f) = &r {
                super::call::log_failure(plan, binding, f);
            }
            r
        }
    });
    BatchAnswers {
        chunks: futures::future::join_all(calls).await,
        chunk_size,
    }
}

/// One key of a parent: its text (what matching compares) and its JSON value (what is sent).
pub type ParentKey<'v> = (std::borrow::Cow<'v, str>, std::borrow::Cow<'v, Value>);

/// The keys of one parent, in order; one key (the common case) is held without allocating.
pub enum ParentKeys<'v> {
    One([ParentKey<'v>; 1]),
    Many(Vec<ParentKey<'v>>),
}

impl<'v> std::ops::Deref for ParentKeys<'v> {
    type Target = [ParentKey<'v>];

    fn deref(&self) -> &Self::Target {
        match self {
            ParentKeys::One(one) => one,
            ParentKeys::Many(many) => many,
        }
    }
}

/// The keys a parent holds under `from` (a key, or a list of keys), with their text, in order.
pub fn parent_keys<'v>(from: &crate::plan::mapping::Mapping, parent: &'v Value) -> ParentKeys<'v> {
    use std::borrow::Cow;
    let none = || ParentKeys::Many(Vec::new());
    let Ok(Some(v)) = from.eval(parent, None) else {
        return none();
    };
    let owned = |k: Cow<'_, str>| Cow::Owned(k.into_owned());
    match v {
        Cow::Borrowed(Value::Array(items)) => ParentKeys::Many(
            items
                .iter()
                .filter_map(|i| key_text(i).map(|k| (k, Cow::Borrowed(i))))
                .collect(),
        ),
        Cow::Owned(Value::Array(items)) => ParentKeys::Many(
            items
                .into_iter()
                .filter_map(|i| key_text(&i).map(|k| (owned(k), Cow::Owned(i.clone()))))
                .collect(),
        ),
        Cow::Borrowed(one) => match key_text(one) {
            Some(k) => ParentKeys::One([(k, Cow::Borrowed(one))]),
            None => none(),
        },
        Cow::Owned(one) => match key_text(&one) {
            Some(k) => ParentKeys::One([(owned(k), Cow::Owned(one.clone()))]),
            None => none(),
        },
    }
}
