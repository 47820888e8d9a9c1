//! The HTTP server: the GraphQL endpoint, the playground, probes; graceful shutdown.
//!
//! [`router`] composes the routes in one place; the current [`Runtime`] is held in an
//! [`AppState`] so a reload can swap it atomically while in-flight requests finish on the old one.

pub mod graphql;
pub mod playground;
pub mod subscriptions;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::runtime::Runtime;

/// Shared by every handler.
pub struct AppState {
    runtime: ArcSwap<Runtime>,
    ready: AtomicBool,
    default_query: String,
    started: std::time::Instant,
    subscriptions: subscriptions::SubscriptionLimits,
    websockets: std::sync::atomic::AtomicI64,
}

impl AppState {
    pub fn new(runtime: Arc<Runtime>) -> Self {
        let l = &runtime.plan().limits;
        let subscriptions = subscriptions::SubscriptionLimits {
            max_total: Arc::new(tokio::sync::Semaphore::new(l.max_subscriptions.max(1))),
            per_connection: l.max_subscriptions_per_connection.max(1),
            init_timeout: l.ws_init_timeout.0,
            slow_subscriber_timeout: l.slow_subscriber_timeout.0,
            max_message_bytes: l.max_ws_message_bytes,
        };
        Self {
            subscriptions,
            websockets: std::sync::atomic::AtomicI64::new(0),
            runtime: ArcSwap::new(runtime),
            ready: AtomicBool::new(false),
            default_query: String::new(),
            started: std::time::Instant::now(),
        }
    }

    /// The query the playground opens with.
    pub fn with_default_query(mut self, q: impl Into<String>) -> Self {
        self.default_query = q.into();
        self
    }

    /// The runtime serving new requests.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Swaps in a new runtime; requests in flight finish on the old one.
    pub fn replace_runtime(&self, runtime: Arc<Runtime>) {
        self.runtime.store(runtime);
    }

    pub fn subscription_limits(&self) -> subscriptions::SubscriptionLimits {
        self.subscriptions.clone()
    }

    /// Counts open WebSocket connections.
    pub fn metrics_ws(&self, delta: i64) {
        self.websockets.fetch_add(delta, Ordering::Relaxed);
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
}

/// All routes.
pub fn router(state: Arc<AppState>) -> Router {
    let runtime = state.runtime();
    let plan = runtime.plan();
    let path = plan.server.graphql_path.clone();
    let mut router = Router::new()
        .route(&path, get(graphql::get).post(graphql::post))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/healthz", get(healthz));
    if plan.server.playground {
        router = router
            .route("/", get(playground_page))
            .route("/playground/{name}", get(playground::asset));
    }
    router
        .layer(DefaultBodyLimit::max(plan.limits.max_body_bytes))
        .with_state(state)
}

async fn playground_page(State(app): State<Arc<AppState>>) -> Response {
    let path = app.runtime().plan().server.graphql_path.clone();
    playground::page(&path, &app.default_query).into_response()
}

async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    if app.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

/// `/healthz`: version, uptime, and each backend's breaker, bulkhead and instances.
async fn healthz(State(app): State<Arc<AppState>>) -> Response {
    let runtime = app.runtime();
    let body = serde_json::json!({
        "status": if app.ready.load(Ordering::SeqCst) { "ready" } else { "not ready" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": app.started.elapsed().as_secs(),
        "websocket_connections": app.websockets.load(Ordering::Relaxed),
        "backends": runtime.engine.clients.status(),
    });
    axum::Json(body).into_response()
}

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    state.set_ready(true);
    let result = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    state.set_ready(false);
    result
}
