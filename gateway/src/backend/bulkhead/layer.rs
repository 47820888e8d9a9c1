//! The [`tower::Layer`] putting a backend's [`Compartment`](super::Compartment) in front.

use std::sync::Arc;

use super::{Bulkhead, Compartment};

#[derive(Clone)]
pub struct BulkheadLayer {
    compartment: Arc<Compartment>,
}

impl BulkheadLayer {
    pub fn new(compartment: Arc<Compartment>) -> Self {
        Self { compartment }
    }
}

impl<S> tower::Layer<S> for BulkheadLayer {
    type Service = Bulkhead<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Bulkhead::new(inner, self.compartment.clone())
    }
}
