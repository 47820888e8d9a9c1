//! The deterministic seed data every service starts from. The same seed
//! always yields the same customers, accounts, transfers and external calls.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use super::models::{Account, CallOutcome, Customer, ExternalCall, Tier, Transfer, TransferStatus, DISTRICTS};
use super::time::rfc3339;
use super::OWN_BANK;

/// Number of seeded customers.
pub const CUSTOMER_COUNT: usize = 200;
/// The external banks transfers may go to.
pub const EXTERNAL_BANKS: [&str; 3] = ["Hana Bank", "Shinhan Bank", "Woori Bank"];
/// The reason of a transfer whose external verification never succeeded.
pub const EXTERNAL_UNAVAILABLE: &str = "external bank unavailable";
/// The reason of a transfer whose source account lacked the money.
pub const INSUFFICIENT_FUNDS: &str = "insufficient funds";

const FAMILY_NAMES: [&str; 15] = [
    "Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon", "Jang", "Lim", "Han", "Oh", "Seo", "Shin", "Kwon",
];
const GIVEN_NAMES: [&str; 18] = [
    "Minji", "Jiwoo", "Seoyeon", "Hyunwoo", "Jihoon", "Sooah", "Yuna", "Doyoon", "Hayun", "Junseo", "Eunji", "Taeyang",
    "Minseo", "Seojun", "Jiho", "Dahye", "Yerin", "Sungmin",
];

const DAY: i64 = 86_400;
/// 2015-01-01T00:00:00Z: the earliest `joined_at`.
const JOIN_START: i64 = 1_420_070_400;
/// 2024-12-31T00:00:00Z: the latest `opened_at`.
const OPEN_END: i64 = 1_735_603_200;
/// 2025-01-01T00:00:00Z: the first seeded transfer's `created_at`.
const TRANSFER_START: i64 = 1_735_689_600;

/// Everything seeded, in id order.
#[derive(Debug, Clone)]
pub struct SeedData {
    pub customers: Vec<Customer>,
    pub accounts: Vec<Account>,
    pub transfers: Vec<Transfer>,
    pub calls: Vec<ExternalCall>,
}

/// `C001`.
pub fn customer_id(n: usize) -> String {
    format!("C{n:03}")
}

/// `A0001`.
pub fn account_id(n: usize) -> String {
    format!("A{n:04}")
}

/// `T00001`.
pub fn transfer_id(n: usize) -> String {
    format!("T{n:05}")
}

/// `X000001`.
pub fn call_id(n: usize) -> String {
    format!("X{n:06}")
}

/// `EXT-0001`; external account `n` always lives at the same bank.
fn external_account(n: usize) -> (String, &'static str) {
    (format!("EXT-{n:04}"), EXTERNAL_BANKS[(n - 1) % EXTERNAL_BANKS.len()])
}

/// Builds the seed data for `seed`.
pub fn generate(seed: u64) -> SeedData {
    let mut rng = StdRng::seed_from_u64(seed);
    let (customers, joined) = customers(&mut rng);
    let accounts = accounts(&mut rng, &customers, &joined);
    let (transfers, calls) = transfers(&mut rng, &accounts);
    SeedData {
        customers,
        accounts,
        transfers,
        calls,
    }
}

fn pick<T: Copy>(rng: &mut StdRng, items: &[T]) -> T {
    // The lists are constant and non-empty.
    *items.choose(rng).unwrap_or(&items[0])
}

/// The customers and, for each, the `joined_at` instant in seconds.
fn customers(rng: &mut StdRng) -> (Vec<Customer>, Vec<i64>) {
    (1..=CUSTOMER_COUNT)
        .map(|n| {
            let family = pick(rng, &FAMILY_NAMES);
            let given = pick(rng, &GIVEN_NAMES);
            let district = if n == 1 { DISTRICTS[0] } else { pick(rng, &DISTRICTS) };
            let tier = match rng.random_range(0..10) {
                0..=1 => Tier::Gold,
                2..=5 => Tier::Silver,
                _ => Tier::Bronze,
            };
            let joined = JOIN_START + rng.random_range(0..3650) * DAY;
            let customer = Customer {
                id: customer_id(n),
                full_name: format!("{family} {given}"),
                district: district.to_owned(),
                tier,
                joined_at: rfc3339(joined),
            };
            (customer, joined)
        })
        .unzip()
}

