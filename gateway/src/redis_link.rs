//! A connection to Redis that never stands in the request path's way: it connects in the
//! background (retrying with backoff), every command is bounded by a timeout, and a failure sets
//! Redis aside for a second, during which callers go on without it. Shared by the second cache
//! level and the shared rate-limit buckets.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::ConnectionManager;
use tokio::time::Instant;

/// How long a failure sets Redis aside.
const SET_ASIDE: Duration = Duration::from_secs(1);

pub struct RedisLink {
    conn: Arc<ArcSwapOption<ConnectionManager>>,
    timeout: Duration,
    set_aside_until: Mutex<Option<Instant>>,
    /// What Redis is used for, in log lines ("the shared cache", "shared rate limits").
    purpose: &'static str,
    connecting: tokio::task::JoinHandle<()>,
}

impl Drop for RedisLink {
    fn drop(&mut self) {
        self.connecting.abort();
    }
}

impl RedisLink {
    /// Starts connecting to `client` in the background; until connected, [`RedisLink::connection`]
    /// is `None`.
    pub fn start(client: redis::Client, timeout: Duration, purpose: &'static str) -> Self {
        let conn: Arc<ArcSwapOption<ConnectionManager>> = Arc::default();
        let slot = conn.clone();
        let connecting = tokio::spawn(async move {
            let mut wait = Duration::from_millis(100);
            loop {
                match ConnectionManager::new(client.clone()).await {
                    Ok(c) => {
                        slot.store(Some(Arc::new(c)));
                        tracing::info!(purpose, "connected to Redis");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(purpose, error = %e, "Redis unavailable; going on without it until it answers")
                    }
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        });
        Self {
            conn,
            timeout,
            set_aside_until: Mutex::new(None),
            purpose,
            connecting,
        }
    }

    /// The connection, unless not connected yet or set aside after a failure.
    pub fn connection(&self) -> Option<ConnectionManager> {
        if let Ok(until) = self.set_aside_until.lock() {
            if until.is_some_and(|u| Instant::now() < u) {
                return None;
            }
        }
        self.conn.load().as_deref().cloned()
    }

    /// Runs `call` on the connection within the timeout; `None` (and Redis set aside) when it
    /// fails or is late, `None` at once when there is no usable connection.
    pub async fn bounded<T, F, Fut>(&self, what: &str, call: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.connection()?;
        match tokio::time::timeout(self.timeout, call(conn)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => self.failed(what, e),
            Err(_) => self.failed(what, "timed out"),
        }
    }

    /// Runs one command (see [`RedisLink::bounded`]).
    pub async fn run<T: redis::FromRedisValue>(&self, what: &str, cmd: redis::Cmd) -> Option<T> {
        self.bounded(what, |mut conn| async move { cmd.query_async::<T>(&mut conn).await })
            .await
    }

    fn failed<T>(&self, what: &str, e: impl std::fmt::Display) -> Option<T> {
        tracing::warn!(purpose = self.purpose, operation = what, error = %e, "Redis operation failed; going on without it for a second");
        if let Ok(mut until) = self.set_aside_until.lock() {
            *until = Some(Instant::now() + SET_ASIDE);
        }
        None
    }
}
