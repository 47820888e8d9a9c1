//! The resilience settings of a backend, validated: what its breaker, retries, bulkhead and
//! outlier detection do. Pure data; the layers that apply them are in `backend`.

use std::time::Duration;

/// How the breaker judges the recent past.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowKind {
    /// The last `n` calls.
    Count(usize),
    /// The calls of the last `d` (rounded up to whole seconds).
    Time(Duration),
}

/// Thresholds and durations.
#[derive(Clone, Debug)]
pub struct BreakerSettings {
    pub window: WindowKind,
    /// Open when failures / calls ≥ this (0..=1).
    pub failure_rate: f64,
    /// Open when slow calls / calls ≥ this (0..=1; 1.0 and above disables in practice only if never all slow).
    pub slow_call_rate: f64,
    /// A call taking at least this long is slow.
    pub slow_call_duration: Duration,
    /// Calls needed in the window before rates are judged.
    pub minimum_calls: usize,
    pub wait_in_open: Duration,
    pub half_open_calls: usize,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            window: WindowKind::Count(20),
            failure_rate: 0.5,
            slow_call_rate: 1.0,
            slow_call_duration: Duration::from_secs(5),
            minimum_calls: 10,
            wait_in_open: Duration::from_secs(10),
            half_open_calls: 3,
        }
    }
}

/// A backend's retry settings.
#[derive(Clone, Debug)]
pub struct RetrySettings {
    /// Tries in all, the first included (1 = no retry).
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Retries allowed as a share of calls (0.1 = 10%) over `budget_window`.
    pub budget_ratio: f32,
    pub budget_window: Duration,
    /// Retries always allowed per second, whatever the ratio.
    pub budget_min_per_second: u32,
    /// Retry throttling: tokens (0 = off), and what a success gives back.
    pub throttle_max_tokens: u32,
    pub throttle_token_ratio: f32,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            attempts: 3,
            backoff: Duration::from_millis(25),
            max_backoff: Duration::from_secs(1),
            budget_ratio: 0.1,
            budget_window: Duration::from_secs(10),
            budget_min_per_second: 1,
            throttle_max_tokens: 10,
            throttle_token_ratio: 0.1,
        }
    }
}

/// A backend's bulkhead settings.
#[derive(Clone, Copy, Debug)]
pub struct BulkheadSettings {
    pub max_concurrent: usize,
    /// Calls that may wait for a slot; more are rejected at once.
    pub max_queue: usize,
    /// The longest a queued call waits for a slot.
    pub queue_timeout: Duration,
}

impl Default for BulkheadSettings {
    fn default() -> Self {
        Self {
            max_concurrent: 128,
            max_queue: 256,
            queue_timeout: Duration::from_millis(500),
        }
    }
}

/// When an instance is ejected.
#[derive(Clone, Copy, Debug)]
pub struct OutlierSettings {
    pub consecutive_failures: u32,
    /// First ejection; each further ejection of the same instance lasts one more of these.
    pub base_ejection: Duration,
    pub max_ejection: Duration,
    pub max_ejected_percent: u8,
}

impl Default for OutlierSettings {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            base_ejection: Duration::from_secs(5),
            max_ejection: Duration::from_secs(60),
            max_ejected_percent: 50,
        }
    }
}

/// How a field's answers are cached (`@cache`, or the defaults of `[cache]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CachePolicy {
    /// The field's own time to live; `None` leaves it to the backend's `Cache-Control`. With both,
    /// the shorter wins.
    pub ttl: Option<Duration>,
    /// After the TTL, serve the old answer this long while it is refreshed in the background.
    pub stale_while_revalidate: Duration,
    /// After the TTL, keep the old answer this long to serve when the backend fails.
    pub stale_if_error: Duration,
    /// Entries belong to one user (keyed by the principal; not cached without one).
    pub private: bool,
}
