//! What every service has in common: the admin endpoints (`/health`,
//! `/_stats`, `/_faults`, `/openapi.json`), the middleware that counts and
//! faults business requests, JSON fallbacks, and serving with graceful stop.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use utoipa::{OpenApi, ToSchema};

use super::conn::{ConnHandle, KillableListener};
use super::error::{self, ApiError, ApiJson, ErrorBody};
use super::faults::{self, FaultState, Faults, FaultsPatch};
use super::stats::{Stats, StatsSnapshot};

/// Per-service control state shared by the admin endpoints and the middleware.
#[derive(Debug)]
pub struct Control {
    pub faults: FaultState,
    pub stats: Stats,
    pub shutdown: watch::Receiver<bool>,
    openapi: String,
}

impl Control {
    pub fn new(shutdown: watch::Receiver<bool>, openapi: utoipa::openapi::OpenApi) -> Arc<Self> {
        let openapi = openapi
            .merge_from(AdminDoc::openapi())
            .to_json()
            .unwrap_or_else(|e| format!(r#"{{"error":"openapi: {e}"}}"#));
        Arc::new(Self {
            faults: FaultState::default(),
            stats: Stats::default(),
            shutdown,
            openapi,
        })
    }
}

/// The admin endpoints' part of every service's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(health, get_stats, reset_stats, get_faults, put_faults, reset_faults),
    components(schemas(Health, StatsSnapshot, Faults, FaultsPatch, ErrorBody))
)]
struct AdminDoc;

/// Builds a service's router: `business` routes get stats and faults,
/// `admin` routes (service specific, e.g. `/_config`) and the common admin
/// endpoints get neither.
pub fn build(control: Arc<Control>, business: Router, admin: Router) -> Router {
    let common = Router::new()
        .route("/health", get(health))
        .route("/_stats", get(get_stats))
        .route("/_stats/reset", post(reset_stats))
        .route("/_faults", get(get_faults).put(put_faults))
        .route("/_faults/reset", post(reset_faults))
        .route("/openapi.json", get(openapi))
        .with_state(control.clone());
    business
        .route_layer(middleware::from_fn_with_state(control, count_and_fault))
        .merge(common)
        .merge(admin)
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
}

/// Counts a business request by `METHOD /template`, then applies the faults.
async fn count_and_fault(State(control): State<Arc<Control>>, req: Request, next: Next) -> Response {
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    control.stats.record(format!("{} {}", req.method(), template));
    let faults = control.faults.get();
    if let Some(response) = faults::intercept(&faults, &control.shutdown).await {
        return response;
    }
    next.run(req).await
}

/// Serves `app` on `listener` until the shutdown flag is raised.
pub async fn serve(listener: TcpListener, app: Router, shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(faults::shutdown_signalled(shutdown))
        .await
}

/// Like [`serve`], but every connection carries a
/// [`ConnHandle`](super::conn::ConnHandle) (as `ConnectInfo`) that a
/// handler can use to cut it, and has `send_buffer` as `SO_SNDBUF` if set.
pub async fn serve_killable(
    listener: TcpListener,
    send_buffer: Option<usize>,
    app: Router,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let app = app.into_make_service_with_connect_info::<ConnHandle>();
    axum::serve(KillableListener { listener, send_buffer }, app)
        .with_graceful_shutdown(faults::shutdown_signalled(shutdown))
        .await
}

/// The `/health` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `down` when the `down` fault is on.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness.
#[utoipa::path(get, path = "/health", tag = "admin", responses(
    (status = 200, description = "Up", body = Health),
    (status = 503, description = "The `down` fault is on", body = Health),
))]
async fn health(State(control): State<Arc<Control>>) -> Response {
    if control.faults.is_down() {
        (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "down" })).into_response()
    } else {
        Json(Health { status: "ok" }).into_response()
    }
}

/// Business requests per endpoint template since the last reset.
#[utoipa::path(get, path = "/_stats", tag = "admin", responses(
    (status = 200, description = "Counters", body = StatsSnapshot),
))]
async fn get_stats(State(control): State<Arc<Control>>) -> Json<StatsSnapshot> {
    Json(control.stats.snapshot())
}

/// Zeroes the counters.
#[utoipa::path(post, path = "/_stats/reset", tag = "admin", responses(
    (status = 204, description = "Reset"),
))]
async fn reset_stats(State(control): State<Arc<Control>>) -> StatusCode {
    control.stats.reset();
    StatusCode::NO_CONTENT
}

/// The faults in force.
#[utoipa::path(get, path = "/_faults", tag = "admin", responses(
    (status = 200, description = "Faults", body = Faults),
))]
async fn get_faults(State(control): State<Arc<Control>>) -> Json<Faults> {
    Json(control.faults.get())
}

/// Sets some faults; fields left out keep their value.
#[utoipa::path(put, path = "/_faults", tag = "admin", request_body = FaultsPatch, responses(
    (status = 200, description = "The faults now in force", body = Faults),
    (status = 400, description = "Invalid value", body = ErrorBody),
))]
async fn put_faults(
    State(control): State<Arc<Control>>,
    ApiJson(patch): ApiJson<FaultsPatch>,
) -> Result<Json<Faults>, ApiError> {
    let faults = control.faults.apply(patch)?;
    tracing::info!(?faults, "faults changed");
    Ok(Json(faults))
}

/// Clears all faults.
#[utoipa::path(post, path = "/_faults/reset", tag = "admin", responses(
    (status = 204, description = "Cleared"),
))]
async fn reset_faults(State(control): State<Arc<Control>>) -> StatusCode {
    control.faults.reset();
    StatusCode::NO_CONTENT
}

/// The service's OpenAPI 3 document.
async fn openapi(State(control): State<Arc<Control>>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        control.openapi.clone(),
    )
        .into_response()
}
