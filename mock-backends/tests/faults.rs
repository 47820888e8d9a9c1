//! Fault injection over real loopback HTTP: latency, error rate, down,
//! status and hang.

mod support;

use std::time::{Duration, Instant};

use mock_bank::Service;
use reqwest::StatusCode;
use serde_json::json;
use support::{client, start_bank};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_delays_business_requests_only() {
    let h = start_bank().await;
    let (status, faults) = h.put(Service::Customers, "/_faults", json!({"latency_ms": 300})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(faults["latency_ms"], 300);
    assert_eq!(faults["down"], false);

    let started = Instant::now();
    let (status, _) = h.get(Service::Customers, "/customers/C001").await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));

    let started = Instant::now();
    h.get(Service::Customers, "/_stats").await;
    assert!(started.elapsed() < Duration::from_millis(300));

    let (status, _) = h.post(Service::Customers, "/_faults/reset", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, faults) = h.get(Service::Customers, "/_faults").await;
    assert_eq!(faults["latency_ms"], 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_rate_one_fails_every_business_request() {
    let h = start_bank().await;
    h.put(Service::Accounts, "/_faults", json!({"error_rate": 1.0})).await;
    for _ in 0..5 {
        let (status, body) = h.get(Service::Accounts, "/accounts/A0001").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, json!({"error": "injected failure"}));
    }
    let (status, stats) = h.get(Service::Accounts, "/_stats").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["endpoints"]["GET /accounts/{id}"], 5);
    let (status, _) = h.put(Service::Accounts, "/_faults", json!({"error_rate": 2.0})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_answers_503_including_health() {
    let h = start_bank().await;
    h.put(Service::Ledger, "/_faults", json!({"down": true})).await;
    let (status, _) = h.get(Service::Ledger, "/districts").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, body) = h.get(Service::Ledger, "/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, json!({"status": "down"}));
    let (status, faults) = h.get(Service::Ledger, "/_faults").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(faults["down"], true);
    // Other services are unaffected.
    let (status, _) = h.get(Service::Customers, "/health").await;
    assert_eq!(status, StatusCode::OK);

    h.post(Service::Ledger, "/_faults/reset", json!({})).await;
    let (status, body) = h.get(Service::Ledger, "/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok"}));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_fault_answers_that_status_and_keeps_other_fields() {
    let h = start_bank().await;
    h.put(Service::Customers, "/_faults", json!({"latency_ms": 10})).await;
    let (_, faults) = h.put(Service::Customers, "/_faults", json!({"status": 429})).await;
    assert_eq!(faults["latency_ms"], 10, "missing fields keep their value");
    assert_eq!(faults["status"], 429);
    let (status, body) = h.get(Service::Customers, "/customers/C001").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(body["error"].is_string());

    let (_, faults) = h.put(Service::Customers, "/_faults", json!({"status": null})).await;
    assert!(faults["status"].is_null());
    let (status, _) = h.get(Service::Customers, "/customers/C001").await;
    assert_eq!(status, StatusCode::OK);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_never_answers_and_shutdown_still_completes() {
    let h = start_bank().await;
    h.put(Service::Customers, "/_faults", json!({"hang": true})).await;
    let impatient = client(Duration::from_millis(300));
    let started = Instant::now();
    let result = impatient.get(h.url(Service::Customers, "/customers/C001")).send().await;
    let error = result.expect_err("a hung request gets no answer");
    assert!(error.is_timeout(), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // A request still hanging when the bank stops must not block shutdown.
    let url = h.url(Service::Customers, "/customers/C002");
    let pending = tokio::spawn(async move { client(Duration::from_secs(30)).get(url).send().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    h.stop().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let _ = tokio::time::timeout(Duration::from_secs(5), pending).await;
}
