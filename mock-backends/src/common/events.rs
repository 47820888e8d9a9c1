//! Domain events the transfers service publishes for every transfer created
//! at run time; the ledger consumes them (see [`super::bus`]).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::models::{Transfer, TransferStatus};

/// The kind of a transfer event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum TransferEventType {
    TransferCompleted,
    TransferFailed,
}

impl TransferEventType {
    /// The event type for a transfer that ended in `status`.
    pub fn for_status(status: TransferStatus) -> Self {
        match status {
            TransferStatus::Completed => Self::TransferCompleted,
            TransferStatus::Failed => Self::TransferFailed,
        }
    }
}

/// One event of the transfers service's ordered event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TransferEvent {
    #[schema(example = "E000001")]
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: TransferEventType,
    pub transfer: Transfer,
    #[schema(example = "2025-01-01T12:00:00.123Z")]
    pub at: String,
    /// Calls made to the external bank's `POST /verify` for this transfer
    /// (attempts, whatever their outcome); 0 for an internal transfer.
    #[serde(default)]
    #[schema(example = 1)]
    pub external_calls: u32,
}

/// Formats the n-th event id (1-based): `E000001`.
pub fn event_id(n: u64) -> String {
    format!("E{n:06}")
}

/// Parses an event id back to its sequence number.
pub fn parse_event_id(id: &str) -> Option<u64> {
    id.strip_prefix('E')?.parse().ok()
}
