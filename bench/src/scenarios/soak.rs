//! `bench soak`: memory under minutes of full load with nobody scraping `/metrics`.
//!
//! A gateway without an admin listener (so nothing ever scrapes it) serves the 2-level query (each
//! connection its own page, the demo config) back to back for `--duration`; its RSS is read every
//! `--every`. The curve is printed; the target is a flat line once warm: the growth from the end
//! of the first quarter to the end is at most 4 MiB.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use crate::load::{LoadRun, Target};
use crate::stack::{self, MosaicOptions};
use crate::Env;

#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// How long the load lasts.
    #[arg(long, default_value = "180s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// How often RSS is read.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    every: Duration,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
}

#[derive(Debug, Serialize)]
struct Point {
    seconds: f64,
    rss_mib: f64,
}

#[derive(Debug, Serialize)]
struct Results {
    smoke: bool,
    connections: usize,
    query: String,
    idle_rss_mib: f64,
    curve: Vec<Point>,
    requests_ok: u64,
    requests_failed: u64,
    rps: f64,
    /// RSS at the end minus RSS at the end of the first quarter.
    growth_after_warm_mib: f64,
}

const GROWTH_TARGET_MIB: f64 = 4.0;

pub async fn run(args: SoakArgs, env: Env) -> Result<Vec<String>> {
    let (duration, every) = if env.smoke {
        (Duration::from_secs(6), Duration::from_secs(1))
    } else {
        (args.duration, args.every)
    };
    let connections = args.connections.max(1);
    let bank = env.start_bank()?;
    let mut opts = MosaicOptions::new("soak").edit("server.drain_delay", "0s");
    opts.admin = false;
    let mut gw =
        stack::start_mosaic_with(&env.schema_dir, &env.mosaic_bin, &env.tmp.path, &opts, &bank, &env.http).await?;
    let pid = gw.proc.pid();
    let rss = || {
        crate::procs::rss_bytes(pid)
            .map(|b| b as f64 / 1048576.0)
            .unwrap_or(f64::NAN)
    };
    let idle = rss();
    eprintln!(
        "bench soak: {connections} connections for {duration:?}, RSS every {every:?}, no scraper; idle RSS {idle:.1} MiB"
    );
    let target = Arc::new(Target::graphql_each(
        gw.addr,
        "/graphql",
        &super::queries_per_connection(connections),
    ));
    let mut load = LoadRun::start(target, connections, crate::REQUEST_TIMEOUT).await?;
    load.measure();
    let started = Instant::now();
    let mut curve = Vec::new();
    while started.elapsed() < duration {
        tokio::time::sleep(every.min(duration.saturating_sub(started.elapsed()))).await;
        let point = Point {
            seconds: started.elapsed().as_secs_f64(),
            rss_mib: rss(),
        };
        eprintln!("bench soak: {:>6.0} s  {:>6.1} MiB", point.seconds, point.rss_mib);
        curve.push(point);
    }
    let elapsed = load.end_measure();
    let result = load.finish(elapsed).await;
    let mut notes = Vec::new();
    gw.proc.check_alive()?;
    super::stop_gateway(&mut gw, "soak", &mut notes);
    let warm = curve
        .iter()
        .find(|p| p.seconds >= duration.as_secs_f64() / 4.0)
        .map_or(f64::NAN, |p| p.rss_mib);
    let end = curve.last().map_or(f64::NAN, |p| p.rss_mib);
    let results = Results {
        smoke: env.smoke,
        connections,
        query: super::query_2level(0).replace("offset: 0", "offset: N"),
        idle_rss_mib: idle,
        requests_ok: result.ok,
        requests_failed: result.completed() - result.ok,
        rps: result.rps(),
        growth_after_warm_mib: end - warm,
        curve,
    };
    println!("{}", render(&results));
    env.write_results("bench-soak", &results)?;
    let mut problems = notes;
    let flat = results.growth_after_warm_mib <= GROWTH_TARGET_MIB;
    if !flat && !env.smoke {
        problems.push(format!(
            "RSS grew {:.1} MiB after the first quarter (target ≤ {GROWTH_TARGET_MIB} MiB)",
            results.growth_after_warm_mib
        ));
    }
    if results.requests_ok == 0 {
        problems.push("no request succeeded".to_owned());
    }
    Ok(problems)
}

fn render(r: &Results) -> String {
    let mut s = format!(
        "\nMosaic soak: {} connections, each its own page of `{}`, no /metrics scraper; {:.0} req/s ({} ok, {} failed)\n",
        r.connections, r.query, r.rps, r.requests_ok, r.requests_failed
    );
    s.push_str(&format!(
        "{:>8} {:>9}\n{:>8} {:>9.1}\n",
        "s", "RSS MiB", "idle", r.idle_rss_mib
    ));
    for p in &r.curve {
        s.push_str(&format!("{:>8.0} {:>9.1}\n", p.seconds, p.rss_mib));
    }
    s.push_str(&format!(
        "growth from the first quarter to the end: {:+.1} MiB (target ≤ {GROWTH_TARGET_MIB} MiB)\n",
        r.growth_after_warm_mib
    ));
    s
}
