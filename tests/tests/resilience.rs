//! Resilience as a client sees it: failed idempotent calls are tried again (client errors and
//! mutations are not), and a backend that keeps failing opens its circuit breaker, is left alone,
//! and is called again once it answers its health probe.

use mock_bank::Service;
use mosaic_tests::{assert_backend_errors, errors, TestEnv};
use serde_json::{json, Value};

#[tokio::test]
async fn a_failing_idempotent_call_is_tried_three_times() {
    let env = TestEnv::start().await;
    env.set_faults(Service::Customers, json!({"status": 503})).await;
    env.reset_stats().await;
    let response = env.graphql(r#"{ customer(id: "C001") { name } }"#, json!({})).await;
    env.reset_faults().await;
    assert_backend_errors(&response, "BACKEND_UNAVAILABLE", "customers", false);
    assert_eq!(
        env.calls().await["customers"]["GET /customers/{id}"],
        3,
        "attempts = 3 by default"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let env = TestEnv::start().await;
    env.set_faults(Service::Customers, json!({"status": 400})).await;
    env.reset_stats().await;
    let response = env.graphql(r#"{ customer(id: "C001") { name } }"#, json!({})).await;
    env.reset_faults().await;
    assert_backend_errors(&response, "BACKEND_ERROR", "customers", false);
    assert_eq!(env.calls().await["customers"]["GET /customers/{id}"], 1);
    env.stop().await;
}

#[tokio::test]
async fn a_failing_mutation_is_not_retried() {
    let env = TestEnv::start().await;
    env.set_faults(Service::Transfers, json!({"status": 503})).await;
    env.reset_stats().await;
    let response = env
        .graphql(
            r#"mutation { transfer(input: { fromAccount: "A0001", toAccount: "A0002", amount: 1 }) { id } }"#,
            json!({}),
        )
        .await;
    env.reset_faults().await;
    assert_eq!(response["data"], Value::Null, "transfer is non-null: {response:#}");
    assert_backend_errors(&response, "BACKEND_UNAVAILABLE", "transfers", false);
    assert_eq!(env.calls().await["transfers"]["POST /transfers"], 1);
    env.stop().await;
}

#[tokio::test]
async fn a_backend_that_keeps_failing_opens_its_breaker_is_left_alone_then_recovers() {
    let env = TestEnv::start().await;
    let query = r#"{ customer(id: "C001") { accounts { id } } }"#;
    env.set_faults(Service::Accounts, json!({"down": true})).await;
    // The demo's accounts breaker opens once half of at least 5 calls failed.
    let mut opened = false;
    for _ in 0..10 {
        let response = env.graphql(query, json!({})).await;
        if errors(&response)[0]["extensions"]["code"] == "CIRCUIT_OPEN" {
            assert_backend_errors(&response, "CIRCUIT_OPEN", "accounts", true);
            opened = true;
            break;
        }
        assert_backend_errors(&response, "BACKEND_UNAVAILABLE", "accounts", true);
    }
    assert!(opened, "the breaker never opened");

    env.reset_stats().await;
    let response = env.graphql(query, json!({})).await;
    assert_eq!(errors(&response)[0]["extensions"]["code"], "CIRCUIT_OPEN");
    assert!(
        !env.calls().await.contains_key("accounts"),
        "an open breaker let a call through"
    );

    // Once /health answers again (probed every 500ms), trial calls go through and succeed.
    env.reset_faults().await;
    let mut recovered = None;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let response = env.graphql(query, json!({})).await;
        if response.get("errors").is_none() {
            recovered = Some(response);
            break;
        }
    }
    let response = recovered.expect("the breaker closed within 4 s of the backend's recovery");
    assert_eq!(
        response["data"]["customer"]["accounts"].as_array().map(Vec::len),
        Some(4)
    );
    env.stop().await;
}
