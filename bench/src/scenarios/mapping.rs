//! `bench mapping`: what the mapping layer costs. The bookshop API (`mock_bank::bookshop`, in this
//! process) is bound twice, to the same data in the same calls:
//!
//! - **mapped**: the public schema its frontend wants — renames (`@from(path:)`), computed fields
//!   (`@from(expr:)`), relations through backend keys no public field shows, a batch whose value
//!   is a number picked from the matched record (`value:`), a fan-out;
//! - **plain**: the same shape written plainly — public fields named as the backend's keys, the
//!   keys public, the stock record as an object, no expression.
//!
//! Each connection sends its own document (a comment added), so the execution is not shared and
//! the response is written for each request; the backend's answers are not cached. Reported per
//! binding: req/s, gateway CPU µs per request, backend calls per query; then mapped ÷ plain.
//! Target: the mapped binding costs at most 1.2× the plain one's CPU per request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::Value;

use crate::load::{LoadRun, Target};
use crate::stack::{self, MosaicOptions};
use crate::Env;

#[derive(Debug, Clone, clap::Args)]
pub struct MappingArgs {
    /// Measured load per binding and round.
    #[arg(long, default_value = "8s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Rounds, each measuring both bindings (alternating which goes first).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
}

const MAPPED_SDL: &str = r#"
type Book {
  id: ID! @from(path: "book_no")
  title: String!
  price: Float! @from(expr: ".price_cents / 100")
  label: String! @from(expr: "\"\\(.title) (\\(.meta.pages) pages)\"")
  publisher: Publisher @http(backend: "bookshop", path: "/v2/publishers", select: "items",
    batch: { key: "ref", from: "publisher_ref", param: "refs", style: COMMA })
  stockLevel: Int @http(backend: "bookshop", path: "/v2/stock", select: "data",
    batch: { key: "isbn", from: "isbn", param: "isbn" }, value: "quantity")
  genres: [Genre!]! @http(backend: "bookshop", path: "/v2/genres/{{key}}", select: "item", fanout: { from: "genre_ids" })
  ratings: [Rating!]! @http(backend: "bookshop", method: POST, path: "/v2/ratings/search", select: "items",
    batch: { key: "book_no", from: "book_no", param: "book_nos", style: JSON })
}
type Publisher { id: ID! @from(path: "ref") name: String! @from(path: "display_name") }
type Genre { id: ID! @from(path: "genre_id") name: String! @from(path: "label") }
type Rating { id: ID! @from(path: "rating_id") stars: Int! }
type Query {
  books(pageSize: Int = 12): [Book!]! @http(backend: "bookshop", path: "/v2/books", query: { page_size: "{{args.pageSize}}" }, select: "items")
}
"#;

const MAPPED_QUERY: &str =
    "{ books(pageSize: 12) { id title price label publisher { id name } stockLevel genres { id name } ratings { id stars } } }";

const PLAIN_SDL: &str = r#"
type Book {
  book_no: ID!
  title: String!
  price_cents: Int!
  published_on: String!
  publisher_ref: ID!
  isbn: String!
  genre_ids: [Int!]!
  publisher: Publisher @http(backend: "bookshop", path: "/v2/publishers", select: "items",
    batch: { key: "ref", from: "publisher_ref", param: "refs", style: COMMA })
  stock: Stock @http(backend: "bookshop", path: "/v2/stock", select: "data",
    batch: { key: "isbn", from: "isbn", param: "isbn" })
  genres: [Genre!]! @http(backend: "bookshop", path: "/v2/genres/{{key}}", select: "item", fanout: { from: "genre_ids" })
  ratings: [Rating!]! @http(backend: "bookshop", method: POST, path: "/v2/ratings/search", select: "items",
    batch: { key: "book_no", from: "book_no", param: "book_nos", style: JSON })
}
type Publisher { ref: ID! display_name: String! }
type Stock { quantity: Int! }
type Genre { genre_id: ID! label: String! }
type Rating { rating_id: ID! stars: Int! }
type Query {
  books(pageSize: Int = 12): [Book!]! @http(backend: "bookshop", path: "/v2/books", query: { page_size: "{{args.pageSize}}" }, select: "items")
}
"#;

