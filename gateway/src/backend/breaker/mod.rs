//! The circuit breaker layer: one breaker per backend, in front of retries, so a failing backend
//! is left alone while it recovers and clients get `CIRCUIT_OPEN` in well under a millisecond.
//!
//! The state machine is in [`state`]; this file wraps it as a tower service, logs and counts every
//! transition, and while OPEN polls the backend's health endpoint ([`probe`]) so recovery does not
//! wait for user traffic.
//!
//! Written here rather than taken from `tower-resilience-circuitbreaker` (evaluated, v0.13): it
//! reads `std::time::Instant` (so its timing cannot be tested under `tokio::time::pause`), takes an
//! async mutex on every call, and has no way to move OPEN → HALF_OPEN on a health probe.

mod layer;
mod probe;
pub mod state;
pub mod window;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::time::Instant;

pub use layer::CircuitBreakerLayer;
pub use probe::ProbeSettings;
pub use state::{BreakerSettings, BreakerState, Transition};

use self::state::{Machine, Outcome, Permit};
use futures::future::BoxFuture;

use super::error::LayerError;

/// A backend's breaker, shared by its service clones and readable from outside (`/healthz`).
pub struct Breaker {
    backend: String,
    machine: Mutex<Machine>,
    probe: Option<ProbeSettings>,
    probing: AtomicBool,
    opened: AtomicU64,
    rejected: AtomicU64,
    on_transition: Option<TransitionHook>,
}

/// Called on every state change (metrics).
pub type TransitionHook = Arc<dyn Fn(&str, Transition) + Send + Sync>;

impl Breaker {
    pub fn new(
        backend: &str,
        settings: BreakerSettings,
        probe: Option<ProbeSettings>,
        on_transition: Option<TransitionHook>,
    ) -> Arc<Self> {
        Arc::new(Self {
            backend: backend.to_string(),
            machine: Mutex::new(Machine::new(settings, Instant::now())),
            probe,
            probing: AtomicBool::new(false),
            opened: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            on_transition,
        })
    }

    fn machine(&self) -> std::sync::MutexGuard<'_, Machine> {
        match self.machine.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub fn state(&self) -> BreakerState {
        self.machine().state()
    }

    /// How many times the breaker opened, and how many calls it rejected.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.opened.load(Ordering::Relaxed),
            self.rejected.load(Ordering::Relaxed),
        )
    }

    fn transitioned(self: &Arc<Self>, t: Transition) {
        crate::telemetry::metrics::breaker_transition(&self.backend, t.to.as_str());
        match t.to {
            BreakerState::Open => {
                self.opened.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(backend = %self.backend, from = t.from.as_str(), reason = ?t.reason, "circuit breaker opened");
                self.start_probe();
            }
            BreakerState::HalfOpen => {
                tracing::info!(backend = %self.backend, reason = ?t.reason, "circuit breaker half-open: trying the backend")
            }
            BreakerState::Closed => {
                tracing::info!(backend = %self.backend, "circuit breaker closed: backend recovered")
            }
        }
        if let Some(hook) = &self.on_transition {
            hook(&self.backend, t);
        }
    }

    fn start_probe(self: &Arc<Self>) {
        let Some(settings) = self.probe.clone() else { return };
        if self.probing.swap(true, Ordering::SeqCst) {
            return;
        }
        let breaker = Arc::clone(self);
        tokio::spawn(async move {
            probe::run(&breaker, &settings).await;
            breaker.probing.store(false, Ordering::SeqCst);
        });
    }

    /// The health endpoint answered: let trial calls through.
    fn probe_succeeded(self: &Arc<Self>) {
        let t = self.machine().probe_succeeded();
        if let Some(t) = t {
            self.transitioned(t);
        }
    }

    fn acquire(self: &Arc<Self>) -> Option<Permit> {
        let (permit, t) = self.machine().try_acquire(Instant::now());
        if let Some(t) = t {
            self.transitioned(t);
        }
        if permit.is_none() {
            self.rejected.fetch_add(1, Ordering::Relaxed);
        }
        permit
    }

    fn record(self: &Arc<Self>, permit: Permit, outcome: Outcome) {
        let t = self.machine().record(permit, outcome, Instant::now());
        if let Some(t) = t {
            self.transitioned(t);
        }
    }
}

/// Gives a permit back if the call is dropped before it reports (a cancelled request).
struct PermitGuard {
    breaker: Arc<Breaker>,
    permit: Option<Permit>,
}

impl Drop for PermitGuard {
    fn drop(&mut self) {
        if let Some(p) = self.permit.take() {
            self.breaker.machine().release(p);
        }
    }
}

/// The breaker service around `S`.
#[derive(Clone)]
pub struct CircuitBreaker<S> {
    inner: S,
    breaker: Option<Arc<Breaker>>,
}

impl<S> CircuitBreaker<S> {
    pub fn new(inner: S, breaker: Option<Arc<Breaker>>) -> Self {
        Self { inner, breaker }
    }
}

/// What the breaker reads of a request: how many client requests wait for it.
pub trait Waiters {
    fn waiters(&self) -> Option<Arc<std::sync::atomic::AtomicU32>>;
}

impl Waiters for super::request::BackendRequest {
    fn waiters(&self) -> Option<Arc<std::sync::atomic::AtomicU32>> {
        self.waiters.clone()
    }
}

/// Generic over the request, as tower's layers are: the breaker reads only the outcome and how
/// many requests waited for it ([`Waiters`]).
impl<S, R: Waiters> tower::Service<R> for CircuitBreaker<S>
where
    S: tower::Service<R>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: LayerError,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let Some(breaker) = &self.breaker else {
            return Box::pin(self.inner.call(req));
        };
        let Some(permit) = breaker.acquire() else {
            return Box::pin(std::future::ready(Err(S::Error::circuit_open())));
        };
        let waiters = req.waiters();
        let call = self.inner.call(req);
        let mut guard = PermitGuard {
            breaker: breaker.clone(),
            permit: Some(permit),
        };
        Box::pin(async move {
            let started = Instant::now();
            let result = call.await;
            let outcome = Outcome {
                failure: result.as_ref().err().is_some_and(LayerError::is_backend_failure),
                duration: started.elapsed(),
                weight: waiters.map_or(1, |w| w.load(std::sync::atomic::Ordering::Relaxed).max(1)),
            };
            if let Some(p) = guard.permit.take() {
                guard.breaker.record(p, outcome);
            }
            result
        })
    }
}

#[cfg(test)]
mod tests;
