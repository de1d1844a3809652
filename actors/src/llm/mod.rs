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

use actix::{Actor, AsyncContext, Context, Handler, Message};
use serde::{Deserialize, Serialize};

use crate::circuit::Circuit;
use crate::embedder::{EmbedError, EmbedderConfig, EmbedderHandle, EmbedderShared};
use crate::error::ActorError;
use crate::family::Family;
use crate::gate::{Admission, Gate, Ticket, Timing};
use crate::supervise::{serve, ServeError};
use provider::{Budget, Provider};
pub use provider::{ProviderConfig, ProviderKind, ProviderStats};

#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// Each HTTP attempt's timeout.
    pub timeout: Duration,
    pub mailbox_capacity: usize,
    pub primary: ProviderConfig,
    pub fallback: Option<ProviderConfig>,
    /// A remote embeddings provider; `None`: `local_model_dir`'s model, or
    /// the hashed embedder when that is `None` too.
    pub embeddings: Option<ProviderConfig>,
    /// The local model (all-MiniLM-L6-v2) to embed with, when no remote
    /// provider is set.
    pub local_model_dir: Option<std::path::PathBuf>,
    pub embedder: EmbedderConfig,
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
            local_model_dir: None,
            embedder: EmbedderConfig::default(),
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
    /// The local embedding model failed (not the caller's fault).
    #[error("{0}")]
    Embedder(String),
}

impl From<EmbedError> for LlmError {
    fn from(e: EmbedError) -> Self {
        match e {
            EmbedError::Actor(a) => LlmError::Actor(a),
            EmbedError::Model(m) => LlmError::Embedder(format!("local embedder: {m}")),
        }
    }
}

/// The name recorded with vectors of the hashed n-gram embedder.
pub const HASHED_MODEL_NAME: &str = "hashed-ngram-384";

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
    /// Shared: the chat's tool set is built once per process, not per
    /// call (its JSON schemas were ~18 KB per waiting chat).
    pub tools: Arc<[ToolSpec]>,
    pub max_tokens: u32,
    /// What the offline provider answers (the chat computes it: it has the user's data).
    pub offline_reply: Option<String>,
    /// The tool calls the offline coach makes before answering (the chat
    /// plans them from the message); empty once their results are in.
    #[serde(default)]
    pub offline_tool_calls: Vec<ToolCall>,
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
    /// Set when embeddings come from the local model.
    local: Option<EmbedderHandle>,
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
            // After a burst, each idle connection keeps ~20 KB of buffers
            // (and a socket): keep a few for the next calls, not thousands.
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
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
        // A remote provider wins; the model's threads start here, once per process.
        let local = match (&cfg.embeddings, &cfg.local_model_dir) {
            (None, Some(dir)) => Some(EmbedderHandle::start(
                EmbedderShared::load(dir, &cfg.embedder).map_err(LlmSetupError)?,
            )),
            _ => None,
        };
        Ok(Arc::new(Self {
            gate: Gate::new("llm", cfg.mailbox_capacity),
            timeout: cfg.timeout,
            retry_budget: cfg.retry_budget,
            client,
            chat,
            embeddings,
            local,
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

    /// The local embedder, when it makes the vectors.
    pub fn local_embedder(&self) -> Option<&EmbedderHandle> {
        self.local.as_ref()
    }

    /// Which embeddings provider is in use: local, hashed, openai, openai_compatible.
    pub fn embedding_provider(&self) -> &'static str {
        match (&self.local, self.embeddings.kind) {
            (Some(_), _) => "local",
            (None, ProviderKind::Offline | ProviderKind::Anthropic) => "hashed",
            (None, k) => k.name(),
        }
    }

    /// The name stored with each vector: vectors of different models are
    /// not comparable, so search must never mix them.
    pub fn embedding_model(&self) -> String {
        match self.embedding_provider() {
            "local" => crate::embedder::LOCAL_MODEL_NAME.to_owned(),
            "hashed" => HASHED_MODEL_NAME.to_owned(),
            kind => format!("{kind}:{}", self.embeddings.model),
        }
    }

    /// The chat provider and model (primary), as a start-up line shows them.
    pub fn chat_model(&self) -> (String, String) {
        self.chat
            .first()
            .map(|p| (p.kind.name().to_owned(), p.model.clone()))
            .unwrap_or_else(|| ("offline".into(), "offline".into()))
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

crate::restarts_on_panic!(LlmActor, "llm");

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

#[derive(Clone)]
pub struct LlmHandle {
    family: Family<LlmActor>,
    shared: Arc<LlmShared>,
}

impl LlmHandle {
    pub fn start(shared: Arc<LlmShared>) -> Self {
        let for_actor = Arc::clone(&shared);
        let family = Family::start("llm", move |_| LlmActor {
            shared: Arc::clone(&for_actor),
        });
        Self { family, shared }
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
    /// one admission (see [`LlmJob`]), and, with the local model, on one
    /// admission to the embedder family taken now too. Fails at once,
    /// costing nothing, when either family is full or every chat
    /// provider's circuit is open.
    pub fn admit(&self) -> Result<LlmJob, LlmError> {
        if let Some(e) = self.shared.all_open() {
            return Err(e);
        }
        let embedding = match &self.shared.local {
            Some(local) => Some(local.admit_job()?),
            None => None,
        };
        Ok(LlmJob {
            handle: self.clone(),
            admission: self.shared.gate.admit_job()?,
            embedding,
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

    /// A single embedding call, admitted on its own (to the embedder
    /// family with the local model, else to this one).
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, LlmError> {
        if let Some(local) = &self.shared.local {
            return Ok(local.embed(texts).await?);
        }
        let ticket = self.shared.gate.admit()?;
        self.send_embed(texts, ticket).await
    }

    async fn send_complete(
        &self,
        request: ChatRequest,
        ticket: Ticket,
    ) -> Result<Completion, LlmError> {
        self.family
            .send("complete", Complete { request, ticket })
            .await
    }

    async fn send_embed(
        &self,
        texts: Vec<String>,
        ticket: Ticket,
    ) -> Result<Vec<Vec<f32>>, LlmError> {
        self.family.send("embed", Embed { texts, ticket }).await
    }
}

/// One admitted chat. Under overload new chats are refused before their
/// first call, so a chat that got in finishes: refusing its last embedding
/// would throw away the completion it already paid for.
pub struct LlmJob {
    handle: LlmHandle,
    admission: Admission,
    /// The embedder family's slot, with the local model.
    embedding: Option<Admission>,
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
        match (&self.handle.shared.local, &self.embedding) {
            (Some(local), Some(adm)) => Ok(local.embed_with(texts, adm.ticket()).await?),
            _ => self.handle.send_embed(texts, self.admission.ticket()).await,
        }
    }
}
