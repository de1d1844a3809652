//! The actors' configurations, built from the settings they read.

use std::path::PathBuf;

use actors::cache::CacheConfig;
use actors::db::DbConfig;
use actors::embedder::EmbedderConfig;
use actors::llm::{LlmConfig, ProviderConfig, ProviderKind};
use actors::reminders::ReminderConfig;

use super::{EmbeddingProvider, Settings};

impl Settings {
    pub fn db_config(&self) -> DbConfig {
        let d = &self.database;
        DbConfig {
            url: d.url.expose().to_owned(),
            replica_url: Some(d.replica_url.expose().to_owned()).filter(|u| !u.is_empty()),
            pool_max_size: d.pool_max_size,
            pool_min_idle: d.pool_min_idle,
            connection_timeout: d.connection_timeout_ms,
            queue_timeout: d.queue_timeout_ms,
            query_timeout: d.query_timeout_ms,
            test_on_checkout: d.test_on_checkout,
            mailbox_capacity: self.actors.db.mailbox_capacity,
            probe_interval: d.probe_interval_ms,
            probe_timeout: d.probe_timeout_ms,
            replica_max_lag: d.replica_max_lag_ms,
        }
    }

    pub fn cache_config(&self) -> CacheConfig {
        let c = &self.cache;
        CacheConfig {
            enabled: c.enabled,
            url: c.url.expose().to_owned(),
            namespace: c.namespace.clone(),
            pool_max_size: c.pool_max_size,
            op_timeout: c.op_timeout_ms,
            mailbox_capacity: self.actors.cache.mailbox_capacity,
            l1_ttl: c.l1_ttl_ms,
            l1_max_entries: c.l1_max_entries,
            circuit_failures: c.circuit_failures,
            circuit_open: c.circuit_open_ms,
        }
    }

    pub fn reminder_config(&self) -> ReminderConfig {
        let r = &self.reminders;
        ReminderConfig {
            poll_interval: r.poll_interval_ms,
            webhook_url: Some(r.webhook_url.expose().to_owned()).filter(|u| !u.is_empty()),
        }
    }

    pub fn llm_config(&self) -> LlmConfig {
        let l = &self.llm;
        let provider = |kind: ProviderKind, model: &str, url: &str| ProviderConfig {
            kind,
            model: model.to_owned(),
            base_url: url.to_owned(),
            api_key: match kind {
                ProviderKind::Offline => String::new(),
                _ => l.api_key_for(kind).expose().to_owned(),
            },
        };
        let embeddings = l.embedding_kind();
        LlmConfig {
            timeout: l.timeout_ms,
            mailbox_capacity: self.actors.llm.mailbox_capacity,
            primary: provider(l.chat_kind(), &l.model, l.base_url.expose()),
            fallback: l
                .fallback_provider
                .map(|kind| provider(kind, &l.fallback_model, l.fallback_base_url.expose())),
            embeddings: embeddings
                .remote()
                .map(|kind| provider(kind, &l.embedding_model, l.embedding_base_url.expose())),
            local_model_dir: (embeddings == EmbeddingProvider::Local)
                .then(|| PathBuf::from(&l.local_model_dir)),
            embedder: EmbedderConfig {
                threads: l.embedder_threads,
                mailbox_capacity: self.actors.embedder.mailbox_capacity,
                max_batch: l.embedder_max_batch,
            },
            embedding_dimensions: l.embedding_dimensions,
            retry_budget: l.retry_budget_ms,
            circuit_failures: l.circuit_failures,
            circuit_open: l.circuit_open_ms,
        }
    }
}
