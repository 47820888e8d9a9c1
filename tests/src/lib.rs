//! The integration tests' harness: the mock bank and a real gateway over loopback HTTP.
//!
//! [`TestEnv::start`] starts the bank's five services and the gateway with the demo schema
//! (`schema/bank.graphql`, `schema/mosaic.toml`), every server on an ephemeral port of 127.0.0.1;
//! [`TestEnv::start_with`] does the same with another schema pointing at the same bank. The env
//! then speaks to the gateway (`graphql`, `post_raw`, `get_raw`, `get`) and to the bank's admin
//! endpoints (`stats`, `calls`, `reset_stats`, `set_faults`, `reset_faults`). The demo's files
//! and the fixtures are read with [`demo_sdl`], [`demo_toml`], [`examples`] and [`fixtures_dir`];
//! GraphQL error assertions shared by several test files are [`errors`], [`assert_request_error`],
//! [`assert_backend_errors`] and [`assert_errors_hide_backend`].
//!
//! Everything is bounded: every client request gives up after [`CLIENT_TIMEOUT`], and
//! [`TestEnv::stop`] stops the gateway (through its shutdown signal) and the bank, failing the test
//! if that takes too long. Dropping an env without `stop` (a failed assertion) still signals both
//! to stop, as a best effort.
//!
//! This crate only drives the system from outside; it knows nothing of the engine's internals
//! beyond its public start-up API.

pub use mock_bank::bookshop;
pub mod differential;
mod errors;
mod files;
pub mod infra;
pub mod prometheus;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use mock_bank::{Bank, BankConfig, Service};
use mosaic_gateway::cli::{build_plan, start, Running, ServeOptions};
use mosaic_gateway::config::{load_from_sources, ConfigSource, SourceFile};
use mosaic_gateway::plan::Plan;
use mosaic_gateway::runtime::ResolverRegistry;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use errors::{assert_backend_errors, assert_errors_hide_backend, assert_request_error, errors};
pub use files::{demo_sdl, demo_toml, example, examples, fixtures_dir, schema_dir, without_directive, Example};

/// Every request a test makes gives up after this long.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long stopping the gateway or the bank may take before the test fails.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A bounded HTTP client that never goes through a proxy.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(CLIENT_TIMEOUT)
        .build()
        .expect("the test client builds")
}

/// Builds a plan from in-memory config texts with every backend named like a bank service
/// pointed at that service. Panics with the diagnostics if the config is invalid.
pub fn plan_for(bank: &Bank, sdl: &str, toml: &str) -> Plan {
    let mut src: ConfigSource = load_from_sources(
        SourceFile::new("mosaic.toml", toml),
        vec![SourceFile::new("schema.graphql", sdl)],
    )
    .unwrap_or_else(|d| panic!("the test config does not load:\n{d}"));
    for service in Service::ALL {
        src.set_backend_url(service.name(), &bank.url(service));
    }
    build_plan(&src, &ResolverRegistry::new()).unwrap_or_else(|d| panic!("the test config is invalid:\n{d}"))
}

/// Builds a plan from in-memory config texts as they are (backend URLs included). Panics with
/// the diagnostics if the config is invalid.
pub fn plan_of(sdl: &str, toml: &str) -> Plan {
    let src: ConfigSource = load_from_sources(
        SourceFile::new("mosaic.toml", toml),
        vec![SourceFile::new("schema.graphql", sdl)],
    )
    .unwrap_or_else(|d| panic!("the test config does not load:\n{d}"));
    build_plan(&src, &ResolverRegistry::new()).unwrap_or_else(|d| panic!("the test config is invalid:\n{d}"))
}

/// Stops the gateway when dropped, unless it was stopped already.
struct GatewayGuard {
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl GatewayGuard {
    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            match tokio::time::timeout(STOP_TIMEOUT, task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => panic!("the gateway stopped with an error: {e}"),
                Ok(Err(e)) => panic!("the gateway task failed: {e}"),
                Err(_) => panic!("the gateway did not stop within {STOP_TIMEOUT:?}"),
            }
        }
    }
}

