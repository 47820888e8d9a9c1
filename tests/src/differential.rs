//! Running one operation on both executors: the compiled one and async-graphql's (with Mosaic's
//! resolvers), which must give the same JSON once object keys are ordered and errors sorted by
//! path. Used by the differential suites.

use mosaic_gateway::cli::build_plan;
use mosaic_gateway::config::{load_from_sources, SourceFile};
use mosaic_gateway::runtime::{GraphQLRequest, ResolverRegistry, Runtime};
use serde_json::{Map, Value};

/// A runtime for `toml` and `sdl`, backends named in `urls` pointed there, with nothing that
/// could make two runs of one operation differ: no breakers, retries or caches.
pub fn runtime(toml: &str, sdl: &str, urls: &[(&str, String)]) -> Runtime {
    let mut src = load_from_sources(
        SourceFile::new("mosaic.toml", toml),
        vec![SourceFile::new("schema.graphql", sdl)],
    )
    .unwrap_or_else(|d| panic!("config: {d}"));
    for (name, url) in urls {
        src.set_backend_url(name, url);
    }
    let mut plan = build_plan(&src, &ResolverRegistry::new()).unwrap_or_else(|d| panic!("plan: {d}"));
    // Both executors must see the same backend answers: no state carried from one run to the
    // other (breakers, caches), no retries that could turn a failure into a success.
    for b in &mut plan.backends {
        b.breaker = None;
        b.retry.attempts = 1;
    }
    for b in &mut plan.bindings {
        b.cache = None;
    }
    plan.cache.enabled = false;
    // Random operations alias every field and nest freely: the limits are not what is tested here.
    plan.limits.max_aliases = 10_000;
    plan.limits.max_complexity = u64::MAX;
    plan.limits.max_root_fields = 1_000;
    Runtime::new(plan, ResolverRegistry::new()).expect("runtime")
}

/// Keys ordered (serde_json's map is ordered by key), errors sorted by path then message.
pub fn canonical(bytes: &[u8]) -> Value {
    let mut v: Value = serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("invalid JSON ({e}): {}", String::from_utf8_lossy(bytes)));
    if let Some(errors) = v.get_mut("errors").and_then(Value::as_array_mut) {
        errors.sort_by_key(|e| format!("{}|{}", e["path"], e["message"]));
    }
    v
}

/// Runs `query` on both executors; panics with both responses when they differ.
pub async fn same_on_both(rt: &Runtime, query: &str, variables: Value) -> Value {
    let req = GraphQLRequest {
        query: query.to_string(),
        operation_name: None,
        variables: variables.as_object().cloned().unwrap_or_default(),
        extensions: Map::new(),
    };
    let headers = http::HeaderMap::new();
    let fast = rt
        .execute_compiled_only(&req, &headers)
        .await
        .unwrap_or_else(|| panic!("the compiled executor did not run:\n{query}"));
    let agql_req = async_graphql::Request::new(query).variables(async_graphql::Variables::from_json(variables));
    let slow = serde_json::to_vec(&rt.execute_dynamic(agql_req, headers).await).expect("serialize");
    let (f, s) = (canonical(&fast), canonical(&slow));
    assert_eq!(
        f,
        s,
        "executors differ for\n{query}\ncompiled: {}\nasync-graphql: {}",
        String::from_utf8_lossy(&fast),
        String::from_utf8_lossy(&slow)
    );
    f
}
