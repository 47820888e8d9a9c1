use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tower::{Service, ServiceExt};

use super::discovery::{bases_for, DnsRefresh, Resolver};
use super::{Balance, InstanceSet, OutlierSettings};
use crate::backend::error::CallError;
use crate::backend::http::CallFuture;
use crate::backend::payload::Payload;
use crate::backend::request::BackendRequest;

/// Fails every call sent to `bad`; records where calls went.
#[derive(Clone)]
struct Hosts {
    bad: Arc<Mutex<Option<String>>>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Service<BackendRequest> for Hosts {
    type Response = Arc<Payload>;
    type Error = CallError;
    type Future = CallFuture;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), CallError>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: BackendRequest) -> CallFuture {
        let base = req.base.map(|b| b.to_string()).unwrap_or_default();
        self.seen.lock().expect("lock").push(base.clone());
        let fail = self.bad.lock().expect("lock").as_deref() == Some(base.as_str());
        Box::pin(async move {
            if fail {
                Err(CallError::Connect("refused".into()))
            } else {
                Ok(Arc::new(Payload::new(serde_json::Value::Null)))
            }
        })
    }
}

fn hosts(bad: Option<&str>) -> Hosts {
    Hosts {
        bad: Arc::new(Mutex::new(bad.map(str::to_string))),
        seen: Arc::new(Mutex::new(Vec::new())),
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_instance_is_ejected_while_the_other_serves() {
    let set = InstanceSet::new(
        "b",
        &["http://a:1".into(), "http://b:1".into()],
        OutlierSettings {
            consecutive_failures: 3,
            base_ejection: Duration::from_secs(10),
            max_ejection: Duration::from_secs(60),
            max_ejected_percent: 50,
        },
    );
    let backend = hosts(Some("http://a:1"));
    let svc = Balance::new(backend.clone(), set.clone());
    for _ in 0..40 {
        let _ = svc.clone().oneshot(BackendRequest::for_test("/x")).await;
    }
    let status = set.status();
    assert!(status[0].ejected, "a is ejected: {status:?}");
    assert_eq!(status[0].failures, 3, "a failed 3 times, then got no more calls");
    backend.seen.lock().expect("lock").clear();
    for _ in 0..10 {
        assert!(svc.clone().oneshot(BackendRequest::for_test("/x")).await.is_ok());
    }
    assert!(backend.seen.lock().expect("lock").iter().all(|b| b == "http://b:1"));
    // The ejection ends; a is tried again.
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(!set.status()[0].ejected);
}

#[tokio::test(start_paused = true)]
async fn at_most_the_allowed_share_of_instances_is_ejected() {
    // Both fail: only one of the two may be ejected (50%).
    let set = InstanceSet::new(
        "b",
        &["http://a:1".into(), "http://b:1".into()],
        OutlierSettings::default(),
    );
    #[derive(Clone)]
    struct AllFail;
    impl Service<BackendRequest> for AllFail {
        type Response = Arc<Payload>;
        type Error = CallError;
        type Future = CallFuture;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), CallError>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: BackendRequest) -> CallFuture {
            Box::pin(async { Err(CallError::Timeout) })
        }
    }
    let svc = Balance::new(AllFail, set.clone());
    for _ in 0..100 {
        let _ = svc.clone().oneshot(BackendRequest::for_test("/x")).await;
    }
    assert_eq!(set.status().iter().filter(|s| s.ejected).count(), 1);
}

#[tokio::test]
async fn dns_refresh_replaces_the_instances() {
    let answers = Arc::new(Mutex::new(vec!["127.0.0.1".parse().expect("ip")]));
    let calls = Arc::new(AtomicUsize::new(0));
    let (a, c) = (answers.clone(), calls.clone());
    let resolver: Resolver = Arc::new(move |_host| {
        let ips = a.lock().expect("lock").clone();
        c.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok(ips) })
    });
    let url = reqwest::Url::parse("http://accounts.internal:8080/api").expect("url");
    let set = InstanceSet::new(
        "accounts",
        &["http://accounts.internal:8080/api".into()],
        OutlierSettings::default(),
    );
    let _refresh = DnsRefresh::start(set.clone(), url, Duration::from_millis(20), resolver);
    wait_for(|| set.bases() == vec!["http://127.0.0.1:8080/api".to_string()]).await;
    *answers.lock().expect("lock") = vec!["127.0.0.1".parse().expect("ip"), "127.0.0.2".parse().expect("ip")];
    wait_for(|| set.bases().len() == 2).await;
    assert_eq!(
        set.bases(),
        vec!["http://127.0.0.1:8080/api", "http://127.0.0.2:8080/api"]
    );
}

async fn wait_for(cond: impl Fn() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("condition not met within a second");
}

#[test]
fn ipv6_addresses_are_bracketed() {
    let url = reqwest::Url::parse("https://svc/").expect("url");
    assert_eq!(
        bases_for(&url, &["::1".parse().expect("ip")]),
        vec!["https://[::1]:443"]
    );
}
