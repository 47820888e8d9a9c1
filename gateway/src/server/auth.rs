//! Authentication at the HTTP boundary: the `Authorization: Bearer <JWT>` token is verified
//! (`runtime::verify`) and its claims become the request's [`Identity`]; an invalid token is refused
//! with 401 before any GraphQL work; no token is an anonymous request (fields with `@auth` then
//! answer `UNAUTHENTICATED`), unless `[auth] required`. WebSocket connections may instead send
//! their token in `connection_init` (see `server::subscriptions`).

use std::sync::Arc;

use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::auth::identity::{self, Identity};

fn unauthenticated(message: &str) -> Response {
    let body = serde_json::json!({"errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]});
    let mut resp = (StatusCode::UNAUTHORIZED, body.to_string()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

fn is_websocket_upgrade(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The request's identity from its token: anonymous without one, or the 401 answer (a refused
/// token also counts against the client's address when rate limiting is on). Run by
/// [`super::admit`], which serves the request as that identity.
pub async fn identify(app: &AppState, request: &Parts) -> Result<Arc<Identity>, Response> {
    let runtime = app.runtime();
    let Some(verifier) = runtime.verifier() else {
        return Ok(identity::anonymous());
    };
    let token = request
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    match token {
        Some(t) => match verifier.verify(t).await {
            Ok(claims) => Ok(Arc::new(Identity { claims: Some(claims) })),
            Err(e) => {
                tracing::info!(error = %e, "token refused");
                // Refused tokens count against the client's address, so guessing tokens is
                // rate limited too (valid requests are counted after, by `[rate_limit] key`).
                if let Some(limiter) = app.limiter() {
                    let ip = super::rate_limit::ip_of(request);
                    if let Some(limited) = limiter.refuse_address(ip).await {
                        return Err(limited);
                    }
                }
                Err(unauthenticated("the token is not valid"))
            }
        },
        // A browser cannot set headers on a WebSocket: its token comes in `connection_init`,
        // where `required` is enforced (server::subscriptions).
        None if verifier.required && !is_websocket_upgrade(&request.headers) => {
            Err(unauthenticated("a bearer token is required"))
        }
        None => Ok(identity::anonymous()),
    }
}
