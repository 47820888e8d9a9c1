//! The one coalescer: identical work in flight at the same moment is done once, and everyone who
//! asked for it gets its result.
//!
//! Used by backend single-flight (identical GETs across requests), the per-request call memo
//! (identical calls inside one GraphQL request) and operation coalescing (identical queries across
//! requests). It owns the in-flight map and nothing else: what the work is, and what its result
//! means, is the caller's business.
//!
//! **Cancellation.** A flight belongs to its waiters. Each waiter is a [`Joined`] future; when the
//! last waiter of an unfinished flight is dropped (its client gave up, its request timed out), the
//! entry is removed and the flight's future is dropped with it: the work is *cancelled*, not
//! detached. Whatever it held — an HTTP connection, bulkhead permits, breaker trial slots, retry
//! budget tokens, a whole `Engine` of an older configuration — is released at that moment, and the
//! next caller for the same key starts a new flight. Cancelling was chosen over finishing in the
//! background because nobody is left to read the result, a detached call would still occupy the
//! backend's bulkhead, and under a burst of abandoned requests a slow backend would keep receiving
//! work nobody wants (the failure this module was written to end). A waiter that joins a flight
//! gets the result of that flight only: never a result older than the flight started for it.
//!
//! **Bounds.** The map holds at most `max_flights` entries; beyond that, work runs uncoalesced
//! (correct, only less shared). Entries hold no reference back to the coalescer (the completion
//! and drop paths reach the map through a `Weak`), so no cycle keeps either alive.
//!
//! **Retention.** [`Retention::UntilDone`] removes an entry as soon as its flight completes (single
//! flight: results are never reused afterwards; caching is a separate layer).
//! [`Retention::ForLifetime`] keeps completed results for the coalescer's lifetime (the per-request
//! memo: a request that asks twice for the same answer gets the same answer).
//!
//! Written here rather than taken from a crate: the well-kept options (`async_singleflight`,
//! moka's `get_with`) either keep the flight running when every waiter is gone or cache results
//! after completion; this is `futures::Shared` plus a waiter count.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt, Shared};

/// Whether completed results stay in the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    /// Removed when the flight completes: later callers start a new flight.
    UntilDone,
    /// Kept until the coalescer is dropped: later callers get the same result.
    ForLifetime,
}

type SharedWork<V> = Shared<BoxFuture<'static, V>>;

struct Flight<V, M> {
    /// Tells this flight apart from a later one under the same key.
    id: u64,
    work: SharedWork<V>,
    /// Waiters not yet done (dropped or completed).
    waiters: usize,
    done: bool,
    /// What the leader left for its followers (e.g. its trace span).
    meta: M,
}

struct Flights<K, V, M> {
    map: HashMap<K, Flight<V, M>, rustc_hash::FxBuildHasher>,
    next_id: u64,
}

/// Identical work in flight, keyed by `K`, yielding `V` (cloned to every waiter), with `M` kept
/// from the leader for its followers.
pub struct Coalescer<K, V, M = ()> {
    flights: Arc<Mutex<Flights<K, V, M>>>,
    max_flights: usize,
    retention: Retention,
}

impl<K, V, M> Clone for Coalescer<K, V, M> {
    fn clone(&self) -> Self {
        Self {
            flights: self.flights.clone(),
            max_flights: self.max_flights,
            retention: self.retention,
        }
    }
}

/// The flights map never stays poisoned: every critical section leaves it consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// What [`Coalescer::join_after_first_poll`] gave: the result of work that finished on its first
/// poll, or the flight to wait for.
pub enum Started<K: Hash + Eq, V, M> {
    Done(V),
    Waiting(Joined<K, V, M>, Role<M>),
}

/// How a caller took part.
pub enum Role<M> {
    /// It started the flight.
    Leader,
    /// It joined a flight started by another caller, who left this.
    Follower(M),
    /// The map was full: the work runs for this caller alone.
    Alone,
}

