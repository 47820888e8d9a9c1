//! `bench security`: what the query limits and JWT authentication cost on the 2-level query, how
//! fast hostile documents are refused, and the gateway's memory after a hostile suite.
//!
//! - Throughput: three gateways over the same mock bank, measured in turn round after round (as
//!   `overhead` does): (a) every `[limits]` key that bounds a request set to a huge value, no
//!   `[auth]`; (b) the limits as shipped, `[auth]` with an HS256 secret (from the environment)
//!   and `required = true`; (c) (b) plus `[rate_limit]` keyed on the token's subject, at a rate far
//!   above the load (it never refuses, it only costs). Every request carries the same bearer token
//!   (ignored by (a), which reads no `Authorization`), so the three receive the same bytes.
//!   Target: ≤ 3% throughput loss for (b) and (c) against (a).
//! - Bombs: against (b), nesting, alias and fragment bombs, of 1 MiB of query text (over the body
//!   limit) and under it, each sent sequentially: the time from sending to the whole answer, the
//!   status and the GraphQL error code; and fragment fan-outs at the root of growing size, whose
//!   refusal should not grow with the fields they expand to.
//! - Hostile suite: against (b), concurrent connections send a mix of hostile requests (see
//!   [`hostile::hostile_mix`]). Each must be answered with a 4xx or a 200 (a 5xx or a connection
//!   error is a finding); the gateway's RSS before, at its peak, after, and after 2 s and 12 s idle.

mod hostile;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use http::header;
use serde::Serialize;
use serde_json::{json, Value};

use self::hostile::{Answers, Hostile, Tokens, ACCEPT, ISSUER};
use super::{fmt_opt, verdict, ConfigFigures};
use crate::load::Target;
use crate::procs;
use crate::stack::{self, Gateway, MosaicOptions};
use crate::{Env, Settings};

#[derive(Debug, Clone, clap::Args)]
pub struct SecurityArgs {
    /// Measured time per configuration and round.
    #[arg(long, default_value = "4s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Rounds (each measures a, b and c in turn, starting with another one each round).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Unmeasured load before each measurement.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Concurrent keep-alive connections (each its own page of customers).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Sequential requests per bomb.
    #[arg(long, default_value_t = 50)]
    bomb_requests: usize,
    /// How long the hostile suite runs.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    hostile_duration: Duration,
    /// Concurrent connections of the hostile suite.
    #[arg(long, default_value_t = 16)]
    hostile_connections: usize,
}

/// Throughput loss (b) and (c) may cost against (a).
const TARGET_LOSS: f64 = 0.03;

/// The variable (b) and (c) read their HS256 secret from (`hs256_secret = "${…}"`).
const SECRET_VAR: &str = "BENCH_JWT_SECRET";

/// (c)'s `[rate_limit] requests_per_second` and `burst`: far above what 2 cores can serve.
const RATE: i64 = 1_000_000;

/// What (a) sets every count and size of `[limits]` to.
const HUGE: i64 = 1_000_000_000;

/// What (a) sets every duration of `[limits]` to.
const HUGE_DURATION: &str = "24h";

/// Fragment levels of the fan-outs at the root timed one size after the other, and requests per
/// size (full run; the smoke run sends the first three sizes once).
const FANOUT_LEVELS: [usize; 5] = [12, 16, 20, 22, 24];
const FANOUT_REQUESTS: usize = 3;

/// Refusal time growing by more than this factor per fragment level is exponential (a linear
/// analysis grows by ~1.0: a level adds a few dozen bytes).
const FANOUT_GROWTH_LIMIT: f64 = 1.5;

/// The `[limits]` keys (see docs/config.md) that bound a request or a connection, with (a)'s value.
/// Not changed: `plan_cache_size` (a cache, not a limit) and `default_list_size` (how cost is
/// counted, not a bound).
fn limits_off() -> Vec<(&'static str, toml::Value)> {
    let counts = [
        "max_body_bytes",
        "max_batch_operations",
        "max_query_bytes",
        "max_tokens",
        "max_depth",
        "max_aliases",
        "max_root_fields",
        "max_complexity",
        "max_subscriptions",
        "max_subscriptions_per_connection",
        "max_ws_connections",
        "max_ws_message_bytes",
    ];
    let durations = [
        "request_timeout",
        "body_timeout",
        "ws_init_timeout",
        "slow_subscriber_timeout",
    ];
    counts
        .into_iter()
        .map(|k| (k, toml::Value::Integer(HUGE)))
        .chain(durations.into_iter().map(|k| (k, toml::Value::from(HUGE_DURATION))))
        .collect()
}

