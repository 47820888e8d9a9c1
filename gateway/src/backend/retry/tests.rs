use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower::{Layer, Service, ServiceExt};

use super::{RetryLayer, RetryPolicy, RetrySettings, Throttle};
use crate::backend::error::CallError;
use crate::backend::http::CallFuture;
use crate::backend::payload::Payload;
use crate::backend::request::BackendRequest;

/// Fails the first `fail_first` calls with `error`, then succeeds.
#[derive(Clone)]
struct Flaky {
    calls: Arc<AtomicUsize>,
    fail_first: usize,
    error: CallError,
}

impl Service<BackendRequest> for Flaky {
    type Response = Arc<Payload>;
    type Error = CallError;
    type Future = CallFuture;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), CallError>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: BackendRequest) -> CallFuture {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let result = if n < self.fail_first {
            Err(self.error.clone())
        } else {
            Ok(Arc::new(Payload::new(serde_json::json!("ok"))))
        };
        Box::pin(async move { result })
    }
}

fn flaky(fail_first: usize, error: CallError) -> Flaky {
    Flaky {
        calls: Arc::new(AtomicUsize::new(0)),
        fail_first,
        error,
    }
}

fn unavailable() -> CallError {
    CallError::Status {
        status: 503,
        retry_after: None,
        body: None,
    }
}

fn layer(settings: RetrySettings) -> (RetryLayer, Arc<AtomicU64>) {
    let retries = Arc::new(AtomicU64::new(0));
    (RetryLayer::new(RetryPolicy::new(settings, retries.clone())), retries)
}

#[tokio::test(start_paused = true)]
async fn a_backend_failing_once_then_succeeding_is_retried() {
    let backend = flaky(1, unavailable());
    let (layer, retries) = layer(RetrySettings::default());
    let r = layer
        .layer(backend.clone())
        .oneshot(BackendRequest::for_test("/x"))
        .await;
    assert!(r.is_ok());
    assert_eq!(backend.calls.load(Ordering::SeqCst), 2);
    assert_eq!(retries.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn attempts_are_bounded() {
    let backend = flaky(100, unavailable());
    let (layer, _) = layer(RetrySettings {
        attempts: 3,
        budget_min_per_second: 100,
        ..RetrySettings::default()
    });
    let r = layer
        .layer(backend.clone())
        .oneshot(BackendRequest::for_test("/x"))
        .await;
    assert!(r.is_err());
    assert_eq!(backend.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn non_retryable_calls_and_client_errors_are_not_retried() {
    let backend = flaky(1, unavailable());
    let (l, _) = layer(RetrySettings::default());
    let mut post = BackendRequest::for_test("/x");
    post.method = http::Method::POST;
    post.retryable = false;
    assert!(l.layer(backend.clone()).oneshot(post).await.is_err());
    assert_eq!(backend.calls.load(Ordering::SeqCst), 1);

    let backend = flaky(
        1,
        CallError::Status {
            status: 400,
            retry_after: None,
            body: None,
        },
    );
    assert!(l
        .layer(backend.clone())
        .oneshot(BackendRequest::for_test("/x"))
        .await
        .is_err());
    assert_eq!(backend.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn the_budget_caps_retries_when_a_backend_keeps_failing() {
    let backend = flaky(usize::MAX, unavailable());
    let (layer, retries) = layer(RetrySettings {
        attempts: 5,
        budget_ratio: 0.1,
        budget_min_per_second: 0,
        ..RetrySettings::default()
    });
    let svc = layer.layer(backend.clone());
    for _ in 0..200 {
        let _ = svc.clone().oneshot(BackendRequest::for_test("/x")).await;
    }
    let calls = backend.calls.load(Ordering::SeqCst) as f64;
    assert!(
        calls / 200.0 <= 1.11,
        "amplification {} must stay near 1.1",
        calls / 200.0
    );
    assert!(retries.load(Ordering::SeqCst) <= 21);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured() {
    let backend = flaky(
        1,
        CallError::Status {
            status: 503,
            retry_after: Some(Duration::from_secs(2)),
            body: None,
        },
    );
    let (layer, _) = layer(RetrySettings::default());
    let start = tokio::time::Instant::now();
    assert!(layer
        .layer(backend)
        .oneshot(BackendRequest::for_test("/x"))
        .await
        .is_ok());
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn no_retry_past_the_request_deadline() {
    let backend = flaky(
        1,
        CallError::Status {
            status: 503,
            retry_after: Some(Duration::from_secs(2)),
            body: None,
        },
    );
    let (layer, _) = layer(RetrySettings::default());
    let mut req = BackendRequest::for_test("/x");
    req.deadline = Some(tokio::time::Instant::now() + Duration::from_secs(1));
    assert!(layer.layer(backend.clone()).oneshot(req).await.is_err());
    assert_eq!(backend.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn retries_stop_after_a_few_failures_even_with_a_full_budget() {
    // A budget banked by a healthy spell would allow hundreds of retries; the throttle stops them
    // once the backend keeps failing (10 tokens: after 5 failed attempts).
    let backend = flaky(usize::MAX, unavailable());
    let (layer, retries) = layer(RetrySettings {
        attempts: 3,
        budget_ratio: 1000.0,
        budget_min_per_second: 1000,
        ..RetrySettings::default()
    });
    let svc = layer.layer(backend.clone());
    for _ in 0..100 {
        let _ = svc.clone().oneshot(BackendRequest::for_test("/x")).await;
    }
    let calls = backend.calls.load(Ordering::SeqCst) as f64;
    assert!(
        retries.load(Ordering::SeqCst) <= 5,
        "{} retries",
        retries.load(Ordering::SeqCst)
    );
    assert!(calls / 100.0 <= 1.05, "amplification {}", calls / 100.0);
}

#[tokio::test(start_paused = true)]
async fn the_throttle_lets_retries_again_as_successes_come_back() {
    let throttle = Throttle::new(10, 0.1).expect("on");
    for _ in 0..6 {
        throttle.record(true);
    }
    assert!(!throttle.allows_retry(), "4 tokens left of 10");
    for _ in 0..20 {
        throttle.record(false);
    }
    assert!(throttle.allows_retry(), "6 tokens after 20 successes");
    assert!(Throttle::new(0, 0.1).is_none(), "0 tokens: off");
}