impl<K, V, M> Coalescer<K, V, M>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
    M: Clone + Send + 'static,
{
    pub fn new(max_flights: usize, retention: Retention) -> Self {
        Self {
            flights: Arc::new(Mutex::new(Flights {
                map: HashMap::default(),
                next_id: 0,
            })),
            max_flights: max_flights.max(1),
            retention,
        }
    }

    /// Joins the flight for `key`, or starts one with the future `start` builds (under the map's
    /// lock: building must be cheap; the future first runs when a waiter polls it). `meta` is kept
    /// for followers when this caller leads.
    pub fn join<F>(&self, key: K, meta: M, start: impl FnOnce() -> F) -> (Joined<K, V, M>, Role<M>)
    where
        F: Future<Output = V> + Send + 'static,
    {
        self.join_boxed(key, meta, || start().boxed())
    }

    /// [`Self::join`] for work that often finishes at once (every answer it needs is in memory).
    /// Without a flight for `key` to join, the work is started and polled once, in this task,
    /// before it is registered: finished then, it never was in flight — nothing could have shared
    /// it — and costs no entry and no shared future ([`Started::Done`]). Only work that has to
    /// wait becomes a flight that others join. Were a flight for `key` registered meanwhile by
    /// another thread, this caller joins it, and its own started work is dropped (cancelled).
    pub async fn join_after_first_poll<F>(&self, key: K, meta: M, start: impl FnOnce() -> F) -> Started<K, V, M>
    where
        F: Future<Output = V> + Send + 'static,
    {
        if let Some((joined, leader)) = self.follow(&key) {
            return Started::Waiting(joined, Role::Follower(leader));
        }
        let mut work = start().boxed();
        if let Poll::Ready(done) = futures::poll!(&mut work) {
            return Started::Done(done);
        }
        let (joined, role) = self.join_boxed(key, meta, move || work);
        Started::Waiting(joined, role)
    }

    /// Joins the flight for `key` if there is one; the leader's `meta` with it.
    fn follow(&self, key: &K) -> Option<(Joined<K, V, M>, M)> {
        self.follow_in(&mut lock(&self.flights), key)
    }

    fn follow_in(&self, flights: &mut Flights<K, V, M>, key: &K) -> Option<(Joined<K, V, M>, M)> {
        let flight = flights.map.get_mut(key)?;
        flight.waiters += 1;
        let joined = Joined {
            work: flight.work.clone(),
            slot: Some(Slot {
                key: key.clone(),
                id: flight.id,
                flights: Arc::downgrade(&self.flights),
                retention: self.retention,
            }),
        };
        Some((joined, flight.meta.clone()))
    }

    fn join_boxed(&self, key: K, meta: M, start: impl FnOnce() -> BoxFuture<'static, V>) -> (Joined<K, V, M>, Role<M>) {
        let mut flights = lock(&self.flights);
        if let Some((joined, leader)) = self.follow_in(&mut flights, &key) {
            return (joined, Role::Follower(leader));
        }
        let work: SharedWork<V> = start().shared();
        if flights.map.len() >= self.max_flights {
            return (Joined { work, slot: None }, Role::Alone);
        }
        let id = flights.next_id;
        flights.next_id += 1;
        flights.map.insert(
            key.clone(),
            Flight {
                id,
                work: work.clone(),
                waiters: 1,
                done: false,
                meta,
            },
        );
        let joined = Joined {
            work,
            slot: Some(Slot {
                key,
                id,
                flights: Arc::downgrade(&self.flights),
                retention: self.retention,
            }),
        };
        (joined, Role::Leader)
    }

    /// Flights in the map (finished ones included under [`Retention::ForLifetime`]).
    pub fn len(&self) -> usize {
        lock(&self.flights).map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a waiter's flight is, to leave it when the waiter completes or is dropped.
struct Slot<K, V, M> {
    key: K,
    id: u64,
    flights: Weak<Mutex<Flights<K, V, M>>>,
    retention: Retention,
}

impl<K: Hash + Eq, V, M> Slot<K, V, M> {
    /// This waiter is done: `completed` when it saw the result, else it was dropped before.
    fn leave(&self, completed: bool) {
        let Some(flights) = self.flights.upgrade() else { return };
        let removed = {
            let mut flights = lock(&flights);
            let Some(flight) = flights.map.get_mut(&self.key).filter(|f| f.id == self.id) else {
                return;
            };
            flight.waiters = flight.waiters.saturating_sub(1);
            flight.done |= completed;
            let remove = match (flight.done, self.retention) {
                (true, Retention::UntilDone) => true,
                (true, Retention::ForLifetime) => false,
                // Abandoned by everyone before it finished: cancel it.
                (false, _) => flight.waiters == 0,
            };
            if remove {
                flights.map.remove(&self.key)
            } else {
                None
            }
        };
        // Dropped outside the lock: dropping the flight's future runs its destructors (permits,
        // connections), which must not run under the map's lock.
        drop(removed);
    }
}

/// One waiter of a flight: resolves to the flight's result; dropping it before that leaves the
/// flight (and cancels it if it was the last waiter).
#[must_use = "a flight is cancelled when its last waiter is dropped"]
pub struct Joined<K: Hash + Eq, V, M> {
    work: SharedWork<V>,
    slot: Option<Slot<K, V, M>>,
}

impl<K: Hash + Eq, V: Clone, M> Future for Joined<K, V, M> {
    type Output = V;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<V> {
        let out = std::task::ready!(self.work.poll_unpin(cx));
        if let Some(slot) = self.slot.take() {
            slot.leave(true);
        }
        Poll::Ready(out)
    }
}

impl<K: Hash + Eq, V, M> Drop for Joined<K, V, M> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.leave(false);
        }
    }
}

