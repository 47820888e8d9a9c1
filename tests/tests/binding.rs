//! Binding an unfamiliar REST API (the bookshop of `tests/src/bookshop.rs`) to the public schema
//! its frontend wants (`tests/fixtures/bookshop/`): backend keys that are not public fields,
//! envelopes, a comma-list batch answered in reverse order, a JSON-body batch of integers with
//! several items per key, a repeated-parameter batch whose useful value is a number, a fan-out
//! where there is no batch endpoint, computed fields, a typed command body and a declared 422.
//!
//! Every test checks the exact data (against what the REST API itself says, read by plain code
//! here) and the calls each endpoint received.

use std::collections::BTreeMap;

use mosaic_tests::bookshop::{BookshopApi, API_KEY};
use mosaic_tests::infra::InProcessGateway;
use mosaic_tests::{client, fixtures_dir, plan_of};
use serde_json::{json, Value};

/// The bookshop and a gateway over it with the fixture's schema and config.
async fn start() -> (BookshopApi, InProcessGateway) {
    let api = BookshopApi::start().await;
    let (sdl, toml) = fixture(&api);
    let gw = InProcessGateway::start(plan_of(&sdl, &toml), false).await;
    (api, gw)
}

fn fixture(api: &BookshopApi) -> (String, String) {
    let dir = fixtures_dir().join("bookshop");
    let sdl = std::fs::read_to_string(dir.join("schema.graphql")).expect("the bookshop schema");
    let toml = std::fs::read_to_string(dir.join("mosaic.toml"))
        .expect("the bookshop config")
        .replace("${BOOKSHOP_URL:-http://127.0.0.1:1}", &api.url);
    (sdl, toml)
}

async fn query(gw: &InProcessGateway, q: &str, variables: Value) -> Value {
    gw.graphql(&client(), q, variables).await
}

/// GETs a bookshop URL with the key, as a plain client: what the REST API itself says.
async fn rest(api: &BookshopApi, path: &str) -> Value {
    let response = client()
        .get(format!("{}{path}", api.url))
        .header("x-api-key", API_KEY)
        .send()
        .await
        .expect("the bookshop answers");
    if response.status() == 404 {
        return Value::Null;
    }
    response.json().await.expect("JSON")
}

async fn rest_post(api: &BookshopApi, path: &str, body: Value) -> Value {
    client()
        .post(format!("{}{path}", api.url))
        .header("x-api-key", API_KEY)
        .json(&body)
        .send()
        .await
        .expect("the bookshop answers")
        .json()
        .await
        .expect("JSON")
}

