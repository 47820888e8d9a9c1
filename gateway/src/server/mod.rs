//! The HTTP server: the GraphQL endpoint, the playground, probes; graceful shutdown.
//!
//! [`app`] composes the routes in one place; the current [`Runtime`] is held in an
//! [`AppState`] so a reload can swap it atomically while in-flight requests finish on the old one.

pub mod auth;
pub mod graphql;
pub mod playground;
pub mod rate_limit;
pub mod reload;
pub mod shared_buckets;
pub mod subscriptions;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use tower::ServiceExt as _;
use tracing::Instrument;

use crate::runtime::Runtime;
use crate::telemetry::{
    self,
    trace_context::{self, TraceContext},
};

/// Shared by every handler.
pub struct AppState {
    runtime: ArcSwap<Runtime>,
    ready: AtomicBool,
    default_query: String,
    started: std::time::Instant,
    subscriptions: subscriptions::SubscriptionLimits,
    websockets: std::sync::atomic::AtomicI64,
    /// Turns true when the listeners close: WebSocket connections are told to go away.
    closing: tokio::sync::watch::Sender<bool>,
    /// Rebuilt when a reload changes `[rate_limit]` (the buckets then start full).
    limiter: arc_swap::ArcSwapOption<rate_limit::Limiter>,
    /// The current `[security] cors_*`, rebuilt with every runtime.
    cors: arc_swap::ArcSwapOption<tower_http::cors::CorsLayer>,
    /// Where spans go, when traces are exported.
    tracer: Option<Arc<telemetry::traces::Tracer>>,
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
            max_connections: l.max_ws_connections,
        };
        Self {
            subscriptions,
            websockets: std::sync::atomic::AtomicI64::new(0),
            closing: tokio::sync::watch::channel(false).0,
            limiter: arc_swap::ArcSwapOption::new(rate_limit::Limiter::new(&runtime.plan().rate_limit)),
            cors: arc_swap::ArcSwapOption::new(cors(runtime.plan()).map(Arc::new)),
            tracer: None,
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

    /// Exports the spans of sampled requests through `tracer`.
    pub fn with_tracer(mut self, tracer: Option<Arc<telemetry::traces::Tracer>>) -> Self {
        self.tracer = tracer;
        self
    }

    pub fn tracer(&self) -> Option<&Arc<telemetry::traces::Tracer>> {
        self.tracer.as_ref()
    }

    /// The runtime serving new requests.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Swaps in a new runtime; requests in flight finish on the old one. A changed
    /// `[rate_limit]` takes effect with it.
    pub fn replace_runtime(&self, runtime: Arc<Runtime>) {
        let current = self.runtime.load();
        let (old, new) = (&current.plan().rate_limit, &runtime.plan().rate_limit);
        let settings = |r: &crate::config::settings::RateLimitToml| {
            (
                r.requests_per_second,
                r.burst,
                r.key.get_ref().clone(),
                r.redis_url.get_ref().clone(),
                r.redis_key_prefix.clone(),
                r.redis_timeout.0,
            )
        };
        let changed = settings(old) != settings(new);
        if changed {
            self.limiter.store(rate_limit::Limiter::new(new));
        }
        self.cors.store(cors(runtime.plan()).map(Arc::new));
        self.runtime.store(runtime);
    }

    pub fn subscription_limits(&self) -> subscriptions::SubscriptionLimits {
        self.subscriptions.clone()
    }

    /// Counts open WebSocket connections.
    pub fn metrics_ws(&self, delta: i64) {
        self.websockets.fetch_add(delta, Ordering::Relaxed);
        telemetry::metrics::websockets(delta as f64);
    }

    pub fn limiter(&self) -> Option<Arc<rate_limit::Limiter>> {
        self.limiter.load_full()
    }

    /// Open WebSocket connections.
    pub fn websocket_count(&self) -> i64 {
        self.websockets.load(Ordering::Relaxed)
    }

    /// Resolves when the gateway stops serving (WebSocket connections close then).
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    fn begin_shutdown(&self) {
        let _ = self.closing.send(true);
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
}

/// Per request: the trace context (its ids on every log line, the request id in a response
/// header, the trace passed on to backends), the in-flight gauge, and the request's server span
/// when the trace is recorded (probes are not traced). `route` is the route's pattern, for the
/// span's name.
async fn observe<F, Fut>(app: &AppState, request: Request, route: Option<&str>, inner: F) -> Response
where
    F: FnOnce(Request) -> Fut + Send + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let ctx = Arc::new(TraceContext::from_headers(request.headers(), app.tracer()));
    // Every line logged while serving the request carries these.
    let span = tracing::info_span!("request", request_id = %ctx.request_id, trace_id = %ctx.trace_id, path = %request.uri().path());
    let traced = ctx
        .tracer
        .as_ref()
        .filter(|_| !matches!(request.uri().path(), "/livez" | "/readyz" | "/healthz"))
        .map(|_| {
            (
                std::time::SystemTime::now(),
                request.method().clone(),
                route.map(str::to_string),
                request.uri().path().to_string(),
            )
        });
    let request_id = ctx.request_id.clone();
    let mut response = {
        let _in_flight = telemetry::metrics::InFlight::start();
        trace_context::scope(ctx.clone(), apply_cors(app, request, inner).instrument(span)).await
    };
    if let (Some(tracer), Some((start, method, route, path))) = (&ctx.tracer, traced) {
        record_server_span(tracer, &ctx, start, &method, route.as_deref(), &path, response.status());
    }
    if let Ok(v) = axum::http::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// Records the server span of one traced request.
fn record_server_span(
    tracer: &telemetry::traces::Tracer,
    ctx: &TraceContext,
    start: std::time::SystemTime,
    method: &http::Method,
    route: Option<&str>,
    path: &str,
    status: http::StatusCode,
) {
    use telemetry::otlp::encode::{Attribute, SpanKind, SpanRecord};
    let error = status.is_server_error().then(|| format!("HTTP {}", status.as_u16()));
    let name: &[&str] = match route {
        Some(route) => &[method.as_str(), " ", route],
        None => &[method.as_str()],
    };
    tracer.record(
        ctx.trace_id,
        &SpanRecord {
            name,
            kind: SpanKind::Server,
            span_id: ctx.span_id,
            parent_span_id: ctx.parent_span_id.unwrap_or(0),
            parent_is_remote: ctx.parent_span_id.is_some(),
            start,
            end: std::time::SystemTime::now(),
            attributes: &[
                Some(Attribute::str("http.request.method", method.as_str())),
                Some(Attribute::str("url.path", path)),
                Some(Attribute::i64("http.response.status_code", i64::from(status.as_u16()))),
                Some(Attribute::str("mosaic.request_id", &ctx.request_id)),
                route.map(|r| Attribute::str("http.route", r)),
            ],
            error: error.as_deref(),
            links: &[],
        },
    );
}

/// The gateway's HTTP service: [`edge`] around every request; the GraphQL endpoint behind
/// [`admit`], answered here without the router; the other routes (probes, playground) through
/// an axum [`Router`].
///
/// The GraphQL endpoint bypasses the router because it is the hot path: axum clones a route's
/// whole boxed stack per request, and boxes a future per `from_fn` layer. Under `perf`, on a
/// seen-before flat query (`mosaic-bench --query flat`), routing and the two middleware layers
/// took about 4 % of the gateway's CPU.
#[derive(Clone)]
pub struct Gateway {
    state: Arc<AppState>,
    graphql_path: Arc<str>,
    routes: Router,
}

/// The gateway's HTTP service (see [`Gateway`]).
pub fn app(state: Arc<AppState>) -> Gateway {
    let runtime = state.runtime();
    let plan = runtime.plan();
    let mut routes = Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/healthz", get(healthz));
    if plan.server.playground {
        routes = routes
            .route("/", get(playground_page))
            .route("/playground/{name}", get(playground::asset));
    }
    let routes = routes
        .layer(DefaultBodyLimit::max(plan.limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), edge_layer))
        .with_state(state.clone());
    Gateway {
        graphql_path: plan.server.graphql_path.as_str().into(),
        state,
        routes,
    }
}

