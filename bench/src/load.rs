//! The load generator: N keep-alive HTTP/1.1 connections, each sending the same request (with the
//! same headers) back to back. Only requests completed while the run is in its measured phase are
//! counted.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{header, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// A single request, sent over and over.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub method: Method,
    pub path: String,
    /// JSON bodies (for POST): connection `i` sends `bodies[i % len]`; none for GET.
    pub bodies: Vec<Bytes>,
    /// Count 200 answers that contain `"errors"` as GraphQL errors.
    pub graphql: bool,
    /// Headers added to every request (e.g. `authorization`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Target {
    /// POSTs `query`; with `variants` > 1, connection `i` adds the comment `# connection {i %
    /// variants}` to it: the same operation, as a different document.
    pub fn graphql(addr: SocketAddr, path: &str, query: &str, variants: usize) -> Target {
        let bodies = (0..variants.max(1))
            .map(|i| {
                let query = if variants > 1 {
                    format!("{query}\n# connection {i}")
                } else {
                    query.to_owned()
                };
                Bytes::from(serde_json::json!({ "query": query }).to_string())
            })
            .collect();
        Target {
            addr,
            method: Method::POST,
            path: path.to_owned(),
            bodies,
            graphql: true,
            headers: Vec::new(),
        }
    }

    pub fn get(addr: SocketAddr, path_and_query: &str) -> Target {
        Target {
            addr,
            method: Method::GET,
            path: path_and_query.to_owned(),
            bodies: Vec::new(),
            graphql: false,
            headers: Vec::new(),
        }
    }

    /// POSTs `queries[i % len]` on connection `i`: each connection its own document.
    pub fn graphql_each(addr: SocketAddr, path: &str, queries: &[String]) -> Target {
        Target {
            addr,
            method: Method::POST,
            path: path.to_owned(),
            bodies: queries
                .iter()
                .map(|q| Bytes::from(serde_json::json!({ "query": q }).to_string()))
                .collect(),
            graphql: true,
            headers: Vec::new(),
        }
    }

    /// Adds `name: value` to every request, e.g. `authorization: Bearer …`.
    pub fn with_header(mut self, name: HeaderName, value: &str) -> Result<Target> {
        let value = HeaderValue::from_str(value).with_context(|| format!("not a valid value of {name}"))?;
        self.headers.push((name, value));
        Ok(self)
    }

    pub(crate) fn request(&self, connection: usize) -> Result<Request<Full<Bytes>>> {
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(&self.path)
            .header(header::HOST, self.addr.to_string());
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        let body = match self.bodies.len() {
            0 => Bytes::new(),
            n => {
                builder = builder
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::ACCEPT, "application/json");
                self.bodies[connection % n].clone()
            }
        };
        Ok(builder.body(Full::new(body))?)
    }
}

/// What the measured phase saw.
#[derive(Debug)]
pub struct LoadResult {
    /// Requests answered 200 without GraphQL errors.
    pub ok: u64,
    pub non_200: u64,
    pub graphql_errors: u64,
    /// Connection errors and timeouts.
    pub io_errors: u64,
    /// Latency of the successful requests, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Length of the measured phase.
    pub elapsed: Duration,
    /// Bytes of response bodies received (successful requests).
    pub body_bytes: u64,
}

impl LoadResult {
    pub fn completed(&self) -> u64 {
        self.ok + self.non_200 + self.graphql_errors + self.io_errors
    }

    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

struct ConnStats {
    ok: u64,
    non_200: u64,
    graphql_errors: u64,
    io_errors: u64,
    body_bytes: u64,
    latency_us: Histogram<u64>,
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 60 s at 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|_| Histogram::new(3).expect("3 sigfigs is valid"))
}

/// Connections running; warming up until [`LoadRun::measure`].
pub struct LoadRun {
    phase: Arc<AtomicU8>,
    tasks: Vec<JoinHandle<ConnStats>>,
    measure_start: Option<Instant>,
}

