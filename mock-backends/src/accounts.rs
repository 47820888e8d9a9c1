//! The accounts service: owns accounts and their balances. Balances live in
//! memory and change only through idempotent `adjust` calls (made by the
//! transfers service).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use utoipa::{OpenApi, ToSchema};

use crate::common::error::{check_max, comma_list, number, single, ApiError, ApiJson, ApiQuery, ErrorBody};
use crate::common::models::{paginate, Account, Page};
use crate::common::seed::SeedData;
use crate::common::service::{self, Control};

const DEFAULT_LIMIT: usize = 50;
/// Largest page size and id-list length.
const MAX_ITEMS: usize = 500;

struct Accounts {
    /// Account ids per customer id (static).
    by_customer: HashMap<String, Vec<String>>,
    book: RwLock<Book>,
}

#[derive(Default)]
struct Book {
    accounts: BTreeMap<String, Account>,
    /// `(account id, transfer id)` pairs already applied.
    applied: HashSet<(String, String)>,
}

impl Accounts {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Book> {
        self.book.read().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Mosaic mock bank: accounts", version = "0.1.0"),
    paths(list_accounts, get_account, adjust_account),
    components(schemas(Account, AccountList, Adjustment, ErrorBody))
)]
struct ApiDoc;

pub(crate) fn router(data: &SeedData, shutdown: watch::Receiver<bool>) -> Router {
    let mut by_customer: HashMap<String, Vec<String>> = HashMap::new();
    for account in &data.accounts {
        by_customer
            .entry(account.customer_id.clone())
            .or_default()
            .push(account.id.clone());
    }
    let book = Book {
        accounts: data.accounts.iter().map(|a| (a.id.clone(), a.clone())).collect(),
        applied: HashSet::new(),
    };
    let state = Arc::new(Accounts {
        by_customer,
        book: RwLock::new(book),
    });
    let business = Router::new()
        .route("/accounts", get(list_accounts))
        .route("/accounts/{id}", get(get_account))
        .route("/accounts/{id}/adjust", post(adjust_account))
        .with_state(state);
    service::build(Control::new(shutdown, ApiDoc::openapi()), business, Router::new())
}

/// `GET /accounts` answers a plain list when asked by ids or customer ids,
/// a page otherwise.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
enum AccountList {
    List(Vec<Account>),
    Page(Page<Account>),
}

/// Accounts by `customer_ids=C001,C002`, by `ids=A0001,A0002` (both answer a
/// JSON array ordered by id), or, with neither, a page (`limit`, `offset`).
#[utoipa::path(get, path = "/accounts", tag = "accounts",
    params(
        ("customer_ids" = Option<Vec<String>>, Query, style = Form, explode = false, description = "Comma-separated customer ids"),
        ("ids" = Option<Vec<String>>, Query, style = Form, explode = false, description = "Comma-separated account ids"),
        ("limit" = Option<usize>, Query, description = "Page size without ids (default 50, max 500)"),
        ("offset" = Option<usize>, Query, description = "Items to skip without ids"),
    ),
    responses(
        (status = 200, description = "An array (with ids) or a page (without)", body = AccountList),
        (status = 400, description = "Bad query", body = ErrorBody),
    ))]
async fn list_accounts(
    State(state): State<Arc<Accounts>>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<AccountList>, ApiError> {
    let has = |key: &str| pairs.iter().any(|(k, _)| k == key);
    let (by_customer, by_id) = (has("customer_ids"), has("ids"));
    if by_customer && by_id {
        return Err(ApiError::bad_request("use either `ids` or `customer_ids`, not both"));
    }
    let book = state.read();
    if by_customer || by_id {
        let key = if by_customer { "customer_ids" } else { "ids" };
        let wanted = comma_list(single(&pairs, key).unwrap_or(""));
        check_max(wanted.len(), MAX_ITEMS, key)?;
        let ids: HashSet<&str> = if by_customer {
            wanted
                .iter()
                .filter_map(|c| state.by_customer.get(c))
                .flatten()
                .map(String::as_str)
                .collect()
        } else {
            wanted.iter().map(String::as_str).collect()
        };
        let found = book
            .accounts
            .values()
            .filter(|a| ids.contains(a.id.as_str()))
            .cloned()
            .collect();
        return Ok(Json(AccountList::List(found)));
    }
    let limit = number::<usize>(&pairs, "limit")?
        .unwrap_or(DEFAULT_LIMIT)
        .min(MAX_ITEMS);
    let offset = number::<usize>(&pairs, "offset")?.unwrap_or(0);
    let all: Vec<Account> = book.accounts.values().cloned().collect();
    Ok(Json(AccountList::Page(paginate(&all, limit, offset))))
}

/// One account with its current balance.
#[utoipa::path(get, path = "/accounts/{id}", tag = "accounts",
    params(("id" = String, Path, description = "Account id, e.g. A0001")),
    responses(
        (status = 200, description = "The account", body = Account),
        (status = 404, description = "Unknown id", body = ErrorBody),
    ))]
async fn get_account(State(state): State<Arc<Accounts>>, Path(id): Path<String>) -> Result<Json<Account>, ApiError> {
    state
        .read()
        .accounts
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// A balance change on behalf of a transfer.
#[derive(Debug, Deserialize, ToSchema)]
struct Adjustment {
    /// Won to add (negative to debit).
    #[schema(example = -5000)]
    delta: i64,
    /// The transfer this change belongs to; applying it twice is a no-op.
    #[schema(example = "T00001")]
    transfer_id: String,
}

/// Changes a balance once per `(account, transfer_id)`.
#[utoipa::path(post, path = "/accounts/{id}/adjust", tag = "accounts",
    params(("id" = String, Path, description = "Account id")),
    request_body = Adjustment,
    responses(
        (status = 200, description = "The account after the change", body = Account),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 404, description = "Unknown account", body = ErrorBody),
        (status = 409, description = "Insufficient funds", body = ErrorBody),
    ))]
async fn adjust_account(
    State(state): State<Arc<Accounts>>,
    Path(id): Path<String>,
    ApiJson(adjustment): ApiJson<Adjustment>,
) -> Result<Json<Account>, ApiError> {
    if adjustment.transfer_id.trim().is_empty() {
        return Err(ApiError::bad_request("transfer_id must not be empty"));
    }
    let mut book = state.book.write().unwrap_or_else(PoisonError::into_inner);
    let Book { accounts, applied } = &mut *book;
    let account = accounts.get_mut(&id).ok_or(ApiError::NotFound)?;
    let key = (id, adjustment.transfer_id);
    if applied.contains(&key) {
        return Ok(Json(account.clone()));
    }
    let balance = account
        .balance
        .checked_add(adjustment.delta)
        .ok_or_else(|| ApiError::bad_request("balance overflow"))?;
    if balance < 0 {
        return Err(ApiError::Conflict("insufficient funds".to_owned()));
    }
    account.balance = balance;
    applied.insert(key);
    Ok(Json(account.clone()))
}
