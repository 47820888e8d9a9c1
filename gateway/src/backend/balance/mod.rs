//! Load balancing over a backend's instances: power of two choices by outstanding calls, and
//! outlier ejection — an instance failing `consecutive_failures` times in a row is left out for a
//! growing time while the others serve (never more than `max_ejected_percent` of them).
//!
//! The instance list is static (`urls`) or re-resolved from DNS ([`discovery`]); a refresh keeps
//! the state of instances that remain. The chosen instance's base URL is set on the request; the
//! HTTP service below appends the path.
//!
//! Written here rather than with `tower::balance::p2c`: tower's balancer chooses among *services*
//! (one per endpoint, each with its own connection pool, discovered through a `Stream` of
//! changes) and has no outlier ejection; ours chooses a base URL per call over the backend's one
//! reqwest pool, ejects failing instances for a growing time within `max_ejected_percent`, and
//! keeps an instance's state across DNS refreshes. The choice is about 40 lines.

pub mod discovery;
mod layer;

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use rand::Rng;
use tokio::time::Instant;

pub use layer::BalanceLayer;

use super::error::CallError;
use super::http::CallFuture;
use super::payload::Payload;
use super::request::BackendRequest;
pub use crate::plan::resilience::OutlierSettings;

/// One instance of a backend.
pub struct Instance {
    pub base: Arc<str>,
    outstanding: AtomicUsize,
    consecutive_failures: AtomicU32,
    ejections: AtomicU32,
    ejected_until: Mutex<Option<Instant>>,
    requests: AtomicU64,
    failures: AtomicU64,
}

/// What `/healthz` shows of an instance.
#[derive(Clone, Debug, serde::Serialize)]
pub struct InstanceStatus {
    pub instance: String,
    pub ejected: bool,
    pub outstanding: usize,
    pub requests: u64,
    pub failures: u64,
}

impl Instance {
    fn new(base: &str) -> Arc<Self> {
        Arc::new(Self {
            base: Arc::from(base.trim_end_matches('/')),
            outstanding: AtomicUsize::new(0),
            consecutive_failures: AtomicU32::new(0),
            ejections: AtomicU32::new(0),
            ejected_until: Mutex::new(None),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        })
    }

    fn ejected(&self, now: Instant) -> bool {
        let until = match self.ejected_until.lock() {
            Ok(u) => *u,
            Err(p) => *p.into_inner(),
        };
        until.is_some_and(|u| now < u)
    }
}

/// The instances of one backend.
pub struct InstanceSet {
    backend: String,
    instances: ArcSwap<Vec<Arc<Instance>>>,
    outlier: OutlierSettings,
}

impl InstanceSet {
    pub fn new(backend: &str, bases: &[String], outlier: OutlierSettings) -> Arc<Self> {
        Arc::new(Self {
            backend: backend.to_string(),
            instances: ArcSwap::from_pointee(bases.iter().map(|b| Instance::new(b)).collect()),
            outlier,
        })
    }

    /// Replaces the instance list, keeping the state of instances still present.
    pub fn replace(&self, bases: &[String]) {
        let current = self.instances.load();
        let next: Vec<Arc<Instance>> = bases
            .iter()
            .map(|b| {
                let b = b.trim_end_matches('/');
                current
                    .iter()
                    .find(|i| &*i.base == b)
                    .cloned()
                    .unwrap_or_else(|| Instance::new(b))
            })
            .collect();
        if next.iter().map(|i| &*i.base).ne(current.iter().map(|i| &*i.base)) {
            tracing::info!(backend = %self.backend, instances = ?next.iter().map(|i| i.base.to_string()).collect::<Vec<_>>(), "backend instances changed");
        }
        if !next.is_empty() {
            self.instances.store(Arc::new(next));
        }
    }

