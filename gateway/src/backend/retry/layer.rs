//! The [`tower::Layer`] adding retries with a backend's [`RetryPolicy`](super::RetryPolicy); it
//! boxes tower's `Retry` future so the stack keeps one future type.

use std::sync::Arc;
use std::task::{Context, Poll};

use super::RetryPolicy;
use crate::backend::error::CallError;
use crate::backend::http::CallFuture;
use crate::backend::payload::Payload;
use crate::backend::request::BackendRequest;

#[derive(Clone)]
pub struct RetryLayer {
    policy: RetryPolicy,
}

impl RetryLayer {
    pub fn new(policy: RetryPolicy) -> Self {
        Self { policy }
    }
}

impl<S> tower::Layer<S> for RetryLayer {
    type Service = Retrying<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Retrying {
            inner: tower::retry::Retry::new(self.policy.clone(), inner),
        }
    }
}

/// tower's `Retry` with a boxed future.
#[derive(Clone)]
pub struct Retrying<S> {
    inner: tower::retry::Retry<RetryPolicy, S>,
}

impl<S> tower::Service<BackendRequest> for Retrying<S>
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
        Box::pin(self.inner.call(req))
    }
}
