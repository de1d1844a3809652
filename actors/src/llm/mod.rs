//! `LlmActor`: the one place that talks to language-model providers.
//!
//! Chat goes to the primary provider (Anthropic Messages, OpenAI Chat
//! Completions, any OpenAI-compatible server, or the offline coach), with
//! retries, and to the fallback provider when the primary fails or its
//! circuit is open. When every provider's circuit is open the call fails at
//! once, without touching the network. Embeddings use the configured
//! embeddings provider or the deterministic offline embedder.
//!
//! The gate bounds in-flight calls, so a slow provider turns into fast 503s.

mod anthropic;
mod openai;
mod provider;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, Addr, AsyncContext, Context, Handler, Message, Supervised, Supervisor,
};
use serde::{Deserialize, Serialize};

use crate::circuit::Circuit;
use crate::error::ActorError;
use crate::gate::{Admission, Gate, Ticket, Timing};
use crate::supervise::{serve, Restart, ServeError};
use crate::trace;
use provider::{Budget, Provider};
pub use provider::{ProviderConfig, ProviderKind, ProviderStats};

#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// Each HTTP attempt's timeout.
    pub timeout: Duration,
    pub mailbox_capacity: usize,
    pub primary: ProviderConfig,
    pub fallback: Option<ProviderConfig>,
    /// `None`: the offline embedder.
    pub embeddings: Option<ProviderConfig>,
    pub embedding_dimensions: usize,
    /// How long a call may keep retrying, across providers.
    pub retry_budget: Duration,
    pub circuit_failures: u32,
    pub circuit_open: Duration,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            mailbox_capacity: 256,
            primary: ProviderConfig::offline(),
            fallback: None,
            embeddings: None,
            embedding_dimensions: 384,
            retry_budget: Duration::from_secs(10),
            circuit_failures: 5,
            circuit_open: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error(transparent)]
    Actor(#[from] ActorError),
    #[error("language model timed out")]
    Timeout,
    #[error("language model rate limited; retry after {}s", retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    /// The provider is down or its circuit is open, and no other could answer.
    #[error("language model provider {provider} is unavailable")]
    Unavailable {
        provider: String,
        retry_after: Duration,
    },
    #[error("language model provider {provider} answered HTTP {status}")]
    Upstream { provider: String, status: u16 },
    /// The answer could not be read; names the provider.
    #[error("language model answer was malformed ({0})")]
    Malformed(String),
}

impl ServeError for LlmError {
    fn timed_out() -> Self {
        LlmError::Timeout
    }
}

/// The provider could not be set up (start-up error).
#[derive(Debug, thiserror::Error)]
#[error("llm: {0}")]
pub struct LlmSetupError(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatTurn {
    pub role: Role,
    pub content: String,
    /// Assistant turns: the tools it asked for.
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
    /// Tool turns: which call this is the result of.
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON schema of the arguments.
    pub parameters: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub system: String,
    pub turns: Vec<ChatTurn>,
    pub tools: Vec<ToolSpec>,
    pub max_tokens: u32,
    /// What the offline provider answers (the route computes it: it has the user's data).
    pub offline_reply: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    /// Which provider answered: offline, anthropic, openai, openai_compatible.
    pub provider: String,
    pub model: String,
}

/// Sent by the chat route: answer the conversation.
#[derive(Message)]
#[rtype(result = "(Result<Completion, LlmError>, Timing)")]
pub struct Complete {
    pub request: ChatRequest,
    pub ticket: Ticket,
}

/// Embed texts (memories, messages).
#[derive(Message)]
#[rtype(result = "(Result<Vec<Vec<f32>>, LlmError>, Timing)")]
pub struct Embed {
    pub texts: Vec<String>,
    pub ticket: Ticket,
}

/// A little past the call's own deadline, so the call's own error (which
/// names what failed) wins over the actor's generic timeout.
const DEADLINE_SLACK: Duration = Duration::from_millis(100);

pub struct LlmShared {
    gate: Gate,
    timeout: Duration,
    retry_budget: Duration,
    client: reqwest::Client,
    /// The primary, then the fallback.
    chat: Vec<Provider>,
    embeddings: Provider,
    dimensions: usize,
}

impl std::fmt::Debug for LlmShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmShared")
            .field("providers", &self.provider_stats())
            .finish_non_exhaustive()
    }
}

