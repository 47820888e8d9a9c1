//! Logs configured by `[log]`: the level from the file (when no variable sets it), applied again
//! by a reload; debug lines for every backend call, naming their operation.

use std::time::Duration;

use mock_bank::BankConfig;
use mosaic_tests::infra::{bank_env, eventually, shared, ConfigDir, GatewayProcess};
use mosaic_tests::{client, demo_sdl, demo_toml};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const QUERY: &str = r#"query CustomerAccounts { customer(id: "C001") { name accounts { id } } }"#;

fn config(level: &str) -> String {
    format!("{}\n[log]\nlevel = \"{level}\"\n", demo_toml())
}

async fn ask(gateway: &GatewayProcess) -> Value {
    client()
        .post(gateway.url("/graphql"))
        .json(&json!({ "query": QUERY }))
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("JSON")
}

fn backend_call_lines(gateway: &GatewayProcess) -> Vec<Value> {
    gateway
        .log_fields()
        .into_iter()
        .filter(|l| l["message"] == "backend call")
        .collect()
}

#[tokio::test]
async fn the_files_log_level_applies_and_a_reload_changes_it() {
    let _turn = shared().await;
    let bank = mock_bank::start(BankConfig::default()).await.expect("the bank starts");
    let dir = ConfigDir::new("logging");
    dir.write("bank.graphql", &demo_sdl());
    dir.write("mosaic.toml", &config("info,mosaic_gateway::backend=debug"));
    let mut env = bank_env(&bank);
    // The harness sets MOSAIC_LOG; empty, the file decides.
    env.push(("MOSAIC_LOG".into(), String::new()));
    let gateway = GatewayProcess::spawn(&dir.file("mosaic.toml"), &env).await;

    let answer = ask(&gateway).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    let gw = &gateway;
    let logged = eventually(
        Duration::from_secs(5),
        || async move { backend_call_lines(gw).len() >= 2 },
    )
    .await;
    assert!(logged, "no debug line per backend call:\n{}", gateway.logs().join("\n"));
    let lines = backend_call_lines(&gateway);
    let accounts = lines
        .iter()
        .find(|l| l["backend"] == "accounts")
        .unwrap_or_else(|| panic!("no line for the accounts call: {lines:?}"));
    assert_eq!(accounts["outcome"], "ok", "{accounts}");
    assert_eq!(accounts["status"], 200, "{accounts}");
    assert_eq!(accounts["attempts"], 1, "{accounts}");
    assert!(
        accounts["endpoint"].as_str().is_some_and(|e| e.starts_with("GET /")),
        "{accounts}"
    );
    assert!(accounts["duration_ms"].is_f64(), "{accounts}");
    // The line names the operation, never its variables, and carries the request's ids.
    assert_eq!(accounts["operation"], "CustomerAccounts", "{accounts}");
    assert_eq!(accounts["operation_type"], "query", "{accounts}");
    let hash: String = Sha256::digest(QUERY.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(accounts["document"], hash.as_str(), "{accounts}");
    let span = &accounts["span"];
    assert!(
        span["request_id"].is_string() && span["trace_id"].is_string(),
        "{accounts}"
    );

    // A reload with the level at info: no more backend lines.
    dir.write("mosaic.toml", &config("info"));
    gateway.signal("HUP");
    let gw = &gateway;
    let changed = eventually(Duration::from_secs(5), || async move {
        gw.log_fields().iter().any(|l| l["message"] == "log level changed")
    })
    .await;
    assert!(
        changed,
        "the reload did not change the level:\n{}",
        gateway.logs().join("\n")
    );
    let before = backend_call_lines(&gateway).len();
    for _ in 0..3 {
        ask(&gateway).await;
    }
    // A request's lines are written by the log thread within milliseconds; give it time.
    let gw = &gateway;
    let quiet = !eventually(Duration::from_millis(500), || async move {
        backend_call_lines(gw).len() > before
    })
    .await;
    assert!(
        quiet,
        "backend calls still logged at info:\n{}",
        gateway.logs().join("\n")
    );
    gateway.stop(Duration::from_secs(10)).await;
    bank.shutdown().await;
}

#[tokio::test]
async fn a_variable_wins_over_the_files_log_level_even_after_a_reload() {
    let _turn = shared().await;
    let bank = mock_bank::start(BankConfig::default()).await.expect("the bank starts");
    let dir = ConfigDir::new("logging-env");
    dir.write("bank.graphql", &demo_sdl());
    dir.write("mosaic.toml", &config("info,mosaic_gateway::backend=debug"));
    let mut env = bank_env(&bank);
    env.push(("MOSAIC_LOG".into(), "info".into()));
    let gateway = GatewayProcess::spawn(&dir.file("mosaic.toml"), &env).await;
    ask(&gateway).await;
    gateway.signal("HUP");
    let gw = &gateway;
    let reloaded = eventually(Duration::from_secs(5), || async move {
        gw.log_fields().iter().any(|l| l["message"] == "configuration reloaded")
    })
    .await;
    assert!(reloaded, "{}", gateway.logs().join("\n"));
    ask(&gateway).await;
    let gw = &gateway;
    let logged = eventually(Duration::from_millis(500), || async move {
        !backend_call_lines(gw).is_empty()
    })
    .await;
    assert!(
        !logged,
        "MOSAIC_LOG=info was overridden by the file:\n{}",
        gateway.logs().join("\n")
    );
    assert!(
        !gateway.log_fields().iter().any(|l| l["message"] == "log level changed"),
        "{}",
        gateway.logs().join("\n")
    );
    gateway.stop(Duration::from_secs(10)).await;
    bank.shutdown().await;
}

#[tokio::test]
async fn a_warmed_up_operation_is_not_compiled_again_whether_or_not_the_request_names_it() {
    let _turn = shared().await;
    let bank = mock_bank::start(BankConfig::default()).await.expect("the bank starts");
    let dir = ConfigDir::new("logging-warmup");
    dir.write("bank.graphql", &demo_sdl());
    dir.write("warm.graphql", "query Warm { customers(limit: 2) { id } }");
    let toml = demo_toml().replace("warmup = [\"examples\"]", "warmup = [\"warm.graphql\"]");
    assert!(
        toml.contains("warm.graphql"),
        "the demo config has a warmup key to replace"
    );
    dir.write(
        "mosaic.toml",
        &format!("{toml}\n[log]\nlevel = \"info,mosaic_gateway::runtime=debug\"\n"),
    );
    let mut env = bank_env(&bank);
    env.push(("MOSAIC_LOG".into(), String::new()));
    let gateway = GatewayProcess::spawn(&dir.file("mosaic.toml"), &env).await;
    let compiled = |g: &GatewayProcess| {
        g.log_fields()
            .iter()
            .filter(|l| l["message"] == "operation compiled on first sight")
            .count()
    };
    let warmed = gateway
        .log_fields()
        .into_iter()
        .find(|l| l["message"] == "warmed up: operations compiled, backend connections opened")
        .unwrap_or_else(|| panic!("no warm-up line:\n{}", gateway.logs().join("\n")));
    assert!(warmed["operations"].as_u64() >= Some(1), "{warmed}");
    let ask = |body: Value| {
        let url = gateway.url("/graphql");
        async move {
            let v: Value = client()
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("an answer")
                .json()
                .await
                .expect("JSON");
            assert!(v.get("errors").is_none(), "{v}");
        }
    };
    let query = "query Warm { customers(limit: 2) { id } }";
    ask(json!({ "query": query })).await;
    ask(json!({ "query": query, "operationName": "Warm" })).await;
    // The log thread writes within milliseconds: a control document shows it is caught up.
    ask(json!({ "query": "{ customers(limit: 1) { id } }" })).await;
    let gw = &gateway;
    let caught_up = eventually(Duration::from_secs(5), || async move { compiled(gw) >= 1 }).await;
    assert!(
        caught_up,
        "the control document was not compiled:\n{}",
        gateway.logs().join("\n")
    );
    assert_eq!(
        compiled(&gateway),
        1,
        "only the control document is compiled on first sight:\n{}",
        gateway.logs().join("\n")
    );
    gateway.stop(Duration::from_secs(10)).await;
    bank.shutdown().await;
}
