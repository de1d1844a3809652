//! The route table, in one place.

pub(crate) mod admin;
pub(crate) mod chat;
pub(crate) mod food;
pub(crate) mod formulas;
pub(crate) mod gamification;
pub(crate) mod health;
pub(crate) mod meals;
pub(crate) mod memories;
pub(crate) mod metrics;
pub(crate) mod reminders;
pub(crate) mod users;

use actix_web::web;

/// The probes, served on the main port and on `api.probe_port`.
pub fn probes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/health", web::get().to(health::health))
        .route("/livez", web::get().to(health::livez))
        .route("/readyz", web::get().to(health::readyz));
}

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.configure(probes)
        .route("/metrics", web::get().to(metrics::prometheus))
        .route(
            crate::openapi::DOCUMENT_PATH,
            web::get().to(crate::openapi::openapi_json),
        )
        .route(
            crate::openapi::DOCS_PATH,
            web::get().to(crate::openapi::docs),
        )
        .service(crate::openapi::swagger_ui())
        // The original service's saved meals, for its clients.
        .route("/api/formulas", web::get().to(formulas::list_formulas))
        .route("/api/formulas", web::post().to(formulas::create_formula))
        .route(
            "/api/formulas/search",
            web::get().to(formulas::search_formulas),
        )
        .route(
            "/api/formulas/suggestions",
            web::post().to(formulas::formula_suggestions),
        )
        .route("/api/formulas/{id}", web::get().to(formulas::get_formula))
        .route("/api/formulas/{id}", web::put().to(formulas::put_formula))
        .route(
            "/api/formulas/{id}",
            web::delete().to(formulas::delete_formula),
        )
        .route(
            "/api/formulas/{id}/use",
            web::post().to(formulas::use_formula),
        )
        .service(
            web::scope("/api/v1")
                .route("/metrics", web::get().to(metrics::metrics))
                .route("/admin/reload", web::post().to(admin::reload))
                .route(
                    "/users/{user_id}/reminders",
                    web::post().to(reminders::create_reminder),
                )
                .route(
                    "/users/{user_id}/reminders",
                    web::get().to(reminders::list_reminders),
                )
                .route(
                    "/users/{user_id}/reminders/{id}/status",
                    web::get().to(reminders::reminder_status),
                )
                .route(
                    "/users/{user_id}/reminders/{id}/complete",
                    web::post().to(reminders::complete_reminder),
                )
                .route(
                    "/users/{user_id}/reminders/{id}",
                    web::delete().to(reminders::delete_reminder),
                )
                .route("/users/{user_id}/food", web::post().to(food::log_food))
                .route("/users/{user_id}/food", web::get().to(food::food_day))
                .route(
                    "/users/{user_id}/food/{entry_id}",
                    web::delete().to(food::delete_food),
                )
                // The fixed segments before `{meal_id}`: routes match in order.
                .route(
                    "/users/{user_id}/meals/search",
                    web::get().to(meals::search_meals),
                )
                .route(
                    "/users/{user_id}/meals/suggestions",
                    web::get().to(meals::meal_suggestions),
                )
                .route("/users/{user_id}/meals", web::post().to(meals::create_meal))
                .route("/users/{user_id}/meals", web::get().to(meals::list_meals))
                .route(
                    "/users/{user_id}/meals/{meal_id}",
                    web::get().to(meals::get_meal),
                )
                .route(
                    "/users/{user_id}/meals/{meal_id}",
                    web::patch().to(meals::patch_meal),
                )
                .route(
                    "/users/{user_id}/meals/{meal_id}",
                    web::delete().to(meals::delete_meal),
                )
                .route(
                    "/users/{user_id}/meals/{meal_id}/log",
                    web::post().to(meals::log_meal),
                )
                .route("/users/{user_id}/xp", web::get().to(gamification::xp))
                .route(
                    "/users/{user_id}/streaks",
                    web::get().to(gamification::streaks),
                )
                .route(
                    "/users/{user_id}/achievements",
                    web::get().to(gamification::achievements),
                )
                .route(
                    "/users/{user_id}/memories/search",
                    web::get().to(memories::search_memories),
                )
                .route(
                    "/users/{user_id}/memories",
                    web::get().to(memories::list_memories),
                )
                .route(
                    "/users/{user_id}/memories",
                    web::post().to(memories::create_memory),
                )
                .route(
                    "/users/{user_id}/memories/{memory_id}",
                    web::delete().to(memories::delete_memory),
                )
                .route("/chat", web::post().to(chat::chat))
                .route("/users", web::post().to(users::create_user))
                .route("/users/{user_id}", web::get().to(users::get_user))
                .route("/users/{user_id}", web::delete().to(users::delete_user))
                .route(
                    "/users/{user_id}/profile",
                    web::get().to(users::get_profile),
                )
                .route(
                    "/users/{user_id}/profile",
                    web::patch().to(users::patch_profile),
                )
                .route(
                    "/users/{user_id}/preferences",
                    web::get().to(users::get_preferences),
                )
                .route(
                    "/users/{user_id}/preferences",
                    web::patch().to(users::patch_preferences),
                )
                .route(
                    "/users/{user_id}/conversation",
                    web::delete().to(users::clear_conversation),
                ),
        );
}

pub use food::FoodDayResponse;
pub use health::HealthResponse;
