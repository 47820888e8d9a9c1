//! The [`tower::Layer`] adding [`Timeout`](super::Timeout).

use std::time::Duration;

use super::Timeout;

#[derive(Clone, Copy, Debug)]
pub struct TimeoutLayer {
    default: Duration,
}

impl TimeoutLayer {
    pub fn new(default: Duration) -> Self {
        Self { default }
    }
}

impl<S> tower::Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Timeout::new(inner, self.default)
    }
}
