//! The response cache layer: answers of cacheable calls kept for their TTL — the field's `@cache`
//! TTL or the backend's `Cache-Control`, whichever is stricter — in memory and optionally in Redis.
//!
//! Fresh answers are served without a call; answers within stale-while-revalidate are served while
//! one background call refreshes them; answers within stale-if-error stay available to the
//! executors' fallback chain ([`BackendClients::stale`](super::BackendClients::stale)). Entries of
//! `PRIVATE` fields are keyed by the principal, and not cached without one. Concurrent misses for
//! one key make one backend call: the single-flight layer below coalesces them.

mod layer;
pub mod redis;
pub mod store;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

pub use layer::CacheLayer;
pub use store::{CacheStore, Lookup};

use self::store::Entry;
use super::error::CallError;
use super::http::CallFuture;
use super::observe::CacheOutcome;
use super::payload::Payload;
use super::request::BackendRequest;
use crate::plan::resilience::CachePolicy;

/// The key of a cacheable request, or `None` when it must not be cached.
pub fn cache_key(backend: &str, req: &BackendRequest) -> Option<Arc<str>> {
    key_text(backend, req).map(Arc::from)
}

/// [`cache_key`]'s text: looking a key up needs no `Arc`.
fn key_text(backend: &str, req: &BackendRequest) -> Option<String> {
    let policy = req.cache.as_ref()?;
    if !matches!(req.method, http::Method::GET | http::Method::HEAD) {
        return None;
    }
    let principal = match (policy.private, &req.principal) {
        (false, _) => "",
        (true, Some(p)) => p,
        (true, None) => return None,
    };
    // Pushed, not formatted: it is built on every cacheable call, hits included, and `format!`'s
    // machinery costs more than copying four slices.
    let identity = req.identity();
    let mut key = String::with_capacity(backend.len() + identity.len() + principal.len() + 3);
    key.push_str(backend);
    key.push('|');
    key.push_str(identity);
    key.push_str("\n#");
    key.push_str(principal);
    Some(key)
}

/// A fresh answer to `req` in this replica's memory, counted as a hit; `None` otherwise (nothing
/// counted: the call then goes through the cache layer, which looks again and counts what it
/// finds). What [`ResponseCache`] would answer at once, without building the call's way to it.
/// A call this does not answer pays for its key and a memory lookup twice; such a call is
/// about to go to Redis or the backend, beside which both are small.
pub fn fresh_in_memory(store: &CacheStore, backend: &str, req: &BackendRequest) -> Option<(Arc<Payload>, Instant)> {
    store.fresh_in_memory(&key_text(backend, req)?)
}

/// The start of every cache key of GET calls to `backend` whose path starts with `path`.
pub fn entry_prefix(backend: &str, path: &str) -> String {
    format!("{backend}|GET {path}")
}

/// How long an answer stays fresh: the stricter of the field's TTL and the backend's headers.
fn fresh_for(policy: &CachePolicy, payload: &Payload) -> Option<Duration> {
    let cc = payload.cache_control.unwrap_or_default();
    if cc.no_store || (cc.private && !policy.private) {
        return None;
    }
    let backend = cc.shared_ttl();
    Some(match (policy.ttl, backend) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => Duration::ZERO,
    })
}

async fn keep(store: &CacheStore, key: Arc<str>, policy: &CachePolicy, payload: &Arc<Payload>) {
    let Some(fresh) = fresh_for(policy, payload) else {
        return;
    };
    if fresh.is_zero() && policy.stale_if_error.is_zero() {
        return;
    }
    store
        .store(
            key,
            Entry {
                payload: payload.clone(),
                stored: Instant::now(),
                fresh_for: fresh,
                stale_while_revalidate: policy.stale_while_revalidate,
                stale_if_error: policy.stale_if_error,
            },
        )
        .await;
}

#[derive(Clone)]
pub struct ResponseCache<S> {
    inner: S,
    store: Arc<CacheStore>,
    backend: Arc<str>,
    refreshing: Arc<Mutex<HashSet<Arc<str>>>>,
}

impl<S> ResponseCache<S> {
    pub fn new(inner: S, store: Arc<CacheStore>, backend: &str) -> Self {
        Self {
            inner,
            store,
            backend: Arc::from(backend),
            refreshing: Arc::default(),
        }
    }
}

impl<S> tower::Service<BackendRequest> for ResponseCache<S>
where
    S: tower::Service<BackendRequest, Response = Arc<Payload>, Error = CallError, Future = CallFuture>
        + Clone
        + Send
        + 'static,
{
    type Response = Arc<Payload>;
    type Error = CallError;
    type Future = CallFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: BackendRequest) -> Self::Future {
        let Some(key) = cache_key(&self.backend, &req) else {
            return self.inner.call(req);
        };
        // A fresh answer in memory (the warm path) is served at once: no clone of the stack
        // below, nothing async.
        let decided = self.store.lookup_memory(&key);
        if let Some(Lookup::Fresh(p)) = decided {
            if let Some(n) = &req.notes {
                n.cache(CacheOutcome::Hit);
            }
            return Box::pin(std::future::ready(Ok(p)));
        }
        let store = self.store.clone();
        // The service made ready by `poll_ready` goes into the future; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let refreshing = self.refreshing.clone();
        Box::pin(async move {
            let policy = req.cache.clone().unwrap_or_default();
            let note = |outcome| {
                if let Some(n) = &req.notes {
                    n.cache(outcome);
                }
            };
            let lookup = match decided {
                Some(decided) => decided,
                None => store.lookup_shared(&key).await,
            };
            match lookup {
                Lookup::Fresh(p) => {
                    note(CacheOutcome::Hit);
                    Ok(p)
                }
                Lookup::Stale(p) => {
                    note(CacheOutcome::Stale);
                    let first = refreshing.lock().map(|mut r| r.insert(key.clone())).unwrap_or(false);
                    if first {
                        tokio::spawn(async move {
                            if let Ok(fresh) = inner.call(req).await {
                                keep(&store, key.clone(), &policy, &fresh).await;
                            }
                            if let Ok(mut r) = refreshing.lock() {
                                r.remove(&key);
                            }
                        });
                    }
                    Ok(p)
                }
                Lookup::Miss => {
                    note(CacheOutcome::Miss);
                    let result = inner.call(req).await;
                    if let Ok(p) = &result {
                        keep(&store, key, &policy, p).await;
                    }
                    result
                }
            }
        })
    }
}

#[cfg(test)]
mod tests;
