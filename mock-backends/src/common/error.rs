//! JSON error responses (`{"error": "..."}`) and extractors that turn bad
//! query strings and bodies into 400s instead of axum's plain-text rejections.

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// A short human-readable message.
    #[schema(example = "not found")]
    pub error: String,
}

/// An error a handler answers with; each maps to a status and a JSON body.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    NotFoundMsg(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadGateway(String),
    #[error("{1}")]
    Status(StatusCode, String),
}

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound | Self::NotFoundMsg(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::Status(status, _) => *status,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(self.status(), self.to_string())
    }
}

/// A JSON `{"error": msg}` response with the given status.
pub fn error_response(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(ErrorBody { error: msg.into() })).into_response()
}

/// Fallback for unknown routes.
pub async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "not found")
}

/// Fallback for known routes called with the wrong method.
pub async fn method_not_allowed() -> Response {
    error_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

/// `axum::extract::Query` whose rejection is a JSON 400.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Self(value))
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))
    }
}

/// `axum::Json` whose rejection (bad JSON, wrong shape, missing content type)
/// is a JSON 400.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(value)| Self(value))
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))
    }
}

/// All values of a repeatable query parameter (`?id=a&id=b`), in order.
pub fn repeated(pairs: &[(String, String)], key: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

/// The last value of a query parameter, if present and not empty.
pub fn single<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Parses an optional numeric query parameter; a malformed value is a 400.
pub fn number<T: std::str::FromStr>(pairs: &[(String, String)], key: &str) -> Result<Option<T>, ApiError> {
    single(pairs, key)
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| ApiError::bad_request(format!("invalid value for `{key}`: {v}")))
        })
        .transpose()
}

/// A comma-separated list (`a,b,c`), trimmed, empty items dropped.
pub fn comma_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Rejects lists longer than `max` with a 400.
pub fn check_max(len: usize, max: usize, what: &str) -> Result<(), ApiError> {
    if len > max {
        Err(ApiError::bad_request(format!("too many {what}: {len} (max {max})")))
    } else {
        Ok(())
    }
}
