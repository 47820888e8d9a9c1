//! A deterministic bookshop REST API: the "unfamiliar, messy real-world REST API" that tests put a
//! GraphQL schema over. It looks like a typical company API (snake_case, envelopes, foreign keys,
//! integer ids), not like one made for GraphQL. [`BookshopApi::start`] serves it on an ephemeral
//! port of 127.0.0.1 and records every call (see [`Calls`]).
//!
//! Endpoints (all under `/v2` need the header `x-api-key: bk-test-key`, else 401 `unauthorized`):
//! - `GET /v2/books?page=P&page_size=S`: `{"items", "page", "total"}`, page 1 and size 5 by default, size capped at 50.
//! - `GET /v2/books/{book_no}`: `{"item"}`; unknown → 404 `not_found`, non-integer → 400 `bad_request`.
//! - `GET /v2/publishers?refs=pub-1,pub-3`: `{"items"}`, a comma list in ONE parameter (the last `refs` wins).
//! - `POST /v2/ratings/search` `{"book_nos": [101]}`: `{"items"}`, ratings ordered by `rating_id` descending.
//! - `GET /v2/stock?isbn=A&isbn=B`: `{"data"}`, a REPEATED parameter; no `isbn` → empty `data`.
//! - `GET /v2/genres/{genre_id}`: `{"item"}`; there is NO batch endpoint for genres.
//! - `POST /v2/orders` `{"book_no": 105, "copies": 3}`: 201 `{"item"}` with `order_id` `ord-1`, `ord-2`...
//! - `GET /_calls` and `POST /_calls/reset`: the call record over HTTP (no key, not counted).
//!
//! Quirks:
//! - Publishers come back in the REVERSE of the order asked (duplicates dropped); unknown refs are omitted.
//! - Stock comes back in the order asked (duplicates dropped); unknown isbns and books 111, 112 have none.
//! - Book 112 has `publisher_ref` `pub-9`, which does not exist; book 108 has genre id 9, which does not exist.
//! - `genre_ids` are not sorted (`[3, 1]`), and book 107 has none.
//! - Ratings search and orders want JSON integers: `"101"` → 422 `validation_failed` with `reason` and `field`.
//! - Errors are `{"error": {"code", "message"}}`, but 422s have `reason` and `field` instead of `message`.
//! - A body that is not JSON → 400 `bad_request`; a missing `refs` → 400.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{MatchedPath, Path, RawQuery, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

/// The only API key the bookshop accepts (header `x-api-key`).
pub const API_KEY: &str = "bk-test-key";

/// What the bookshop was called with since it started or since the last reset.
#[derive(Debug, Clone, Default)]
pub struct Calls {
    /// Calls per route template, e.g. `"GET /v2/books/{book_no}"` (failed calls included).
    pub by_route: BTreeMap<String, u64>,
    /// Every call in arrival order: `"METHOD path?query"`, plus `" " + body` for a POST.
    pub requests: Vec<String>,
}

impl Calls {
    /// How many calls `route` (e.g. `"GET /v2/genres/{genre_id}"`) got; 0 if none.
    pub fn route(&self, route: &str) -> u64 {
        self.by_route.get(route).copied().unwrap_or(0)
    }
}

/// The bookshop API, served until dropped.
pub struct BookshopApi {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub url: String,
    state: Arc<Shared>,
    task: JoinHandle<()>,
}

impl BookshopApi {
    /// Binds 127.0.0.1 on an ephemeral port and serves the API there.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("the bookshop binds a loopback port");
        let addr = listener.local_addr().expect("the bookshop's listener has an address");
        let state = Arc::new(Shared::default());
        let app = Router::new()
            .route("/v2/books", get(list_books))
            .route("/v2/books/{book_no}", get(get_book))
            .route("/v2/publishers", get(publishers))
            .route("/v2/ratings/search", post(search_ratings))
            .route("/v2/stock", get(stock))
            .route("/v2/genres/{genre_id}", get(get_genre))
            .route("/v2/orders", post(place_order))
            .route_layer(middleware::from_fn_with_state(state.clone(), record_and_authorize))
            .route("/_calls", get(calls_doc))
            .route("/_calls/reset", post(reset_doc))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}"),
            state,
            task,
        }
    }

    /// A snapshot of the calls so far.
    pub fn calls(&self) -> Calls {
        self.state.calls().clone()
    }

    /// Forgets the calls so far (order numbers keep counting).
    pub fn reset_calls(&self) {
        *self.state.calls() = Calls::default();
    }
}

