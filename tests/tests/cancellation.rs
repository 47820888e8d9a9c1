//! Clients that give up: nothing they started stays behind.
//!
//! A slow backend over real loopback HTTP whose every answer is new (a counter), so an answer
//! reused from an abandoned call is visible. Clients abandon requests (one key, many distinct
//! keys); afterwards the same query makes a new call and gets the new answer, new keys are served
//! (no `BULKHEAD_FULL`), the bulkhead and in-flight figures are back to zero, and an engine
//! replaced by a reload is freed.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use mosaic_tests::infra::{eventually, InProcessGateway};
use mosaic_tests::{client, plan_of};
use serde_json::{json, Value};

/// How long the backend takes to answer.
const DELAY: Duration = Duration::from_millis(800);

#[derive(Clone, Default)]
struct Backend {
    /// Answers given so far (each answer carries its number).
    answers: Arc<AtomicU64>,
    /// Calls received, by id.
    calls: Arc<Mutex<HashMap<String, u64>>>,
}

/// A backend whose answers take [`DELAY`] and are numbered.
struct SlowBackend {
    url: String,
    state: Backend,
    task: tokio::task::JoinHandle<()>,
}

impl SlowBackend {
    async fn start() -> Self {
        let state = Backend::default();
        let app = Router::new().route("/items/{id}", get(item)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("the backend binds");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, state, task }
    }

    fn calls(&self, id: &str) -> u64 {
        self.state.calls.lock().expect("calls").get(id).copied().unwrap_or(0)
    }

    fn total_calls(&self) -> u64 {
        self.state.calls.lock().expect("calls").values().sum()
    }
}

impl Drop for SlowBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn item(State(b): State<Backend>, Path(id): Path<String>) -> Json<Value> {
    *b.calls.lock().expect("calls").entry(id.clone()).or_default() += 1;
    tokio::time::sleep(DELAY).await;
    let n = b.answers.fetch_add(1, Ordering::SeqCst) + 1;
    Json(json!({ "id": id, "n": n }))
}

const SDL: &str = r#"
type Item {
  id: ID!
  n: Int!
}

type Query {
  item(id: ID!): Item @http(backend: "slow", path: "/items/{{args.id}}")
}
"#;

/// The config: `backend` is added to `[backends.slow]` (a 10 s timeout unless it sets one).
fn toml(url: &str, server: &str, backend: &str) -> String {
    let backend = if backend.contains("timeout =") && !backend.starts_with('[') {
        backend.to_string()
    } else {
        format!("timeout = \"10s\"\n{backend}")
    };
    format!(
        r#"
[server]
{server}

[backends.slow]
url = "{url}"
{backend}
"#
    )
}

async fn gateway(backend: &SlowBackend, server: &str, extra: &str) -> InProcessGateway {
    InProcessGateway::start(plan_of(SDL, &toml(&backend.url, server, extra)), false).await
}

/// Sends `item(id:)` and gives up after `patience`; whether it did give up (a refusal may come
/// sooner).
async fn abandon(gw: &InProcessGateway, id: &str, patience: Duration) -> bool {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(patience)
        .build()
        .expect("a client");
    let sent = http
        .post(gw.url("/graphql"))
        .json(&json!({ "query": "query($id: ID!) { item(id: $id) { id n } }", "variables": { "id": id } }))
        .send()
        .await;
    sent.is_err()
}

/// Sends `item(id:)` and waits for the answer.
async fn ask(gw: &InProcessGateway, id: &str) -> Value {
    gw.graphql(
        &client(),
        "query($id: ID!) { item(id: $id) { id n } }",
        json!({ "id": id }),
    )
    .await
}

/// The slow backend's bulkhead figures in `/healthz`: (in flight, rejected).
async fn bulkhead(gw: &InProcessGateway) -> (u64, u64) {
    let health: Value = client()
        .get(gw.url("/healthz"))
        .send()
        .await
        .expect("/healthz answers")
        .json()
        .await
        .expect("/healthz is JSON");
    let b = &health["backends"][0];
    (
        b["in_flight"].as_u64().expect("in_flight"),
        b["bulkhead_rejected"].as_u64().expect("bulkhead_rejected"),
    )
}

async fn abandoned_then_asked_again_gets_a_new_answer(server: &str) {
    let backend = SlowBackend::start().await;
    let gw = gateway(&backend, server, "").await;
    assert!(
        abandon(&gw, "a", Duration::from_millis(200)).await,
        "the client gave up"
    );
    // Well after the backend would have answered the abandoned call.
    tokio::time::sleep(DELAY + Duration::from_millis(400)).await;
    let started = std::time::Instant::now();
    let answer = ask(&gw, "a").await;
    assert!(answer.get("errors").is_none(), "{answer}");
    assert_eq!(backend.calls("a"), 2, "the second request made a call of its own");
    assert!(
        started.elapsed() >= DELAY,
        "the answer came from the backend, not from the abandoned call ({:?})",
        started.elapsed()
    );
    assert_eq!(
        answer["data"]["item"]["n"],
        json!(backend.state.answers.load(Ordering::SeqCst)),
        "the newest answer, not the abandoned one"
    );
    assert_eq!(bulkhead(&gw).await, (0, 0));
    gw.stop().await;
}

#[tokio::test]
async fn an_abandoned_query_is_not_answered_later_from_its_parked_call() {
    abandoned_then_asked_again_gets_a_new_answer("coalesce_operations = true").await;
}

