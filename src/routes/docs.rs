//! The API's documentation vocabulary, shared by the handlers'
//! `#[utoipa::path]` annotations (path parameters, schemas of bodies built
//! as JSON values, the shared error responses), and the routes that serve
//! the document. The document itself is assembled by `crate::openapi` from
//! the route table, once at start-up, and reaches these routes as app data:
//! so `routes` never imports `openapi`, and there is no import cycle.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, RefOr, Response, ResponseBuilder, Schema,
    Type,
};
use utoipa::{IntoParams, ToResponse, ToSchema};
use utoipa_swagger_ui::{Config, SwaggerUi};

pub const DOCUMENT_PATH: &str = "/api/openapi.json";
pub const DOCS_PATH: &str = "/api/docs";

/// The document as served, and the methods each documented path serves
/// (`"GET, POST"`), for `Allow`. Shared by every worker's app.
pub struct ApiDocument {
    json: web::Bytes,
    methods: BTreeMap<String, String>,
}

impl ApiDocument {
    pub fn new(json: web::Bytes, methods: BTreeMap<String, String>) -> Self {
        Self { json, methods }
    }

    /// What `Allow` says for a route pattern (`/api/v1/users/{user_id}`), or
    /// `None` when the document has no such path.
    pub fn allowed_methods(&self, pattern: &str) -> Option<&str> {
        self.methods.get(pattern).map(String::as_str)
    }

    /// The `Allow` of the route `req` matched, if the app serves a document.
    pub fn allow_for(req: &HttpRequest) -> Option<&str> {
        let doc = req.app_data::<web::Data<ApiDocument>>()?;
        let pattern = req.match_pattern()?;
        doc.get_ref().allowed_methods(&pattern)
    }
}

/// `GET /api/openapi.json`.
#[utoipa::path(
    tag = "docs",
    responses(
        (status = 200, description = "This OpenAPI 3.1 document.", body = Object,
            content_type = "application/json"),
    )
)]
#[get("/api/openapi.json")]
pub async fn openapi_json(doc: web::Data<ApiDocument>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.json.clone())
}

/// `GET /api/docs`: to `/api/docs/`, where the page's relative asset links
/// resolve.
#[utoipa::path(
    tag = "docs",
    responses(
        (status = 308, description = "Swagger UI is at `/api/docs/` (an HTML page).",
            headers(("Location" = String, description = "`/api/docs/`"))),
    )
)]
#[get("/api/docs")]
pub async fn docs() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, format!("{DOCS_PATH}/")))
        .finish()
}

/// Swagger UI's page and assets, reading this document: in a scope at
/// `DOCS_PATH`, so other requests pass it by a string compare, not a regex.
pub fn swagger_ui() -> SwaggerUi {
    SwaggerUi::new("/{_:.*}").config(Config::from(DOCUMENT_PATH))
}

// ---------------------------------------------------------------------------
// Parameters shared by many routes.

/// The user a route is about.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UserPath {
    /// An opaque id: 1–128 characters of `A-Z a-z 0-9 _ . : @ -`.
    #[param(pattern = r"^[A-Za-z0-9_.:@-]{1,128}$", example = "alice")]
    pub user_id: String,
}

/// One reminder of a user.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ReminderPath {
    /// An opaque id: 1–128 characters of `A-Z a-z 0-9 _ . : @ -`.
    #[param(pattern = r"^[A-Za-z0-9_.:@-]{1,128}$", example = "alice")]
    pub user_id: String,
    /// The reminder's id; anything that is not a UUID names no reminder (404).
    #[param(format = "uuid", example = "0b6f4c1e-8f5e-4d8a-9d67-3f1f1f9c2a10")]
    pub id: String,
}

/// One memory of a user.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MemoryPath {
    /// An opaque id: 1–128 characters of `A-Z a-z 0-9 _ . : @ -`.
    #[param(pattern = r"^[A-Za-z0-9_.:@-]{1,128}$", example = "alice")]
    pub user_id: String,
    /// The memory's id; anything else names no memory (404).
    #[param(example = "42")]
    pub memory_id: String,
}

/// One saved meal of a user.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MealPath {
    /// An opaque id: 1–128 characters of `A-Z a-z 0-9 _ . : @ -`.
    #[param(pattern = r"^[A-Za-z0-9_.:@-]{1,128}$", example = "alice")]
    pub user_id: String,
    /// The meal's id; anything that is not a UUID names no meal (404).
    #[param(format = "uuid", example = "3c9a4b1e-1f7d-4d8a-9d67-3f1f1f9c2a10")]
    pub meal_id: String,
}

/// One formula of a user.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct FormulaPath {
    /// The formula's id; anything that is not a UUID names no formula (404).
    #[param(format = "uuid", example = "3c9a4b1e-1f7d-4d8a-9d67-3f1f1f9c2a10")]
    pub id: String,
}

