//! The backend call path: from a rendered [`BackendRequest`] to a parsed [`Payload`].
//!
//! Each backend has one client: a stack of tower layers around an HTTP service, composed in one
//! place ([`BackendClients::new`]). Per request, a [`CallMemo`] makes identical calls once. The
//! executors use this module ([`call`], [`batch`]); it knows nothing about GraphQL.
//!
//! The bulkhead and the breaker are generic over the request, as tower's layers are (they never
//! read it; errors tell them what they need through [`error::LayerError`]). The other layers are
//! written for [`BackendRequest`] because they read it: the cache and single-flight key by its
//! identity, timeout and retry read its per-field timeout, deadline and retryability, the balancer
//! sets its instance, and observe notes what happens to it. The stack is boxed once per layer
//! ([`BackendService`]); what that costs is measured in `bench overhead`.

pub mod balance;
pub mod batch;
pub mod breaker;
pub mod bulkhead;
pub mod cache;
pub mod call;
pub mod error;
pub mod http;
pub mod invalidate;
pub mod memo;
pub mod observe;
pub mod payload;
pub mod request;
pub mod retry;
pub mod singleflight;
pub mod stream;
pub mod timeout;

use std::sync::Arc;

use std::sync::atomic::{AtomicU64, Ordering};
use tower::util::BoxCloneSyncService;

use tower::{ServiceBuilder, ServiceExt};

pub use error::{CallError, CallFailure};
pub use memo::CallMemo;
pub use payload::Payload;
pub use request::{BackendRequest, CallKey};

use crate::plan::Plan;

/// The service every call goes through.
pub type BackendService = BoxCloneSyncService<BackendRequest, Arc<Payload>, CallError>;

/// One backend's client and the state of its layers.
pub struct BackendClient {
    pub name: String,
    /// Readiness requires this backend to be available.
    pub critical: bool,
    service: BackendService,
    /// The backend's HTTP client (its connection pool), for event streams.
    pub http: reqwest::Client,
    pub breaker: Option<Arc<breaker::Breaker>>,
    pub bulkhead: Arc<bulkhead::Compartment>,
    pub instances: Arc<balance::InstanceSet>,
    pub retries: Arc<AtomicU64>,
    _dns: Option<balance::discovery::DnsRefresh>,
}

impl BackendClient {
    /// Whether calls can be made: the breaker is not open (half-open lets probes through) and
    /// some instance is not ejected.
    pub fn available(&self) -> bool {
        let breaker_open = self
            .breaker
            .as_ref()
            .is_some_and(|b| b.state() == breaker::BreakerState::Open);
        !breaker_open && !self.instances.all_ejected()
    }
}

/// What `/healthz` shows of a backend.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackendStatus {
    pub backend: String,
    /// Readiness requires it; `available` says whether it has it.
    pub critical: bool,
    pub available: bool,
    pub breaker: &'static str,
    pub breaker_opened: u64,
    pub breaker_rejected: u64,
    pub in_flight: usize,
    pub bulkhead_rejected: u64,
    pub retries: u64,
    pub instances: Vec<balance::InstanceStatus>,
}

/// The clients of all backends, indexed by [`BackendId`](crate::plan::BackendId), and the cache
/// they share.
#[derive(Clone)]
pub struct BackendClients {
    clients: Arc<[BackendClient]>,
    cache: Option<Arc<cache::CacheStore>>,
}

/// A client could not be built (TLS setup, invalid settings).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the client of backend {backend}: {source}")]
pub struct ClientError {
    pub backend: String,
    #[source]
    pub source: reqwest::Error,
}

