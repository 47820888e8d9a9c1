//! The transfers service: the command side. Owns transfers and publishes an
//! event for every transfer it finishes on the event bus (whose log also
//! answers `GET /events`); executing a transfer calls the external bank (for
//! external destinations) and the accounts service (debit, credit).

mod execute;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use utoipa::{OpenApi, ToSchema};

use crate::common::bus::EventBus;
use crate::common::error::{number, repeated, single, ApiError, ApiJson, ApiQuery, ErrorBody};
use crate::common::events::{event_id, parse_event_id, TransferEvent, TransferEventType};
use crate::common::models::{paginate, Page, Transfer, TransferStatus};
use crate::common::seed::{transfer_id, SeedData};
use crate::common::service::{self, Control};
use crate::common::time::now_rfc3339;
use crate::BankError;

const DEFAULT_LAST: usize = 10;
const MAX_LAST: usize = 100;
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;
/// Timeout of each call to the accounts service and the external bank.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// Marks a `POST /transfers` answer that replays an earlier execution.
const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Base URLs of the services the transfers service calls.
#[derive(Debug, Clone)]
pub(crate) struct Upstreams {
    pub accounts: String,
    pub external_bank: String,
}

/// The transfers, keyed by sequence number (`T00012` → 12).
#[derive(Default)]
struct Store {
    transfers: BTreeMap<u64, Transfer>,
    next_seq: u64,
}

struct Transfers {
    store: RwLock<Store>,
    /// Idempotency key → the transfer it produced, once executed. The async
    /// lock serialises concurrent requests with the same key.
    idempotency: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<u64>>>>>,
    client: reqwest::Client,
    upstreams: Upstreams,
    bus: EventBus,
}

impl Transfers {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves the next sequence number.
    fn allocate(&self) -> u64 {
        let mut store = self.write();
        store.next_seq += 1;
        store.next_seq
    }

    /// Stores a finished transfer and publishes its event (under the store
    /// lock, so a reader never sees an event before its transfer).
    fn finish(&self, seq: u64, transfer: Transfer, external_calls: u32) {
        let mut store = self.write();
        store.transfers.insert(seq, transfer.clone());
        self.bus.publish(|n| TransferEvent {
            event_id: event_id(n),
            event_type: TransferEventType::for_status(transfer.status),
            transfer,
            at: now_rfc3339(),
            external_calls,
        });
    }

    fn idempotency_slot(&self, key: &str) -> Arc<tokio::sync::Mutex<Option<u64>>> {
        self.idempotency
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.to_owned())
            .or_default()
            .clone()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Mosaic mock bank: transfers", version = "0.1.0"),
    paths(create_transfer, list_transfers, get_transfer, list_events),
    components(schemas(
        CreateTransfer,
        Transfer,
        TransferStatus,
        TransferList,
        TransferEvent,
        TransferEventType,
        ErrorBody
    ))
)]
struct ApiDoc;

pub(crate) fn router(
    data: &SeedData,
    shutdown: watch::Receiver<bool>,
    upstreams: Upstreams,
    bus: EventBus,
) -> Result<Router, BankError> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(UPSTREAM_TIMEOUT)
        .timeout(UPSTREAM_TIMEOUT)
        .build()?;
    let transfers: BTreeMap<u64, Transfer> = (1_u64..).zip(data.transfers.iter().cloned()).collect();
    let store = Store {
        next_seq: transfers.len() as u64,
        transfers,
    };
    let state = Arc::new(Transfers {
        store: RwLock::new(store),
        idempotency: Mutex::new(HashMap::new()),
        client,
        upstreams,
        bus,
    });
    let business = Router::new()
        .route("/transfers", get(list_transfers).post(create_transfer))
        .route("/transfers/{id}", get(get_transfer))
        .route("/events", get(list_events))
        .with_state(state);
    Ok(service::build(
        Control::new(shutdown, ApiDoc::openapi()),
        business,
        Router::new(),
    ))
}

/// A transfer order.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub(crate) struct CreateTransfer {
    #[schema(example = "A0001")]
    from_account: String,
    /// An own account (`A0002`) or an external one (`EXT-0001`).
    #[schema(example = "A0002")]
    to_account: String,
    /// Defaults to `Mosaic Bank`; anything else is an external bank.
    #[schema(example = "Mosaic Bank")]
    to_bank: Option<String>,
    /// Won, > 0.
    #[schema(example = 1000)]
    amount: i64,
    /// Repeating a key returns the first transfer without executing again.
    idempotency_key: Option<String>,
}

/// Executes a transfer and answers it (COMPLETED or FAILED) with 201.
#[utoipa::path(post, path = "/transfers", tag = "transfers", request_body = CreateTransfer,
    responses(
        (status = 201, description = "The transfer (COMPLETED or FAILED); a replayed idempotency key carries `idempotent-replayed: true`", body = Transfer),
        (status = 400, description = "Invalid order", body = ErrorBody),
    ))]
