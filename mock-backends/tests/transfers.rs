//! Transfers over real loopback HTTP: balances, idempotency, external
//! verification and its call log.

mod support;

use mock_bank::Service;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{start_bank, Harness};

async fn quiet_external_bank(h: &Harness) {
    let (status, config) = h
        .put(
            Service::ExternalBank,
            "/_config",
            json!({"flaky_rate": 0.0, "base_latency_ms": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(config["flaky_rate"], 0.0);
}

fn verify_calls(stats: &Value) -> u64 {
    stats["endpoints"]["POST /verify"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_transfer_moves_money_once_per_idempotency_key() {
    let h = start_bank().await;
    let (from, to) = ("A0001", "A0002");
    let (from_before, to_before) = (h.balance(from).await, h.balance(to).await);
    let order = json!({
        "from_account": from, "to_account": to, "amount": 1000, "idempotency_key": "demo-1"
    });

    let (status, first) = h.post(Service::Transfers, "/transfers", order.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["status"], "COMPLETED");
    assert_eq!(first["to_bank"], "Mosaic Bank");
    assert!(first["failure_reason"].is_null());
    assert_eq!(h.balance(from).await, from_before - 1000);
    assert_eq!(h.balance(to).await, to_before + 1000);

    let (status, replay) = h.post(Service::Transfers, "/transfers", order).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(replay, first);
    assert_eq!(h.balance(from).await, from_before - 1000);
    assert_eq!(h.balance(to).await, to_before + 1000);

    let id = first["id"].as_str().expect("an id");
    let (status, stored) = h.get(Service::Transfers, &format!("/transfers/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stored, first);
    let (_, events) = h.get(Service::Transfers, "/events").await;
    let events = events.as_array().expect("an array");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "TransferCompleted");
    assert_eq!(events[0]["transfer"], first);
    let after = events[0]["event_id"].as_str().expect("an event id");
    let (_, later) = h.get(Service::Transfers, &format!("/events?after={after}")).await;
    assert_eq!(later, json!([]));

    let (_, newest) = h
        .get(Service::Transfers, &format!("/transfers?account_id={from}&last=1"))
        .await;
    assert_eq!(newest[0]["id"], first["id"]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_invalid_transfers() {
    let h = start_bank().await;
    let before = h.balance("A0003").await;
    let (status, transfer) = h
        .post(
            Service::Transfers,
            "/transfers",
            json!({"from_account": "A0003", "to_account": "A0004", "amount": 999_000_000_000_i64}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(transfer["status"], "FAILED");
    assert_eq!(transfer["failure_reason"], "insufficient funds");
    assert_eq!(h.balance("A0003").await, before);
    let (_, events) = h.get(Service::Transfers, "/events").await;
    assert_eq!(events[0]["type"], "TransferFailed");

    let (status, body) = h
        .post(
            Service::Transfers,
            "/transfers",
            json!({"from_account": "A0003", "to_account": "A0004", "amount": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].is_string());

    let (status, body) = h
        .post(
            Service::Accounts,
            "/accounts/A0003/adjust",
            json!({"delta": -(before + 1), "transfer_id": "T-manual"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body, json!({"error": "insufficient funds"}));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_transfer_without_flakiness_makes_one_verify_call() {
    let h = start_bank().await;
    quiet_external_bank(&h).await;
    let before = h.balance("A0001").await;
    let (status, transfer) = h
        .post(
            Service::Transfers,
            "/transfers",
            json!({"from_account": "A0001", "to_account": "EXT-0001", "to_bank": "Hana Bank", "amount": 5000}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(transfer["status"], "COMPLETED", "{transfer}");
    assert_eq!(h.balance("A0001").await, before - 5000);

    let id = transfer["id"].as_str().expect("an id");
    let (_, stats) = h.get(Service::ExternalBank, "/_stats").await;
    assert_eq!(verify_calls(&stats), 1);
    let (status, summary) = h
        .get(
            Service::ExternalBank,
            &format!("/calls/summary?transfer_ids={id},T99999"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(summary.as_array().map(Vec::len), Some(1), "{summary}");
    assert_eq!(summary[0]["transfer_id"], id);
    assert_eq!(summary[0]["count"], 1);
    assert_eq!(summary[0]["last_outcome"], "ok");
    let (_, calls) = h.get(Service::ExternalBank, &format!("/calls?transfer_id={id}")).await;
    assert_eq!(calls.as_array().map(Vec::len), Some(1));
    assert_eq!(calls[0]["operation"], "verify_account");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_bank_failing_gives_three_attempts_then_fails() {
    let h = start_bank().await;
    quiet_external_bank(&h).await;
    h.put(Service::ExternalBank, "/_faults", json!({"error_rate": 1.0}))
        .await;
    let before = h.balance("A0001").await;
    let (status, transfer) = h
        .post(
            Service::Transfers,
            "/transfers",
            json!({"from_account": "A0001", "to_account": "EXT-0002", "to_bank": "Woori Bank", "amount": 5000}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(transfer["status"], "FAILED");
    assert_eq!(transfer["failure_reason"], "external bank unavailable");
    assert_eq!(h.balance("A0001").await, before);
    let (_, stats) = h.get(Service::ExternalBank, "/_stats").await;
    assert_eq!(verify_calls(&stats), 3);
    h.stop().await;
}