impl tower::Service<Request> for Gateway {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if request.uri().path() != &*self.graphql_path {
            let routes = self.routes.clone();
            return Box::pin(async move { routes.oneshot(request).await });
        }
        let (app, path) = (self.state.clone(), self.graphql_path.clone());
        Box::pin(async move {
            let served = app.clone();
            // Boxed: the route's future is the large one (the whole operation's), and every
            // layer around it would otherwise hold it inline and copy it as it is built (under
            // `perf`, those copies were 4–6 % of the gateway's CPU).
            let route = move |request| Box::pin(admit(served, request));
            Ok(edge(&app, request, Some(&path), route).await)
        })
    }
}

/// Every request, in this order: headers over their limits are refused before anything reads
/// them ([`oversized_headers`]); then the request is observed ([`observe`]) while CORS
/// ([`apply_cors`]) and `route` serve it.
async fn edge<F, Fut>(app: &AppState, request: Request, route: Option<&str>, serve: F) -> Response
where
    F: FnOnce(Request) -> Fut + Send + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    if let Some(refused) = oversized_headers(app, &request) {
        return refused;
    }
    observe(app, request, route, serve).await
}

/// [`edge`] as the router's middleware, for the routes other than the GraphQL endpoint.
async fn edge_layer(State(app): State<Arc<AppState>>, request: Request, next: axum::middleware::Next) -> Response {
    let route = request.extensions().get::<axum::extract::MatchedPath>().cloned();
    edge(&app, request, route.as_ref().map(|m| m.as_str()), |r| next.run(r)).await
}

