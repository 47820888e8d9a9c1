//! Failing and misbehaving backends: the client gets HTTP 200, the data that could be fetched,
//! located field errors with a public code and the backend's name — never a URL, host, port or
//! backend body — and either the field's `@fallback` value or nulls propagated to the nearest
//! nullable position, as the GraphQL spec says.

use mock_bank::Service;
use mosaic_tests::{
    assert_backend_errors, assert_errors_hide_backend, demo_sdl, demo_toml, errors, without_directive, TestEnv,
};
use serde_json::{json, Value};

/// The demo without its `@fallback`s: a failed call then makes a null that propagates.
fn demo_sdl_without_fallbacks() -> String {
    let sdl = without_directive(&demo_sdl(), "fallback");
    assert!(!sdl.contains("@fallback"), "{sdl}");
    sdl
}

/// The bank and a gateway over the demo without its fallbacks.
async fn start_without_fallbacks() -> TestEnv {
    TestEnv::start_with(&demo_sdl_without_fallbacks(), &demo_toml()).await
}

#[tokio::test]
async fn a_down_backend_with_a_fallback_serves_the_fallback_value_and_says_so() {
    let env = TestEnv::start().await;
    env.set_faults(Service::Accounts, json!({"down": true})).await;
    let response = env
        .graphql(
            r#"{ customer(id: "C001") { name accounts { id } } customers(limit: 2) { id accounts { id } } }"#,
            json!({}),
        )
        .await;
    env.reset_faults().await;
    // The demo's `Customer.accounts` carries @fallback(value: []).
    assert_eq!(
        response["data"],
        json!({
            "customer": {"name": "Park Junseo", "accounts": []},
            "customers": [{"id": "C001", "accounts": []}, {"id": "C002", "accounts": []}],
        })
    );
    assert_backend_errors(&response, "BACKEND_UNAVAILABLE", "accounts", true);
    let paths: Vec<&Value> = errors(&response).iter().map(|e| &e["path"]).collect();
    assert_eq!(
        paths,
        [
            &json!(["customer", "accounts"]),
            &json!(["customers", 0, "accounts"]),
            &json!(["customers", 1, "accounts"]),
        ]
    );
    assert_errors_hide_backend(&env, &response);
    insta::assert_json_snapshot!(response);
    env.stop().await;
}

#[tokio::test]
async fn a_down_backend_under_a_nullable_parent_nulls_that_parent_and_keeps_the_rest() {
    let env = start_without_fallbacks().await;
    env.set_faults(Service::Accounts, json!({"down": true})).await;
    let response = env
        .graphql(
            r#"{ customer(id: "C001") { name accounts { id } } customers(limit: 2) { id name } }"#,
            json!({}),
        )
        .await;
    env.reset_faults().await;
    // `accounts: [Account!]!` is non-null, so its null lands on `customer`, the nearest nullable
    // position; the other root field is untouched.
    assert_eq!(
        response["data"],
        json!({
            "customer": null,
            "customers": [{"id": "C001", "name": "Park Junseo"}, {"id": "C002", "name": response["data"]["customers"][1]["name"]}],
        })
    );
    assert_backend_errors(&response, "BACKEND_UNAVAILABLE", "accounts", false);
    assert_eq!(errors(&response).len(), 1, "{response:#}");
    assert_eq!(errors(&response)[0]["path"], json!(["customer", "accounts"]));
    assert_eq!(errors(&response)[0]["locations"], json!([{"line": 1, "column": 31}]));
    assert_errors_hide_backend(&env, &response);
    insta::assert_json_snapshot!(response);
    env.stop().await;
}

#[tokio::test]
async fn a_down_backend_under_non_null_parents_all_the_way_up_nulls_data() {
    let env = start_without_fallbacks().await;
    env.set_faults(Service::Accounts, json!({"down": true})).await;
    let response = env
        .graphql("{ customers(limit: 2) { id accounts { id } } }", json!({}))
        .await;
    env.reset_faults().await;
    // customers: [Customer!]! and accounts: [Account!]!: no nullable position up to the root.
    assert_eq!(response["data"], Value::Null, "{response:#}");
    assert!(
        response.get("data").is_some(),
        "execution started, so `data` is present (null)"
    );
    assert_backend_errors(&response, "BACKEND_UNAVAILABLE", "accounts", false);
    let paths: Vec<&Value> = errors(&response).iter().map(|e| &e["path"]).collect();
    assert!(
        paths.iter().all(|p| p[0] == "customers" && p[2] == "accounts"),
        "{response:#}"
    );
    assert_errors_hide_backend(&env, &response);
    insta::assert_json_snapshot!(response);
    env.stop().await;
}

