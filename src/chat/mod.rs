//! The chat use case, apart from its HTTP handler (`routes::chat`).

pub mod tools;