    pub fn status(&self) -> Vec<InstanceStatus> {
        let now = Instant::now();
        self.instances
            .load()
            .iter()
            .map(|i| InstanceStatus {
                instance: i.base.to_string(),
                ejected: i.ejected(now),
                outstanding: i.outstanding.load(Ordering::Relaxed),
                requests: i.requests.load(Ordering::Relaxed),
                failures: i.failures.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Whether every instance is ejected now (calls still go to one of them: the least bad).
    pub fn all_ejected(&self) -> bool {
        let now = Instant::now();
        let instances = self.instances.load();
        !instances.is_empty() && instances.iter().all(|i| i.ejected(now))
    }

    /// The base URLs, for health probes.
    pub fn bases(&self) -> Vec<String> {
        self.instances.load().iter().map(|i| i.base.to_string()).collect()
    }

    /// Power of two choices among the instances not ejected (all of them if every one is).
    fn pick(&self, now: Instant) -> Option<Arc<Instance>> {
        let all = self.instances.load();
        match all.len() {
            0 => return None,
            1 => return all.first().cloned(),
            _ => {}
        }
        let healthy: Vec<&Arc<Instance>> = all.iter().filter(|i| !i.ejected(now)).collect();
        let pool: Vec<&Arc<Instance>> = if healthy.is_empty() {
            all.iter().collect()
        } else {
            healthy
        };
        if pool.len() == 1 {
            return pool.first().map(|i| Arc::clone(i));
        }
        let mut rng = rand::rng();
        let a = rng.random_range(0..pool.len());
        let mut b = rng.random_range(0..pool.len() - 1);
        if b >= a {
            b += 1;
        }
        let (a, b) = (pool[a], pool[b]);
        let pick = if b.outstanding.load(Ordering::Relaxed) < a.outstanding.load(Ordering::Relaxed) {
            b
        } else {
            a
        };
        Some(Arc::clone(pick))
    }

    fn report(&self, instance: &Instance, failure: bool, now: Instant) {
        instance.requests.fetch_add(1, Ordering::Relaxed);
        if !failure {
            instance.consecutive_failures.store(0, Ordering::Relaxed);
            return;
        }
        instance.failures.fetch_add(1, Ordering::Relaxed);
        let n = instance.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n < self.outlier.consecutive_failures || instance.ejected(now) {
            return;
        }
        let all = self.instances.load();
        let ejected = all.iter().filter(|i| i.ejected(now)).count();
        if (ejected + 1) * 100 > all.len() * usize::from(self.outlier.max_ejected_percent) {
            return;
        }
        let times = instance.ejections.fetch_add(1, Ordering::Relaxed) + 1;
        let length = self
            .outlier
            .base_ejection
            .saturating_mul(times)
            .min(self.outlier.max_ejection);
        if let Ok(mut until) = instance.ejected_until.lock() {
            *until = Some(now + length);
        }
        instance.consecutive_failures.store(0, Ordering::Relaxed);
        tracing::warn!(backend = %self.backend, instance = %instance.base, seconds = length.as_secs_f64(), "instance ejected after consecutive failures");
    }
}

#[derive(Clone)]
pub struct Balance<S> {
    inner: S,
    set: Arc<InstanceSet>,
}

impl<S> Balance<S> {
    pub fn new(inner: S, set: Arc<InstanceSet>) -> Self {
        Self { inner, set }
    }
}

/// Lowers an instance's outstanding count when the call ends or is dropped.
struct Outstanding(Arc<Instance>);

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<S> tower::Service<BackendRequest> for Balance<S>
where
    S: tower::Service<BackendRequest, Response = Arc<Payload>, Error = CallError, Future = CallFuture>,
{
    type Response = Arc<Payload>;
    type Error = CallError;
    type Future = CallFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: BackendRequest) -> Self::Future {
        let Some(instance) = self.set.pick(Instant::now()) else {
            return Box::pin(std::future::ready(Err(CallError::Connect("no instance".into()))));
        };
        req.base = Some(instance.base.clone());
        instance.outstanding.fetch_add(1, Ordering::Relaxed);
        let guard = Outstanding(instance);
        let set = self.set.clone();
        let call = self.inner.call(req);
        Box::pin(async move {
            let r = call.await;
            let failure = r.as_ref().err().is_some_and(CallError::is_backend_failure);
            set.report(&guard.0, failure, Instant::now());
            drop(guard);
            r
        })
    }
}

#[cfg(test)]
mod tests;
