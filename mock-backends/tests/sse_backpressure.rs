//! Back-pressure of the ledger's SSE: a subscriber that never reads is cut
//! off once its bounded queue is full, instead of being buffered forever,
//! while a subscriber that keeps up gets every change.

mod support;

use std::time::{Duration, Instant};

use mock_bank::common::seed;
use mock_bank::{BankConfig, Service};
use reqwest::StatusCode;
use serde_json::json;
use support::sse::SseClient;
use support::{start_bank_with, Harness};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Queue per SSE client in this test.
const SSE_BUFFER: usize = 64;
/// Concurrent transfers per round (at most 2 changes each, well within the
/// queue of a client that reads).
const ROUND: usize = 8;

/// Two accounts with money, of customers in different districts.
fn two_districts() -> (String, String) {
    let data = seed::generate(42);
    let district_of = |account: &mock_bank::common::models::Account| {
        data.customers
            .iter()
            .find(|c| c.id == account.customer_id)
            .map(|c| c.district.clone())
    };
    let rich: Vec<_> = data.accounts.iter().filter(|a| a.balance > 1_000_000).collect();
    let first = rich[0];
    let second = rich
        .iter()
        .find(|a| district_of(a) != district_of(first))
        .expect("a rich account elsewhere");
    (first.id.clone(), second.id.clone())
}

/// Runs one round of transfers both ways; returns how many completed.
async fn round(h: &Harness, a: &str, b: &str) -> usize {
    let sends = (0..ROUND).map(|i| {
        let (from, to) = if i % 2 == 0 { (a, b) } else { (b, a) };
        h.post(
            Service::Transfers,
            "/transfers",
            json!({"from_account": from, "to_account": to, "amount": 1}),
        )
    });
    futures::future::join_all(sends)
        .await
        .into_iter()
        .filter(|(status, body)| *status == StatusCode::CREATED && body["status"] == "COMPLETED")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_that_never_reads_is_cut_off() {
    let h = start_bank_with(BankConfig {
        sse_buffer: SSE_BUFFER,
        ..BankConfig::default()
    })
    .await;
    let (a, b) = two_districts();

    // The slow one: a small receive window, and it never reads.
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let mut slow = socket.connect(h.bank.addr(Service::Ledger)).await.expect("connects");
    slow.write_all(b"GET /stream HTTP/1.1\r\nhost: ledger\r\naccept: text/event-stream\r\n\r\n")
        .await
        .expect("request sent");

    // The fast one reads everything into a channel.
    let mut fast = SseClient::open(&support::streaming_client(), &h.url(Service::Ledger, "/stream")).await;
    let (tx, mut seen) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(event) = fast.next_event(Duration::from_secs(30)).await {
            if tx.send(event).is_err() {
                break;
            }
        }
    });

    let started = Instant::now();
    let mut completed = 0;
    let cut = loop {
        completed += round(&h, &a, &b).await;
        let (_, stats) = h.get(Service::Ledger, "/stats/ledger").await;
        if stats["sse"]["slow_disconnects"].as_u64() >= Some(1) {
            break stats;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the slow subscriber was never cut off: {stats}"
        );
    };
    eprintln!(
        "slow subscriber cut after {completed} transfers in {:?}",
        started.elapsed()
    );
    assert_eq!(cut["sse"]["subscribers"], 1, "the fast subscriber stays: {cut}");

    // The slow socket now ends: what was in flight, then EOF (or a reset).
    let mut sink = vec![0_u8; 64 * 1024];
    let mut drained = 0_usize;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match slow.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the slow connection is still open after {drained} bytes"
    );
    assert!(drained < 16 * 1024 * 1024, "bounded: {drained} bytes were buffered");

    // The fast subscriber got the 6 snapshots and every change, in order.
    let last = h
        .post(
            Service::Transfers,
            "/transfers",
            json!({"from_account": a, "to_account": b, "amount": 1}),
        )
        .await
        .1;
    assert_eq!(last["status"], "COMPLETED");
    completed += 1;
    let expected = 6 + 2 * completed;
    let mut events = Vec::new();
    while events.len() < expected {
        let event = tokio::time::timeout(Duration::from_secs(5), seen.recv())
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("the fast subscriber got {} of {expected} events", events.len()));
        events.push(event);
    }
    assert!(events.iter().all(|e| e.event.as_deref() == Some("district")));
    reader.abort();
    h.stop().await;
}
