use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::now_rfc3339;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "status": "healthy", "database": "connected", "cache": "connected",
    "version": "0.1.0", "timestamp": "2026-06-01T12:00:00.000Z"
}))]
pub struct HealthResponse {
    /// `healthy`, or `degraded` when the database is unreachable.
    pub status: &'static str,
    /// `connected` or `disconnected`.
    pub database: &'static str,
    /// `connected`, `disconnected` or `disabled`.
    pub cache: &'static str,
    pub version: &'static str,
    #[schema(format = DateTime)]
    pub timestamp: String,
}

/// `GET /api/health`: reads the database probe's verdict (no query per call),
/// so it answers in microseconds and turns 503 within a second of an outage.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "The database answers.", body = HealthResponse),
        (status = 503, description = "The database is unreachable (`degraded`).",
            body = HealthResponse, headers(("Retry-After" = u32, description = "Seconds."))),
    )
)]
#[get("/api/health")]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let shared = state.shared();
    let db_up = shared.db.health().is_connected();
    let cache = match (shared.cache.enabled(), shared.cache.is_connected()) {
        (false, _) => "disabled",
        (true, true) => "connected",
        (true, false) => "disconnected",
    };
    let body = HealthResponse {
        status: if db_up { "healthy" } else { "degraded" },
        database: if db_up { "connected" } else { "disconnected" },
        cache,
        version: env!("CARGO_PKG_VERSION"),
        timestamp: now_rfc3339(),
    };
    if db_up {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(body)
    }
}

/// `GET /livez`: the process and its event loop are alive.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "Alive.", body = super::docs::ProbeStatus,
            example = json!({"status": "alive"})),
    )
)]
#[get("/livez")]
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "alive"}))
}

/// `GET /readyz`: ready for traffic when the database answers and the
/// process is not stopping.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "Ready.", body = super::docs::ProbeStatus,
            example = json!({"status": "ready"})),
        (status = 503, description = "The database is unreachable, or the instance is stopping (`draining`).",
            body = super::docs::ProbeStatus,
            headers(("Retry-After" = u32, description = "Seconds.")),
            example = json!({"status": "not_ready", "database": "disconnected"})),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    // Stopping: the balancer must send elsewhere, though this instance still
    // serves what reaches it.
    if state.shared().lifecycle.is_draining() {
        return HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(serde_json::json!({"status": "draining"}));
    }
    if state.shared().db.health().is_connected() {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(serde_json::json!({"status": "not_ready", "database": "disconnected"}))
    }
}
