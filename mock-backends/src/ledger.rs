//! The ledger service: the read model. For now it holds aggregates computed
//! once from the seed (balances per district, transfer outcome counts); it
//! does not follow run-time transfers yet.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::watch;
use utoipa::{OpenApi, ToSchema};

use crate::common::error::{ApiError, ErrorBody};
use crate::common::models::{TransferStatus, DISTRICTS};
use crate::common::seed::SeedData;
use crate::common::service::{self, Control};

/// Aggregates of one district.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
struct DistrictSummary {
    #[schema(example = "Gangnam-gu")]
    district: String,
    /// Sum of the balances of the district's customers' accounts, in won.
    total_balance: i64,
    customers: usize,
    accounts: usize,
}

/// Transfer outcome counts.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
struct TransferStats {
    completed: usize,
    failed: usize,
    /// Calls made to the external bank.
    external_calls: usize,
}

struct Ledger {
    /// Ordered by district name.
    districts: BTreeMap<String, DistrictSummary>,
    transfers: TransferStats,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Mosaic mock bank: ledger", version = "0.1.0"),
    paths(list_districts, get_district, transfer_stats),
    components(schemas(DistrictSummary, TransferStats, ErrorBody))
)]
struct ApiDoc;

pub(crate) fn router(data: &SeedData, shutdown: watch::Receiver<bool>) -> Router {
    let state = Arc::new(aggregate(data));
    let business = Router::new()
        .route("/districts", get(list_districts))
        .route("/districts/{district}", get(get_district))
        .route("/stats/transfers", get(transfer_stats))
        .with_state(state);
    service::build(Control::new(shutdown, ApiDoc::openapi()), business, Router::new())
}

fn aggregate(data: &SeedData) -> Ledger {
    let mut districts: BTreeMap<String, DistrictSummary> = DISTRICTS
        .iter()
        .map(|d| {
            let summary = DistrictSummary {
                district: (*d).to_owned(),
                ..DistrictSummary::default()
            };
            ((*d).to_owned(), summary)
        })
        .collect();
    let mut district_of: HashMap<&str, &str> = HashMap::new();
    for customer in &data.customers {
        district_of.insert(&customer.id, &customer.district);
        let summary = districts
            .entry(customer.district.clone())
            .or_insert_with(|| DistrictSummary {
                district: customer.district.clone(),
                ..DistrictSummary::default()
            });
        summary.customers += 1;
    }
    for account in &data.accounts {
        let district = district_of.get(account.customer_id.as_str());
        if let Some(summary) = district.and_then(|d| districts.get_mut(*d)) {
            summary.accounts += 1;
            summary.total_balance += account.balance;
        }
    }
    let completed = data
        .transfers
        .iter()
        .filter(|t| t.status == TransferStatus::Completed)
        .count();
    Ledger {
        districts,
        transfers: TransferStats {
            completed,
            failed: data.transfers.len() - completed,
            external_calls: data.calls.len(),
        },
    }
}

/// Every district, ordered by name.
#[utoipa::path(get, path = "/districts", tag = "ledger", responses(
    (status = 200, description = "Per-district aggregates", body = Vec<DistrictSummary>),
))]
async fn list_districts(State(state): State<Arc<Ledger>>) -> Json<Vec<DistrictSummary>> {
    Json(state.districts.values().cloned().collect())
}

/// One district.
#[utoipa::path(get, path = "/districts/{district}", tag = "ledger",
    params(("district" = String, Path, description = "District name, e.g. Gangnam-gu")),
    responses(
        (status = 200, description = "The district's aggregates", body = DistrictSummary),
        (status = 404, description = "Unknown district", body = ErrorBody),
    ))]
async fn get_district(
    State(state): State<Arc<Ledger>>,
    Path(district): Path<String>,
) -> Result<Json<DistrictSummary>, ApiError> {
    state
        .districts
        .get(&district)
        .cloned()
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// Transfer outcome counts of the seed.
#[utoipa::path(get, path = "/stats/transfers", tag = "ledger", responses(
    (status = 200, description = "Counts", body = TransferStats),
))]
async fn transfer_stats(State(state): State<Arc<Ledger>>) -> Json<TransferStats> {
    Json(state.transfers.clone())
}
