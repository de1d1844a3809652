use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::error::now_rfc3339;
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct HealthResponse {
    pub status: &'static str,
    pub database: &'static str,
    pub cache: &'static str,
    pub version: &'static str,
    pub timestamp: String,
}

/// `GET /api/health`: reads the database probe's verdict (no query per call),
/// so it answers in microseconds and turns 503 within a second of an outage.
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
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "alive"}))
}

/// `GET /readyz`: ready for traffic when the database answers.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.shared().db.health().is_connected() {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(serde_json::json!({"status": "not_ready", "database": "disconnected"}))
    }
}
