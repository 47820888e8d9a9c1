//! Rate limiting per client with token buckets (governor): `[rate_limit] requests_per_second`
//! sustained, `burst` at once. A client is its IP, its JWT subject, or a header (an API key).
//! Over the limit: HTTP 429 with `Retry-After` and a `RATE_LIMITED` GraphQL error. Buckets of
//! clients not seen for a while are dropped, so the key space cannot grow without bound. With
//! `redis_url`, the buckets live in Redis and every replica shares them ([`super::shared_buckets`]);
//! the in-memory buckets then decide only while Redis does not answer.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
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
    shared: Option<super::shared_buckets::SharedBuckets>,
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
        let shared = (!settings.redis_url.get_ref().is_empty())
            .then(|| {
                super::shared_buckets::SharedBuckets::start(
                    settings.redis_url.get_ref(),
                    &settings.redis_key_prefix,
                    settings.redis_timeout.0,
                    rate.get(),
                    burst.get(),
                )
            })
            .and_then(|r| {
                // The URL was checked when the plan was built; this is a last resort.
                r.map_err(|e| tracing::error!(error = %e, "invalid [rate_limit] redis_url; limits are per replica"))
                    .ok()
            });
        Some(Arc::new(Self {
            buckets: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            shared,
            key,
            seen: AtomicU64::new(0),
        }))
    }

    /// Charges a request to its IP address's bucket: the 429 answer when that is over its rate.
    pub async fn refuse_address(&self, ip: String) -> Option<Response> {
        self.check(ip).await.err()
    }

    /// Takes one request from `client`'s bucket (shared in Redis when configured and answering).
    async fn check(&self, client: String) -> Result<(), Response> {
        self.tick();
        if let Some(shared) = &self.shared {
            use super::shared_buckets::Shared;
            match shared.check(&client).await {
                Shared::Allowed => return Ok(()),
                Shared::Wait(wait) => return Err(too_many_after(wait)),
                Shared::Unavailable => {}
            }
        }
        self.buckets.check_key(&client).map_err(too_many)
    }

    fn tick(&self) {
        if self.seen.fetch_add(1, Ordering::Relaxed).is_multiple_of(4096) {
            self.buckets.retain_recent();
        }
    }

    fn client(&self, request: &Parts) -> String {
        let ip = || ip_of(request);
        match &self.key {
            ClientKey::Ip => ip(),
            ClientKey::Subject => crate::auth::identity::current()
                .subject()
                .map(|s| format!("sub:{s}"))
                .unwrap_or_else(ip),
            ClientKey::Header(h) => request
                .headers
                .get(h.as_str())
                .and_then(|v| v.to_str().ok())
                .map(|v| format!("key:{}", &v[..v.len().min(128)]))
                .unwrap_or_else(ip),
        }
    }
}

/// The client's IP address, as the rate limiter keys it.
pub fn ip_of(request: &Parts) -> String {
    request
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default()
}

/// The 429 answer, with `Retry-After` and a `RATE_LIMITED` error.
fn too_many(not_until: governor::NotUntil<governor::clock::QuantaInstant>) -> Response {
    too_many_after(not_until.wait_time_from(DefaultClock::default().now()))
}

fn too_many_after(wait: std::time::Duration) -> Response {
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

/// Takes the request from its client's bucket: the 429 answer when the client is over its rate.
/// Run by [`super::admit`] inside the request's identity (a `subject` key reads it).
pub async fn check(app: &AppState, request: &Parts) -> Result<(), Response> {
    let Some(limiter) = app.limiter() else {
        return Ok(());
    };
    let client = limiter.client(request);
    limiter.check(client).await
}
