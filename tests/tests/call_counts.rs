//! How many backend requests a query costs, read from the bank's `/_stats`: one request per
//! (bound field, nesting level) whatever the number of parents (split only by the batch's
//! `maxSize`, 100 unless the schema says otherwise), identical calls made once per query, and
//! concurrent identical queries allowed to share calls.
//!
//! What is measured is batching and deduplication, not the response cache: the demo's `@cache`
//! directives, if any, are taken out.

use std::collections::BTreeMap;

use mosaic_tests::{demo_sdl, demo_toml, without_directive, TestEnv};
use serde_json::{json, Value};

/// The default `maxSize` of a batch: a level with more keys is split into several requests.
const DEFAULT_MAX_SIZE: usize = 100;

type Calls = BTreeMap<String, BTreeMap<String, u64>>;

/// `{"service": {"METHOD /route": n}}` from literal triples.
fn calls(entries: &[(&str, &str, usize)]) -> Calls {
    let mut out = Calls::new();
    for (service, endpoint, n) in entries {
        out.entry(service.to_string())
            .or_default()
            .insert(endpoint.to_string(), *n as u64);
    }
    out
}

/// The bank and a gateway over the demo schema without response caching.
async fn start() -> TestEnv {
    TestEnv::start_with(&without_directive(&demo_sdl(), "cache"), &demo_toml()).await
}

/// Requests a batch of `keys` keys takes.
fn batches(keys: usize, max_size: usize) -> usize {
    keys.div_ceil(max_size)
}

/// Runs `query` on fresh counters; returns the response (checked error free) and the calls made.
async fn measure(env: &TestEnv, query: &str) -> (Value, Calls) {
    env.reset_stats().await;
    let response = env.graphql(query, json!({})).await;
    assert!(response.get("errors").is_none(), "{response:#}");
    (response, env.calls().await)
}

fn customers_of(response: &Value) -> &Vec<Value> {
    response["data"]["customers"].as_array().expect("a list of customers")
}

fn accounts_of(response: &Value) -> Vec<&Value> {
    customers_of(response)
        .iter()
        .flat_map(|c| c["accounts"].as_array().expect("a list of accounts"))
        .collect()
}

#[tokio::test]
async fn three_levels_cost_one_request_per_level_for_1_10_and_200_parents() {
    let env = start().await;
    for n in [1, 10, 200] {
        let query = format!("{{ customers(limit: {n}) {{ id accounts {{ id transfers(last: 2) {{ id }} }} }} }}");
        let (response, made) = measure(&env, &query).await;
        assert_eq!(customers_of(&response).len(), n);
        let accounts = accounts_of(&response).len();
        assert!(accounts >= n, "every customer has at least one account");
        let expected = calls(&[
            ("customers", "GET /customers", 1),
            ("accounts", "GET /accounts", batches(n, DEFAULT_MAX_SIZE)),
            ("transfers", "GET /transfers", batches(accounts, DEFAULT_MAX_SIZE)),
        ]);
        assert_eq!(made, expected, "{n} customers with {accounts} accounts");
    }
    env.stop().await;
}

#[tokio::test]
async fn a_reference_back_to_the_parent_type_costs_one_batched_request_per_level() {
    let env = start().await;
    for n in [1, 10, 200] {
        let query = format!("{{ customers(limit: {n}) {{ id accounts {{ id owner {{ id }} }} }} }}");
        let (response, made) = measure(&env, &query).await;
        for customer in customers_of(&response) {
            for account in customer["accounts"].as_array().expect("accounts") {
                assert_eq!(account["owner"]["id"], customer["id"], "{account}");
            }
        }
        // The owners are the n customers again: n distinct keys.
        let expected = calls(&[
            ("customers", "GET /customers", 1),
            ("customers", "GET /customers/batch", batches(n, DEFAULT_MAX_SIZE)),
            ("accounts", "GET /accounts", batches(n, DEFAULT_MAX_SIZE)),
        ]);
        assert_eq!(made, expected, "{n} customers");
    }
    env.stop().await;
}

#[tokio::test]
async fn a_nested_object_under_a_root_list_costs_one_batched_request() {
    let env = start().await;
    // 30 transfers: their 30 `source` accounts come in one batch.
    let (response, made) = measure(&env, "{ transfers(limit: 30) { id fromAccount source { id } } }").await;
    let transfers = response["data"]["transfers"].as_array().expect("transfers");
    for t in transfers {
        assert_eq!(t["source"]["id"], t["fromAccount"], "{t}");
    }
    assert_eq!(
        made,
        calls(&[("transfers", "GET /transfers", 1), ("accounts", "GET /accounts", 1)])
    );
    env.stop().await;
}

