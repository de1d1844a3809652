//! Background clean-up: `idempotency_keys` rows past their 24 h window
//! each hold a whole response body and were never removed. Every instance
//! runs this loop; an advisory lock lets one purge at a time.

use std::sync::Arc;

use actors::db::ops::PurgeIdempotencyKeys;
use actors::db::{DbHandle, DbShared};

use crate::config::HousekeepingSettings;

/// Starts the loop on the current arbiter: every `interval_ms`, delete
/// expired keys in batches of `purge_batch` until a batch comes back short.
pub fn spawn(settings: HousekeepingSettings, db: Arc<DbShared>) {
    if !settings.enabled {
        return;
    }
    let db = DbHandle::start(db);
    actix::spawn(async move {
        let mut tick = tokio::time::interval(settings.interval_ms);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            purge(&db, i64::from(settings.purge_batch)).await;
        }
    });
}

/// One round; short transactions, so claims never wait long on it.
pub async fn purge(db: &DbHandle, batch: i64) -> u64 {
    let mut total = 0;
    loop {
        match db.run(PurgeIdempotencyKeys { batch }).await {
            Ok(Some(n)) => {
                total += n;
                metrics::counter!("health_agent_idempotency_keys_purged_total").increment(n);
                if n < batch as u64 {
                    break;
                }
            }
            // Another instance holds the lock this round.
            Ok(None) => break,
            Err(e) => {
                metrics::counter!("health_agent_housekeeping_errors_total").increment(1);
                tracing::warn!(error = %e, "idempotency key purge failed");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(purged = total, "expired idempotency keys purged");
    }
    total
}
