//! Single-flight: identical idempotent calls in flight at the same moment share one backend call.
//!
//! A tower layer. The first caller for a [`CallKey`] starts the call; callers arriving before it
//! ends wait for the same result (errors included). The entry is removed when the call ends, so
//! this never serves stale data: caching is a separate layer. Only requests marked `coalesce`
//! (idempotent by default) take part.
//!
//! Written here rather than taken from a crate: the well-kept options key by a type they own or
//! cache results after completion; this is thirty lines over `futures::Shared`.

mod layer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::future::{FutureExt, Shared};

pub use layer::SingleFlightLayer;

use super::error::CallError;
use super::http::CallFuture;
use super::payload::Payload;
use super::request::{BackendRequest, CallKey};

type SharedCall = Shared<CallFuture>;

/// The single-flight service around `S`.
#[derive(Clone)]
pub struct SingleFlight<S> {
    inner: S,
    inflight: Arc<Mutex<HashMap<CallKey, SharedCall>>>,
}

impl<S> SingleFlight<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            inflight: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

impl<S> tower::Service<BackendRequest> for SingleFlight<S>
where
    S: tower::Service<BackendRequest, Response = Arc<Payload>, Error = CallError, Future = CallFuture>,
{
    type Response = Arc<Payload>;
    type Error = CallError;
    type Future = CallFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: BackendRequest) -> Self::Future {
        if !req.coalesce {
            return self.inner.call(req);
        }
        let key = req.call_key();
        let mut map = match self.inflight.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(shared) = map.get(&key) {
            if let Some(notes) = &req.notes {
                notes.coalesced();
            }
            return Box::pin(shared.clone());
        }
        let call = self.inner.call(req);
        let inflight = self.inflight.clone();
        let owned_key = key.clone();
        let shared: SharedCall = (Box::pin(async move {
            let result = call.await;
            let mut map = match inflight.lock() {
                Ok(m) => m,
                Err(poisoned) => poisoned.into_inner(),
            };
            map.remove(&owned_key);
            result
        }) as CallFuture)
            .shared();
        map.insert(key, shared.clone());
        Box::pin(shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::{Service, ServiceExt};

    #[derive(Clone)]
    struct Counting(Arc<AtomicUsize>);

    impl Service<BackendRequest> for Counting {
        type Response = Arc<Payload>;
        type Error = CallError;
        type Future = CallFuture;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), CallError>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: BackendRequest) -> CallFuture {
            let n = self.0.clone();
            Box::pin(async move {
                n.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                Ok(Arc::new(Payload::new(serde_json::json!(1))))
            })
        }
    }

    fn req(url: &str, coalesce: bool) -> BackendRequest {
        let mut r = BackendRequest::for_test(url);
        r.coalesce = coalesce;
        r
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_identical_calls_share_one_backend_call() {
        let count = Arc::new(AtomicUsize::new(0));
        let svc = SingleFlight::new(Counting(count.clone()));
        let calls = (0..10).map(|_| svc.clone().oneshot(req("http://x/a", true)));
        let results = futures::future::join_all(calls).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(count.load(Ordering::SeqCst), 1);
        // Once finished, a new call goes to the backend again.
        svc.clone().oneshot(req("http://x/a", true)).await.expect("ok");
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn calls_not_marked_for_coalescing_are_all_made() {
        let count = Arc::new(AtomicUsize::new(0));
        let svc = SingleFlight::new(Counting(count.clone()));
        let calls = (0..3).map(|_| svc.clone().oneshot(req("http://x/a", false)));
        futures::future::join_all(calls).await;
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }
}
