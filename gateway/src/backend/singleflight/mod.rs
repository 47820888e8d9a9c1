//! Single-flight: identical idempotent calls in flight at the same moment share one backend call.
//!
//! A tower layer over the [`Coalescer`](crate::coalesce::Coalescer). The first caller for a
//! [`CallKey`] starts the call; callers arriving before it ends wait for the same result (errors
//! included). The entry is removed when the call ends, so this never serves stale data (caching is
//! a separate layer), and when every caller has given up the call is cancelled, releasing what it
//! holds below (bulkhead permit, breaker slot, connection). Only requests marked `coalesce`
//! (idempotent by default) take part.

mod layer;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

pub use layer::SingleFlightLayer;

use super::error::CallError;
use super::http::CallFuture;
use super::payload::Payload;
use super::request::{BackendRequest, CallKey};
use crate::coalesce::{Coalescer, Retention, Role};

/// Most distinct calls coalesced at once per backend; beyond, calls go out uncoalesced.
const MAX_FLIGHTS: usize = 16_384;

/// The single-flight service around `S`.
#[derive(Clone)]
pub struct SingleFlight<S> {
    inner: S,
    /// With each flight, how many client requests wait for it (the breaker counts them).
    flights: Coalescer<CallKey, Result<Arc<Payload>, CallError>, Arc<AtomicU32>>,
}

impl<S> SingleFlight<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            flights: Coalescer::new(MAX_FLIGHTS, Retention::UntilDone),
        }
    }
}

impl<S> tower::Service<BackendRequest> for SingleFlight<S>
where
    S: tower::Service<BackendRequest, Response = Arc<Payload>, Error = CallError>,
    S::Future: Send + 'static,
{
    type Response = Arc<Payload>;
    type Error = CallError;
    type Future = CallFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: BackendRequest) -> Self::Future {
        if !req.coalesce {
            return Box::pin(self.inner.call(req));
        }
        let key = req.call_key();
        let notes = req.notes.clone();
        let mine = req.waiting();
        let waiters = req.waiters.get_or_insert_with(|| Arc::new(AtomicU32::new(1))).clone();
        let inner = &mut self.inner;
        let (joined, role) = self.flights.join(key, waiters, || inner.call(req));
        if let Role::Follower(leader) = role {
            leader.fetch_add(mine, Ordering::Relaxed);
            if let Some(notes) = notes {
                notes.coalesced();
            }
        }
        Box::pin(joined)
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
