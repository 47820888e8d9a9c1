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

/// Retry throttling as gRPC does it (gRFC A6): a failed attempt takes a token, a successful one
/// gives back `ratio`; retries are made only while more than half the tokens are left. The budget
/// alone is relative to the last seconds of traffic, so when a backend starts failing after a
/// healthy spell it may still allow a burst of retries; the throttle stops them after a few
/// failures and lets them again as successes come back. Written here because tower has none.
pub struct Throttle {
    /// Tokens × 1000.
    milli: std::sync::atomic::AtomicI64,
    max_milli: i64,
    ratio_milli: i64,
}

impl Throttle {
    fn new(max_tokens: u32, ratio: f32) -> Option<Self> {
        let max_milli = i64::from(max_tokens) * 1000;
        (max_tokens > 0).then(|| Self {
            milli: std::sync::atomic::AtomicI64::new(max_milli),
            max_milli,
            ratio_milli: (f64::from(ratio) * 1000.0).round() as i64,
        })
    }

    fn record(&self, failed: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        let delta = if failed { -1000 } else { self.ratio_milli };
        let _ = self
            .milli
            .fetch_update(Relaxed, Relaxed, |t| Some((t + delta).clamp(0, self.max_milli)));
    }

    fn allows_retry(&self) -> bool {
        self.milli.load(std::sync::atomic::Ordering::Relaxed) * 2 > self.max_milli
    }
}

/// The retry policy of one logical call (tower clones it per call).
#[derive(Clone)]
pub struct RetryPolicy {
    settings: Arc<RetrySettings>,
    budget: Arc<TpsBudget>,
    throttle: Option<Arc<Throttle>>,
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
            throttle: Throttle::new(settings.throttle_max_tokens, settings.throttle_token_ratio).map(Arc::new),
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
        if let Some(t) = &self.throttle {
            t.record(result.as_ref().is_err_and(CallError::is_backend_failure));
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
        if self.throttle.as_ref().is_some_and(|t| !t.allows_retry()) {
            tracing::debug!(target_path = %req.target, "retries throttled: the backend keeps failing");
            return None;
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
