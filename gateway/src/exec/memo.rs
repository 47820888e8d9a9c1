//! The last response written for a compiled query, reused while it would be written again from
//! the very same backend answers.
//!
//! The write phase is a pure function of the compiled operation and the answers it reads (for
//! operations without `@auth`, whose checks read the caller's identity). With a warm cache, the
//! same query keeps getting the same `Arc<Payload>`s from it, so writing them again would give the
//! same bytes: the answers are compared by address instead, and the bytes reused. Nothing about
//! freshness changes: a new answer (a refresh, an invalidation, another user's private entry, a
//! different page) is another address, and the response is written anew.
//!
//! The memo holds the answers as [`Weak`] references: it keeps no answer's data alive after the
//! cache drops it, and an address cannot be reused by another answer while the weak reference
//! holds its allocation. Only clean responses (no error) of at most [`MAX_BYTES`] are kept, one
//! per compiled operation, and all of them together hold at most [`TOTAL_BYTES`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use arc_swap::ArcSwapOption;
use bytes::Bytes;

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
}

impl Drop for Entry {
    fn drop(&mut self) {
        HELD.fetch_sub(self.body.len(), Ordering::Relaxed);
    }
}

impl std::fmt::Debug for WriteMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteMemo")
    }
}

impl WriteMemo {
    /// The response written last, if it was written from exactly `answers`.
    pub fn get(&self, answers: &[Option<&Arc<Payload>>]) -> Option<Bytes> {
        let guard = self.last.load();
        let entry = guard.as_ref()?;
        let same = entry.answers.len() == answers.len()
            && entry.answers.iter().zip(answers).all(|(old, new)| match (old, new) {
                (None, None) => true,
                (Some(old), Some(new)) => std::ptr::eq(old.as_ptr(), Arc::as_ptr(new)),
                _ => false,
            });
        same.then(|| entry.body.clone())
    }

    /// Remembers `body` as written from `answers` (unless it is too large to keep).
    pub fn put(&self, answers: &[Option<&Arc<Payload>>], body: &Bytes) {
        if body.len() > MAX_BYTES {
            return;
        }
        if HELD.fetch_add(body.len(), Ordering::Relaxed) + body.len() > TOTAL_BYTES {
            HELD.fetch_sub(body.len(), Ordering::Relaxed);
            return;
        }
        let answers = answers.iter().map(|a| a.map(Arc::downgrade)).collect();
        self.last.store(Some(Arc::new(Entry {
            answers,
            body: body.clone(),
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
        memo.put(&[Some(&a), None], &Bytes::from_static(b"{\"data\":1}"));
        assert_eq!(memo.get(&[Some(&a), None]), Some(Bytes::from_static(b"{\"data\":1}")));
        // Equal content is not enough: another answer is another address.
        assert_eq!(memo.get(&[Some(&b), None]), None);
        assert_eq!(memo.get(&[Some(&a), Some(&a)]), None);
        assert_eq!(memo.get(&[Some(&a)]), None);
    }

    #[test]
    fn the_memo_keeps_no_answer_alive_and_no_large_response() {
        let memo = WriteMemo::default();
        let a = payload(serde_json::json!({"id": 1}));
        memo.put(&[Some(&a)], &Bytes::from_static(b"x"));
        let weak = Arc::downgrade(&a);
        drop(a);
        assert!(weak.upgrade().is_none(), "dropped with the cache's reference");
        let c = payload(serde_json::json!({}));
        memo.put(&[Some(&c)], &Bytes::from(vec![b' '; MAX_BYTES + 1]));
        assert_eq!(memo.get(&[Some(&c)]), None);
    }
}
