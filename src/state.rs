//! What handlers get: the actor handles of their own worker thread and the
//! process-wide shared part.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actors::cache::{CacheHandle, CacheShared};
use actors::db::{DbHandle, DbShared};
use actors::gate::Gate;
use actors::llm::{LlmHandle, LlmShared};
use actors::metrics::MetricsHandle;
use actors::reminders::ReminderGates;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Settings;
use crate::lifecycle::Lifecycle;

use crate::connections::Connections;
use crate::middleware::auth::ApiKeys;
use crate::middleware::rate_limit::RateLimiter;

/// Built once per process.
pub struct Shared {
    /// As loaded at start-up; what needs a restart to change is read here.
    pub settings: Settings,
    /// What is in effect: `settings` plus the changes applied live since
    /// (see `reload`). Held across a whole reload, so reloads never interleave.
    pub(crate) running: Mutex<Settings>,
    pub api_keys: ApiKeys,
    pub db: Arc<DbShared>,
    pub cache: Arc<CacheShared>,
    pub llm: Arc<LlmShared>,
    pub metrics: MetricsHandle,
    pub prometheus: PrometheusHandle,
    /// The reminder scheduler's gates (its work, its reserved database
    /// admission), for metrics and reloads.
    pub reminders: ReminderGates,
    /// Draining after SIGTERM, and the deadline to answer what is left.
    pub lifecycle: Arc<Lifecycle>,
    /// Open client connections against the configured cap.
    pub connections: Arc<Connections>,
    slow_threshold_ms: AtomicU64,
    /// Per-key budgets (live limits, the local fallback).
    pub rate_limiter: Arc<RateLimiter>,
}

impl Shared {
    pub fn new(
        settings: Settings,
        db: Arc<DbShared>,
        cache: Arc<CacheShared>,
        llm: Arc<LlmShared>,
        metrics: MetricsHandle,
        prometheus: PrometheusHandle,
    ) -> Self {
        let api_keys = ApiKeys::with_admins(settings.api_keys(), settings.admin_api_keys());
        let slow = settings.slow_request_threshold().as_millis() as u64;
        let settings_rate_limit = settings.rate_limit;
        let reminders = ReminderGates::new(settings.actors.reminders.mailbox_capacity);
        Self {
            running: Mutex::new(settings.clone()),
            settings,
            api_keys,
            db,
            cache,
            llm,
            metrics,
            prometheus,
            slow_threshold_ms: AtomicU64::new(slow),
            reminders,
            lifecycle: Arc::default(),

            connections: Arc::new(Connections::default()),

            rate_limiter: Arc::new(RateLimiter::new(&settings_rate_limit)),
        }
    }

    pub fn slow_threshold(&self) -> Duration {
        Duration::from_millis(self.slow_threshold_ms())
    }

    pub fn slow_threshold_ms(&self) -> u64 {
        self.slow_threshold_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn set_slow_threshold_ms(&self, ms: u64) {
        self.slow_threshold_ms.store(ms, Ordering::Relaxed);
    }

    /// Every actor family's admission gate, as metrics name them (the
    /// embedder's only with the local model; the metrics actor has none).
    pub fn gates(&self) -> impl Iterator<Item = &Gate> {
        [
            self.db.gate(),
            self.cache.gate(),
            self.llm.gate(),
            &self.reminders.work,
            &self.reminders.db,
        ]
        .into_iter()
        .chain(self.llm.local_embedder().map(|e| e.gate()))
    }
}

/// One per HTTP worker: its actors run on the worker's own thread, so a
/// request's messages never cross threads.
pub struct AppState {
    pub db: DbHandle,
    pub cache: CacheHandle,
    pub llm: LlmHandle,
    pub metrics: MetricsHandle,
    shared: Arc<Shared>,
}

impl AppState {
    /// Starts this worker's supervised actors on the current arbiter.
    pub fn for_this_worker(shared: Arc<Shared>) -> Self {
        Self {
            db: DbHandle::start(Arc::clone(&shared.db)),
            cache: CacheHandle::start(Arc::clone(&shared.cache)),
            llm: LlmHandle::start(Arc::clone(&shared.llm)),
            metrics: shared.metrics.clone(),
            shared,
        }
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}
