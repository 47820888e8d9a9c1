//! The bulkhead: at most `max_concurrent` calls to a backend at once, a short queue behind them,
//! and beyond that an immediate `BULKHEAD_FULL` — so one slow backend cannot take every task,
//! socket and byte of memory the gateway has.
//!
//! tower's `ConcurrencyLimit` waits without bound and has no queue limit, hence this small layer.

mod layer;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::Semaphore;

pub use layer::BulkheadLayer;

use futures::future::BoxFuture;

use super::error::LayerError;
pub use crate::plan::resilience::BulkheadSettings;

/// The shared state of a backend's bulkhead.
pub struct Compartment {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    settings: BulkheadSettings,
    rejected: AtomicU64,
}

impl Compartment {
    pub fn new(settings: BulkheadSettings) -> Arc<Self> {
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(settings.max_concurrent.max(1))),
            waiting: AtomicUsize::new(0),
            settings,
            rejected: AtomicU64::new(0),
        })
    }

    /// Calls in flight, and calls rejected so far.
    pub fn counts(&self) -> (usize, u64) {
        (
            self.settings.max_concurrent.max(1) - self.slots.available_permits(),
            self.rejected.load(Ordering::Relaxed),
        )
    }
}

/// A place in the queue, given back when the call stops waiting — also when it is dropped while
/// waiting (its client gave up), so abandoned calls never fill the queue for good.
struct QueuePlace(Arc<Compartment>);

impl Drop for QueuePlace {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Clone)]
pub struct Bulkhead<S> {
    inner: S,
    compartment: Arc<Compartment>,
}

impl<S> Bulkhead<S> {
    pub fn new(inner: S, compartment: Arc<Compartment>) -> Self {
        Self { inner, compartment }
    }
}

/// Generic over the request, as tower's layers are: the bulkhead never reads it.
impl<S, R> tower::Service<R> for Bulkhead<S>
where
    S: tower::Service<R> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: LayerError,
    R: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let c = self.compartment.clone();
        // Take a slot now if there is one, so the common case does not wait.
        if let Ok(permit) = c.slots.clone().try_acquire_owned() {
            let call = self.inner.call(req);
            return Box::pin(async move {
                let r = call.await;
                drop(permit);
                r
            });
        }
        let queued = c.waiting.fetch_add(1, Ordering::SeqCst);
        if queued >= c.settings.max_queue {
            c.waiting.fetch_sub(1, Ordering::SeqCst);
            c.rejected.fetch_add(1, Ordering::Relaxed);
            return Box::pin(std::future::ready(Err(S::Error::bulkhead_full())));
        }
        // The service made ready by `poll_ready` goes into the future; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let place = QueuePlace(c.clone());
        Box::pin(async move {
            let permit = tokio::time::timeout(c.settings.queue_timeout, c.slots.clone().acquire_owned()).await;
            drop(place);
            let Ok(Ok(permit)) = permit else {
                c.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(S::Error::bulkhead_full());
            };
            let r = inner.call(req).await;
            drop(permit);
            r
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::error::CallError;
    use crate::backend::http::CallFuture;
    use crate::backend::payload::Payload;
    use crate::backend::request::BackendRequest;
    use std::time::Duration;

    use tower::ServiceExt;

    #[derive(Clone)]
    struct Slow;

    impl tower::Service<BackendRequest> for Slow {
        type Response = Arc<Payload>;
        type Error = CallError;
        type Future = CallFuture;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), CallError>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: BackendRequest) -> CallFuture {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok(Arc::new(Payload::new(serde_json::Value::Null)))
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn calls_beyond_the_slots_and_the_queue_fail_fast() {
        let c = Compartment::new(BulkheadSettings {
            max_concurrent: 2,
            max_queue: 1,
            queue_timeout: Duration::from_secs(5),
        });
        let svc = Bulkhead::new(Slow, c.clone());
        let calls: Vec<_> = (0..5)
            .map(|_| svc.clone().oneshot(BackendRequest::for_test("/x")))
            .collect();
        let results = futures::future::join_all(calls).await;
        let full = results
            .iter()
            .filter(|r| r.as_ref().err() == Some(&CallError::BulkheadFull))
            .count();
        assert_eq!(full, 2, "2 run, 1 waits, 2 are rejected");
        assert_eq!(c.counts(), (0, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn calls_dropped_while_running_or_queued_give_back_their_slot_and_place() {
        let c = Compartment::new(BulkheadSettings {
            max_concurrent: 1,
            max_queue: 1,
            queue_timeout: Duration::from_secs(5),
        });
        let svc = Bulkhead::new(Slow, c.clone());
        for _ in 0..3 {
            let running = svc.clone().oneshot(BackendRequest::for_test("/x"));
            let queued = svc.clone().oneshot(BackendRequest::for_test("/x"));
            // Both clients give up: one held the slot, the other the queue's only place.
            let _ = tokio::time::timeout(Duration::from_millis(10), futures::future::join(running, queued)).await;
            assert_eq!(c.counts().0, 0, "the slot is free again");
            assert_eq!(c.waiting.load(Ordering::SeqCst), 0, "the queue is empty again");
        }
        assert!(svc.oneshot(BackendRequest::for_test("/x")).await.is_ok());
        assert_eq!(c.counts(), (0, 0), "nothing was ever rejected");
    }

    #[tokio::test(start_paused = true)]
    async fn a_queued_call_gives_up_after_the_queue_timeout() {
        let c = Compartment::new(BulkheadSettings {
            max_concurrent: 1,
            max_queue: 5,
            queue_timeout: Duration::from_millis(100),
        });
        let svc = Bulkhead::new(Slow, c);
        let (a, b) = tokio::join!(
            svc.clone().oneshot(BackendRequest::for_test("/x")),
            svc.clone().oneshot(BackendRequest::for_test("/x"))
        );
        assert!(a.is_ok());
        assert_eq!(b.err(), Some(CallError::BulkheadFull));
    }
}
