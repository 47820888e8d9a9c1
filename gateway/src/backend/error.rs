//! Errors of the backend call path, with the public code each maps to.
//!
//! The text of these errors is for logs. What a client sees is [`CallError::public_code`] and
//! [`CallError::public_message`]: no URL, host, port or backend body ever reaches it.

use std::time::Duration;

/// Why a backend call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("connection to backend failed: {0}")]
    Connect(String),
    #[error("backend call timed out")]
    Timeout,
    #[error("backend answered HTTP {status}")]
    Status {
        status: u16,
        /// The backend's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        /// The body of a 4xx answer (at most 64 KiB): what a field's `errors:` rule may show.
        /// Never shown otherwise.
        body: Option<std::sync::Arc<str>>,
    },
    #[error("backend answer is not valid JSON: {0}")]
    InvalidBody(String),
    #[error("backend answer exceeds {0} bytes")]
    TooLarge(usize),
    #[error("request to backend could not be built: {0}")]
    Request(String),
    /// The client's arguments would make a request the backend cannot take (a URL over
    /// `max_url_bytes`): the client's error, not the backend's.
    #[error("request to backend refused: {0}")]
    Input(String),
    /// An argument cannot be converted to the type the binding sends (`{{args.id | int}}` with
    /// `"abc"`): the client's error. The message names the template expression only.
    #[error("{0}")]
    Unconvertible(String),
    #[error("circuit breaker is open")]
    CircuitOpen,
    #[error("bulkhead is full")]
    BulkheadFull,
}

impl CallError {
    /// The stable code clients see in `extensions.code`.
    pub fn public_code(&self) -> &'static str {
        match self {
            CallError::Connect(_) => "BACKEND_UNAVAILABLE",
            CallError::Timeout => "BACKEND_TIMEOUT",
            CallError::Status { status, .. } if *status >= 500 => "BACKEND_UNAVAILABLE",
            CallError::Status { .. } | CallError::InvalidBody(_) | CallError::TooLarge(_) | CallError::Request(_) => {
                "BACKEND_ERROR"
            }
            CallError::Input(_) | CallError::Unconvertible(_) => "BAD_USER_INPUT",
            CallError::CircuitOpen => "CIRCUIT_OPEN",
            CallError::BulkheadFull => "BULKHEAD_FULL",
        }
    }

    /// The message clients see: what happened, never where.
    pub fn public_message(&self, backend: &str) -> String {
        match self {
            CallError::Connect(_) => format!("backend \"{backend}\" is unavailable"),
            CallError::Timeout => format!("backend \"{backend}\" did not answer in time"),
            CallError::Status { status, .. } => format!("backend \"{backend}\" answered with status {status}"),
            CallError::InvalidBody(_) => format!("backend \"{backend}\" sent an invalid answer"),
            CallError::TooLarge(_) => format!("backend \"{backend}\" sent an answer that is too large"),
            CallError::Request(_) => format!("the call to backend \"{backend}\" could not be made"),
            CallError::Input(_) => {
                format!("the arguments are too long for a call to backend \"{backend}\"; the call was not made")
            }
            CallError::Unconvertible(reason) => format!("{reason}; the call to backend \"{backend}\" was not made"),
            CallError::CircuitOpen => {
                format!("backend \"{backend}\" is failing; calls are suspended while it recovers (circuit open)")
            }
            CallError::BulkheadFull => format!("backend \"{backend}\" is saturated; the call was not made"),
        }
    }

    /// Whether the call failed because of the backend (counts against breakers and instances):
    /// connection errors, timeouts, 5xx answers and answers that are not JSON (an HTML error
    /// page with 200); never 4xx answers or our own rejections.
    pub fn is_backend_failure(&self) -> bool {
        match self {
            CallError::Connect(_) | CallError::Timeout | CallError::InvalidBody(_) => true,
            CallError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// A failed call as the executors see it: the error, and the last good answer within its
/// stale-if-error window if the cache has one (served in its place, with the error saying so).
#[derive(Debug, Clone)]
pub struct CallFailure {
    pub error: CallError,
    pub stale: Option<std::sync::Arc<super::payload::Payload>>,
}

impl From<CallError> for CallFailure {
    fn from(error: CallError) -> Self {
        Self { error, stale: None }
    }
}

/// What the generic layers need of an error type: to tell the backend's failures (what breakers
/// and retries count) from the rest, and to stand for their own rejections.
pub trait LayerError: Send + 'static {
    fn is_backend_failure(&self) -> bool;
    fn circuit_open() -> Self;
    fn bulkhead_full() -> Self;
    fn timed_out() -> Self;
}

impl LayerError for CallError {
    fn is_backend_failure(&self) -> bool {
        CallError::is_backend_failure(self)
    }
    fn circuit_open() -> Self {
        CallError::CircuitOpen
    }
    fn bulkhead_full() -> Self {
        CallError::BulkheadFull
    }
    fn timed_out() -> Self {
        CallError::Timeout
    }
}
