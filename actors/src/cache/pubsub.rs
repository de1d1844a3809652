//! Listens on the invalidation channel and drops the named keys from this
//! instance's L1. After a reconnect the whole L1 is dropped: messages sent
//! while disconnected are lost, and the L1 is only a few seconds deep anyway.

use std::sync::Weak;
use std::time::Duration;

use futures_util::StreamExt;

use super::CacheShared;

pub(super) fn spawn_listener(url: String, shared: Weak<CacheShared>) {
    actix::spawn(async move {
        let Ok(client) = redis::Client::open(url.as_str()) else {
            return;
        };
        loop {
            let Some(channel) = shared.upgrade().map(|s| s.channel.clone()) else {
                return;
            };
            if let Ok(mut pubsub) = client.get_async_pubsub().await {
                if pubsub.subscribe(&channel).await.is_ok() {
                    if let Some(s) = shared.upgrade() {
                        if let Some(l1) = &s.l1 {
                            l1.invalidate_all();
                        }
                    }
                    let mut messages = pubsub.into_on_message();
                    while let Some(msg) = messages.next().await {
                        let Some(s) = shared.upgrade() else { return };
                        if let Ok(payload) = msg.get_payload::<String>() {
                            let keys: Vec<String> = payload.lines().map(str::to_owned).collect();
                            s.evict_local(&keys).await;
                        }
                    }
                }
            }
            if shared.strong_count() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
}
