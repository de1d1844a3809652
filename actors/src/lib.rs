//! The supervised actors of the Health Agent API.
//!
//! Each family (db, cache, llm, reminders; metrics and the embedder differ)
//! has a `*Shared` part built once at start-up (pools, gate, counters) and a
//! cloneable `*Handle` that starts a supervised actor on the current arbiter
//! (a `family::Family`) and sends it typed messages.
//! Nothing here knows about HTTP; see ARCHITECTURE.md for the request flow.

pub mod cache;
mod circuit;
pub mod db;
pub mod embedder;
pub mod error;
pub mod family;
pub mod gate;
pub mod llm;
pub mod lograte;
pub mod metrics;
pub mod reminders;
pub mod supervise;
pub mod trace;

#[cfg(feature = "testing")]
// Test fixtures: a setup that fails should stop the test where it failed.
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub mod testing;

pub use error::ActorError;
pub use gate::{ActorSnapshot, Gate, Timing};
