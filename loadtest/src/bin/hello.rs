//! Capacity baseline (a): bare actix-web answering `GET
//! /api/v1/users/{id}/profile` with a JSON profile of the same shape as ours,
//! with no middleware, database or cache. One worker per core, as ours.
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

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8110);
    println!("hello listening on http://127.0.0.1:{port}");
    HttpServer::new(|| App::new().route("/api/v1/users/{id}/profile", web::get().to(profile)))
        .bind(("127.0.0.1", port))?
        .run()
        .await
}
