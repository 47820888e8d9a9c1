//! The last response written for a compiled query, reused while it would be written again from
//! the very same backend answers. Two checks reuse it:
//!
//! - **After the fetch**, by the answers' addresses. The write phase is a pure function of the
//!   compiled operation and the answers it reads (for operations without `@auth`, whose checks
//!   read the caller's identity). With a warm cache, the same query keeps getting the same
//!   `Arc<Payload>`s from it, so writing them again would give the same bytes: the answers are
//!   compared by address instead, and the bytes reused. Nothing about freshness changes: a new
//!   answer (a refresh, an invalidation, another user's private entry, a different page) is
//!   another address, and the response is written anew.
//! - **Before the fetch**, when nothing the response was made from can have changed ([`Known`]).
//!   That is so when every call of the execution that wrote it was answered by a fresh entry of
//!   the memory cache; the request's inputs (its variables, the headers templates read or
//!   backends receive, the caller's claims) are the same now; the cache has not changed since
//!   those answers were looked up (its change count, [`CacheStore::changes`], reads the same:
//!   any entry stored, invalidated or evicted moves it on); and the first of those answers is
//!   still fresh. The calls would then find exactly those entries again, so they are not made:
//!   each is counted as the cache hit it would have been, and the bytes are reused. A mutation's
//!   invalidation, a refresh, or an answer past its TTL sends the next request through the fetch.
//!
//! The memo holds the answers as [`Weak`] references: it keeps no answer's data alive after the
//! cache drops it, and an address cannot be reused by another answer while the weak reference
//! holds its allocation. Only clean responses (no error) of at most [`MAX_BYTES`] are kept, one
//! per compiled operation, and all of them together (with the variables they were written for)
//! hold at most [`TOTAL_BYTES`].
//!
//! [`CacheStore::changes`]: crate::backend::cache::CacheStore::changes

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::backend::Payload;

/// Largest response kept (at least 128 fit in [`TOTAL_BYTES`]).
pub const MAX_BYTES: usize = 64 << 10;

/// Most bytes of responses kept by all memos of the process together (a document can have up
/// to 16 compiled operations, one per set of `@skip`/`@include` values, and the plan cache holds
/// `plan_cache_size` documents): past it, responses are not kept until others are dropped.
pub const TOTAL_BYTES: usize = 8 << 20;

/// Bytes held by all memos now.
static HELD: AtomicUsize = AtomicUsize::new(0);

/// One compiled operation's last response.
#[derive(Default)]
pub struct WriteMemo {
    last: ArcSwapOption<Entry>,
}

struct Entry {
    /// The answers the response was written from, slot by slot (`None`: no call was made).
    answers: Vec<Option<Weak<Payload>>>,
    body: Bytes,
    known: Option<Known>,
    /// What this entry counts in [`HELD`].
    held: usize,
}

impl Drop for Entry {
    fn drop(&mut self) {
        HELD.fetch_sub(self.held, Ordering::Relaxed);
    }
}

/// A response written from fresh memory-cache answers only: what tells, before anything is
/// fetched, that the same request would find them again (see the module's text).
pub struct Known {
    /// The cache's change count, read before the answers were looked up.
    pub changes: u64,
    /// When the first of the answers stops being fresh.
    pub fresh_until: Instant,
    /// How many calls the answers stand for (each a cache hit).
    pub hits: u32,
    pub inputs: Inputs,
}

/// What a request gives an execution besides the cache: its variables, the headers its answers
/// may depend on ([`super::input_header_names`]), and the caller's claims.
pub struct Inputs {
    variables: Map<String, Value>,
    headers: http::HeaderMap,
    claims: Option<Arc<Value>>,
}

impl Inputs {
    /// `headers`: the request's headers named by [`super::input_header_names`] (see
    /// [`super::input_headers`]).
    pub fn new(variables: &Map<String, Value>, headers: http::HeaderMap, claims: Option<&Arc<Value>>) -> Self {
        Self {
            variables: variables.clone(),
            headers,
            claims: claims.cloned(),
        }
    }

