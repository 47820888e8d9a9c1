//! Rate limiting per client with token buckets (governor): `[rate_limit] requests_per_second`
//! sustained, `burst` at once. A client is its IP, its JWT subject, or a header (an API key).
//! Over the limit: HTTP 429 with `Retry-After` and a `RATE_LIMITED` GraphQL error. Buckets of
//! clients not seen for a while are dropped, so the key space cannot grow without bound.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::AppState;
use crate::config::settings::RateLimitToml;

/// What identifies a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientKey {
    Ip,
    Subject,
    Header(String),
}

pub struct Limiter {
    buckets: DefaultKeyedRateLimiter<String>,
    key: ClientKey,
    seen: AtomicU64,
}

impl Limiter {
    /// `None` when rate limiting is off.
    pub fn new(settings: &RateLimitToml) -> Option<Arc<Self>> {
        let rate = NonZeroU32::new(settings.requests_per_second)?;
        let burst = NonZeroU32::new(settings.burst).unwrap_or(rate);
        // Checked when the plan is built (plan::build): one of these forms.
        let key = match settings.key.get_ref().as_str() {
            "subject" => ClientKey::Subject,
            k => match k.strip_prefix("header:") {
                Some(h) => ClientKey::Header(h.to_ascii_lowercase()),
                None => ClientKey::Ip,
            },
        };
        Some(Arc::new(Self {
            buckets: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            key,
            seen: AtomicU64::new(0),
        }))
    }

    /// Charges the request to its IP address's bucket: the 429 answer when that is over its rate.
    pub fn refuse_address(&self, request: &axum::extract::Request) -> Option<Response> {
        self.tick();
        self.buckets.check_key(&ip_of(request)).err().map(too_many)
    }

    fn tick(&self) {
        if self.seen.fetch_add(1, Ordering::Relaxed).is_multiple_of(4096) {
            self.buckets.retain_recent();
        }
    }

    fn client(&self, request: &axum::extract::Request) -> String {
        let ip = || ip_of(request);
        match &self.key {
            ClientKey::Ip => ip(),
            ClientKey::Subject => crate::runtime::identity::current()
                .subject()
                .map(|s| format!("sub:{s}"))
                .unwrap_or_else(ip),
            ClientKey::Header(h) => request
                .headers()
                .get(h.as_str())
                .and_then(|v| v.to_str().ok())
                .map(|v| format!("key:{}", &v[..v.len().min(128)]))
                .unwrap_or_else(ip),
        }
    }
}

fn ip_of(request: &axum::extract::Request) -> String {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default()
}

/// The 429 answer, with `Retry-After` and a `RATE_LIMITED` error.
fn too_many(not_until: governor::NotUntil<governor::clock::QuantaInstant>) -> Response {
    let wait = not_until.wait_time_from(DefaultClock::default().now());
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let body = serde_json::json!({"errors": [{"message": "rate limit exceeded; retry later", "extensions": {"code": "RATE_LIMITED", "retryAfter": secs.max(1)}}]});
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, body.to_string()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Middleware: refuse clients over their rate.
pub async fn limit(
    State(app): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(limiter) = app.limiter() else {
        return next.run(request).await;
    };
    limiter.tick();
    match limiter.buckets.check_key(&limiter.client(&request)) {
        Ok(()) => next.run(request).await,
        Err(not_until) => too_many(not_until),
    }
}
