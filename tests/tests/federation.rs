//! Mosaic as an Apollo Federation v2 subgraph, over the mock bank on real loopback HTTP: the SDL
//! `_service` serves, `_entities` batched into one call per entity type and level (in the
//! representations' order, `null` and an error for what is missing), failures, caching,
//! `@requires`, entities without a resolver, and the config errors `mosaic check` reports.
//!
//! The supergraph itself (composition libraries, a gateway, a second subgraph) is tested in
//! `tests/e2e/tests/federation.test.js`.

use mock_bank::Service;
use mosaic_gateway::config::{load_from_sources, SourceFile};
use mosaic_tests::{assert_errors_hide_backend, demo_sdl, demo_toml, schema_dir, without_directive, TestEnv};
use serde_json::{json, Value};

const ENTITIES: &str = r#"query($r: [_Any!]!) { _entities(representations: $r) {
  __typename
  ... on Customer { id name accounts { id balance } }
  ... on Account { id balance owner { id name } }
} }"#;

fn federation_sdl() -> String {
    std::fs::read_to_string(schema_dir().join("federation.graphql")).expect("schema/federation.graphql")
}

fn federated_toml() -> String {
    format!("{}\n[federation]\nenabled = true\n", demo_toml())
}

/// The bank as a subgraph (the demo's `--federation`), without response caching.
async fn subgraph() -> TestEnv {
    let sdl = format!("{}\n{}", without_directive(&demo_sdl(), "cache"), federation_sdl());
    TestEnv::start_with(&sdl, &federated_toml()).await
}

fn rep(typename: &str, id: &str) -> Value {
    json!({ "__typename": typename, "id": id })
}

fn customer_id(n: usize) -> String {
    format!("C{n:03}")
}

fn account_id(n: usize) -> String {
    format!("A{n:04}")
}

#[tokio::test]
async fn entities_of_two_types_cost_one_call_per_type_and_level_for_1_10_and_100() {
    let env = subgraph().await;
    for n in [1usize, 10, 100] {
        let mut reps = Vec::new();
        for i in 1..=n {
            reps.push(rep("Customer", &customer_id(i)));
            reps.push(rep("Account", &account_id(i)));
        }
        env.reset_stats().await;
        let response = env.graphql(ENTITIES, json!({ "r": reps })).await;
        assert!(response.get("errors").is_none(), "{response:#}");
        let entities = response["data"]["_entities"].as_array().expect("a list");
        assert_eq!(entities.len(), 2 * n);
        for (i, e) in entities.iter().enumerate() {
            let want = &reps[i];
            assert_eq!(e["__typename"], want["__typename"], "entity {i}");
            assert_eq!(e["id"], want["id"], "entity {i}");
        }
        let calls = env.calls().await;
        // Level 1: the customers and the accounts asked for; level 2: the customers' accounts and
        // the accounts' owners — one request each, whatever `n` (for n = 1 the owner of A0001 is
        // C001: the same request as level 1's, made once).
        let want = if n == 1 { 1 } else { 2 };
        assert_eq!(calls["customers"]["GET /customers/batch"], want, "n = {n}: {calls:?}");
        assert_eq!(calls["accounts"]["GET /accounts"], 2, "n = {n}: {calls:?}");
        assert_eq!(calls.len(), 2, "{calls:?}");
    }
    env.stop().await;
}

#[tokio::test]
async fn entities_answer_what_the_ordinary_fields_answer() {
    let env = subgraph().await;
    let ids = ["C003", "C001", "C002"];
    let reps: Vec<Value> = ids.iter().map(|id| rep("Customer", id)).collect();
    let response = env
        .graphql(
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on Customer { id name district tier accounts { id balance owner { name } } } } }",
            json!({ "r": reps }),
        )
        .await;
    for (i, id) in ids.iter().enumerate() {
        let direct = env
            .graphql(
                "query($id: ID!) { customer(id: $id) { id name district tier accounts { id balance owner { name } } } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(response["data"]["_entities"][i], direct["data"]["customer"], "{id}");
    }
    env.stop().await;
}

