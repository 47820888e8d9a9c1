//! Sliding windows of call outcomes: the last N calls, or the calls of the last T seconds.
//!
//! The time-based window keeps one bucket per second (as resilience4j does), so its memory is
//! bounded by its length in seconds, not by the call rate.

use std::collections::VecDeque;

pub use crate::plan::resilience::WindowKind;
use tokio::time::Instant;

/// Counts over the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub calls: usize,
    pub failures: usize,
    pub slow: usize,
}

impl Totals {
    pub fn failure_rate(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.failures as f64 / self.calls as f64
        }
    }

    pub fn slow_rate(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.slow as f64 / self.calls as f64
        }
    }
}

/// The sliding window.
#[derive(Debug)]
pub enum Window {
    Count {
        size: usize,
        ring: VecDeque<(bool, bool)>,
        totals: Totals,
    },
    Time {
        seconds: u64,
        origin: Instant,
        /// (second since origin, totals of that second), oldest first.
        buckets: VecDeque<(u64, Totals)>,
    },
}

impl Window {
    pub fn new(kind: WindowKind, now: Instant) -> Self {
        match kind {
            WindowKind::Count(n) => Window::Count {
                size: n.max(1),
                ring: VecDeque::with_capacity(n.max(1)),
                totals: Totals::default(),
            },
            WindowKind::Time(d) => Window::Time {
                seconds: d.as_secs_f64().ceil().max(1.0) as u64,
                origin: now,
                buckets: VecDeque::new(),
            },
        }
    }

    /// Records one call.
    pub fn record(&mut self, failure: bool, slow: bool, now: Instant) {
        match self {
            Window::Count { size, ring, totals } => {
                if ring.len() == *size {
                    if let Some((f, s)) = ring.pop_front() {
                        totals.calls -= 1;
                        totals.failures -= usize::from(f);
                        totals.slow -= usize::from(s);
                    }
                }
                ring.push_back((failure, slow));
                totals.calls += 1;
                totals.failures += usize::from(failure);
                totals.slow += usize::from(slow);
            }
            Window::Time { origin, buckets, .. } => {
                let sec = now.saturating_duration_since(*origin).as_secs();
                match buckets.back_mut() {
                    Some((s, t)) if *s == sec => add(t, failure, slow),
                    _ => {
                        let mut t = Totals::default();
                        add(&mut t, failure, slow);
                        buckets.push_back((sec, t));
                    }
                }
                self.evict(now);
            }
        }
    }

    /// The totals over the window at `now`.
    pub fn totals(&mut self, now: Instant) -> Totals {
        match self {
            Window::Count { totals, .. } => *totals,
            Window::Time { .. } => {
                self.evict(now);
                let Window::Time { buckets, .. } = self else {
                    return Totals::default();
                };
                buckets.iter().fold(Totals::default(), |mut acc, (_, t)| {
                    acc.calls += t.calls;
                    acc.failures += t.failures;
                    acc.slow += t.slow;
                    acc
                })
            }
        }
    }

    fn evict(&mut self, now: Instant) {
        if let Window::Time {
            seconds,
            origin,
            buckets,
        } = self
        {
            let sec = now.saturating_duration_since(*origin).as_secs();
            while buckets.front().is_some_and(|(s, _)| s + *seconds <= sec) {
                buckets.pop_front();
            }
        }
    }
}

fn add(t: &mut Totals, failure: bool, slow: bool) {
    t.calls += 1;
    t.failures += usize::from(failure);
    t.slow += usize::from(slow);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn count_window_keeps_only_the_last_n_calls() {
        let now = Instant::now();
        let mut w = Window::new(WindowKind::Count(3), now);
        for failure in [true, true, false, false] {
            w.record(failure, false, now);
        }
        assert_eq!(
            w.totals(now),
            Totals {
                calls: 3,
                failures: 1,
                slow: 0
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn time_window_forgets_calls_older_than_its_length() {
        let start = Instant::now();
        let mut w = Window::new(WindowKind::Time(Duration::from_secs(2)), start);
        w.record(true, true, start);
        tokio::time::advance(Duration::from_millis(1500)).await;
        w.record(false, false, Instant::now());
        assert_eq!(w.totals(Instant::now()).calls, 2);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            w.totals(Instant::now()),
            Totals {
                calls: 1,
                failures: 0,
                slow: 0
            }
        );
    }
}