impl Drop for BookshopApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Default)]
struct Shared {
    calls: Mutex<Calls>,
    orders: Mutex<u64>,
}

impl Shared {
    fn calls(&self) -> MutexGuard<'_, Calls> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type St = State<Arc<Shared>>;

// (book_no, title, publisher_ref, isbn, genre_ids, price_cents, published_on, pages, language)
type BookRow = (
    i64,
    &'static str,
    &'static str,
    &'static str,
    &'static [i64],
    i64,
    &'static str,
    i64,
    &'static str,
);

const PUBLISHERS: [(&str, &str, &str); 4] = [
    ("pub-1", "Hanbit Media", "KR"),
    ("pub-2", "Penguin Books", "GB"),
    ("pub-3", "Gallimard", "FR"),
    ("pub-4", "O'Reilly Media", "US"),
];

const GENRES: [(i64, &str); 5] = [
    (1, "Fiction"),
    (2, "Science"),
    (3, "History"),
    (4, "Programming"),
    (5, "Poetry"),
];

#[rustfmt::skip]
const BOOKS: [BookRow; 12] = [
    (101, "The Silent Harbor", "pub-2", "978-0-000000-01-1", &[1], 1299, "2019-03-14", 312, "en"),
    (102, "Rust in Practice", "pub-4", "978-0-000000-02-8", &[4, 2], 4499, "2023-06-01", 540, "en"),
    (103, "A Short History of Joseon", "pub-1", "978-0-000000-03-4", &[3], 2200, "2018-11-20", 288, "ko"),
    (104, "Les Jardins d'Automne", "pub-3", "978-0-000000-04-0", &[5, 1], 1850, "2015-09-03", 196, "fr"),
    (105, "Designing Data Pipelines", "pub-4", "978-0-000000-05-7", &[4], 3999, "2021-02-17", 460, "en"),
    (106, "The Last Empire of the Steppe", "pub-2", "978-0-000000-06-3", &[3, 1], 2450, "2017-05-09", 402, "en"),
    (107, "Seoul Kitchen Notes", "pub-1", "978-0-000000-07-9", &[], 1600, "2020-10-01", 224, "ko"),
    (108, "Quantum Tides", "pub-4", "978-0-000000-08-5", &[2, 9], 2799, "2022-08-30", 352, "en"),
    (109, "Poèmes du Soir", "pub-3", "978-0-000000-09-2", &[5], 1450, "2012-04-12", 128, "fr"),
    (110, "Letters from the Front", "pub-2", "978-0-000000-10-6", &[3, 5, 1], 1999, "2014-11-11", 276, "en"),
    (111, "Hangul Type Design", "pub-1", "978-0-000000-11-4", &[4], 3500, "2024-01-25", 190, "ko"),
    (112, "The Orphaned Atlas", "pub-9", "978-0-000000-12-0", &[2, 3], 999, "2010-07-07", 310, "en"),
];

// (rating_id, book_no, stars, reviewer)
const RATINGS: [(i64, i64, i64, &str); 20] = [
    (1, 101, 5, "amelia"),
    (2, 102, 4, "jinwoo"),
    (3, 105, 3, "marc"),
    (4, 101, 4, "sofia"),
    (5, 103, 5, "minji"),
    (6, 102, 5, "tom"),
    (7, 106, 2, "claire"),
    (8, 104, 4, "luc"),
    (9, 102, 3, "hana"),
    (10, 105, 5, "amelia"),
    (11, 108, 1, "raj"),
    (12, 109, 4, "claire"),
    (13, 101, 2, "tom"),
    (14, 110, 5, "sofia"),
    (15, 102, 4, "marc"),
    (16, 103, 3, "jinwoo"),
    (17, 105, 4, "hana"),
    (18, 106, 3, "luc"),
    (19, 109, 5, "minji"),
    (20, 112, 3, "raj"),
];

// (book_no, quantity, location): the warehouse knows books by isbn, taken from `BOOKS`.
const STOCK: [(i64, i64, &str); 10] = [
    (101, 14, "A-1"),
    (102, 0, "A-2"),
    (103, 7, "B-3"),
    (104, 3, "C-1"),
    (105, 22, "A-4"),
    (106, 1, "B-1"),
    (107, 9, "C-2"),
    (108, 5, "A-3"),
    (109, 12, "B-2"),
    (110, 30, "C-4"),
];

fn book(no: i64) -> Option<&'static BookRow> {
    BOOKS.iter().find(|b| b.0 == no)
}

