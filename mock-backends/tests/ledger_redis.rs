//! The distributed mode against a real `redis-server`: a burst of transfers
//! sent concurrently while the ledger is stopped and started again in the
//! middle. Afterwards the ledger has applied every event exactly once: its
//! aggregates are exactly the expected sums and agree with the accounts
//! service, nothing is pending in the consumer group.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use mock_bank::common::seed::{self, SeedData};
use mock_bank::{BankConfig, Service};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::redis_server::RedisServer;
use support::sse::SseClient;
use support::{start_bank_with, Harness};

const TRANSFERS: usize = 300;
const CONCURRENCY: usize = 24;
/// The ledger stops once this many transfers were answered...
const STOP_AFTER: usize = 100;
/// ...and starts again once this many were (the burst goes on meanwhile).
const START_AFTER: usize = 200;
const SETTLE: Duration = Duration::from_secs(30);

/// Deterministic orders: mostly internal, some external, some too large.
fn orders(data: &SeedData) -> Vec<Value> {
    let mut rng = StdRng::seed_from_u64(7);
    let accounts = &data.accounts;
    (0..TRANSFERS)
        .map(|_| {
            let from = &accounts[rng.random_range(0..accounts.len())].id;
            match rng.random_range(0..20) {
                0..=2 => json!({"from_account": from, "to_account": format!("EXT-{:04}", rng.random_range(1..=300)),
                    "to_bank": "Hana Bank", "amount": rng.random_range(1..=50) * 1000}),
                3..=4 => {
                    let to = if *from == accounts[0].id {
                        &accounts[1].id
                    } else {
                        &accounts[0].id
                    };
                    json!({"from_account": from, "to_account": to, "amount": 999_000_000_000_i64})
                }
                _ => {
                    let mut to = &accounts[rng.random_range(0..accounts.len())].id;
                    if to == from {
                        to = if *from == accounts[0].id {
                            &accounts[1].id
                        } else {
                            &accounts[0].id
                        };
                    }
                    json!({"from_account": from, "to_account": to, "amount": rng.random_range(1..=200) * 1000})
                }
            }
        })
        .collect()
}

