//! The external-bank service: a third party the transfers service must ask
//! to verify external accounts. Slow and flaky by nature (configurable via
//! `/_config`), and it keeps a log of every verify call it answered.

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use utoipa::{OpenApi, ToSchema};

use crate::common::error::{
    check_max, comma_list, error_response, repeated, single, ApiError, ApiJson, ApiQuery, ErrorBody,
};
use crate::common::faults::{roll, sleep_or_shutdown};
use crate::common::models::{CallOutcome, ExternalCall};
use crate::common::seed::{call_id, SeedData};
use crate::common::service::{self, Control};
use crate::common::time::now_rfc3339;

/// Largest number of transfer ids per query.
const MAX_IDS: usize = 500;

/// The bank's natural behaviour, on top of any injected faults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
struct Behaviour {
    /// Delay before every verify answer.
    base_latency_ms: u64,
    /// Share (0..1) of verify calls answered 503; 0 is exactly never.
    flaky_rate: f64,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            base_latency_ms: 5,
            flaky_rate: 0.2,
        }
    }
}

/// A partial update of [`Behaviour`].
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BehaviourPatch {
    base_latency_ms: Option<u64>,
    flaky_rate: Option<f64>,
}

struct ExternalBank {
    calls: RwLock<Vec<ExternalCall>>,
    behaviour: RwLock<Behaviour>,
    shutdown: watch::Receiver<bool>,
}

impl ExternalBank {
    fn behaviour(&self) -> Behaviour {
        self.behaviour.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Appends a call to the log and returns its id.
    fn record(&self, transfer_id: String, outcome: CallOutcome) -> String {
        let mut calls = self.calls.write().unwrap_or_else(PoisonError::into_inner);
        let id = call_id(calls.len() + 1);
        calls.push(ExternalCall {
            call_id: id.clone(),
            transfer_id,
            operation: "verify_account".to_owned(),
            outcome,
            at: now_rfc3339(),
        });
        id
    }

    fn calls_of(&self, ids: &HashSet<&str>) -> Vec<ExternalCall> {
        self.calls
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|c| ids.contains(c.transfer_id.as_str()))
            .cloned()
            .collect()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Mosaic mock bank: external bank", version = "0.1.0"),
    paths(verify, list_calls, calls_summary, get_config, put_config),
    components(schemas(
        VerifyRequest,
        VerifyResponse,
        ExternalCall,
        CallOutcome,
        CallSummary,
        Behaviour,
        BehaviourPatch,
        ErrorBody
    ))
)]
struct ApiDoc;

pub(crate) fn router(data: &SeedData, shutdown: watch::Receiver<bool>) -> Router {
    let state = Arc::new(ExternalBank {
        calls: RwLock::new(data.calls.clone()),
        behaviour: RwLock::new(Behaviour::default()),
        shutdown: shutdown.clone(),
    });
    let business = Router::new()
        .route("/verify", post(verify))
        .route("/calls", get(list_calls))
        .route("/calls/summary", get(calls_summary))
        .with_state(state.clone());
    let admin = Router::new()
        .route("/_config", get(get_config).put(put_config))
        .with_state(state);
    service::build(Control::new(shutdown, ApiDoc::openapi()), business, admin)
}

/// A request to verify an external account.
#[derive(Debug, Deserialize, ToSchema)]
struct VerifyRequest {
    #[schema(example = "EXT-0001")]
    account: String,
    #[schema(example = "Hana Bank")]
    bank: String,
    #[schema(example = "T00001")]
    transfer_id: String,
}

/// A successful verification.
#[derive(Debug, Serialize, ToSchema)]
struct VerifyResponse {
    verified: bool,
    #[schema(example = "X000001")]
    call_id: String,
}

/// Verifies an external account; answers 503 now and then (`flaky_rate`).
#[utoipa::path(post, path = "/verify", tag = "external-bank", request_body = VerifyRequest,
    responses(
        (status = 200, description = "Verified", body = VerifyResponse),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable", body = ErrorBody),
    ))]