// ---------------------------------------------------------------------------
// Bodies the handlers build as JSON values: their shape, read from the code.

/// The original's body for saving: a meal's fields, and its `user_id`.
#[derive(ToSchema)]
#[schema(example = json!({
    "user_id": "alice", "name": "Usual breakfast", "keywords": ["oats"],
    "foods": [{"description": "oats", "quantity": "1 cup"}, {"description": "banana"}]
}))]
pub struct NewFormula {
    #[schema(pattern = r"^[A-Za-z0-9_.:@-]{1,128}$")]
    pub user_id: Option<String>,
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[schema(max_items = 20)]
    pub keywords: Option<Vec<String>>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    #[schema(min_items = 1, max_items = 50)]
    pub foods: Option<Vec<super::meals::MealFoodRequest>>,
    pub from_suggestion: Option<String>,
}

/// `sex`, as stored (lowercase).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
    Other,
    PreferNotToSay,
}

/// Goals: one text or a list of at most 20 texts of at most 500 characters.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum Goals {
    One(String),
    Many(Vec<String>),
}

/// The `value` of a profile or preference PATCH: a text (at most 500
/// characters), a number, a boolean, a list of texts (`goals`) or `null`
/// (removes it). Known fields narrow this further (`age` 1–130, ...).
pub fn patch_value_schema() -> Schema {
    use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder};
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(500)),
        )
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .item(ObjectBuilder::new().schema_type(Type::Boolean))
        .item(
            ArrayBuilder::new()
                .items(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .max_length(Some(500)),
                )
                .max_items(Some(20)),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .build()
        .into()
}

/// A profile as read: known fields typed and range-checked, `timezone`
/// defaulting to `UTC`; any other field (names of `a-z 0-9 _`, at most 64
/// characters) is kept as a string of at most 500 characters.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "age": 34, "height_cm": 172.5, "weight_kg": 68, "sex": "female",
    "timezone": "Europe/Berlin", "goals": ["run 10k"], "name": "Alice"
}))]
pub struct Profile {
    #[schema(nullable = false, minimum = 1, maximum = 130)]
    pub age: Option<i64>,
    #[schema(nullable = false, minimum = 30, maximum = 300)]
    pub height_cm: Option<f64>,
    #[schema(nullable = false, minimum = 2, maximum = 700)]
    pub weight_kg: Option<f64>,
    #[schema(nullable = false)]
    pub sex: Option<Sex>,
    /// An IANA time zone; decides the user's days (food log, streaks).
    #[schema(
        example = "Europe/Berlin",
        pattern = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$"
    )]
    pub timezone: String,
    #[schema(nullable = false)]
    pub goals: Option<Goals>,
    #[serde(flatten)]
    pub other: BTreeMap<String, String>,
}

/// A profile as sent to `POST /api/v1/users`: the fields of [`Profile`], all
/// optional, none null. Numbers may also be sent as numeric strings; other
/// fields as strings, numbers or booleans (stored as text).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"age": 34, "timezone": "Europe/Berlin", "goals": "sleep 8 hours"}))]
pub struct NewProfile {
    #[schema(nullable = false, minimum = 1, maximum = 130)]
    pub age: Option<i64>,
    #[schema(nullable = false, minimum = 30, maximum = 300)]
    pub height_cm: Option<f64>,
    #[schema(nullable = false, minimum = 2, maximum = 700)]
    pub weight_kg: Option<f64>,
    #[schema(nullable = false)]
    pub sex: Option<Sex>,
    #[schema(
        nullable = false,
        example = "Europe/Berlin",
        pattern = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$"
    )]
    pub timezone: Option<String>,
    #[schema(nullable = false)]
    pub goals: Option<Goals>,
    #[serde(flatten)]
    pub other: BTreeMap<String, String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    Friendly,
    Formal,
    Casual,
    Professional,
    Motivational,
    Empathetic,
    Direct,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Brevity {
    Short,
    Medium,
    Long,
    Brief,
    Detailed,
}

