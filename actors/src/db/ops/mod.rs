//! The typed operations the `DbActor` serves, one module per resource.
//!
//! Statements go through `query_typed`: parameter types are given up front,
//! so each query is one round trip with no separate prepare.

mod system;
mod users;

pub use system::Ping;
pub use users::{CreateUser, DeleteUser, GetUser, UserRow};
