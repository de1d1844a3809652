//! Request middleware, outermost first: request id → drain (graceful stop)
//! → observe (metrics, slow requests, actor trace) → shed (writes while the
//! database queue is past its target) → JSON errors → CORS → API key →
//! rate limit → Idempotency-Key (POSTs).

pub mod auth;
pub mod drain;
pub mod idempotency;
pub mod json_errors;
pub mod observe;
pub mod rate_limit;
pub mod request_id;
pub mod shed;
