//! Black-box HTTP tests: each starts the real server on a free port against
//! its own PostgreSQL database and Redis namespace from the local stack.

mod backpressure;
mod cli;
mod errors;
mod health;
mod helpers;
mod migrations;
mod security;
mod shutdown;
mod users;