fn book_json(b: &BookRow) -> Value {
    let (book_no, title, publisher_ref, isbn, genre_ids, price_cents, published_on, pages, language) = *b;
    json!({
        "book_no": book_no, "title": title, "publisher_ref": publisher_ref, "isbn": isbn,
        "genre_ids": genre_ids, "price_cents": price_cents, "published_on": published_on,
        "meta": {"pages": pages, "language": language},
    })
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    reply(status, json!({"error": {"code": code, "message": message}}))
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "bad_request", message)
}

fn not_found(message: &str) -> Response {
    error(StatusCode::NOT_FOUND, "not_found", message)
}

fn invalid(reason: &str, field: &str) -> Response {
    let body = json!({"error": {"code": "validation_failed", "reason": reason, "field": field}});
    reply(StatusCode::UNPROCESSABLE_ENTITY, body)
}

/// The decoded `name=value` pairs of a raw query string, in order.
fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    let Some(raw) = raw else { return Vec::new() };
    reqwest::Url::parse(&format!("http://q/?{raw}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

/// A positive integer parameter (the first one named `name`), `default` when absent; else why not.
fn positive_param(pairs: &[(String, String)], name: &str, default: usize) -> Result<usize, String> {
    match pairs.iter().find(|(k, _)| k == name) {
        None => Ok(default),
        Some((_, v)) => match v.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(format!("{name} must be a positive integer, got {v:?}")),
        },
    }
}

/// The JSON body of a request, if it is JSON.
fn json_body(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok()
}

/// Counts every `/v2` call (failed ones too), then turns away those without the API key.
async fn record_and_authorize(State(st): St, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let template = parts
        .extensions
        .get::<MatchedPath>()
        .map_or_else(|| parts.uri.path().to_string(), |m| m.as_str().to_string());
    let bytes = to_bytes(body, 1 << 20).await;
    let mut line = format!("{} {}", parts.method, parts.uri.path());
    if let Some(query) = parts.uri.query() {
        line.push('?');
        line.push_str(query);
    }
    if parts.method == Method::POST {
        line.push(' ');
        line.push_str(&String::from_utf8_lossy(bytes.as_deref().unwrap_or_default()));
    }
    {
        let mut calls = st.calls();
        *calls
            .by_route
            .entry(format!("{} {template}", parts.method))
            .or_insert(0) += 1;
        calls.requests.push(line);
    }
    let Ok(bytes) = bytes else {
        return bad_request("the body could not be read");
    };
    if parts
        .headers
        .get("x-api-key")
        .is_none_or(|v| v.as_bytes() != API_KEY.as_bytes())
    {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong API key");
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

async fn list_books(RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query.as_deref());
    let (page, size) = match (
        positive_param(&pairs, "page", 1),
        positive_param(&pairs, "page_size", 5),
    ) {
        (Ok(page), Ok(size)) => (page, size.min(50)),
        (Err(e), _) | (_, Err(e)) => return bad_request(&e),
    };
    let skip = (page - 1).saturating_mul(size);
    let items: Vec<Value> = BOOKS.iter().skip(skip).take(size).map(book_json).collect();
    reply(
        StatusCode::OK,
        json!({"items": items, "page": page, "total": BOOKS.len()}),
    )
}

async fn get_book(Path(raw): Path<String>) -> Response {
    let Ok(no) = raw.parse::<i64>() else {
        return bad_request(&format!("book_no must be an integer, got {raw:?}"));
    };
    match book(no) {
        Some(b) => reply(StatusCode::OK, json!({"item": book_json(b)})),
        None => not_found(&format!("no book {no}")),
    }
}

async fn publishers(RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query.as_deref());
    let Some((_, refs)) = pairs.iter().rev().find(|(k, _)| k == "refs") else {
        return bad_request("refs is required (a comma-separated list)");
    };
    let mut asked: Vec<&str> = Vec::new();
    for r in refs.split(',').map(str::trim) {
        if !asked.contains(&r) {
            asked.push(r);
        }
    }
    let items: Vec<Value> = asked
        .iter()
        .rev()
        .filter_map(|r| PUBLISHERS.iter().find(|p| p.0 == *r))
        .map(|(r, name, country)| json!({"ref": r, "display_name": name, "country_code": country}))
        .collect();
    reply(StatusCode::OK, json!({"items": items}))
}

async fn search_ratings(body: Bytes) -> Response {
    let Some(body) = json_body(&body) else {
        return bad_request("the body is not valid JSON");
    };
    let book_nos: Option<Vec<i64>> = body
        .get("book_nos")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(Value::as_i64).collect());
    let Some(book_nos) = book_nos else {
        return invalid("book_nos must be a list of integers", "book_nos");
    };
    let items: Vec<Value> = RATINGS
        .iter()
        .rev()
        .filter(|r| book_nos.contains(&r.1))
        .map(|(id, no, stars, reviewer)| json!({"rating_id": id, "book_no": no, "stars": stars, "reviewer": reviewer}))
        .collect();
    reply(StatusCode::OK, json!({"items": items}))
}

