//! The circuit breaker's state machine, with resilience4j's semantics: CLOSED judges a sliding
//! window once it holds `minimum_calls`; a failure rate or slow-call rate at or above its threshold
//! opens the circuit; OPEN rejects until `wait_in_open` has passed (or a health probe answers);
//! HALF_OPEN lets `half_open_calls` trial calls through and, once they are all back, closes or
//! opens again by the same thresholds.
//!
//! Pure: time is passed in (tokio's `Instant`, so tests run under `tokio::time::pause`).

use std::time::Duration;

use tokio::time::Instant;

use super::window::Window;
pub use crate::plan::resilience::BreakerSettings;

/// The three states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// Why the state changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    FailureRate,
    SlowCallRate,
    WaitElapsed,
    ProbeSucceeded,
    TrialsSucceeded,
    TrialsFailed,
}

/// A state change, for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub from: BreakerState,
    pub to: BreakerState,
    pub reason: Reason,
}

/// A call let through, to be reported back with [`Machine::record`]. It belongs to the state
/// (and its generation) it was given in; outcomes from an earlier state are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permit {
    pub kind: PermitKind,
    generation: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PermitKind {
    Closed,
    Trial,
}

/// The outcome of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub failure: bool,
    pub duration: Duration,
    /// How many client requests waited for the call (coalesced onto it): in CLOSED, the outcome
    /// counts once for each (at most [`MAX_WEIGHT`]), so a hanging backend that identical
    /// queries share opens the breaker as fast as if each had made its own call.
    pub weight: u32,
}

/// The most times one outcome counts.
pub const MAX_WEIGHT: u32 = 64;

#[derive(Debug)]
pub struct Machine {
    settings: BreakerSettings,
    state: BreakerState,
    window: Window,
    opened_at: Instant,
    trials_left: usize,
    trial_outcomes: Vec<Outcome>,
    generation: u64,
}

