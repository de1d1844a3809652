//! `LlmActor`: the one place that talks to language-model providers.
//!
//! This first cut serves the built-in offline coach only; providers,
//! retries and circuit breakers arrive with the agent work. The gate already
//! bounds in-flight calls so a slow provider turns into fast 503s.

use std::sync::Arc;
use std::time::Duration;

use actix::{
    Actor, ActorContext, Addr, AsyncContext, Context, Handler, Message, Supervised, Supervisor,
};

use crate::error::ActorError;
use crate::gate::{Gate, Ticket, Timing};
use crate::supervise::{serve, Restart, ServeError};
use crate::trace;

#[derive(Debug, Clone)]
pub struct LlmConfig {
    pub timeout: Duration,
    pub mailbox_capacity: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error(transparent)]
    Actor(#[from] ActorError),
    #[error("language model timed out")]
    Timeout,
}

impl ServeError for LlmError {
    fn timed_out() -> Self {
        LlmError::Timeout
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTurn {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub text: String,
    pub provider: &'static str,
}

/// Sent by the chat route: answer the conversation.
#[derive(Message)]
#[rtype(result = "(Result<Completion, LlmError>, Timing)")]
pub struct Complete {
    pub system: String,
    pub turns: Vec<ChatTurn>,
    pub ticket: Ticket,
}

#[derive(Debug)]
pub struct LlmShared {
    gate: Gate,
    timeout: Duration,
}

impl LlmShared {
    pub fn new(cfg: &LlmConfig) -> Arc<Self> {
        Arc::new(Self {
            gate: Gate::new("llm", cfg.mailbox_capacity),
            timeout: cfg.timeout,
        })
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }
}

pub struct LlmActor {
    shared: Arc<LlmShared>,
}

impl Actor for LlmActor {
    type Context = Context<Self>;
}

impl Supervised for LlmActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.shared.gate.stats().record_restart();
    }
}

impl Handler<Complete> for LlmActor {
    type Result = actix::ResponseFuture<(Result<Completion, LlmError>, Timing)>;

    fn handle(&mut self, msg: Complete, ctx: &mut Self::Context) -> Self::Result {
        let Complete { turns, ticket, .. } = msg;
        let work = async move {
            let last = turns.last().map(|t| t.content.as_str()).unwrap_or_default();
            Ok(Completion {
                text: format!("(offline mode) I heard: {last}"),
                provider: "offline",
            })
        };
        serve(
            "llm",
            "complete",
            ticket,
            self.shared.timeout,
            ctx.address().recipient(),
            work,
        )
    }
}

impl Handler<Restart> for LlmActor {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

#[derive(Clone)]
pub struct LlmHandle {
    addr: Addr<LlmActor>,
    shared: Arc<LlmShared>,
}

impl LlmHandle {
    pub fn start(shared: Arc<LlmShared>) -> Self {
        let for_actor = Arc::clone(&shared);
        let addr = Supervisor::start(move |_| LlmActor { shared: for_actor });
        Self { addr, shared }
    }

    pub fn shared(&self) -> &Arc<LlmShared> {
        &self.shared
    }

    pub async fn complete(
        &self,
        system: String,
        turns: Vec<ChatTurn>,
    ) -> Result<Completion, LlmError> {
        let ticket = self.shared.gate.admit()?;
        let (out, timing) = self
            .addr
            .send(Complete {
                system,
                turns,
                ticket,
            })
            .await
            .map_err(|e| ActorError::from_mailbox("llm", e))?;
        trace::record("llm", "complete", timing);
        out
    }
}
