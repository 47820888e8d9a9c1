//! While a breaker is OPEN, poll the backend's health endpoint; the first 2xx moves it to
//! HALF_OPEN, so recovery is noticed within one probe interval without any user request.

use std::sync::Arc;
use std::time::Duration;

use super::{Breaker, BreakerState};

/// Where and how often to probe.
#[derive(Clone, Debug)]
pub struct ProbeSettings {
    /// Absolute health URLs (one per instance; any answering 2xx counts).
    pub urls: Vec<String>,
    pub interval: Duration,
    pub client: reqwest::Client,
}

pub(super) async fn run(breaker: &Arc<Breaker>, settings: &ProbeSettings) {
    loop {
        tokio::time::sleep(settings.interval).await;
        if breaker.state() != BreakerState::Open {
            return;
        }
        for url in &settings.urls {
            let answer = settings
                .client
                .get(url)
                .timeout(settings.interval.max(Duration::from_millis(100)))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                tracing::info!(backend = %breaker.backend, "health probe answered");
                breaker.probe_succeeded();
                return;
            }
        }
    }
}