impl BackendClients {
    /// Builds each backend's layer stack. The order, outermost first, is the architecture:
    /// metrics/traces → cache → coalescing → bulkhead → circuit breaker → retry → timeout → load
    /// balancer → HTTP.
    pub fn new(plan: &Plan) -> Result<Self, ClientError> {
        let cache = plan.cache.enabled.then(|| {
            let shared = (!plan.cache.redis.url.is_empty())
                .then(|| {
                    cache::redis::SharedLevel::start(
                        &plan.cache.redis.url,
                        &plan.cache.redis.key_prefix,
                        plan.cache.redis.timeout.0,
                    )
                })
                .and_then(|r| {
                    r.map_err(|e| tracing::error!(error = %e, "invalid Redis URL; caching in memory only"))
                        .ok()
                });
            let store = cache::CacheStore::new(plan.cache.max_bytes, shared.clone());
            if let Some(shared) = shared {
                shared.subscribe(Arc::downgrade(&store));
            }
            store
        });
        let endpoints: Arc<[Arc<str>]> = plan
            .bindings
            .iter()
            .map(|b| Arc::from(format!("{} {}", b.method, b.path.pattern())))
            .collect();
        let mut clients = Vec::with_capacity(plan.backends.len());
        for b in &plan.backends {
            let err = |source| ClientError {
                backend: b.name.clone(),
                source,
            };
            let http = http::HttpCall::new(b).map_err(err)?;
            let http_client = http.client();
            let instances = balance::InstanceSet::new(&b.name, &b.instances, b.outlier);
            let dns = match (
                b.dns_refresh,
                b.instances.first().and_then(|u| reqwest::Url::parse(u).ok()),
            ) {
                (Some(every), Some(url)) => Some(balance::discovery::DnsRefresh::start(
                    instances.clone(),
                    url,
                    every,
                    balance::discovery::system_resolver(),
                )),
                _ => None,
            };
            let breaker = match &b.breaker {
                Some((settings, probe_every)) => {
                    let probe = match probe_every {
                        Some(every) => Some(breaker::ProbeSettings {
                            urls: instances
                                .bases()
                                .iter()
                                .map(|base| format!("{base}{}", b.health_path))
                                .collect(),
                            interval: *every,
                            client: reqwest::Client::builder()
                                .connect_timeout(b.connect_timeout)
                                .no_proxy()
                                .build()
                                .map_err(err)?,
                        }),
                        None => None,
                    };
                    Some(breaker::Breaker::new(&b.name, settings.clone(), probe, None))
                }
                None => None,
            };
            let bulkhead = bulkhead::Compartment::new(b.bulkhead);
            let retries = Arc::new(AtomicU64::new(0));
            let svc = ServiceBuilder::new()
                .layer(observe::ObserveLayer::new(&b.name, breaker.clone(), endpoints.clone()))
                .option_layer(cache.clone().map(|store| cache::CacheLayer::new(store, &b.name)))
                .layer(singleflight::SingleFlightLayer)
                .layer(bulkhead::BulkheadLayer::new(bulkhead.clone()))
                .layer(breaker::CircuitBreakerLayer::new(breaker.clone()))
                .layer(retry::RetryLayer::new(retry::RetryPolicy::new(
                    b.retry.clone(),
                    retries.clone(),
                )))
                .layer(timeout::TimeoutLayer::new(b.timeout))
                .layer(balance::BalanceLayer::new(instances.clone()))
                .service(http);
            clients.push(BackendClient {
                name: b.name.clone(),
                critical: b.critical,
                http: http_client,
                service: BoxCloneSyncService::new(svc),
                breaker,
                bulkhead,
                instances,
                retries,
                _dns: dns,
            });
        }
        Ok(Self {
            clients: clients.into(),
            cache,
        })
    }

    /// The last good answer to `req` within its stale-if-error window, for the fallback chain.
    pub fn stale(&self, req: &BackendRequest) -> Option<Arc<Payload>> {
        let store = self.cache.as_ref()?;
        let key = cache::cache_key(&self.clients[req.backend.0].name, req)?;
        store.stale_if_error(&key)
    }

    /// Evicts the cached answers of GET calls to `backend` whose path starts with `path`, on this
    /// replica and (through Redis) on all.
    pub async fn invalidate(&self, backend: crate::plan::BackendId, path: &str) {
        if let Some(store) = &self.cache {
            store
                .invalidate_prefix(&cache::entry_prefix(&self.clients[backend.0].name, path))
                .await;
        }
    }

