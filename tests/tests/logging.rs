//! Logs configured by `[log]`: the level from the file (when no variable sets it), applied again
//! by a reload; debug lines for every backend call, naming their operation.

use std::time::Duration;

use mock_bank::{Bank, BankConfig};
use mosaic_tests::infra::{bank_env, eventually, shared, ConfigDir, GatewayProcess, Turn};
use mosaic_tests::{client, demo_sdl, demo_toml};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const QUERY: &str = r#"query CustomerAccounts { customer(id: "C001") { name accounts { id } } }"#;

/// The demo config with `[log] level = level`.
fn config(level: &str) -> String {
    format!("{}\n[log]\nlevel = \"{level}\"\n", demo_toml())
}

/// A gateway process over a bank of its own, its config in a folder of its own.
struct Logging {
    gateway: GatewayProcess,
    dir: ConfigDir,
    bank: Bank,
    _turn: Turn,
}

impl Logging {
    /// Serves `toml` with the demo schema and `files` beside it; `MOSAIC_LOG` is `mosaic_log`
    /// (empty: the file decides the level).
    async fn start(toml: &str, files: &[(&str, &str)], mosaic_log: &str) -> Self {
        let turn = shared().await;
        let bank = mock_bank::start(BankConfig::default()).await.expect("the bank starts");
        let dir = ConfigDir::new("logging");
        dir.write("bank.graphql", &demo_sdl());
        for (name, text) in files {
            dir.write(name, text);
        }
        dir.write("mosaic.toml", toml);
        let mut env = bank_env(&bank);
        env.push(("MOSAIC_LOG".into(), mosaic_log.into()));
        let gateway = GatewayProcess::spawn(&dir.file("mosaic.toml"), &env).await;
        Self {
            gateway,
            dir,
            bank,
            _turn: turn,
        }
    }

    /// POSTs a GraphQL request that must succeed.
    async fn ask(&self, body: Value) {
        let v: Value = client()
            .post(self.gateway.url("/graphql"))
            .json(&body)
            .send()
            .await
            .expect("an answer")
            .json()
            .await
            .expect("JSON");
        assert!(v.get("errors").is_none(), "{v}");
    }

    /// The lines with this message so far.
    fn lines(&self, message: &str) -> Vec<Value> {
        self.gateway
            .log_fields()
            .into_iter()
            .filter(|l| l["message"] == message)
            .collect()
    }

    /// Whether `n` or more lines with `message` are logged within `timeout`.
    async fn logs_at_least(&self, message: &str, n: usize, timeout: Duration) -> bool {
        eventually(timeout, || async move { self.lines(message).len() >= n }).await
    }

    fn logs(&self) -> String {
        self.gateway.logs().join("\n")
    }

    /// SIGHUP, then waits for the reload to be logged.
    async fn reload(&self) {
        let before = self.lines("configuration reloaded").len();
        self.gateway.signal("HUP");
        let reloaded = self
            .logs_at_least("configuration reloaded", before + 1, Duration::from_secs(5))
            .await;
        assert!(reloaded, "no reload:\n{}", self.logs());
    }

    async fn stop(self) {
        self.gateway.stop(Duration::from_secs(10)).await;
        self.bank.shutdown().await;
    }
}

#[tokio::test]
async fn the_files_log_level_applies_and_a_reload_changes_it() {
    let served = Logging::start(&config("info,mosaic_gateway::backend=debug"), &[], "").await;
    served.ask(json!({ "query": QUERY })).await;
    let logged = served.logs_at_least("backend call", 2, Duration::from_secs(5)).await;
    assert!(logged, "no debug line per backend call:\n{}", served.logs());
    let lines = served.lines("backend call");
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
    served.dir.write("mosaic.toml", &config("info"));
    served.reload().await;
    let changed = served
        .logs_at_least("log level changed", 1, Duration::from_secs(5))
        .await;
    assert!(changed, "the reload did not change the level:\n{}", served.logs());
    let before = served.lines("backend call").len();
    for _ in 0..3 {
        served.ask(json!({ "query": QUERY })).await;
    }
    // A request's lines are written by the log thread within milliseconds; give it time.
    let more = served
        .logs_at_least("backend call", before + 1, Duration::from_millis(500))
        .await;
    assert!(!more, "backend calls still logged at info:\n{}", served.logs());
    served.stop().await;
}

#[tokio::test]
async fn a_variable_wins_over_the_files_log_level_even_after_a_reload() {
    let served = Logging::start(&config("info,mosaic_gateway::backend=debug"), &[], "info").await;
    served.ask(json!({ "query": QUERY })).await;
    served.reload().await;
    served.ask(json!({ "query": QUERY })).await;
    let logged = served
        .logs_at_least("backend call", 1, Duration::from_millis(500))
        .await;
    assert!(
        !logged,
        "MOSAIC_LOG=info was overridden by the file:\n{}",
        served.logs()
    );
    assert!(served.lines("log level changed").is_empty(), "{}", served.logs());
    served.stop().await;
}

#[tokio::test]
async fn a_warmed_up_operation_is_not_compiled_again_whether_or_not_the_request_names_it() {
    let warm = "query Warm { customers(limit: 2) { id } }";
    let toml = demo_toml().replace("warmup = [\"examples\"]", "warmup = [\"warm.graphql\"]");
    assert!(
        toml.contains("warm.graphql"),
        "the demo config has a warmup key to replace"
    );
    let toml = format!("{toml}\n[log]\nlevel = \"info,mosaic_gateway::runtime=debug\"\n");
    let served = Logging::start(&toml, &[("warm.graphql", warm)], "").await;
    let warmed = served.lines("warmed up: operations compiled, backend connections opened");
    assert!(
        warmed.first().is_some_and(|l| l["operations"].as_u64() >= Some(1)),
        "no warm-up line:\n{}",
        served.logs()
    );
    served.ask(json!({ "query": warm })).await;
    served.ask(json!({ "query": warm, "operationName": "Warm" })).await;
    // The log thread writes within milliseconds: a control document shows it is caught up.
    served.ask(json!({ "query": "{ customers(limit: 1) { id } }" })).await;
    let compiled = "operation compiled on first sight";
    let caught_up = served.logs_at_least(compiled, 1, Duration::from_secs(5)).await;
    assert!(caught_up, "the control document was not compiled:\n{}", served.logs());
    assert_eq!(
        served.lines(compiled).len(),
        1,
        "only the control document is compiled on first sight:\n{}",
        served.logs()
    );
    served.stop().await;
}
