//! Domain rules and types, free of HTTP and storage.

pub mod gamification;
pub mod nutrition;
pub mod time;
pub mod user_id;

pub use user_id::UserId;