const PLAIN_QUERY: &str = "{ books(pageSize: 12) { book_no title price_cents published_on publisher { ref display_name } stock { quantity } genres { genre_id label } ratings { rating_id stars } } }";

#[derive(Debug, Serialize)]
struct Figures {
    binding: &'static str,
    query: &'static str,
    requests: u64,
    failed: u64,
    requests_per_s: f64,
    cpu_us_per_request: f64,
    calls_per_query: f64,
    response_bytes: usize,
}

#[derive(Debug, Serialize)]
struct Results {
    smoke: bool,
    connections: usize,
    rounds: Vec<[Figures; 2]>,
    cpu_ratio_median: f64,
    calls_per_query: [f64; 2],
    target_cpu_ratio: f64,
}

const TARGET_RATIO: f64 = 1.2;

fn config_dir(env: &Env, label: &str, sdl: &str, url: &str) -> Result<std::path::PathBuf> {
    let dir = env.tmp.path.join(format!("mapping-{label}"));
    std::fs::create_dir_all(&dir)?;
    // Named as start_mosaic_with expects; the content is the bookshop's.
    std::fs::write(dir.join("bank.graphql"), sdl)?;
    std::fs::write(
        dir.join("mosaic.toml"),
        format!(
            "schema = [\"bank.graphql\"]\n[server]\ndrain_delay = \"0s\"\n[cache]\nenabled = false\n[backends.bookshop]\nurl = \"{url}\"\nheaders = {{ \"x-api-key\" = \"{}\" }}\n[backends.bookshop.bulkhead]\nmax_concurrent = 1024\nmax_queue = 1024\n",
            mock_bank::bookshop::API_KEY
        ),
    )?;
    Ok(dir)
}

