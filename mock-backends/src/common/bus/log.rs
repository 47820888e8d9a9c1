//! The in-process event log: an append-only list of [`TransferEvent`]s with
//! a notifier. It is the transfers service's outbox: in-process consumers
//! read it directly by offset, the Redis relay copies it to a stream. Nothing
//! is ever dropped from it, so no reader can miss an event.

use std::sync::{PoisonError, RwLock};

use tokio::sync::watch;

use crate::common::events::TransferEvent;

/// Append-only, ordered, lossless.
#[derive(Debug)]
pub struct EventLog {
    events: RwLock<Vec<TransferEvent>>,
    /// The number of events, published after every append.
    len: watch::Sender<usize>,
}

impl Default for EventLog {
    fn default() -> Self {
        Self {
            events: RwLock::new(Vec::new()),
            len: watch::channel(0).0,
        }
    }
}

impl EventLog {
    /// Appends the event `make` builds from its 1-based sequence number and
    /// wakes every waiting reader. Returns a copy of the event.
    pub fn append(&self, make: impl FnOnce(u64) -> TransferEvent) -> TransferEvent {
        let mut events = self.events.write().unwrap_or_else(PoisonError::into_inner);
        let event = make(events.len() as u64 + 1);
        events.push(event.clone());
        let len = events.len();
        drop(events);
        self.len.send_replace(len);
        event
    }

    /// At most `max` events from offset `from` (0-based), oldest first.
    pub fn since(&self, from: usize, max: usize) -> Vec<TransferEvent> {
        let events = self.events.read().unwrap_or_else(PoisonError::into_inner);
        events.iter().skip(from).take(max).cloned().collect()
    }

    /// The number of events appended so far.
    pub fn len(&self) -> usize {
        *self.len.borrow()
    }

    /// True before the first append.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until the log holds more than `offset` events.
    pub async fn wait_beyond(&self, offset: usize) {
        let mut rx = self.len.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = rx.wait_for(|len| *len > offset).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::events::{event_id, TransferEventType};
    use crate::common::models::{Transfer, TransferStatus};

    fn event(n: u64) -> TransferEvent {
        TransferEvent {
            event_id: event_id(n),
            event_type: TransferEventType::TransferCompleted,
            transfer: Transfer {
                id: format!("T{n:05}"),
                from_account: "A0001".into(),
                to_account: "A0002".into(),
                to_bank: "Mosaic Bank".into(),
                amount: 1,
                status: TransferStatus::Completed,
                created_at: String::new(),
                failure_reason: None,
            },
            at: String::new(),
            external_calls: 0,
        }
    }

    #[tokio::test]
    async fn readers_see_every_event_in_order() {
        let log = std::sync::Arc::new(EventLog::default());
        let waiter = tokio::spawn({
            let log = log.clone();
            async move {
                log.wait_beyond(1).await;
                log.since(0, 10)
            }
        });
        log.append(event);
        log.append(event);
        let seen = tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await;
        let ids: Vec<String> = seen
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.event_id)
            .collect();
        assert_eq!(ids, ["E000001", "E000002"]);
        assert_eq!(log.since(1, 10).len(), 1);
        assert_eq!(log.len(), 2);
    }
}
