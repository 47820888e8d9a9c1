//! Request statistics: how many business requests each endpoint template got.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The `/_stats` document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatsSnapshot {
    /// All business requests since the last reset.
    pub total: u64,
    /// Per `METHOD /route/{template}`.
    pub endpoints: BTreeMap<String, u64>,
}

/// Live counters of one service.
#[derive(Debug, Default)]
pub struct Stats {
    inner: Mutex<StatsSnapshot>,
}

impl Stats {
    /// Counts one request to `key` (`"GET /customers/{id}"`).
    pub fn record(&self, key: String) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.total += 1;
        *inner.endpoints.entry(key).or_insert(0) += 1;
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn reset(&self) {
        *self.inner.lock().unwrap_or_else(PoisonError::into_inner) = StatsSnapshot::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_key_and_resets() {
        let stats = Stats::default();
        stats.record("GET /a".into());
        stats.record("GET /a".into());
        stats.record("POST /b".into());
        let snap = stats.snapshot();
        assert_eq!(snap.total, 3);
        assert_eq!(snap.endpoints.get("GET /a"), Some(&2));
        stats.reset();
        assert_eq!(stats.snapshot(), StatsSnapshot::default());
    }
}