// `Shared` and the slot are both `Unpin`.
impl<K: Hash + Eq, V, M> Unpin for Joined<K, V, M> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Work that counts its starts, its completions and its drops.
    #[derive(Clone, Default)]
    struct Counts {
        started: Arc<AtomicUsize>,
        finished: Arc<AtomicUsize>,
        dropped: Arc<AtomicUsize>,
    }

    struct DropMark(Arc<AtomicUsize>);
    impl Drop for DropMark {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Counts {
        fn work(&self, value: u32, takes: Duration) -> impl Future<Output = u32> + Send + 'static {
            let c = self.clone();
            c.started.fetch_add(1, Ordering::SeqCst);
            async move {
                let _mark = DropMark(c.dropped.clone());
                tokio::time::sleep(takes).await;
                c.finished.fetch_add(1, Ordering::SeqCst);
                value
            }
        }
    }

    fn coalescer(retention: Retention) -> Coalescer<&'static str, u32> {
        Coalescer::new(16, retention)
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_flight() {
        let c = coalescer(Retention::UntilDone);
        let counts = Counts::default();
        let waiters: Vec<_> = (0..5)
            .map(|_| c.join("k", (), || counts.work(7, Duration::from_secs(1))).0)
            .collect();
        assert_eq!(futures::future::join_all(waiters).await, vec![7; 5]);
        assert_eq!(counts.started.load(Ordering::SeqCst), 1);
        assert!(c.is_empty(), "a finished flight leaves the map");
    }

    #[tokio::test(start_paused = true)]
    async fn all_waiters_dropped_before_completion_cancel_the_flight_and_the_next_caller_starts_anew() {
        let c = coalescer(Retention::UntilDone);
        let counts = Counts::default();
        let (a, _) = c.join("k", (), || counts.work(1, Duration::from_secs(10)));
        let (b, _) = c.join("k", (), || counts.work(1, Duration::from_secs(10)));
        // Both clients give up after a moment.
        let _ = tokio::time::timeout(Duration::from_millis(100), futures::future::join(a, b)).await;
        assert!(c.is_empty(), "the abandoned flight is gone");
        assert_eq!(
            counts.dropped.load(Ordering::SeqCst),
            1,
            "its work was dropped (cancelled)"
        );
        assert_eq!(counts.finished.load(Ordering::SeqCst), 0);
        // Much later, the same key starts a new flight and gets the new answer.
        tokio::time::sleep(Duration::from_secs(20)).await;
        let (again, role) = c.join("k", (), || counts.work(2, Duration::from_millis(10)));
        assert!(matches!(role, Role::Leader));
        assert_eq!(again.await, 2);
        assert_eq!(counts.started.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_dropped_while_others_wait_leaves_them_the_result() {
        let c = coalescer(Retention::UntilDone);
        let counts = Counts::default();
        let (leader, _) = c.join("k", (), || counts.work(3, Duration::from_secs(1)));
        let (quitter, _) = c.join("k", (), || counts.work(3, Duration::from_secs(1)));
        let (stayer, _) = c.join("k", (), || counts.work(3, Duration::from_secs(1)));
        drop(quitter);
        let (a, b) = futures::future::join(leader, stayer).await;
        assert_eq!((a, b), (3, 3));
        assert_eq!(counts.started.load(Ordering::SeqCst), 1);
        assert!(c.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_leader_dropped_leaves_a_follower_its_answer() {
        let c = coalescer(Retention::UntilDone);
        let counts = Counts::default();
        let (leader, _) = c.join("k", (), || counts.work(4, Duration::from_secs(1)));
        let (follower, role) = c.join("k", (), || counts.work(4, Duration::from_secs(1)));
        assert!(matches!(role, Role::Follower(())));
        // The leader polls once (the work starts), then its client gives up.
        let _ = tokio::time::timeout(Duration::from_millis(10), leader).await;
        assert_eq!(follower.await, 4);
        assert_eq!(counts.started.load(Ordering::SeqCst), 1);
        assert_eq!(counts.finished.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn work_finished_on_its_first_poll_is_never_registered() {
        let c = coalescer(Retention::UntilDone);
        let counts = Counts::default();
        let started = c
            .join_after_first_poll("k", (), || {
                counts.started.fetch_add(1, Ordering::SeqCst);
                async { 9 }
            })
            .await;
        assert!(matches!(started, Started::Done(9)));
        assert!(c.is_empty(), "nothing was in flight");
        assert_eq!(counts.started.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn work_that_waits_after_its_first_poll_becomes_a_flight_others_join() {
        let c = coalescer(Retention::UntilDone);
        let counts = Counts::default();
        let Started::Waiting(first, role) = c
            .join_after_first_poll("k", (), || counts.work(10, Duration::from_secs(1)))
            .await
        else {
            panic!("the work has to wait");
        };
        assert!(matches!(role, Role::Leader));
        assert_eq!(c.len(), 1, "registered once it had to wait");
        let Started::Waiting(second, role) = c
            .join_after_first_poll("k", (), || counts.work(11, Duration::from_secs(1)))
            .await
        else {
            panic!("a flight is in progress");
        };
        assert!(matches!(role, Role::Follower(())));
        assert_eq!(futures::future::join(first, second).await, (10, 10));
        assert_eq!(counts.started.load(Ordering::SeqCst), 1, "the follower started nothing");
        assert!(c.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_polled_flight_every_waiter_dropped_is_cancelled() {
        let c = coalescer(Retention::UntilDone);
        let counts = Counts::default();
        let Started::Waiting(only, _) = c
            .join_after_first_poll("k", (), || counts.work(12, Duration::from_secs(10)))
            .await
        else {
            panic!("the work has to wait");
        };
        drop(only);
        assert!(c.is_empty());
        assert_eq!(counts.dropped.load(Ordering::SeqCst), 1, "its work was dropped");
        assert_eq!(counts.finished.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn retained_results_are_reused_but_abandoned_flights_are_not() {
        let c = coalescer(Retention::ForLifetime);
        let counts = Counts::default();
        assert_eq!(c.join("k", (), || counts.work(5, Duration::from_secs(1))).0.await, 5);
        assert_eq!(c.join("k", (), || counts.work(6, Duration::from_secs(1))).0.await, 5);
        assert_eq!(
            counts.started.load(Ordering::SeqCst),
            1,
            "the finished result was reused"
        );
        let (abandoned, _) = c.join("other", (), || counts.work(7, Duration::from_secs(1)));
        drop(abandoned);
        assert_eq!(c.len(), 1, "only the finished flight stays");
        assert_eq!(
            c.join("other", (), || counts.work(8, Duration::from_secs(1))).0.await,
            8
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_map_runs_work_uncoalesced() {
        let c: Coalescer<u32, u32> = Coalescer::new(2, Retention::UntilDone);
        let counts = Counts::default();
        let joined: Vec<_> = (0..4)
            .map(|k| c.join(k, (), || counts.work(k, Duration::from_millis(5))))
            .collect();
        assert!(matches!(joined[2].1, Role::Alone));
        assert_eq!(c.len(), 2);
        let results = futures::future::join_all(joined.into_iter().map(|(j, _)| j)).await;
        assert_eq!(results, vec![0, 1, 2, 3]);
        assert!(c.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_leaders_note_reaches_its_followers() {
        let c: Coalescer<&str, u32, Option<u64>> = Coalescer::new(4, Retention::UntilDone);
        let (_a, _) = c.join("k", Some(42), || async { 1 });
        let (_b, role) = c.join("k", Some(7), || async { 1 });
        assert!(matches!(role, Role::Follower(Some(42))));
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_coalescer_does_not_disturb_its_waiters() {
        let c = coalescer(Retention::UntilDone);
        let counts = Counts::default();
        let (j, _) = c.join("k", (), || counts.work(9, Duration::from_millis(5)));
        drop(c);
        assert_eq!(j.await, 9);
    }
}
