//! GraphQL execution over the demo: arguments and their defaults, variables, fragments,
//! `@skip`/`@include`, `__typename`, and argument values reaching the backends safely encoded.

use mosaic_tests::TestEnv;
use serde_json::{json, Value};

fn ok(response: &Value) -> &Value {
    assert!(response.get("errors").is_none(), "{response:#}");
    &response["data"]
}

#[tokio::test]
async fn an_enum_argument_filters_at_the_backend() {
    let env = TestEnv::start().await;
    let response = env
        .graphql("{ customers(tier: GOLD, limit: 5) { id tier } }", json!({}))
        .await;
    let customers = ok(&response)["customers"].as_array().expect("customers").clone();
    assert_eq!(customers.len(), 5);
    assert!(customers.iter().all(|c| c["tier"] == "GOLD"), "{customers:?}");
    env.stop().await;
}

#[tokio::test]
async fn argument_defaults_apply_when_the_argument_is_left_out() {
    let env = TestEnv::start().await;
    let response = env
        .graphql(
            r#"{ customers { id } account(id: "A0033") { transfers { id } } }"#,
            json!({}),
        )
        .await;
    let data = ok(&response);
    assert_eq!(
        data["customers"].as_array().map(Vec::len),
        Some(50),
        "limit defaults to 50"
    );
    assert_eq!(
        data["account"]["transfers"].as_array().map(Vec::len),
        Some(5),
        "last: 5; A0033 has 7"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_null_argument_is_left_out_of_the_backend_query() {
    let env = TestEnv::start().await;
    let response = env
        .graphql(
            "query($d: String) { customers(district: $d, limit: 3) { id } }",
            json!({"d": null}),
        )
        .await;
    assert_eq!(
        ok(&response)["customers"],
        json!([{"id": "C001"}, {"id": "C002"}, {"id": "C003"}])
    );
    env.stop().await;
}

#[tokio::test]
async fn variables_feed_arguments_and_input_objects_with_their_defaults() {
    let env = TestEnv::start().await;
    let response = env
        .graphql(
            "mutation($input: TransferInput!) { transfer(input: $input) { fromAccount toAccount toBank amount status } }",
            json!({"input": {"fromAccount": "A0001", "toAccount": "A0002", "amount": 1234}}),
        )
        .await;
    assert_eq!(
        ok(&response)["transfer"],
        json!({"fromAccount": "A0001", "toAccount": "A0002", "toBank": "Mosaic Bank", "amount": 1234, "status": "COMPLETED"})
    );
    env.stop().await;
}

#[tokio::test]
async fn the_same_idempotency_key_twice_makes_one_transfer() {
    let env = TestEnv::start().await;
    let mutation = "mutation($key: String) { transfer(input: { fromAccount: \"A0001\", toAccount: \"A0002\", amount: 5, idempotencyKey: $key }) { id } }";
    let first = env.graphql(mutation, json!({"key": "once"})).await;
    let second = env.graphql(mutation, json!({"key": "once"})).await;
    let id = ok(&first)["transfer"]["id"].clone();
    assert!(id.is_string(), "{first}");
    assert_eq!(ok(&second)["transfer"]["id"], id);
    env.stop().await;
}

#[tokio::test]
async fn invalid_variables_are_a_request_error_without_data() {
    let env = TestEnv::start().await;
    let response = env
        .graphql("query($id: ID!) { customer(id: $id) { name } }", json!({}))
        .await;
    assert!(response.get("data").is_none(), "{response:#}");
    assert!(
        response["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "{response:#}"
    );
    let response = env
        .graphql("query($n: Int) { customers(limit: $n) { id } }", json!({"n": "three"}))
        .await;
    assert!(response.get("data").is_none(), "{response:#}");
    env.stop().await;
}

#[tokio::test]
async fn fragments_inline_fragments_and_typename_are_resolved() {
    let env = TestEnv::start().await;
    let response = env
        .graphql(
            r#"
            query { __typename customer(id: "C001") { __typename ...Names ... on Customer { district } } }
            fragment Names on Customer { id name }
            "#,
            json!({}),
        )
        .await;
    assert_eq!(
        ok(&response),
        &json!({"__typename": "Query", "customer": {"__typename": "Customer", "id": "C001", "name": "Park Junseo", "district": "Gangnam-gu"}})
    );
    env.stop().await;
}

#[tokio::test]
async fn skip_and_include_select_fields_and_skipped_bound_fields_are_not_fetched() {
    let env = TestEnv::start().await;
    let query = r#"query($with: Boolean!) { customer(id: "C001") { name @skip(if: $with) accounts @include(if: $with) { id } } }"#;
    env.reset_stats().await;
    let without = env.graphql(query, json!({"with": false})).await;
    assert_eq!(ok(&without), &json!({"customer": {"name": "Park Junseo"}}));
    assert!(
        !env.calls().await.contains_key("accounts"),
        "a skipped field was fetched"
    );
    let with = env.graphql(query, json!({"with": true})).await;
    let accounts = ok(&with)["customer"]["accounts"].as_array().expect("accounts").len();
    assert_eq!(accounts, 4);
    assert!(ok(&with)["customer"].get("name").is_none(), "{with}");
    env.stop().await;
}

#[tokio::test]
async fn a_path_argument_cannot_walk_to_another_resource() {
    let env = TestEnv::start().await;
    for id in [
        "C002/../C001",
        "../customers/C001",
        "C001?district=x",
        "C001#x",
        "%43001",
    ] {
        let response = env
            .graphql("query($id: ID!) { customer(id: $id) { id } }", json!({"id": id}))
            .await;
        assert_eq!(ok(&response), &json!({"customer": null}), "id {id:?}");
    }
    env.stop().await;
}

#[tokio::test]
async fn a_query_argument_cannot_add_query_parameters() {
    let env = TestEnv::start().await;
    let response = env
        .graphql(
            "query($d: String) { customers(district: $d, limit: 3) { id } }",
            json!({"d": "Gangnam-gu&limit=1"}),
        )
        .await;
    assert_eq!(ok(&response)["customers"], json!([]));
    env.stop().await;
}

#[tokio::test]
async fn a_query_mixing_introspection_and_data_answers_both() {
    let env = TestEnv::start().await;
    let response = env
        .graphql(
            r#"{ __schema { queryType { name } } customer(id: "C001") { name accounts { id } } }"#,
            json!({}),
        )
        .await;
    let data = ok(&response);
    assert_eq!(data["__schema"]["queryType"]["name"], "Query");
    assert_eq!(data["customer"]["name"], "Park Junseo");
    assert_eq!(data["customer"]["accounts"].as_array().map(Vec::len), Some(4));
    env.stop().await;
}

#[tokio::test]
async fn a_query_deeper_than_max_depth_is_refused() {
    let env = TestEnv::start().await;
    let mut query = String::from(r#"{ customer(id: "C001") { id "#);
    for _ in 0..20 {
        query.push_str("accounts { owner { ");
    }
    query.push_str("id");
    for _ in 0..20 {
        query.push_str(" } }");
    }
    query.push_str(" } }");
    env.reset_stats().await;
    let response = env.graphql(&query, json!({})).await;
    assert!(response.get("data").is_none(), "{response:#}");
    assert!(env.calls().await.is_empty(), "a refused query called backends");
    env.stop().await;
}

#[tokio::test]
async fn a_field_selected_twice_through_a_fragment_is_merged_and_fetched_once() {
    let env = TestEnv::start().await;
    env.reset_stats().await;
    let response = env
        .graphql(
            r#"{ customer(id: "C001") { accounts { id } ... on Customer { accounts { balance } } } }"#,
            json!({}),
        )
        .await;
    let accounts = ok(&response)["customer"]["accounts"]
        .as_array()
        .expect("accounts")
        .clone();
    assert_eq!(accounts.len(), 4);
    assert_eq!(accounts[0], json!({"id": "A0001", "balance": 9907471}));
    assert_eq!(env.calls().await["accounts"]["GET /accounts"], 1);
    env.stop().await;
}

#[tokio::test]
async fn typename_inside_batched_lists_names_each_item_type() {
    let env = TestEnv::start().await;
    let response = env
        .graphql(
            "{ customers(limit: 2) { __typename accounts { __typename owner { __typename id } } } }",
            json!({}),
        )
        .await;
    for c in ok(&response)["customers"].as_array().expect("customers") {
        assert_eq!(c["__typename"], "Customer");
        for a in c["accounts"].as_array().expect("accounts") {
            assert_eq!(a["__typename"], "Account");
            assert_eq!(a["owner"]["__typename"], "Customer");
        }
    }
    env.stop().await;
}
