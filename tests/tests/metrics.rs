//! The Prometheus families no other test reads, each after driving what it counts: operation
//! errors by code, breaker transitions and rejections, bulkhead rejections, retries, the response
//! cache's misses, size and evictions, coalesced calls, batch sizes, and the gauges of requests in
//! flight, WebSocket connections and active subscriptions.
//!
//! The recorder is one per process, so every test runs the real `mosaic` binary over a bank of its
//! own ([`Served`]): the counts it reads are its own, exactly. Each test scrapes `/metrics` on the
//! admin port and checks one family with its labels and a value that moved.

use std::time::Duration;

use futures::StreamExt;
use mock_bank::Service;
use mosaic_tests::infra::{eventually, ws_connect, ws_send, Served, WsStream};
use mosaic_tests::prometheus::{metric_value, metrics};
use prometheus_parse::{Scrape, Value as Metric};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Settings of every test here: stop at once.
const NO_DRAIN: &str = "drain_delay = \"0s\"";

/// The value of `name` with `labels` now.
async fn metric(served: &Served, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metric_value(&metrics(served).await, name, labels)
}

/// Whether `name` with `labels` comes to satisfy `holds` within `timeout`.
async fn metric_becomes(
    served: &Served,
    name: &str,
    labels: &[(&str, &str)],
    timeout: Duration,
    holds: impl Fn(Option<f64>) -> bool,
) -> bool {
    let holds = &holds;
    eventually(
        timeout,
        move || async move { holds(metric(served, name, labels).await) },
    )
    .await
}

