//! Request middleware, outermost first: request id → drain (graceful stop)
//! → observe (metrics, slow requests, actor trace) → CORS → API key →
//! Idempotency-Key (POSTs).

pub mod auth;
pub mod drain;
pub mod idempotency;
pub mod json_errors;
pub mod observe;
pub mod rate_limit;
pub mod request_id;
