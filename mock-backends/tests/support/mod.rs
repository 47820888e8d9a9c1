//! Shared helpers of the integration tests: a bank on ephemeral loopback
//! ports and a bounded HTTP client.
#![allow(dead_code)]

pub mod redis_server;
pub mod sse;

use std::time::Duration;

use mock_bank::{start, Bank, BankConfig, Service};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Every test request gives up after this long.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Harness {
    pub bank: Bank,
    pub http: reqwest::Client,
}

pub async fn start_bank() -> Harness {
    start_bank_with(BankConfig::default()).await
}

pub async fn start_bank_with(config: BankConfig) -> Harness {
    let bank = start(config).await.expect("bank starts");
    let http = client(CLIENT_TIMEOUT);
    Harness { bank, http }
}

/// A client for endless responses (SSE): no overall timeout, only on connect.
pub fn streaming_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(CLIENT_TIMEOUT)
        .build()
        .expect("client builds")
}

pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .expect("client builds")
}

impl Harness {
    pub fn url(&self, service: Service, path: &str) -> String {
        format!("{}{path}", self.bank.url(service))
    }

    /// Sends a request (with an optional JSON body) and returns the status
    /// and the JSON body (`Null` when empty).
    pub async fn call(&self, method: Method, service: Service, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(service, path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request succeeds");
        let status = response.status();
        let text = response.text().await.expect("body readable");
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        (status, json)
    }

    pub async fn get(&self, service: Service, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, service, path, None).await
    }

    pub async fn post(&self, service: Service, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, service, path, Some(body)).await
    }

    pub async fn put(&self, service: Service, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, service, path, Some(body)).await
    }

    /// The balance of an account.
    pub async fn balance(&self, account: &str) -> i64 {
        let (status, body) = self.get(Service::Accounts, &format!("/accounts/{account}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["balance"].as_i64().expect("balance is an integer")
    }

    /// Polls the ledger until it has applied `count` run-time events.
    pub async fn wait_applied(&self, count: u64, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Right after a ledger restart a pooled connection to the old
            // server may fail once: that is a retry, not a failure.
            let (status, stats) = match self
                .http
                .get(self.url(Service::Ledger, "/stats/transfers"))
                .send()
                .await
            {
                Ok(response) => (response.status(), response.json().await.unwrap_or(Value::Null)),
                Err(e) => (StatusCode::SERVICE_UNAVAILABLE, Value::String(e.to_string())),
            };
            if status == StatusCode::OK && stats["events_applied"].as_u64() == Some(count) {
                return stats;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the ledger did not apply {count} events within {timeout:?}: {status} {stats}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every district's live total, by name.
    pub async fn district_totals(&self) -> std::collections::BTreeMap<String, i64> {
        let (status, body) = self.get(Service::Ledger, "/districts").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body.as_array()
            .expect("an array")
            .iter()
            .map(|d| {
                let name = d["district"].as_str().expect("a name").to_owned();
                (name, d["total_balance"].as_i64().expect("a total"))
            })
            .collect()
    }

    /// Stops the bank, failing the test if that takes too long.
    pub async fn stop(self) {
        tokio::time::timeout(Duration::from_secs(15), self.bank.shutdown())
            .await
            .expect("bank shuts down in time");
    }
}
