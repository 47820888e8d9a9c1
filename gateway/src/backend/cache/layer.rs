//! The [`tower::Layer`] putting the shared [`CacheStore`](super::CacheStore) in front of a backend.

use std::sync::Arc;

use super::{CacheStore, ResponseCache};

#[derive(Clone)]
pub struct CacheLayer {
    store: Arc<CacheStore>,
    backend: String,
}

impl CacheLayer {
    pub fn new(store: Arc<CacheStore>, backend: &str) -> Self {
        Self {
            store,
            backend: backend.to_string(),
        }
    }
}

impl<S> tower::Layer<S> for CacheLayer {
    type Service = ResponseCache<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ResponseCache::new(inner, self.store.clone(), &self.backend)
    }
}