#[tokio::test]
async fn a_down_backend_behind_a_nullable_field_nulls_only_that_field_in_every_parent() {
    let env = TestEnv::start().await;
    env.set_faults(Service::Accounts, json!({"down": true})).await;
    let response = env
        .graphql("{ transfers(limit: 2) { id source { id } } }", json!({}))
        .await;
    env.reset_faults().await;
    assert_eq!(
        response["data"],
        json!({"transfers": [{"id": "T01815", "source": null}, {"id": "T01814", "source": null}]})
    );
    assert_backend_errors(&response, "BACKEND_UNAVAILABLE", "accounts", false);
    let paths: Vec<&Value> = errors(&response).iter().map(|e| &e["path"]).collect();
    assert_eq!(
        paths,
        [&json!(["transfers", 0, "source"]), &json!(["transfers", 1, "source"])]
    );
    assert_errors_hide_backend(&env, &response);
    insta::assert_json_snapshot!(response);
    env.stop().await;
}

#[tokio::test]
async fn a_backend_error_message_names_the_backend_and_the_status_only() {
    let env = TestEnv::start().await;
    env.set_faults(Service::Customers, json!({"status": 500})).await;
    let response = env.graphql(r#"{ customer(id: "C001") { name } }"#, json!({})).await;
    env.reset_faults().await;
    assert_eq!(response["data"], json!({"customer": null}));
    assert_backend_errors(&response, "BACKEND_UNAVAILABLE", "customers", false);
    assert_eq!(
        errors(&response)[0]["message"],
        "backend \"customers\" answered with status 500"
    );
    assert_errors_hide_backend(&env, &response);
    env.stop().await;
}

#[tokio::test]
async fn a_client_error_status_from_a_backend_is_backend_error() {
    let env = TestEnv::start().await;
    env.set_faults(Service::Customers, json!({"status": 400})).await;
    let response = env.graphql(r#"{ customer(id: "C001") { name } }"#, json!({})).await;
    env.reset_faults().await;
    assert_eq!(response["data"], json!({"customer": null}));
    assert_backend_errors(&response, "BACKEND_ERROR", "customers", false);
    assert_errors_hide_backend(&env, &response);
    env.stop().await;
}

#[tokio::test]
async fn a_404_from_a_backend_is_null_without_error() {
    let env = TestEnv::start().await;
    let response = env.graphql(r#"{ customer(id: "C999") { name } }"#, json!({})).await;
    assert_eq!(response, json!({"data": {"customer": null}}));
    env.stop().await;
}

/// A schema with a backend nobody listens on (port 1 of loopback refuses connections).
const UNREACHABLE_SDL: &str = r#"
type Lead {
  id: ID!
}

type Query {
  lead(id: ID!): Lead @http(backend: "crm", path: "/leads/{{args.id}}")
}
"#;

const UNREACHABLE_TOML: &str = r#"
[backends.crm]
url = "http://127.0.0.1:1"
connect_timeout = "2s"
"#;

#[tokio::test]
async fn an_unreachable_backend_is_backend_unavailable_without_its_address() {
    let env = TestEnv::start_with(UNREACHABLE_SDL, UNREACHABLE_TOML).await;
    let response = env.graphql(r#"{ lead(id: "L1") { id } }"#, json!({})).await;
    assert_eq!(response["data"], json!({"lead": null}));
    assert_backend_errors(&response, "BACKEND_UNAVAILABLE", "crm", false);
    assert_eq!(errors(&response)[0]["message"], "backend \"crm\" is unavailable");
    assert_errors_hide_backend(&env, &response);
    assert!(!response.to_string().contains(":1/"), "{response}");
    env.stop().await;
}

/// Customers read from the customers service with a short timeout.
const SLOW_SDL: &str = r#"
type Customer {
  id: ID!
}

type Query {
  customer(id: ID!): Customer @http(backend: "customers", path: "/customers/{{args.id}}")
}
"#;

const SLOW_TOML: &str = r#"
[backends.customers]
url = "http://127.0.0.1:1"
timeout = "300ms"
"#;

#[tokio::test]
async fn a_hanging_backend_is_backend_timeout_after_the_configured_timeout() {
    let env = TestEnv::start_with(SLOW_SDL, SLOW_TOML).await;
    env.set_faults(Service::Customers, json!({"hang": true})).await;
    let started = std::time::Instant::now();
    let response = env.graphql(r#"{ customer(id: "C001") { id } }"#, json!({})).await;
    let took = started.elapsed();
    env.reset_faults().await;
    assert_eq!(response["data"], json!({"customer": null}));
    assert_backend_errors(&response, "BACKEND_TIMEOUT", "customers", false);
    assert_errors_hide_backend(&env, &response);
    assert!(took < std::time::Duration::from_secs(5), "the answer took {took:?}");
    env.stop().await;
}

/// Customers whose `name` is declared an integer though the backend sends a string.
const MISMATCH_SDL: &str = r#"
type Customer {
  id: ID!
  name: Int! @from(path: "full_name")
  nickname: Int @from(path: "full_name")
  tier: TransferStatus!
}

enum TransferStatus {
  COMPLETED
  FAILED
}

type Query {
  customer(id: ID!): Customer @http(backend: "customers", path: "/customers/{{args.id}}")
  customers(limit: Int = 2): [Customer!]!
    @http(backend: "customers", path: "/customers", query: { limit: "{{args.limit}}" }, select: "items")
}
"#;

const CUSTOMERS_TOML: &str = r#"
[backends.customers]
url = "http://127.0.0.1:1"
"#;

#[tokio::test]
async fn a_backend_value_of_the_wrong_type_in_a_non_null_field_is_a_located_error_with_null_propagated() {
    let env = TestEnv::start_with(MISMATCH_SDL, CUSTOMERS_TOML).await;
    let response = env
        .graphql("{\n  customer(id: \"C001\") {\n    id\n    name\n  }\n}", json!({}))
        .await;
    assert_eq!(response["data"], json!({"customer": null}));
    let errors = errors(&response);
    assert_eq!(errors.len(), 1, "{response:#}");
    assert_eq!(errors[0]["path"], json!(["customer", "name"]));
    assert_eq!(errors[0]["locations"], json!([{"line": 4, "column": 5}]));
    assert_eq!(errors[0]["extensions"]["code"], "BACKEND_SCHEMA_MISMATCH");
    assert_errors_hide_backend(&env, &response);
    insta::assert_json_snapshot!(response);
    env.stop().await;
}

#[tokio::test]
async fn a_backend_value_of_the_wrong_type_in_a_nullable_field_nulls_only_that_field() {
    let env = TestEnv::start_with(MISMATCH_SDL, CUSTOMERS_TOML).await;
    let response = env
        .graphql(r#"{ customer(id: "C001") { id nickname } }"#, json!({}))
        .await;
    assert_eq!(response["data"], json!({"customer": {"id": "C001", "nickname": null}}));
    let errors = errors(&response);
    assert_eq!(errors.len(), 1, "{response:#}");
    assert_eq!(errors[0]["path"], json!(["customer", "nickname"]));
    assert_eq!(errors[0]["extensions"]["code"], "BACKEND_SCHEMA_MISMATCH");
    env.stop().await;
}

#[tokio::test]
async fn a_backend_value_outside_an_enum_is_a_schema_mismatch() {
    let env = TestEnv::start_with(MISMATCH_SDL, CUSTOMERS_TOML).await;
    let response = env.graphql(r#"{ customer(id: "C001") { id tier } }"#, json!({})).await;
    assert_eq!(response["data"], json!({"customer": null}));
    let errors = errors(&response);
    assert_eq!(errors.len(), 1, "{response:#}");
    assert_eq!(errors[0]["path"], json!(["customer", "tier"]));
    assert_eq!(errors[0]["extensions"]["code"], "BACKEND_SCHEMA_MISMATCH");
    env.stop().await;
}

#[tokio::test]
async fn a_wrong_type_in_every_item_of_a_non_null_list_nulls_data() {
    let env = TestEnv::start_with(MISMATCH_SDL, CUSTOMERS_TOML).await;
    let response = env.graphql("{ customers(limit: 2) { id name } }", json!({})).await;
    assert_eq!(response["data"], Value::Null, "{response:#}");
    assert!(
        response.get("data").is_some(),
        "execution started, so `data` is present (null)"
    );
    for e in errors(&response) {
        assert_eq!(e["extensions"]["code"], "BACKEND_SCHEMA_MISMATCH", "{e}");
        assert_eq!(e["path"][0], "customers", "{e}");
        assert_eq!(e["path"][2], "name", "{e}");
    }
    insta::assert_json_snapshot!(response);
    env.stop().await;
}

#[tokio::test]
async fn a_schema_mismatch_error_names_the_backend_that_sent_the_value() {
    let env = TestEnv::start_with(MISMATCH_SDL, CUSTOMERS_TOML).await;
    let response = env.graphql(r#"{ customer(id: "C001") { id name } }"#, json!({})).await;
    env.stop().await;
    assert_backend_errors(&response, "BACKEND_SCHEMA_MISMATCH", "customers", false);
}

#[tokio::test]
async fn a_backend_refusing_an_argument_is_backend_error_without_its_body() {
    let env = TestEnv::start().await;
    // The customers service answers 400 {"error": "..."} to a negative limit.
    let response = env.graphql("{ customers(limit: -1) { id } }", json!({})).await;
    assert_eq!(response["data"], Value::Null, "{response:#}");
    assert_backend_errors(&response, "BACKEND_ERROR", "customers", false);
    assert_eq!(
        errors(&response)[0]["message"],
        "backend \"customers\" answered with status 400"
    );
    assert_errors_hide_backend(&env, &response);
    env.stop().await;
}

#[tokio::test]
async fn a_failure_three_levels_down_is_reported_at_each_failed_position() {
    let env = TestEnv::start().await;
    env.set_faults(Service::Transfers, json!({"down": true})).await;
    let response = env
        .graphql(
            r#"{ customer(id: "C001") { name accounts { id transfers(last: 1) { id } } } }"#,
            json!({}),
        )
        .await;
    env.reset_faults().await;
    // transfers: [Transfer!]! → Account! in [Account!]! → accounts: non-null → customer (nullable).
    assert_eq!(response["data"], json!({"customer": null}));
    assert_backend_errors(&response, "BACKEND_UNAVAILABLE", "transfers", false);
    let paths: Vec<Value> = errors(&response).iter().map(|e| e["path"].clone()).collect();
    assert!(!paths.is_empty());
    for (i, path) in paths.iter().enumerate() {
        assert_eq!(path, &json!(["customer", "accounts", i, "transfers"]), "{response:#}");
    }
    env.stop().await;
}

/// Customers as a list of nullable items, with `name` mistyped.
const NULLABLE_ITEMS_SDL: &str = r#"
type Customer {
  id: ID!
  name: Int! @from(path: "full_name")
}

type Query {
  customers(limit: Int = 2): [Customer]!
    @http(backend: "customers", path: "/customers", query: { limit: "{{args.limit}}" }, select: "items")
}
"#;

#[tokio::test]
async fn a_wrong_type_in_a_nullable_list_item_nulls_only_that_item() {
    let env = TestEnv::start_with(NULLABLE_ITEMS_SDL, CUSTOMERS_TOML).await;
    let response = env.graphql("{ customers(limit: 2) { id name } }", json!({})).await;
    assert_eq!(response["data"], json!({"customers": [null, null]}));
    let paths: Vec<&Value> = errors(&response).iter().map(|e| &e["path"]).collect();
    assert_eq!(
        paths,
        [&json!(["customers", 0, "name"]), &json!(["customers", 1, "name"])]
    );
    env.stop().await;
}
