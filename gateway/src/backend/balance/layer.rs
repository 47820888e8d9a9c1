//! The [`tower::Layer`] balancing over a backend's [`InstanceSet`](super::InstanceSet).

use std::sync::Arc;

use super::{Balance, InstanceSet};

#[derive(Clone)]
pub struct BalanceLayer {
    set: Arc<InstanceSet>,
}

impl BalanceLayer {
    pub fn new(set: Arc<InstanceSet>) -> Self {
        Self { set }
    }
}

impl<S> tower::Layer<S> for BalanceLayer {
    type Service = Balance<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Balance::new(inner, self.set.clone())
    }
}
