//! Executing one transfer order: verify an external destination with the
//! external bank (retrying), debit the source, credit an internal
//! destination (undoing the debit if that fails).

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::{id_of, CreateTransfer, Transfers};
use crate::common::error::ApiError;
use crate::common::models::{Transfer, TransferStatus};
use crate::common::seed::{EXTERNAL_UNAVAILABLE, INSUFFICIENT_FUNDS};
use crate::common::time::now_rfc3339;
use crate::common::traces;
use crate::common::OWN_BANK;

/// Attempts at `POST /verify` before giving up.
const VERIFY_ATTEMPTS: u32 = 3;
/// Pause between verify attempts.
const VERIFY_BACKOFF: Duration = Duration::from_millis(50);
const ACCOUNTS_UNAVAILABLE: &str = "accounts service unavailable";

/// A validated order.
#[derive(Debug, Clone)]
pub(super) struct Order {
    from_account: String,
    to_account: String,
    to_bank: String,
    amount: i64,
    pub(super) idempotency_key: Option<String>,
}

impl Order {
    fn is_internal(&self) -> bool {
        self.to_bank == OWN_BANK
    }
}

/// Checks an order without calling anyone; a bad order is a 400.
pub(super) fn validate(order: CreateTransfer) -> Result<Order, ApiError> {
    let from_account = order.from_account.trim().to_owned();
    let to_account = order.to_account.trim().to_owned();
    if from_account.is_empty() || to_account.is_empty() {
        return Err(ApiError::bad_request("from_account and to_account must not be empty"));
    }
    if order.amount <= 0 {
        return Err(ApiError::bad_request("amount must be > 0"));
    }
    let to_bank = order
        .to_bank
        .map(|b| b.trim().to_owned())
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| OWN_BANK.to_owned());
    if to_bank == OWN_BANK && from_account == to_account {
        return Err(ApiError::bad_request("from_account and to_account must differ"));
    }
    Ok(Order {
        from_account,
        to_account,
        to_bank,
        amount: order.amount,
        idempotency_key: order.idempotency_key.filter(|k| !k.trim().is_empty()),
    })
}

/// Executes an order under the next transfer id, stores the result (and
/// its event) and returns it.
pub(super) async fn run(state: &Transfers, order: Order) -> Transfer {
    let seq = state.allocate();
    let id = id_of(seq);
    let created_at = now_rfc3339();
    let mut external_calls = 0;
    let outcome = execute(state, &order, &id, &mut external_calls).await;
    let transfer = Transfer {
        id,
        from_account: order.from_account,
        to_account: order.to_account,
        to_bank: order.to_bank,
        amount: order.amount,
        status: if outcome.is_ok() {
            TransferStatus::Completed
        } else {
            TransferStatus::Failed
        },
        created_at,
        failure_reason: outcome.err(),
    };
    tracing::info!(id = %transfer.id, status = ?transfer.status, "transfer executed");
    state.finish(seq, transfer.clone(), external_calls);
    transfer
}

/// `Err` carries the failure reason; `external_calls` counts the verify
/// attempts made.
async fn execute(state: &Transfers, order: &Order, id: &str, external_calls: &mut u32) -> Result<(), String> {
    if !order.is_internal() {
        verify(state, order, id, external_calls).await?;
    }
    adjust(state, &order.from_account, -order.amount, id).await?;
    if order.is_internal() {
        if let Err(reason) = adjust(state, &order.to_account, order.amount, id).await {
            let reversal = format!("{id}-reversal");
            if let Err(undo) = adjust(state, &order.from_account, order.amount, &reversal).await {
                tracing::warn!(%id, "could not undo the debit: {undo}");
            }
            return Err(reason);
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct Verified {
    verified: bool,
}

/// Asks the external bank to verify the destination, retrying on 5xx,
/// connection errors and timeouts. Counts every attempt in `calls`.
async fn verify(state: &Transfers, order: &Order, id: &str, calls: &mut u32) -> Result<(), String> {
    let url = format!("{}/verify", state.upstreams.external_bank);
    let body = json!({ "account": order.to_account, "bank": order.to_bank, "transfer_id": id });
    for attempt in 1..=VERIFY_ATTEMPTS {
        *calls += 1;
        match traces::send(state.client.post(&url).json(&body), "POST /verify").await {
            Ok(response) if response.status().is_success() => match response.json::<Verified>().await {
                Ok(Verified { verified: true }) => return Ok(()),
                Ok(Verified { verified: false }) => return Err("external account not verified".to_owned()),
                Err(e) => tracing::debug!(%id, attempt, "unreadable verify answer: {e}"),
            },
            Ok(response) if response.status().is_server_error() => {
                tracing::debug!(%id, attempt, status = %response.status(), "verify failed");
            }
            Ok(response) => {
                return Err(format!(
                    "external bank rejected the account ({})",
                    response.status().as_u16()
                ))
            }
            Err(e) => tracing::debug!(%id, attempt, "verify failed: {e}"),
        }
        if attempt < VERIFY_ATTEMPTS {
            tokio::time::sleep(VERIFY_BACKOFF).await;
        }
    }
    Err(EXTERNAL_UNAVAILABLE.to_owned())
}

/// `POST /accounts/{account}/adjust`; `Err` carries a failure reason.
async fn adjust(state: &Transfers, account: &str, delta: i64, id: &str) -> Result<(), String> {
    let url = format!("{}/accounts/{account}/adjust", state.upstreams.accounts);
    let body = json!({ "delta": delta, "transfer_id": id });
    let response = traces::send(state.client.post(&url).json(&body), "POST /accounts/{account}/adjust")
        .await
        .map_err(|e| {
            tracing::debug!(%id, %account, "adjust failed: {e}");
            ACCOUNTS_UNAVAILABLE.to_owned()
        })?;
    match response.status() {
        status if status.is_success() => Ok(()),
        StatusCode::NOT_FOUND => Err(format!("unknown account {account}")),
        StatusCode::CONFLICT => Err(INSUFFICIENT_FUNDS.to_owned()),
        status => {
            tracing::debug!(%id, %account, %status, "adjust refused");
            Err(ACCOUNTS_UNAVAILABLE.to_owned())
        }
    }
}