impl LlmShared {
    /// Builds the HTTP client (pooled connections, shared by every worker)
    /// and the providers.
    pub fn new(cfg: &LlmConfig) -> Result<Arc<Self>, LlmSetupError> {
        let client = reqwest::Client::builder()
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            // Providers don't redirect; following one could carry the key elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("health-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LlmSetupError(format!("http client: {}", e.without_url())))?;
        let circuit = || Circuit::new(cfg.circuit_failures, cfg.circuit_open);
        let mut chat =
            vec![Provider::new(&cfg.primary, "primary", circuit()).map_err(LlmSetupError)?];
        if let Some(fb) = &cfg.fallback {
            chat.push(Provider::new(fb, "fallback", circuit()).map_err(LlmSetupError)?);
        }
        let embeddings = cfg
            .embeddings
            .clone()
            .unwrap_or_else(ProviderConfig::offline);
        let embeddings =
            Provider::new(&embeddings, "embeddings", circuit()).map_err(LlmSetupError)?;
        Ok(Arc::new(Self {
            gate: Gate::new("llm", cfg.mailbox_capacity),
            timeout: cfg.timeout,
            retry_budget: cfg.retry_budget,
            client,
            chat,
            embeddings,
            dimensions: cfg.embedding_dimensions,
        }))
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Whether chat is answered by the built-in coach.
    pub fn is_offline(&self) -> bool {
        self.chat
            .first()
            .is_none_or(|p| p.kind == ProviderKind::Offline)
    }

    /// Whether the offline coach may answer (as primary or fallback), so the
    /// route should fill `offline_reply`.
    pub fn may_answer_offline(&self) -> bool {
        self.chat.iter().any(|p| p.kind == ProviderKind::Offline)
    }

    pub fn embedding_dimensions(&self) -> usize {
        self.dimensions
    }

    /// Calls, failures and circuit state of every provider (chat, then embeddings).
    pub fn provider_stats(&self) -> Vec<ProviderStats> {
        self.chat
            .iter()
            .chain(std::iter::once(&self.embeddings))
            .map(Provider::stats)
            .collect()
    }

    fn deadline(&self) -> Duration {
        self.timeout + self.retry_budget + DEADLINE_SLACK
    }

    /// `Unavailable` when no chat provider's circuit would let a call
    /// through now; checked before the gate, so it costs no slot.
    fn all_open(&self) -> Option<LlmError> {
        let waits: Vec<Duration> = self.chat.iter().map(|p| p.circuit.wait()).collect();
        if waits.iter().any(Duration::is_zero) {
            return None;
        }
        Some(self.unavailable(waits))
    }

    fn unavailable(&self, waits: Vec<Duration>) -> LlmError {
        let soonest = waits.into_iter().min().unwrap_or_default();
        LlmError::Unavailable {
            provider: self
                .chat
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            retry_after: soonest.max(Duration::from_secs(1)),
        }
    }

    /// The primary, then the fallback; each provider's retries get an equal
    /// share of the budget (the primary's unused share goes to the fallback).
    async fn complete(&self, req: ChatRequest) -> Result<Completion, LlmError> {
        let start = Instant::now();
        let deadline = start + self.timeout + self.retry_budget;
        let n = self.chat.len() as u32;
        let mut last = None;
        for (i, p) in self.chat.iter().enumerate() {
            if !p.circuit.allow() {
                continue;
            }
            let budget = Budget {
                attempt_timeout: self.timeout,
                retry_until: start + self.retry_budget * (i as u32 + 1) / n,
                deadline,
            };
            match p.complete(&self.client, &req, budget).await {
                Ok(c) => return Ok(c),
                Err(e) => {
                    if i + 1 < self.chat.len() {
                        tracing::warn!(provider = %p.name, error = %e, "LLM provider failed; trying the fallback");
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| {
            self.unavailable(self.chat.iter().map(|p| p.circuit.wait()).collect())
        }))
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, LlmError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let p = &self.embeddings;
        // Vectors from another model are not comparable: no fallback here.
        if !p.circuit.allow() {
            return Err(LlmError::Unavailable {
                provider: p.name.clone(),
                retry_after: p.circuit.wait().max(Duration::from_secs(1)),
            });
        }
        let start = Instant::now();
        let budget = Budget {
            attempt_timeout: self.timeout,
            retry_until: start + self.retry_budget,
            deadline: start + self.timeout + self.retry_budget,
        };
        p.embed(&self.client, &texts, self.dimensions, budget).await
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
        let Complete { request, ticket } = msg;
        let shared = Arc::clone(&self.shared);
        let deadline = shared.deadline();
        serve(
            "llm",
            "complete",
            ticket,
            deadline,
            ctx.address().recipient(),
            async move { shared.complete(request).await },
        )
    }
}

impl Handler<Embed> for LlmActor {
    type Result = actix::ResponseFuture<(Result<Vec<Vec<f32>>, LlmError>, Timing)>;

    fn handle(&mut self, msg: Embed, ctx: &mut Self::Context) -> Self::Result {
        let Embed { texts, ticket } = msg;
        let shared = Arc::clone(&self.shared);
        let deadline = shared.deadline();
        serve(
            "llm",
            "embed",
            ticket,
            deadline,
            ctx.address().recipient(),
            async move { shared.embed(texts).await },
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

    pub fn is_offline(&self) -> bool {
        self.shared.is_offline()
    }

    /// Whether the offline coach may answer (primary or fallback).
    pub fn may_answer_offline(&self) -> bool {
        self.shared.may_answer_offline()
    }

    /// Admits one chat: its embeddings and completions then ride on this
    /// one admission (see [`LlmJob`]). Fails at once, costing nothing, when
    /// the family is full or every chat provider's circuit is open.
    pub fn admit(&self) -> Result<LlmJob, LlmError> {
        if let Some(e) = self.shared.all_open() {
            return Err(e);
        }
        Ok(LlmJob {
            handle: self.clone(),
            admission: self.shared.gate.admit_job()?,
        })
    }

    /// A single completion, admitted on its own.
    pub async fn complete(&self, request: ChatRequest) -> Result<Completion, LlmError> {
        if let Some(e) = self.shared.all_open() {
            return Err(e);
        }
        let ticket = self.shared.gate.admit()?;
        self.send_complete(request, ticket).await
    }

    /// A single embedding call, admitted on its own.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, LlmError> {
        let ticket = self.shared.gate.admit()?;
        self.send_embed(texts, ticket).await
    }

    async fn send_complete(
        &self,
        request: ChatRequest,
        ticket: Ticket,
    ) -> Result<Completion, LlmError> {
        let (out, timing) = self
            .addr
            .send(Complete { request, ticket })
            .await
            .map_err(|e| ActorError::from_mailbox("llm", e))?;
        trace::record("llm", "complete", timing);
        out
    }

    async fn send_embed(
        &self,
        texts: Vec<String>,
        ticket: Ticket,
    ) -> Result<Vec<Vec<f32>>, LlmError> {
        let (out, timing) = self
            .addr
            .send(Embed { texts, ticket })
            .await
            .map_err(|e| ActorError::from_mailbox("llm", e))?;
        trace::record("llm", "embed", timing);
        out
    }
}

/// One admitted chat. Under overload new chats are refused before their
/// first call, so a chat that got in finishes: refusing its last embedding
/// would throw away the completion it already paid for.
pub struct LlmJob {
    handle: LlmHandle,
    admission: Admission,
}

impl LlmJob {
    /// Answers the conversation (text and/or tool calls).
    pub async fn complete(&self, request: ChatRequest) -> Result<Completion, LlmError> {
        self.handle
            .send_complete(request, self.admission.ticket())
            .await
    }

    /// One vector per text, of `llm.embedding_dimensions` numbers.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, LlmError> {
        self.handle.send_embed(texts, self.admission.ticket()).await
    }
}