/// The GraphQL endpoint's admission: the caller's identity from its token (or 401), then its rate
/// (or 429, counted under that identity when `[rate_limit] key = "subject"`); the request is then
/// served as that identity: POST, GET (and HEAD) as [`graphql`] says, any other method 405.
async fn admit(app: Arc<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let identity = match auth::identify(&app, &parts).await {
        Ok(identity) => identity,
        Err(refused) => return refused,
    };
    crate::auth::identity::scope(identity, async move {
        if let Err(refused) = rate_limit::check(&app, &parts).await {
            return refused;
        }
        let request = Request::from_parts(parts, body);
        match *request.method() {
            Method::POST => graphql::post(&app, request).await,
            Method::GET | Method::HEAD => graphql::get(app, request).await,
            _ => graphql::method_not_allowed(),
        }
    })
    .await
}

/// The answer to a request with a header over `max_header_bytes`, or headers over
/// `max_header_list_bytes` in all: 431 and a code. (hyper already refuses more than 100 headers;
/// it accepts up to ~400 KiB of them, which is what this bounds.)
fn oversized_headers(app: &AppState, request: &Request) -> Option<Response> {
    let (one, all) = {
        let rt = app.runtime.load();
        let l = &rt.plan().limits;
        (l.max_header_bytes, l.max_header_list_bytes)
    };
    let mut total = 0usize;
    for (name, value) in request.headers() {
        let size = name.as_str().len() + value.len();
        total += size;
        if size > one || total > all {
            let message = if size > one {
                format!("the request header {name} is larger than {one} bytes")
            } else {
                format!("the request headers are larger than {all} bytes in all")
            };
            let body =
                serde_json::json!({"errors": [{"message": message, "extensions": {"code": "HEADERS_TOO_LARGE"}}]});
            return Some(
                (
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body.to_string(),
                )
                    .into_response(),
            );
        }
    }
    None
}

/// CORS as the current configuration says (none: no CORS headers at all), around the route.
async fn apply_cors<F, Fut>(app: &AppState, request: Request, serve: F) -> Response
where
    F: FnOnce(Request) -> Fut + Send + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    use tower::Layer;
    let Some(layer) = app.cors.load_full() else {
        return serve(request).await;
    };
    // The route as a service, for the layer to wrap: it calls it at most once (never for a
    // preflight).
    let mut serve = Some(serve);
    let route = tower::service_fn(move |request| {
        let serve = serve.take();
        async move {
            Ok::<_, std::convert::Infallible>(match serve {
                Some(serve) => serve(request).await,
                None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            })
        }
    });
    match layer.layer(route).oneshot(request).await {
        Ok(response) => response.into_response(),
        Err(never) => match never {},
    }
}

/// CORS for the configured origins only (`*`: any origin, never with credentials); none
/// configured: no CORS headers at all (strict). The origins were checked when the plan was built.
fn cors(plan: &crate::plan::Plan) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{header, HeaderName, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let security = &plan.security;
    if security.cors_origins.is_empty() {
        return None;
    }
    let any = security.cors_origins.iter().any(|o| o.get_ref() == "*");
    let origins = if any {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            security
                .cors_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.get_ref()).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            // The protocol's headers, and those the schema reads or forwards to backends.
            .allow_headers(
                [
                    header::CONTENT_TYPE,
                    header::AUTHORIZATION,
                    header::ACCEPT,
                    HeaderName::from_static("traceparent"),
                    HeaderName::from_static("tracestate"),
                    HeaderName::from_static("x-request-id"),
                ]
                .into_iter()
                .chain(
                    plan.request_headers
                        .iter()
                        .filter_map(|h| HeaderName::try_from(h.as_str()).ok()),
                )
                .chain(plan.backends.iter().flat_map(|b| b.forward_headers.iter().cloned()))
                .collect::<Vec<_>>(),
            )
            .expose_headers([HeaderName::from_static("x-request-id")])
            .allow_credentials(security.cors_allow_credentials && !any)
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// The admin routes: `/metrics` and the probes.
pub fn admin_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/healthz", get(healthz))
        .with_state(state)
}