/// The three gateways' options: (a) limits off, (b) limits and auth, (c) (b) and a rate limit.
fn configurations(secret: &str) -> [MosaicOptions; 3] {
    let base = |label: &str| {
        let mut opts = MosaicOptions::new(label).edit("server.drain_delay", "0s");
        opts.admin = false;
        opts
    };
    let mut a = base("security-a");
    for (key, value) in limits_off() {
        a = a.edit(&format!("limits.{key}"), value);
    }
    let b = base("security-b")
        .edit("auth.hs256_secret", format!("${{{SECRET_VAR}}}"))
        .edit("auth.issuer", ISSUER)
        .edit("auth.required", true)
        .env(SECRET_VAR, secret);
    let mut c = b
        .clone()
        .edit("rate_limit.requests_per_second", RATE)
        .edit("rate_limit.burst", RATE)
        .edit("rate_limit.key", "subject");
    c.label = "security-c".to_owned();
    [a, b, c]
}

const DESCRIBE: [&str; 3] = [
    "(a) [limits] all huge, no [auth]",
    "(b) default [limits] + [auth] HS256, required",
    "(c) (b) + [rate_limit] by subject, never reached",
];

/// Checks that the configurations differ as meant: (b) refuses a request without a token, and 40
/// aliases (over the shipped 30; under a field, as 40 root fields break another limit first) are
/// refused by (b) and answered by (a).
async fn check_configurations(http: &reqwest::Client, gws: &[Gateway], bearer: &str) -> Result<()> {
    let status = http
        .post(gws[1].url())
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await?
        .status();
    if status != reqwest::StatusCode::UNAUTHORIZED {
        bail!("(b) answered {status} to a request without a token; 401 expected: is [auth] on?");
    }
    let fields: Vec<String> = (1..=40).map(|i| format!("a{i}: id")).collect();
    let many = format!("{{ customers(limit: 1) {{ {} }} }}", fields.join(" "));
    let a = super::post_graphql_as(http, &gws[0], &many, Some(bearer)).await?;
    if a.get("errors").is_some() {
        bail!("(a) refused 40 aliases: are its limits off? {a}");
    }
    let b = super::post_graphql_as(http, &gws[1], &many, Some(bearer)).await?;
    if b.pointer("/errors/0/extensions/code").and_then(Value::as_str) != Some("TOO_MANY_ALIASES") {
        bail!("(b) did not refuse 40 aliases with TOO_MANY_ALIASES: {b}");
    }
    Ok(())
}

/// Sends each of `requests` `n` times, one after the other.
async fn one_at_a_time(
    http: &reqwest::Client,
    gw: &Gateway,
    tokens: &Tokens,
    requests: Vec<Hostile>,
    n: usize,
) -> Vec<Answers> {
    let url = gw.url();
    let mut out = Vec::new();
    for req in requests {
        let mut shots = Vec::with_capacity(n);
        for _ in 0..n {
            shots.push(hostile::shoot(http, &url, &req, tokens).await);
        }
        let answers = Answers::of(&req, &shots);
        eprintln!(
            "bench security: {}: p50 {:.2} ms, max {:.2} ms, {} {}",
            req.key,
            answers.p50_ms,
            answers.max_ms,
            answers.statuses_text(),
            answers.codes_text()
        );
        out.push(answers);
    }
    out
}

/// Fragment fan-outs at the root, one size after the other.
#[derive(Debug, Serialize)]
struct Fanout {
    sizes: Vec<Answers>,
    /// (p50 of the largest ÷ p50 of the one before) ^ (1 / their difference in levels).
    growth_per_level: Option<f64>,
    levels: Vec<usize>,
}

