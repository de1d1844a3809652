use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse, ResponseError};
use std::collections::BTreeMap;

use actors::cache::CacheSnapshot;
use actors::gate::ActorSnapshot;
use actors::metrics::SystemFigures;
use serde::Serialize;
use utoipa::ToSchema;

use crate::connections::ConnectionsSnapshot;
use crate::error::{now_rfc3339, ApiError, ErrorBody};
use crate::state::{AppState, Shared};

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Refreshes the sampled gauges and renders the Prometheus exposition text.
pub(crate) fn render_prometheus(shared: &Shared) -> String {
    let pool = shared.db.pool_stats();
    let active = pool.size.saturating_sub(pool.idle);
    ::metrics::gauge!("health_agent_db_pool_active").set(active as f64);
    ::metrics::gauge!("health_agent_db_pool_size").set(pool.max_size as f64);
    ::metrics::gauge!("health_agent_db_pool_connections").set(pool.size as f64);
    if let Some(replica) = shared.db.replica_health() {
        let r = replica.snapshot();
        ::metrics::gauge!("health_agent_db_replica_usable").set(if r.usable { 1.0 } else { 0.0 });
        ::metrics::gauge!("health_agent_db_replica_lag_ms").set(r.lag_ms as f64);
    }
    let cache = shared.cache.snapshot();
    ::metrics::gauge!("health_agent_cache_hit_rate_percent").set(cache.hit_rate_percent);
    for gate in shared.gates() {
        let s = gate.stats().snapshot();
        ::metrics::gauge!("health_agent_actor_mailbox_depth", "actor" => gate.name())
            .set(s.mailbox_depth as f64);
        ::metrics::gauge!("health_agent_actor_in_flight", "actor" => gate.name())
            .set(s.in_flight as f64);
    }
    let system = shared.metrics.system();
    ::metrics::gauge!("health_agent_cpu_percent").set(system.cpu_percent);
    ::metrics::gauge!("health_agent_memory_mb").set(system.memory_mb);
    shared.prometheus.render()
}

/// A 404 with the JSON error body, as for an unknown route.
fn metrics_disabled() -> HttpResponse {
    ApiError::NotFound("metrics are disabled".into()).error_response()
}

/// `GET /metrics`: Prometheus text.
#[utoipa::path(
    tag = "operations",
    description = "Prometheus text. Needs an API key unless the operator set \
        `metrics.require_api_key = false` for a private scrape network.",
    responses(
        (status = 200, description = "The Prometheus exposition format.", body = String,
            content_type = "text/plain; version=0.0.4; charset=utf-8"),
        (status = 404, description = "Metrics are disabled (`ENABLE_METRICS=false`).",
            body = ErrorBody),
    )
)]
#[get("/metrics")]
pub async fn prometheus(state: web::Data<AppState>) -> HttpResponse {
    if !state.shared().settings.metrics.enabled {
        return metrics_disabled();
    }
    let text = render_prometheus(state.shared());
    HttpResponse::Ok().content_type(PROMETHEUS_TEXT).body(text)
}

/// `GET /api/v1/metrics` as JSON.
#[derive(Serialize, ToSchema)]
pub struct MetricsResponse {
    #[schema(format = DateTime)]
    timestamp: String,
    system: SystemFigures,
    database: DatabaseFigures,
    cache: CacheSnapshot,
    /// By actor family: `db`, `cache`, `llm`, `reminders`, `embedder` (with
    /// the local model), and
    /// `db_reminders` (the scheduler's reserved database admission).
    actors: BTreeMap<String, ActorFigures>,
    requests: RequestFigures,
    connections: ConnectionsSnapshot,
}

/// One actor family's admission gate.
#[derive(Serialize, ToSchema)]
pub struct ActorFigures {
    mailbox_capacity: u64,
    mailbox_depth: i64,
    in_flight: i64,
    restarts: u64,
    rejected: u64,
}