impl Machine {
    pub fn new(settings: BreakerSettings, now: Instant) -> Self {
        Self {
            window: Window::new(settings.window, now),
            state: BreakerState::Closed,
            opened_at: now,
            trials_left: 0,
            trial_outcomes: Vec::new(),
            generation: 0,
            settings,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Lets a call through, or not. May move OPEN → HALF_OPEN when the wait is over.
    pub fn try_acquire(&mut self, now: Instant) -> (Option<Permit>, Option<Transition>) {
        let mut transition = None;
        if self.state == BreakerState::Open
            && now.saturating_duration_since(self.opened_at) >= self.settings.wait_in_open
        {
            transition = Some(self.half_open(Reason::WaitElapsed));
        }
        let kind = match self.state {
            BreakerState::Closed => Some(PermitKind::Closed),
            BreakerState::Open => None,
            BreakerState::HalfOpen if self.trials_left > 0 => {
                self.trials_left -= 1;
                Some(PermitKind::Trial)
            }
            BreakerState::HalfOpen => None,
        };
        let permit = kind.map(|kind| Permit {
            kind,
            generation: self.generation,
        });
        (permit, transition)
    }

    /// Records a call's outcome.
    pub fn record(&mut self, permit: Permit, outcome: Outcome, now: Instant) -> Option<Transition> {
        if permit.generation != self.generation {
            // Let through before the last state change: its outcome no longer counts.
            return None;
        }
        let slow = outcome.duration >= self.settings.slow_call_duration;
        match (self.state, permit.kind) {
            (BreakerState::Closed, PermitKind::Closed) => {
                for _ in 0..outcome.weight.clamp(1, MAX_WEIGHT) {
                    self.window.record(outcome.failure, slow, now);
                }
                let totals = self.window.totals(now);
                if totals.calls < self.settings.minimum_calls {
                    return None;
                }
                if totals.failure_rate() >= self.settings.failure_rate {
                    Some(self.open(Reason::FailureRate, now))
                } else if totals.slow_rate() >= self.settings.slow_call_rate {
                    Some(self.open(Reason::SlowCallRate, now))
                } else {
                    None
                }
            }
            (BreakerState::HalfOpen, PermitKind::Trial) => {
                self.trial_outcomes.push(outcome);
                if self.trial_outcomes.len() < self.settings.half_open_calls {
                    return None;
                }
                let n = self.trial_outcomes.len() as f64;
                let failures = self.trial_outcomes.iter().filter(|o| o.failure).count() as f64;
                let slows = self
                    .trial_outcomes
                    .iter()
                    .filter(|o| o.duration >= self.settings.slow_call_duration)
                    .count() as f64;
                if failures / n >= self.settings.failure_rate || slows / n >= self.settings.slow_call_rate {
                    Some(self.open(Reason::TrialsFailed, now))
                } else {
                    Some(self.close(now))
                }
            }
            _ => None,
        }
    }

    /// A call that never reported (cancelled): a trial's slot is given back.
    pub fn release(&mut self, permit: Permit) {
        if permit.kind == PermitKind::Trial
            && permit.generation == self.generation
            && self.state == BreakerState::HalfOpen
        {
            self.trials_left += 1;
        }
    }

    /// The backend's health endpoint answered while OPEN: try it with trial calls now.
    pub fn probe_succeeded(&mut self) -> Option<Transition> {
        (self.state == BreakerState::Open).then(|| self.half_open(Reason::ProbeSucceeded))
    }

    fn open(&mut self, reason: Reason, now: Instant) -> Transition {
        let from = self.state;
        self.generation += 1;
        self.state = BreakerState::Open;
        self.opened_at = now;
        self.trial_outcomes.clear();
        self.trials_left = 0;
        Transition {
            from,
            to: BreakerState::Open,
            reason,
        }
    }

    fn half_open(&mut self, reason: Reason) -> Transition {
        let from = self.state;
        self.generation += 1;
        self.state = BreakerState::HalfOpen;
        self.trials_left = self.settings.half_open_calls.max(1);
        self.trial_outcomes.clear();
        Transition {
            from,
            to: BreakerState::HalfOpen,
            reason,
        }
    }

    fn close(&mut self, now: Instant) -> Transition {
        let from = self.state;
        self.generation += 1;
        self.state = BreakerState::Closed;
        self.window = Window::new(self.settings.window, now);
        self.trial_outcomes.clear();
        Transition {
            from,
            to: BreakerState::Closed,
            reason: Reason::TrialsSucceeded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::resilience::WindowKind;

    fn settings() -> BreakerSettings {
        BreakerSettings {
            window: WindowKind::Count(10),
            failure_rate: 0.5,
            slow_call_rate: 0.8,
            slow_call_duration: Duration::from_millis(100),
            minimum_calls: 4,
            wait_in_open: Duration::from_secs(5),
            half_open_calls: 2,
        }
    }

    const FAIL: Outcome = Outcome {
        failure: true,
        duration: Duration::from_millis(1),
        weight: 1,
    };
    const OK: Outcome = Outcome {
        failure: false,
        duration: Duration::from_millis(1),
        weight: 1,
    };
    const SLOW: Outcome = Outcome {
        failure: false,
        duration: Duration::from_millis(150),
        weight: 1,
    };

    fn call(m: &mut Machine, o: Outcome) -> Option<Transition> {
        let now = Instant::now();
        let (permit, _) = m.try_acquire(now);
        m.record(permit.expect("permitted"), o, now)
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_stays_closed_below_minimum_calls_even_if_all_fail() {
        let mut m = Machine::new(settings(), Instant::now());
        for _ in 0..3 {
            assert_eq!(call(&mut m, FAIL), None);
        }
        assert_eq!(m.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn one_failed_call_many_requests_waited_for_counts_for_each_of_them() {
        let mut m = Machine::new(settings(), Instant::now());
        let shared = Outcome { weight: 6, ..FAIL };
        let t = call(&mut m, shared).expect("opened at once");
        assert_eq!(t.to, BreakerState::Open);
        assert_eq!(t.reason, Reason::FailureRate);
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_opens_when_failure_rate_reaches_threshold() {
        let mut m = Machine::new(settings(), Instant::now());
        call(&mut m, OK);
        call(&mut m, OK);
        call(&mut m, FAIL);
        let t = call(&mut m, FAIL).expect("opens");
        assert_eq!((t.to, t.reason), (BreakerState::Open, Reason::FailureRate));
        assert_eq!(m.try_acquire(Instant::now()).0, None, "open rejects");
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_opens_when_slow_call_rate_reaches_threshold() {
        let mut m = Machine::new(settings(), Instant::now());
        for _ in 0..3 {
            call(&mut m, SLOW);
        }
        call(&mut m, OK);
        assert_eq!(m.state(), BreakerState::Closed, "3/4 slow is below 0.8");
        let t = call(&mut m, SLOW).expect("4/5 slow opens");
        assert_eq!(t.reason, Reason::SlowCallRate);
    }

    #[tokio::test(start_paused = true)]
    async fn open_breaker_half_opens_after_the_wait_and_limits_trial_calls() {
        let mut m = Machine::new(settings(), Instant::now());
        for _ in 0..4 {
            call(&mut m, FAIL);
        }
        tokio::time::advance(Duration::from_millis(4999)).await;
        assert_eq!(m.try_acquire(Instant::now()).0, None);
        tokio::time::advance(Duration::from_millis(1)).await;
        let (p1, t) = m.try_acquire(Instant::now());
        assert_eq!(
            t.map(|t| (t.to, t.reason)),
            Some((BreakerState::HalfOpen, Reason::WaitElapsed))
        );
        assert_eq!(p1.map(|p| p.kind), Some(PermitKind::Trial));
        assert_eq!(m.try_acquire(Instant::now()).0.map(|p| p.kind), Some(PermitKind::Trial));
        assert_eq!(m.try_acquire(Instant::now()).0, None, "only two trials");
    }

    #[tokio::test(start_paused = true)]
    async fn successful_trials_close_the_breaker_and_reset_the_window() {
        let mut m = Machine::new(settings(), Instant::now());
        for _ in 0..4 {
            call(&mut m, FAIL);
        }
        assert!(m.probe_succeeded().is_some());
        assert_eq!(call(&mut m, OK), None);
        let t = call(&mut m, OK).expect("closes");
        assert_eq!((t.to, t.reason), (BreakerState::Closed, Reason::TrialsSucceeded));
        // The old failures are gone: three new failures do not reopen (minimum is four).
        for _ in 0..3 {
            assert_eq!(call(&mut m, FAIL), None);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_trial_reopens_and_restarts_the_wait() {
        let mut m = Machine::new(settings(), Instant::now());
        for _ in 0..4 {
            call(&mut m, FAIL);
        }
        tokio::time::advance(Duration::from_secs(5)).await;
        call(&mut m, OK);
        let t = call(&mut m, FAIL).expect("1/2 failed ≥ 0.5 reopens");
        assert_eq!((t.to, t.reason), (BreakerState::Open, Reason::TrialsFailed));
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(m.try_acquire(Instant::now()).0, None, "the wait starts again");
    }

    #[tokio::test(start_paused = true)]
    async fn probe_success_moves_open_to_half_open_before_the_wait() {
        let mut m = Machine::new(settings(), Instant::now());
        for _ in 0..4 {
            call(&mut m, FAIL);
        }
        let t = m.probe_succeeded().expect("half-opens");
        assert_eq!((t.to, t.reason), (BreakerState::HalfOpen, Reason::ProbeSucceeded));
        assert_eq!(m.probe_succeeded(), None, "only from open");
    }

    #[tokio::test(start_paused = true)]
    async fn late_outcomes_from_before_a_transition_are_ignored() {
        let mut m = Machine::new(settings(), Instant::now());
        let (late, _) = m.try_acquire(Instant::now());
        for _ in 0..4 {
            call(&mut m, FAIL);
        }
        m.probe_succeeded();
        assert_eq!(m.record(late.expect("permit"), FAIL, Instant::now()), None);
        assert_eq!(m.state(), BreakerState::HalfOpen);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_trial_gives_its_slot_back() {
        let mut m = Machine::new(settings(), Instant::now());
        for _ in 0..4 {
            call(&mut m, FAIL);
        }
        m.probe_succeeded();
        let (first, _) = m.try_acquire(Instant::now());
        m.try_acquire(Instant::now());
        assert_eq!(m.try_acquire(Instant::now()).0, None);
        m.release(first.expect("permit"));
        assert_eq!(m.try_acquire(Instant::now()).0.map(|p| p.kind), Some(PermitKind::Trial));
    }
}
