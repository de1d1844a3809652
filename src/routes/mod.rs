//! The route table, in one place. Each handler's actix macro names its
//! method and path; utoipa-actix-web collects the same registrations into
//! the OpenAPI document's paths (see `openapi::document`), so a route is
//! declared once.

pub(crate) mod admin;
pub(crate) mod chat;
pub mod docs;
pub(crate) mod food;
pub(crate) mod formulas;
pub(crate) mod gamification;
pub(crate) mod health;
pub(crate) mod meals;
pub(crate) mod memories;
pub(crate) mod metrics;
pub(crate) mod reminders;
pub(crate) mod users;

use crate::error::ApiError;
use actix_web::web;
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

/// The probes, served on the main port and on `api.probe_port`.
pub fn probes(cfg: &mut ServiceConfig) {
    cfg.service(health::health)
        .service(health::livez)
        .service(health::readyz);
}

/// What anyone may call: the probes and the API's documentation. Every
/// pattern here is a string compare: these are tried before the API.
pub fn public(cfg: &mut ServiceConfig) {
    cfg.configure(probes)
        .service(docs::openapi_json)
        .service(docs::docs)
        // Swagger UI's page and assets, not themselves in the document.
        .map(|c| {
            c.service(
                web::scope(docs::DOCS_PATH)
                    .service(docs::swagger_ui())
                    // `/api/docs` itself with a method it does not serve.
                    .default_service(web::to(not_found)),
            )
        });
}

/// What needs an API key (startup wraps it in auth, the rate limit and
/// idempotency).
pub fn private(cfg: &mut ServiceConfig) {
    // The API first: the router tries services in order, and a scope's
    // static prefix is a string compare.
    cfg.service(scope("/api/v1").configure(api_v1))
        .service(metrics::prometheus)
        // The original service's saved meals, for its clients.
        .service(scope("/api/formulas").configure(formulas));
}

fn api_v1(cfg: &mut ServiceConfig) {
    cfg.service(metrics::metrics)
        .service(admin::reload)
        .service(users::create_user)
        .service(chat::chat)
        // One scope for a user's routes: the router matches `{user_id}`
        // once, and the sub-paths are tried in order.
        .service(scope("/users/{user_id}").configure(user));
}

fn user(cfg: &mut ServiceConfig) {
    // Plain paths first, the busiest on top: each is a string compare,
    // while a pattern with a `{…}` segment is a regex match.
    cfg.service(users::get_profile)
        .service(gamification::xp)
        .service(users::get_user)
        .service(users::delete_user)
        .service(users::patch_profile)
        .service(users::get_preferences)
        .service(users::patch_preferences)
        .service(users::clear_conversation)
        .service(gamification::streaks)
        .service(gamification::achievements)
        .service(food::log_food)
        .service(food::food_day)
        .service(reminders::create_reminder)
        .service(reminders::list_reminders)
        .service(meals::search_meals)
        .service(meals::meal_suggestions)
        .service(meals::create_meal)
        .service(meals::list_meals)
        .service(memories::search_memories)
        .service(memories::list_memories)
        .service(memories::create_memory)
        .service(food::delete_food)
        .service(reminders::reminder_status)
        .service(reminders::complete_reminder)
        .service(reminders::delete_reminder)
        .service(meals::get_meal)
        .service(meals::patch_meal)
        .service(meals::delete_meal)
        .service(meals::log_meal)
        .service(memories::delete_memory);
}

fn formulas(cfg: &mut ServiceConfig) {
    cfg.service(formulas::list_formulas)
        .service(formulas::create_formula)
        .service(formulas::search_formulas)
        .service(formulas::formula_suggestions)
        .service(formulas::get_formula)
        .service(formulas::put_formula)
        .service(formulas::delete_formula)
        .service(formulas::use_formula);
}

/// actix-web answers an unknown path and a known path's unserved method
/// here alike: the second is a 405 with `Allow`.
pub async fn not_found(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    use actix_web::ResponseError as _;
    let allow = docs::ApiDocument::allow_for(&req)
        .and_then(|methods| actix_web::http::header::HeaderValue::from_str(methods).ok());
    if let Some(allow) = allow {
        let mut res = ApiError::MethodNotAllowed.error_response();
        res.headers_mut()
            .insert(actix_web::http::header::ALLOW, allow);
        return res;
    }
    ApiError::NotFound(format!("no route for {} {}", req.method(), req.path())).error_response()
}

pub use food::FoodDayResponse;
pub use health::HealthResponse;