/// What the frontend should see for one book record of the REST API, built by hand from the API's
/// own answers (the oracle).
async fn expected_book(api: &BookshopApi, b: &Value) -> Value {
    let publishers = rest(
        api,
        &format!("/v2/publishers?refs={}", b["publisher_ref"].as_str().unwrap_or("")),
    )
    .await;
    let publisher = publishers["items"]
        .as_array()
        .and_then(|p| p.first())
        .map(|p| json!({"id": p["ref"], "name": p["display_name"], "country": p["country_code"]}));
    let stock = rest(api, &format!("/v2/stock?isbn={}", b["isbn"].as_str().unwrap_or(""))).await;
    let stock_level = stock["data"]
        .as_array()
        .and_then(|d| d.first())
        .map(|s| s["quantity"].clone());
    let mut genres = Vec::new();
    for id in b["genre_ids"].as_array().into_iter().flatten() {
        let g = rest(api, &format!("/v2/genres/{id}")).await;
        if !g.is_null() {
            genres.push(json!({"id": g["item"]["genre_id"].to_string(), "name": g["item"]["label"]}));
        }
    }
    let ratings = rest_post(api, "/v2/ratings/search", json!({"book_nos": [b["book_no"]]})).await;
    let ratings: Vec<Value> = ratings["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| json!({"id": r["rating_id"].to_string(), "stars": r["stars"], "reviewer": r["reviewer"]}))
        .collect();
    let reviewers: Vec<Value> = ratings.iter().map(|r| r["reviewer"].clone()).collect();
    let price_cents = b["price_cents"].as_i64().expect("price_cents");
    // Whole amounts are written as integers, as JSON numbers go.
    let price = if price_cents % 100 == 0 {
        json!(price_cents / 100)
    } else {
        json!(price_cents as f64 / 100.0)
    };
    json!({
        "id": b["book_no"].to_string(),
        "title": b["title"],
        "priceCents": price_cents,
        "price": price,
        "pages": b["meta"]["pages"],
        "language": b["meta"]["language"],
        "publishedOn": b["published_on"],
        "label": format!("{} ({} pages)", b["title"].as_str().unwrap_or(""), b["meta"]["pages"]),
        "genreCount": b["genre_ids"].as_array().map_or(0, Vec::len),
        "publisher": publisher,
        "stockLevel": stock_level,
        "genres": genres,
        "ratings": ratings,
        "reviewers": reviewers,
    })
}

const EVERYTHING: &str = "id title priceCents price pages language publishedOn label genreCount \
    publisher { id name country } stockLevel genres { id name } ratings { id stars reviewer } reviewers";

/// The distinct values of `key` over `books` (a list of backend records), flattening lists.
fn distinct(books: &[Value], key: &str) -> usize {
    let mut seen = std::collections::BTreeSet::new();
    for b in books {
        match &b[key] {
            Value::Array(items) => items.iter().for_each(|i| {
                seen.insert(i.to_string());
            }),
            other => {
                seen.insert(other.to_string());
            }
        }
    }
    seen.len()
}

#[tokio::test]
async fn a_page_of_books_with_every_relation_is_exact_and_makes_one_call_per_endpoint_and_level() {
    let (api, gw) = start().await;
    let answer = query(
        &gw,
        &format!("{{ books(page: 1, pageSize: 6) {{ {EVERYTHING} }} }}"),
        json!({}),
    )
    .await;
    let calls = api.calls();
    api.reset_calls();
    assert!(answer.get("errors").is_none(), "{answer}");
    let page = rest(&api, "/v2/books?page=1&page_size=6").await;
    let records = page["items"].as_array().expect("items").clone();
    let mut expected = Vec::new();
    for b in &records {
        expected.push(expected_book(&api, b).await);
    }
    assert_eq!(answer["data"]["books"], Value::Array(expected));

    // One call per endpoint for the whole level; the fan-out makes one call per distinct genre.
    assert_eq!(calls.route("GET /v2/books"), 1, "{calls:?}");
    assert_eq!(calls.route("GET /v2/publishers"), 1, "{calls:?}");
    assert_eq!(calls.route("GET /v2/stock"), 1, "{calls:?}");
    assert_eq!(
        calls.route("POST /v2/ratings/search"),
        1,
        "ratings and reviewers share it: {calls:?}"
    );
    assert_eq!(
        calls.route("GET /v2/genres/{genre_id}"),
        distinct(&records, "genre_ids") as u64,
        "{calls:?}"
    );
    // The keys went out as the API wants them: a sorted comma list, repeated isbns, integers.
    let sent = |prefix: &str| {
        calls
            .requests
            .iter()
            .find(|r| r.starts_with(prefix))
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        sent("GET /v2/publishers"),
        "GET /v2/publishers?refs=pub-1,pub-2,pub-3,pub-4"
    );
    assert_eq!(sent("GET /v2/stock").matches("isbn=").count(), 6);
    assert_eq!(
        sent("POST /v2/ratings/search"),
        "POST /v2/ratings/search {\"book_nos\":[101,102,103,104,105,106]}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn missing_relations_are_null_or_left_out_without_errors() {
    let (_api, gw) = start().await;
    // Book 112: a publisher that does not exist, no stock record; book 108 lists genre 9, which
    // does not exist; book 107 has no genres and no ratings.
    let q = "{ a: book(id: \"112\") { publisher { name } stockLevel genres { id } } \
               b: book(id: \"108\") { genres { id } } c: book(id: \"107\") { genres { id } ratings { id } } \
               none: book(id: \"999\") { id } }";
    let answer = query(&gw, q, json!({})).await;
    assert_eq!(
        answer,
        json!({"data": {
            "a": {"publisher": null, "stockLevel": null, "genres": [{"id": "2"}, {"id": "3"}]},
            "b": {"genres": [{"id": "2"}]},
            "c": {"genres": [], "ratings": []},
            "none": null,
        }})
    );
    gw.stop().await;
}

#[tokio::test]
async fn aliases_fragments_conditions_and_two_aliased_lists_in_one_query() {
    let (api, gw) = start().await;
    let q = "query($pub: Boolean!, $noGenres: Boolean!) {
        first: books(page: 1) { ...B }
        second: books(page: 2) { ...B n: title }
      }
      fragment B on Book { id title publisher @include(if: $pub) { name } kinds: genres @skip(if: $noGenres) { name } }";
    let answer = query(&gw, q, json!({"pub": true, "noGenres": false})).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    let calls = api.calls();
    api.reset_calls();
    let mut pages = Vec::new();
    for p in 1..=2 {
        pages.push(rest(&api, &format!("/v2/books?page={p}&page_size=5")).await["items"].clone());
    }
    let records: Vec<Value> = pages
        .iter()
        .flat_map(|p| p.as_array().cloned().unwrap_or_default())
        .collect();
    for (alias, page) in ["first", "second"].iter().zip(&pages) {
        let got = answer["data"][alias].as_array().expect("a list");
        let want = page.as_array().expect("a page");
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            let full = expected_book(&api, w).await;
            assert_eq!(g["id"], full["id"]);
            assert_eq!(g["title"], full["title"]);
            assert_eq!(
                g["publisher"],
                full["publisher"]
                    .get("name")
                    .map_or(json!(null), |n| json!({"name": n}))
            );
            let names: Vec<Value> = full["genres"]
                .as_array()
                .expect("genres")
                .iter()
                .map(|x| json!({"name": x["name"]}))
                .collect();
            assert_eq!(g["kinds"], Value::Array(names));
            if *alias == "second" {
                assert_eq!(g["n"], full["title"]);
            }
        }
    }
    assert_eq!(calls.route("GET /v2/books"), 2, "{calls:?}");
    assert!(
        calls.route("GET /v2/publishers") <= 2,
        "one per list at most: {calls:?}"
    );
    // Identical genre calls are made once per request, whichever list asked.
    assert_eq!(
        calls.route("GET /v2/genres/{genre_id}"),
        distinct(&records, "genre_ids") as u64,
        "{calls:?}"
    );

    // @skip/@include off: no call for what is not selected.
    api.reset_calls();
    let answer = query(&gw, q, json!({"pub": false, "noGenres": true})).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    assert!(answer["data"]["first"][0].get("publisher").is_none());
    let calls = api.calls();
    assert_eq!(
        calls.route("GET /v2/publishers") + calls.route("GET /v2/genres/{genre_id}"),
        0,
        "{calls:?}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn an_expression_reshapes_the_answer_of_a_root_field() {
    let (api, gw) = start().await;
    let answer = query(&gw, "{ titles }", json!({})).await;
    let page = rest(&api, "/v2/books?page_size=12").await;
    let titles: Vec<Value> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|b| b["title"].clone())
        .collect();
    assert_eq!(answer, json!({"data": {"titles": titles}}));
    gw.stop().await;
}

