//! The services split across processes, as `docker-compose.yml` runs them (one container each):
//! transfers calls accounts and external-bank over HTTP at the URLs it is given, and its events
//! reach a ledger in another process through Redis.

mod support;

use std::time::Duration;

use mock_bank::common::seed;
use mock_bank::{BankConfig, Service, UpstreamUrls};
use serde_json::{json, Value};
use support::redis_server::RedisServer;

async fn get(client: &reqwest::Client, url: String) -> Value {
    client
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_in_separate_processes_still_work_together() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let ledger = mock_bank::start(BankConfig {
        only: Some(vec![Service::Ledger]),
        redis_url: Some(redis.url()),
        ..BankConfig::default()
    })
    .await
    .expect("the ledger starts alone");
    let others = mock_bank::start(BankConfig {
        only: Some(vec![Service::Customers, Service::Accounts, Service::ExternalBank]),
        ..BankConfig::default()
    })
    .await
    .expect("customers, accounts and external-bank start");
    let transfers = mock_bank::start(BankConfig {
        only: Some(vec![Service::Transfers]),
        redis_url: Some(redis.url()),
        upstreams: UpstreamUrls {
            accounts: Some(others.url(Service::Accounts)),
            external_bank: Some(others.url(Service::ExternalBank)),
        },
        ..BankConfig::default()
    })
    .await
    .expect("transfers starts alone");

    // Only the services asked for listen.
    let client = reqwest::Client::new();
    let idle = others.url(Service::Transfers);
    assert!(
        client.get(format!("{idle}/health")).send().await.is_err(),
        "transfers is not served by the other process"
    );

    let data = seed::generate(42);
    let (from, to) = (&data.accounts[0].id, &data.accounts[1].id);
    let balance = |id: &str| get(&client, format!("{}/accounts/{id}", others.url(Service::Accounts)));
    let before = balance(from).await["balance"].as_i64().expect("a balance");
    let stats_url = format!("{}/stats/transfers", ledger.url(Service::Ledger));
    let completed_before = get(&client, stats_url.clone()).await["completed"]
        .as_u64()
        .expect("a count");

    let response = client
        .post(format!("{}/transfers", transfers.url(Service::Transfers)))
        .json(&json!({"from_account": from, "to_account": to, "amount": 1000}))
        .send()
        .await
        .expect("transfers answers");
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    let done: Value = response.json().await.expect("json");
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(
        balance(from).await["balance"].as_i64(),
        Some(before - 1000),
        "accounts was called"
    );

    // The event crossed Redis to the ledger's process.
    let mut completed = completed_before;
    for _ in 0..100 {
        completed = get(&client, stats_url.clone()).await["completed"]
            .as_u64()
            .expect("a count");
        if completed > completed_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        completed,
        completed_before + 1,
        "the ledger applied the transfer's event"
    );

    transfers.shutdown().await;
    others.shutdown().await;
    ledger.shutdown().await;
}
