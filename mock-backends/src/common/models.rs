//! The JSON shapes the services speak. Field names are snake_case on the wire
//! on purpose: the gateway demo renames them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The districts customers live in.
pub const DISTRICTS: [&str; 6] = [
    "Gangnam-gu",
    "Seocho-gu",
    "Mapo-gu",
    "Jongno-gu",
    "Songpa-gu",
    "Yongsan-gu",
];

/// A customer's tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Tier {
    Gold,
    Silver,
    Bronze,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Gold, Tier::Silver, Tier::Bronze];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Gold => "GOLD",
            Tier::Silver => "SILVER",
            Tier::Bronze => "BRONZE",
        }
    }

    /// Parses `GOLD`/`SILVER`/`BRONZE` (case-insensitive).
    pub fn parse(value: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.as_str().eq_ignore_ascii_case(value))
    }
}

/// A bank customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Customer {
    #[schema(example = "C001")]
    pub id: String,
    #[schema(example = "Kim Minji")]
    pub full_name: String,
    #[schema(example = "Gangnam-gu")]
    pub district: String,
    pub tier: Tier,
    #[schema(example = "2019-04-02T00:00:00Z")]
    pub joined_at: String,
}

/// An account held at Mosaic Bank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Account {
    #[schema(example = "A0001")]
    pub id: String,
    #[schema(example = "C001")]
    pub customer_id: String,
    /// Balance in won.
    #[schema(example = 1_250_000)]
    pub balance: i64,
    #[schema(example = "KRW")]
    pub currency: String,
    #[schema(example = "Mosaic Bank")]
    pub bank: String,
    #[schema(example = "2020-01-15T00:00:00Z")]
    pub opened_at: String,
}

/// The outcome of a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum TransferStatus {
    Completed,
    Failed,
}

impl TransferStatus {
    /// Parses `COMPLETED`/`FAILED` (case-insensitive).
    pub fn parse(value: &str) -> Option<TransferStatus> {
        if value.eq_ignore_ascii_case("COMPLETED") {
            Some(TransferStatus::Completed)
        } else if value.eq_ignore_ascii_case("FAILED") {
            Some(TransferStatus::Failed)
        } else {
            None
        }
    }
}

/// A money transfer from an own account to an own or external account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Transfer {
    #[schema(example = "T00001")]
    pub id: String,
    #[schema(example = "A0001")]
    pub from_account: String,
    /// An own account id (`A0002`) or an external one (`EXT-0001`).
    #[schema(example = "A0002")]
    pub to_account: String,
    #[schema(example = "Mosaic Bank")]
    pub to_bank: String,
    /// Amount in won.
    #[schema(example = 50_000)]
    pub amount: i64,
    pub status: TransferStatus,
    #[schema(example = "2024-05-01T09:30:00Z")]
    pub created_at: String,
    /// Why the transfer failed; null unless `status` is `FAILED`.
    pub failure_reason: Option<String>,
}

/// The outcome of one call to the external bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CallOutcome {
    Ok,
    Timeout,
    Error,
}

/// One call the external bank received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExternalCall {
    #[schema(example = "X000001")]
    pub call_id: String,
    #[schema(example = "T00012")]
    pub transfer_id: String,
    #[schema(example = "verify_account")]
    pub operation: String,
    pub outcome: CallOutcome,
    #[schema(example = "2024-05-01T09:29:58Z")]
    pub at: String,
}

/// A page of a listing.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The number of matching items before `limit`/`offset`.
    pub total: usize,
}

/// Applies `offset`/`limit` to a full result list.
pub fn paginate<T: Clone>(all: &[T], limit: usize, offset: usize) -> Page<T> {
    Page {
        items: all.iter().skip(offset).take(limit).cloned().collect(),
        total: all.len(),
    }
}