impl Drop for GatewayGuard {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The mock bank and a gateway over it, both on ephemeral loopback ports.
pub struct TestEnv {
    /// The mock bank's five services.
    pub bank: Bank,
    /// Where the gateway listens.
    pub gateway: SocketAddr,
    /// The client every helper uses (bounded by [`CLIENT_TIMEOUT`]).
    pub http: reqwest::Client,
    guard: GatewayGuard,
}

impl TestEnv {
    /// The bank and a gateway with the demo schema (`schema/bank.graphql`, `schema/mosaic.toml`).
    pub async fn start() -> Self {
        Self::start_with(&demo_sdl(), &demo_toml()).await
    }

    /// The bank and a gateway with `schema_sdl` and `toml`. Backends named like a bank service
    /// (`customers`, `accounts`, `transfers`, `external-bank`, `ledger`) are pointed at it, whatever
    /// URL the TOML gives them (it still needs a valid one, e.g. `http://127.0.0.1:1`).
    pub async fn start_with(schema_sdl: &str, toml: &str) -> Self {
        Self::start_configured(schema_sdl, toml, |_| {}).await
    }

    /// The demo with some `[limits]` changed.
    pub async fn start_with_limits(change: impl FnOnce(&mut mosaic_gateway::config::settings::LimitSettings)) -> Self {
        Self::start_configured(&demo_sdl(), &demo_toml(), |plan| change(&mut plan.limits)).await
    }

    /// The bank and a gateway with `schema_sdl` and `toml`, its plan changed by `change`.
    pub async fn start_configured(
        schema_sdl: &str,
        toml: &str,
        change: impl FnOnce(&mut mosaic_gateway::plan::Plan),
    ) -> Self {
        Self::start_with_bank(BankConfig::default(), schema_sdl, toml, change).await
    }

    /// Like [`TestEnv::start_configured`], with the bank started from `bank`.
    pub async fn start_with_bank(
        bank: BankConfig,
        schema_sdl: &str,
        toml: &str,
        change: impl FnOnce(&mut mosaic_gateway::plan::Plan),
    ) -> Self {
        let bank = mock_bank::start(bank).await.expect("the mock bank starts");
        let mut plan = plan_for(&bank, schema_sdl, toml);
        change(&mut plan);
        let (tx, rx) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = rx.await;
        };
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let mut plan = plan;
        // Tests stop the gateway often: no drain delay.
        plan.server.drain_delay = mosaic_gateway::config::HumanDuration(std::time::Duration::ZERO);
        let mut opts = ServeOptions::new(plan, ResolverRegistry::new());
        opts.listen = Some(listen);
        opts.admin_listen = Some(None);
        let Running { addr, task, .. } = start(opts, shutdown)
            .await
            .unwrap_or_else(|e| panic!("the gateway starts: {e}"));
        Self {
            bank,
            gateway: addr,
            http: client(),
            guard: GatewayGuard {
                shutdown: Some(tx),
                task: Some(task),
            },
        }
    }

    /// Stops the gateway, then the bank; fails the test if either takes too long.
    pub async fn stop(self) {
        let TestEnv { bank, http, guard, .. } = self;
        drop(http);
        guard.stop().await;
        tokio::time::timeout(STOP_TIMEOUT, bank.shutdown())
            .await
            .expect("the mock bank stops in time");
    }