async fn stock(RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query.as_deref());
    let mut asked: Vec<&str> = Vec::new();
    for (_, isbn) in pairs.iter().filter(|(k, _)| k == "isbn") {
        if !asked.contains(&isbn.as_str()) {
            asked.push(isbn);
        }
    }
    let data: Vec<Value> = asked
        .iter()
        .filter_map(|isbn| {
            let b = BOOKS.iter().find(|b| b.3 == *isbn)?;
            let (_, quantity, location) = STOCK.iter().find(|s| s.0 == b.0)?;
            Some(json!({"isbn": isbn, "quantity": quantity, "location": location}))
        })
        .collect();
    reply(StatusCode::OK, json!({"data": data}))
}

async fn get_genre(Path(raw): Path<String>) -> Response {
    let Ok(id) = raw.parse::<i64>() else {
        return bad_request(&format!("genre_id must be an integer, got {raw:?}"));
    };
    match GENRES.iter().find(|g| g.0 == id) {
        Some((id, label)) => reply(StatusCode::OK, json!({"item": {"genre_id": id, "label": label}})),
        None => not_found(&format!("no genre {id}")),
    }
}

async fn place_order(State(st): St, body: Bytes) -> Response {
    let Some(body) = json_body(&body) else {
        return bad_request("the body is not valid JSON");
    };
    const NOT_INTEGERS: &str = "book_no and copies must be integers";
    let Some(no) = body.get("book_no").and_then(Value::as_i64) else {
        return invalid(NOT_INTEGERS, "book_no");
    };
    let Some(copies) = body.get("copies").and_then(Value::as_i64) else {
        return invalid(NOT_INTEGERS, "copies");
    };
    if !(1..=10).contains(&copies) {
        return invalid("copies must be between 1 and 10", "copies");
    }
    let Some(b) = book(no) else {
        return not_found(&format!("no book {no}"));
    };
    let n = {
        let mut orders = st.orders.lock().unwrap_or_else(|e| e.into_inner());
        *orders += 1;
        *orders
    };
    let item = json!({
        "order_id": format!("ord-{n}"), "book_no": no, "copies": copies,
        "status": "PLACED", "total_cents": b.5 * copies,
    });
    reply(StatusCode::CREATED, json!({"item": item}))
}

async fn calls_doc(State(st): St) -> Response {
    let calls = st.calls().clone();
    reply(
        StatusCode::OK,
        json!({"by_route": calls.by_route, "requests": calls.requests}),
    )
}

async fn reset_doc(State(st): St) -> StatusCode {
    *st.calls() = Calls::default();
    StatusCode::NO_CONTENT
}
