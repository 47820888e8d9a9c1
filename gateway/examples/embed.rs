//! Embedding the gateway with a Rust resolver (the `@resolver` escape hatch): the `mosaic`
//! command line (check / serve / schema) with one resolver registered under "greeting".
//!
//! ```sh
//! cargo run -p mosaic-gateway --example embed -- serve --config mosaic.toml
//! ```
//! A field `greeting(name: String!): String @resolver(name: "greeting")` then answers in Rust.

use mosaic_gateway::runtime::{ResolverError, ResolverRegistry};
use serde_json::Value;

#[tokio::main]
async fn main() {
    let resolvers = ResolverRegistry::new().register("greeting", |input| async move {
        match input.args.get("name").and_then(Value::as_str) {
            Some(name) => Ok(Value::String(format!("Hello, {name}!"))),
            None => Err(ResolverError("a name is needed".into())),
        }
    });
    std::process::exit(mosaic_gateway::cli::run(None, resolvers).await);
}