/// Coaching preferences as read, defaults filled in; other preferences are
/// kept as strings of at most 500 characters.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"tone": "friendly", "brevity": "medium"}))]
pub struct Preferences {
    /// Default `friendly`.
    pub tone: Tone,
    /// Default `medium`.
    pub brevity: Brevity,
    #[serde(flatten)]
    pub other: BTreeMap<String, String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReminderType {
    Daily,
    OneTime,
}

/// A new reminder, by its `type`.
#[derive(Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schema(example = json!({
    "type": "daily", "message": "Take your vitamins", "daily_time": "08:30",
    "timezone": "Europe/Berlin"
}))]
pub enum NewReminder {
    /// Every day at `daily_time`, local time (DST-aware).
    Daily {
        /// 1–1000 characters, not blank.
        #[schema(min_length = 1, max_length = 1000, example = "Take your vitamins")]
        message: String,
        /// `HH:MM`, 24-hour.
        #[schema(pattern = r"^[0-2][0-9]:[0-5][0-9]$", example = "08:30")]
        daily_time: String,
        /// An IANA time zone; default the user's.
        #[schema(
            example = "Europe/Berlin",
            pattern = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$"
        )]
        timezone: Option<String>,
    },
    /// Once, at `trigger_time`.
    OneTime {
        #[schema(min_length = 1, max_length = 1000, example = "Call the doctor")]
        message: String,
        /// RFC 3339 with an offset, in the future.
        #[schema(format = DateTime, example = "2026-06-01T08:00:00Z")]
        trigger_time: String,
        /// An IANA time zone; default the user's.
        #[schema(
            example = "Europe/Berlin",
            pattern = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$"
        )]
        timezone: Option<String>,
    },
}

/// When a daily reminder fires.
#[derive(Serialize, ToSchema)]
pub struct DailySchedule {
    /// Local time, `HH:MM` (24-hour).
    #[schema(example = "08:30")]
    pub daily_time: String,
    #[schema(example = "Europe/Berlin")]
    pub timezone: String,
}

/// When a one-time reminder fires.
#[derive(Serialize, ToSchema)]
pub struct OneTimeSchedule {
    #[schema(format = DateTime, example = "2026-06-01T08:00:00Z")]
    pub trigger_time: String,
    #[schema(example = "Europe/Berlin")]
    pub timezone: String,
}

/// A reminder's schedule, by its `type`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum ReminderSchedule {
    Daily(DailySchedule),
    OneTime(OneTimeSchedule),
}

/// `/livez` and `/readyz`.
#[derive(Serialize, ToSchema)]
pub struct ProbeStatus {
    /// `alive`, `ready` or `not_ready`.
    #[schema(example = "ready")]
    pub status: String,
    /// `disconnected` when not ready.
    pub database: Option<String>,
}

// ---------------------------------------------------------------------------
// Error responses, shared by reference; all have the body `ErrorBody`.

fn retry_after() -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
        )
        .description(Some("Seconds to wait before retrying."))
        .build()
}

fn error_response(description: &str, example: (&str, Option<&str>)) -> ResponseBuilder {
    let (error, detail) = example;
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .example(Some(serde_json::json!({
                "error": error,
                "detail": detail,
                "timestamp": "2026-06-01T12:00:00.000Z",
            })))
            .build(),
    )
}

macro_rules! error_responses {
    ($($name:ident: $description:expr, $example:expr $(, $retry:ident)?;)*) => {$(
        #[doc = $description]
        pub struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                let r = error_response($description, $example);
                $(let r = r.header("Retry-After", $retry());)?
                (stringify!($name), r.build().into())
            }
        }
    )*};
}

error_responses! {
    BadRequest: "Bad input: malformed JSON, a missing, unknown, mistyped or out-of-range \
        field, or a malformed path, query or `Idempotency-Key` value. `detail` names the field.",
        ("invalid request", Some("user_id: may only contain A-Z a-z 0-9 _ . : @ -, found ' '"));
    Unauthorized: "No API key: send `Authorization: Bearer KEY` or `X-API-Key: KEY`.",
        ("API key required", None);
    Forbidden: "The API key is not one of the configured keys.",
        ("Invalid API key", None);
    NotFound: "The user or resource does not exist.",
        ("user not found", None);
    Conflict: "A conflict: the resource exists already, or a request with this \
        `Idempotency-Key` is still in progress (then with `Retry-After`).",
        ("user already exists", None), retry_after;
    PayloadTooLarge: "The body is over the limit (`api.body_limit_bytes`).",
        ("request body too large", Some("the limit is 65536 bytes"));
    UnsupportedMediaType: "The body is not sent as `Content-Type: application/json`.",
        ("unsupported media type", Some("send the body as JSON with `Content-Type: application/json`"));
    IdempotencyMismatch: "This `Idempotency-Key` was first used with another method, path \
        or body; use a new key for a new request.",
        ("Idempotency-Key reused with a different request", Some("this key was first used with another method, path or body; use a new key for a new request"));
    Unavailable: "Overloaded (an actor's queue is full) or a dependency is down; retry \
        after `Retry-After` seconds.",
        ("service overloaded", Some("the db queue is full; retry shortly")), retry_after;
    BadGateway: "The language model answered with an error, nonsense or nothing; \
        `detail` names the provider.",
        ("bad gateway", Some("the language model provider anthropic answered HTTP 500"));
    GatewayTimeout: "The language model did not answer in time.",
        ("upstream timed out", Some("the language model did not answer in time"));
    Internal: "A bug. The cause is logged with the request id, never returned.",
        ("internal error", None);
}
