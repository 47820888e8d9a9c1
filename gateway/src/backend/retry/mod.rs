//! Retries: only calls that may be repeated (idempotent methods, or fields declaring it safe), only
//! after backend failures (connection errors, timeouts, 5xx), at most `attempts` tries with
//! exponential backoff and full jitter, honouring `Retry-After`, never past the request's deadline,
//! and within a retry budget (retries ≤ a share of calls over a window) so a struggling backend is
//! never flooded.
//!
//! Built on tower's `Retry` middleware and its `TpsBudget`; this file is the policy.

mod layer;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tower::retry::budget::{Budget, TpsBudget};

pub use layer::RetryLayer;

use super::error::CallError;
use super::payload::Payload;
use super::request::BackendRequest;
pub use crate::plan::resilience::RetrySettings;

/// The retry policy of one logical call (tower clones it per call).
#[derive(Clone)]
pub struct RetryPolicy {
    settings: Arc<RetrySettings>,
    budget: Arc<TpsBudget>,
    tried: u32,
    /// Retries made, shared with the backend's counters.
    retries: Arc<std::sync::atomic::AtomicU64>,
}

impl RetryPolicy {
    pub fn new(settings: RetrySettings, retries: Arc<std::sync::atomic::AtomicU64>) -> Self {
        let budget = TpsBudget::new(
            settings.budget_window,
            settings.budget_min_per_second,
            settings.budget_ratio,
        );
        Self {
            settings: Arc::new(settings),
            budget: Arc::new(budget),
            tried: 0,
            retries,
        }
    }

    /// The wait before retry number `n` (1-based): full jitter over an exponential ceiling.
    fn backoff(&self, n: u32) -> Duration {
        let ceiling = self
            .settings
            .backoff
            .saturating_mul(2u32.saturating_pow(n.saturating_sub(1)))
            .min(self.settings.max_backoff);
        let millis = ceiling.as_millis() as u64;
        if millis == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }
}

type Wait = Pin<Box<dyn Future<Output = ()> + Send>>;

impl tower::retry::Policy<BackendRequest, Arc<Payload>, CallError> for RetryPolicy {
    type Future = Wait;

    fn retry(
        &mut self,
        req: &mut BackendRequest,
        result: &mut Result<Arc<Payload>, CallError>,
    ) -> Option<Self::Future> {
        self.tried += 1;
        if self.tried == 1 {
            self.budget.deposit();
        }
        let err = result.as_ref().err()?;
        if !req.retryable || !err.is_backend_failure() || self.tried >= self.settings.attempts {
            return None;
        }
        let wait = match err {
            CallError::Status {
                retry_after: Some(after),
                ..
            } => *after,
            _ => self.backoff(self.tried),
        };
        if let Some(deadline) = req.deadline {
            if tokio::time::Instant::now() + wait >= deadline {
                return None;
            }
        }
        if !self.budget.withdraw() {
            tracing::debug!(target_path = %req.target, "retry budget exhausted");
            return None;
        }
        self.retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(Box::pin(tokio::time::sleep(wait)))
    }

    fn clone_request(&mut self, req: &BackendRequest) -> Option<BackendRequest> {
        Some(req.clone())
    }
}

#[cfg(test)]
mod tests;