async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    match telemetry::metrics::install() {
        Some(handle) => {
            let (backends, cache) = app.runtime().engine.clients.figures();
            let body = telemetry::metrics::render(&handle, &backends, cache.as_ref());
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                body,
            )
                .into_response()
        }
        None => (StatusCode::SERVICE_UNAVAILABLE, "metrics recorder unavailable").into_response(),
    }
}

async fn playground_page(State(app): State<Arc<AppState>>) -> Response {
    let path = app.runtime().plan().server.graphql_path.clone();
    playground::page(&path, &app.default_query).into_response()
}

/// `/readyz`: 200 once warmed up and serving, until shutdown begins; 503 meanwhile, and while a
/// backend marked `critical` is unavailable (the body names it).
async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    if !app.ready.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response();
    }
    let runtime = app.runtime();
    let unavailable = runtime.engine.clients.unavailable_critical();
    if unavailable.is_empty() {
        (StatusCode::OK, "ready").into_response()
    } else {
        let body = format!("not ready: critical backend unavailable: {}", unavailable.join(", "));
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

/// `/healthz`: version, uptime, and each backend's breaker, bulkhead and instances.
async fn healthz(State(app): State<Arc<AppState>>) -> Response {
    let runtime = app.runtime();
    let ready = app.ready.load(Ordering::SeqCst) && runtime.engine.clients.unavailable_critical().is_empty();
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "not ready" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": app.started.elapsed().as_secs(),
        "websocket_connections": app.websockets.load(Ordering::Relaxed),
        "backends": runtime.engine.clients.status(),
    });
    axum::Json(body).into_response()
}

/// Serves until `shutdown` resolves, then shuts down gracefully: readiness turns 503 at once,
/// requests are still served for the drain delay, then the listeners close and in-flight requests
/// (and WebSocket connections, told to go away) get the shutdown timeout to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    admin: Option<tokio::net::TcpListener>,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    telemetry::metrics::install();
    let app = self::app(state.clone());
    let (drain_delay, shutdown_timeout) = {
        let rt = state.runtime();
        (rt.plan().server.drain_delay.0, rt.plan().server.shutdown_timeout.0)
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let draining = {
        let state = state.clone();
        async move {
            shutdown.await;
            state.set_ready(false);
            tracing::info!(drain_delay = ?drain_delay, "shutting down: not ready any more, draining");
            tokio::time::sleep(drain_delay).await;
            state.begin_shutdown();
            let _ = stop_tx.send(true);
        }
    };
    tokio::spawn(draining);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let admin_task = admin.map(|l| {
        let app = admin_router(state.clone());
        let stop = stopped(stop_rx.clone());
        tokio::spawn(async move { axum::serve(l, app).with_graceful_shutdown(stop).await })
    });
    state.set_ready(true);
    let app = axum::ServiceExt::<Request>::into_make_service_with_connect_info::<std::net::SocketAddr>(app);
    let server = axum::serve(listener, app).with_graceful_shutdown(stopped(stop_rx.clone()));
    let server = tokio::spawn(async move { server.await });
    let mut stop_rx = stop_rx;
    let result = tokio::select! {
        r = server => r.unwrap_or_else(|e| Err(std::io::Error::other(e))),
        _ = async {
            let _ = stop_rx.wait_for(|s| *s).await;
            tokio::time::sleep(shutdown_timeout).await;
        } => {
            tracing::warn!("in-flight requests did not finish within the shutdown timeout; exiting anyway");
            Ok(())
        }
    };
    if let Some(t) = admin_task {
        t.abort();
    }
    state.set_ready(false);
    if let Some(tracer) = state.tracer.clone() {
        tracer.shutdown().await;
    }
    tracing::info!("stopped");
    result
}
