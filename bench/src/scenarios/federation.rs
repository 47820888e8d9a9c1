//! `bench federation`: what an entity lookup from a supergraph costs. The bank is served as a
//! subgraph (`schema/federation.graphql`: customers and accounts as entities, each fetched by a
//! batched `@http` on the type), and the same data is also bound as ordinary root fields
//! (`customersById(ids:)`, `accountsById(ids:)`: one call to the same batch endpoints).
//!
//! For 1, 10 and 100 entities of one type (customers) and of two types (customers and accounts),
//! `_entities` and the ordinary fields are measured in turn on the same gateway process: req/s,
//! gateway CPU µs per request and backend calls per request. Each connection sends its own
//! document and the response cache is off, so every request is executed and written. Reported:
//! the ratio `_entities` ÷ ordinary fields of CPU per request (no target: the figures are for the
//! note; one backend call per type is checked).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::Value;

use crate::load::{LoadRun, Target};
use crate::stack::{self, MosaicOptions};
use crate::Env;

#[derive(Debug, Clone, clap::Args)]
pub struct FederationArgs {
    /// Measured load per case.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
}

/// The same data as ordinary root fields, bound to the entities' batch endpoints.
const ORDINARY_FIELDS: &str = r#"
extend type Query {
  customersById(ids: [ID!]!): [Customer!]! @http(backend: "customers", path: "/customers/batch", query: { id: "{{args.ids}}" })
  accountsById(ids: [ID!]!): [Account!]! @http(backend: "accounts", path: "/accounts", query: { ids: "{{args.ids | csv}}" })
}
"#;

const CUSTOMER_FIELDS: &str = "id name district tier";
const ACCOUNT_FIELDS: &str = "id balance currency";

fn customer_ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("C{i:03}")).collect()
}

fn account_ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("A{i:04}")).collect()
}

fn quoted(ids: &[String]) -> String {
    ids.iter().map(|i| format!("{i:?}")).collect::<Vec<_>>().join(", ")
}

/// `_entities` over `n` customers (and `n` accounts with `two_types`), representations inline.
fn entities_query(n: usize, two_types: bool) -> String {
    let mut reps: Vec<String> = customer_ids(n)
        .iter()
        .map(|id| format!("{{__typename: \"Customer\", id: {id:?}}}"))
        .collect();
    if two_types {
        reps.extend(
            account_ids(n)
                .iter()
                .map(|id| format!("{{__typename: \"Account\", id: {id:?}}}")),
        );
    }
    format!(
        "{{ _entities(representations: [{}]) {{ ... on Customer {{ {CUSTOMER_FIELDS} }} ... on Account {{ {ACCOUNT_FIELDS} }} }} }}",
        reps.join(", ")
    )
}

/// The same data through the ordinary fields.
fn fields_query(n: usize, two_types: bool) -> String {
    let mut q = format!(
        "{{ customersById(ids: [{}]) {{ {CUSTOMER_FIELDS} }}",
        quoted(&customer_ids(n))
    );
    if two_types {
        q.push_str(&format!(
            " accountsById(ids: [{}]) {{ {ACCOUNT_FIELDS} }}",
            quoted(&account_ids(n))
        ));
    }
    q.push_str(" }");
    q
}

#[derive(Debug, Serialize)]
struct Figures {
    requests: u64,
    failed: u64,
    requests_per_s: f64,
    cpu_us_per_request: f64,
    calls_per_request: f64,
}

#[derive(Debug, Serialize)]
struct Case {
    entities: usize,
    types: usize,
    via_entities: Figures,
    via_fields: Figures,
    cpu_ratio: f64,
}

#[derive(Debug, Serialize)]
struct Results {
    smoke: bool,
    connections: usize,
    cases: Vec<Case>,
}

/// The number of entities a response holds, checked against what was asked.
fn count(body: &Value, entities: bool, two_types: bool) -> Result<usize> {
    if body.get("errors").is_some() {
        bail!("the gateway answered errors: {body}");
    }
    let data = body.get("data").context("no data")?;
    let len = |k: &str| data.get(k).and_then(Value::as_array).map(Vec::len).unwrap_or(0);
    Ok(if entities {
        len("_entities")
    } else {
        len("customersById") + if two_types { len("accountsById") } else { 0 }
    })
}

async fn measure(
    env: &Env,
    gw: &stack::Gateway,
    bank: &stack::Bank,
    query: &str,
    connections: usize,
    duration: Duration,
) -> Result<Figures> {
    let target = Arc::new(Target::graphql(gw.addr, "/graphql", query, connections));
    let mut load = LoadRun::start(target, connections, crate::REQUEST_TIMEOUT).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    bank.reset_stats(&env.http).await?;
    let cpu0 = crate::procs::cpu_time(gw.proc.pid())?;
    load.measure();
    tokio::time::sleep(duration).await;
    let elapsed = load.end_measure();
    let cpu1 = crate::procs::cpu_time(gw.proc.pid())?;
    let (calls, _) = bank.stats(&env.http).await?;
    let result = load.finish(elapsed).await;
    let done = result.completed().max(1);
    Ok(Figures {
        requests: result.ok,
        failed: result.completed() - result.ok,
        requests_per_s: result.rps(),
        cpu_us_per_request: (cpu1 - cpu0).as_secs_f64() * 1e6 / done as f64,
        // The stats are read after the load ends; the requests in flight then add a little.
        calls_per_request: calls as f64 / done as f64,
    })
}

