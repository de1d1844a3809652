//! Tools around the Health Agent API, kept out of the server library: the
//! server never calls them; `health-agent mock-llm` and `health-agent monitor`
//! (src/cli.rs) are thin entry points into them.
//!
//! - [`mock_llm`]: a stand-in LLM provider for tests, load tests and demos; no production path may reach it.
//! - [`monitor`]: watches a running instance from outside, through `/api/v1/metrics` only, like any operator.

pub mod mock_llm;
pub mod monitor;
