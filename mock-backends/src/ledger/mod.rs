//! The ledger service: the query side. Its aggregates (balances per
//! district, transfer outcome counts, external-bank calls) start from the
//! seed and follow every transfer event the transfers service publishes,
//! applied exactly once each; they are served as JSON and, live, as
//! Server-Sent Events. See [`runtime`] for how it starts and restarts.

mod consumer;
pub(crate) mod runtime;
mod sse;
pub(crate) mod state;
mod store;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use utoipa::{OpenApi, ToSchema};

use self::sse::{Hub, HubStats};
use self::state::{Aggregates, Baseline, Delta, DistrictSummary, ExternalCallStats, TransferStats};
use crate::common::error::{ApiError, ApiQuery, ErrorBody};
use crate::common::service::{self, Control};

pub(crate) use self::store::reset as reset_redis;

/// The ledger's shared state.
#[derive(Debug)]
pub(crate) struct Ledger {
    baseline: Arc<Baseline>,
    state: RwLock<Aggregates>,
    hub: Hub,
    shutdown: watch::Receiver<bool>,
    /// `in-process` or `redis`.
    mode: &'static str,
    duplicates: AtomicU64,
    unreadable: AtomicU64,
}

impl Ledger {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Aggregates> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Aggregates> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a new event's delta and tells the SSE clients.
    fn apply(&self, delta: &Delta) {
        let mut state = self.write();
        let changed = state.apply(delta);
        self.hub.publish(&delta.event_id, &changed);
    }

    /// Replaces the aggregates (after a resync) and tells the SSE clients
    /// about the districts that differ.
    fn replace(&self, fresh: Aggregates) {
        let mut state = self.write();
        let changed: Vec<DistrictSummary> = fresh
            .districts
            .values()
            .filter(|d| state.districts.get(&d.district) != Some(*d))
            .cloned()
            .collect();
        let id = fresh.transfers.last_event_id.clone().unwrap_or_default();
        *state = fresh;
        self.hub.publish(&id, &changed);
    }
}

/// This ledger instance's run-time counters (a restart resets them).
#[derive(Debug, Clone, Serialize, ToSchema)]
struct LedgerStats {
    /// `in-process` or `redis`.
    #[schema(example = "in-process")]
    mode: &'static str,
    /// Deliveries of already applied events, skipped.
    duplicates_skipped: u64,
    /// Stream entries that were not events, skipped.
    unreadable_skipped: u64,
    sse: HubStats,
}

/// External calls of one completed transfer.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct TransferCalls {
    #[schema(example = "T00012")]
    transfer_id: String,
    external_calls: u32,
}

/// `GET /stats/external-calls` answers one transfer or the totals.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
enum ExternalCallsAnswer {
    Transfer(TransferCalls),
    Totals(ExternalCallStats),
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Mosaic mock bank: ledger", version = "0.1.0"),
    paths(
        list_districts,
        get_district,
        sse::district_stream,
        sse::all_stream,
        transfer_stats,
        external_calls,
        ledger_stats
    ),
    components(schemas(
        DistrictSummary,
        TransferStats,
        ExternalCallStats,
        TransferCalls,
        ExternalCallsAnswer,
        LedgerStats,
        HubStats,
        ErrorBody
    ))
)]
struct ApiDoc;

fn router(ledger: Arc<Ledger>, shutdown: watch::Receiver<bool>) -> Router {
    let business = Router::new()
        .route("/districts", get(list_districts))
        .route("/districts/{district}", get(get_district))
        .route("/districts/{district}/stream", get(sse::district_stream))
        .route("/stream", get(sse::all_stream))
        .route("/stats/transfers", get(transfer_stats))
        .route("/stats/external-calls", get(external_calls))
        .route("/stats/ledger", get(ledger_stats))
        .with_state(ledger);
    service::build(Control::new(shutdown, ApiDoc::openapi()), business, Router::new())
}

/// Every district, ordered by name, live.
#[utoipa::path(get, path = "/districts", tag = "ledger", responses(
    (status = 200, description = "Per-district aggregates", body = Vec<DistrictSummary>),
))]
async fn list_districts(State(ledger): State<Arc<Ledger>>) -> Json<Vec<DistrictSummary>> {
    Json(ledger.read().districts.values().cloned().collect())
}

/// One district, live.
#[utoipa::path(get, path = "/districts/{district}", tag = "ledger",
    params(("district" = String, Path, description = "District name, e.g. Gangnam-gu")),
    responses(
        (status = 200, description = "The district's aggregates", body = DistrictSummary),
        (status = 404, description = "Unknown district", body = ErrorBody),
    ))]
async fn get_district(
    State(ledger): State<Arc<Ledger>>,
    Path(district): Path<String>,
) -> Result<Json<DistrictSummary>, ApiError> {
    ledger
        .read()
        .districts
        .get(&district)
        .cloned()
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// Transfer outcome counts, seed and run time, and the events applied.
#[utoipa::path(get, path = "/stats/transfers", tag = "ledger", responses(
    (status = 200, description = "Counts", body = TransferStats),
))]
async fn transfer_stats(State(ledger): State<Arc<Ledger>>) -> Json<TransferStats> {
    Json(ledger.read().transfers.clone())
}

/// Query of `GET /stats/external-calls`.
#[derive(Debug, Deserialize)]
struct ExternalCallsQuery {
    transfer_id: Option<String>,
}

/// External-bank calls made for completed transfers: totals, or one
/// transfer's count (`0` for an internal one).
#[utoipa::path(get, path = "/stats/external-calls", tag = "ledger",
    params(("transfer_id" = Option<String>, Query, description = "A completed transfer, e.g. T00012")),
    responses(
        (status = 200, description = "Totals, or the transfer's count", body = ExternalCallsAnswer),
        (status = 404, description = "No completed transfer with this id", body = ErrorBody),
    ))]
async fn external_calls(
    State(ledger): State<Arc<Ledger>>,
    ApiQuery(query): ApiQuery<ExternalCallsQuery>,
) -> Result<Json<ExternalCallsAnswer>, ApiError> {
    let state = ledger.read();
    let Some(id) = query.transfer_id.as_deref().map(str::trim).filter(|id| !id.is_empty()) else {
        return Ok(Json(ExternalCallsAnswer::Totals(state.external.clone())));
    };
    let calls = state.transfer_calls.get(id).copied().ok_or(ApiError::NotFound)?;
    Ok(Json(ExternalCallsAnswer::Transfer(TransferCalls {
        transfer_id: id.to_owned(),
        external_calls: calls,
    })))
}

/// This ledger instance's consumer and SSE counters.
#[utoipa::path(get, path = "/stats/ledger", tag = "ledger", responses(
    (status = 200, description = "Counters since this ledger started", body = LedgerStats),
))]
async fn ledger_stats(State(ledger): State<Arc<Ledger>>) -> Json<LedgerStats> {
    Json(LedgerStats {
        mode: ledger.mode,
        duplicates_skipped: ledger.duplicates.load(Ordering::Relaxed),
        unreadable_skipped: ledger.unreadable.load(Ordering::Relaxed),
        sse: ledger.hub.stats(),
    })
}
