//! The in-process ledger over real loopback HTTP: transfers move district
//! totals exactly, failures only count, SSE subscribers see the snapshot
//! then each change quickly, and a restarted ledger replays the log.

mod support;

use std::time::{Duration, Instant};

use mock_bank::common::seed;
use mock_bank::Service;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::sse::SseClient;
use support::{start_bank, Harness};

const GANGNAM: &str = "Gangnam-gu";
const WAIT: Duration = Duration::from_secs(5);

/// C001's first account (C001 lives in Gangnam-gu), and the first account
/// of the first customer living elsewhere, with that district.
fn accounts_in_two_districts() -> (String, String, String) {
    let data = seed::generate(42);
    let first_account = |customer: &str| {
        data.accounts
            .iter()
            .find(|a| a.customer_id == customer)
            .map(|a| a.id.clone())
            .expect("every customer has an account")
    };
    assert_eq!(data.customers[0].district, GANGNAM);
    let other = data
        .customers
        .iter()
        .find(|c| c.district != GANGNAM)
        .expect("a customer outside Gangnam-gu");
    (first_account("C001"), first_account(&other.id), other.district.clone())
}

async fn district(h: &Harness, name: &str) -> Value {
    let (status, body) = h.get(Service::Ledger, &format!("/districts/{name}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn transfer(h: &Harness, from: &str, to: &str, amount: i64) -> Value {
    let order = json!({"from_account": from, "to_account": to, "amount": amount});
    let (status, body) = h.post(Service::Transfers, "/transfers", order).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transfer_moves_both_totals_and_reaches_stream_subscribers() {
    let h = start_bank().await;
    let (gangnam_account, other_account, other) = accounts_in_two_districts();
    let (gangnam_before, other_before) = (district(&h, GANGNAM).await, district(&h, &other).await);

    let mut one = SseClient::open(
        &support::streaming_client(),
        &h.url(Service::Ledger, "/districts/Gangnam-gu/stream"),
    )
    .await;
    let snapshot = one.next_event(WAIT).await.expect("a snapshot");
    assert_eq!(snapshot.event.as_deref(), Some("district"));
    assert_eq!(snapshot.id.as_deref(), Some("E000000"));
    assert_eq!(snapshot.json(), gangnam_before);
    let mut all = SseClient::open(&support::streaming_client(), &h.url(Service::Ledger, "/stream")).await;
    let mut names = Vec::new();
    for _ in 0..6 {
        let event = all.next_event(WAIT).await.expect("a district snapshot");
        names.push(event.json()["district"].as_str().map(str::to_owned));
    }
    assert_eq!(names.len(), 6);

    let sent = Instant::now();
    let done = transfer(&h, &gangnam_account, &other_account, 1000).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    let answered = sent.elapsed();
    let update = one
        .next_event(Duration::from_secs(1))
        .await
        .expect("the update within 1 s");
    let latency = sent.elapsed();
    eprintln!("POST /transfers answered in {answered:?}; SSE update {latency:?} after sending it");
    assert!(latency < Duration::from_secs(1));
    assert_eq!(update.event.as_deref(), Some("district"));
    assert_eq!(update.id.as_deref(), Some("E000001"));
    let expected_gangnam = gangnam_before["total_balance"].as_i64().expect("a total") - 1000;
    assert_eq!(update.json()["total_balance"], expected_gangnam);
    assert_eq!(update.json()["customers"], gangnam_before["customers"]);

    let mut changed = Vec::new();
    for _ in 0..2 {
        let event = all
            .next_event(Duration::from_secs(1))
            .await
            .expect("a change on /stream");
        changed.push((event.json()["district"].clone(), event.json()["total_balance"].clone()));
    }
    changed.sort_by_key(|(d, _)| d.to_string());
    let expected_other = other_before["total_balance"].as_i64().expect("a total") + 1000;
    let mut expected = vec![
        (json!(GANGNAM), json!(expected_gangnam)),
        (json!(other), json!(expected_other)),
    ];
    expected.sort_by_key(|(d, _)| d.to_string());
    assert_eq!(changed, expected);

    assert_eq!(district(&h, GANGNAM).await["total_balance"], expected_gangnam);
    assert_eq!(district(&h, &other).await["total_balance"], expected_other);
    let (_, stats) = h.get(Service::Ledger, "/_stats").await;
    assert_eq!(stats["endpoints"]["GET /districts/{district}/stream"], 1);
    assert_eq!(stats["endpoints"]["GET /stream"], 1);
    let (_, live) = h.get(Service::Ledger, "/stats/ledger").await;
    assert_eq!(live["mode"], "in-process");
    assert_eq!(live["sse"]["subscribers"], 2);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_transfer_counts_but_moves_no_balance() {
    let h = start_bank().await;
    let (gangnam_account, other_account, _) = accounts_in_two_districts();
    let totals_before = h.district_totals().await;
    let (_, stats_before) = h.get(Service::Ledger, "/stats/transfers").await;

    let done = transfer(&h, &gangnam_account, &other_account, 999_000_000_000).await;
    assert_eq!(done["status"], "FAILED");
    let stats = h.wait_applied(1, WAIT).await;
    assert_eq!(h.district_totals().await, totals_before);
    assert_eq!(stats["failed"], stats_before["failed"].as_u64().expect("a count") + 1);
    assert_eq!(stats["completed"], stats_before["completed"]);
    assert_eq!(stats["last_event_id"], "E000001");
    let id = done["id"].as_str().expect("an id");
    let (status, _) = h
        .get(Service::Ledger, &format!("/stats/external-calls?transfer_id={id}"))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a failed transfer has no completed-call count"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_transfer_records_its_calls() {
    let h = start_bank().await;
    h.put(
        Service::ExternalBank,
        "/_config",
        json!({"flaky_rate": 0.0, "base_latency_ms": 0}),
    )
    .await;
    let (gangnam_account, _, _) = accounts_in_two_districts();
    let before = district(&h, GANGNAM).await["total_balance"].as_i64().expect("a total");
    let (_, calls_before) = h.get(Service::Ledger, "/stats/external-calls").await;

    let order =
        json!({"from_account": gangnam_account, "to_account": "EXT-0001", "to_bank": "Hana Bank", "amount": 7000});
    let (_, done) = h.post(Service::Transfers, "/transfers", order).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    let stats = h.wait_applied(1, WAIT).await;
    assert_eq!(district(&h, GANGNAM).await["total_balance"], before - 7000);
    let id = done["id"].as_str().expect("an id");
    let (status, one) = h
        .get(Service::Ledger, &format!("/stats/external-calls?transfer_id={id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, json!({"transfer_id": id, "external_calls": 1}));
    let (_, calls) = h.get(Service::Ledger, "/stats/external-calls").await;
    assert_eq!(calls["transfers"], calls_before["transfers"].as_u64().expect("n") + 1);
    assert_eq!(calls["calls"], calls_before["calls"].as_u64().expect("n") + 1);
    let (_, events) = h.get(Service::Transfers, "/events").await;
    assert_eq!(events[0]["external_calls"], 1);
    assert!(stats["external_calls"].as_u64().is_some());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_districts_faults_and_an_in_process_restart() {
    let h = start_bank().await;
    let (status, body) = h.get(Service::Ledger, "/districts/Atlantis/stream").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"error": "not found"}));
    h.put(Service::Ledger, "/_faults", json!({"down": true})).await;
    let (status, _) = h.get(Service::Ledger, "/stream").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    h.post(Service::Ledger, "/_faults/reset", json!({})).await;

    let (gangnam_account, other_account, _) = accounts_in_two_districts();
    transfer(&h, &gangnam_account, &other_account, 2500).await;
    transfer(&h, &other_account, &gangnam_account, 100).await;
    h.wait_applied(2, WAIT).await;
    let totals = h.district_totals().await;
    let (_, stats) = h.get(Service::Ledger, "/stats/transfers").await;

    tokio::time::timeout(WAIT, h.bank.restart_ledger())
        .await
        .expect("restart in time")
        .expect("the ledger restarts");
    let replayed = h.wait_applied(2, WAIT).await;
    assert_eq!(replayed, stats, "the replayed log gives the same counts");
    assert_eq!(h.district_totals().await, totals);
    h.stop().await;
}