async fn verify(
    State(state): State<Arc<ExternalBank>>,
    ApiJson(request): ApiJson<VerifyRequest>,
) -> Result<Response, ApiError> {
    if request.account.trim().is_empty() || request.bank.trim().is_empty() {
        return Err(ApiError::bad_request("account and bank must not be empty"));
    }
    let behaviour = state.behaviour();
    if behaviour.base_latency_ms > 0 {
        let latency = Duration::from_millis(behaviour.base_latency_ms);
        sleep_or_shutdown(latency, &state.shutdown).await;
    }
    if roll(behaviour.flaky_rate) {
        state.record(request.transfer_id, CallOutcome::Error);
        return Ok(error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily unavailable",
        ));
    }
    let call_id = state.record(request.transfer_id, CallOutcome::Ok);
    Ok(Json(VerifyResponse {
        verified: true,
        call_id,
    })
    .into_response())
}

/// The calls made for some transfers: `?transfer_id=T00001&transfer_id=T00002`.
#[utoipa::path(get, path = "/calls", tag = "external-bank",
    params(("transfer_id" = Vec<String>, Query, description = "A transfer id; repeat for more")),
    responses(
        (status = 200, description = "Call records ordered by call id", body = Vec<ExternalCall>),
        (status = 400, description = "Too many ids", body = ErrorBody),
    ))]
async fn list_calls(
    State(state): State<Arc<ExternalBank>>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<Vec<ExternalCall>>, ApiError> {
    let ids = repeated(&pairs, "transfer_id");
    check_max(ids.len(), MAX_IDS, "transfer ids")?;
    let ids: HashSet<&str> = ids.iter().map(String::as_str).collect();
    Ok(Json(state.calls_of(&ids)))
}

/// The calls of one transfer, summarised.
#[derive(Debug, Serialize, ToSchema)]
struct CallSummary {
    #[schema(example = "T00001")]
    transfer_id: String,
    count: usize,
    last_outcome: CallOutcome,
    calls: Vec<ExternalCall>,
}

/// Per-transfer call summaries: `?transfer_ids=T00001,T00002`. Transfers
/// without calls are left out.
#[utoipa::path(get, path = "/calls/summary", tag = "external-bank",
    params(("transfer_ids" = Vec<String>, Query, style = Form, explode = false, description = "Comma-separated transfer ids")),
    responses(
        (status = 200, description = "One entry per transfer with calls, in request order", body = Vec<CallSummary>),
        (status = 400, description = "Too many ids", body = ErrorBody),
    ))]
async fn calls_summary(
    State(state): State<Arc<ExternalBank>>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<Vec<CallSummary>>, ApiError> {
    let ids = comma_list(single(&pairs, "transfer_ids").unwrap_or(""));
    check_max(ids.len(), MAX_IDS, "transfer ids")?;
    let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let calls = state.calls_of(&wanted);
    let mut seen = HashSet::new();
    let summaries = ids
        .iter()
        .filter(|id| seen.insert(id.as_str()))
        .filter_map(|id| {
            let mine: Vec<ExternalCall> = calls.iter().filter(|c| &c.transfer_id == id).cloned().collect();
            let last_outcome = mine.last()?.outcome;
            Some(CallSummary {
                transfer_id: id.clone(),
                count: mine.len(),
                last_outcome,
                calls: mine,
            })
        })
        .collect();
    Ok(Json(summaries))
}

/// The natural behaviour in force.
#[utoipa::path(get, path = "/_config", tag = "admin", responses(
    (status = 200, description = "Behaviour", body = Behaviour),
))]
async fn get_config(State(state): State<Arc<ExternalBank>>) -> Json<Behaviour> {
    Json(state.behaviour())
}

/// Changes the natural behaviour; fields left out keep their value.
#[utoipa::path(put, path = "/_config", tag = "admin", request_body = BehaviourPatch,
    responses(
        (status = 200, description = "The behaviour now in force", body = Behaviour),
        (status = 400, description = "Invalid value", body = ErrorBody),
    ))]
async fn put_config(
    State(state): State<Arc<ExternalBank>>,
    ApiJson(patch): ApiJson<BehaviourPatch>,
) -> Result<Json<Behaviour>, ApiError> {
    if patch.flaky_rate.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
        return Err(ApiError::bad_request("flaky_rate must be within 0..1"));
    }
    let mut behaviour = state.behaviour.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(v) = patch.base_latency_ms {
        behaviour.base_latency_ms = v;
    }
    if let Some(v) = patch.flaky_rate {
        behaviour.flaky_rate = v;
    }
    Ok(Json(behaviour.clone()))
}
