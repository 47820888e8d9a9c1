//! The ledger's read model: aggregates computed from the seed, then moved
//! by every transfer event. An event is first turned into a [`Delta`] (what
//! it changes), which is applied to the in-memory [`Aggregates`] and, in
//! distributed mode, to the same counters kept in Redis.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::common::events::{TransferEvent, TransferEventType};
use crate::common::models::{TransferStatus, DISTRICTS};
use crate::common::seed::SeedData;
use crate::common::OWN_BANK;

/// Aggregates of one district (also the `data` of every SSE event).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DistrictSummary {
    #[schema(example = "Gangnam-gu")]
    pub district: String,
    /// Sum of the balances of the district's customers' accounts, in won.
    pub total_balance: i64,
    pub customers: usize,
    pub accounts: usize,
}

/// Transfer outcome counts, seed included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TransferStats {
    pub completed: u64,
    pub failed: u64,
    /// Calls made to the external bank, for all transfers.
    pub external_calls: u64,
    /// Run-time events applied (each exactly once).
    pub events_applied: u64,
    /// The id of the last event applied, if any.
    #[schema(example = "E000042")]
    pub last_event_id: Option<String>,
}

/// External-bank calls made for transfers that completed, seed included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExternalCallStats {
    /// Completed transfers that called the external bank.
    pub transfers: u64,
    /// The calls those transfers made.
    pub calls: u64,
}

/// Names of the counters shared by [`Aggregates`], [`Delta`] and Redis.
pub mod field {
    pub const COMPLETED: &str = "completed";
    pub const FAILED: &str = "failed";
    pub const EXTERNAL_CALLS: &str = "external_calls";
    pub const EVENTS_APPLIED: &str = "events_applied";
    pub const COMPLETED_TRANSFERS_CALLING: &str = "completed_external_transfers";
    pub const COMPLETED_CALLS: &str = "completed_external_calls";
    pub const LAST_EVENT_ID: &str = "last_event_id";
    const BALANCE: &str = "balance:";

    /// `balance:Gangnam-gu`.
    pub fn balance(district: &str) -> String {
        format!("{BALANCE}{district}")
    }

    /// The district of a balance field.
    pub fn district(field: &str) -> Option<&str> {
        field.strip_prefix(BALANCE)
    }
}

/// What one event changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    pub event_id: String,
    /// Non-zero balance changes per district.
    pub balances: BTreeMap<String, i64>,
    /// Counter increments by [`field`] name.
    pub counters: Vec<(&'static str, i64)>,
    /// For a completed transfer: its id and the external calls it made.
    pub transfer_calls: Option<(String, u32)>,
}

impl Delta {
    /// Every increment, balances included, by Redis field name.
    pub fn increments(&self) -> Vec<(String, i64)> {
        let balances = self.balances.iter().map(|(d, v)| (field::balance(d), *v));
        let counters = self.counters.iter().map(|(f, v)| ((*f).to_owned(), *v));
        balances.chain(counters).collect()
    }
}

/// The live aggregates.
#[derive(Debug, Clone, Default)]
pub struct Aggregates {
    /// Ordered by district name.
    pub districts: BTreeMap<String, DistrictSummary>,
    pub transfers: TransferStats,
    pub external: ExternalCallStats,
    /// External calls per completed transfer (0 for internal ones).
    pub transfer_calls: HashMap<String, u32>,
}

impl Aggregates {
    /// Applies a delta; returns the districts it changed, as they now are.
    pub fn apply(&mut self, delta: &Delta) -> Vec<DistrictSummary> {
        for (name, value) in &delta.counters {
            self.add(name, *value);
        }
        self.transfers.last_event_id = Some(delta.event_id.clone());
        if let Some((id, calls)) = &delta.transfer_calls {
            self.transfer_calls.insert(id.clone(), *calls);
        }
        let mut changed = Vec::new();
        for (district, amount) in &delta.balances {
            if let Some(summary) = self.districts.get_mut(district) {
                summary.total_balance += amount;
                changed.push(summary.clone());
            }
        }
        changed
    }

    /// Adds to a counter by name (unknown names are ignored).
    fn add(&mut self, name: &str, value: i64) {
        let bump = |counter: &mut u64| *counter = counter.saturating_add_signed(value);
        match name {
            field::COMPLETED => bump(&mut self.transfers.completed),
            field::FAILED => bump(&mut self.transfers.failed),
            field::EXTERNAL_CALLS => bump(&mut self.transfers.external_calls),
            field::EVENTS_APPLIED => bump(&mut self.transfers.events_applied),
            field::COMPLETED_TRANSFERS_CALLING => bump(&mut self.external.transfers),
            field::COMPLETED_CALLS => bump(&mut self.external.calls),
            _ => {}
        }
    }

