//! The [`tower::Layer`] putting a backend's [`Breaker`](super::Breaker) in front of a service.

use std::sync::Arc;

use super::{Breaker, CircuitBreaker};

/// `None` (breaker disabled for the backend) passes calls straight through.
#[derive(Clone)]
pub struct CircuitBreakerLayer {
    breaker: Option<Arc<Breaker>>,
}

impl CircuitBreakerLayer {
    pub fn new(breaker: Option<Arc<Breaker>>) -> Self {
        Self { breaker }
    }
}

impl<S> tower::Layer<S> for CircuitBreakerLayer {
    type Service = CircuitBreaker<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker::new(inner, self.breaker.clone())
    }
}
