//! Errors of the backend call path, with the public code each maps to.
//!
//! The text of these errors is for logs. What a client sees is [`CallError::public_code`] and
//! [`CallError::public_message`]: no URL, host, port or backend body ever reaches it.

/// Why a backend call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("connection to backend failed: {0}")]
    Connect(String),
    #[error("backend call timed out")]
    Timeout,
    #[error("backend answered HTTP {0}")]
    Status(u16),
    #[error("backend answer is not valid JSON: {0}")]
    InvalidBody(String),
    #[error("backend answer exceeds {0} bytes")]
    TooLarge(usize),
    #[error("request to backend could not be built: {0}")]
    Request(String),
}

impl CallError {
    /// The stable code clients see in `extensions.code`.
    pub fn public_code(&self) -> &'static str {
        match self {
            CallError::Connect(_) => "BACKEND_UNAVAILABLE",
            CallError::Timeout => "BACKEND_TIMEOUT",
            CallError::Status(s) if *s >= 500 => "BACKEND_UNAVAILABLE",
            CallError::Status(_) | CallError::InvalidBody(_) | CallError::TooLarge(_) | CallError::Request(_) => {
                "BACKEND_ERROR"
            }
        }
    }

    /// The message clients see: what happened, never where.
    pub fn public_message(&self, backend: &str) -> String {
        match self {
            CallError::Connect(_) => format!("backend \"{backend}\" is unavailable"),
            CallError::Timeout => format!("backend \"{backend}\" did not answer in time"),
            CallError::Status(s) => format!("backend \"{backend}\" answered with status {s}"),
            CallError::InvalidBody(_) => format!("backend \"{backend}\" sent an invalid answer"),
            CallError::TooLarge(_) => format!("backend \"{backend}\" sent an answer that is too large"),
            CallError::Request(_) => format!("the call to backend \"{backend}\" could not be made"),
        }
    }
}