pub async fn run(args: FederationArgs, env: Env) -> Result<Vec<String>> {
    let duration = if env.smoke {
        Duration::from_secs(1)
    } else {
        args.duration
    };
    let connections = args.connections.max(1);
    let dir = env.tmp.path.join("federation-schema");
    std::fs::create_dir_all(&dir)?;
    let sdl = [
        std::fs::read_to_string(env.schema_dir.join("bank.graphql"))?,
        std::fs::read_to_string(env.schema_dir.join("federation.graphql"))?,
        ORDINARY_FIELDS.to_string(),
    ]
    .join("\n");
    std::fs::write(dir.join("bank.graphql"), sdl)?;
    std::fs::copy(env.schema_dir.join("mosaic.toml"), dir.join("mosaic.toml"))?;
    let bank = env.start_bank()?;
    let mut opts = MosaicOptions::new("federation");
    opts.admin = false;
    opts.cache_off = true;
    opts.edits
        .push(("federation.enabled".to_owned(), toml::Value::Boolean(true)));
    opts.edits
        .push(("server.warmup".to_owned(), toml::Value::Array(Vec::new())));
    for service in ["customers", "accounts"] {
        for (k, v) in [("max_concurrent", 1024), ("max_queue", 1024)] {
            opts.edits
                .push((format!("backends.{service}.bulkhead.{k}"), toml::Value::Integer(v)));
        }
    }
    let mut gw = stack::start_mosaic_with(&dir, &env.mosaic_bin, &env.tmp.path, &opts, &bank, &env.http).await?;
    eprintln!("bench federation: {connections} connections, {duration:?} per case, cache off");
    let mut cases = Vec::new();
    let mut problems = Vec::new();
    for two_types in [false, true] {
        for n in [1usize, 10, 100] {
            let types = if two_types { 2 } else { 1 };
            let via_entities = entities_query(n, two_types);
            let via_fields = fields_query(n, two_types);
            for (q, entities) in [(&via_entities, true), (&via_fields, false)] {
                let body = super::post_graphql(&env.http, &gw, q).await?;
                let got = count(&body, entities, two_types)?;
                if got != n * types {
                    bail!("expected {} entities, got {got}: {body}", n * types);
                }
            }
            let e = measure(&env, &gw, &bank, &via_entities, connections, duration).await?;
            let f = measure(&env, &gw, &bank, &via_fields, connections, duration).await?;
            for (label, fig) in [("_entities", &e), ("fields", &f)] {
                if fig.failed > 0 {
                    problems.push(format!("{label} n={n} types={types}: {} failed requests", fig.failed));
                }
                // One call per type per request (a little more: requests in flight at the end).
                if fig.calls_per_request > types as f64 * 1.05 {
                    problems.push(format!(
                        "{label} n={n} types={types}: {:.2} backend calls per request, expected {types}",
                        fig.calls_per_request
                    ));
                }
            }
            eprintln!("bench federation: n={n} types={types} done");
            cases.push(Case {
                entities: n,
                types,
                cpu_ratio: e.cpu_us_per_request / f.cpu_us_per_request,
                via_entities: e,
                via_fields: f,
            });
        }
    }
    super::stop_gateway(&mut gw, "federation", &mut problems);
    let results = Results {
        smoke: env.smoke,
        connections,
        cases,
    };
    println!("{}", render(&results));
    env.write_results("bench-federation", &results)?;
    Ok(problems)
}

fn render(r: &Results) -> String {
    let mut s = format!(
        "\nEntities: `_entities` against the same data as ordinary fields, {} connections each with its own document, no cache\n",
        r.connections
    );
    s.push_str(&format!(
        "{:>8} {:>5}  {:>11} {:>11} {:>9}  {:>11} {:>11} {:>9}  {:>9}\n",
        "entities",
        "types",
        "_ent req/s",
        "_ent CPU µs",
        "_ent c/r",
        "field req/s",
        "field CPU µs",
        "field c/r",
        "CPU ratio"
    ));
    for c in &r.cases {
        s.push_str(&format!(
            "{:>8} {:>5}  {:>11.0} {:>11.1} {:>9.2}  {:>11.0} {:>11.1} {:>9.2}  {:>9.2}\n",
            c.entities * c.types,
            c.types,
            c.via_entities.requests_per_s,
            c.via_entities.cpu_us_per_request,
            c.via_entities.calls_per_request,
            c.via_fields.requests_per_s,
            c.via_fields.cpu_us_per_request,
            c.via_fields.calls_per_request,
            c.cpu_ratio
        ));
    }
    s.push_str("c/r: backend calls per request; CPU ratio: _entities ÷ fields, gateway CPU per request\n");
    s
}
