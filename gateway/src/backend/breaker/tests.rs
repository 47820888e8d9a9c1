use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower::{Service, ServiceExt};

use super::state::BreakerSettings;
use super::window::WindowKind;
use super::{Breaker, BreakerState, CircuitBreaker};
use crate::backend::error::CallError;
use crate::backend::http::CallFuture;
use crate::backend::payload::Payload;
use crate::backend::request::BackendRequest;

/// A backend whose answers the test controls, counting calls.
#[derive(Clone)]
struct Scripted {
    failing: Arc<std::sync::atomic::AtomicBool>,
    calls: Arc<AtomicUsize>,
}

impl Service<BackendRequest> for Scripted {
    type Response = Arc<Payload>;
    type Error = CallError;
    type Future = CallFuture;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), CallError>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: BackendRequest) -> CallFuture {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let fail = self.failing.load(Ordering::SeqCst);
        Box::pin(async move {
            if fail {
                Err(CallError::Status {
                    status: 503,
                    retry_after: None,
                    body: None,
                })
            } else {
                Ok(Arc::new(Payload::new(serde_json::json!(1))))
            }
        })
    }
}

fn req() -> BackendRequest {
    BackendRequest::for_test("http://b/x")
}

fn settings() -> BreakerSettings {
    BreakerSettings {
        window: WindowKind::Count(4),
        failure_rate: 0.5,
        slow_call_rate: 1.0,
        slow_call_duration: Duration::from_secs(10),
        minimum_calls: 4,
        wait_in_open: Duration::from_secs(2),
        half_open_calls: 1,
    }
}

#[tokio::test(start_paused = true)]
async fn open_breaker_fails_fast_without_calling_the_backend() {
    let backend = Scripted {
        failing: Arc::new(true.into()),
        calls: Arc::new(AtomicUsize::new(0)),
    };
    let breaker = Breaker::new("b", settings(), None, None);
    let svc = CircuitBreaker::new(backend.clone(), Some(breaker.clone()));
    for _ in 0..4 {
        assert!(svc.clone().oneshot(req()).await.is_err());
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    for _ in 0..10 {
        assert_eq!(svc.clone().oneshot(req()).await.err(), Some(CallError::CircuitOpen));
    }
    assert_eq!(
        backend.calls.load(Ordering::SeqCst),
        4,
        "no call reaches the backend while open"
    );
    assert_eq!(breaker.counts(), (1, 10));
}

#[tokio::test(start_paused = true)]
async fn breaker_recovers_through_half_open_after_the_wait() {
    let backend = Scripted {
        failing: Arc::new(true.into()),
        calls: Arc::new(AtomicUsize::new(0)),
    };
    let breaker = Breaker::new("b", settings(), None, None);
    let svc = CircuitBreaker::new(backend.clone(), Some(breaker.clone()));
    for _ in 0..4 {
        let _ = svc.clone().oneshot(req()).await;
    }
    backend.failing.store(false, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(svc.clone().oneshot(req()).await.is_ok(), "the trial call goes through");
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn client_errors_do_not_count_as_failures() {
    #[derive(Clone)]
    struct NotFound;
    impl Service<BackendRequest> for NotFound {
        type Response = Arc<Payload>;
        type Error = CallError;
        type Future = CallFuture;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), CallError>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: BackendRequest) -> CallFuture {
            Box::pin(async {
                Err(CallError::Status {
                    status: 400,
                    retry_after: None,
                    body: None,
                })
            })
        }
    }
    let breaker = Breaker::new("b", settings(), None, None);
    let svc = CircuitBreaker::new(NotFound, Some(breaker.clone()));
    for _ in 0..10 {
        let _ = svc.clone().oneshot(req()).await;
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_trial_call_frees_its_slot() {
    let mut s = settings();
    s.half_open_calls = 1;
    #[derive(Clone)]
    struct Hang;
    impl Service<BackendRequest> for Hang {
        type Response = Arc<Payload>;
        type Error = CallError;
        type Future = CallFuture;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), CallError>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: BackendRequest) -> CallFuture {
            Box::pin(std::future::pending())
        }
    }
    let breaker = Breaker::new("b", s, None, None);
    {
        let mut m = breaker.machine();
        for _ in 0..4 {
            let (p, _) = m.try_acquire(tokio::time::Instant::now());
            m.record(
                p.expect("permit"),
                super::state::Outcome {
                    weight: 1,
                    failure: true,
                    duration: Duration::ZERO,
                },
                tokio::time::Instant::now(),
            );
        }
    }
    breaker.probe_succeeded();
    let svc = CircuitBreaker::new(Hang, Some(breaker.clone()));
    let trial = svc.clone().oneshot(req());
    let _ = tokio::time::timeout(Duration::from_millis(10), trial).await;
    // The hung trial was dropped: another trial may go.
    let mut svc2 = svc.clone();
    let fut = svc2.call(req());
    drop(fut);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert!(breaker.acquire().is_some());
}
