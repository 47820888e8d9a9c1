//! Unit tests of the ledger's deltas, aggregates and SSE hub.

use super::sse::Hub;
use super::state::{field, Aggregates, Baseline, Delta};
use crate::common::conn::ConnHandle;
use crate::common::events::{TransferEvent, TransferEventType};
use crate::common::models::{Transfer, TransferStatus};
use crate::common::seed::{self, SeedData};
use crate::common::OWN_BANK;

fn event(n: u64, from: &str, to: &str, bank: &str, amount: i64, status: TransferStatus, calls: u32) -> TransferEvent {
    TransferEvent {
        event_id: format!("E{n:06}"),
        event_type: TransferEventType::for_status(status),
        transfer: Transfer {
            id: format!("T9{n:04}"),
            from_account: from.to_owned(),
            to_account: to.to_owned(),
            to_bank: bank.to_owned(),
            amount,
            status,
            created_at: String::new(),
            failure_reason: None,
        },
        at: String::new(),
        external_calls: calls,
    }
}

/// An account of a customer in `district`, and one elsewhere.
fn accounts(data: &SeedData) -> (String, String, String, String) {
    let district_of = |customer: &str| {
        data.customers
            .iter()
            .find(|c| c.id == customer)
            .map(|c| c.district.clone())
            .unwrap_or_default()
    };
    let a = &data.accounts[0];
    let da = district_of(&a.customer_id);
    let b = data
        .accounts
        .iter()
        .find(|b| district_of(&b.customer_id) != da)
        .unwrap_or(a);
    (a.id.clone(), da, b.id.clone(), district_of(&b.customer_id))
}

fn total(aggregates: &Aggregates, district: &str) -> i64 {
    aggregates.districts.get(district).map_or(0, |d| d.total_balance)
}

#[test]
fn the_seed_baseline_sums_balances_per_district() {
    let data = seed::generate(42);
    let fresh = Baseline::from_seed(&data).fresh();
    let all: i64 = data.accounts.iter().map(|a| a.balance).sum();
    assert_eq!(fresh.districts.values().map(|d| d.total_balance).sum::<i64>(), all);
    assert_eq!(fresh.districts.len(), 6);
    let counted = fresh.transfers.completed + fresh.transfers.failed;
    assert_eq!(counted, data.transfers.len() as u64);
    assert_eq!(fresh.transfers.external_calls, data.calls.len() as u64);
    assert!(fresh.external.calls <= fresh.transfers.external_calls);
}

#[test]
fn completed_internal_transfers_move_money_between_districts() {
    let data = seed::generate(42);
    let baseline = Baseline::from_seed(&data);
    let (a, da, b, db) = accounts(&data);
    let mut live = baseline.fresh();
    let delta = baseline.delta(&event(1, &a, &b, OWN_BANK, 500, TransferStatus::Completed, 0));
    assert_eq!(delta.balances.len(), 2);
    let changed = live.apply(&delta);
    assert_eq!(changed.len(), 2);
    let seed = baseline.fresh();
    assert_eq!(total(&live, &da), total(&seed, &da) - 500);
    assert_eq!(total(&live, &db), total(&seed, &db) + 500);
    assert_eq!(live.transfers.completed, seed.transfers.completed + 1);
    assert_eq!(live.transfers.events_applied, 1);
    assert_eq!(live.transfers.last_event_id.as_deref(), Some("E000001"));
    assert_eq!(live.transfer_calls.get("T90001"), Some(&0));
}

#[test]
fn external_and_failed_transfers() {
    let data = seed::generate(42);
    let baseline = Baseline::from_seed(&data);
    let (a, da, _, _) = accounts(&data);
    let seed = baseline.fresh();
    let mut live = baseline.fresh();
    live.apply(&baseline.delta(&event(
        1,
        &a,
        "EXT-0001",
        "Hana Bank",
        700,
        TransferStatus::Completed,
        3,
    )));
    assert_eq!(total(&live, &da), total(&seed, &da) - 700);
    assert_eq!(live.external.transfers, seed.external.transfers + 1);
    assert_eq!(live.external.calls, seed.external.calls + 3);
    assert_eq!(live.transfer_calls.get("T90001"), Some(&3));

    let failed = baseline.delta(&event(2, &a, "EXT-0001", "Hana Bank", 700, TransferStatus::Failed, 3));
    assert!(failed.balances.is_empty());
    assert!(failed.transfer_calls.is_none());
    assert!(live.apply(&failed).is_empty());
    assert_eq!(live.transfers.failed, seed.transfers.failed + 1);
    assert_eq!(live.transfers.external_calls, seed.transfers.external_calls + 6);
    assert_eq!(live.external.calls, seed.external.calls + 3);
}

#[test]
fn a_transfer_within_one_district_changes_no_total() {
    let data = seed::generate(42);
    let baseline = Baseline::from_seed(&data);
    let customer = &data.accounts[0].customer_id;
    let same: Vec<&str> = data
        .accounts
        .iter()
        .filter(|a| a.customer_id == *customer)
        .map(|a| a.id.as_str())
        .collect();
    if let [x, y, ..] = same[..] {
        let delta = baseline.delta(&event(1, x, y, OWN_BANK, 10, TransferStatus::Completed, 0));
        assert!(delta.balances.is_empty());
    }
}

#[test]
fn stored_fields_round_trip() {
    let data = seed::generate(42);
    let baseline = Baseline::from_seed(&data);
    let (a, _, b, _) = accounts(&data);
    let mut live = baseline.fresh();
    live.apply(&baseline.delta(&event(1, &a, &b, OWN_BANK, 5, TransferStatus::Completed, 0)));
    let mut loaded = baseline.fresh();
    for (name, value) in live.fields() {
        loaded.set(&name, value);
    }
    assert_eq!(loaded.fields(), live.fields());
    assert_eq!(loaded.districts, live.districts);
    let delta = Delta {
        event_id: "E1".into(),
        counters: vec![(field::COMPLETED, 1)],
        ..Delta::default()
    };
    assert_eq!(delta.increments(), [(field::COMPLETED.to_owned(), 1)]);
}

#[tokio::test]
async fn the_hub_cuts_a_subscriber_whose_queue_is_full() {
    let data = seed::generate(42);
    let fresh = Baseline::from_seed(&data).fresh();
    let gangnam = fresh.districts.get("Gangnam-gu").cloned().unwrap_or_default();
    let mapo = fresh.districts.get("Mapo-gu").cloned().unwrap_or_default();
    let hub = Hub::new(2);
    let slow_conn = ConnHandle::default();
    let _slow = hub.subscribe(Some("Gangnam-gu".into()), Some(slow_conn.clone()));
    let mut mapo_only = hub.subscribe(Some("Mapo-gu".into()), None);
    for n in 1..=3 {
        hub.publish(&format!("E{n:06}"), std::slice::from_ref(&gangnam));
    }
    assert!(slow_conn.is_killed());
    assert_eq!(hub.stats().slow_disconnects, 1);
    assert_eq!(hub.stats().subscribers, 1);
    assert!(
        mapo_only.try_recv().is_err(),
        "no Gangnam-gu change for a Mapo-gu client"
    );
    hub.publish("E000004", &[gangnam, mapo]);
    assert!(mapo_only.try_recv().is_ok());
    hub.close_all();
    assert_eq!(hub.stats().subscribers, 0);
}