async fn fanout(http: &reqwest::Client, gw: &Gateway, tokens: &Tokens, smoke: bool) -> Fanout {
    let (levels, n) = if smoke {
        (&FANOUT_LEVELS[..3], 1)
    } else {
        (&FANOUT_LEVELS[..], FANOUT_REQUESTS)
    };
    let requests = levels
        .iter()
        .map(|&l| {
            Hostile::query(
                "fanout-root",
                format!("fragments at the root, {l} levels"),
                &hostile::fanout_at_root(l),
            )
        })
        .collect();
    let sizes = one_at_a_time(http, gw, tokens, requests, n).await;
    let growth_per_level = match (&sizes[..], levels) {
        ([.., x, y], [.., lx, ly]) if x.p50_ms > 0.0 => {
            Some((y.p50_ms / x.p50_ms).powf(1.0 / (ly - lx) as f64)).filter(|g| g.is_finite())
        }
        _ => None,
    };
    Fanout {
        sizes,
        growth_per_level,
        levels: levels.to_vec(),
    }
}

/// The gateway's resident memory around the hostile suite.
#[derive(Debug, Serialize)]
struct Rss {
    before_mib: f64,
    peak_mib: f64,
    after_mib: f64,
    after_idle_mib: f64,
    /// After 12 s idle: past jemalloc's 10 s decay of unused pages, what the gateway still holds.
    after_long_idle_mib: f64,
}

#[derive(Debug, Serialize)]
struct Suite {
    connections: usize,
    seconds: f64,
    requests: usize,
    answers: Vec<Answers>,
    rss: Rss,
    /// Requests not answered with a 200 or a 4xx (5xx, other statuses, connection errors).
    unanswered: usize,
    target_met: bool,
}

