//! A throwaway `redis-server` on a free loopback port, without persistence,
//! killed by PID when the guard drops (also on panic).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    /// Starts one, or returns `None` (after saying so loudly) when
    /// `redis-server` is not installed.
    pub fn start() -> Option<Self> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            let required = ["CI", "MOSAIC_REQUIRE_TOOLS"]
                .iter()
                .any(|v| std::env::var(v).is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "TRUE" | "yes")));
            assert!(
                !required,
                "`redis-server` is not installed (CI=true or MOSAIC_REQUIRE_TOOLS=1: a missing tool fails the test)"
            );
            eprintln!("\n!!!!! SKIPPED: `redis-server` is not installed; the Redis Streams test did not run !!!!!\n");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let server = Self { child, port };
        server.wait_ready(Duration::from_secs(10));
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} not ready within {timeout:?}", self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // Kills exactly the process this guard started.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
