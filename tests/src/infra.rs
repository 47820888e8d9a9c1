//! What the caching, operations and metrics suites start besides [`TestEnv`](crate::TestEnv):
//! gateways in process over a bank they share, the `mosaic` binary as a child process (for signals,
//! hot reload, its logs and metrics of its own) and the demo served by it ([`Served`]),
//! `redis-server` on an ephemeral loopback port, and config folders on disk.
//!
//! Everything started here is stopped by a guard when dropped (a failed assertion included):
//! child processes are killed by their PID and reaped, in-process gateways are signalled and
//! aborted, folders are removed. Every wait is bounded.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use mock_bank::{Bank, Service};
use mosaic_gateway::cli::{start, Running, ServeOptions};
use mosaic_gateway::plan::Plan;
use mosaic_gateway::runtime::ResolverRegistry;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a gateway process may take to say it is serving.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long building the `mosaic` binary may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(900);

/// A port of 127.0.0.1 that was free a moment ago (for servers that cannot be given port 0).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port of 127.0.0.1")
}

/// A test's turn to run among the tests of its binary (see [`exclusive`] and [`shared`]).
pub enum Turn {
    Shared(tokio::sync::RwLockReadGuard<'static, ()>),
    Exclusive(tokio::sync::RwLockWriteGuard<'static, ()>),
}

static TURNS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Taken by the tests that measure time under load (coalescing windows, readiness after a
/// signal) or make heavy load: while one holds it, no test holding a [`shared`] turn runs.
pub async fn exclusive() -> Turn {
    Turn::Exclusive(TURNS.write().await)
}

/// Taken by tests that load the machine (a gateway process each): they run in parallel with one
/// another, but not with an [`exclusive`] one.
pub async fn shared() -> Turn {
    Turn::Shared(TURNS.read().await)
}

/// Polls `check` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Gateways in process over a bank the test owns.

/// A gateway started in this process with a plan the test made (several may share one bank).
/// Dropping it signals it to stop and aborts its task.
pub struct InProcessGateway {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its admin listener, if asked for.
    pub admin: Option<SocketAddr>,
    /// Its state (the runtime serving, for tests that swap it as a reload does).
    pub state: std::sync::Arc<mosaic_gateway::server::AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl InProcessGateway {
    /// Starts `plan` on an ephemeral port of 127.0.0.1, with no drain delay and, if `admin`,
    /// an admin listener on another ephemeral port.
    pub async fn start(mut plan: Plan, admin: bool) -> Self {
        plan.server.drain_delay = mosaic_gateway::config::HumanDuration(Duration::ZERO);
        let mut opts = ServeOptions::new(plan, ResolverRegistry::new());
        opts.listen = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        opts.admin_listen = Some(admin.then(|| SocketAddr::from((Ipv4Addr::LOCALHOST, 0))));
        let (tx, rx) = oneshot::channel::<()>();
        let Running {
            addr,
            admin_addr,
            task,
            state,
        } = start(opts, async move {
            let _ = rx.await;
        })
        .await
        .unwrap_or_else(|e| panic!("the gateway starts: {e}"));
        Self {
            addr,
            admin: admin_addr,
            state,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs a query and returns the JSON answer; fails the test unless it is 200 with JSON.
    pub async fn graphql(&self, http: &reqwest::Client, query: &str, variables: Value) -> Value {
        post_graphql(http, &self.url("/graphql"), query, variables, &[]).await
    }

    /// Stops the gateway; fails the test if it does not stop within 15 s or stops with an error.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            match tokio::time::timeout(Duration::from_secs(15), task).await {
                Ok(Ok(Ok(()))) => {}
                other => panic!("the gateway did not stop cleanly: {other:?}"),
            }
        }
    }
}

impl Drop for InProcessGateway {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// POSTs `{"query", "variables"}` to `url` with `headers`; fails the test unless the answer is
/// 200 with a JSON body, which it returns.
pub async fn post_graphql(
    http: &reqwest::Client,
    url: &str,
    query: &str,
    variables: Value,
    headers: &[(&str, &str)],
) -> Value {
    let mut request = http.post(url).json(&json!({ "query": query, "variables": variables }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status();
    let text = response.text().await.expect("a readable body");
    assert_eq!(status, reqwest::StatusCode::OK, "the gateway answered {status}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

// ---------------------------------------------------------------------------------------------
// Config folders.

/// A folder of its own under the system's temporary folder, removed when dropped.
pub struct ConfigDir {
    path: PathBuf,
}

impl ConfigDir {
    /// A new empty folder whose name starts with `label`.
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "mosaic-{label}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        Self { path }
    }

    /// The path of `name` in the folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `name` (replacing it) in one step: written aside, then renamed over it, so a
    /// watcher polling the file never reads half of it.
    pub fn write(&self, name: &str, contents: &str) {
        let tmp = self.path.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, contents).unwrap_or_else(|e| panic!("cannot write {}: {e}", tmp.display()));
        std::fs::rename(&tmp, self.file(name)).unwrap_or_else(|e| panic!("cannot replace {name}: {e}"));
    }
}

impl Drop for ConfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// `toml` with `settings` (lines such as `drain_delay = "1s"`) added to its `[server]` table.
pub fn with_server_settings(toml: &str, settings: &str) -> String {
    assert!(toml.contains("\n[server]\n"), "the config has a [server] table");
    toml.replacen("\n[server]\n", &format!("\n[server]\n{settings}\n"), 1)
}

/// The environment variables pointing `schema/mosaic.toml`'s backends at `bank`.
pub fn bank_env(bank: &Bank) -> Vec<(String, String)> {
    Service::ALL
        .iter()
        .map(|s| {
            let var = format!("MOSAIC_{}_URL", s.name().to_ascii_uppercase().replace('-', "_"));
            (var, bank.url(*s))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The `mosaic` binary as a child process.

/// The `mosaic` binary of this build's profile (`target/<profile>/mosaic`). Once per test
/// process, it is built with `cargo build -p mosaic` if it is missing or older than a source file
/// of the crates it is made of.
pub fn mosaic_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(build_mosaic).clone()
}

/// The newest modification time of the files under `path` (a file or a folder).
fn newest(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| newest(&e.path()))
        .max()
}

fn build_mosaic() -> PathBuf {
    // The test binary is target/<profile>/deps/<name>-<hash>.
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps")
        .to_path_buf();
    let target_dir = profile_dir.parent().expect("target/<profile>").to_path_buf();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(other) => other.to_string(),
    };
    let binary = profile_dir.join(format!("mosaic{}", std::env::consts::EXE_SUFFIX));
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sources = ["gateway", "mosaic", "mock-backends", "Cargo.toml", "Cargo.lock"]
        .iter()
        .filter_map(|p| newest(&workspace.join(p)))
        .max();
    let built = std::fs::metadata(&binary).and_then(|m| m.modified()).ok();
    if let (Some(built), Some(sources)) = (built, sources) {
        if built >= sources {
            return binary;
        }
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--quiet",
            "-p",
            "mosaic",
            "--profile",
            &profile,
            "--manifest-path",
        ])
        .arg(workspace.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .stdin(Stdio::null());
    // What cargo set for this test binary (CARGO_PKG_NAME...) would look like changed inputs to
    // build scripts that watch those variables (ring's) and rebuild them: a clean slate instead.
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let set_for_tests = ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_CRATE_", "CARGO_BIN_"]
            .iter()
            .any(|p| key.starts_with(p))
            || [
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
            ]
            .contains(&key);
        if set_for_tests {
            command.env_remove(key);
        }
    }
    let mut child = command.spawn().expect("cargo runs");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for cargo") {
            break status;
        }
        if started.elapsed() > BUILD_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`cargo build -p mosaic` took longer than {BUILD_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "`cargo build -p mosaic` failed: {status}");
    assert!(binary.is_file(), "no binary at {}", binary.display());
    binary
}

/// Sends `signal` (`TERM`, `HUP`, `KILL`...) to the process `pid` with `kill -s`.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .expect("`kill` runs");
    assert!(status.success(), "kill -s {signal} {pid} failed");
}

/// `mosaic serve` as a child process on ephemeral ports, its stderr (the log) collected line by
/// line. Dropping it kills the process (by PID) if it still runs.
pub struct GatewayProcess {
    child: Child,
    /// Where it serves GraphQL.
    pub addr: SocketAddr,
    /// Its admin listener (`/metrics`).
    pub admin: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// While set, its stderr is not read (as a stalled log collector).
    stalled: Arc<std::sync::atomic::AtomicBool>,
    exit: Option<ExitStatus>,
}

impl GatewayProcess {
    /// Starts `mosaic serve --config config` with JSON logs, `env` added to the environment;
    /// returns once it logged that it is serving and `/readyz` answers 200.
    pub async fn spawn(config: &Path, env: &[(String, String)]) -> Self {
        let mut command = Command::new(mosaic_binary());
        command
            .arg("serve")
            .arg("--config")
            .arg(config)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .env("MOSAIC_LOG_FORMAT", "json")
            .env("MOSAIC_LOG", "info")
            .env_remove("MOSAIC_CONFIG")
            .env_remove("MOSAIC_LISTEN")
            .env_remove("MOSAIC_ADMIN_LISTEN")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("the mosaic binary starts");
        let stderr = child.stderr.take().expect("a piped stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let stalled = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stall = stalled.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                while stall.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                let Ok(line) = line else { break };
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        let mut process = Self {
            child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            admin: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            logs,
            reader: Some(reader),
            stalled,
            exit: None,
        };
        let started = Instant::now();
        let serving = loop {
            if let Some(fields) = process
                .log_fields()
                .into_iter()
                .find(|f| f["message"] == "mosaic is serving")
            {
                break fields;
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                process.exit = Some(status);
                process.join_reader();
                panic!(
                    "mosaic exited ({status}) before serving:\n{}",
                    process.logs().join("\n")
                );
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "mosaic did not start within {START_TIMEOUT:?}:\n{}",
                process.logs().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        process.addr = serving["addr"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {serving}"));
        process.admin = serving["admin"]
            .as_str()
            .and_then(|a| a.strip_prefix("Some(")?.strip_suffix(')')?.parse().ok())
            .unwrap_or_else(|| panic!("no admin address in {serving}"));
        let http = crate::client();
        let url = process.url("/readyz");
        let (http, url) = (&http, &url);
        let ready = eventually(Duration::from_secs(10), move || async move {
            matches!(http.get(url).send().await, Ok(r) if r.status() == reqwest::StatusCode::OK)
        })
        .await;
        assert!(ready, "/readyz never answered 200");
        process
    }

    /// Stops reading its stderr (`true`), as a log collector that stalls, or reads again.
    pub fn stall_logs(&self, stalled: bool) {
        self.stalled.store(stalled, std::sync::atomic::Ordering::Relaxed);
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://ADDR{path}` on the GraphQL port.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `http://ADMIN{path}` on the admin port.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// Sends `signal` (`TERM`, `HUP`...) to the process.
    pub fn signal(&self, signal: &str) {
        send_signal(self.pid(), signal);
    }

    /// Every line logged so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every JSON log line so far, with its `fields` merged in at the top level next to `level`,
    /// `target` and `span` (lines that are not JSON are left out).
    pub fn log_fields(&self) -> Vec<Value> {
        self.logs()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|mut v| {
                if let Some(Value::Object(fields)) = v.get_mut("fields").map(Value::take) {
                    if let Value::Object(top) = &mut v {
                        top.extend(fields);
                    }
                }
                v
            })
            .collect()
    }

    /// The exit status, if the process has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exit = Some(status);
                self.join_reader();
            }
        }
        self.exit
    }

    /// Waits up to `timeout` for the process to exit; its status then (every log line has been
    /// read by then), or `None` if it still runs.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            if Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// SIGTERM, then waits up to `timeout` for a clean exit (status 0); fails the test otherwise.
    pub async fn stop(mut self, timeout: Duration) {
        self.signal("TERM");
        let status = self.wait_exit(timeout).await;
        assert!(
            status.is_some_and(|s| s.success()),
            "mosaic did not exit cleanly within {timeout:?}: {status:?}"
        );
    }

    fn join_reader(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        if self.exit.is_none() {
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
            }
            let _ = self.child.wait();
        }
        self.join_reader();
    }
}

// ---------------------------------------------------------------------------------------------
// The demo served by the binary.

/// The bank, a config folder with the demo's schema and config, and `mosaic serve` over them.
pub struct Served {
    pub gateway: GatewayProcess,
    pub dir: ConfigDir,
    pub bank: Bank,
    pub http: reqwest::Client,
    _turn: Turn,
}

impl Served {
    /// The demo's schema and config (with `server` settings and `extra` TOML added) in a folder of
    /// their own, served by the binary over a new bank; in parallel with other such tests.
    pub async fn start(server: &str, extra: &str) -> Self {
        Self::start_in(shared().await, server, extra, &[]).await
    }

    /// The same, with no other process test running (for timing under load, or heavy load).
    pub async fn start_exclusive(server: &str, extra: &str) -> Self {
        Self::start_in(exclusive().await, server, extra, &[]).await
    }

    /// [`Served::start`] with `env` added to (or replacing variables of) the process's
    /// environment, e.g. `MOSAIC_CUSTOMERS_URL` to point a backend elsewhere.
    pub async fn start_with_env(server: &str, extra: &str, env: &[(&str, &str)]) -> Self {
        Self::start_in(shared().await, server, extra, env).await
    }

    async fn start_in(turn: Turn, server: &str, extra: &str, env: &[(&str, &str)]) -> Self {
        let bank = mock_bank::start(mock_bank::BankConfig::default())
            .await
            .expect("the bank starts");
        let dir = ConfigDir::new("ops");
        dir.write("bank.graphql", &crate::demo_sdl());
        dir.write(
            "mosaic.toml",
            &format!("{}\n{extra}\n", with_server_settings(&crate::demo_toml(), server)),
        );
        let mut vars = bank_env(&bank);
        for (k, v) in env {
            vars.retain(|(name, _)| name != k);
            vars.push((k.to_string(), v.to_string()));
        }
        let gateway = GatewayProcess::spawn(&dir.file("mosaic.toml"), &vars).await;
        Self {
            gateway,
            dir,
            bank,
            http: crate::client(),
            _turn: turn,
        }
    }

    /// POSTs a query; the HTTP status and the JSON body.
    pub async fn graphql(&self, query: &str, variables: Value, headers: &[(&str, &str)]) -> (u16, Value) {
        self.post(&json!({ "query": query, "variables": variables }), headers)
            .await
    }

    /// POSTs a GraphQL request body; the HTTP status and the JSON body.
    pub async fn post(&self, body: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = self.http.post(self.gateway.url("/graphql")).json(body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.expect("the gateway answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
        )
    }

    /// Whether a log line matching `line` shows up within 2 s.
    pub async fn logged(&self, line: impl Fn(&Value) -> bool) -> bool {
        let (gateway, line) = (&self.gateway, &line);
        eventually(Duration::from_secs(2), move || async move {
            gateway.log_fields().iter().any(line)
        })
        .await
    }

    /// The text of `/metrics` on the admin port.
    pub async fn metrics_text(&self) -> String {
        let response = self
            .http
            .get(self.gateway.admin_url("/metrics"))
            .send()
            .await
            .expect("the admin port answers");
        assert_eq!(response.status(), reqwest::StatusCode::OK, "/metrics");
        response.text().await.expect("a body")
    }

    /// Sets faults on one bank service (`{"latency_ms": 500}`, `{"down": true}`...).
    pub async fn set_faults(&self, service: Service, faults: Value) {
        let url = format!("{}/_faults", self.bank.url(service));
        let response = self.http.put(url).json(&faults).send().await.expect("the bank answers");
        assert!(response.status().is_success(), "faults {faults} on {}", service.name());
    }

    /// Business requests one bank service got so far.
    pub async fn bank_calls(&self, service: Service) -> u64 {
        let url = format!("{}/_stats", self.bank.url(service));
        let response = self.http.get(url).send().await.expect("the bank answers");
        let stats: Value = response.json().await.expect("/_stats is JSON");
        stats["total"].as_u64().unwrap_or(0)
    }

    /// SIGTERM, a clean exit, then the bank stops.
    pub async fn stop(self) {
        let Served { gateway, dir, bank, .. } = self;
        gateway.stop(Duration::from_secs(15)).await;
        drop(dir);
        tokio::time::timeout(Duration::from_secs(15), bank.shutdown())
            .await
            .expect("the bank stops");
    }
}

// ---------------------------------------------------------------------------------------------
// Redis.

/// Whether a missing tool must fail the test instead of skipping it: on CI (`CI=true`) and under
/// scripts/test.sh (`MOSAIC_REQUIRE_TOOLS=1`), which installs every tool, a skip would hide a
/// missing install step.
pub fn tools_required() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "TRUE" | "yes"));
    set("CI") || set("MOSAIC_REQUIRE_TOOLS")
}

/// Says loudly that `test` is skipped for want of `what` — or fails it, when tools are required.
pub fn skip_or_fail(test: &str, what: &str) {
    assert!(
        !tools_required(),
        "{test}: {what} (CI=true or MOSAIC_REQUIRE_TOOLS=1: a missing tool fails the test)"
    );
    eprintln!("\n{bar}\n  SKIPPED {test}: {what}\n{bar}\n", bar = "*".repeat(100));
}

/// Whether `promtool` (Debian's `prometheus` package, which scripts/test.sh installs) is here;
/// says loudly that `test` is skipped when it is not.
pub fn promtool_available(test: &str) -> bool {
    let available = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        skip_or_fail(
            test,
            "promtool not found (scripts/test.sh installs Debian's prometheus)",
        );
    }
    available
}

