//! Request middleware, outermost first: request id → observe (metrics, slow
//! requests, actor trace) → CORS → API key.

pub mod auth;
pub mod observe;
pub mod request_id;
