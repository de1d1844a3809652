//! The settings a reload applies to the running process (see `reload`).
//! Whatever is not in `LiveSettings` needs a restart.

use std::time::Duration;

use serde::Serialize;

use super::{duration, ActorSettings, RateLimitSettings, Settings};

/// The live part of `Settings`, laid out as there: serialized, its dotted
/// keys and values are those of the same settings in `Settings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LiveSettings {
    pub actors: LiveActors,
    pub database: LiveDatabase,
    pub metrics: LiveMetrics,
    pub rate_limit: RateLimitSettings,
}

/// The mailboxes a reload resizes (`Gate::resize`); the embedder's is set
/// at start only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LiveActors {
    pub db: ActorSettings,
    pub cache: ActorSettings,
    pub llm: ActorSettings,
    pub reminders: ActorSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LiveDatabase {
    pub pool_max_size: u32,
    pub pool_min_idle: u32,
    #[serde(with = "duration::millis")]
    pub queue_timeout_ms: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LiveMetrics {
    #[serde(with = "duration::millis")]
    pub slow_request_threshold_ms: Duration,
}

impl Settings {
    pub fn live(&self) -> LiveSettings {
        let (a, d) = (&self.actors, &self.database);
        LiveSettings {
            actors: LiveActors {
                db: a.db,
                cache: a.cache,
                llm: a.llm,
                reminders: a.reminders,
            },
            database: LiveDatabase {
                pool_max_size: d.pool_max_size,
                pool_min_idle: d.pool_min_idle,
                queue_timeout_ms: d.queue_timeout_ms,
            },
            metrics: LiveMetrics {
                slow_request_threshold_ms: self.metrics.slow_request_threshold_ms,
            },
            rate_limit: self.rate_limit,
        }
    }

    /// The inverse of `live`: these settings with `live`'s values.
    pub fn set_live(&mut self, live: &LiveSettings) {
        let LiveSettings {
            actors,
            database,
            metrics,
            rate_limit,
        } = *live;
        let a = &mut self.actors;
        (a.db, a.cache, a.llm, a.reminders) =
            (actors.db, actors.cache, actors.llm, actors.reminders);
        let d = &mut self.database;
        (d.pool_max_size, d.pool_min_idle, d.queue_timeout_ms) = (
            database.pool_max_size,
            database.pool_min_idle,
            database.queue_timeout_ms,
        );
        self.metrics.slow_request_threshold_ms = metrics.slow_request_threshold_ms;
        self.rate_limit = rate_limit;
    }
}