    /// The same inputs: `names` are the headers compared ([`super::input_header_names`]).
    fn same<'a>(
        &self,
        mut names: impl Iterator<Item = &'a str>,
        variables: &Map<String, Value>,
        headers: &http::HeaderMap,
        claims: Option<&Arc<Value>>,
    ) -> bool {
        let same_claims = match (&self.claims, claims) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
            _ => false,
        };
        same_claims
            && self.variables == *variables
            && names.all(|name| headers.get_all(name).iter().eq(self.headers.get_all(name).iter()))
    }

    /// Memory held beyond the struct (the variables; headers are small and bounded).
    fn weight(&self) -> usize {
        crate::backend::payload::map_heap_size(&self.variables)
    }
}

impl std::fmt::Debug for WriteMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteMemo")
    }
}

impl WriteMemo {
    /// The response written last, if it was written from exactly `answers`; with the cache's
    /// change count it is [`Known`] at, if it is.
    pub fn get(&self, answers: &[Option<&Arc<Payload>>]) -> Option<(Bytes, Option<u64>)> {
        let guard = self.last.load();
        let entry = guard.as_ref()?;
        let same = entry.answers.len() == answers.len()
            && entry.answers.iter().zip(answers).all(|(old, new)| match (old, new) {
                (None, None) => true,
                (Some(old), Some(new)) => std::ptr::eq(old.as_ptr(), Arc::as_ptr(new)),
                _ => false,
            });
        same.then(|| (entry.body.clone(), entry.known.as_ref().map(|k| k.changes)))
    }