/// `connections` concurrent senders cycle through the hostile mix for `duration`; RSS is read
/// before, every 100 ms during, just after, after 2 s idle and after 12 s idle.
async fn hostile_suite(
    http: &reqwest::Client,
    gw: &Gateway,
    tokens: Arc<Tokens>,
    connections: usize,
    duration: Duration,
) -> Result<Suite> {
    let pid = gw.proc.pid();
    let mix = Arc::new(hostile::hostile_mix());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = procs::rss_bytes(pid)?;
    let started = Instant::now();
    let mut senders = Vec::new();
    for i in 0..connections {
        let (http, url, mix, tokens) = (http.clone(), gw.url(), mix.clone(), tokens.clone());
        senders.push(tokio::spawn(async move {
            let mut shots = Vec::new();
            let mut j = 0;
            while started.elapsed() < duration {
                let k = (i + j) % mix.len();
                shots.push((k, hostile::shoot(&http, &url, &mix[k], &tokens).await));
                j += 1;
            }
            shots
        }));
    }
    let mut peak = before;
    while senders.iter().any(|t| !t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(procs::rss_bytes(pid)?);
    }
    let seconds = started.elapsed().as_secs_f64();
    let after = procs::rss_bytes(pid)?;
    let mut per_kind: Vec<Vec<hostile::Shot>> = (0..mix.len()).map(|_| Vec::new()).collect();
    for sender in senders {
        for (k, shot) in sender.await.context("a hostile sender panicked")? {
            per_kind[k].push(shot);
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_idle = procs::rss_bytes(pid)?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after_long_idle = procs::rss_bytes(pid)?;
    let answers: Vec<Answers> = mix.iter().zip(&per_kind).map(|(r, s)| Answers::of(r, s)).collect();
    let unanswered = answers.iter().map(Answers::unanswered).sum();
    let mib = |b: u64| b as f64 / hostile::MIB as f64;
    Ok(Suite {
        connections,
        seconds,
        requests: answers.iter().map(|a| a.sent).sum(),
        answers,
        rss: Rss {
            before_mib: mib(before),
            peak_mib: mib(peak.max(after)),
            after_mib: mib(after),
            after_idle_mib: mib(after_idle),
            after_long_idle_mib: mib(after_long_idle),
        },
        unanswered,
        target_met: unanswered == 0,
    })
}

#[derive(Debug, Serialize)]
struct Results {
    smoke: bool,
    cores: usize,
    connections: usize,
    query: String,
    rounds: usize,
    duration_per_round_s: f64,
    /// What (a) sets in `[limits]`.
    limits_off: BTreeMap<String, String>,
    configs: Vec<ConfigFigures>,
    bomb_requests: usize,
    bombs: Vec<Answers>,
    fanout: Fanout,
    hostile: Suite,
    notes: Vec<String>,
    suspicious: Vec<String>,
}

pub async fn run(args: SecurityArgs, env: Env) -> Result<Vec<String>> {
    let smoke = env.smoke;
    let settings = Settings {
        duration: if smoke { Duration::from_secs(1) } else { args.duration },
        warmup: if smoke { Duration::from_millis(300) } else { args.warmup },
        connections: if smoke { 8 } else { args.connections.max(1) },
        smoke,
    };
    let rounds = if smoke { 1 } else { args.rounds.max(1) };
    let bomb_requests = if smoke { 5 } else { args.bomb_requests.max(1) };
    let hostile_duration = if smoke {
        Duration::from_secs(2)
    } else {
        args.hostile_duration
    };
    let hostile_connections = if smoke { 4 } else { args.hostile_connections.max(1) };
    eprintln!(
        "bench security: {} cores shared by everything; {} connections; {rounds} round(s) of {:?}+{:?} per configuration; \
         {bomb_requests} requests per bomb; hostile suite {hostile_connections} connections for {hostile_duration:?}",
        env.cores, settings.connections, settings.warmup, settings.duration
    );
    let mut bank = env.start_bank()?;
    let mut problems = Vec::new();
    let mut suspicious = Vec::new();
    let mut notes = Vec::new();

    let secret = format!(
        "mosaic-bench-hs256-{}-{:x}",
        std::process::id(),
        UNIX_EPOCH.elapsed()?.as_nanos()
    );
    let tokens = Arc::new(Tokens {
        valid: hostile::token(&secret)?,
        forged: hostile::token("not-the-gateway's-secret-but-32-bytes-long")?,
    });
    let bearer = format!("Bearer {}", tokens.valid);
    let mut gws = Vec::new();
    for opts in &configurations(&secret) {
        let gw =
            stack::start_mosaic_with(&env.schema_dir, &env.mosaic_bin, &env.tmp.path, opts, &bank, &env.http).await?;
        super::check_2level_as(&env.http, &gw, Some(&tokens.valid)).await?;
        eprintln!("bench security: {} pid {} at {}", opts.label, gw.proc.pid(), gw.addr);
        gws.push(gw);
    }
    check_configurations(&env.http, &gws, &tokens.valid).await?;

    // 1. Throughput, the three in turn; every request with the same token.
    let queries = super::queries_per_connection(settings.connections);
    let targets = gws
        .iter()
        .map(|gw| Target::graphql_each(gw.addr, "/graphql", &queries).with_header(header::AUTHORIZATION, &bearer))
        .collect::<Result<Vec<_>>>()?;
    let keys = ["a", "b", "c"];
    let measured = super::measure_in_turn(
        &settings, &env.http, &mut bank, &mut gws, &targets, &keys, rounds, "security",
    )
    .await?;
    let mut configs: Vec<ConfigFigures> = measured
        .rows
        .into_iter()
        .enumerate()
        .map(|(i, rows)| ConfigFigures::of_rounds(keys[i], DESCRIBE[i], rows))
        .collect();
    super::judge_against_baseline(configs.iter_mut(), |_| Some(TARGET_LOSS));
    for cfg in &configs {
        suspicious.extend(cfg.missed());
        if cfg.errors > 0 {
            problems.push(format!("{}: {} errors", cfg.describe, cfg.errors));
        }
    }

    // 2. Bombs against (b), one at a time; then fragment fan-outs of growing size.
    let bombs = one_at_a_time(&env.http, &gws[1], &tokens, hostile::bombs(), bomb_requests).await;
    for bomb in &bombs {
        if bomb.key == "aliases-1mib" && bomb.statuses.contains_key(&413) {
            notes.push(format!(
                "a 1 MiB alias bomb does not fit the shipped body limit (max_body_bytes = 1 MiB; its body is {} bytes): \
                 it is refused with 413 before its query is read, as the 1 MiB nesting bomb is",
                bomb.body_bytes
            ));
        }
        suspicious.extend(bomb.finding("bomb"));
    }
    let fanout = fanout(&env.http, &gws[1], &tokens, smoke).await;
    for size in &fanout.sizes {
        suspicious.extend(size.finding("fan-out"));
    }
    if let (Some(g), Some(largest)) = (fanout.growth_per_level, fanout.sizes.last()) {
        if g > FANOUT_GROWTH_LIMIT {
            let at_30 = largest.p50_ms / 1e3 * g.powi(30 - *fanout.levels.last().unwrap_or(&30) as i32);
            suspicious.push(format!(
                "refusing a fragment fan-out at the root takes time exponential in its levels: ×{g:.2} per level, {} \
                 ({} bytes) {:.0} ms; at this rate 30 levels (~1.2 KB) take ~{at_30:.0} s of a core",
                largest.describe, largest.body_bytes, largest.p50_ms
            ));
        }
    }
    gws[1].proc.check_alive()?;

    // 3. The hostile suite against (b), and its memory.
    let hostile = hostile_suite(
        &env.http,
        &gws[1],
        tokens.clone(),
        hostile_connections,
        hostile_duration,
    )
    .await?;
    gws[1].proc.check_alive()?;
    if let Err(e) = super::check_2level_as(&env.http, &gws[1], Some(&tokens.valid)).await {
        problems.push(format!("(b) after the hostile suite: {e:#}"));
    }
    for kind in &hostile.answers {
        suspicious.extend(kind.finding("hostile suite"));
        if kind.ok_200 > 0 {
            suspicious.push(format!(
                "hostile suite, {}: {} requests answered 200 without errors (nothing refused)",
                kind.describe, kind.ok_200
            ));
        }
    }
    if hostile.requests == 0 {
        problems.push("the hostile suite sent no request".to_owned());
    }

    let mut stop_notes = Vec::new();
    for (i, gw) in gws.iter_mut().enumerate() {
        gw.proc.check_alive()?;
        super::stop_gateway(gw, ["security a", "security b", "security c"][i], &mut stop_notes);
    }
    drop(gws);
    bank.proc.check_alive()?;
    suspicious.extend(stop_notes);

    let results = Results {
        smoke,
        cores: env.cores,
        connections: settings.connections,
        query: super::query_2level(0).replace("offset: 0", "offset: N"),
        rounds,
        duration_per_round_s: settings.duration.as_secs_f64(),
        limits_off: limits_off()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_string()))
            .collect(),
        configs,
        bomb_requests,
        bombs,
        fanout,
        hostile,
        notes,
        suspicious,
    };
    println!("{}", render(&results));
    env.write_results("bench-security", &results)?;
    Ok(problems)
}

