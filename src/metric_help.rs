//! The HELP text of every Prometheus metric the server exports, in one
//! place: `# HELP` lines come from here, and a test fails for any exported
//! metric missing from this table.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

/// Registers the descriptions with the installed recorder.
pub fn describe() {
    for (name, help) in COUNTERS {
        describe_counter!(*name, Unit::Count, *help);
    }
    for (name, unit, help) in GAUGES {
        describe_gauge!(*name, *unit, *help);
    }
    for (name, unit, help) in HISTOGRAMS {
        describe_histogram!(*name, *unit, *help);
    }
}

const COUNTERS: &[(&str, &str)] = &[
    ("health_agent_requests_total", "HTTP requests answered, by method, route pattern and status."),
    ("health_agent_slow_requests_total", "Requests that took longer than api.slow_request_threshold_ms (each also logs SLOW REQUEST)."),
    ("health_agent_actor_rejected_total", "Messages an actor family refused with 503: its gate was full, or (db) the connection queue was past its target."),
    ("health_agent_actor_restarts_total", "Actor restarts by its supervisor."),
    ("health_agent_db_connection_errors_total", "Failed attempts to open a PostgreSQL connection for a pool."),
    ("health_agent_db_replica_fallback_reads_total", "Reads served by the primary because the replica was down or too far behind."),
    ("health_agent_db_replica_fallbacks_total", "Times the replica became unusable and reads moved to the primary."),
    ("health_agent_housekeeping_errors_total", "Failed Idempotency-Key purges."),
    ("health_agent_idempotency_keys_purged_total", "Expired Idempotency-Key records deleted."),
    ("health_agent_rate_limit_decisions_total", "Rate-limit decisions, by budget and outcome (allowed or limited)."),
    ("health_agent_rate_limit_fallback_total", "Rate-limit checks decided by the local bucket because Redis did not answer in time."),
    ("health_agent_reminder_webhooks_total", "Reminder webhook deliveries, by status."),
    ("health_agent_reminders_fired_total", "Reminders fired (once across all instances)."),
    ("health_agent_shutdown_answered_total", "Requests still running at the drain deadline, answered 503 + Retry-After."),
    ("health_agent_shutdown_turned_away_total", "Requests a draining instance answered 503 so that the balancer retries them elsewhere."),
];

const GAUGES: &[(&str, Unit, &str)] = &[
    (
        "health_agent_actor_in_flight",
        Unit::Count,
        "Messages an actor family is serving now.",
    ),
    (
        "health_agent_actor_mailbox_capacity",
        Unit::Count,
        "An actor family's gate: messages admitted at most (queued + in flight).",
    ),
    (
        "health_agent_actor_mailbox_depth",
        Unit::Count,
        "Messages admitted and waiting in an actor family's mailboxes.",
    ),
    (
        "health_agent_cache_hit_rate_percent",
        Unit::Percent,
        "Cache hits as a share of lookups since start.",
    ),
    (
        "health_agent_cpu_percent",
        Unit::Percent,
        "CPU in use on the machine (all cores), at the last scrape.",
    ),
    (
        "health_agent_db_pool_active",
        Unit::Count,
        "Primary pool connections checked out now.",
    ),
    (
        "health_agent_db_pool_connections",
        Unit::Count,
        "Primary pool connections open (idle + active).",
    ),
    (
        "health_agent_db_pool_size",
        Unit::Count,
        "Primary pool's maximum size (database.pool_max_size).",
    ),
    (
        "health_agent_db_replica_lag_ms",
        Unit::Milliseconds,
        "How far the read replica is behind the primary.",
    ),
    (
        "health_agent_db_replica_usable",
        Unit::Count,
        "1 while reads go to the replica, 0 while they fall back to the primary.",
    ),
    (
        "health_agent_db_up",
        Unit::Count,
        "1 while the health probe reaches the primary, 0 while it does not.",
    ),
    (
        "health_agent_http_connections_max",
        Unit::Count,
        "The cap on open client connections (api.max_connections × workers).",
    ),
    (
        "health_agent_http_connections_open",
        Unit::Count,
        "Client connections open now.",
    ),
    (
        "health_agent_memory_mb",
        Unit::Count,
        "Resident memory of this process, in MB, at the last scrape.",
    ),
    (
        "health_agent_rate_limit_instances",
        Unit::Count,
        "Instances sharing the rate-limit budgets, as last counted in Redis.",
    ),
];

const HISTOGRAMS: &[(&str, Unit, &str)] = &[
    (
        "health_agent_request_duration_ms",
        Unit::Milliseconds,
        "HTTP request duration, by method, route pattern and status.",
    ),
    (
        "health_agent_actor_queue_ms",
        Unit::Milliseconds,
        "Time a message waited in an actor family's mailbox.",
    ),
    (
        "health_agent_actor_service_ms",
        Unit::Milliseconds,
        "Time an actor took to serve a message.",
    ),
    (
        "health_agent_embedder_batch_texts",
        Unit::Count,
        "Texts per batch the local embedder ran.",
    ),
];