fn accounts(rng: &mut StdRng, customers: &[Customer], joined: &[i64]) -> Vec<Account> {
    let mut accounts = Vec::new();
    for (customer, &joined) in customers.iter().zip(joined) {
        for _ in 0..rng.random_range(1..=5) {
            let latest = ((OPEN_END - joined) / DAY).clamp(1, 720);
            let opened = joined + rng.random_range(0..latest) * DAY;
            accounts.push(Account {
                id: account_id(accounts.len() + 1),
                customer_id: customer.id.clone(),
                balance: rng.random_range(0..10_000_000),
                currency: "KRW".to_owned(),
                bank: OWN_BANK.to_owned(),
                opened_at: rfc3339(opened),
            });
        }
    }
    accounts
}

fn transfers(rng: &mut StdRng, accounts: &[Account]) -> (Vec<Transfer>, Vec<ExternalCall>) {
    let count = accounts.len() * 3;
    let mut transfers = Vec::with_capacity(count);
    let mut calls = Vec::new();
    let mut created = TRANSFER_START;
    for n in 1..=count {
        created += rng.random_range(600..7200);
        let from = rng.random_range(0..accounts.len());
        let external = rng.random_bool(0.25);
        let (to_account, to_bank) = if external {
            external_account(rng.random_range(1..=300))
        } else {
            let mut to = rng.random_range(0..accounts.len() - 1);
            if to >= from {
                to += 1;
            }
            (accounts[to].id.clone(), OWN_BANK)
        };
        let completed = rng.random_bool(0.85);
        let failure_reason = match (completed, external) {
            (true, _) => None,
            (false, true) if rng.random_bool(0.5) => Some(EXTERNAL_UNAVAILABLE),
            (false, _) => Some(INSUFFICIENT_FUNDS),
        };
        let id = transfer_id(n);
        if external {
            let verified = failure_reason != Some(EXTERNAL_UNAVAILABLE);
            let attempts = rng.random_range(1..=4_i64);
            for k in 0..attempts {
                let outcome = if verified && k == attempts - 1 {
                    CallOutcome::Ok
                } else if rng.random_bool(0.5) {
                    CallOutcome::Timeout
                } else {
                    CallOutcome::Error
                };
                calls.push(ExternalCall {
                    call_id: call_id(calls.len() + 1),
                    transfer_id: id.clone(),
                    operation: "verify_account".to_owned(),
                    outcome,
                    at: rfc3339(created - 2 * (attempts - k)),
                });
            }
        }
        transfers.push(Transfer {
            id,
            from_account: accounts[from].id.clone(),
            to_account,
            to_bank: to_bank.to_owned(),
            amount: rng.random_range(10..=5_000) * 1_000,
            status: if completed {
                TransferStatus::Completed
            } else {
                TransferStatus::Failed
            },
            created_at: rfc3339(created),
            failure_reason: failure_reason.map(str::to_owned),
        });
    }
    (transfers, calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_data() {
        let a = generate(42);
        let b = generate(42);
        assert_eq!(a.customers, b.customers);
        assert_eq!(a.accounts, b.accounts);
        assert_eq!(a.transfers, b.transfers);
        assert_eq!(a.calls, b.calls);
        assert_ne!(generate(7).customers, a.customers);
    }

    #[test]
    fn shape_matches_the_brief() {
        let data = generate(42);
        assert_eq!(data.customers.len(), CUSTOMER_COUNT);
        assert_eq!(data.customers[0].id, "C001");
        assert_eq!(data.customers[0].district, "Gangnam-gu");
        assert_eq!(data.customers[199].id, "C200");
        assert_eq!(data.accounts[0].id, "A0001");
        for customer in &data.customers {
            let n = data.accounts.iter().filter(|a| a.customer_id == customer.id).count();
            assert!((1..=5).contains(&n), "{} has {n} accounts", customer.id);
        }
        assert_eq!(data.transfers.len(), data.accounts.len() * 3);
        assert!(data.transfers.windows(2).all(|w| w[0].created_at < w[1].created_at));
        let external = data.transfers.iter().filter(|t| t.to_bank != OWN_BANK);
        for transfer in external {
            let calls: Vec<_> = data.calls.iter().filter(|c| c.transfer_id == transfer.id).collect();
            assert!((1..=4).contains(&calls.len()));
            if transfer.status == TransferStatus::Completed {
                assert_eq!(calls.last().map(|c| c.outcome), Some(CallOutcome::Ok));
            }
        }
        assert!(data
            .transfers
            .iter()
            .all(|t| (t.status == TransferStatus::Failed) == t.failure_reason.is_some()));
    }
}