fn render(r: &Results) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nMosaic security cost: {} connections, each its own page of `{}`, every request with the same bearer token; \
         {} round(s) of {:.0} s per configuration, measured in turn; {} cores shared by everything",
        r.connections, r.query, r.rounds, r.duration_per_round_s, r.cores
    );
    let figures: Vec<&ConfigFigures> = r.configs.iter().collect();
    s.push_str(&super::render_comparison(&figures));
    let _ = writeln!(
        s,
        "(a) sets {} [limits] keys to {HUGE} or \"{HUGE_DURATION}\" (plan_cache_size and default_list_size as shipped); \
         (c) allows {RATE} requests/s, burst {RATE}",
        r.limits_off.len()
    );

    let _ = writeln!(
        s,
        "\nBombs against (b), {} sequential requests each (send → whole answer), Accept: {ACCEPT}",
        r.bomb_requests
    );
    answers_table(&mut s, &r.bombs, false);
    let _ = writeln!(
        s,
        "\nFragment fan-outs at the root against (b) (each level spreads the one below twice), {} request(s) per size",
        r.fanout.sizes.first().map_or(0, |a| a.sent)
    );
    answers_table(&mut s, &r.fanout.sizes, false);
    let _ = writeln!(
        s,
        "growth of the p50 per fragment level (largest two sizes): ×{} (≈1.0: linear in the document; 2.0: exponential)",
        fmt_opt(r.fanout.growth_per_level, 2)
    );
    for note in &r.notes {
        let _ = writeln!(s, "{note}");
    }

    let h = &r.hostile;
    let _ = writeln!(
        s,
        "\nHostile suite against (b): {} connections for {:.1} s, {} requests ({:.0}/s), each connection cycling through the mix",
        h.connections,
        h.seconds,
        h.requests,
        h.requests as f64 / h.seconds.max(1e-9)
    );
    answers_table(&mut s, &h.answers, true);
    let _ = writeln!(
        s,
        "every request answered with a 200 or a 4xx: {} ({} not)",
        verdict(Some(h.target_met)),
        h.unanswered
    );
    let _ = writeln!(
        s,
        "RSS of (b): before {} MiB, peak {} MiB, just after {} MiB, after 2 s idle {} MiB ({:+.1} MiB), after 12 s idle {} MiB ({:+.1} MiB)",
        fmt_opt(Some(h.rss.before_mib), 1),
        fmt_opt(Some(h.rss.peak_mib), 1),
        fmt_opt(Some(h.rss.after_mib), 1),
        fmt_opt(Some(h.rss.after_idle_mib), 1),
        h.rss.after_idle_mib - h.rss.before_mib,
        fmt_opt(Some(h.rss.after_long_idle_mib), 1),
        h.rss.after_long_idle_mib - h.rss.before_mib
    );
    let mut messages = BTreeMap::new();
    for a in r.bombs.iter().chain(&h.answers) {
        if let (true, Some(m)) = (a.codes.contains_key("(no code)"), &a.first_message) {
            messages.entry(a.describe.as_str()).or_insert(m.as_str());
        }
    }
    if !messages.is_empty() {
        let _ = writeln!(s, "\nErrors without extensions.code (their message):");
        for (describe, message) in messages {
            let _ = writeln!(s, "  {describe}: \"{message}\"");
        }
    }
    if !r.suspicious.is_empty() {
        let _ = writeln!(s, "\nSuspicious:");
        for note in &r.suspicious {
            let _ = writeln!(s, "  ! {note}");
        }
    }
    s
}

