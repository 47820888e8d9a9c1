//! The public SDL — what `mosaic schema` prints and introspection shows — has the demo's types
//! and descriptions but nothing of how they are served: no directive, backend, URL or path.

use mock_bank::Service;
use mosaic_gateway::cli::build_plan;
use mosaic_gateway::config::load_from_path;
use mosaic_gateway::runtime::{ResolverRegistry, Runtime};
use mosaic_tests::{schema_dir, TestEnv};
use serde_json::json;

/// The demo's public SDL, from `schema/mosaic.toml` as it is on disk.
fn public_sdl() -> String {
    let source = load_from_path(&schema_dir().join("mosaic.toml")).unwrap_or_else(|d| panic!("{d}"));
    let plan = build_plan(&source, &ResolverRegistry::new()).unwrap_or_else(|d| panic!("{d}"));
    Runtime::new(plan, ResolverRegistry::new())
        .expect("the runtime builds")
        .public_sdl()
}

#[test]
fn public_sdl_has_no_directive_of_mosaic() {
    let sdl = public_sdl();
    for word in [
        "@http",
        "@from",
        "@batch",
        "@resolver",
        "@discriminator",
        "@fallback",
        "@cache",
    ] {
        assert!(!sdl.contains(word), "the public SDL shows {word:?}:\n{sdl}");
    }
    // Only GraphQL's own directives are defined.
    let defined: Vec<&str> = sdl
        .lines()
        .filter_map(|l| l.trim().strip_prefix("directive @"))
        .filter_map(|l| l.split(['(', ' ']).next())
        .collect();
    for name in &defined {
        assert!(
            ["include", "skip", "deprecated", "specifiedBy", "oneOf"].contains(name),
            "the public SDL defines @{name}:\n{sdl}"
        );
    }
}

#[test]
fn public_sdl_has_no_backend_url_host_or_binding_detail() {
    let sdl = public_sdl();
    for word in [
        "backend",
        "http://",
        "https://",
        "127.0.0.1",
        "localhost",
        "{{",
        "path:",
        "select:",
        "batch:",
        "customer_ids",
        "full_name",
        "customer_id",
        "value: [",
        "retry",
        "timeout",
    ] {
        assert!(!sdl.contains(word), "the public SDL shows {word:?}:\n{sdl}");
    }
}

#[test]
fn public_sdl_never_names_a_backend_as_a_value() {
    let sdl = public_sdl();
    for service in Service::ALL {
        let quoted = format!("\"{}\"", service.name());
        assert!(!sdl.contains(&quoted), "the public SDL shows {quoted}:\n{sdl}");
    }
    // Not a GraphQL name, so it can only be a leaked backend name.
    assert!(!sdl.contains("external-bank"), "{sdl}");
}

#[test]
fn public_sdl_keeps_every_type_and_description() {
    let sdl = public_sdl();
    for part in [
        "type Customer",
        "type Account",
        "type Transfer",
        "input TransferInput",
        "enum Tier",
        "enum TransferStatus",
        "scalar BigInt",
        "type Query",
        "type Mutation",
        "A customer of Mosaic Bank.",
        "transfers(last: Int = 5): [Transfer!]!",
    ] {
        assert!(sdl.contains(part), "the public SDL lacks {part:?}:\n{sdl}");
    }
}

#[test]
fn public_sdl_is_valid_sdl() {
    let sdl = public_sdl();
    if let Err(e) = async_graphql_parser::parse_schema(&sdl) {
        panic!("the public SDL does not parse: {e}\n{sdl}");
    }
}

#[test]
fn public_sdl_snapshot() {
    insta::assert_snapshot!(public_sdl());
}

#[tokio::test]
async fn introspection_shows_no_directive_of_mosaic() {
    let env = TestEnv::start().await;
    let response = env
        .graphql(
            r#"{ __schema { directives { name } } customer: __type(name: "Customer") { fields { name } } }"#,
            json!({}),
        )
        .await;
    env.stop().await;
    assert!(response.get("errors").is_none(), "{response:#}");
    let directives: Vec<&str> = response["data"]["__schema"]["directives"]
        .as_array()
        .expect("directives")
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    for ours in ["http", "from", "resolver", "fallback", "discriminator"] {
        assert!(
            !directives.contains(&ours),
            "introspection shows @{ours}: {directives:?}"
        );
    }
    let fields: Vec<&str> = response["data"]["customer"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(fields, ["id", "name", "district", "tier", "joinedAt", "accounts"]);
}