#[tokio::test]
async fn the_same_root_field_under_two_aliases_with_the_same_arguments_is_fetched_once() {
    let env = start().await;
    let (response, made) = measure(
        &env,
        r#"{ a: customer(id: "C001") { id } b: customer(id: "C001") { name district } }"#,
    )
    .await;
    assert_eq!(response["data"]["a"]["id"], "C001");
    assert_eq!(response["data"]["b"]["district"], "Gangnam-gu");
    assert_eq!(made, calls(&[("customers", "GET /customers/{id}", 1)]));
    env.stop().await;
}

#[tokio::test]
async fn the_same_nested_field_under_two_aliases_is_fetched_once_per_level() {
    let env = start().await;
    let (response, made) = measure(
        &env,
        "{ customers(limit: 10) { id a: accounts { id } b: accounts { balance } } }",
    )
    .await;
    for c in customers_of(&response) {
        assert_eq!(c["a"].as_array().map(Vec::len), c["b"].as_array().map(Vec::len), "{c}");
    }
    assert_eq!(
        made,
        calls(&[("customers", "GET /customers", 1), ("accounts", "GET /accounts", 1)])
    );
    env.stop().await;
}

#[tokio::test]
async fn the_same_nested_field_with_the_same_arguments_under_two_aliases_is_fetched_once() {
    let env = start().await;
    let (_, made) = measure(
        &env,
        r#"{ customer(id: "C001") { accounts { x: transfers(last: 2) { id } y: transfers(last: 2) { amount } } } }"#,
    )
    .await;
    assert_eq!(
        made,
        calls(&[
            ("customers", "GET /customers/{id}", 1),
            ("accounts", "GET /accounts", 1),
            ("transfers", "GET /transfers", 1),
        ])
    );
    env.stop().await;
}

#[tokio::test]
async fn the_same_nested_field_with_different_arguments_is_fetched_once_per_argument_set() {
    let env = start().await;
    let (response, made) = measure(
        &env,
        r#"{ customer(id: "C001") { accounts { id one: transfers(last: 1) { id } two: transfers(last: 2) { id } } } }"#,
    )
    .await;
    let first = &response["data"]["customer"]["accounts"][0];
    assert_eq!(first["id"], "A0001");
    assert_eq!(first["one"], json!([{"id": "T01612"}]));
    assert_eq!(first["two"], json!([{"id": "T01612"}, {"id": "T01245"}]));
    assert_eq!(
        made,
        calls(&[
            ("customers", "GET /customers/{id}", 1),
            ("accounts", "GET /accounts", 1),
            ("transfers", "GET /transfers", 2),
        ])
    );
    env.stop().await;
}

