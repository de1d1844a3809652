//! The route table, in one place.

mod health;
mod metrics;
mod users;

use actix_web::web;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/health", web::get().to(health::health))
        .route("/livez", web::get().to(health::livez))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(metrics::prometheus))
        .service(
            web::scope("/api/v1")
                .route("/metrics", web::get().to(metrics::metrics))
                .route("/users", web::post().to(users::create_user))
                .route("/users/{user_id}", web::get().to(users::get_user))
                .route("/users/{user_id}", web::delete().to(users::delete_user)),
        );
}

pub use health::HealthResponse;