async fn create_transfer(
    State(state): State<Arc<Transfers>>,
    ApiJson(order): ApiJson<CreateTransfer>,
) -> Result<Response, ApiError> {
    let order = execute::validate(order)?;
    let Some(key) = order.idempotency_key.clone() else {
        let transfer = execute::run(&state, order).await;
        return Ok((StatusCode::CREATED, Json(transfer)).into_response());
    };
    let slot = state.idempotency_slot(&key);
    let mut done = slot.lock().await;
    if let Some(seq) = *done {
        if let Some(transfer) = state.read().transfers.get(&seq).cloned() {
            let replayed = [(REPLAYED, HeaderValue::from_static("true"))];
            return Ok((StatusCode::CREATED, replayed, Json(transfer)).into_response());
        }
    }
    let transfer = execute::run(&state, order).await;
    *done = parse_transfer_seq(&transfer.id);
    Ok((StatusCode::CREATED, Json(transfer)).into_response())
}

/// `T00012` → 12.
fn parse_transfer_seq(id: &str) -> Option<u64> {
    id.strip_prefix('T')?.parse().ok()
}

/// `GET /transfers` answers a plain array when asked by account, a page
/// otherwise.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
enum TransferList {
    List(Vec<Transfer>),
    Page(Page<Transfer>),
}

/// Transfers newest first: by source account (`account_id` repeated, at most
/// `last` each, a JSON array) or all, optionally by `status` (a page).
#[utoipa::path(get, path = "/transfers", tag = "transfers",
    params(
        ("account_id" = Option<Vec<String>>, Query, description = "A source account id; repeat for more"),
        ("last" = Option<usize>, Query, description = "With account_id: at most this many per account (default 10, max 100)"),
        ("status" = Option<TransferStatus>, Query, description = "Without account_id: only this status"),
        ("limit" = Option<usize>, Query, description = "Without account_id: page size (default 50, max 500)"),
        ("offset" = Option<usize>, Query, description = "Without account_id: items to skip"),
    ),
    responses(
        (status = 200, description = "An array (by account) or a page", body = TransferList),
        (status = 400, description = "Bad query", body = ErrorBody),
    ))]
async fn list_transfers(
    State(state): State<Arc<Transfers>>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<TransferList>, ApiError> {
    let store = state.read();
    if pairs.iter().any(|(k, _)| k == "account_id") {
        let accounts = repeated(&pairs, "account_id");
        crate::common::error::check_max(accounts.len(), MAX_LIMIT, "account ids")?;
        let last = number::<usize>(&pairs, "last")?.unwrap_or(DEFAULT_LAST).min(MAX_LAST);
        let mut taken: HashMap<&str, usize> = accounts.iter().map(|a| (a.as_str(), 0)).collect();
        let mut found = Vec::new();
        for transfer in store.transfers.values().rev() {
            if let Some(n) = taken.get_mut(transfer.from_account.as_str()) {
                if *n < last {
                    *n += 1;
                    found.push(transfer.clone());
                }
            }
        }
        return Ok(Json(TransferList::List(found)));
    }
    let status = match single(&pairs, "status") {
        None => None,
        Some(raw) => {
            Some(TransferStatus::parse(raw).ok_or_else(|| ApiError::bad_request(format!("unknown status: {raw}")))?)
        }
    };
    let limit = number::<usize>(&pairs, "limit")?
        .unwrap_or(DEFAULT_LIMIT)
        .min(MAX_LIMIT);
    let offset = number::<usize>(&pairs, "offset")?.unwrap_or(0);
    let matching: Vec<Transfer> = store
        .transfers
        .values()
        .rev()
        .filter(|t| status.is_none_or(|s| t.status == s))
        .cloned()
        .collect();
    Ok(Json(TransferList::Page(paginate(&matching, limit, offset))))
}

/// One transfer.
#[utoipa::path(get, path = "/transfers/{id}", tag = "transfers",
    params(("id" = String, Path, description = "Transfer id, e.g. T00001")),
    responses(
        (status = 200, description = "The transfer", body = Transfer),
        (status = 404, description = "Unknown id", body = ErrorBody),
    ))]
async fn get_transfer(State(state): State<Arc<Transfers>>, Path(id): Path<String>) -> Result<Json<Transfer>, ApiError> {
    let seq = parse_transfer_seq(&id).ok_or(ApiError::NotFound)?;
    state
        .read()
        .transfers
        .get(&seq)
        .filter(|t| t.id == id)
        .cloned()
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// Query of `GET /events`.
#[derive(Debug, Deserialize)]
struct EventsQuery {
    after: Option<String>,
}

/// Events of transfers created at run time, oldest first, after `after`.
#[utoipa::path(get, path = "/events", tag = "transfers",
    params(("after" = Option<String>, Query, description = "Only events after this event id, e.g. E000003")),
    responses(
        (status = 200, description = "Events, oldest first", body = Vec<TransferEvent>),
        (status = 400, description = "Malformed event id", body = ErrorBody),
    ))]
async fn list_events(
    State(state): State<Arc<Transfers>>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Json<Vec<TransferEvent>>, ApiError> {
    let after = match query.after.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(raw) => parse_event_id(raw).ok_or_else(|| ApiError::bad_request(format!("malformed event id: {raw}")))?,
    };
    let skip = usize::try_from(after).unwrap_or(usize::MAX);
    Ok(Json(state.bus.log().since(skip, usize::MAX)))
}

/// The id of sequence number `seq`.
fn id_of(seq: u64) -> String {
    transfer_id(usize::try_from(seq).unwrap_or(usize::MAX))
}
