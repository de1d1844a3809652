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
    // The API first: the router tries services in order, and a scope's
    // static prefix is a string compare, where each dynamic route before it
    // (formulas' `{id}`, Swagger UI's tail) was a regex search per request.
    cfg.service(api_v1())
        .configure(probes)
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
        .service(
            web::scope("/api/formulas")
                .route("", web::get().to(formulas::list_formulas))
                .route("", web::post().to(formulas::create_formula))
                .route("/search", web::get().to(formulas::search_formulas))
                .route(
                    "/suggestions",
                    web::post().to(formulas::formula_suggestions),
                )
                .route("/{id}", web::get().to(formulas::get_formula))
                .route("/{id}", web::put().to(formulas::put_formula))
                .route("/{id}", web::delete().to(formulas::delete_formula))
                .route("/{id}/use", web::post().to(formulas::use_formula)),
        );
}

fn api_v1() -> actix_web::Scope {
    web::scope("/api/v1")
        .route("/metrics", web::get().to(metrics::metrics))
        .route("/admin/reload", web::post().to(admin::reload))
        .route("/users", web::post().to(users::create_user))
        .route("/chat", web::post().to(chat::chat))
        // One scope for a user's routes: the router matches `{user_id}`
        // once instead of trying ~35 patterns in turn (a regex each),
        // and the sub-paths are plain string compares.
        .service(
            web::scope("/users/{user_id}")
                .route("/reminders", web::post().to(reminders::create_reminder))
                .route("/reminders", web::get().to(reminders::list_reminders))
                .route(
                    "/reminders/{id}/status",
                    web::get().to(reminders::reminder_status),
                )
                .route(
                    "/reminders/{id}/complete",
                    web::post().to(reminders::complete_reminder),
                )
                .route(
                    "/reminders/{id}",
                    web::delete().to(reminders::delete_reminder),
                )
                .route("/food", web::post().to(food::log_food))
                .route("/food", web::get().to(food::food_day))
                .route("/food/{entry_id}", web::delete().to(food::delete_food))
                // The fixed segments before `{meal_id}`: routes match in order.
                .route("/meals/search", web::get().to(meals::search_meals))
                .route("/meals/suggestions", web::get().to(meals::meal_suggestions))
                .route("/meals", web::post().to(meals::create_meal))
                .route("/meals", web::get().to(meals::list_meals))
                .route("/meals/{meal_id}", web::get().to(meals::get_meal))
                .route("/meals/{meal_id}", web::patch().to(meals::patch_meal))
                .route("/meals/{meal_id}", web::delete().to(meals::delete_meal))
                .route("/meals/{meal_id}/log", web::post().to(meals::log_meal))
                .route("/xp", web::get().to(gamification::xp))
                .route("/streaks", web::get().to(gamification::streaks))
                .route("/achievements", web::get().to(gamification::achievements))
                .route("/memories/search", web::get().to(memories::search_memories))
                .route("/memories", web::get().to(memories::list_memories))
                .route("/memories", web::post().to(memories::create_memory))
                .route(
                    "/memories/{memory_id}",
                    web::delete().to(memories::delete_memory),
                )
                .route("", web::get().to(users::get_user))
                .route("", web::delete().to(users::delete_user))
                .route("/profile", web::get().to(users::get_profile))
                .route("/profile", web::patch().to(users::patch_profile))
                .route("/preferences", web::get().to(users::get_preferences))
                .route("/preferences", web::patch().to(users::patch_preferences))
                .route("/conversation", web::delete().to(users::clear_conversation)),
        )
}

pub use food::FoodDayResponse;
pub use health::HealthResponse;