#[tokio::test]
async fn a_missing_entity_is_null_with_an_error_at_its_index() {
    let env = subgraph().await;
    let reps = json!([
        rep("Customer", "C001"),
        rep("Customer", "C999"),
        rep("Account", "A0001"),
        { "__typename": "Transfer", "id": "T1" },
        { "id": "C001" },
    ]);
    let response = env.graphql(ENTITIES, json!({ "r": reps })).await;
    let entities = &response["data"]["_entities"];
    assert_eq!(entities[0]["id"], "C001");
    assert_eq!(entities[1], Value::Null);
    assert_eq!(entities[2]["id"], "A0001");
    assert_eq!(entities[3], Value::Null);
    assert_eq!(entities[4], Value::Null);
    let errors: Vec<(Value, Value)> = response["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| (e["path"].clone(), e["extensions"]["code"].clone()))
        .collect();
    assert_eq!(
        errors,
        vec![
            (json!(["_entities", 1]), json!("ENTITY_NOT_FOUND")),
            (json!(["_entities", 3]), json!("INVALID_REPRESENTATION")),
            (json!(["_entities", 4]), json!("INVALID_REPRESENTATION")),
        ]
    );
    env.stop().await;
}

#[tokio::test]
async fn a_down_backend_costs_its_entities_only() {
    let env = subgraph().await;
    env.set_faults(Service::Customers, json!({ "down": true })).await;
    let reps = json!([
        rep("Customer", "C001"),
        rep("Account", "A0001"),
        rep("Customer", "C002")
    ]);
    let response = env
        .graphql(
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on Customer { id name } ... on Account { id balance } } }",
            json!({ "r": reps }),
        )
        .await;
    let entities = &response["data"]["_entities"];
    assert_eq!(entities[0], Value::Null, "{response:#}");
    assert_eq!(entities[1]["id"], "A0001", "{response:#}");
    assert_eq!(entities[2], Value::Null, "{response:#}");
    let paths: Vec<&Value> = response["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| &e["path"])
        .collect();
    assert_eq!(paths, vec![&json!(["_entities", 0]), &json!(["_entities", 2])]);
    for e in response["errors"].as_array().expect("errors") {
        assert!(
            e["extensions"]["code"]
                .as_str()
                .is_some_and(|c| c.starts_with("BACKEND_")),
            "{e}"
        );
    }
    assert_errors_hide_backend(&env, &response);
    env.reset_faults().await;
    let response = env
        .graphql(
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on Customer { id name } ... on Account { id balance } } }",
            json!({ "r": reps }),
        )
        .await;
    assert!(response.get("errors").is_none(), "{response:#}");
    env.stop().await;
}

#[tokio::test]
async fn the_service_sdl_has_federation_directives_and_none_of_ours() {
    let env = subgraph().await;
    let response = env.graphql("{ _service { sdl } }", json!({})).await;
    let sdl = response["data"]["_service"]["sdl"].as_str().expect("an SDL string");
    assert!(sdl.contains("type Customer @key(fields: \"id\")"), "{sdl}");
    assert!(sdl.contains("type Account @key(fields: \"id\")"), "{sdl}");
    assert!(sdl.contains("https://specs.apollo.dev/federation/v2"), "{sdl}");
    for ours in ["@http", "@from", "@cache", "@fallback", "backend", "/customers"] {
        assert!(!sdl.contains(ours), "{ours} in {sdl}");
    }
    // It is valid SDL.
    async_graphql_parser::parse_schema(sdl).expect("the subgraph SDL parses");
    env.stop().await;
}

#[tokio::test]
async fn an_entity_type_with_cache_answers_again_without_a_call() {
    let sdl = format!(
        "{}\n{}",
        without_directive(&demo_sdl(), "cache"),
        federation_sdl().replace(
            "extend type Customer\n",
            "extend type Customer\n  @cache(ttl: \"60s\")\n"
        )
    );
    let env = TestEnv::start_with(&sdl, &federated_toml()).await;
    let reps = json!([rep("Customer", "C001"), rep("Customer", "C002")]);
    let query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Customer { id name } } }";
    let first = env.graphql(query, json!({ "r": reps })).await;
    env.reset_stats().await;
    let second = env.graphql(query, json!({ "r": reps })).await;
    assert_eq!(first, second);
    assert!(env.calls().await.is_empty(), "{:?}", env.calls().await);
    env.stop().await;
}

/// A type owned by another subgraph, extended here: the representation is the entity, and the
/// fields added here are bound by the representation's key; a field `@requires` fields only the
/// representation carries.
const EXTENDING: &str = r#"
extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key", "@external", "@requires"])

type Query {
  customer(id: ID!): Customer @http(backend: "customers", path: "/customers/{{args.id}}")
}

type Customer @key(fields: "id") {
  id: ID!
  name: String! @from(path: "full_name")
}

