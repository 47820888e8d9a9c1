//! Running the gateway: graceful shutdown under load, hot reload (file change, broken config,
//! SIGHUP, a request in flight across a reload), the Prometheus metrics, the JSON logs (what a
//! masked backend error logs, the request and trace ids on every line), request and trace ids,
//! and the probes. The metric families not read here are in `metrics.rs`.
//!
//! Where signals, files or the log matter the real `mosaic` binary runs as a child process
//! (`mosaic serve` over a copy of the demo config in a folder of its own, pointed at an
//! in-process bank); the rest uses in-process gateways.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::Router;
use mock_bank::{BankConfig, Service};
use mosaic_tests::infra::{
    bank_env, eventually, shared, with_server_settings, ws_connect, ws_send, ConfigDir, GatewayProcess, Served,
    WsStream,
};
use mosaic_tests::prometheus::{metric_value, metrics, parse_metrics};
use mosaic_tests::{client, demo_sdl, demo_toml, TestEnv};
use prometheus_parse::{Scrape, Value as Metric};
use serde_json::{json, Value};

/// A query over three backends of the demo (customers, accounts, transfers).
const CUSTOMER: &str =
    "query($id: ID!) { customer(id: $id) { id name accounts { id balance transfers(last: 1) { id } } } }";

/// Settings of every process test but the drain test: stop at once.
const NO_DRAIN: &str = "drain_delay = \"0s\"";

// ---------------------------------------------------------------------------------------------
// Graceful shutdown.

/// What one client request came to.
enum Outcome {
    /// 200 with data and no errors.
    Served,
    /// An answer, but not a good one.
    Failed(String),
    /// No answer: the connection was refused or closed.
    NoAnswer(String),
}

impl Outcome {
    fn detail(&self) -> &str {
        match self {
            Outcome::Served => "served",
            Outcome::Failed(d) | Outcome::NoAnswer(d) => d,
        }
    }
}

/// Seconds since midnight, UTC.
fn second_of_day(t: std::time::SystemTime) -> f64 {
    let since_epoch = t.duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    (since_epoch.as_secs() % 86_400) as f64 + f64::from(since_epoch.subsec_nanos()) / 1e9
}