#[tokio::test]
async fn an_abandoned_query_is_not_answered_later_without_operation_coalescing() {
    abandoned_then_asked_again_gets_a_new_answer("coalesce_operations = false").await;
}

#[tokio::test]
async fn many_abandoned_keys_leave_the_bulkhead_free_for_new_ones() {
    let backend = SlowBackend::start().await;
    // A small bulkhead, so the abandoned calls fill it many times over.
    let gw = gateway(
        &backend,
        "",
        "[backends.slow.bulkhead]\nmax_concurrent = 16\nmax_queue = 16\nqueue_timeout = \"5s\"",
    )
    .await;
    let abandoned = (0..200).map(|i| {
        let gw = &gw;
        async move { abandon(gw, &format!("gone-{i}"), Duration::from_millis(300)).await }
    });
    let gave_up = futures::future::join_all(abandoned).await;
    assert!(
        gave_up.iter().filter(|g| **g).count() >= 16,
        "the bulkhead was filled by clients who gave up"
    );
    assert!(
        eventually(Duration::from_secs(5), || async { bulkhead(&gw).await.0 == 0 }).await,
        "the abandoned calls gave back their bulkhead slots: {:?}",
        bulkhead(&gw).await
    );
    let rejected_before = bulkhead(&gw).await.1;
    let fresh = futures::future::join_all((0..16).map(|i| {
        let gw = &gw;
        async move { ask(gw, &format!("new-{i}")).await }
    }))
    .await;
    for (i, answer) in fresh.iter().enumerate() {
        assert!(answer.get("errors").is_none(), "new key {i}: {answer}");
        assert_eq!(answer["data"]["item"]["id"], json!(format!("new-{i}")));
    }
    assert_eq!(bulkhead(&gw).await, (0, rejected_before), "nothing new was rejected");
    assert!(backend.total_calls() >= 16);
    gw.stop().await;
}

#[tokio::test]
async fn a_request_deadline_shorter_than_the_backend_leaves_nothing_behind() {
    let backend = SlowBackend::start().await;
    let plan = {
        let mut p = plan_of(SDL, &toml(&backend.url, "", ""));
        p.limits.request_timeout = mosaic_gateway::config::HumanDuration(Duration::from_millis(200));
        p
    };
    let gw = InProcessGateway::start(plan, false).await;
    let first = ask(&gw, "d").await;
    assert_eq!(
        first["errors"][0]["extensions"]["code"],
        json!("BACKEND_TIMEOUT"),
        "{first}"
    );
    tokio::time::sleep(DELAY).await;
    let second = ask(&gw, "d").await;
    assert_eq!(
        second["errors"][0]["extensions"]["code"],
        json!("BACKEND_TIMEOUT"),
        "{second}"
    );
    assert_eq!(backend.calls("d"), 2, "the second request made its own call");
    assert_eq!(bulkhead(&gw).await.0, 0);
    gw.stop().await;
}

#[tokio::test]
async fn an_engine_replaced_while_its_calls_were_abandoned_is_freed() {
    let backend = SlowBackend::start().await;
    let gw = gateway(&backend, "", "").await;
    let old = Arc::downgrade(&gw.state.runtime().engine);
    for i in 0..5 {
        assert!(abandon(&gw, &format!("r{i}"), Duration::from_millis(100)).await);
    }
    // A reload swaps in a new runtime built from the same files.
    let plan = plan_of(SDL, &toml(&backend.url, "", ""));
    let runtime = mosaic_gateway::runtime::Runtime::new(plan, mosaic_gateway::runtime::ResolverRegistry::new())
        .expect("the new runtime builds");
    gw.state.replace_runtime(Arc::new(runtime));
    assert!(
        eventually(Duration::from_secs(5), || {
            let gone = old.upgrade().is_none();
            async move { gone }
        })
        .await,
        "nothing parked keeps the old engine alive"
    );
    let answer = ask(&gw, "r0").await;
    assert!(answer.get("errors").is_none(), "{answer}");
    gw.stop().await;
}

/// Identical queries coalesce onto one execution and one backend call; when that call times
/// out, it counts once for every request that waited, so the breaker opens as fast as if each
/// had made its own call (with `minimum_calls = 5`, after the first timeout, not the fifth).
#[tokio::test]
async fn a_hanging_backend_that_identical_queries_share_opens_its_breaker_after_one_timeout() {
    let backend = SlowBackend::start().await;
    let gw = gateway(
        &backend,
        "coalesce_operations = true",
        "timeout = \"300ms\"\n[backends.slow.retry]\nattempts = 1\n[backends.slow.breaker]\nminimum_calls = 5\nwindow_size = 10\nprobe_interval = \"0s\"",
    )
    .await;
    let same = futures::future::join_all((0..12).map(|_| {
        let gw = &gw;
        async move { ask(gw, "hot").await }
    }))
    .await;
    for answer in &same {
        assert_eq!(
            answer["errors"][0]["extensions"]["code"],
            json!("BACKEND_TIMEOUT"),
            "{answer}"
        );
    }
    assert_eq!(backend.calls("hot"), 1, "one call for all of them");
    let health: Value = client()
        .get(gw.url("/healthz"))
        .send()
        .await
        .expect("/healthz answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(health["backends"][0]["breaker"], json!("open"), "{health}");
    let next = ask(&gw, "other").await;
    assert_eq!(next["errors"][0]["extensions"]["code"], json!("CIRCUIT_OPEN"), "{next}");
    gw.stop().await;
}
