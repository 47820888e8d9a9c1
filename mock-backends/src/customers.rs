//! The customers service: owns customer master data (names, districts,
//! tiers). Read only.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::watch;
use utoipa::{IntoParams, OpenApi};

use crate::common::error::{check_max, repeated, ApiError, ApiQuery, ErrorBody};
use crate::common::models::{paginate, Customer, Page, Tier};
use crate::common::seed::SeedData;
use crate::common::service::{self, Control};

/// Default page size of `GET /customers`.
const DEFAULT_LIMIT: usize = 50;
/// Largest page size and batch size.
const MAX_ITEMS: usize = 500;

struct Customers {
    by_id: BTreeMap<String, Customer>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Mosaic mock bank: customers", version = "0.1.0"),
    paths(list_customers, batch_customers, get_customer),
    components(schemas(Customer, Page<Customer>, Tier, ErrorBody))
)]
struct ApiDoc;

pub(crate) fn router(data: &SeedData, shutdown: watch::Receiver<bool>) -> Router {
    let state = Arc::new(Customers {
        by_id: data.customers.iter().map(|c| (c.id.clone(), c.clone())).collect(),
    });
    let business = Router::new()
        .route("/customers", get(list_customers))
        .route("/customers/batch", get(batch_customers))
        .route("/customers/{id}", get(get_customer))
        .with_state(state);
    service::build(Control::new(shutdown, ApiDoc::openapi()), business, Router::new())
}

/// Filters and paging of `GET /customers`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only customers of this district, e.g. `Gangnam-gu`.
    district: Option<String>,
    /// Only customers of this tier: `GOLD`, `SILVER` or `BRONZE`.
    tier: Option<String>,
    /// Page size (default 50, at most 500).
    limit: Option<usize>,
    /// Items to skip (default 0).
    offset: Option<usize>,
}

/// Lists customers ordered by id.
#[utoipa::path(get, path = "/customers", tag = "customers", params(ListQuery), responses(
    (status = 200, description = "A page of customers", body = Page<Customer>),
    (status = 400, description = "Bad query", body = ErrorBody),
))]
async fn list_customers(
    State(state): State<Arc<Customers>>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<Customer>>, ApiError> {
    let district = query.district.filter(|d| !d.trim().is_empty());
    let tier = match query.tier.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(Tier::parse(raw).ok_or_else(|| ApiError::bad_request(format!("unknown tier: {raw}")))?),
    };
    let matching: Vec<Customer> = state
        .by_id
        .values()
        .filter(|c| district.as_deref().is_none_or(|d| c.district == d))
        .filter(|c| tier.is_none_or(|t| c.tier == t))
        .cloned()
        .collect();
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_ITEMS);
    Ok(Json(paginate(&matching, limit, query.offset.unwrap_or(0))))
}

/// Looks up many customers at once: `?id=C001&id=C002`. Unknown ids are
/// left out; the order of the answer is not guaranteed.
#[utoipa::path(get, path = "/customers/batch", tag = "customers",
    params(("id" = Vec<String>, Query, description = "A customer id; repeat for more (at most 500)")),
    responses(
        (status = 200, description = "The customers found", body = Vec<Customer>),
        (status = 400, description = "More than 500 ids", body = ErrorBody),
    ))]
async fn batch_customers(
    State(state): State<Arc<Customers>>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<Vec<Customer>>, ApiError> {
    let ids = repeated(&pairs, "id");
    check_max(ids.len(), MAX_ITEMS, "ids")?;
    let mut seen = std::collections::HashSet::new();
    Ok(Json(
        ids.iter()
            .filter(|id| seen.insert(id.as_str()))
            .filter_map(|id| state.by_id.get(id).cloned())
            .collect(),
    ))
}

/// One customer.
#[utoipa::path(get, path = "/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "Customer id, e.g. C001")),
    responses(
        (status = 200, description = "The customer", body = Customer),
        (status = 404, description = "Unknown id", body = ErrorBody),
    ))]
async fn get_customer(State(state): State<Arc<Customers>>, Path(id): Path<String>) -> Result<Json<Customer>, ApiError> {
    state.by_id.get(&id).cloned().map(Json).ok_or(ApiError::NotFound)
}