/// Seconds since midnight of a log line's RFC 3339 UTC timestamp (`2026-11-25T10:37:48.678853Z`).
fn logged_second_of_day(timestamp: &str) -> Option<f64> {
    let time = timestamp.split_once('T')?.1.strip_suffix('Z')?;
    let mut parts = time.split(':').map(str::parse::<f64>);
    let (h, m, s) = (parts.next()?.ok()?, parts.next()?.ok()?, parts.next()?.ok()?);
    Some(h * 3600.0 + m * 60.0 + s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_turns_not_ready_at_once_keeps_serving_through_the_drain_and_exits_zero() {
    const DRAIN: Duration = Duration::from_secs(1);
    const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
    let served = Served::start_exclusive("drain_delay = \"1s\"\nshutdown_timeout = \"5s\"", "").await;
    let url = served.gateway.url("/graphql");
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes: Arc<Mutex<Vec<(Instant, Outcome)>>> = Arc::default();
    let clients: Vec<_> = (0..16)
        .map(|c| {
            let (http, url, stop, outcomes) = (client(), url.clone(), stop.clone(), outcomes.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let id = format!("C{:03}", 1 + (c * 7 + i) % 50);
                    let body = json!({ "query": CUSTOMER, "variables": { "id": id } });
                    let outcome = match http.post(&url).json(&body).send().await {
                        Ok(r) => {
                            let status = r.status();
                            match r.json::<Value>().await {
                                Ok(v)
                                    if status == 200
                                        && v.get("errors").is_none()
                                        && v["data"]["customer"]["id"] == id =>
                                {
                                    Outcome::Served
                                }
                                Ok(v) => Outcome::Failed(format!("{status}: {v}")),
                                Err(e) => Outcome::Failed(format!("{status}, unreadable body: {e}")),
                            }
                        }
                        Err(e) => Outcome::NoAnswer(e.to_string()),
                    };
                    let refused = matches!(outcome, Outcome::NoAnswer(_));
                    outcomes.lock().expect("outcomes").push((Instant::now(), outcome));
                    if refused {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut gateway = served.gateway;
    let signalled = Instant::now();
    let signalled_at = second_of_day(std::time::SystemTime::now());
    gateway.signal("TERM");
    let probe = client();
    let readyz = gateway.url("/readyz");
    let mut not_ready_after = None;
    while signalled.elapsed() < Duration::from_secs(2) {
        if let Ok(r) = probe.get(&readyz).send().await {
            if r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                not_ready_after = Some(signalled.elapsed());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let admin_ready = probe.get(gateway.admin_url("/readyz")).send().await.map(|r| r.status());
    let admin_ready_at = signalled.elapsed();
    let exit = gateway
        .wait_exit(DRAIN + SHUTDOWN_TIMEOUT + Duration::from_secs(2))
        .await;
    let exited_after = signalled.elapsed();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("a client task");
    }

    // When readiness turned: the gateway logs it right after (its own clock, so the time its
    // answers take under this load is not counted). A probe must also have seen the 503.
    let logs = gateway.log_fields();
    let draining = logs
        .iter()
        .find(|l| l["message"] == "shutting down: not ready any more, draining")
        .unwrap_or_else(|| panic!("no drain line in the log:\n{}", gateway.logs().join("\n")));
    let logged_at = draining["timestamp"]
        .as_str()
        .and_then(logged_second_of_day)
        .unwrap_or_else(|| panic!("no timestamp in {draining}"));
    let turned_after = (logged_at - signalled_at).rem_euclid(86_400.0);
    assert!(
        turned_after <= 0.1,
        "readiness turned {turned_after:.3} s after SIGTERM (logged at {})",
        draining["timestamp"]
    );
    let not_ready_after = not_ready_after.expect("/readyz never answered 503 after SIGTERM");
    assert!(
        not_ready_after <= Duration::from_millis(500),
        "/readyz answered 503 only {not_ready_after:?} after SIGTERM"
    );
    assert!(admin_ready_at < DRAIN, "the admin probe was too late to judge");
    assert_eq!(
        admin_ready.ok(),
        Some(reqwest::StatusCode::SERVICE_UNAVAILABLE),
        "the admin port's /readyz during the drain"
    );
    assert!(
        exit.is_some_and(|s| s.success()),
        "mosaic did not exit 0 within drain + shutdown timeout: {exit:?}"
    );
    let outcomes = std::mem::take(&mut *outcomes.lock().expect("outcomes"));
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Failed(_)))
        .map(|(_, o)| o.detail())
        .collect();
    assert!(
        failed.is_empty(),
        "{} answered requests failed: {failed:?}",
        failed.len()
    );
    // Until the drain delay is over the listener accepts: no request goes unanswered.
    let drain_over = signalled + DRAIN - Duration::from_millis(50);
    let unanswered: Vec<String> = outcomes
        .iter()
        .filter(|(t, o)| matches!(o, Outcome::NoAnswer(_)) && *t < drain_over)
        .map(|(t, o)| {
            format!(
                "{:?} after SIGTERM: {}",
                t.saturating_duration_since(signalled),
                o.detail()
            )
        })
        .collect();
    assert!(
        unanswered.is_empty(),
        "requests refused during the drain: {unanswered:?}"
    );
    let during_drain = outcomes
        .iter()
        .filter(|(t, o)| {
            matches!(o, Outcome::Served)
                && *t > signalled + Duration::from_millis(150)
                && *t < signalled + DRAIN - Duration::from_millis(150)
        })
        .count();
    assert!(during_drain > 0, "no query was served while draining");
    let before = outcomes
        .iter()
        .filter(|(t, o)| matches!(o, Outcome::Served) && *t < signalled)
        .count();
    assert!(before > 0, "no query was served before SIGTERM");
    assert!(
        logs.iter().any(|l| l["message"] == "stopped"),
        "the gateway logged no clean stop"
    );
    eprintln!(
        "SIGTERM: readiness turned after {:.1} ms, a probe saw 503 after {not_ready_after:?}, exit after {exited_after:?}; served {before} before, \
         {during_drain} during the drain, {} in all; {} unanswered after the listener closed",
        turned_after * 1000.0,
        outcomes.iter().filter(|(_, o)| matches!(o, Outcome::Served)).count(),
        outcomes
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::NoAnswer(_)))
            .count(),
    );
    tokio::time::timeout(Duration::from_secs(15), served.bank.shutdown())
        .await
        .expect("the bank stops");
}

/// Sends `{ customer(id: "C001") { name } }` in the background; its answer, or why there was none.
fn customer_query_in_background(served: &Served) -> tokio::task::JoinHandle<Result<(u16, Value), String>> {
    let (http, url) = (client(), served.gateway.url("/graphql"));
    tokio::spawn(async move {
        let body = json!({ "query": r#"{ customer(id: "C001") { name } }"# });
        let response = http.post(url).json(&body).send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let value = response.json::<Value>().await.map_err(|e| e.to_string())?;
        Ok((status, value))
    })
}

/// Waits until the bank's customers service got `n` business requests.
async fn customers_called(served: &Served, n: u64) {
    let url = format!("{}/_stats", served.bank.url(Service::Customers));
    let (http, url) = (&served.http, &url);
    let called = eventually(Duration::from_secs(5), move || async move {
        let stats: Value = match http.get(url).send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => Value::Null,
        };
        stats["total"].as_u64().unwrap_or(0) >= n
    })
    .await;
    assert!(called, "the customers service did not get the query's call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_at_sigterm_finishes_before_the_process_exits() {
    let served = Served::start("drain_delay = \"0s\"\nshutdown_timeout = \"10s\"", "").await;
    let faults = format!("{}/_faults", served.bank.url(Service::Customers));
    let response = served.http.put(faults).json(&json!({"latency_ms": 1500})).send().await;
    assert!(response.is_ok_and(|r| r.status().is_success()));
    let in_flight = customer_query_in_background(&served);
    customers_called(&served, 1).await;
    let signalled = Instant::now();
    let mut gateway = served.gateway;
    gateway.signal("TERM");
    let exit = gateway.wait_exit(Duration::from_secs(12)).await;
    let exited_after = signalled.elapsed();
    let answer = in_flight.await.expect("the client task");
    assert_eq!(exit.map(|s| s.success()), Some(true), "{exit:?}");
    let (status, value) = answer.unwrap_or_else(|e| panic!("the in-flight request got no answer: {e}"));
    assert_eq!(status, 200);
    assert!(value["data"]["customer"]["name"].is_string(), "{value}");
    assert!(
        exited_after >= Duration::from_millis(500),
        "the process exited after {exited_after:?}, before the call could have finished"
    );
    tokio::time::timeout(Duration::from_secs(15), served.bank.shutdown())
        .await
        .expect("the bank stops");
}

/// The next WebSocket message, within 10 s.
async fn next_ws(
    ws: &mut WsStream,
) -> Option<Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>> {
    use futures::StreamExt;
    tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a message in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_a_live_sse_subscription_instead_of_waiting_for_the_shutdown_timeout() {
    use futures::StreamExt;
    let served = Served::start("drain_delay = \"0s\"\nshutdown_timeout = \"20s\"", "").await;
    let response = served
        .http
        .post(served.gateway.url("/graphql"))
        .header("accept", "text/event-stream")
        .json(&json!({"query": "subscription { districtBalance(district: \"Gangnam-gu\") { district } }"}))
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .expect("a first event in time");
    assert!(
        matches!(&first, Some(Ok(b)) if String::from_utf8_lossy(b).contains("event: next")),
        "{first:?}"
    );
    let signalled = Instant::now();
    let mut gateway = served.gateway;
    gateway.signal("TERM");
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(_)) = body.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the event stream was still open 10 s after SIGTERM");
    let exit = gateway.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(exit.map(|s| s.success()), Some(true), "{exit:?}");
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "exiting took {:?}: the stream held the shutdown",
        signalled.elapsed()
    );
    tokio::time::timeout(Duration::from_secs(15), served.bank.shutdown())
        .await
        .expect("the bank stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_a_live_subscription_with_a_going_away_frame_and_exits_zero() {
    use tokio_tungstenite::tungstenite::Message;
    let served = Served::start("drain_delay = \"0s\"\nshutdown_timeout = \"5s\"", "").await;
    let mut ws = ws_connect(&served.gateway.url("/graphql"), &[]).await;
    ws_send(
        &mut ws,
        json!({
            "type": "subscribe",
            "id": "live",
            "payload": {"query": "subscription { districtBalance(district: \"Gangnam-gu\") { district totalBalance } }"}
        }),
    )
    .await;
    // The subscription is live once the ledger's stream has been opened.
    let ledger_called = eventually(Duration::from_secs(5), || async {
        let stats: Value = served
            .http
            .get(format!("{}/_stats", served.bank.url(Service::Ledger)))
            .send()
            .await
            .map(|r| r.json::<Value>())
            .expect("stats")
            .await
            .expect("JSON stats");
        stats.to_string().contains("stream")
    })
    .await;
    assert!(ledger_called, "the subscription never opened the ledger's stream");

    let mut gateway = served.gateway;
    gateway.signal("TERM");
    // Whatever comes before it, the connection ends with a close frame saying the server goes away.
    let mut close = None;
    while let Some(msg) = next_ws(&mut ws).await {
        match msg {
            Ok(Message::Close(frame)) => {
                close = Some(frame.map(|f| (u16::from(f.code), f.reason.to_string())));
                break;
            }
            Ok(_) => continue,
            Err(e) => panic!("the connection broke instead of being closed: {e}"),
        }
    }
    let close = close.expect("a close frame before the connection ended");
    assert_eq!(
        close,
        Some((1001, "the gateway is shutting down".to_string())),
        "1001 (going away) tells clients to reconnect elsewhere"
    );
    let exit = gateway.wait_exit(Duration::from_secs(8)).await;
    assert_eq!(exit.map(|s| s.success()), Some(true), "{exit:?}");
    tokio::time::timeout(Duration::from_secs(15), served.bank.shutdown())
        .await
        .expect("the bank stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_still_in_flight_after_the_shutdown_timeout_does_not_keep_the_process_alive() {
    let served = Served::start("drain_delay = \"0s\"\nshutdown_timeout = \"1s\"", "").await;
    let faults = format!("{}/_faults", served.bank.url(Service::Customers));
    let response = served.http.put(faults).json(&json!({"hang": true})).send().await;
    assert!(response.is_ok_and(|r| r.status().is_success()));
    let in_flight = customer_query_in_background(&served);
    customers_called(&served, 1).await;
    let signalled = Instant::now();
    let mut gateway = served.gateway;
    gateway.signal("TERM");
    let exit = gateway.wait_exit(Duration::from_secs(4)).await;
    let exited_after = signalled.elapsed();
    assert_eq!(
        exit.map(|s| s.success()),
        Some(true),
        "mosaic did not exit 0 soon after the shutdown timeout: {exit:?}"
    );
    assert!(
        exited_after >= Duration::from_millis(900),
        "exited after {exited_after:?}"
    );
    assert!(
        gateway.log_fields().iter().any(|l| l["level"] == "WARN"
            && l["message"] == "in-flight requests did not finish within the shutdown timeout; exiting anyway"),
        "no warning about the request cut short:\n{}",
        gateway.logs().join("\n")
    );
    let _ = in_flight.await;
    tokio::time::timeout(Duration::from_secs(15), served.bank.shutdown())
        .await
        .expect("the bank stops");
}

// ---------------------------------------------------------------------------------------------
// Hot reload.

/// The demo schema with one more root field, bound to an endpoint the demo already uses.
fn sdl_with_new_field() -> String {
    let sdl = demo_sdl();
    assert!(sdl.contains("type Query {\n"));
    sdl.replacen(
        "type Query {\n",
        "type Query {\n  customerAgain(id: ID!): Customer @http(backend: \"customers\", path: \"/customers/{{args.id}}\")\n",
        1,
    )
}

const NEW_FIELD: &str = r#"{ customerAgain(id: "C001") { id name } }"#;

/// Gives the file watcher time to record the files as they are before a test changes them: it
/// only does so once its task first runs, after the gateway is already serving (see
/// `a_schema_change_made_during_warm_up_is_picked_up`).
async fn let_the_watcher_start() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

#[tokio::test]
async fn a_valid_schema_change_is_served_within_five_seconds() {
    let served = Served::start(NO_DRAIN, "").await;
    let (_, before) = served.graphql(NEW_FIELD, json!({}), &[]).await;
    assert!(before.get("errors").is_some(), "the field is not there yet: {before}");

    let_the_watcher_start().await;
    served.dir.write("bank.graphql", &sdl_with_new_field());
    let written = Instant::now();
    let served_ref = &served;
    let picked_up = eventually(Duration::from_secs(5), move || async move {
        let (_, v) = served_ref.graphql(NEW_FIELD, json!({}), &[]).await;
        v["data"]["customerAgain"]["id"] == "C001"
    })
    .await;
    let took = written.elapsed();
    assert!(
        picked_up,
        "the new field was not served within 5 s:\n{}",
        served.gateway.logs().join("\n")
    );
    // The swap comes first; the counter and the log line right after it.
    let counted = eventually(Duration::from_secs(2), move || async move {
        let metrics = metrics(served_ref).await;
        metric_value(&metrics, "mosaic_config_reloads_total", &[("result", "success")]).is_some_and(|n| n >= 1.0)
    })
    .await;
    assert!(
        counted,
        "mosaic_config_reloads_total{{result=\"success\"}} is not counted"
    );
    let logged = served
        .logged(|l| l["message"] == "configuration reloaded" && l["reason"] == "file change" && l["level"] == "INFO")
        .await;
    assert!(logged, "no reload in the log:\n{}", served.gateway.logs().join("\n"));
    // The old fields still work on the new schema.
    let (_, old) = served.graphql(CUSTOMER, json!({"id": "C002"}), &[]).await;
    assert!(old.get("errors").is_none(), "{old}");
    eprintln!("hot reload: the new field was served {took:?} after the write");
    served.stop().await;
}

#[tokio::test]
async fn a_broken_schema_is_rejected_logged_and_counted_while_the_old_one_keeps_serving() {
    let served = Served::start(NO_DRAIN, "").await;
    let failures = |s: &Scrape| metric_value(s, "mosaic_config_reloads_total", &[("result", "failure")]).unwrap_or(0.0);
    let before = failures(&metrics(&served).await);

    // An unknown type, and a root field without a binding.
    let broken = demo_sdl().replacen("type Query {\n", "type Query {\n  broken: Nope\n", 1);
    let_the_watcher_start().await;
    served.dir.write("bank.graphql", &broken);
    let served_ref = &served;
    let counted = eventually(Duration::from_secs(6), move || async move {
        failures(&metrics(served_ref).await) >= before + 1.0
    })
    .await;
    assert!(
        counted,
        "mosaic_config_reloads_total{{result=\"failure\"}} did not increase"
    );

    let (status, old) = served.graphql(CUSTOMER, json!({"id": "C001"}), &[]).await;
    assert_eq!(status, 200);
    assert!(old.get("errors").is_none(), "the old schema keeps serving: {old}");
    let (_, broken_field) = served.graphql("{ broken }", json!({}), &[]).await;
    assert!(broken_field.get("errors").is_some(), "the broken schema is not served");
    let rejected = |l: &Value| {
        l["level"] == "ERROR" && l["message"] == "new configuration rejected; the current one keeps serving"
    };
    let logged = served.logged(rejected).await;
    assert!(
        logged,
        "no error line in the log:\n{}",
        served.gateway.logs().join("\n")
    );
    let logs = served.gateway.log_fields();
    let error = logs.iter().find(|l| rejected(l)).expect("the error line");
    assert!(
        error["problems"].as_str().is_some_and(|p| p.contains("Nope")),
        "the error names the problem: {error}"
    );
    let successes = metric_value(
        &metrics(&served).await,
        "mosaic_config_reloads_total",
        &[("result", "success")],
    );
    assert_eq!(successes.unwrap_or(0.0), 0.0, "nothing was swapped in");
    // The broken files are not retried in a loop: one failure per change.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(failures(&metrics(&served).await), before + 1.0);
    served.stop().await;
}

#[tokio::test]
async fn a_schema_change_made_during_warm_up_is_picked_up() {
    let _turn = shared().await;
    // The ledger's URL points at a server whose /health (probed by warm-up, after the config was
    // read) says when it is called, then answers 800 ms later.
    let probed = Arc::new(tokio::sync::Notify::new());
    let notify = probed.clone();
    let app = Router::new().route(
        "/health",
        axum::routing::get(move || {
            let notify = notify.clone();
            async move {
                notify.notify_one();
                tokio::time::sleep(Duration::from_millis(800)).await;
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("binds");
    let health_addr = listener.local_addr().expect("an address");
    let health = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let bank = mock_bank::start(BankConfig::default()).await.expect("the bank starts");
    let dir = Arc::new(ConfigDir::new("warmup"));
    dir.write("bank.graphql", &demo_sdl());
    dir.write("mosaic.toml", &with_server_settings(&demo_toml(), NO_DRAIN));
    let mut env = bank_env(&bank);
    env.retain(|(k, _)| k != "MOSAIC_LEDGER_URL");
    env.push(("MOSAIC_LEDGER_URL".to_string(), format!("http://{health_addr}")));
    let writer = {
        let (dir, probed) = (dir.clone(), probed.clone());
        tokio::spawn(async move {
            probed.notified().await;
            dir.write("bank.graphql", &sdl_with_new_field());
        })
    };
    let gateway = GatewayProcess::spawn(&dir.file("mosaic.toml"), &env).await;
    writer.await.expect("the schema was changed during warm-up");
    let http = client();
    let (http, url) = (&http, gateway.url("/graphql"));
    let url = &url;
    let picked_up = eventually(Duration::from_secs(6), move || async move {
        let response = http.post(url).json(&json!({ "query": NEW_FIELD })).send().await;
        match response {
            Ok(r) => r
                .json::<Value>()
                .await
                .is_ok_and(|v| v["data"]["customerAgain"]["id"] == "C001"),
            Err(_) => false,
        }
    })
    .await;
    assert!(
        picked_up,
        "the schema changed during warm-up was never served:\n{}",
        gateway.logs().join("\n")
    );
    gateway.stop(Duration::from_secs(15)).await;
    health.abort();
    tokio::time::timeout(Duration::from_secs(15), bank.shutdown())
        .await
        .expect("the bank stops");
}

#[tokio::test]
async fn a_changed_trusted_documents_manifest_is_picked_up_without_a_signal() {
    let _turn = shared().await;
    let bank = mock_bank::start(BankConfig::default()).await.expect("the bank starts");
    let dir = ConfigDir::new("manifest");
    let (first, second) = ("{ districts { district } }", "{ transferStats { completed } }");
    let sha = mosaic_gateway::plan::documents::sha256_hex;
    dir.write("bank.graphql", &demo_sdl());
    dir.write("trusted.json", &json!({ sha(first): first }).to_string());
    dir.write(
        "mosaic.toml",
        &format!(
            "{}\n[security]\ntrusted_documents = \"trusted.json\"\n",
            with_server_settings(&demo_toml(), NO_DRAIN)
        ),
    );
    let gateway = GatewayProcess::spawn(&dir.file("mosaic.toml"), &bank_env(&bank)).await;
    let http = client();
    let run = |q: &'static str| {
        let (http, url) = (http.clone(), gateway.url("/graphql"));
        async move {
            let r = http
                .post(url)
                .json(&json!({ "query": q }))
                .send()
                .await
                .expect("answered");
            r.json::<Value>().await.expect("json")
        }
    };
    let refused = run(second).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "UNTRUSTED_DOCUMENT",
        "{refused}"
    );
    dir.write(
        "trusted.json",
        &json!({ sha(first): first, sha(second): second }).to_string(),
    );
    let run = &run;
    let picked_up = eventually(Duration::from_secs(6), move || async move {
        run(second).await["data"]["transferStats"].is_object()
    })
    .await;
    assert!(
        picked_up,
        "the new manifest was not served:\n{}",
        gateway.logs().join("\n")
    );
    gateway.stop(Duration::from_secs(15)).await;
    tokio::time::timeout(Duration::from_secs(15), bank.shutdown())
        .await
        .expect("the bank stops");
}

#[tokio::test]
async fn a_reload_applies_new_cors_origins() {
    let config = |origin: &str| format!("[security]\ncors_origins = [\"{origin}\"]\n");
    let served = Served::start(NO_DRAIN, &config("https://a.test")).await;
    let allowed = |origin: &'static str| {
        let (http, url) = (
            served.http.clone(),
            served.gateway.url("/graphql?query=%7B__typename%7D"),
        );
        async move {
            let r = http.get(url).header("origin", origin).send().await.expect("answered");
            r.headers()
                .get("access-control-allow-origin")
                .is_some_and(|v| v.as_bytes() == origin.as_bytes())
        }
    };
    assert!(allowed("https://a.test").await);
    assert!(!allowed("https://b.test").await);
    served.dir.write(
        "mosaic.toml",
        &format!(
            "{}\n{}\n",
            with_server_settings(&demo_toml(), NO_DRAIN),
            config("https://b.test")
        ),
    );
    served.gateway.signal("HUP");
    let allowed = &allowed;
    let picked_up = eventually(Duration::from_secs(3), move || async move {
        allowed("https://b.test").await && !allowed("https://a.test").await
    })
    .await;
    assert!(
        picked_up,
        "the new origins were not applied:\n{}",
        served.gateway.logs().join("\n")
    );
    served.stop().await;
}

#[tokio::test]
async fn sighup_reloads_the_configuration() {
    let served = Served::start(NO_DRAIN, "").await;
    // A new schema the file watcher cannot see: its modification time is the old one.
    let schema = served.dir.file("bank.graphql");
    let modified = std::fs::metadata(&schema).and_then(|m| m.modified()).expect("an mtime");
    served.dir.write("bank.graphql", &sdl_with_new_field());
    std::fs::File::options()
        .write(true)
        .open(&schema)
        .and_then(|f| f.set_modified(modified))
        .expect("the old mtime is set back");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, unseen) = served.graphql(NEW_FIELD, json!({}), &[]).await;
    assert!(unseen.get("errors").is_some(), "the watcher did not reload: {unseen}");

    served.gateway.signal("HUP");
    let signalled = Instant::now();
    let served_ref = &served;
    let picked_up = eventually(Duration::from_millis(1500), move || async move {
        let (_, v) = served_ref.graphql(NEW_FIELD, json!({}), &[]).await;
        v["data"]["customerAgain"]["id"] == "C001"
    })
    .await;
    assert!(
        picked_up,
        "the new schema was not served after SIGHUP:\n{}",
        served.gateway.logs().join("\n")
    );
    let took = signalled.elapsed();
    let logged = served
        .logged(|l| l["message"] == "configuration reloaded" && l["reason"] == "SIGHUP")
        .await;
    assert!(
        logged,
        "no SIGHUP reload in the log:\n{}",
        served.gateway.logs().join("\n")
    );
    let successes = metric_value(
        &metrics(&served).await,
        "mosaic_config_reloads_total",
        &[("result", "success")],
    );
    assert_eq!(successes, Some(1.0));
    let (_, old) = served.graphql(CUSTOMER, json!({"id": "C001"}), &[]).await;
    assert!(old.get("errors").is_none(), "{old}");
    eprintln!("SIGHUP: the new schema was served {took:?} after the signal");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_during_a_reload_completes_and_the_next_one_sees_the_new_schema() {
    let served = Served::start(NO_DRAIN, "").await;
    // The in-flight request waits on the ledger; the new field reads customers, which answer at once.
    served.set_faults(Service::Ledger, json!({"latency_ms": 4000})).await;
    let (http, url) = (client(), served.gateway.url("/graphql"));
    let in_flight = tokio::spawn(async move {
        let body = json!({ "query": "{ transferStats { completed } }" });
        let response = http.post(url).json(&body).send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let value = response.json::<Value>().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((status, value))
    });
    let served_ref = &served;
    let at_the_ledger = eventually(Duration::from_secs(5), move || async move {
        served_ref.bank_calls(Service::Ledger).await >= 1
    })
    .await;
    assert!(at_the_ledger, "the request never reached the ledger");

    served.dir.write("bank.graphql", &sdl_with_new_field());
    served.gateway.signal("HUP");
    let reloaded = eventually(Duration::from_secs(3), move || async move {
        let (_, v) = served_ref.graphql(NEW_FIELD, json!({}), &[]).await;
        v["data"]["customerAgain"]["id"] == "C001"
    })
    .await;
    assert!(
        reloaded,
        "the new schema was not served after SIGHUP:\n{}",
        served.gateway.logs().join("\n")
    );
    assert!(
        !in_flight.is_finished(),
        "the slow request was over before the reload: the test proves nothing"
    );
    let (status, v) = in_flight
        .await
        .expect("the client task")
        .unwrap_or_else(|e| panic!("the request in flight got no answer: {e}"));
    assert_eq!(status, 200);
    assert!(v.get("errors").is_none(), "{v}");
    assert!(v["data"]["transferStats"]["completed"].is_u64(), "{v}");
    served.stop().await;
}

#[tokio::test]
async fn an_invalid_config_sent_with_sighup_is_rejected_logged_and_counted_while_the_old_one_keeps_serving() {
    let served = Served::start(NO_DRAIN, "").await;
    let reloads =
        |s: &Scrape, result: &str| metric_value(s, "mosaic_config_reloads_total", &[("result", result)]).unwrap_or(0.0);
    let before = reloads(&metrics(&served).await, "failure");
    // A misspelt key; the file keeps its old modification time so that only the signal reloads it.
    let config = served.dir.file("mosaic.toml");
    let modified = std::fs::metadata(&config).and_then(|m| m.modified()).expect("an mtime");
    served.dir.write(
        "mosaic.toml",
        &format!(
            "{}\n[limits]\nmax_depht = 3\n",
            with_server_settings(&demo_toml(), NO_DRAIN)
        ),
    );
    std::fs::File::options()
        .write(true)
        .open(&config)
        .and_then(|f| f.set_modified(modified))
        .expect("the old mtime is set back");
    served.gateway.signal("HUP");

    let served_ref = &served;
    let counted = eventually(Duration::from_secs(3), move || async move {
        reloads(&metrics(served_ref).await, "failure") >= before + 1.0
    })
    .await;
    assert!(
        counted,
        "mosaic_config_reloads_total{{result=\"failure\"}} did not increase:\n{}",
        served.gateway.logs().join("\n")
    );
    let rejected = |l: &Value| {
        l["level"] == "ERROR"
            && l["message"] == "new configuration rejected; the current one keeps serving"
            && l["reason"] == "SIGHUP"
    };
    assert!(
        served.logged(rejected).await,
        "no rejection for SIGHUP in the log:\n{}",
        served.gateway.logs().join("\n")
    );
    let logs = served.gateway.log_fields();
    let line = logs.iter().find(|l| rejected(l)).expect("the error line");
    assert!(
        line["problems"].as_str().is_some_and(|p| p.contains("max_depht")),
        "the line names the problem: {line}"
    );
    let scrape = metrics(&served).await;
    assert_eq!(reloads(&scrape, "failure"), before + 1.0, "one failure for one signal");
    assert_eq!(reloads(&scrape, "success"), 0.0, "nothing was swapped in");
    let (status, old) = served.graphql(CUSTOMER, json!({"id": "C001"}), &[]).await;
    assert_eq!(status, 200);
    assert!(
        old.get("errors").is_none(),
        "the old configuration keeps serving: {old}"
    );
    served.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Metrics.

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_have_the_gateways_families() {
    let served = Served::start(NO_DRAIN, "").await;
    for id in ["C001", "C002", "C003"] {
        let (_, v) = served.graphql(CUSTOMER, json!({ "id": id }), &[]).await;
        assert!(v.get("errors").is_none(), "{v}");
    }
    for _ in 0..2 {
        let body = json!({"query": "query Listing { customers(limit: 2) { id } }", "operationName": "Listing"});
        let (_, v) = served.post(&body, &[]).await;
        assert!(v.get("errors").is_none(), "{v}");
    }
    let response = served
        .http
        .get(served.gateway.admin_url("/metrics"))
        .send()
        .await
        .expect("the admin port answers");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let scrape = parse_metrics(&response.text().await.expect("a body"));
    let names: BTreeSet<&str> = scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    for family in [
        "mosaic_operations_total",
        "mosaic_breaker_state",
        "mosaic_cache_hits_total",
        "mosaic_build_info",
    ] {
        assert!(names.contains(family), "no {family} in {names:?}");
    }

    assert_eq!(
        metric_value(&scrape, "mosaic_build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
        Some(1.0)
    );
    assert!(metric_value(&scrape, "mosaic_cache_hits_total", &[]).is_some_and(|v| v >= 1.0));
    assert_eq!(
        metric_value(
            &scrape,
            "mosaic_operations_total",
            &[("operation", "Listing"), ("kind", "query")]
        ),
        Some(2.0)
    );
    assert!(metric_value(
        &scrape,
        "mosaic_operations_total",
        &[("operation", "anonymous"), ("kind", "query")]
    )
    .is_some_and(|v| v >= 3.0));
    for service in Service::ALL {
        assert_eq!(
            metric_value(&scrape, "mosaic_breaker_state", &[("backend", service.name())]),
            Some(0.0),
            "{} is closed",
            service.name()
        );
    }
    let operation_duration = scrape
        .samples
        .iter()
        .find(|s| s.metric == "mosaic_operation_duration_seconds" && s.labels.get("operation") == Some("Listing"));
    assert!(
        matches!(operation_duration.map(|s| &s.value), Some(Metric::Histogram(b)) if !b.is_empty()),
        "mosaic_operation_duration_seconds is a histogram: {operation_duration:?}"
    );
    served.stop().await;
}

#[tokio::test]
async fn metrics_count_backend_calls_per_backend_and_outcome() {
    let served = Served::start(NO_DRAIN, "").await;
    for id in ["C001", "C002", "C003"] {
        let (_, v) = served.graphql(CUSTOMER, json!({ "id": id }), &[]).await;
        assert!(v.get("errors").is_none(), "{v}");
    }
    let scrape = metrics(&served).await;
    let names: BTreeSet<&str> = scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    for family in ["mosaic_backend_requests_total", "mosaic_backend_duration_seconds"] {
        assert!(names.contains(family), "no {family} in {names:?}");
    }
    let calls: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "mosaic_backend_requests_total" && s.labels.get("backend") == Some("customers"))
        .filter_map(|s| match s.value {
            Metric::Counter(v) => Some(v),
            _ => None,
        })
        .sum();
    assert!(calls >= 3.0, "three customer calls were made: {calls}");
    let duration = scrape
        .samples
        .iter()
        .find(|s| s.metric == "mosaic_backend_duration_seconds" && s.labels.get("backend") == Some("accounts"));
    assert!(
        matches!(duration.map(|s| &s.value), Some(Metric::Histogram(b)) if !b.is_empty()),
        "mosaic_backend_duration_seconds is a histogram: {duration:?}"
    );
    served.stop().await;
}

#[tokio::test]
async fn an_operation_named_only_in_its_document_is_labelled_with_its_name() {
    let served = Served::start(NO_DRAIN, "").await;
    let (_, v) = served
        .graphql("query DistrictsByName { districts { district } }", json!({}), &[])
        .await;
    assert!(v.get("errors").is_none(), "{v}");
    let scrape = metrics(&served).await;
    assert_eq!(
        metric_value(&scrape, "mosaic_operations_total", &[("operation", "DistrictsByName")]),
        Some(1.0)
    );
    served.stop().await;
}

#[tokio::test]
async fn metric_labels_stay_bounded_whatever_the_ids_paths_and_operation_names() {
    let served = Served::start(NO_DRAIN, "").await;
    // Customer ids in documents and variables, unknown paths, and 250 operation names.
    for i in 1..=30 {
        let id = format!("C{i:03}");
        served.graphql(CUSTOMER, json!({ "id": id }), &[]).await;
        served
            .graphql(&format!("{{ customer(id: \"{id}\") {{ id }} }}"), json!({}), &[])
            .await;
        let _ = served
            .http
            .get(served.gateway.url(&format!("/customers/{id}?x={i}")))
            .send()
            .await;
    }
    for i in 0..250 {
        let name = format!("Op{i}");
        let body = json!({"query": format!("query {name} {{ districts {{ district }} }}"), "operationName": name});
        let (_, v) = served.post(&body, &[]).await;
        assert!(v.get("errors").is_none(), "{v}");
    }
    let scrape = metrics(&served).await;
    let allowed_keys = [
        "operation",
        "kind",
        "backend",
        "outcome",
        "code",
        "result",
        "to",
        "version",
        "le",
        "quantile",
    ];
    let mut values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for sample in &scrape.samples {
        for (k, v) in sample.labels.iter() {
            assert!(allowed_keys.contains(&k.as_str()), "label {k} on {}", sample.metric);
            assert!(
                !v.contains('/') && !v.contains('?') && !v.contains("C0"),
                "an unbounded label value {k}={v:?} on {}",
                sample.metric
            );
            values.entry(k.as_str()).or_default().insert(v.as_str());
        }
    }
    let operations = &values["operation"];
    assert!(
        operations.len() <= 202,
        "{} operation label values: names are capped at 200 (+ anonymous, other)",
        operations.len()
    );
    assert!(operations.contains("other"), "names past the cap are counted as other");
    let backends: BTreeSet<&str> = Service::ALL.iter().map(|s| s.name()).collect();
    assert!(values["backend"].is_subset(&backends), "{:?}", values["backend"]);
    served.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Logs.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_log_line_is_lost_when_two_thousand_requests_each_log_one() {
    const REQUESTS: usize = 2000;
    // One try per call, no breaker: every request's customer call fails and is logged once. The
    // writer's buffer holds 64 lines, and the log collector (this test) stalls until logging had to
    // wait for room: a lossy writer would drop lines there instead (and never wait).
    let extra = "[backends.customers.retry]\nattempts = 1\n\n[backends.customers.breaker]\nenabled = false\n\n[log]\nbuffer_lines = 64\n";
    let served = Arc::new(Served::start_exclusive(NO_DRAIN, extra).await);
    let faults = format!("{}/_faults", served.bank.url(Service::Customers));
    let response = served
        .http
        .put(faults)
        .json(&json!({"status": 500}))
        .send()
        .await
        .expect("the bank answers");
    assert!(response.status().is_success());
    // Introspection next to the failing field: the operation runs on async-graphql's executor,
    // which logs every failed backend call.
    let query = "query($id: ID!) { __schema { queryType { name } } customer(id: $id) { name } }";
    served.gateway.stall_logs(true);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (served, next) = (served.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= REQUESTS {
                        return;
                    }
                    let request_id = format!("log-test-{i}");
                    let (status, v) = served
                        .graphql(
                            query,
                            json!({ "id": format!("C{i}") }),
                            &[("x-request-id", &request_id)],
                        )
                        .await;
                    assert_eq!(status, 200);
                    assert_eq!(v["errors"][0]["extensions"]["code"], "BACKEND_UNAVAILABLE", "{v}");
                }
            })
        })
        .collect();
    let delayed = |text: String| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix("mosaic_log_lines_delayed_total ")?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(0.0)
    };
    // Stalled, the writer fills the pipe and then its 64 lines, and then logging waits: requests
    // stop making progress (the gateway answers nothing meanwhile, not even /metrics). A lossy
    // writer would drop lines and let them all finish.
    let mut last = 0;
    let stalled_at = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = next.load(Ordering::Relaxed);
        if now == last || now >= REQUESTS || stalled_at.elapsed() > Duration::from_secs(10) {
            break;
        }
        last = now;
    }
    served.gateway.stall_logs(false);
    for w in workers {
        w.await.expect("a worker");
    }
    let Ok(served) = Arc::try_unwrap(served) else {
        panic!("the workers are done")
    };
    let waits = delayed(served.metrics_text().await);
    assert!(
        waits > 0.0,
        "logging never waited for the stalled collector: a lossy writer drops lines instead"
    );
    eprintln!("log lines that waited for room in the 64-line buffer: {waits}");
    let Served { mut gateway, bank, .. } = served;
    gateway.signal("TERM");
    let exit = gateway.wait_exit(Duration::from_secs(15)).await;
    assert!(exit.is_some_and(|s| s.success()), "{exit:?}");

    let mut per_request: BTreeMap<String, usize> = BTreeMap::new();
    for line in gateway.log_fields() {
        if line["message"] == "backend call failed" {
            assert_eq!(line["level"], "WARN", "{line}");
            assert_eq!(line["backend"], "customers", "{line}");
            let id = line["span"]["request_id"]
                .as_str()
                .unwrap_or_else(|| panic!("no request_id span field: {line}"));
            *per_request.entry(id.to_string()).or_default() += 1;
        }
    }
    let missing: Vec<usize> = (0..REQUESTS)
        .filter(|i| !per_request.contains_key(&format!("log-test-{i}")))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {REQUESTS} requests have no log line (first: {:?})",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(per_request.values().all(|n| *n == 1), "one line per failed call");
    assert_eq!(per_request.len(), REQUESTS);
    tokio::time::timeout(Duration::from_secs(15), bank.shutdown())
        .await
        .expect("the bank stops");
}

#[tokio::test]
async fn a_failed_backend_call_of_a_compiled_query_is_logged_with_its_request_id() {
    let extra = "[backends.customers.retry]\nattempts = 1\n";
    let served = Served::start(NO_DRAIN, extra).await;
    let faults = format!("{}/_faults", served.bank.url(Service::Customers));
    served
        .http
        .put(faults)
        .json(&json!({"status": 500}))
        .send()
        .await
        .expect("the bank answers");
    let (_, v) = served
        .graphql(
            r#"{ customer(id: "C001") { name } }"#,
            json!({}),
            &[("x-request-id", "compiled-1")],
        )
        .await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "BACKEND_UNAVAILABLE", "{v}");
    let served_ref = &served;
    let logged = eventually(Duration::from_secs(3), move || async move {
        served_ref
            .gateway
            .log_fields()
            .iter()
            .any(|l| l["span"]["request_id"] == "compiled-1" && l["level"] == "WARN")
    })
    .await;
    assert!(
        logged,
        "no warning with request_id compiled-1:\n{}",
        served.gateway.logs().join("\n")
    );
    served.stop().await;
}

#[tokio::test]
async fn a_masked_backend_error_is_logged_in_full_with_the_request_id_the_client_got() {
    // Nothing listens on port 1: the call fails to connect, and the reason names the address.
    let served = Served::start_with_env(
        NO_DRAIN,
        "[backends.customers.retry]\nattempts = 1\n",
        &[("MOSAIC_CUSTOMERS_URL", "http://127.0.0.1:1")],
    )
    .await;
    let response = served
        .http
        .post(served.gateway.url("/graphql"))
        .json(&json!({ "query": r#"{ customer(id: "C001") { name } }"# }))
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"].to_str().expect("ASCII").to_string();
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BACKEND_UNAVAILABLE", "{body}");
    let shown = body["errors"].to_string();
    for secret in [
        "127.0.0.1",
        "http://",
        ":1/",
        "/customers/C001",
        "error sending request",
    ] {
        assert!(!shown.contains(secret), "the client sees {secret:?}: {shown}");
    }
    let failed = |l: &Value| l["message"] == "backend call failed" && l["span"]["request_id"] == request_id.as_str();
    assert!(
        served.logged(failed).await,
        "no failed call logged with request_id {request_id}:\n{}",
        served.gateway.logs().join("\n")
    );
    let logs = served.gateway.log_fields();
    let line = logs.iter().find(|l| failed(l)).expect("the line");
    assert_eq!(line["level"], "WARN", "{line}");
    assert_eq!(line["backend"], "customers", "{line}");
    assert_eq!(line["field"], "Query.customer", "{line}");
    assert!(
        line["error"]
            .as_str()
            .is_some_and(|e| e.contains("127.0.0.1:1/customers/C001")),
        "the log says where the call went: {line}"
    );
    served.stop().await;
}

/// Requests made by the log tests: each with a request id of its own and a trace of its own.
struct Traced {
    request_id: String,
    trace_id: String,
}

impl Traced {
    fn new(n: usize) -> Self {
        Self {
            request_id: format!("logged-{n}"),
            trace_id: format!("{:032x}", 0x5eed_0000 + n),
        }
    }

    fn traceparent(&self) -> String {
        format!("00-{}-00f067aa0ba902b7-01", self.trace_id)
    }
}

/// Asserts that every line of `lines` carries the `request_id` of one of `requests` and that
/// request's `trace_id`.
fn assert_lines_carry_their_request(lines: &[Value], requests: &[Traced]) {
    for line in lines {
        let span = &line["span"];
        let request = requests
            .iter()
            .find(|r| span["request_id"] == r.request_id.as_str())
            .unwrap_or_else(|| panic!("a line logged while serving a request has no request_id of one: {line}"));
        assert_eq!(
            span["trace_id"], request.trace_id,
            "the line's trace is the client's traceparent: {line}"
        );
    }
}

#[tokio::test]
async fn every_line_logged_while_serving_a_query_carries_its_request_and_trace_ids() {
    // The transfers backend fails, and its breaker opens after two failed calls; no health probe
    // (nothing logs but the requests).
    let extra = "[backends.transfers.retry]\nattempts = 1\n\n\
                 [backends.transfers.breaker]\nminimum_calls = 2\nwindow_size = 2\nprobe_interval = \"0s\"\n";
    let served = Served::start(NO_DRAIN, extra).await;
    served.set_faults(Service::Transfers, json!({"status": 500})).await;
    let before = served.gateway.log_fields().len();
    // The transfers of accounts are batched: on the compiled executor, and on async-graphql's
    // (introspection next to them) where batches are loaded by a task of their own.
    let compiled = "{ customers(limit: 2) { accounts { transfers { id } } } }";
    let dynamic = "{ __schema { queryType { name } } customers(limit: 2) { accounts { transfers { id } } } }";
    let requests: Vec<Traced> = (0..4).map(Traced::new).collect();
    for (i, request) in requests.iter().enumerate() {
        let query = if i % 2 == 0 { compiled } else { dynamic };
        let (status, v) = served
            .graphql(
                query,
                json!({}),
                &[
                    ("x-request-id", &request.request_id),
                    ("traceparent", &request.traceparent()),
                ],
            )
            .await;
        assert_eq!(status, 200);
        assert!(v.get("errors").is_some(), "the transfers calls failed: {v}");
    }
    // Every request logged its failed call; one of them opened the breaker.
    let served_ref = &served;
    let all_logged = eventually(Duration::from_secs(3), move || async move {
        let lines = served_ref.gateway.log_fields();
        let lines = &lines[before.min(lines.len())..];
        lines.iter().any(|l| l["message"] == "circuit breaker opened")
            && (0..4).all(|n| {
                lines
                    .iter()
                    .any(|l| l["message"] == "backend call failed" && l["span"]["request_id"] == format!("logged-{n}"))
            })
    })
    .await;
    assert!(
        all_logged,
        "the failed calls and the breaker opening were not all logged:\n{}",
        served.gateway.logs().join("\n")
    );
    let lines = served.gateway.log_fields();
    assert_lines_carry_their_request(&lines[before..], &requests);
    served.stop().await;
}

#[tokio::test]
async fn the_lines_a_subscription_logs_carry_its_request_and_trace_ids() {
    let served = Served::start(NO_DRAIN, "").await;
    // The ledger's stream cannot be opened: the gateway logs each try.
    served.set_faults(Service::Ledger, json!({"status": 500})).await;
    let before = served.gateway.log_fields().len();
    let request = Traced::new(7);
    let response = served
        .http
        .post(served.gateway.url("/graphql"))
        .header("accept", "text/event-stream")
        .header("x-request-id", &request.request_id)
        .header("traceparent", request.traceparent())
        .json(&json!({"query": "subscription { districtBalance(district: \"Gangnam-gu\") { district } }"}))
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(response.status(), 200);
    let dropped = |l: &Value| l["message"] == "backend event stream dropped";
    let served_ref = &served;
    let logged = eventually(Duration::from_secs(3), move || async move {
        served_ref.gateway.log_fields()[before..].iter().any(dropped)
    })
    .await;
    assert!(
        logged,
        "the failed stream was not logged:\n{}",
        served.gateway.logs().join("\n")
    );
    drop(response);
    // Nothing else runs: every line since the subscription came is one of its own.
    let lines = served.gateway.log_fields();
    assert_lines_carry_their_request(&lines[before..], &[request]);
    served.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Request and trace ids.

#[tokio::test]
async fn a_given_request_id_is_echoed() {
    let env = TestEnv::start().await;
    let response = env
        .post_raw(
            r#"{"query": "{ __typename }"}"#,
            &[
                ("content-type", "application/json"),
                ("x-request-id", "checkout-42.a_b"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "checkout-42.a_b");
    env.stop().await;
}

#[tokio::test]
async fn a_missing_request_id_is_generated_as_32_hex_digits_and_differs_per_request() {
    let env = TestEnv::start().await;
    let mut seen = BTreeSet::new();
    for path in ["/graphql?query=%7B__typename%7D", "/livez", "/healthz"] {
        let response = env.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let id = response.headers()["x-request-id"].to_str().expect("ASCII").to_string();
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        seen.insert(id);
    }
    assert_eq!(seen.len(), 3, "a new id per request");
    env.stop().await;
}

#[tokio::test]
async fn an_unusable_request_id_is_replaced_by_a_generated_one() {
    let env = TestEnv::start().await;
    let too_long = "r".repeat(129);
    for given in [too_long.as_str(), "has space", ""] {
        let response = env.get_with("/livez", &[("x-request-id", given)]).await;
        let id = response.headers()["x-request-id"].to_str().expect("ASCII").to_string();
        assert_eq!(id.len(), 32, "{given:?} → {id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{given:?} → {id}");
    }
    // A request id of 128 characters is still the client's.
    let longest = "r".repeat(128);
    let response = env.get_with("/livez", &[("x-request-id", &longest)]).await;
    assert_eq!(response.headers()["x-request-id"], longest.as_str());
    env.stop().await;
}

/// The path and headers of every request a backend got.
type Recorded = Arc<Mutex<Vec<(String, HeaderMap)>>>;

/// A backend that records the headers of every request it gets and answers `{"ok": true}`.
async fn header_recorder() -> (SocketAddr, Recorded, tokio::task::JoinHandle<()>) {
    let seen = Recorded::default();
    let recorded = seen.clone();
    let app = Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap| {
        let recorded = recorded.clone();
        async move {
            recorded
                .lock()
                .expect("headers")
                .push((uri.path().to_string(), headers));
            axum::Json(json!({"ok": true}))
        }
    });
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("an address");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, seen, task)
}

#[tokio::test]
async fn the_clients_trace_id_reaches_the_backend_in_traceparent() {
    let (addr, seen, task) = header_recorder().await;
    let sdl = "type Probe { ok: Boolean! }\ntype Query { probe: Probe @http(backend: \"probe\", path: \"/probe\") }\n";
    let env = TestEnv::start_with(sdl, &format!("[backends.probe]\nurl = \"http://{addr}\"\n")).await;
    let client_parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = env
        .post_raw(
            r#"{"query": "{ probe { ok } }"}"#,
            &[("content-type", "application/json"), ("traceparent", client_parent)],
        )
        .await;
    assert_eq!(response.status(), 200);
    // Without one, the backend still gets a valid traceparent, of a new trace.
    env.graphql("{ probe { ok } }", json!({})).await;
    // (The warm-up's GET /health is not a call of a query.)
    let seen: Vec<HeaderMap> = seen
        .lock()
        .expect("headers")
        .iter()
        .filter(|(path, _)| path == "/probe")
        .map(|(_, h)| h.clone())
        .collect();
    assert_eq!(seen.len(), 2, "one call per query");
    let parent = |h: &HeaderMap| -> Vec<String> {
        let v = h
            .get("traceparent")
            .unwrap_or_else(|| panic!("no traceparent in {h:?}"))
            .to_str()
            .expect("ASCII");
        v.split('-').map(str::to_string).collect()
    };
    let continued = parent(&seen[0]);
    assert_eq!(continued.len(), 4, "{continued:?}");
    assert_eq!(continued[0], "00");
    assert_eq!(
        continued[1], "4bf92f3577b34da6a3ce929d0e0e4736",
        "the client's trace id"
    );
    assert_eq!(continued[2].len(), 16);
    assert_ne!(continued[2], "00f067aa0ba902b7", "the gateway's own span is the parent");
    assert_eq!(continued[3], "01", "sampled as the client said");
    let fresh = parent(&seen[1]);
    assert_eq!(fresh[1].len(), 32);
    assert!(fresh[1].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(fresh[1], continued[1], "a new trace");
    env.stop().await;
    task.abort();
}

#[tokio::test]
async fn an_invalid_traceparent_starts_a_new_trace() {
    let (addr, seen, task) = header_recorder().await;
    let sdl = "type Probe { ok: Boolean! }\ntype Query { probe: Probe @http(backend: \"probe\", path: \"/probe\") }\n";
    let env = TestEnv::start_with(sdl, &format!("[backends.probe]\nurl = \"http://{addr}\"\n")).await;
    let invalid = [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "garbage",
    ];
    for parent in invalid {
        let response = env
            .post_raw(
                r#"{"query": "{ probe { ok } }"}"#,
                &[("content-type", "application/json"), ("traceparent", parent)],
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    let sent: Vec<String> = seen
        .lock()
        .expect("headers")
        .iter()
        .filter(|(path, _)| path == "/probe")
        .map(|(_, h)| h["traceparent"].to_str().expect("ASCII").to_string())
        .collect();
    assert_eq!(sent.len(), invalid.len());
    for (given, sent) in invalid.iter().zip(&sent) {
        let trace = sent.split('-').nth(1).unwrap_or_default();
        assert_eq!(trace.len(), 32, "{sent}");
        assert!(
            trace.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "{sent}"
        );
        assert!(trace.bytes().any(|b| b != b'0'), "{sent}");
        assert!(
            !given.to_ascii_lowercase().contains(trace),
            "{given} was continued as {sent}"
        );
    }
    env.stop().await;
    task.abort();
}

// ---------------------------------------------------------------------------------------------
// Probes.

/// `/healthz` of the gateway (checked 200).
async fn health(env: &TestEnv) -> Value {
    let response = env.get("/healthz").await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.expect("JSON")
}

#[tokio::test]
async fn healthz_shows_every_backend_with_its_breaker_state() {
    let env = TestEnv::start().await;
    let breakers = |h: &Value| -> BTreeMap<String, String> {
        h["backends"]
            .as_array()
            .expect("backends")
            .iter()
            .map(|b| {
                (
                    b["backend"].as_str().expect("a name").to_string(),
                    b["breaker"].as_str().expect("a state").to_string(),
                )
            })
            .collect()
    };
    let h = health(&env).await;
    assert_eq!(h["status"], "ready");
    assert!(h["version"].is_string() && h["uptime_seconds"].is_u64(), "{h}");
    let expected: BTreeMap<String, String> = Service::ALL
        .iter()
        .map(|s| (s.name().to_string(), "closed".to_string()))
        .collect();
    assert_eq!(breakers(&h), expected);
    for b in h["backends"].as_array().expect("backends") {
        for key in [
            "breaker_opened",
            "breaker_rejected",
            "in_flight",
            "bulkhead_rejected",
            "retries",
        ] {
            assert!(b[key].is_u64(), "{key} in {b}");
        }
        assert!(!b["instances"].as_array().expect("instances").is_empty(), "{b}");
    }

    // The accounts service goes down until its breaker opens.
    env.set_faults(Service::Accounts, json!({"down": true})).await;
    let mut opened = Value::Null;
    for _ in 0..20 {
        env.graphql(r#"{ customer(id: "C001") { accounts { id } } }"#, json!({}))
            .await;
        let h = health(&env).await;
        if breakers(&h)["accounts"] == "open" {
            opened = h;
            break;
        }
    }
    env.reset_faults().await;
    assert!(!opened.is_null(), "the accounts breaker never opened");
    let states = breakers(&opened);
    assert_eq!(states["accounts"], "open");
    assert!(
        states
            .iter()
            .filter(|(k, _)| *k != "accounts")
            .all(|(_, s)| s == "closed"),
        "{states:?}"
    );
    let accounts = opened["backends"]
        .as_array()
        .expect("backends")
        .iter()
        .find(|b| b["backend"] == "accounts")
        .expect("accounts");
    assert!(accounts["breaker_opened"].as_u64() >= Some(1), "{accounts}");
    env.stop().await;
}

#[tokio::test]
async fn readiness_follows_a_critical_backend_and_ignores_the_others() {
    let env = TestEnv::start_configured(&demo_sdl(), &demo_toml(), |plan| {
        for b in &mut plan.backends {
            b.critical = b.name == "accounts";
        }
    })
    .await;
    let readyz = || async { env.get("/readyz").await.status().as_u16() };
    assert_eq!(readyz().await, 200);

    // A backend that is not critical failing changes nothing.
    env.set_faults(Service::ExternalBank, json!({"down": true})).await;
    for _ in 0..10 {
        env.graphql(
            "{ transfers(status: COMPLETED, limit: 3) { id externalCalls { count } } }",
            json!({}),
        )
        .await;
    }
    let h = health(&env).await;
    let backend = |h: &Value, name: &str| -> Value {
        h["backends"]
            .as_array()
            .expect("backends")
            .iter()
            .find(|b| b["backend"] == name)
            .cloned()
            .expect("listed")
    };
    assert_eq!(backend(&h, "external-bank")["breaker"], "open", "{h}");
    assert_eq!(backend(&h, "external-bank")["critical"], false);
    assert_eq!(readyz().await, 200, "a non-critical backend does not decide readiness");

    // The critical one failing takes the replica out of the load balancer, with a reason.
    env.set_faults(Service::Accounts, json!({"down": true})).await;
    let unready = eventually(Duration::from_secs(10), || async {
        env.graphql(r#"{ customer(id: "C001") { accounts { id } } }"#, json!({}))
            .await;
        readyz().await == 503
    })
    .await;
    assert!(unready, "/readyz never turned 503 with the critical backend down");
    let response = env.get("/readyz").await;
    let body = response.text().await.expect("a body");
    assert!(body.contains("critical backend unavailable: accounts"), "{body}");
    let h = health(&env).await;
    assert_eq!(h["status"], "not ready");
    let accounts = backend(&h, "accounts");
    assert_eq!(
        (accounts["critical"].clone(), accounts["available"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(
        env.get("/livez").await.status(),
        200,
        "liveness never depends on backends"
    );

    // Once it answers again, the breaker's own health probe lets it back in, with no traffic.
    env.reset_faults().await;
    let ready = eventually(Duration::from_secs(10), || async { readyz().await == 200 }).await;
    assert!(ready, "/readyz stayed 503 after the critical backend recovered");
    env.stop().await;
}

#[tokio::test]
async fn probes_answer_on_both_ports_once_serving() {
    let served = Served::start(NO_DRAIN, "").await;
    for url in [
        served.gateway.url("/readyz"),
        served.gateway.url("/livez"),
        served.gateway.admin_url("/readyz"),
        served.gateway.admin_url("/livez"),
    ] {
        let response = served.http.get(&url).send().await.expect("an answer");
        assert_eq!(response.status(), 200, "{url}");
    }
    let health: Value = served
        .http
        .get(served.gateway.admin_url("/healthz"))
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(health["status"], "ready");
    assert_eq!(health["backends"].as_array().map(Vec::len), Some(Service::ALL.len()));
    let on_main = served
        .http
        .get(served.gateway.url("/metrics"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(on_main.status(), 404, "metrics are on the admin port only");
    served.stop().await;
}
