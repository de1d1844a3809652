//! The health coach's rules, free of HTTP, storage and actors, so the server
//! and the actors (which run the SQL) share one definition.

pub mod coach;
pub mod embedding;
pub mod gamification;
pub mod meals;
pub mod memory;
pub mod nutrition;
pub mod profile;
pub mod time;
pub mod user_id;

pub use user_id::UserId;