    pub fn cache(&self) -> Option<&Arc<cache::CacheStore>> {
        self.cache.as_ref()
    }

    /// A fresh answer to the read `req` in this replica's memory cache, counted as a hit, and on
    /// the operation's span when its trace is recorded: all that the stack would do for it (the
    /// cache layer answers such a call at once, and [`observe`] records no metric or span of its
    /// own for a hit). `None` sends the call through the stack as usual. With debug logging on,
    /// every call goes through the stack, so that each gets its `backend call` line. With the
    /// answer comes the moment it stops being fresh.
    pub fn fresh(&self, req: &BackendRequest) -> Option<(Arc<Payload>, tokio::time::Instant)> {
        let store = self.cache.as_ref()?;
        if tracing::enabled!(tracing::Level::DEBUG) {
            return None;
        }
        let fresh = cache::fresh_in_memory(store, &self.clients[req.backend.0].name, req)?;
        observe::counted_hit(req.trace.as_deref());
        Some(fresh)
    }

    /// Sends one call through its backend's stack.
    pub async fn call(&self, req: BackendRequest) -> Result<Arc<Payload>, CallError> {
        let svc = self.clients[req.backend.0].service.clone();
        svc.oneshot(req).await
    }

    /// The state of every backend, for `/healthz`.
    pub fn status(&self) -> Vec<BackendStatus> {
        self.clients
            .iter()
            .map(|c| {
                let (opened, rejected) = c.breaker.as_ref().map(|b| b.counts()).unwrap_or((0, 0));
                let (in_flight, bulkhead_rejected) = c.bulkhead.counts();
                BackendStatus {
                    backend: c.name.clone(),
                    critical: c.critical,
                    available: c.available(),
                    breaker: c.breaker.as_ref().map_or("disabled", |b| b.state().as_str()),
                    breaker_opened: opened,
                    breaker_rejected: rejected,
                    in_flight,
                    bulkhead_rejected,
                    retries: c.retries.load(Ordering::Relaxed),
                    instances: c.instances.status(),
                }
            })
            .collect()
    }

    /// What a metrics scrape shows of every backend and of the cache.
    pub fn figures(
        &self,
    ) -> (
        Vec<crate::telemetry::metrics::BackendFigures>,
        Option<crate::telemetry::metrics::CacheFigures>,
    ) {
        let backends = self
            .status()
            .into_iter()
            .map(|b| crate::telemetry::metrics::BackendFigures {
                ejected: b.instances.iter().filter(|i| i.ejected).count(),
                instances: b.instances.len(),
                backend: b.backend,
                breaker: b.breaker,
                breaker_rejected: b.breaker_rejected,
                bulkhead_rejected: b.bulkhead_rejected,
                retries: b.retries,
                in_flight: b.in_flight,
            })
            .collect();
        let cache = self.cache.as_ref().map(|cache| {
            use std::sync::atomic::Ordering::Relaxed;
            // First: reading the size runs the cache's pending maintenance, where evictions
            // happen (and are counted).
            let (entries, bytes) = cache.size();
            let s = &cache.stats;
            crate::telemetry::metrics::CacheFigures {
                hits: s.hits.load(Relaxed),
                stale_hits: s.stale_hits.load(Relaxed),
                misses: s.misses.load(Relaxed),
                stores: s.stores.load(Relaxed),
                stale_if_error: s.stale_if_error.load(Relaxed),
                invalidations: s.invalidations.load(Relaxed),
                evictions: s.evictions.load(Relaxed),
                entries,
                bytes,
            }
        });
        (backends, cache)
    }

    /// The critical backends that are unavailable now (what keeps `/readyz` at 503).
    pub fn unavailable_critical(&self) -> Vec<&str> {
        self.clients
            .iter()
            .filter(|c| c.critical && !c.available())
            .map(|c| c.name.as_str())
            .collect()
    }

    pub fn client(&self, id: crate::plan::BackendId) -> &BackendClient {
        &self.clients[id.0]
    }
}
