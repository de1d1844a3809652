//! The typed operations the `DbActor` serves, one module per resource.
//!
//! Statements go through `query_typed`: parameter types are given up front,
//! so each query is one round trip with no separate prepare.

pub mod gamification;
mod system;
pub mod users;

pub use gamification::{GetAchievements, GetStreaks, GetXp, StreakRow};
pub use system::Ping;
pub use users::{lock_user_tz, CreateUser, DeleteUser, GetUser, UserRow};
