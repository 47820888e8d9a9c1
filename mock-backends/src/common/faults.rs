//! Fault injection: the faults a test or demo can switch on per service, and
//! what they do to a business request.

use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize};
use tokio::sync::watch;
use utoipa::ToSchema;

use super::error::{error_response, ApiError};

/// How long a `hang` request waits (unless the server shuts down first).
const HANG_FOR: Duration = Duration::from_secs(3600);

/// The faults in force on one service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Faults {
    /// Delay added before every business response.
    pub latency_ms: u64,
    /// Share (0..1) of business requests answered 500 `{"error":"injected failure"}`.
    pub error_rate: f64,
    /// Every business request and `/health` answers 503 immediately.
    pub down: bool,
    /// Business requests never answer (until the client gives up).
    pub hang: bool,
    /// If set, every business request answers with this status.
    pub status: Option<u16>,
}

/// A partial update of [`Faults`]: missing fields keep their value;
/// `"status": null` clears the status fault.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultsPatch {
    pub latency_ms: Option<u64>,
    pub error_rate: Option<f64>,
    pub down: Option<bool>,
    pub hang: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u16>)]
    pub status: Option<Option<u16>>,
}

/// Distinguishes a field given as `null` (`Some(None)`) from a missing one (`None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

impl FaultsPatch {
    fn validate(&self) -> Result<(), ApiError> {
        if let Some(rate) = self.error_rate {
            if !(0.0..=1.0).contains(&rate) {
                return Err(ApiError::bad_request("error_rate must be within 0..1"));
            }
        }
        if let Some(Some(status)) = self.status {
            if !(200..=599).contains(&status) {
                return Err(ApiError::bad_request("status must be within 200..599"));
            }
        }
        Ok(())
    }
}

/// The live faults of one service.
#[derive(Debug, Default)]
pub struct FaultState {
    faults: RwLock<Faults>,
}

impl FaultState {
    pub fn get(&self) -> Faults {
        self.faults.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Applies a patch after validating it; returns the new faults.
    pub fn apply(&self, patch: FaultsPatch) -> Result<Faults, ApiError> {
        patch.validate()?;
        let mut faults = self.faults.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(v) = patch.latency_ms {
            faults.latency_ms = v;
        }
        if let Some(v) = patch.error_rate {
            faults.error_rate = v;
        }
        if let Some(v) = patch.down {
            faults.down = v;
        }
        if let Some(v) = patch.hang {
            faults.hang = v;
        }
        if let Some(v) = patch.status {
            faults.status = v;
        }
        Ok(faults.clone())
    }

    pub fn reset(&self) {
        *self.faults.write().unwrap_or_else(PoisonError::into_inner) = Faults::default();
    }

    pub fn is_down(&self) -> bool {
        self.faults.read().unwrap_or_else(PoisonError::into_inner).down
    }
}

/// Waits until the shutdown flag is raised (or its sender is gone).
pub async fn shutdown_signalled(mut shutdown: watch::Receiver<bool>) {
    // An error means the sender is dropped, which also means "stop".
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Sleeps for `duration`, or less if the server starts shutting down.
pub async fn sleep_or_shutdown(duration: Duration, shutdown: &watch::Receiver<bool>) {
    tokio::select! {
        () = tokio::time::sleep(duration) => {}
        () = shutdown_signalled(shutdown.clone()) => {}
    }
}

/// Runs the faults in force before a business request. `Some(response)`
/// answers in place of the handler; `None` lets the request through.
pub async fn intercept(faults: &Faults, shutdown: &watch::Receiver<bool>) -> Option<Response> {
    if faults.down {
        return Some(error_response(StatusCode::SERVICE_UNAVAILABLE, "service down"));
    }
    if faults.hang {
        sleep_or_shutdown(HANG_FOR, shutdown).await;
        return Some(error_response(StatusCode::SERVICE_UNAVAILABLE, "hung request released"));
    }
    if faults.latency_ms > 0 {
        sleep_or_shutdown(Duration::from_millis(faults.latency_ms), shutdown).await;
    }
    if let Some(code) = faults.status {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Some(error_response(status, format!("injected status {code}")));
    }
    if roll(faults.error_rate) {
        return Some(error_response(StatusCode::INTERNAL_SERVER_ERROR, "injected failure"));
    }
    None
}

/// True with probability `rate`; exactly never for 0 and always for 1.
pub fn roll(rate: f64) -> bool {
    if rate <= 0.0 {
        false
    } else if rate >= 1.0 {
        true
    } else {
        rand::rng().random::<f64>() < rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_keeps_missing_fields_and_clears_null_status() {
        let state = FaultState::default();
        let patch: FaultsPatch = serde_json::from_str(r#"{"latency_ms":5,"status":418}"#).unwrap_or_default();
        assert!(state.apply(patch).is_ok());
        let patch: FaultsPatch = serde_json::from_str(r#"{"down":true}"#).unwrap_or_default();
        let faults = state.apply(patch).unwrap_or_default();
        assert_eq!(faults.latency_ms, 5);
        assert_eq!(faults.status, Some(418));
        assert!(faults.down);
        let patch: FaultsPatch = serde_json::from_str(r#"{"status":null}"#).unwrap_or_default();
        assert_eq!(state.apply(patch).unwrap_or_default().status, None);
    }

    #[test]
    fn rejects_out_of_range_values() {
        let state = FaultState::default();
        let bad_rate = FaultsPatch {
            error_rate: Some(1.5),
            ..FaultsPatch::default()
        };
        assert!(state.apply(bad_rate).is_err());
        let bad_status = FaultsPatch {
            status: Some(Some(42)),
            ..FaultsPatch::default()
        };
        assert!(state.apply(bad_status).is_err());
    }

    #[test]
    fn roll_extremes_are_exact() {
        assert!((0..1000).all(|_| !roll(0.0)));
        assert!((0..1000).all(|_| roll(1.0)));
    }
}