/// Whether `redis-server` and `redis-cli` can be run; when not, says the test is skipped (the
/// caller returns) or fails it when tools are required.
pub fn redis_available(test: &str) -> bool {
    let runs = |program: &str| {
        Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let available = runs("redis-server") && runs("redis-cli");
    if !available {
        skip_or_fail(test, "redis-server/redis-cli not found (scripts/test.sh installs them)");
    }
    available
}

/// `redis-server` on a loopback port, without persistence; killed (by PID) when dropped.
pub struct RedisServer {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    pub fn start() -> Self {
        let mut server = Self {
            child: None,
            port: free_port(),
        };
        server.launch();
        server
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (empty).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Runs `redis-cli` with `args` against this server; its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The keys matching `pattern` (read from redis-cli's quoted output: keys may hold newlines).
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        self.cli(&["--no-raw", "KEYS", pattern])
            .lines()
            .filter_map(|l| {
                let quoted = l.split_once(") ").map_or(l, |(_, rest)| rest).trim();
                let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
                Some(unescape(inner))
            })
            .collect()
    }

    /// The lines of `CLIENT LIST` (one per connected client, this redis-cli included).
    pub fn clients(&self) -> Vec<String> {
        self.cli(&["CLIENT", "LIST"])
            .lines()
            .filter(|l| l.starts_with("id="))
            .map(str::to_string)
            .collect()
    }

    fn launch(&mut self) {
        let started = Instant::now();
        loop {
            let child = Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
                .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server starts");
            self.child = Some(child);
            while started.elapsed() < Duration::from_secs(10) {
                if self.cli(&["PING"]).trim() == "PONG" {
                    return;
                }
                if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                    break; // it exited (the port was taken again): try once more
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            self.kill();
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not answer on port {} within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Undoes redis-cli's escapes in a quoted string (`\n`, `\"`, `\\`, `\xHH`).
fn unescape(quoted: &str) -> String {
    let mut out = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(u8::from_str_radix(&hex, 16).map_or('?', char::from));
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------------
// GraphQL over WebSocket (graphql-transport-ws).

/// A WebSocket connection of a test client.
pub type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a graphql-transport-ws connection to `http_url` (its `ws://` form) with `headers`, sends
/// `connection_init` and waits for the `connection_ack`.
pub async fn ws_connect(http_url: &str, headers: &[(&str, &str)]) -> WsStream {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let mut request = http_url
        .replacen("http://", "ws://", 1)
        .into_client_request()
        .expect("a WebSocket request");
    for (name, value) in [("sec-websocket-protocol", "graphql-transport-ws")]
        .iter()
        .chain(headers)
    {
        let name =
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("a header name");
        request
            .headers_mut()
            .insert(name, value.parse().expect("a header value"));
    }
    let (mut ws, _) = tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(request))
        .await
        .expect("connects in time")
        .expect("connects");
    ws_send(&mut ws, serde_json::json!({"type": "connection_init"})).await;
    let ack = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    assert!(
        matches!(&ack, Ok(Some(Ok(Message::Text(t)))) if t.contains("connection_ack")),
        "{ack:?}"
    );
    ws
}

/// Sends one graphql-transport-ws message.
pub async fn ws_send(ws: &mut WsStream, message: Value) {
    use futures::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        message.to_string().into(),
    ))
    .await
    .expect("sent");
}