    /// The response written last and the cache hits it stands for, when it is [`Known`] and
    /// still holds: the cache's change count is still `changes`, its first answer is still
    /// fresh, and the request's inputs are the same.
    pub fn known<'a>(
        &self,
        names: impl Iterator<Item = &'a str>,
        changes: u64,
        variables: &Map<String, Value>,
        headers: &http::HeaderMap,
        claims: Option<&Arc<Value>>,
    ) -> Option<(Bytes, u32)> {
        let guard = self.last.load();
        let entry = guard.as_ref()?;
        let known = entry.known.as_ref()?;
        let holds = known.changes == changes
            && Instant::now() < known.fresh_until
            && known.inputs.same(names, variables, headers, claims);
        holds.then(|| (entry.body.clone(), known.hits))
    }

    /// Remembers `body` as written from `answers` (unless it is too large to keep), and what
    /// makes it [`Known`] when it is.
    pub fn put(&self, answers: &[Option<&Arc<Payload>>], body: &Bytes, known: Option<Known>) {
        if body.len() > MAX_BYTES {
            return;
        }
        let held = body.len() + known.as_ref().map_or(0, |k| k.inputs.weight());
        if HELD.fetch_add(held, Ordering::Relaxed) + held > TOTAL_BYTES {
            HELD.fetch_sub(held, Ordering::Relaxed);
            return;
        }
        let answers = answers.iter().map(|a| a.map(Arc::downgrade)).collect();
        self.last.store(Some(Arc::new(Entry {
            answers,
            body: body.clone(),
            known,
            held,
        })));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(v: serde_json::Value) -> Arc<Payload> {
        Arc::new(Payload::new(v))
    }

    #[test]
    fn a_response_is_reused_only_for_the_same_answers() {
        let memo = WriteMemo::default();
        let a = payload(serde_json::json!({"id": 1}));
        let b = payload(serde_json::json!({"id": 1}));
        assert_eq!(memo.get(&[Some(&a), None]), None);
        memo.put(&[Some(&a), None], &Bytes::from_static(b"{\"data\":1}"), None);
        assert_eq!(
            memo.get(&[Some(&a), None]),
            Some((Bytes::from_static(b"{\"data\":1}"), None))
        );
        // Equal content is not enough: another answer is another address.
        assert_eq!(memo.get(&[Some(&b), None]), None);
        assert_eq!(memo.get(&[Some(&a), Some(&a)]), None);
        assert_eq!(memo.get(&[Some(&a)]), None);
    }

    #[test]
    fn the_memo_keeps_no_answer_alive_and_no_large_response() {
        let memo = WriteMemo::default();
        let a = payload(serde_json::json!({"id": 1}));
        memo.put(&[Some(&a)], &Bytes::from_static(b"x"), None);
        let weak = Arc::downgrade(&a);
        drop(a);
        assert!(weak.upgrade().is_none(), "dropped with the cache's reference");
        let c = payload(serde_json::json!({}));
        memo.put(&[Some(&c)], &Bytes::from(vec![b' '; MAX_BYTES + 1]), None);
        assert_eq!(memo.get(&[Some(&c)]), None);
    }

    #[test]
    fn a_known_response_is_reused_only_while_the_cache_is_unchanged_fresh_and_the_inputs_the_same() {
        let memo = WriteMemo::default();
        let a = payload(serde_json::json!({"id": 1}));
        let body = Bytes::from_static(b"{\"data\":1}");
        let vars: Map<String, Value> = serde_json::from_value(serde_json::json!({"id": "C001"})).expect("object");
        let mut headers = http::HeaderMap::new();
        headers.insert("x-tenant", http::HeaderValue::from_static("acme"));
        let claims = Arc::new(serde_json::json!({"sub": "u1"}));
        let names = || ["x-tenant"].into_iter();
        let known = |changes, fresh_for| Known {
            changes,
            fresh_until: Instant::now() + fresh_for,
            hits: 2,
            inputs: Inputs::new(&vars, headers.clone(), Some(&claims)),
        };
        // Not known: only the after-the-fetch check reuses it.
        memo.put(&[Some(&a)], &body, None);
        assert_eq!(memo.known(names(), 7, &vars, &headers, Some(&claims)), None);

        memo.put(&[Some(&a)], &body, Some(known(7, std::time::Duration::from_secs(60))));
        assert_eq!(
            memo.known(names(), 7, &vars, &headers, Some(&claims)),
            Some((body.clone(), 2))
        );
        assert_eq!(memo.get(&[Some(&a)]), Some((body.clone(), Some(7))));
        // The cache changed since (an entry stored, invalidated or evicted).
        assert_eq!(memo.known(names(), 8, &vars, &headers, Some(&claims)), None);
        // Other variables, another value of a header that matters, another caller.
        let other: Map<String, Value> = serde_json::from_value(serde_json::json!({"id": "C002"})).expect("object");
        assert_eq!(memo.known(names(), 7, &other, &headers, Some(&claims)), None);
        let mut tenant = headers.clone();
        tenant.append("x-tenant", http::HeaderValue::from_static("other"));
        assert_eq!(memo.known(names(), 7, &vars, &tenant, Some(&claims)), None);
        assert_eq!(
            memo.known(names(), 7, &vars, &http::HeaderMap::new(), Some(&claims)),
            None
        );
        let someone = Arc::new(serde_json::json!({"sub": "u2"}));
        assert_eq!(memo.known(names(), 7, &vars, &headers, Some(&someone)), None);
        assert_eq!(memo.known(names(), 7, &vars, &headers, None), None);
        // The same claims in another allocation are the same caller; a header that does not
        // matter changes nothing.
        let again = Arc::new(serde_json::json!({"sub": "u1"}));
        let mut unrelated = headers.clone();
        unrelated.insert("user-agent", http::HeaderValue::from_static("curl"));
        assert!(memo.known(names(), 7, &vars, &unrelated, Some(&again)).is_some());
        // Its first answer is no longer fresh.
        memo.put(&[Some(&a)], &body, Some(known(7, std::time::Duration::ZERO)));
        assert_eq!(memo.known(names(), 7, &vars, &headers, Some(&claims)), None);
    }
}