pub async fn run(args: MappingArgs, env: Env) -> Result<Vec<String>> {
    let (duration, rounds) = if env.smoke {
        (Duration::from_secs(1), 1)
    } else {
        (args.duration, args.rounds.max(1))
    };
    let connections = args.connections.max(1);
    let api = mock_bank::bookshop::BookshopApi::start().await;
    let bank = env.start_bank()?;
    let mut gateways = Vec::new();
    for (label, sdl) in [("mapped", MAPPED_SDL), ("plain", PLAIN_SDL)] {
        let dir = config_dir(&env, label, sdl, &api.url)?;
        let mut opts = MosaicOptions::new(&format!("mapping-{label}"));
        opts.admin = false;
        gateways.push(stack::start_mosaic_with(&dir, &env.mosaic_bin, &env.tmp.path, &opts, &bank, &env.http).await?);
    }
    // Both bindings answer with the same data.
    let mut sizes = [0usize; 2];
    for (i, (gw, q)) in gateways.iter().zip([MAPPED_QUERY, PLAIN_QUERY]).enumerate() {
        let body = super::post_graphql(&env.http, gw, q).await?;
        if body.get("errors").is_some() {
            bail!("{} binding answered errors: {body}", ["mapped", "plain"][i]);
        }
        let books = body
            .pointer("/data/books")
            .and_then(Value::as_array)
            .context("no books")?;
        if books.len() != 12 {
            bail!("expected 12 books, got {body}");
        }
        sizes[i] = body.to_string().len();
    }
    eprintln!(
        "bench mapping: {connections} connections, {duration:?} × {rounds} rounds per binding; answers {} and {} bytes",
        sizes[0], sizes[1]
    );
    let mut results_rounds = Vec::new();
    for round in 0..rounds {
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        let mut pair: [Option<Figures>; 2] = [None, None];
        for i in order {
            let gw = &gateways[i];
            let query = [MAPPED_QUERY, PLAIN_QUERY][i];
            let target = Arc::new(Target::graphql(gw.addr, "/graphql", query, connections));
            let mut load = LoadRun::start(target, connections, crate::REQUEST_TIMEOUT).await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            api.reset_calls();
            let cpu0 = crate::procs::cpu_time(gw.proc.pid())?;
            let started = Instant::now();
            load.measure();
            tokio::time::sleep(duration).await;
            let elapsed = load.end_measure();
            let cpu1 = crate::procs::cpu_time(gw.proc.pid())?;
            let calls: u64 = api.calls().by_route.values().sum();
            let result = load.finish(elapsed).await;
            let done = result.completed().max(1);
            pair[i] = Some(Figures {
                binding: ["mapped", "plain"][i],
                query,
                requests: result.ok,
                failed: result.completed() - result.ok,
                requests_per_s: result.rps(),
                cpu_us_per_request: (cpu1 - cpu0).as_secs_f64() * 1e6 / done as f64,
                calls_per_query: calls as f64 / done as f64,
                response_bytes: sizes[i],
            });
            eprintln!(
                "bench mapping: round {} {} done ({:.1} s)",
                round + 1,
                ["mapped", "plain"][i],
                started.elapsed().as_secs_f64()
            );
        }
        let [Some(a), Some(b)] = pair else {
            bail!("a measurement is missing")
        };
        results_rounds.push([a, b]);
    }
    let mut notes = Vec::new();
    for (gw, label) in gateways.iter_mut().zip(["mapped", "plain"]) {
        super::stop_gateway(gw, &format!("mapping {label}"), &mut notes);
    }
    let mut ratios: Vec<f64> = results_rounds
        .iter()
        .map(|[a, b]| a.cpu_us_per_request / b.cpu_us_per_request)
        .collect();
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    let calls =
        [0, 1].map(|i| results_rounds.iter().map(|r| r[i].calls_per_query).sum::<f64>() / results_rounds.len() as f64);
    let results = Results {
        smoke: env.smoke,
        connections,
        rounds: results_rounds,
        cpu_ratio_median: median,
        calls_per_query: calls,
        target_cpu_ratio: TARGET_RATIO,
    };
    println!("{}", render(&results));
    env.write_results("bench-mapping", &results)?;
    let mut problems = notes;
    for r in &results.rounds {
        for f in r {
            if f.failed > 0 {
                problems.push(format!("{}: {} failed requests", f.binding, f.failed));
            }
        }
    }
    if median > TARGET_RATIO && !env.smoke {
        problems.push(format!(
            "mapped ÷ plain CPU per request {median:.2} (target ≤ {TARGET_RATIO})"
        ));
    }
    Ok(problems)
}

fn render(r: &Results) -> String {
    let mut s = format!(
        "\nMapping cost: the bookshop API bound with mappings and plainly, {} connections each with its own document, no cache\n",
        r.connections
    );
    s.push_str(&format!(
        "{:<6} {:<7} {:>9} {:>10} {:>13} {:>11} {:>8}\n",
        "round", "binding", "req/s", "CPU µs/r", "calls/query", "requests", "failed"
    ));
    for (i, pair) in r.rounds.iter().enumerate() {
        for f in pair {
            s.push_str(&format!(
                "{:<6} {:<7} {:>9.0} {:>10.1} {:>13.2} {:>11} {:>8}\n",
                i + 1,
                f.binding,
                f.requests_per_s,
                f.cpu_us_per_request,
                f.calls_per_query,
                f.requests,
                f.failed
            ));
        }
    }
    s.push_str(&format!(
        "mapped ÷ plain, gateway CPU per request: {:.2} (median of the rounds; target ≤ {:.1}); backend calls per query {:.2} and {:.2}\n",
        r.cpu_ratio_median, r.target_cpu_ratio, r.calls_per_query[0], r.calls_per_query[1]
    ));
    s
}
