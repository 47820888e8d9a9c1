//! The runtime: everything a running gateway holds for one configuration — the plan, the backend
//! clients, the async-graphql schema and the compiled executor — built once from a [`Plan`].
//!
//! [`Runtime::execute`] is the one entry for a GraphQL operation: the compiled executor when it
//! can run the operation, async-graphql's executor (with our resolvers) otherwise.

mod batch_loader;
mod capture;
mod complete;
mod dispatch;
mod federation;
mod fetch;
pub mod limits;
pub mod persisted;
mod request_state;
mod resolve;
pub mod resolvers;
pub mod schema;
mod subscription;

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;

pub use dispatch::{is_request_error, Executed, GraphQLRequest, OperationFilter};
pub use request_state::RequestState;
pub use resolvers::{ResolverError, ResolverInput, ResolverRegistry};

use crate::backend::{BackendClients, ClientError};
use crate::plan::Plan;

/// What resolvers and the compiled executor share: the plan, the clients, the Rust resolvers.
pub struct Engine {
    pub plan: Arc<Plan>,
    pub clients: BackendClients,
    pub resolvers: ResolverRegistry,
}

/// Why a runtime could not be built from a valid plan.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the schema could not be built: {0}")]
    Schema(String),
}

/// A ready-to-serve configuration.
pub struct Runtime {
    pub engine: Arc<Engine>,
    pub schema: async_graphql::dynamic::Schema,
    plans: dispatch::PlanCache,
    inflight: dispatch::InFlight,
    persisted: persisted::PersistedQueries,
    verifier: Option<Arc<crate::auth::verify::Verifier>>,
}

impl Runtime {
    pub fn new(plan: Plan, resolvers: ResolverRegistry) -> Result<Self, RuntimeError> {
        let plan = Arc::new(plan);
        let clients = BackendClients::new(&plan)?;
        let engine = Arc::new(Engine {
            plan: plan.clone(),
            clients,
            resolvers,
        });
        let limits = plan.limits.clone();
        let verifier = crate::auth::verify::Verifier::new(&plan.auth, &plan.config_dir)
            .map_err(|e| RuntimeError::Schema(format!("[auth]: {e}")))?;
        let introspection = plan.server.introspection;
        let schema = schema::build_schema(&plan, |b| {
            let b = b
                .data(engine.clone())
                .extension(capture::CaptureFactory { plan: plan.clone() })
                .limit_depth(limits.max_depth);
            if introspection {
                b
            } else {
                b.disable_introspection()
            }
        })
        .map_err(|e| RuntimeError::Schema(e.to_string()))?;
        Ok(Self {
            engine,
            schema,
            plans: dispatch::new_cache(limits.plan_cache_size),
            inflight: dispatch::InFlight::new(
                dispatch::MAX_COALESCED_OPERATIONS,
                crate::coalesce::Retention::UntilDone,
            ),
            verifier,
            persisted: persisted::PersistedQueries::new(
                plan.security.apq,
                plan.security.apq_cache_size,
                plan.trusted_documents.clone(),
            ),
        })
    }

    /// The token verifier, when `[auth]` configures keys.
    pub fn verifier(&self) -> Option<&Arc<crate::auth::verify::Verifier>> {
        self.verifier.as_ref()
    }

    pub fn plan(&self) -> &Plan {
        &self.engine.plan
    }

    /// Runs an operation on async-graphql's executor with our resolvers.
    pub async fn execute_dynamic(
        &self,
        request: async_graphql::Request,
        headers: http::HeaderMap,
    ) -> async_graphql::Response {
        let (request, state) = self.dynamic_request(request, headers);
        let mut response = self.schema.execute(request).await;
        state.finish(&mut response);
        response
    }

    /// Attaches the per-request state (call memo, batch loader, recorded errors) to a request.
    fn dynamic_request(
        &self,
        request: async_graphql::Request,
        headers: http::HeaderMap,
    ) -> (async_graphql::Request, Arc<RequestState>) {
        let principal = crate::exec::principal(&self.engine.plan, &headers);
        let state = Arc::new(RequestState::new(
            headers.clone(),
            self.engine.plan.limits.request_timeout.0,
            principal,
        ));
        let loader = DataLoader::new(
            batch_loader::BatchLoader::new(
                self.engine.plan.clone(),
                self.engine.clients.clone(),
                state.clone(),
                headers,
            ),
            // Batch loads run in tasks of their own: they keep the request's log span (its ids).
            |load| tokio::spawn(tracing::Instrument::in_current_span(load)),
        );
        (request.data(state.clone()).data(loader), state)
    }

    /// The public SDL: types only, no directive, backend or binding detail.
    pub fn public_sdl(&self) -> String {
        self.schema.sdl()
    }

    /// What `_service { sdl }` serves: the subgraph SDL with its federation directives (`None`
    /// without `[federation] enabled`).
    pub fn subgraph_sdl(&self) -> Option<String> {
        self.plan().federation.as_ref()?;
        Some(
            self.schema
                .sdl_with_options(async_graphql::SDLExportOptions::new().federation()),
        )
    }
}