fn answers_table(s: &mut String, rows: &[Answers], counts: bool) {
    use std::fmt::Write as _;
    let _ = write!(s, "{:<40} {:>10}", "request", "body bytes");
    if counts {
        let _ = write!(
            s,
            " {:>6} {:>6} {:>7} {:>6} {:>5} {:>7}",
            "sent", "200", "200+err", "4xx", "5xx", "no ans"
        );
    }
    let _ = writeln!(
        s,
        " {:>8} {:>8} {:>8}  {:<18} codes",
        "p50 ms", "p99 ms", "max ms", "statuses"
    );
    let _ = writeln!(s, "{}", "-".repeat(if counts { 150 } else { 115 }));
    for a in rows {
        let _ = write!(s, "{:<40} {:>10}", a.describe, a.body_bytes);
        if counts {
            let _ = write!(
                s,
                " {:>6} {:>6} {:>7} {:>6} {:>5} {:>7}",
                a.sent, a.ok_200, a.errors_200, a.client_4xx, a.server_5xx, a.no_answer
            );
        }
        let _ = writeln!(
            s,
            " {:>8} {:>8} {:>8}  {:<18} {}",
            fmt_opt(Some(a.p50_ms), 2),
            fmt_opt(Some(a.p99_ms), 2),
            fmt_opt(Some(a.max_ms), 2),
            a.statuses_text(),
            a.codes_text()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_off_names_only_documented_keys() {
        let doc = include_str!("../../../../docs/config.md");
        for (key, _) in limits_off() {
            assert!(
                doc.contains(&format!("\n{key} ")),
                "{key} is not a [limits] key of docs/config.md"
            );
        }
    }

    #[test]
    fn b_and_c_read_the_secret_from_the_environment() {
        let [a, b, c] = configurations("s");
        assert!(!a.edits.iter().any(|(k, _)| k.starts_with("auth.")));
        for opts in [&b, &c] {
            assert!(opts
                .edits
                .iter()
                .any(|(k, v)| k == "auth.hs256_secret" && v.as_str() == Some("${BENCH_JWT_SECRET}")));
            assert!(opts.env.contains(&(SECRET_VAR.to_owned(), "s".to_owned())));
        }
        assert!(c.edits.iter().any(|(k, _)| k == "rate_limit.key"));
        assert!(!b.edits.iter().any(|(k, _)| k.starts_with("rate_limit.")));
    }
}