type Holder @key(fields: "customerId") {
  customerId: ID!
  referrerId: ID @external
  accounts: [Account!]!
    @http(backend: "accounts", path: "/accounts", batch: { key: "customer_id", from: "customerId", param: "customer_ids", style: COMMA })
  referrer: Customer @requires(fields: "referrerId") @http(backend: "customers", path: "/customers/{{parent.referrerId}}")
}

type Account {
  id: ID!
  balance: Int!
}

extend type Customer
  @http(backend: "customers", path: "/customers/batch", batch: { key: "id", from: "id", param: "id" })
"#;

#[tokio::test]
async fn an_entity_without_resolver_is_its_representation_and_requires_reach_templates() {
    let env = TestEnv::start_with(EXTENDING, &federated_toml()).await;
    env.reset_stats().await;
    let reps = json!([
        { "__typename": "Holder", "customerId": "C001", "referrerId": "C002" },
        { "__typename": "Holder", "customerId": "C002", "referrerId": "C003" },
    ]);
    let response = env
        .graphql(
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on Holder { customerId accounts { id } referrer { id name } } } }",
            json!({ "r": reps }),
        )
        .await;
    assert!(response.get("errors").is_none(), "{response:#}");
    let holders = response["data"]["_entities"].as_array().expect("a list");
    assert_eq!(holders[0]["customerId"], "C001");
    assert_eq!(holders[0]["referrer"]["id"], "C002");
    assert_eq!(holders[1]["referrer"]["id"], "C003");
    assert!(!holders[0]["accounts"].as_array().expect("accounts").is_empty());
    let calls = env.calls().await;
    assert_eq!(calls["accounts"]["GET /accounts"], 1, "{calls:?}");
    env.stop().await;
}

fn check(sdl: &str, toml: &str) -> String {
    let src = load_from_sources(
        SourceFile::new("mosaic.toml", toml),
        vec![SourceFile::new("schema.graphql", sdl)],
    )
    .expect("the config loads");
    match mosaic_gateway::cli::build_plan(&src, &mosaic_gateway::runtime::ResolverRegistry::new()) {
        Ok(_) => String::new(),
        Err(d) => d.to_string(),
    }
}

const TOML: &str = "[federation]\nenabled = true\n[backends.customers]\nurl = \"http://127.0.0.1:1\"\n";

#[test]
fn check_reports_the_subgraphs_mistakes_with_their_place() {
    let sdl = r#"
type Query { customer(id: ID!): Customer @http(backend: "customers", path: "/c/{{args.id}}") }
type Customer @key(fields: "uid") @key(fields: "id") @http(backend: "customers", path: "/c", forKey: "email", batch: { key: "id", from: "id", param: "id" }) {
  id: ID!
  name: String
}
type Orphan @key(fields: "id") {
  id: ID!
  title: String
}
type Plain @http(backend: "customers", path: "/p") { id: ID! }
"#;
    let out = check(sdl, TOML);
    assert!(out.contains("schema.graphql:3:"), "{out}");
    assert!(out.contains("`uid` is not a field of `Customer`"), "{out}");
    assert!(out.contains("forKey \"email\" is not a @key of `Customer`"), "{out}");
    assert!(
        out.contains(
            "entity `Orphan` has no resolver, and its field `title` is neither in a key, @external, nor bound"
        ),
        "{out}"
    );
    assert!(out.contains("@http on type `Plain`, which has no @key"), "{out}");
}

#[test]
fn federation_directives_without_federation_say_how_to_turn_it_on() {
    let sdl = r#"
type Query { customer(id: ID!): Customer @http(backend: "customers", path: "/c/{{args.id}}") }
type Customer @key(fields: "id") { id: ID! name: String @shareable }
"#;
    let out = check(sdl, "[backends.customers]\nurl = \"http://127.0.0.1:1\"\n");
    assert!(
        out.contains("schema.graphql:3:15: error: @key is an Apollo Federation directive"),
        "{out}"
    );
    assert!(out.contains("[federation] enabled = true"), "{out}");
    assert!(out.contains("@shareable"), "{out}");
}

#[test]
fn renamed_and_namespaced_federation_directives_are_understood() {
    let sdl = r#"
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: [{ name: "@key", as: "@primaryKey" }])
type Query { customer(id: ID!): Customer @http(backend: "customers", path: "/c/{{args.id}}") }
type Customer @primaryKey(fields: "id") @http(backend: "customers", path: "/c", batch: { key: "id", from: "id", param: "id" }) {
  id: ID!
  name: String @federation__shareable
}
"#;
    assert_eq!(check(sdl, TOML), "");
}
