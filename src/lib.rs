//! The Health Agent API: HTTP layer, configuration and command line. The
//! actors live in the `actors` crate, the mock LLM and the monitor in
//! `health-agent-tools`; see ARCHITECTURE.md.

pub mod backup;
pub mod cache_keys;
pub mod chat;
pub mod cli;
pub use domain;
pub mod config;
pub mod connections;
pub mod error;
pub mod extract;
pub mod lifecycle;

pub mod housekeeping;
pub mod metric_help;
pub mod middleware;
pub mod openapi;
pub mod reads;
pub mod reload;
pub mod routes;
pub mod startup;
pub mod state;
pub mod telemetry;

#[cfg(test)]
mod properties;