/// Sends every order, `CONCURRENCY` at a time; counts answers in `answered`.
async fn burst(http: reqwest::Client, url: String, orders: Vec<Value>, answered: Arc<AtomicUsize>) -> Vec<Value> {
    futures::stream::iter(orders)
        .map(|order| {
            let (http, url, answered) = (http.clone(), url.clone(), answered.clone());
            async move {
                let response = http.post(&url).json(&order).send().await.expect("transfer sent");
                assert_eq!(response.status(), StatusCode::CREATED);
                let body: Value = response.json().await.expect("a transfer");
                answered.fetch_add(1, Ordering::SeqCst);
                body
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await
}

fn district_of_accounts(data: &SeedData) -> HashMap<String, String> {
    let of_customer: HashMap<&str, &str> = data
        .customers
        .iter()
        .map(|c| (c.id.as_str(), c.district.as_str()))
        .collect();
    data.accounts
        .iter()
        .filter_map(|a| Some((a.id.clone(), (*of_customer.get(a.customer_id.as_str())?).to_owned())))
        .collect()
}

/// Sum of the live account balances per district, from the accounts service.
async fn balances_by_district(h: &Harness, district_of: &HashMap<String, String>) -> BTreeMap<String, i64> {
    let mut sums = BTreeMap::new();
    let mut offset = 0;
    loop {
        let (status, page) = h
            .get(Service::Accounts, &format!("/accounts?limit=500&offset={offset}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().expect("items");
        for account in items {
            let id = account["id"].as_str().expect("an id");
            let district = district_of.get(id).expect("a known account").clone();
            *sums.entry(district).or_insert(0) += account["balance"].as_i64().expect("a balance");
        }
        offset += items.len();
        if items.is_empty() || offset >= page["total"].as_u64().unwrap_or(0) as usize {
            return sums;
        }
    }
}

/// The number of entries the group delivered but nobody acknowledged.
async fn pending(conn: &mut redis::aio::MultiplexedConnection) -> i64 {
    type Summary = (i64, Option<String>, Option<String>, Option<Vec<(String, String)>>);
    let summary: Summary = redis::cmd("XPENDING")
        .arg("bank:events")
        .arg("ledger")
        .query_async(conn)
        .await
        .expect("XPENDING");
    summary.0
}

async fn redis_int(conn: &mut redis::aio::MultiplexedConnection, cmd: &mut redis::Cmd) -> i64 {
    cmd.query_async(conn).await.expect("redis answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ledger_restarted_mid_burst_applies_every_event_exactly_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let config = BankConfig {
        redis_url: Some(redis.url()),
        ..BankConfig::default()
    };
    let h = start_bank_with(config).await;
    h.put(
        Service::ExternalBank,
        "/_config",
        json!({"flaky_rate": 0.3, "base_latency_ms": 1}),
    )
    .await;
    let data = seed::generate(42);
    let district_of = district_of_accounts(&data);
    let totals_before = h.district_totals().await;
    let (_, stats_before) = h.get(Service::Ledger, "/stats/transfers").await;
    let (_, live) = h.get(Service::Ledger, "/stats/ledger").await;
    assert_eq!(live["mode"], "redis");

    let answered = Arc::new(AtomicUsize::new(0));
    let sending = tokio::spawn(burst(
        support::client(Duration::from_secs(30)),
        h.url(Service::Transfers, "/transfers"),
        orders(&data),
        answered.clone(),
    ));
    let reached = |n: usize| {
        let answered = answered.clone();
        tokio::time::timeout(SETTLE, async move {
            while answered.load(Ordering::SeqCst) < n {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    reached(STOP_AFTER).await.expect("the burst gets going");
    h.bank.stop_ledger().await;
    let at_stop = answered.load(Ordering::SeqCst);
    let client = redis::Client::open(redis.url()).expect("a redis url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("redis connects");
    let pending_at_stop = pending(&mut conn).await;
    reached(START_AFTER)
        .await
        .expect("the burst goes on without the ledger");
    let at_start = answered.load(Ordering::SeqCst);
    h.bank.start_ledger().await.expect("the ledger starts again");
    let results = tokio::time::timeout(SETTLE, sending)
        .await
        .expect("the burst ends in time")
        .expect("the burst task succeeds");
    eprintln!(
        "ledger stopped after {at_stop} answers with {pending_at_stop} entries read but not acknowledged; \
         restarted after {at_start} of {TRANSFERS}"
    );
    assert!(at_start < TRANSFERS, "the restart happened after the burst");
    assert_eq!(results.len(), TRANSFERS);

    let stats = h.wait_applied(TRANSFERS as u64, SETTLE).await;

    // Expected from the answers alone.
    let mut expected = totals_before.clone();
    let (mut completed, mut failed) = (0, 0);
    for t in &results {
        if t["status"] != "COMPLETED" {
            failed += 1;
            continue;
        }
        completed += 1;
        let amount = t["amount"].as_i64().expect("an amount");
        let from = t["from_account"].as_str().expect("from");
        *expected.get_mut(&district_of[from]).expect("a district") -= amount;
        if t["to_bank"] == "Mosaic Bank" {
            let to = t["to_account"].as_str().expect("to");
            *expected.get_mut(&district_of[to]).expect("a district") += amount;
        }
    }
    assert!(
        completed > 100 && failed > 10,
        "a mixed burst: {completed} completed, {failed} failed"
    );
    assert_eq!(h.district_totals().await, expected);
    assert_eq!(balances_by_district(&h, &district_of).await, expected);
    let count = |v: &Value, k: &str| v[k].as_u64().expect("a count");
    assert_eq!(
        count(&stats, "completed"),
        count(&stats_before, "completed") + completed
    );
    assert_eq!(count(&stats, "failed"), count(&stats_before, "failed") + failed);
    let (_, bank_stats) = h.get(Service::ExternalBank, "/_stats").await;
    let verify_calls = bank_stats["endpoints"]["POST /verify"].as_u64().unwrap_or(0);
    assert!(verify_calls > 0);
    assert_eq!(
        count(&stats, "external_calls"),
        count(&stats_before, "external_calls") + verify_calls
    );

    // Redis agrees: every event applied once, nothing left pending.
    let (_, live) = h.get(Service::Ledger, "/stats/ledger").await;
    eprintln!(
        "the restarted ledger skipped {} duplicate deliveries",
        live["duplicates_skipped"]
    );
    let applied = redis_int(&mut conn, redis::cmd("SCARD").arg("bank:ledger:applied")).await;
    assert_eq!(applied, TRANSFERS as i64);
    let stream_len = redis_int(&mut conn, redis::cmd("XLEN").arg("bank:events")).await;
    assert!(stream_len >= TRANSFERS as i64, "{stream_len} entries");
    assert_eq!(pending(&mut conn).await, 0, "entries left pending");

    // Another restart, with nothing new: the state comes back from Redis.
    let totals = h.district_totals().await;
    h.bank.restart_ledger().await.expect("the ledger restarts");
    assert_eq!(h.wait_applied(TRANSFERS as u64, SETTLE).await, stats);
    assert_eq!(h.district_totals().await, totals);

    // And it streams: C001 (Gangnam-gu) pays someone elsewhere.
    let url = h.url(Service::Ledger, "/districts/Gangnam-gu/stream");
    let mut sse = SseClient::open(&support::streaming_client(), &url).await;
    let snapshot = sse.next_event(Duration::from_secs(5)).await.expect("a snapshot");
    assert_eq!(snapshot.json()["total_balance"], totals["Gangnam-gu"]);
    let to = data
        .accounts
        .iter()
        .find(|a| district_of[&a.id] != "Gangnam-gu")
        .expect("an account elsewhere");
    let sent = std::time::Instant::now();
    let order = json!({"from_account": "A0001", "to_account": to.id, "amount": 1});
    let (_, done) = h.post(Service::Transfers, "/transfers", order).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    let update = sse
        .next_event(Duration::from_secs(1))
        .await
        .expect("an update within 1 s");
    eprintln!("Redis mode: SSE update {:?} after sending the transfer", sent.elapsed());
    assert_eq!(update.json()["total_balance"], totals["Gangnam-gu"] - 1);
    assert_eq!(update.id.as_deref(), Some(format!("E{:06}", TRANSFERS + 1).as_str()));
    h.stop().await;
    drop(redis);
}
