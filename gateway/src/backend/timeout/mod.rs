//! Timeouts: each attempt gets the backend's timeout (or the field's override), never past the
//! request's deadline, which every backend call of one GraphQL request shares.

mod layer;

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

pub use layer::TimeoutLayer;

use super::error::CallError;
use super::http::CallFuture;
use super::payload::Payload;
use super::request::BackendRequest;

#[derive(Clone)]
pub struct Timeout<S> {
    inner: S,
    default: Duration,
}

impl<S> Timeout<S> {
    pub fn new(inner: S, default: Duration) -> Self {
        Self { inner, default }
    }
}

/// The time an attempt may take.
pub fn effective(default: Duration, req: &BackendRequest, now: Instant) -> Duration {
    let t = req.timeout.unwrap_or(default);
    match req.deadline {
        Some(d) => t.min(d.saturating_duration_since(now)),
        None => t,
    }
}

impl<S> tower::Service<BackendRequest> for Timeout<S>
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
        let limit = effective(self.default, &req, Instant::now());
        if limit.is_zero() {
            return Box::pin(std::future::ready(Err(CallError::Timeout)));
        }
        let call = self.inner.call(req);
        Box::pin(async move {
            match tokio::time::timeout(limit, call).await {
                Ok(r) => r,
                Err(_) => Err(CallError::Timeout),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[derive(Clone)]
    struct Slow(Duration);

    impl tower::Service<BackendRequest> for Slow {
        type Response = Arc<Payload>;
        type Error = CallError;
        type Future = CallFuture;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), CallError>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: BackendRequest) -> CallFuture {
            let d = self.0;
            Box::pin(async move {
                tokio::time::sleep(d).await;
                Ok(Arc::new(Payload::new(serde_json::Value::Null)))
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_backend_times_out_at_the_backend_timeout() {
        let svc = Timeout::new(Slow(Duration::from_secs(60)), Duration::from_millis(500));
        let start = Instant::now();
        let r = svc.oneshot(BackendRequest::for_test("http://x/")).await;
        assert_eq!(r.err(), Some(CallError::Timeout));
        assert_eq!(start.elapsed(), Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn the_field_override_and_the_request_deadline_shorten_the_timeout() {
        let svc = Timeout::new(Slow(Duration::from_secs(60)), Duration::from_secs(5));
        let mut req = BackendRequest::for_test("http://x/");
        req.timeout = Some(Duration::from_millis(200));
        let start = Instant::now();
        let _ = svc.clone().oneshot(req).await;
        assert_eq!(start.elapsed(), Duration::from_millis(200));

        let mut req = BackendRequest::for_test("http://x/");
        req.deadline = Some(Instant::now() + Duration::from_millis(50));
        let start = Instant::now();
        let _ = svc.oneshot(req).await;
        assert_eq!(start.elapsed(), Duration::from_millis(50));
    }
}