impl LoadRun {
    /// Opens `connections` connections (failing if any cannot connect) and starts sending.
    pub async fn start(target: Arc<Target>, connections: usize, request_timeout: Duration) -> Result<LoadRun> {
        let phase = Arc::new(AtomicU8::new(WARMUP));
        let mut senders = Vec::with_capacity(connections);
        for _ in 0..connections {
            senders.push(
                connect(target.addr)
                    .await
                    .with_context(|| format!("connecting to {}", target.addr))?,
            );
        }
        let tasks = senders
            .into_iter()
            .enumerate()
            .map(|(i, sender)| tokio::spawn(connection(i, sender, target.clone(), phase.clone(), request_timeout)))
            .collect();
        Ok(LoadRun {
            phase,
            tasks,
            measure_start: None,
        })
    }

    /// Ends the warmup: from now on completed requests are counted.
    pub fn measure(&mut self) {
        self.measure_start = Some(Instant::now());
        self.phase.store(MEASURE, Ordering::SeqCst);
    }

    /// Ends the measured phase (returns its length); connections finish their request in flight.
    pub fn end_measure(&mut self) -> Duration {
        self.phase.store(STOP, Ordering::SeqCst);
        self.measure_start.map(|s| s.elapsed()).unwrap_or_default()
    }

    /// Waits for the connections (each at most its request timeout) and merges their figures.
    pub async fn finish(mut self, elapsed: Duration) -> LoadResult {
        self.phase.store(STOP, Ordering::SeqCst);
        let mut result = LoadResult {
            ok: 0,
            non_200: 0,
            graphql_errors: 0,
            io_errors: 0,
            latency_us: histogram(),
            elapsed,
            body_bytes: 0,
        };
        for task in std::mem::take(&mut self.tasks) {
            match task.await {
                Ok(s) => {
                    result.ok += s.ok;
                    result.non_200 += s.non_200;
                    result.graphql_errors += s.graphql_errors;
                    result.io_errors += s.io_errors;
                    result.body_bytes += s.body_bytes;
                    let _ = result.latency_us.add(&s.latency_us);
                }
                Err(_) => result.io_errors += 1,
            }
        }
        result
    }
}

impl Drop for LoadRun {
    fn drop(&mut self) {
        self.phase.store(STOP, Ordering::SeqCst);
        for task in &self.tasks {
            task.abort();
        }
    }
}

pub(crate) async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .context("connect timed out")??;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

pub(crate) enum Outcome {
    /// 200 without GraphQL errors; the body's length.
    Ok(u64),
    Non200(StatusCode),
    GraphqlErrors,
}

pub(crate) async fn send(sender: &mut SendRequest<Full<Bytes>>, target: &Target, connection: usize) -> Result<Outcome> {
    sender.ready().await?;
    let response = sender.send_request(target.request(connection)?).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if status != StatusCode::OK {
        return Ok(Outcome::Non200(status));
    }
    if target.graphql && memchr::memmem::find(&body, b"\"errors\"").is_some() {
        return Ok(Outcome::GraphqlErrors);
    }
    Ok(Outcome::Ok(body.len() as u64))
}

async fn connection(
    index: usize,
    mut sender: SendRequest<Full<Bytes>>,
    target: Arc<Target>,
    phase: Arc<AtomicU8>,
    request_timeout: Duration,
) -> ConnStats {
    let mut stats = ConnStats {
        ok: 0,
        non_200: 0,
        graphql_errors: 0,
        io_errors: 0,
        body_bytes: 0,
        latency_us: histogram(),
    };
    loop {
        if phase.load(Ordering::Relaxed) == STOP {
            return stats;
        }
        let start = Instant::now();
        let outcome = tokio::time::timeout(request_timeout, send(&mut sender, &target, index)).await;
        let latency = start.elapsed();
        let counted = phase.load(Ordering::Relaxed) == MEASURE;
        match outcome {
            Ok(Ok(Outcome::Ok(bytes))) => {
                if counted {
                    stats.ok += 1;
                    stats.body_bytes += bytes;
                    let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
                    stats.latency_us.saturating_record(us);
                }
            }
            Ok(Ok(Outcome::Non200(_))) => stats.non_200 += u64::from(counted),
            Ok(Ok(Outcome::GraphqlErrors)) => stats.graphql_errors += u64::from(counted),
            Ok(Err(_)) | Err(_) => {
                stats.io_errors += u64::from(counted);
                // The connection is unusable (or mid-request): open a new one.
                loop {
                    if phase.load(Ordering::Relaxed) == STOP {
                        return stats;
                    }
                    match connect(target.addr).await {
                        Ok(s) => {
                            sender = s;
                            break;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            }
        }
    }
}
