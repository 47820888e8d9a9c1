//! The response cache as a client and the backends see it: hits and misses, TTLs, the backends'
//! `Cache-Control`, private entries, coalescing of concurrent calls, invalidation by a mutation,
//! and the shared level in Redis (across two gateways, and with Redis killed and restarted).
//!
//! Backend calls are counted where they arrive: the bank's `/_stats`, or a tiny backend started
//! here that counts every path it serves and answers with the `Cache-Control` its path names.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use mock_bank::{BankConfig, Service};
use mosaic_tests::infra::{eventually, exclusive, post_graphql, redis_available, InProcessGateway, RedisServer};
use mosaic_tests::{client, demo_sdl, demo_toml, plan_for, TestEnv};
use serde_json::{json, Value};

/// How long the tiny backend's `/slow/...` paths take to answer.
const SLOW: Duration = Duration::from_millis(200);

// ---------------------------------------------------------------------------------------------
// A tiny backend: counts calls per path and answers `{"n": <calls of this path so far>,
// "user": <the x-user header it got>}` with the Cache-Control its first path segment names.

type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

struct TinyBackend {
    addr: SocketAddr,
    counts: Counts,
    task: tokio::task::JoinHandle<()>,
}

impl TinyBackend {
    async fn start() -> Self {
        let counts = Counts::default();
        let app = Router::new().fallback(answer).with_state(counts.clone());
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("the tiny backend binds");
        let addr = listener.local_addr().expect("its address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, counts, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Calls `path` got so far.
    fn calls(&self, path: &str) -> u64 {
        self.counts.lock().expect("counts").get(path).copied().unwrap_or(0)
    }
}

impl Drop for TinyBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(counts): State<Counts>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().to_string();
    let n = {
        let mut counts = counts.lock().expect("counts");
        let n = counts.entry(path.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let kind = path.trim_start_matches('/').split('/').next().unwrap_or_default();
    if kind == "slow" {
        tokio::time::sleep(SLOW).await;
    }
    let cache_control = match kind {
        "max-age-1" => Some("max-age=1"),
        "max-age-60" => Some("max-age=60"),
        "no-store" => Some("no-store"),
        "no-cache" => Some("no-cache"),
        _ => None,
    };
    let user = headers.get("x-user").and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut response = Json(json!({ "n": n, "user": user })).into_response();
    if let Some(cc) = cache_control {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(cc));
    }
    response
}

/// Every field of the tiny schema reads one path of the tiny backend.
const TINY_SDL: &str = r#"
type Item {
  n: Int!
  user: String
}

type Query {
  maxAge1: Item @http(backend: "tiny", path: "/max-age-1/a")
  maxAge1UnderTtl60: Item @http(backend: "tiny", path: "/max-age-1/b") @cache(ttl: "60s")
  maxAge60UnderTtl1: Item @http(backend: "tiny", path: "/max-age-60/a") @cache(ttl: "1s")
  noStore: Item @http(backend: "tiny", path: "/no-store/a")
  noStoreUnderTtl60: Item @http(backend: "tiny", path: "/no-store/b") @cache(ttl: "60s")
  noCacheUnderTtl60: Item @http(backend: "tiny", path: "/no-cache/a") @cache(ttl: "60s")
  plain: Item @http(backend: "tiny", path: "/plain/a")
  me: Item
    @http(backend: "tiny", path: "/me/a", headers: [{ name: "x-user", value: "{{headers.x-user}}" }])
    @cache(ttl: "60s", scope: PRIVATE)
  profile: Item @http(backend: "tiny", path: "/me/b") @cache(ttl: "60s", scope: PRIVATE)
  slow: Item @http(backend: "tiny", path: "/slow/a")
}
"#;

/// A tiny backend and a gateway over it with [`TINY_SDL`].
async fn start_tiny() -> (TestEnv, TinyBackend) {
    let tiny = TinyBackend::start().await;
    let toml = format!(
        r#"
[request]
headers = ["x-user"]

[cache]
principal_header = "x-user"

[backends.tiny]
url = "{}"
"#,
        tiny.url()
    );
    (TestEnv::start_with(TINY_SDL, &toml).await, tiny)
}

/// Runs `{ field { n user } }` with `headers`; the item (checked error free).
async fn item(env: &TestEnv, field: &str, headers: &[(&str, &str)]) -> Value {
    let response = post_graphql(
        &env.http,
        &env.graphql_url(),
        &format!("{{ {field} {{ n user }} }}"),
        json!({}),
        headers,
    )
    .await;
    assert!(response.get("errors").is_none(), "{response:#}");
    response["data"][field].clone()
}

// ---------------------------------------------------------------------------------------------
// Hits, misses and TTLs.

#[tokio::test]
async fn the_same_query_twice_makes_one_backend_call() {
    let env = TestEnv::start().await;
    let query = "{ customers(limit: 3) { id name } }";
    let first = env.graphql(query, json!({})).await;
    let second = env.graphql(query, json!({})).await;
    assert!(first.get("errors").is_none(), "{first:#}");
    assert_eq!(first, second, "the cached answer is the same");
    assert_eq!(
        env.calls().await["customers"]["GET /customers"],
        1,
        "Query.customers has @cache(ttl: \"30s\")"
    );
    env.stop().await;
}

#[tokio::test]
async fn an_answer_is_fetched_again_once_its_ttl_is_over() {
    let sdl = r#"
type Customer {
  id: ID!
  name: String! @from(path: "full_name")
}
type Query {
  customer(id: ID!): Customer @http(backend: "customers", path: "/customers/{{args.id}}") @cache(ttl: "1s")
}
"#;
    let env = TestEnv::start_with(sdl, "[backends.customers]\nurl = \"http://127.0.0.1:1\"\n").await;
    let query = r#"{ customer(id: "C001") { id name } }"#;
    let calls = || async { env.stats(Service::Customers).await["endpoints"]["GET /customers/{id}"].as_u64() };
    let first = env.graphql(query, json!({})).await;
    assert_eq!(first["data"]["customer"]["id"], "C001", "{first:#}");
    let stored = Instant::now();
    env.graphql(query, json!({})).await;
    assert_eq!(calls().await, Some(1), "the second query within the TTL is a hit");
    assert!(stored.elapsed() < Duration::from_secs(1), "the hit was within the TTL");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let after = env.graphql(query, json!({})).await;
    assert_eq!(after, first);
    assert_eq!(calls().await, Some(2), "after the TTL the answer is fetched again");
    env.graphql(query, json!({})).await;
    assert_eq!(calls().await, Some(2), "and cached again");
    env.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The backends' Cache-Control.

#[tokio::test]
async fn without_cache_directive_an_answer_is_cached_as_long_as_the_backends_max_age() {
    let (env, tiny) = start_tiny().await;
    assert_eq!(item(&env, "maxAge1", &[]).await["n"], 1);
    assert_eq!(item(&env, "maxAge1", &[]).await["n"], 1, "served from the cache");
    assert_eq!(tiny.calls("/max-age-1/a"), 1);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(item(&env, "maxAge1", &[]).await["n"], 2, "max-age=1 is over");
    assert_eq!(tiny.calls("/max-age-1/a"), 2);
    env.stop().await;
}

#[tokio::test]
async fn without_cache_directive_or_cache_control_an_answer_is_not_cached() {
    let (env, tiny) = start_tiny().await;
    for n in 1..=3 {
        assert_eq!(item(&env, "plain", &[]).await["n"], n);
    }
    assert_eq!(tiny.calls("/plain/a"), 3);
    env.stop().await;
}

#[tokio::test]
async fn a_no_store_answer_is_never_cached_with_or_without_a_ttl() {
    let (env, tiny) = start_tiny().await;
    for n in 1..=3 {
        assert_eq!(item(&env, "noStore", &[]).await["n"], n);
        assert_eq!(
            item(&env, "noStoreUnderTtl60", &[]).await["n"],
            n,
            "no-store beats @cache"
        );
    }
    assert_eq!(tiny.calls("/no-store/a"), 3);
    assert_eq!(tiny.calls("/no-store/b"), 3);
    env.stop().await;
}

#[tokio::test]
async fn a_no_cache_answer_is_not_cached_even_under_a_ttl() {
    let (env, tiny) = start_tiny().await;
    for n in 1..=3 {
        assert_eq!(
            item(&env, "noCacheUnderTtl60", &[]).await["n"],
            n,
            "docs/directives.md: `no-store`, `no-cache` and `private` answers are not shared"
        );
    }
    assert_eq!(tiny.calls("/no-cache/a"), 3);
    env.stop().await;
}

#[tokio::test]
async fn the_backends_shorter_max_age_wins_over_a_longer_ttl() {
    let (env, tiny) = start_tiny().await;
    assert_eq!(item(&env, "maxAge1UnderTtl60", &[]).await["n"], 1);
    assert_eq!(item(&env, "maxAge1UnderTtl60", &[]).await["n"], 1);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        item(&env, "maxAge1UnderTtl60", &[]).await["n"],
        2,
        "max-age=1 is stricter than ttl 60s"
    );
    assert_eq!(tiny.calls("/max-age-1/b"), 2);
    env.stop().await;
}

#[tokio::test]
async fn a_shorter_ttl_wins_over_the_backends_longer_max_age() {
    let (env, tiny) = start_tiny().await;
    assert_eq!(item(&env, "maxAge60UnderTtl1", &[]).await["n"], 1);
    assert_eq!(item(&env, "maxAge60UnderTtl1", &[]).await["n"], 1);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        item(&env, "maxAge60UnderTtl1", &[]).await["n"],
        2,
        "ttl 1s is stricter than max-age=60"
    );
    assert_eq!(tiny.calls("/max-age-60/a"), 2);
    env.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Private entries.

#[tokio::test]
async fn a_repeated_query_is_answered_anew_once_its_cached_answer_is_replaced() {
    // The compiled executor reuses a query's last response while its answers are the same
    // cache entries: a new entry (after the backend's max-age of 1 s) must show.
    let (env, tiny) = start_tiny().await;
    let first = item(&env, "maxAge1", &[]).await;
    for _ in 0..3 {
        assert_eq!(item(&env, "maxAge1", &[]).await, first, "a hit: the same answer");
    }
    assert_eq!(tiny.calls("/max-age-1/a"), 1);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let second = item(&env, "maxAge1", &[]).await;
    assert_eq!(tiny.calls("/max-age-1/a"), 2, "fetched again after its max-age");
    assert_ne!(
        second["n"], first["n"],
        "the new answer, not the last response: {second}"
    );
    assert_eq!(item(&env, "maxAge1", &[]).await, second);
    env.stop().await;
}

#[tokio::test]
async fn private_entries_are_never_served_to_another_user() {
    let (env, tiny) = start_tiny().await;
    let alice = item(&env, "me", &[("x-user", "alice")]).await;
    let bob = item(&env, "me", &[("x-user", "bob")]).await;
    assert_eq!(alice, json!({"n": 1, "user": "alice"}));
    assert_eq!(bob, json!({"n": 2, "user": "bob"}), "bob does not get alice's entry");
    for _ in 0..3 {
        assert_eq!(item(&env, "me", &[("x-user", "alice")]).await, alice);
        assert_eq!(item(&env, "me", &[("x-user", "bob")]).await, bob);
    }
    assert_eq!(
        tiny.calls("/me/a"),
        2,
        "each user's later reads are hits on their own entry"
    );
    env.stop().await;
}

#[tokio::test]
async fn private_entries_are_keyed_by_the_principal_even_when_the_backend_call_is_the_same() {
    let (env, tiny) = start_tiny().await;
    // `profile` sends nothing user-specific: the call is the same for everyone.
    assert_eq!(item(&env, "profile", &[("x-user", "alice")]).await["n"], 1);
    assert_eq!(
        item(&env, "profile", &[("x-user", "bob")]).await["n"],
        2,
        "a miss for bob"
    );
    assert_eq!(
        item(&env, "profile", &[("x-user", "alice")]).await["n"],
        1,
        "a hit for alice"
    );
    assert_eq!(
        item(&env, "profile", &[("x-user", "bob")]).await["n"],
        2,
        "a hit for bob"
    );
    assert_eq!(tiny.calls("/me/b"), 2);
    env.stop().await;
}

#[tokio::test]
async fn a_private_field_is_not_cached_without_a_principal() {
    let (env, tiny) = start_tiny().await;
    for n in 1..=3 {
        assert_eq!(item(&env, "me", &[]).await, json!({"n": n, "user": null}));
    }
    assert_eq!(tiny.calls("/me/a"), 3);
    // Nor is an anonymous request served a user's entry.
    assert_eq!(item(&env, "me", &[("x-user", "alice")]).await["user"], "alice");
    assert_eq!(item(&env, "me", &[]).await["user"], Value::Null);
    env.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Coalescing.

/// Sends every query of `queries` at once (after opening as many connections); the answers.
async fn all_at_once(env: &TestEnv, queries: Vec<String>) -> Vec<Value> {
    // Open the connections first, so the queries themselves arrive together.
    let warm: Vec<_> = (0..queries.len())
        .map(|_| {
            let (http, url) = (env.http.clone(), env.url("/livez"));
            tokio::spawn(async move { http.get(url).send().await.map(|r| r.status()) })
        })
        .collect();
    for w in warm {
        w.await.expect("a warm-up task").expect("the gateway answers /livez");
    }
    let tasks: Vec<_> = queries
        .into_iter()
        .map(|q| {
            let (http, url) = (env.http.clone(), env.graphql_url());
            tokio::spawn(async move { post_graphql(&http, &url, &q, json!({}), &[]).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("a query task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_identical_queries_make_one_backend_call() {
    let _exclusive = exclusive().await;
    let (env, tiny) = start_tiny().await;
    let queries = vec!["{ slow { n } }".to_string(); 100];
    // A first burst compiles the document (as in steady state); the second one is measured.
    all_at_once(&env, queries.clone()).await;
    let before = tiny.calls("/slow/a");
    let answers = all_at_once(&env, queries).await;
    assert_eq!(tiny.calls("/slow/a") - before, 1, "one call for the 100 queries");
    for a in &answers {
        assert_eq!(a, &json!({"data": {"slow": {"n": before + 1}}}));
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_different_documents_making_the_same_call_make_one_backend_call() {
    let _exclusive = exclusive().await;
    let (env, tiny) = start_tiny().await;
    // 100 distinct documents (aliases and layout differ), each making the same GET /slow/a.
    let queries: Vec<String> = (0..100)
        .map(|i| match i % 3 {
            0 => format!("{{ a{i}: slow {{ n }} }}"),
            1 => format!("query {{\n  a{i} : slow {{\n    n\n  }}\n}}"),
            _ => format!("{{a{i}:slow{{n}}{}}}", " ".repeat(i)),
        })
        .collect();
    // A first burst compiles the 100 documents (as in steady state); the second one is measured.
    all_at_once(&env, queries.clone()).await;
    let before = tiny.calls("/slow/a");
    let answers = all_at_once(&env, queries).await;
    assert_eq!(
        tiny.calls("/slow/a") - before,
        1,
        "single-flight shares the in-flight GET among the 100 operations"
    );
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a["data"][format!("a{i}")], json!({"n": before + 1}), "{a}");
    }
    env.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Invalidation.

const ACCOUNTS: &str = "query($id: ID!) { customer(id: $id) { accounts { id balance } } }";
const TRANSFER: &str = "mutation($from: ID!, $to: ID!, $amount: Int!) {
  transfer(input: { fromAccount: $from, toAccount: $to, amount: $amount }) { status amount failureReason }
}";

/// The first account in an answer to [`ACCOUNTS`], as (id, balance).
fn first_account(response: &Value) -> (String, i64) {
    let account = &response["data"]["customer"]["accounts"][0];
    let id = account["id"]
        .as_str()
        .unwrap_or_else(|| panic!("an account: {response:#}"));
    (id.to_string(), account["balance"].as_i64().expect("a balance"))
}

fn assert_completed(response: &Value) {
    assert!(response.get("errors").is_none(), "{response:#}");
    assert_eq!(response["data"]["transfer"]["status"], "COMPLETED", "{response:#}");
}

#[tokio::test]
async fn a_read_after_a_transfer_shows_the_new_balance_although_accounts_are_cached() {
    let env = TestEnv::start().await;
    let (from, balance) = first_account(&env.graphql(ACCOUNTS, json!({"id": "C001"})).await);
    let (to, _) = first_account(&env.graphql(ACCOUNTS, json!({"id": "C002"})).await);
    env.reset_stats().await;
    // Read again and again: from the second on, the gateway reuses its last response as known
    // fresh (see the compiled executor's memo), which the transfer's invalidation must end.
    for _ in 0..3 {
        let (_, cached) = first_account(&env.graphql(ACCOUNTS, json!({"id": "C001"})).await);
        assert_eq!(cached, balance);
    }
    assert!(
        !env.calls().await.contains_key("accounts"),
        "the accounts are cached (Customer.accounts has @cache(ttl: \"10s\"))"
    );
    let transfer = env
        .graphql(TRANSFER, json!({"from": from, "to": to, "amount": 1000}))
        .await;
    assert_completed(&transfer);
    let (_, after) = first_account(&env.graphql(ACCOUNTS, json!({"id": "C001"})).await);
    assert_eq!(after, balance - 1000, "the write is seen by the next read");
    env.stop().await;
}

/// Waits until both gateways hold their Redis connections: a command connection and a
/// pub/sub subscription each.
async fn wait_for_gateways_on(redis: &RedisServer) {
    let connected = eventually(Duration::from_secs(15), || async {
        let clients = redis.clients();
        let subscribers = clients.iter().filter(|c| c.contains(" sub=1 ")).count();
        // This redis-cli, two command connections and two subscribers.
        subscribers >= 2 && clients.len() >= 5
    })
    .await;
    assert!(
        connected,
        "the gateways did not connect to Redis:\n{}",
        redis.clients().join("\n")
    );
}

/// `schema/mosaic.toml` with the shared cache level in `redis`.
fn toml_with_redis(redis: &RedisServer) -> String {
    format!("{}\n[cache.redis]\nurl = \"{}\"\n", demo_toml(), redis.url())
}

#[tokio::test]
async fn a_transfer_through_one_gateway_is_seen_through_another_sharing_redis() {
    if !redis_available("a_transfer_through_one_gateway_is_seen_through_another_sharing_redis") {
        return;
    }
    let redis = RedisServer::start();
    let bank = mock_bank::start(BankConfig::default()).await.expect("the bank starts");
    let toml = toml_with_redis(&redis);
    let a = InProcessGateway::start(plan_for(&bank, &demo_sdl(), &toml), false).await;
    let b = InProcessGateway::start(plan_for(&bank, &demo_sdl(), &toml), false).await;
    let http = client();
    wait_for_gateways_on(&redis).await;
    let accounts_calls = || async {
        let stats: Value = http
            .get(format!("{}/_stats", bank.url(Service::Accounts)))
            .send()
            .await
            .expect("the bank answers")
            .json()
            .await
            .expect("JSON stats");
        stats["endpoints"]["GET /accounts"].as_u64().unwrap_or(0)
    };

    let (from, balance) = first_account(&a.graphql(&http, ACCOUNTS, json!({"id": "C001"})).await);
    let (to, _) = first_account(&a.graphql(&http, ACCOUNTS, json!({"id": "C002"})).await);
    assert_eq!(accounts_calls().await, 2);
    for _ in 0..3 {
        let (_, through_b) = first_account(&b.graphql(&http, ACCOUNTS, json!({"id": "C001"})).await);
        assert_eq!(through_b, balance);
    }
    assert_eq!(accounts_calls().await, 2, "B was served A's answer from Redis");

    let transfer = a
        .graphql(&http, TRANSFER, json!({"from": from, "to": to, "amount": 1000}))
        .await;
    assert_completed(&transfer);
    let (_, after_b) = first_account(&b.graphql(&http, ACCOUNTS, json!({"id": "C001"})).await);
    assert_eq!(after_b, balance - 1000, "B evicted its copy on A's invalidation");
    let (_, after_a) = first_account(&a.graphql(&http, ACCOUNTS, json!({"id": "C001"})).await);
    assert_eq!(after_a, balance - 1000);

    a.stop().await;
    b.stop().await;
    tokio::time::timeout(Duration::from_secs(15), bank.shutdown())
        .await
        .expect("the bank stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_keep_succeeding_while_redis_is_down_and_the_shared_level_comes_back_with_it() {
    let _exclusive = exclusive().await;
    if !redis_available("requests_keep_succeeding_while_redis_is_down_and_the_shared_level_comes_back_with_it") {
        return;
    }
    let mut redis = RedisServer::start();
    let bank = mock_bank::start(BankConfig::default()).await.expect("the bank starts");
    let toml = toml_with_redis(&redis);
    let a = InProcessGateway::start(plan_for(&bank, &demo_sdl(), &toml), false).await;
    let b = InProcessGateway::start(plan_for(&bank, &demo_sdl(), &toml), false).await;
    let http = client();
    wait_for_gateways_on(&redis).await;

    // Reads through both gateways: distinct cacheable calls (each a Redis read and write) and
    // the same cached one. Every answer must be a 200 without errors, and none slow.
    let offset = std::sync::atomic::AtomicU64::new(0);
    let read_both = || async {
        let mut slowest = Duration::ZERO;
        for gateway in [&a, &b] {
            let k = offset.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            for (query, variables) in [
                (
                    "query($o: Int!) { customers(limit: 2, offset: $o) { id accounts { balance } } }",
                    json!({ "o": k }),
                ),
                (ACCOUNTS, json!({"id": "C001"})),
            ] {
                let started = Instant::now();
                let response = gateway.graphql(&http, query, variables).await;
                slowest = slowest.max(started.elapsed());
                assert!(response.get("errors").is_none(), "{response:#}");
            }
        }
        slowest
    };
    read_both().await;
    assert!(!redis.keys("mosaic:c:*").is_empty(), "answers are stored in Redis");

    redis.kill();
    let down = Instant::now();
    let mut rounds = 0;
    while down.elapsed() < Duration::from_secs(2) {
        let slowest = read_both().await;
        assert!(
            slowest < Duration::from_secs(1),
            "a request took {slowest:?} with Redis down"
        );
        rounds += 1;
    }
    assert!(rounds > 0);

    redis.restart();
    let restarted = Instant::now();
    assert!(redis.keys("*").is_empty(), "a new, empty Redis");
    // Once both gateways are back on Redis, an answer A stores is served to B from Redis.
    let customers_calls = || async {
        let stats: Value = http
            .get(format!("{}/_stats", bank.url(Service::Customers)))
            .send()
            .await
            .expect("the bank answers")
            .json()
            .await
            .expect("JSON stats");
        stats["endpoints"]["GET /customers"].as_u64().unwrap_or(0)
    };
    let query = "query($o: Int!) { customers(limit: 1, offset: $o) { id } }";
    let until = Instant::now() + Duration::from_secs(20);
    let mut shared = false;
    let mut k = 1000;
    while !shared && Instant::now() < until {
        k += 1;
        read_both().await;
        let from_a = a.graphql(&http, query, json!({ "o": k })).await;
        let stored = redis
            .keys("mosaic:c:*")
            .iter()
            .any(|key| key.contains(&format!("offset={k}")));
        if stored {
            let before = customers_calls().await;
            let from_b = b.graphql(&http, query, json!({ "o": k })).await;
            assert_eq!(from_b, from_a);
            shared = customers_calls().await == before;
        }
        if !shared {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert!(
        shared,
        "after Redis came back, B was never served an answer A stored there"
    );
    let shared_after = restarted.elapsed();

    // The invalidation channel comes back too: a transfer through A is seen through B, which has
    // the accounts of C001 in memory. (A Redis call that times out on a loaded machine sets Redis
    // aside for a second and loses that invalidation, see
    // `an_invalidation_is_not_lost_when_redis_is_briefly_unavailable`: up to three transfers.)
    wait_for_gateways_on(&redis).await;
    let subscribed_after = restarted.elapsed();
    let (to, _) = first_account(&a.graphql(&http, ACCOUNTS, json!({"id": "C002"})).await);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (from, balance) = first_account(&b.graphql(&http, ACCOUNTS, json!({"id": "C001"})).await);
        let transfer = a
            .graphql(&http, TRANSFER, json!({"from": from, "to": to, "amount": 1000}))
            .await;
        assert_completed(&transfer);
        let (_, after_b) = first_account(&b.graphql(&http, ACCOUNTS, json!({"id": "C001"})).await);
        seen.push((balance, after_b));
        if after_b == balance - 1000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    assert!(
        seen.iter().any(|(before, after)| *after == before - 1000),
        "B never got A's invalidations after Redis came back (balance before, through B after): {seen:?}"
    );
    eprintln!(
        "Redis down for 2 s: {rounds} rounds of reads, all fine; after the restart A's answer was served to B \
         from Redis after {shared_after:?}, both subscribed again after {subscribed_after:?}"
    );

    a.stop().await;
    b.stop().await;
    tokio::time::timeout(Duration::from_secs(15), bank.shutdown())
        .await
        .expect("the bank stops");
}

#[tokio::test]
async fn an_invalidation_is_not_lost_when_redis_is_briefly_unavailable() {
    if !redis_available("an_invalidation_is_not_lost_when_redis_is_briefly_unavailable") {
        return;
    }
    let redis = RedisServer::start();
    let bank = mock_bank::start(BankConfig::default()).await.expect("the bank starts");
    let toml = toml_with_redis(&redis);
    let a = InProcessGateway::start(plan_for(&bank, &demo_sdl(), &toml), false).await;
    let b = InProcessGateway::start(plan_for(&bank, &demo_sdl(), &toml), false).await;
    let http = client();
    wait_for_gateways_on(&redis).await;
    let (from, balance) = first_account(&b.graphql(&http, ACCOUNTS, json!({"id": "C001"})).await);
    let (to, _) = first_account(&a.graphql(&http, ACCOUNTS, json!({"id": "C002"})).await);

    // Redis stops answering for 300 ms: A's next Redis read times out (50 ms) and A sets Redis
    // aside for a second; the transfer goes through A within that second.
    assert_eq!(redis.cli(&["CLIENT", "PAUSE", "300", "ALL"]).trim(), "OK");
    let read = a
        .graphql(&http, "{ customers(limit: 1, offset: 7) { id } }", json!({}))
        .await;
    assert!(read.get("errors").is_none(), "Redis never fails a request: {read:#}");
    let transfer = a
        .graphql(&http, TRANSFER, json!({"from": from, "to": to, "amount": 1000}))
        .await;
    assert_completed(&transfer);

    // Once Redis answers again, B must not keep serving the balance from before the transfer.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (b_ref, http_ref) = (&b, &http);
    let seen = eventually(Duration::from_secs(3), move || async move {
        let (_, now) = first_account(&b_ref.graphql(http_ref, ACCOUNTS, json!({"id": "C001"})).await);
        now == balance - 1000
    })
    .await;
    assert!(
        seen,
        "3.4 s after the transfer B still serves the balance from before it; Redis still holds {:?}",
        redis.keys("mosaic:c:accounts*")
    );
    a.stop().await;
    b.stop().await;
    tokio::time::timeout(Duration::from_secs(15), bank.shutdown())
        .await
        .expect("the bank stops");
}