#[tokio::test]
async fn a_command_sends_integers_from_id_arguments_and_shows_the_declared_422() {
    let (api, gw) = start().await;
    let order = "mutation($b: ID!, $c: Int!) { placeOrder(bookId: $b, copies: $c) { id copies status totalCents book { title } } }";
    let placed = query(&gw, order, json!({"b": "105", "c": 3})).await;
    let book = rest(&api, "/v2/books/105").await;
    assert_eq!(
        placed,
        json!({"data": {"placeOrder": {"id": "ord-1", "copies": 3, "status": "PLACED",
            "totalCents": book["item"]["price_cents"].as_i64().expect("price") * 3,
            "book": {"title": book["item"]["title"]}}}})
    );
    let calls = api.calls();
    assert!(
        calls
            .requests
            .contains(&"POST /v2/orders {\"book_no\":105,\"copies\":3}".to_string()),
        "{calls:?}"
    );

    // The backend's reason, declared as the client's business, with the declared code.
    let refused = query(&gw, order, json!({"b": "105", "c": 11})).await;
    assert_eq!(refused["data"]["placeOrder"], Value::Null, "{refused}");
    let error = &refused["errors"][0];
    assert_eq!(error["message"], "copies must be between 1 and 10", "{refused}");
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{refused}");
    assert_eq!(error["extensions"]["status"], 422, "{refused}");
    assert!(!refused.to_string().contains(&api.url), "no backend address: {refused}");

    // An ID that is not a number never reaches the backend.
    api.reset_calls();
    let bad = query(&gw, order, json!({"b": "abc", "c": 1})).await;
    assert_eq!(bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{bad}");
    assert!(
        bad["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("args.bookId"),
        "{bad}"
    );
    assert_eq!(api.calls().route("POST /v2/orders"), 0);

    // An unknown book: 404 is "no such thing".
    let missing = query(&gw, order, json!({"b": "999", "c": 1})).await;
    assert_eq!(missing, json!({"data": {"placeOrder": null}}));
    gw.stop().await;
}

#[tokio::test]
async fn every_bookshop_query_gives_the_same_bytes_on_both_executors() {
    let api = BookshopApi::start().await;
    let (sdl, toml) = fixture(&api);
    let rt = mosaic_tests::differential::runtime(&toml, &sdl, &[("bookshop", api.url.clone())]);
    let corpus = [
        format!("{{ books(page: 1, pageSize: 12) {{ {EVERYTHING} }} }}"),
        "{ book(id: \"112\") { label price publisher { name } stockLevel genres { name } } }".to_string(),
        "{ a: book(id: \"108\") { genres { id } reviewers } b: book(id: \"999\") { id } titles }".to_string(),
        "{ books(page: 2) { ... on Book { genreCount kinds: genres { name } ratings { stars } } } }".to_string(),
    ];
    let mut by_query = BTreeMap::new();
    for q in &corpus {
        let out = mosaic_tests::differential::same_on_both(&rt, q, json!({})).await;
        assert!(out.get("errors").is_none(), "{q}: {out}");
        by_query.insert(q.clone(), out);
    }
    assert_eq!(by_query.len(), corpus.len());
}

#[tokio::test]
async fn check_lists_the_fan_outs_with_their_cost() {
    let api = BookshopApi::start().await;
    let (sdl, toml) = fixture(&api);
    let summary = mosaic_gateway::plan::summary::Summary::of(&plan_of(&sdl, &toml)).to_string();
    assert!(
        summary.contains("Book.genres: one call per distinct `genre_ids` value per level, 4 at once"),
        "{summary}"
    );
    assert!(
        summary.contains("Order.book: one call per distinct `book_no` value per level"),
        "{summary}"
    );
    assert!(summary.contains("N+1 risks:      none"), "{summary}");
}

/// Every new kind of binding mistake, in one schema: all reported at once, each at its place.
#[test]
fn binding_mistakes_are_reported_together_with_their_place_and_a_hint() {
    let sdl = r#"
type Book {
  id: ID! @from(path: "book_no")
  title: String!
  blank: String @from(path: "")
  sum: Int @from(path: ".a + .b")
  pages: Int! @from(expr: ".meta.pages | tostring")
  names: [String!]! @from(expr: ".authors[0].name")
  broken: String @from(expr: ".a | nope")
  shelf: Shelf @from(expr: "{label: .shelf_label}")
  genres: [Genre!]! @http(backend: "shop", path: "/genres", fanout: {from: "genre_ids"})
  keyed: Genre @http(backend: "shop", path: "/genres/{{key}}")
  both: Genre @http(backend: "shop", path: "/genres/{{key}}", fanout: {from: "g"}, batch: {key: "id", param: "id"})
  stock: Int @http(backend: "shop", path: "/stock", select: "{total: 1}", batch: {key: "isbn", param: "isbn"})
  count: Int @http(backend: "shop", path: "/count/{{parent.book_no}}", value: ".label | length > 3")
}
type Shelf { label: String! code: String! }
type Genre { id: ID! @from(path: "genre_id") label: String! }
type Query {
  book(id: ID!): Book @http(backend: "shop", path: "/books/{{args.id}}", select: "item")
}
type Mutation {
  order(flag: Boolean!, id: ID!): Book @http(backend: "shop", method: POST, path: "/orders",
    query: {flag: "{{args.flag | int}}"}, body: {id: "{{args.id | number}}"},
    errors: [{status: 503, message: "error"}])
}
"#;
    let toml = "[backends.shop]\nurl = \"http://127.0.0.1:1\"\n";
    let src = mosaic_gateway::config::load_from_sources(
        mosaic_gateway::config::SourceFile::new("mosaic.toml", toml),
        vec![mosaic_gateway::config::SourceFile::new("schema.graphql", sdl)],
    )
    .expect("it loads");
    let diagnostics = mosaic_gateway::cli::build_plan(&src, &mosaic_gateway::runtime::ResolverRegistry::new())
        .expect_err("every mistake is reported");
    assert!(
        diagnostics.iter().all(|d| d.hint.is_some() && d.location.is_some()),
        "{diagnostics}"
    );
    insta::assert_snapshot!(diagnostics.to_string());
}

#[tokio::test]
async fn shared_backend_defaults_and_an_endpoint_group_with_a_breaker_of_its_own() {
    let api = BookshopApi::start().await;
    let sdl = r#"
type Book { id: ID! @from(path: "book_no") title: String!
  stockLevel: Int @http(backend: "bookshop", endpoint: "stock", path: "/v2/stock", select: "data",
    batch: { key: "isbn", from: "isbn", param: "isbn" }, value: "quantity") }
type Query { books: [Book!]! @http(backend: "bookshop", path: "/v2/books", select: "items") }
"#;
    // The API key is set once for every backend; the stock lookups get their own timeout,
    // breaker and bulkhead without repeating the URL or the key.
    let toml = format!(
        r#"
[backend_defaults]
headers = {{ "x-api-key" = "{API_KEY}" }}
timeout = "3s"
[backend_defaults.retry]
attempts = 1

[backends.bookshop]
url = "{}"

[backends.bookshop.endpoints.stock]
timeout = "700ms"
[backends.bookshop.endpoints.stock.bulkhead]
max_concurrent = 3
[backends.bookshop.endpoints.stock.breaker]
minimum_calls = 2
"#,
        api.url
    );
    let plan = plan_of(sdl, &toml);
    let names: Vec<&str> = plan.backends.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["bookshop", "bookshop.stock"]);
    let (main, stock) = (&plan.backends[0], &plan.backends[1]);
    assert_eq!(main.timeout, std::time::Duration::from_secs(3), "from the defaults");
    assert_eq!(stock.timeout, std::time::Duration::from_millis(700), "the group's own");
    assert_eq!(stock.instances, main.instances, "the group shares the backend's URL");
    assert_eq!(stock.headers, main.headers, "and its headers (from the defaults)");
    assert_eq!(stock.bulkhead.max_concurrent, 3);
    assert_eq!(main.retry.attempts, 1);
    let gw = InProcessGateway::start(plan, false).await;
    let answer = query(&gw, "{ books { id stockLevel } }", json!({})).await;
    assert!(
        answer.get("errors").is_none(),
        "the key from the defaults reached the API: {answer}"
    );
    assert_eq!(answer["data"]["books"][0]["stockLevel"], 14);
    let health: Value = client()
        .get(gw.url("/healthz"))
        .send()
        .await
        .expect("healthz")
        .json()
        .await
        .expect("JSON");
    let listed: Vec<&str> = health["backends"]
        .as_array()
        .expect("backends")
        .iter()
        .filter_map(|b| b["backend"].as_str())
        .collect();
    assert_eq!(
        listed,
        ["bookshop", "bookshop.stock"],
        "a breaker and bulkhead of its own: {health}"
    );
    gw.stop().await;
}

#[test]
fn endpoint_groups_and_defaults_report_their_mistakes_where_they_are() {
    let toml = r#"
[backend_defaults]
url = "http://127.0.0.1:1"

[backends.shop]
url = "http://127.0.0.1:2"
[backends.shop.endpoints.slow]
url = "http://127.0.0.1:3"
"#;
    let sdl = r#"type Query { a: Int @http(backend: "shop", endpoint: "fast", path: "/a") }"#;
    let err = mosaic_gateway::config::load_from_sources(
        mosaic_gateway::config::SourceFile::new("mosaic.toml", toml),
        vec![mosaic_gateway::config::SourceFile::new("schema.graphql", sdl)],
    )
    .expect_err("url is per backend");
    let text = err.to_string();
    assert!(text.contains("[backend_defaults] sets `url`"), "{text}");
    assert!(text.contains("endpoint group `shop.slow` sets `url`"), "{text}");

    let toml = "[backends.shop]\nurl = \"http://127.0.0.1:2\"\n[backends.shop.endpoints.slow]\ntimeout = \"1s\"\n";
    let src = mosaic_gateway::config::load_from_sources(
        mosaic_gateway::config::SourceFile::new("mosaic.toml", toml),
        vec![mosaic_gateway::config::SourceFile::new("schema.graphql", sdl)],
    )
    .expect("it loads");
    let text = mosaic_gateway::cli::build_plan(&src, &mosaic_gateway::runtime::ResolverRegistry::new())
        .expect_err("no such group")
        .to_string();
    assert!(
        text.contains("backend \"shop\" has no endpoint group \"fast\""),
        "{text}"
    );
    assert!(
        text.contains("did you mean \"slow\"?") || text.contains("[backends.shop.endpoints.fast]"),
        "{text}"
    );
}
