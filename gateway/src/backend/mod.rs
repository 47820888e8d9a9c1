//! The backend call path: from a rendered [`BackendRequest`] to a parsed [`Payload`].
//!
//! Each backend has one client: a stack of tower layers around an HTTP service, composed in one
//! place ([`BackendClients::new`]). Per request, a [`CallMemo`] makes identical calls once. The
//! executors use this module; it knows nothing about GraphQL.

pub mod batch;
pub mod error;
pub mod http;
pub mod memo;
pub mod payload;
pub mod request;
pub mod singleflight;

use std::sync::Arc;

use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt};

pub use error::CallError;
pub use memo::CallMemo;
pub use payload::Payload;
pub use request::{BackendRequest, CallKey};

use crate::plan::Plan;

/// The service every call goes through.
pub type BackendService = BoxCloneSyncService<BackendRequest, Arc<Payload>, CallError>;

/// The clients of all backends, indexed by [`BackendId`](crate::plan::BackendId).
#[derive(Clone)]
pub struct BackendClients {
    services: Arc<[BackendService]>,
}

/// A client could not be built (TLS setup, invalid settings).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the client of backend {backend}: {source}")]
pub struct ClientError {
    pub backend: String,
    #[source]
    pub source: reqwest::Error,
}

impl BackendClients {
    /// Builds each backend's layer stack, outermost first.
    pub fn new(plan: &Plan) -> Result<Self, ClientError> {
        let mut services = Vec::with_capacity(plan.backends.len());
        for b in &plan.backends {
            let http = http::HttpCall::new(b).map_err(|source| ClientError {
                backend: b.name.clone(),
                source,
            })?;
            let svc = ServiceBuilder::new()
                .layer(singleflight::SingleFlightLayer)
                .service(http);
            services.push(BoxCloneSyncService::new(svc));
        }
        Ok(Self {
            services: services.into(),
        })
    }

    /// Sends one call through its backend's stack.
    pub async fn call(&self, req: BackendRequest) -> Result<Arc<Payload>, CallError> {
        let svc = self.services[req.backend.0].clone();
        svc.oneshot(req).await
    }
}
