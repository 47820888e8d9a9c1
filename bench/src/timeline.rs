//! A load generator that keeps every request: N keep-alive connections sending back to back, each
//! request recorded with when it started, how long it took and how it ended, so that a run can be
//! cut afterwards into phases (healthy, fault, healed) or into the moments a breaker was open.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use tokio::task::JoinHandle;

use crate::load::{self, Outcome, Target};

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// 200 without GraphQL errors.
    Ok,
    /// 200 with GraphQL errors (partial data, e.g. a fallback).
    Partial,
    Status4xx,
    Status5xx,
    /// Any other status (1xx, 3xx).
    OtherStatus,
    /// Connection error or client timeout.
    Io,
}

/// One request.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When it was sent, since the start of the run.
    pub start_us: u64,
    pub latency_us: u64,
    pub kind: Kind,
}

impl Sample {
    pub fn end_us(&self) -> u64 {
        self.start_us + self.latency_us
    }

    /// Answered with a status (whatever it was), as opposed to a connection error or timeout.
    pub fn answered(&self) -> bool {
        self.kind != Kind::Io
    }
}

/// Connections running until [`TimelineRun::finish`].
pub struct TimelineRun {
    t0: Instant,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Vec<Sample>>>,
}

impl TimelineRun {
    /// Opens `connections` connections (failing if any cannot connect) and starts sending.
    pub async fn start(target: Arc<Target>, connections: usize, request_timeout: Duration) -> Result<TimelineRun> {
        let mut senders = Vec::with_capacity(connections);
        for _ in 0..connections {
            senders.push(
                load::connect(target.addr)
                    .await
                    .with_context(|| format!("connecting to {}", target.addr))?,
            );
        }
        let t0 = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = senders
            .into_iter()
            .enumerate()
            .map(|(i, sender)| tokio::spawn(connection(i, sender, target.clone(), stop.clone(), t0, request_timeout)))
            .collect();
        Ok(TimelineRun { t0, stop, tasks })
    }

    /// The moment the run started: every [`Sample::start_us`] counts from it.
    pub fn t0(&self) -> Instant {
        self.t0
    }

    /// Time since the start of the run.
    pub fn now_us(&self) -> u64 {
        micros(self.t0.elapsed())
    }

    /// Stops sending; waits for the requests in flight (each at most its timeout). Samples in
    /// start order.
    pub async fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Vec::new();
        for task in std::mem::take(&mut self.tasks) {
            if let Ok(samples) = task.await {
                all.extend(samples);
            }
        }
        all.sort_by_key(|s| s.start_us);
        all
    }
}

impl Drop for TimelineRun {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for task in &self.tasks {
            task.abort();
        }
    }
}

pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

async fn connection(
    index: usize,
    mut sender: hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
    target: Arc<Target>,
    stop: Arc<AtomicBool>,
    t0: Instant,
    request_timeout: Duration,
) -> Vec<Sample> {
    let mut samples = Vec::with_capacity(4096);
    while !stop.load(Ordering::Relaxed) {
        let start = Instant::now();
        let outcome = tokio::time::timeout(request_timeout, load::send(&mut sender, &target, index)).await;
        let latency_us = micros(start.elapsed()).max(1);
        let kind = match &outcome {
            Ok(Ok(Outcome::Ok(_))) => Kind::Ok,
            Ok(Ok(Outcome::GraphqlErrors)) => Kind::Partial,
            Ok(Ok(Outcome::Non200(s))) if s.is_server_error() => Kind::Status5xx,
            Ok(Ok(Outcome::Non200(s))) if s.is_client_error() => Kind::Status4xx,
            Ok(Ok(Outcome::Non200(_))) => Kind::OtherStatus,
            Ok(Err(_)) | Err(_) => Kind::Io,
        };
        samples.push(Sample {
            start_us: micros(start.duration_since(t0)),
            latency_us,
            kind,
        });
        if kind == Kind::Io {
            // The connection is unusable (or mid-request): open a new one.
            loop {
                if stop.load(Ordering::Relaxed) {
                    return samples;
                }
                match load::connect(target.addr).await {
                    Ok(s) => {
                        sender = s;
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }
    }
    samples
}

/// Figures of a set of samples.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub requests: u64,
    pub seconds: f64,
    pub requests_per_s: f64,
    pub ok: u64,
    /// 200 with GraphQL errors.
    pub partial: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    pub other_status: u64,
    pub io_errors: u64,
    /// Latency of every answered request (any status), in ms.
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    /// Figures of `samples`, which span `seconds`.
    pub fn of<'a>(samples: impl IntoIterator<Item = &'a Sample>, seconds: f64) -> Summary {
        let mut h = histogram();
        let mut s = Summary {
            seconds,
            ..Summary::default()
        };
        for x in samples {
            s.requests += 1;
            match x.kind {
                Kind::Ok => s.ok += 1,
                Kind::Partial => s.partial += 1,
                Kind::Status4xx => s.status_4xx += 1,
                Kind::Status5xx => s.status_5xx += 1,
                Kind::OtherStatus => s.other_status += 1,
                Kind::Io => s.io_errors += 1,
            }
            if x.answered() {
                h.saturating_record(x.latency_us);
            }
        }
        let q = |p: f64| {
            if h.is_empty() {
                f64::NAN
            } else {
                h.value_at_quantile(p) as f64 / 1000.0
            }
        };
        s.p50_ms = q(0.5);
        s.p90_ms = q(0.9);
        s.p99_ms = q(0.99);
        s.max_ms = if h.is_empty() {
            f64::NAN
        } else {
            h.max() as f64 / 1000.0
        };
        s.requests_per_s = s.requests as f64 / seconds.max(1e-9);
        s
    }

    /// Share of requests answered 5xx.
    pub fn share_5xx(&self) -> f64 {
        self.status_5xx as f64 / (self.requests.max(1)) as f64
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).unwrap_or_else(|_| Histogram::new(3).expect("3 sigfigs is valid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_kinds_and_latency() {
        let samples: Vec<Sample> = (1..=100)
            .map(|i| Sample {
                start_us: i,
                latency_us: i * 1000,
                kind: if i % 10 == 0 { Kind::Status5xx } else { Kind::Ok },
            })
            .chain([Sample {
                start_us: 0,
                latency_us: 10_000_000,
                kind: Kind::Io,
            }])
            .collect();
        let s = Summary::of(&samples, 2.0);
        assert_eq!(s.requests, 101);
        assert_eq!(s.status_5xx, 10);
        assert_eq!(s.io_errors, 1);
        assert!((s.p50_ms - 50.0).abs() < 0.5, "{}", s.p50_ms);
        assert!(s.max_ms <= 100.1, "timeouts are not latencies: {}", s.max_ms);
        assert!((s.requests_per_s - 50.5).abs() < 1e-9);
    }
}