impl From<ActorSnapshot> for ActorFigures {
    fn from(s: ActorSnapshot) -> Self {
        Self {
            mailbox_capacity: s.mailbox_capacity as u64,
            mailbox_depth: s.mailbox_depth,
            in_flight: s.in_flight,
            restarts: s.restarts,
            rejected: s.rejected,
        }
    }
}

/// Requests served since start.
#[derive(Serialize, ToSchema)]
pub struct RequestFigures {
    total: u64,
    errors: u64,
    slow: u64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    /// In effect now (changes on reload).
    slow_request_threshold_ms: u64,
}

/// The primary pool.
#[derive(Serialize, ToSchema)]
pub struct DatabaseFigures {
    pool_size: u32,
    pool_available: u32,
    pool_active: u32,
    pool_min_size: u32,
    pool_max_size: u32,
    pool_utilization_percent: f64,
    /// The read replica, when one is configured: whether reads go to it,
    /// its lag, and how often and how many reads fell back to the primary.
    #[schema(value_type = Option<Object>)]
    replica: Option<actors::db::ReplicaSnapshot>,
}

/// `GET /api/v1/metrics`: JSON for people and `jq`, Prometheus text for a
/// scraper (its `Accept` asks for text/plain or OpenMetrics), so the guide's
/// prometheus.yml and its curl | jq commands both work on this one path.
#[utoipa::path(
    tag = "operations",
    description = "JSON for people and `jq`; Prometheus text when `Accept` asks for \
        `text/plain` or OpenMetrics (and not JSON). Needs an API key unless the operator set \
        `metrics.require_api_key = false`.",
    responses(
        (status = 200, description = "The figures.", content(
            (MetricsResponse = "application/json"),
            (String = "text/plain; version=0.0.4; charset=utf-8"),
        )),
        (status = 404, description = "Metrics are disabled (`ENABLE_METRICS=false`).",
            body = ErrorBody),
    )
)]
#[get("/metrics")]
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let shared = state.shared();
    if !shared.settings.metrics.enabled {
        return metrics_disabled();
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if wants_prometheus(accept) {
        return HttpResponse::Ok()
            .content_type(PROMETHEUS_TEXT)
            .body(render_prometheus(shared));
    }
    let pool = shared.db.pool_stats();
    let active = pool.size.saturating_sub(pool.idle);
    let actors = shared
        .gates()
        .map(|gate| (gate.name().to_owned(), gate.stats().snapshot().into()))
        .collect();
    let summary = shared.metrics.summary();
    HttpResponse::Ok().json(MetricsResponse {
        timestamp: now_rfc3339(),
        system: shared.metrics.system(),
        database: DatabaseFigures {
            pool_size: pool.size,
            pool_available: pool.idle,
            pool_active: active,
            pool_min_size: pool.min_idle,
            pool_max_size: pool.max_size,
            pool_utilization_percent: percent(active, pool.max_size),
            replica: shared.db.replica_health().map(|h| h.snapshot()),
        },
        cache: shared.cache.snapshot(),
        actors,
        requests: RequestFigures {
            total: summary.total,
            errors: summary.errors,
            slow: summary.slow,
            p50_ms: summary.p50_ms,
            p95_ms: summary.p95_ms,
            p99_ms: summary.p99_ms,
            slow_request_threshold_ms: shared.slow_threshold_ms(),
        },
        connections: shared.connections.snapshot(),
    })
}

fn percent(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 10_000.0 / whole as f64).round() / 100.0
    }
}

fn wants_prometheus(accept: &str) -> bool {
    let a = accept.to_ascii_lowercase();
    (a.contains("text/plain") || a.contains("application/openmetrics-text"))
        && !a.contains("application/json")
}

#[cfg(test)]
mod tests {
    use super::wants_prometheus;

    #[test]
    fn a_prometheus_scrape_gets_text_and_curl_gets_json() {
        assert!(wants_prometheus(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ));
        assert!(!wants_prometheus("*/*"));
        assert!(!wants_prometheus(""));
        assert!(!wants_prometheus("application/json"));
    }
}
