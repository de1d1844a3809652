//! Capacity baselines (a, f): bare actix-web answering `GET
//! /api/v1/users/{id}/profile` with a JSON profile, and `GET /api/health`
//! with a health body, each of the same shape as ours, with no middleware,
//! database or cache. One worker per core, as ours.
//!
//! `hello [PORT]` (default 8110).

use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::json;

async fn profile(path: web::Path<String>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "user_id": path.into_inner(),
        "timezone": "Europe/Paris",
        "name": null,
        "age": null,
        "goals": [],
    }))
}

/// Ours reads the probes' verdicts and formats the time: so does this.
async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "status": "healthy",
        "database": "connected",
        "cache": "connected",
        "version": env!("CARGO_PKG_VERSION"),
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8110);
    println!("hello listening on http://127.0.0.1:{port}");
    HttpServer::new(|| {
        App::new()
            .route("/api/v1/users/{id}/profile", web::get().to(profile))
            .route("/api/health", web::get().to(health))
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