#[tokio::test]
async fn an_identical_call_at_two_depths_of_one_query_is_made_once() {
    let env = start().await;
    // C001's accounts are asked for at depth 2 and again at depth 4 (through each account's owner,
    // C001 itself): both batches carry exactly the key C001, so they are the same request.
    let (response, made) = measure(
        &env,
        r#"{ customer(id: "C001") { accounts { id owner { accounts { id } } } } }"#,
    )
    .await;
    let accounts = response["data"]["customer"]["accounts"].as_array().expect("accounts");
    assert_eq!(accounts.len(), 4);
    for a in accounts {
        assert_eq!(a["owner"]["accounts"].as_array().map(Vec::len), Some(4), "{a}");
    }
    assert_eq!(
        made,
        calls(&[
            ("customers", "GET /customers/{id}", 1),
            ("customers", "GET /customers/batch", 1),
            ("accounts", "GET /accounts", 1),
        ])
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_queries_make_at_most_the_calls_of_running_them_one_after_the_other() {
    let env = start().await;
    let query = "{ customers(limit: 20) { id accounts { id transfers(last: 2) { id } } } }";
    let (alone, single) = measure(&env, query).await;
    let per_query: u64 = single.values().flat_map(|e| e.values()).sum();
    assert_eq!(per_query, 3);

    // Slow backends make the two queries overlap, so single-flight may share their calls.
    for service in [
        mock_bank::Service::Customers,
        mock_bank::Service::Accounts,
        mock_bank::Service::Transfers,
    ] {
        env.set_faults(service, json!({"latency_ms": 150})).await;
    }
    env.reset_stats().await;
    let (r1, r2) = tokio::join!(env.graphql(query, json!({})), env.graphql(query, json!({})));
    env.reset_faults().await;
    assert_eq!(r1, alone);
    assert_eq!(r2, alone);
    let made = env.calls().await;
    let total: u64 = made.values().flat_map(|e| e.values()).sum();
    assert!(
        total <= 2 * per_query,
        "two identical queries made {total} calls: {made:?}"
    );
    for (service, endpoints) in &made {
        for (endpoint, n) in endpoints {
            assert!(*n <= 2, "{service} {endpoint} was called {n} times for two queries");
        }
    }
    env.stop().await;
}

#[tokio::test]
async fn identical_mutations_in_one_request_are_each_made() {
    let env = start().await;
    env.reset_stats().await;
    let input = r#"{ fromAccount: "A0001", toAccount: "A0002", amount: 10 }"#;
    let response = env
        .graphql(
            &format!("mutation {{ a: transfer(input: {input}) {{ id status }} b: transfer(input: {input}) {{ id status }} }}"),
            json!({}),
        )
        .await;
    assert!(response.get("errors").is_none(), "{response:#}");
    let (a, b) = (&response["data"]["a"], &response["data"]["b"]);
    assert_eq!((&a["status"], &b["status"]), (&json!("COMPLETED"), &json!("COMPLETED")));
    assert_ne!(a["id"], b["id"], "two transfers were made: {response:#}");
    let made = env.calls().await;
    assert_eq!(made["transfers"], BTreeMap::from([("POST /transfers".to_string(), 2)]));
    env.stop().await;
}

/// An operation touching introspection runs on async-graphql's executor (the compiled one runs
/// the rest): batching and deduplication must hold there too.
const INTROSPECTION: &str = "__schema { queryType { name } }";

#[tokio::test]
async fn an_operation_run_by_async_graphql_costs_the_same_calls_as_on_the_compiled_executor() {
    let env = start().await;
    for n in [1, 10, 200] {
        let selection =
            format!("customers(limit: {n}) {{ id accounts {{ id owner {{ id }} transfers(last: 2) {{ id }} }} }}");
        let (compiled, compiled_calls) = measure(&env, &format!("{{ {selection} }}")).await;
        let (dynamic, dynamic_calls) = measure(&env, &format!("{{ {INTROSPECTION} {selection} }}")).await;
        assert_eq!(
            dynamic["data"]["customers"], compiled["data"]["customers"],
            "{n} customers"
        );
        assert_eq!(dynamic_calls, compiled_calls, "{n} customers");
    }
    env.stop().await;
}

#[tokio::test]
async fn the_same_nested_field_under_two_aliases_is_fetched_once_on_the_async_graphql_executor() {
    let env = start().await;
    let query =
        format!("{{ {INTROSPECTION} customers(limit: 10) {{ id a: accounts {{ id }} b: accounts {{ balance }} }} }}");
    let (_, made) = measure(&env, &query).await;
    assert_eq!(
        made,
        calls(&[("customers", "GET /customers", 1), ("accounts", "GET /accounts", 1)])
    );
    env.stop().await;
}

/// A schema whose customers' accounts are batched 50 keys at a time.
const MAX_SIZE_50_SDL: &str = r#"
type Customer {
  id: ID!
  accounts: [Account!]!
    @http(
      backend: "accounts"
      path: "/accounts"
      batch: { key: "customerId", from: "id", param: "customer_ids", style: COMMA, maxSize: 50 }
    )
}

type Account {
  id: ID!
  customerId: ID! @from(path: "customer_id")
}

type Query {
  customers(limit: Int = 50): [Customer!]!
    @http(backend: "customers", path: "/customers", query: { limit: "{{args.limit}}" }, select: "items")
}
"#;

const TWO_BACKENDS_TOML: &str = r#"
[backends.customers]
url = "http://127.0.0.1:1"

[backends.accounts]
url = "http://127.0.0.1:1"
"#;

#[tokio::test]
async fn a_batch_larger_than_max_size_is_split_into_ceil_n_over_max_size_requests() {
    let env = TestEnv::start_with(MAX_SIZE_50_SDL, TWO_BACKENDS_TOML).await;
    for n in [1, 49, 50, 51, 120, 200] {
        let query = format!("{{ customers(limit: {n}) {{ id accounts {{ id customerId }} }} }}");
        let (response, made) = measure(&env, &query).await;
        let customers = customers_of(&response);
        assert_eq!(customers.len(), n);
        for c in customers {
            let accounts = c["accounts"].as_array().expect("accounts");
            assert!(!accounts.is_empty(), "every customer has an account: {c}");
            assert!(accounts.iter().all(|a| a["customerId"] == c["id"]), "{c}");
        }
        let expected = calls(&[
            ("customers", "GET /customers", 1),
            ("accounts", "GET /accounts", n.div_ceil(50)),
        ]);
        assert_eq!(made, expected, "{n} customers");
    }
    env.stop().await;
}
