//! The ledger's consumer loop: take the next events from the bus, apply
//! each one exactly once (the store says whether it is new), then
//! acknowledge it. After a Redis error the loop backs off, reloads its
//! aggregates from Redis (an apply may have succeeded unseen) and reads
//! its unacknowledged entries again.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use redis::RedisResult;

use super::state::Aggregates;
use super::store::Store;
use super::Ledger;
use crate::common::bus::{Consumer, Delivery};

const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Runs until aborted.
pub async fn run(ledger: Arc<Ledger>, mut consumer: Consumer, mut store: Store, seed: Aggregates) {
    let mut pause = RETRY_MIN;
    loop {
        match next(&ledger, &mut consumer, &mut store).await {
            Ok(()) => pause = RETRY_MIN,
            Err(e) => {
                tracing::warn!("ledger consumer: {e}; retrying in {pause:?}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RETRY_MAX);
                consumer.rewind();
                match store.reload(&seed).await {
                    Ok(Some(fresh)) => ledger.replace(fresh),
                    Ok(None) => {}
                    Err(e) => tracing::warn!("ledger consumer: cannot reload the aggregates: {e}"),
                }
            }
        }
    }
}

/// Handles one batch.
async fn next(ledger: &Ledger, consumer: &mut Consumer, store: &mut Store) -> RedisResult<()> {
    for delivery in consumer.next_batch().await? {
        handle(ledger, consumer, store, &delivery).await?;
    }
    Ok(())
}

async fn handle(ledger: &Ledger, consumer: &mut Consumer, store: &mut Store, delivery: &Delivery) -> RedisResult<()> {
    match &delivery.event {
        Ok(event) => {
            let delta = ledger.baseline.delta(event);
            if store.apply(&delta).await? {
                ledger.apply(&delta);
            } else {
                ledger.duplicates.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(event = %event.event_id, "already applied; skipping");
            }
        }
        Err(reason) => {
            ledger.unreadable.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("skipping a stream entry that is not an event: {reason}");
        }
    }
    consumer.ack(delivery).await
}
