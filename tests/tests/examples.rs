//! Every operation in `schema/examples/` runs against the demo and answers real data (snapshots).

use mosaic_tests::{example, examples, TestEnv};
use serde_json::{json, Value};

/// Runs one example on a fresh demo and returns its response, checking it has no errors.
async fn run_example(name: &str) -> Value {
    let env = TestEnv::start().await;
    let response = env.graphql(&example(name), json!({})).await;
    env.stop().await;
    assert!(response.get("errors").is_none(), "{name} answered errors: {response:#}");
    response
}

#[test]
fn every_example_file_has_a_test() {
    let names: Vec<String> = examples().into_iter().map(|e| e.name).collect();
    assert_eq!(
        names,
        [
            "customer-with-accounts-and-transfers",
            "district-balances",
            "external-bank-calls",
            "gangnam-total",
            "live-district-balance",
            "send-transfer",
        ],
        "a new example needs its own test (and snapshot) in tests/tests/examples.rs"
    );
}

#[tokio::test]
async fn customer_with_accounts_and_transfers_answers_three_levels() {
    let response = run_example("customer-with-accounts-and-transfers").await;
    insta::assert_json_snapshot!(response);
}

#[tokio::test]
async fn district_balances_lists_gangnam_customers_with_their_accounts() {
    let response = run_example("district-balances").await;
    let customers = response["data"]["customers"].as_array().expect("a list of customers");
    assert!(!customers.is_empty());
    insta::assert_json_snapshot!(response);
}

#[tokio::test]
async fn external_bank_calls_composes_transfers_with_the_call_log() {
    let response = run_example("external-bank-calls").await;
    insta::assert_json_snapshot!(response);
}

#[tokio::test]
async fn gangnam_total_reads_the_ledger() {
    let response = run_example("gangnam-total").await;
    insta::assert_json_snapshot!(response);
}

#[tokio::test]
async fn send_transfer_creates_a_transfer_to_another_bank() {
    // The mutation changes the bank's state, so it runs in its own env and the snapshot keeps only
    // the fields that do not depend on order or chance (the id is the next sequence number; the
    // external bank is flaky, so the outcome and the number of its calls vary).
    let env = TestEnv::start().await;
    let response = env.graphql(&example("send-transfer"), json!({})).await;
    env.stop().await;
    assert!(response.get("errors").is_none(), "{response:#}");
    let transfer = &response["data"]["transfer"];
    let id = transfer["id"].as_str().expect("an id");
    assert!(id.starts_with('T') && id[1..].parse::<u32>().is_ok(), "id {id}");
    let status = transfer["status"].as_str().expect("a status");
    assert!(matches!(status, "COMPLETED" | "FAILED"), "status {status}");
    let calls = transfer["externalCalls"]["count"]
        .as_u64()
        .expect("the external bank was called");
    assert!(
        calls >= 1,
        "a transfer to another bank calls the external bank: {response:#}"
    );
    insta::assert_json_snapshot!(response, {
        ".data.transfer.id" => "[transfer id]",
        ".data.transfer.status" => "[COMPLETED or FAILED]",
        ".data.transfer.externalCalls.count" => "[calls]",
    });
}

/// Reads Server-Sent Events from `resp` until `count` `next` events arrived (or 10 s passed).
async fn sse_events(resp: reqwest::Response, count: usize) -> Vec<Value> {
    use futures::StreamExt;
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while out.len() < count {
        let chunk = tokio::time::timeout_at(deadline, body.next()).await;
        let Ok(Some(Ok(chunk))) = chunk else { break };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            if event.starts_with("event: next") {
                if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                    out.push(serde_json::from_str(data).expect("JSON data"));
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn live_district_balance_streams_the_total_and_its_change_after_a_transfer() {
    let env = TestEnv::start().await;
    // The external bank is flaky by nature: made reliable, the transfer completes for sure.
    let config = format!("{}/_config", env.bank.url(mock_bank::Service::ExternalBank));
    env.http
        .put(config)
        .json(&json!({"flaky_rate": 0.0}))
        .send()
        .await
        .expect("config");
    let body = json!({"query": example("live-district-balance")}).to_string();
    let resp = env
        .post_raw(
            &body,
            &[("content-type", "application/json"), ("accept", "text/event-stream")],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let events = tokio::spawn(sse_events(resp, 2));
    // Let the subscription start, then move 1000 won out of Gangnam-gu (A0001 is C001's).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let sent = env
        .graphql(
            r#"mutation { transfer(input: {fromAccount: "A0001", toAccount: "EXT-0042", toBank: "Hana Bank", amount: 1000}) { status } }"#,
            json!({}),
        )
        .await;
    let events = events.await.expect("the reader finishes");
    env.stop().await;
    assert_eq!(events.len(), 2, "the snapshot and the change: {events:#?}");
    let total = |e: &Value| e["data"]["districtBalance"]["totalBalance"].as_i64().expect("a total");
    assert_eq!(events[0]["data"]["districtBalance"]["district"], "Gangnam-gu");
    assert_eq!(sent["data"]["transfer"]["status"], "COMPLETED", "{sent:#}");
    assert_eq!(total(&events[0]) - total(&events[1]), 1000, "{events:#?}");
}