    /// Every counter and balance, by Redis field name.
    pub fn fields(&self) -> Vec<(String, i64)> {
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let mut fields: Vec<(String, i64)> = self
            .districts
            .values()
            .map(|s| (field::balance(&s.district), s.total_balance))
            .collect();
        fields.extend([
            (field::COMPLETED.to_owned(), as_i64(self.transfers.completed)),
            (field::FAILED.to_owned(), as_i64(self.transfers.failed)),
            (field::EXTERNAL_CALLS.to_owned(), as_i64(self.transfers.external_calls)),
            (field::EVENTS_APPLIED.to_owned(), as_i64(self.transfers.events_applied)),
            (
                field::COMPLETED_TRANSFERS_CALLING.to_owned(),
                as_i64(self.external.transfers),
            ),
            (field::COMPLETED_CALLS.to_owned(), as_i64(self.external.calls)),
        ]);
        fields
    }

    /// Sets a counter or balance from its stored value (unknown names are
    /// ignored).
    pub fn set(&mut self, name: &str, value: i64) {
        if let Some(district) = field::district(name) {
            if let Some(summary) = self.districts.get_mut(district) {
                summary.total_balance = value;
            }
            return;
        }
        let current = self.fields().into_iter().find(|(f, _)| f == name).map(|(_, v)| v);
        if let Some(current) = current {
            self.add(name, value - current);
        }
    }
}

/// The seed's aggregates and the static facts events are resolved with.
#[derive(Debug, Clone)]
pub struct Baseline {
    seed: Aggregates,
    district_of_account: HashMap<String, String>,
}

impl Baseline {
    pub fn from_seed(data: &SeedData) -> Self {
        let mut districts: BTreeMap<String, DistrictSummary> =
            DISTRICTS.iter().map(|d| ((*d).to_owned(), summary(d))).collect();
        let mut district_of_customer: HashMap<&str, &str> = HashMap::new();
        for customer in &data.customers {
            district_of_customer.insert(&customer.id, &customer.district);
            let entry = districts
                .entry(customer.district.clone())
                .or_insert_with(|| summary(&customer.district));
            entry.customers += 1;
        }
        let mut district_of_account = HashMap::new();
        for account in &data.accounts {
            let Some(district) = district_of_customer.get(account.customer_id.as_str()) else {
                continue;
            };
            if let Some(entry) = districts.get_mut(*district) {
                entry.accounts += 1;
                entry.total_balance += account.balance;
            }
            district_of_account.insert(account.id.clone(), (*district).to_owned());
        }
        let mut calls_of: HashMap<&str, u32> = HashMap::new();
        for call in &data.calls {
            *calls_of.entry(call.transfer_id.as_str()).or_default() += 1;
        }
        let mut seed = Aggregates {
            districts,
            transfers: TransferStats {
                external_calls: data.calls.len() as u64,
                ..TransferStats::default()
            },
            ..Aggregates::default()
        };
        for transfer in &data.transfers {
            if transfer.status == TransferStatus::Failed {
                seed.transfers.failed += 1;
                continue;
            }
            seed.transfers.completed += 1;
            let calls = calls_of.get(transfer.id.as_str()).copied().unwrap_or(0);
            if calls > 0 {
                seed.external.transfers += 1;
                seed.external.calls += u64::from(calls);
            }
            seed.transfer_calls.insert(transfer.id.clone(), calls);
        }
        Self {
            seed,
            district_of_account,
        }
    }

    /// The aggregates before any run-time event.
    pub fn fresh(&self) -> Aggregates {
        self.seed.clone()
    }

    /// What `event` changes: a completed transfer debits the source
    /// account's district and, when internal, credits the destination's.
    pub fn delta(&self, event: &TransferEvent) -> Delta {
        let transfer = &event.transfer;
        let calls = event.external_calls;
        let mut delta = Delta {
            event_id: event.event_id.clone(),
            counters: vec![(field::EVENTS_APPLIED, 1), (field::EXTERNAL_CALLS, i64::from(calls))],
            ..Delta::default()
        };
        if event.event_type == TransferEventType::TransferFailed {
            delta.counters.push((field::FAILED, 1));
            return delta;
        }
        delta.counters.push((field::COMPLETED, 1));
        if calls > 0 {
            delta.counters.push((field::COMPLETED_TRANSFERS_CALLING, 1));
            delta.counters.push((field::COMPLETED_CALLS, i64::from(calls)));
        }
        delta.transfer_calls = Some((transfer.id.clone(), calls));
        let mut move_money = |account: &str, amount: i64| {
            if let Some(district) = self.district_of_account.get(account) {
                *delta.balances.entry(district.clone()).or_default() += amount;
            }
        };
        move_money(&transfer.from_account, -transfer.amount);
        if transfer.to_bank == OWN_BANK {
            move_money(&transfer.to_account, transfer.amount);
        }
        delta.balances.retain(|_, amount| *amount != 0);
        delta
    }
}

fn summary(district: &str) -> DistrictSummary {
    DistrictSummary {
        district: district.to_owned(),
        ..DistrictSummary::default()
    }
}
