use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tower::{Service, ServiceExt};

use super::{cache_key, CacheStore, ResponseCache};
use crate::backend::error::CallError;
use crate::backend::http::CallFuture;
use crate::backend::payload::{CacheControl, Payload};
use crate::backend::request::BackendRequest;
use crate::plan::resilience::CachePolicy;

/// Answers with a counter, and the `Cache-Control` the test sets.
#[derive(Clone)]
struct Origin {
    calls: Arc<AtomicUsize>,
    cache_control: Arc<Mutex<Option<CacheControl>>>,
    fail: Arc<std::sync::atomic::AtomicBool>,
}

impl Origin {
    fn new() -> Self {
        Self {
            calls: Arc::new(AtomicUsize::new(0)),
            cache_control: Arc::new(Mutex::new(None)),
            fail: Arc::new(false.into()),
        }
    }
}

impl Service<BackendRequest> for Origin {
    type Response = Arc<Payload>;
    type Error = CallError;
    type Future = CallFuture;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), CallError>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: BackendRequest) -> CallFuture {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let cc = *self.cache_control.lock().expect("lock");
        let fail = self.fail.load(Ordering::SeqCst);
        Box::pin(async move {
            if fail {
                return Err(CallError::Connect("refused".into()));
            }
            Ok(Arc::new(Payload::received(serde_json::json!(n), 10, cc)))
        })
    }
}

fn policy(ttl: Option<u64>) -> CachePolicy {
    CachePolicy {
        ttl: ttl.map(Duration::from_secs),
        ..CachePolicy::default()
    }
}

fn req(policy: CachePolicy) -> BackendRequest {
    let mut r = BackendRequest::for_test("/customers?limit=2");
    r.cache = Some(Arc::new(policy));
    r
}

async fn value(svc: &ResponseCache<Origin>, r: BackendRequest) -> serde_json::Value {
    svc.clone().oneshot(r).await.expect("answer").value.clone()
}

fn cache(origin: &Origin) -> ResponseCache<Origin> {
    ResponseCache::new(origin.clone(), CacheStore::new(1 << 20, None), "customers")
}

#[tokio::test(start_paused = true)]
async fn a_fresh_answer_is_served_without_a_call_until_its_ttl() {
    let origin = Origin::new();
    let svc = cache(&origin);
    assert_eq!(value(&svc, req(policy(Some(10)))).await, 1);
    assert_eq!(value(&svc, req(policy(Some(10)))).await, 1);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(value(&svc, req(policy(Some(10)))).await, 2);
    assert_eq!(origin.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn the_stricter_of_the_field_ttl_and_cache_control_wins() {
    let origin = Origin::new();
    *origin.cache_control.lock().expect("lock") = Some(CacheControl::parse("max-age=2"));
    let svc = cache(&origin);
    value(&svc, req(policy(Some(60)))).await;
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(
        value(&svc, req(policy(Some(60)))).await,
        2,
        "max-age=2 is stricter than 60s"
    );
    // No field TTL: the backend's max-age alone decides.
    let origin = Origin::new();
    *origin.cache_control.lock().expect("lock") = Some(CacheControl::parse("max-age=5"));
    let svc = cache(&origin);
    value(&svc, req(policy(None))).await;
    assert_eq!(value(&svc, req(policy(None))).await, 1);
}

#[tokio::test(start_paused = true)]
async fn no_store_and_private_answers_are_not_shared() {
    for header in ["no-store", "private, max-age=60"] {
        let origin = Origin::new();
        *origin.cache_control.lock().expect("lock") = Some(CacheControl::parse(header));
        let svc = cache(&origin);
        value(&svc, req(policy(Some(60)))).await;
        assert_eq!(value(&svc, req(policy(Some(60)))).await, 2, "{header} is not cached");
    }
}

#[tokio::test(start_paused = true)]
async fn private_entries_are_keyed_by_principal_and_skipped_without_one() {
    let origin = Origin::new();
    let svc = cache(&origin);
    let private = CachePolicy {
        private: true,
        ..policy(Some(60))
    };
    let as_user = |who: Option<&str>| {
        let mut r = req(private.clone());
        r.principal = who.map(Arc::from);
        r
    };
    assert_eq!(value(&svc, as_user(Some("alice"))).await, 1);
    assert_eq!(
        value(&svc, as_user(Some("bob"))).await,
        2,
        "bob never sees alice's entry"
    );
    assert_eq!(value(&svc, as_user(Some("alice"))).await, 1);
    assert_eq!(value(&svc, as_user(None)).await, 3);
    assert_eq!(value(&svc, as_user(None)).await, 4, "no principal: not cached");
    assert!(cache_key("customers", &as_user(None)).is_none());
}

#[tokio::test(start_paused = true)]
async fn stale_while_revalidate_serves_the_old_answer_and_refreshes_once() {
    let origin = Origin::new();
    let svc = cache(&origin);
    let p = CachePolicy {
        stale_while_revalidate: Duration::from_secs(30),
        ..policy(Some(1))
    };
    value(&svc, req(p.clone())).await;
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(value(&svc, req(p.clone())).await, 1, "stale, served at once");
    assert_eq!(value(&svc, req(p.clone())).await, 1);
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(origin.calls.load(Ordering::SeqCst), 2, "one background refresh");
    assert_eq!(value(&svc, req(p)).await, 2, "the refreshed answer");
}

#[tokio::test(start_paused = true)]
async fn stale_if_error_keeps_the_last_answer_for_the_fallback_chain() {
    let origin = Origin::new();
    let store = CacheStore::new(1 << 20, None);
    let svc = ResponseCache::new(origin.clone(), store.clone(), "customers");
    let p = CachePolicy {
        stale_if_error: Duration::from_secs(60),
        ..policy(Some(1))
    };
    value(&svc, req(p.clone())).await;
    tokio::time::advance(Duration::from_secs(5)).await;
    origin.fail.store(true, Ordering::SeqCst);
    assert!(
        svc.clone().oneshot(req(p.clone())).await.is_err(),
        "the layer itself reports the failure"
    );
    let key = cache_key("customers", &req(p)).expect("cacheable");
    assert_eq!(
        store.stale_if_error(&key).map(|s| s.value.clone()),
        Some(serde_json::json!(1))
    );
    tokio::time::advance(Duration::from_secs(60)).await;
    assert!(store.stale_if_error(&key).is_none(), "past the window");
}

#[tokio::test(start_paused = true)]
async fn invalidation_by_prefix_evicts_matching_entries_only() {
    let origin = Origin::new();
    let store = CacheStore::new(1 << 20, None);
    let svc = ResponseCache::new(origin.clone(), store.clone(), "customers");
    value(&svc, req(policy(Some(60)))).await;
    let mut other = req(policy(Some(60)));
    other.target = "/districts".into();
    value(&svc, other.clone()).await;
    store
        .invalidate_prefix(&super::entry_prefix("customers", "/customers"))
        .await;
    assert_eq!(value(&svc, req(policy(Some(60)))).await, 3, "evicted: called again");
    let n = origin.calls.load(Ordering::SeqCst);
    value(&svc, other).await;
    assert_eq!(origin.calls.load(Ordering::SeqCst), n, "the other entry stayed");
}
