//! Black-box HTTP tests: each starts the real server on a free port against
//! its own PostgreSQL database and Redis namespace from the local stack.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test says where it failed

mod access;
mod backpressure;
mod backup;

mod bounds;
mod cache;
mod chat;
mod cli;
mod cluster;
mod coach;
mod errors;
mod food;
mod gamification;
mod health;
mod helpers;
mod idempotency;
mod llm;
mod meals;
mod memories;
mod migrations;
mod monitor;
mod observability;
mod openapi;
mod overload;
mod profile;
mod reminders;
mod security;
mod shutdown;
mod users;