/// The `extensions.code` of every error of a response.
fn codes(response: &Value) -> Vec<String> {
    response["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["extensions"]["code"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Operation errors.

#[tokio::test]
async fn a_backend_that_is_down_is_counted_as_an_operation_error_with_its_code() {
    let served = Served::start(NO_DRAIN, "").await;
    served.set_faults(Service::Ledger, json!({"down": true})).await;
    for _ in 0..2 {
        let (status, v) = served
            .graphql("query Stats { transferStats { completed } }", json!({}), &[])
            .await;
        assert_eq!(status, 200);
        assert_eq!(codes(&v), ["BACKEND_UNAVAILABLE"], "{v}");
    }
    let scrape = metrics(&served).await;
    assert_eq!(
        metric_value(
            &scrape,
            "mosaic_operation_errors_total",
            &[("operation", "Stats"), ("code", "BACKEND_UNAVAILABLE")]
        ),
        Some(2.0)
    );
    assert_eq!(
        metric_value(&scrape, "mosaic_operation_errors_total", &[("code", "OTHER")]),
        None,
        "no error was counted as OTHER"
    );
    served.stop().await;
}

#[tokio::test]
async fn a_query_too_deep_is_counted_as_an_operation_error_with_its_own_code() {
    let served = Served::start(NO_DRAIN, "").await;
    let deep = format!(
        "query Deep {{ customers {{ {} id {} }} }}",
        "accounts { owner { ".repeat(12),
        "} } ".repeat(12)
    );
    let (status, v) = served.post(&json!({"query": deep, "operationName": "Deep"}), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(codes(&v), ["QUERY_TOO_DEEP"], "{v}");
    let scrape = metrics(&served).await;
    let counted: Vec<String> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "mosaic_operation_errors_total")
        .map(|s| format!("{:?} {:?}", s.labels, s.value))
        .collect();
    assert_eq!(
        metric_value(
            &scrape,
            "mosaic_operation_errors_total",
            &[("operation", "Deep"), ("code", "QUERY_TOO_DEEP")]
        ),
        Some(1.0),
        "the error is counted with the code the client got; counted: {counted:?}"
    );
    served.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Breakers, bulkheads, retries.

/// Queries the accounts of customers (a new one each time: nothing cached) until the accounts
/// breaker is open; fails the test if it never opens.
async fn open_the_accounts_breaker(served: &Served) {
    served.set_faults(Service::Accounts, json!({"down": true})).await;
    let next = std::sync::atomic::AtomicUsize::new(1);
    let next = &next;
    let opened = eventually(Duration::from_secs(10), move || async move {
        let id = format!("C{:03}", next.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        served
            .graphql(
                "query($id: ID!) { customer(id: $id) { accounts { id } } }",
                json!({"id": id}),
                &[],
            )
            .await;
        metric(served, "mosaic_breaker_state", &[("backend", "accounts")]).await == Some(2.0)
    })
    .await;
    assert!(opened, "the accounts breaker never opened");
}

#[tokio::test]
async fn breaker_transitions_are_counted_per_backend_and_target_state() {
    let served = Served::start(NO_DRAIN, "").await;
    open_the_accounts_breaker(&served).await;
    let transitions = "mosaic_breaker_transitions_total";
    let scrape_open = metrics(&served).await;
    assert_eq!(
        metric_value(&scrape_open, transitions, &[("backend", "accounts"), ("to", "open")]),
        Some(1.0)
    );
    let others: Vec<String> = scrape_open
        .samples
        .iter()
        .filter(|s| s.metric == transitions && s.labels.get("backend") != Some("accounts"))
        .map(|s| format!("{:?}", s.labels))
        .collect();
    assert!(others.is_empty(), "no other breaker moved: {others:?}");

    // The backend recovers: its health probe turns the breaker half-open, trial calls close it.
    served.set_faults(Service::Accounts, json!({"down": false})).await;
    let (served_ref, next) = (&served, &std::sync::atomic::AtomicUsize::new(100));
    let closed = eventually(Duration::from_secs(10), move || async move {
        // A new customer each time: a cached answer would make no trial call.
        let id = format!("C{:03}", next.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        served_ref
            .graphql(
                "query($id: ID!) { customer(id: $id) { accounts { id } } }",
                json!({"id": id}),
                &[],
            )
            .await;
        metric(served_ref, transitions, &[("backend", "accounts"), ("to", "closed")]).await == Some(1.0)
    })
    .await;
    assert!(closed, "the accounts breaker never closed again");
    let scrape = metrics(&served).await;
    assert_eq!(
        metric_value(&scrape, transitions, &[("backend", "accounts"), ("to", "half_open")]),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&scrape, transitions, &[("backend", "accounts"), ("to", "open")]),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&scrape, "mosaic_breaker_state", &[("backend", "accounts")]),
        Some(0.0)
    );
    served.stop().await;
}

#[tokio::test]
async fn calls_refused_by_an_open_breaker_are_counted_as_breaker_rejections() {
    let served = Served::start(NO_DRAIN, "").await;
    open_the_accounts_breaker(&served).await;
    let rejections = |s: &Scrape| metric_value(s, "mosaic_breaker_rejections_total", &[("backend", "accounts")]);
    let before = rejections(&metrics(&served).await).expect("the family is exposed");
    for id in ["C060", "C061", "C062"] {
        let (_, v) = served
            .graphql(
                "query($id: ID!) { customer(id: $id) { accounts { id } } }",
                json!({"id": id}),
                &[],
            )
            .await;
        assert_eq!(codes(&v), ["CIRCUIT_OPEN"], "{v}");
    }
    let after = metrics(&served).await;
    assert_eq!(rejections(&after), Some(before + 3.0), "one rejection per refused call");
    assert_eq!(
        metric_value(&after, "mosaic_breaker_rejections_total", &[("backend", "customers")]),
        Some(0.0),
        "the customers breaker refused nothing"
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_refused_by_a_full_bulkhead_are_counted_per_backend() {
    let extra = "[backends.customers.bulkhead]\nmax_concurrent = 1\nmax_queue = 0\n";
    let served = Served::start(NO_DRAIN, extra).await;
    served.set_faults(Service::Customers, json!({"latency_ms": 800})).await;
    // Four different customers at once: one call gets the only slot, the others find it taken.
    let answers = futures::future::join_all(
        ["C001", "C002", "C003", "C004"]
            .map(|id| served.graphql("query($id: ID!) { customer(id: $id) { name } }", json!({"id": id}), &[])),
    )
    .await;
    let full = answers.iter().filter(|(_, v)| codes(v) == ["BULKHEAD_FULL"]).count();
    assert!(full >= 1, "no call was refused by the bulkhead: {answers:?}");
    let scrape = metrics(&served).await;
    assert_eq!(
        metric_value(&scrape, "mosaic_bulkhead_rejections_total", &[("backend", "customers")]),
        Some(full as f64),
        "one rejection per BULKHEAD_FULL answer"
    );
    assert_eq!(
        metric_value(&scrape, "mosaic_bulkhead_rejections_total", &[("backend", "accounts")]),
        Some(0.0)
    );
    served.stop().await;
}

#[tokio::test]
async fn retries_are_counted_per_backend() {
    let served = Served::start(NO_DRAIN, "").await;
    served.set_faults(Service::Customers, json!({"status": 500})).await;
    let (_, v) = served
        .graphql(r#"{ customer(id: "C001") { name } }"#, json!({}), &[])
        .await;
    assert_eq!(codes(&v), ["BACKEND_UNAVAILABLE"], "{v}");
    // One call, tried three times (the default attempts) as the bank saw.
    let tried = served.bank_calls(Service::Customers).await;
    assert_eq!(tried, 3, "the GET was retried");
    let scrape = metrics(&served).await;
    assert_eq!(
        metric_value(&scrape, "mosaic_backend_retries_total", &[("backend", "customers")]),
        Some((tried - 1) as f64),
        "every try after the first is a retry"
    );
    assert_eq!(
        metric_value(&scrape, "mosaic_backend_retries_total", &[("backend", "ledger")]),
        Some(0.0)
    );
    served.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The response cache.

/// `customers(limit:, offset:)` is cached (`@cache(ttl: "30s")`): one entry per page.
const PAGE: &str = "query($limit: Int, $offset: Int) { customers(limit: $limit, offset: $offset) { id name } }";

#[tokio::test]
async fn cache_misses_entries_and_bytes_follow_what_was_stored() {
    let served = Served::start(NO_DRAIN, "").await;
    let size = |s: &Scrape| {
        (
            metric_value(s, "mosaic_cache_misses_total", &[]).unwrap_or(-1.0),
            metric_value(s, "mosaic_cache_entries", &[]).unwrap_or(-1.0),
            metric_value(s, "mosaic_cache_bytes", &[]).unwrap_or(-1.0),
        )
    };
    assert_eq!(size(&metrics(&served).await), (0.0, 0.0, 0.0), "an empty cache");
    served.graphql(PAGE, json!({"limit": 2, "offset": 0}), &[]).await;
    let (misses, entries, one) = size(&metrics(&served).await);
    assert_eq!((misses, entries), (1.0, 1.0));
    assert!(one > 0.0, "an entry takes room: {one}");
    // The same page again is a hit: nothing changes.
    served.graphql(PAGE, json!({"limit": 2, "offset": 0}), &[]).await;
    assert_eq!(size(&metrics(&served).await), (1.0, 1.0, one));
    served.graphql(PAGE, json!({"limit": 2, "offset": 2}), &[]).await;
    let (misses, entries, two) = size(&metrics(&served).await);
    assert_eq!((misses, entries), (2.0, 2.0));
    assert!(two > one, "a second entry adds its size: {one} then {two}");
    served.stop().await;
}

#[tokio::test]
async fn entries_beyond_the_caches_max_bytes_are_evicted_and_counted() {
    // A page of three customers takes about 3 KB: one fits, not two.
    const MAX_BYTES: f64 = 4096.0;
    let served = Served::start(NO_DRAIN, "[cache]\nmax_bytes = 4096\n").await;
    for offset in 0..30 {
        let (_, v) = served.graphql(PAGE, json!({"limit": 3, "offset": offset}), &[]).await;
        assert!(v.get("errors").is_none(), "{v}");
    }
    // One scrape tells one story: every stored page is still there or was evicted.
    let scrape = metrics(&served).await;
    let read = |name: &str| metric_value(&scrape, name, &[]).unwrap_or_else(|| panic!("no {name}"));
    let (stores, entries, evictions, bytes) = (
        read("mosaic_cache_stores_total"),
        read("mosaic_cache_entries"),
        read("mosaic_cache_evictions_total"),
        read("mosaic_cache_bytes"),
    );
    assert_eq!(stores, 30.0, "thirty pages stored");
    assert!(
        entries < 30.0 && bytes <= MAX_BYTES,
        "{entries} entries of {bytes} bytes kept"
    );
    assert_eq!(
        evictions,
        stores - entries,
        "{stores} pages stored, {entries} kept: the others are counted as evicted in the same scrape"
    );
    served.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Coalescing and batching.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_joins_an_identical_one_in_flight_is_counted_as_coalesced() {
    let served = Served::start(NO_DRAIN, "").await;
    served.set_faults(Service::Customers, json!({"latency_ms": 600})).await;
    // Two different operations (not coalesced as operations) making the same GET.
    let first = served.graphql(r#"{ customer(id: "C001") { name } }"#, json!({}), &[]);
    let second = async {
        let served = &served;
        let called = eventually(Duration::from_secs(5), move || async move {
            served.bank_calls(Service::Customers).await >= 1
        })
        .await;
        assert!(called, "the first call never reached the bank");
        served
            .graphql(r#"{ customer(id: "C001") { id name } }"#, json!({}), &[])
            .await
    };
    let ((_, a), (_, b)) = tokio::join!(first, second);
    assert_eq!(a["data"]["customer"]["name"], b["data"]["customer"]["name"], "{a} {b}");
    assert_eq!(served.bank_calls(Service::Customers).await, 1, "one call for both");
    let scrape = metrics(&served).await;
    assert_eq!(
        metric_value(&scrape, "mosaic_backend_coalesced_total", &[("backend", "customers")]),
        Some(1.0)
    );
    served.stop().await;
}

#[tokio::test]
async fn batch_sizes_are_observed_per_backend() {
    let served = Served::start(NO_DRAIN, "").await;
    for limit in [3, 5] {
        let (_, v) = served
            .graphql(
                "query($limit: Int) { customers(limit: $limit) { id accounts { id } } }",
                json!({"limit": limit}),
                &[],
            )
            .await;
        assert!(v.get("errors").is_none(), "{v}");
    }
    let scrape = metrics(&served).await;
    let labels = [("backend", "accounts")];
    assert_eq!(
        metric_value(&scrape, "mosaic_backend_batch_size_count", &labels),
        Some(2.0),
        "one batch per query"
    );
    assert_eq!(
        metric_value(&scrape, "mosaic_backend_batch_size_sum", &labels),
        Some(8.0),
        "3 then 5 keys"
    );
    let buckets = scrape
        .samples
        .iter()
        .find(|s| s.metric == "mosaic_backend_batch_size" && s.labels.get("backend") == Some("accounts"))
        .map(|s| s.value.clone());
    match buckets {
        Some(Metric::Histogram(b)) => {
            let at_most = |le: f64| b.iter().find(|c| c.less_than == le).map(|c| c.count);
            assert_eq!(at_most(2.0), Some(0.0), "{b:?}");
            assert_eq!(at_most(5.0), Some(2.0), "{b:?}");
        }
        other => panic!("mosaic_backend_batch_size is not a histogram: {other:?}"),
    }
    served.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Gauges.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_flight_gauge_counts_a_request_while_it_runs_and_is_back_to_zero_after() {
    let served = Served::start(NO_DRAIN, "").await;
    served.set_faults(Service::Customers, json!({"latency_ms": 1000})).await;
    let slow = served.graphql(r#"{ customer(id: "C001") { name } }"#, json!({}), &[]);
    let watch = async {
        metric_becomes(&served, "mosaic_requests_in_flight", &[], Duration::from_secs(5), |v| {
            v == Some(1.0)
        })
        .await
    };
    let ((status, v), seen) = tokio::join!(slow, watch);
    assert_eq!(status, 200);
    assert!(v["data"]["customer"]["name"].is_string(), "{v}");
    assert!(seen, "the slow request was never counted in flight");
    assert_eq!(metric(&served, "mosaic_requests_in_flight", &[]).await, Some(0.0));
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_flight_gauge_is_back_to_zero_when_a_client_disconnects_mid_request() {
    let served = Served::start(NO_DRAIN, "").await;
    // The backend never answers; the gateway would give up on it after 5 s (its timeout).
    served.set_faults(Service::Customers, json!({"hang": true})).await;
    let impatient = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(700))
        .build()
        .expect("a client");
    let request = impatient
        .post(served.gateway.url("/graphql"))
        .json(&json!({"query": r#"{ customer(id: "C001") { name } }"#}))
        .send();
    let watch = metric_becomes(&served, "mosaic_requests_in_flight", &[], Duration::from_secs(5), |v| {
        v == Some(1.0)
    });
    let (answer, seen) = tokio::join!(request, watch);
    assert!(seen, "the request was never counted in flight");
    let error = answer.expect_err("the client gave up before any answer");
    assert!(error.is_timeout(), "{error}");
    // The connection is gone: the request is cancelled, well before the backend's timeout.
    let dropped = metric_becomes(&served, "mosaic_requests_in_flight", &[], Duration::from_secs(3), |v| {
        v == Some(0.0)
    })
    .await;
    assert!(
        dropped,
        "mosaic_requests_in_flight is still {:?} after the client went away",
        metric(&served, "mosaic_requests_in_flight", &[]).await
    );
    served.stop().await;
}

/// The next message of a WebSocket, a JSON text within 10 s.
async fn next_message(ws: &mut WsStream) -> Value {
    match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str(&t).expect("JSON"),
        other => panic!("no text message in time: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_connections_and_active_subscriptions_are_gauged_while_open() {
    let served = Served::start(NO_DRAIN, "").await;
    let gauges = |s: &Scrape| {
        (
            metric_value(s, "mosaic_websocket_connections", &[]).unwrap_or(0.0),
            metric_value(s, "mosaic_subscriptions_active", &[]).unwrap_or(0.0),
        )
    };
    assert_eq!(gauges(&metrics(&served).await), (0.0, 0.0));
    let mut ws = ws_connect(&served.gateway.url("/graphql"), &[]).await;
    ws_send(
        &mut ws,
        json!({
            "type": "subscribe",
            "id": "live",
            "payload": {"query": "subscription { districtBalance(district: \"Gangnam-gu\") { district } }"}
        }),
    )
    .await;
    let first = next_message(&mut ws).await;
    assert_eq!(first["type"], "next", "{first}");
    assert_eq!(
        gauges(&metrics(&served).await),
        (1.0, 1.0),
        "one connection, one subscription"
    );

    ws_send(&mut ws, json!({"type": "complete", "id": "live"})).await;
    let served_ref = &served;
    let completed = eventually(Duration::from_secs(3), move || async move {
        gauges(&metrics(served_ref).await) == (1.0, 0.0)
    })
    .await;
    assert!(completed, "after complete: {:?}", gauges(&metrics(&served).await));
    ws.close(None).await.expect("closed");
    drop(ws);
    let closed = eventually(Duration::from_secs(3), move || async move {
        gauges(&metrics(served_ref).await) == (0.0, 0.0)
    })
    .await;
    assert!(closed, "after close: {:?}", gauges(&metrics(&served).await));
    served.stop().await;
}

#[tokio::test]
async fn the_metrics_pass_promtools_checks() {
    use std::io::Write;
    if !mosaic_tests::infra::promtool_available("the_metrics_pass_promtools_checks") {
        return;
    }
    let served = Served::start(NO_DRAIN, "").await;
    // Traffic that makes every kind of series appear: operations, errors, batches, the cache.
    for id in ["C001", "C002"] {
        served
            .graphql(
                r#"query($id: ID!) { customer(id: $id) { name accounts { id } } }"#,
                json!({ "id": id }),
                &[],
            )
            .await;
    }
    served
        .graphql("{ customers(limit: 5) { id accounts { id } } }", json!({}), &[])
        .await;
    served.graphql("{ nope }", json!({}), &[]).await;
    let text = served.metrics_text().await;
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool starts");
    promtool
        .stdin
        .take()
        .expect("a stdin")
        .write_all(text.as_bytes())
        .expect("the metrics are written to promtool");
    let out = promtool.wait_with_output().expect("promtool ends");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("mosaic_backend_batch_size_bucket"), "{text}");
    served.stop().await;
}