    /// `http://127.0.0.1:PORT{path}` on the gateway.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gateway)
    }

    /// The GraphQL endpoint's URL.
    pub fn graphql_url(&self) -> String {
        self.url("/graphql")
    }

    /// POSTs `{"query", "variables"}` as JSON and returns the JSON response; fails the test unless
    /// the gateway answers 200 with JSON.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        self.post_json(&json!({ "query": query, "variables": variables })).await
    }

    /// POSTs any JSON body (an operation or a batch) and returns the JSON response; fails the test
    /// unless the gateway answers 200 with JSON.
    pub async fn post_json(&self, body: &Value) -> Value {
        let response = self
            .post_raw(&body.to_string(), &[("content-type", "application/json")])
            .await;
        let status = response.status();
        let text = response.text().await.expect("the gateway's body is readable");
        assert_eq!(status, reqwest::StatusCode::OK, "the gateway answered {status}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("the gateway's answer is not JSON ({e}): {text}"))
    }

    /// POSTs `body` to `/graphql` with exactly `headers` (no Content-Type unless given).
    pub async fn post_raw(&self, body: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.graphql_url())
            .headers(header_map(headers))
            .body(body.to_string())
            .send()
            .await
            .expect("the gateway answers")
    }

    /// GETs `/graphql?{query_string}` (the query string already encoded).
    pub async fn get_raw(&self, query_string: &str) -> reqwest::Response {
        self.get_with(&format!("/graphql?{query_string}"), &[]).await
    }

    /// GETs any path of the gateway with `headers`.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .headers(header_map(headers))
            .send()
            .await
            .expect("the gateway answers")
    }

    /// GETs any path of the gateway.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.get_with(path, &[]).await
    }

    /// The `/_stats` document of a bank service: `{"total": N, "endpoints": {"GET /x": N}}`.
    pub async fn stats(&self, service: Service) -> Value {
        let url = format!("{}/_stats", self.bank.url(service));
        let response = self.http.get(url).send().await.expect("the bank answers /_stats");
        assert!(response.status().is_success(), "/_stats of {}", service.name());
        response.json().await.expect("/_stats is JSON")
    }

    /// Business requests per endpoint of every service that got any since the last reset:
    /// `{"accounts": {"GET /accounts": 1}, ...}`.
    pub async fn calls(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        let mut out = BTreeMap::new();
        for service in Service::ALL {
            let stats = self.stats(service).await;
            let endpoints: BTreeMap<String, u64> = stats["endpoints"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect())
                .unwrap_or_default();
            let endpoints: BTreeMap<String, u64> = endpoints.into_iter().filter(|(_, n)| *n > 0).collect();
            if !endpoints.is_empty() {
                out.insert(service.name().to_string(), endpoints);
            }
        }
        out
    }

    /// Zeroes the request counters of every service.
    pub async fn reset_stats(&self) {
        for service in Service::ALL {
            let url = format!("{}/_stats/reset", self.bank.url(service));
            let response = self.http.post(url).send().await.expect("the bank answers");
            assert!(response.status().is_success(), "reset stats of {}", service.name());
        }
    }

    /// Sets faults on one service (`{"down": true}`, `{"latency_ms": 50}`, `{"status": 500}`...).
    pub async fn set_faults(&self, service: Service, faults: Value) {
        let url = format!("{}/_faults", self.bank.url(service));
        let response = self.http.put(url).json(&faults).send().await.expect("the bank answers");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "faults {faults} on {}: {status} {text}",
            service.name()
        );
    }

    /// Clears the faults of every service.
    pub async fn reset_faults(&self) {
        for service in Service::ALL {
            let url = format!("{}/_faults/reset", self.bank.url(service));
            let response = self.http.post(url).send().await.expect("the bank answers");
            assert!(response.status().is_success(), "reset faults of {}", service.name());
        }
    }
}

fn header_map(headers: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
        let value = HeaderValue::from_str(value).expect("a valid header value");
        map.append(name, value);
    }
    map
}

/// The media type of a response, without parameters (`application/json`).
pub fn media_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_string())
        .unwrap_or_default()
}

/// The JSON body of a response; fails the test if it is not JSON.
pub async fn json_of(response: reqwest::Response) -> Value {
    let text = response.text().await.expect("a readable body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Percent-encodes a query-string value (everything but unreserved characters).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
