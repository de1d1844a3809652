//! One configured provider: its endpoint, key, circuit and counters, and the
//! HTTP call with retries.
//!
//! Retries (exponential backoff with jitter, via `backoff`) cover failures
//! that may pass: connect errors, timeouts, 429 and 5xx. A `Retry-After` is
//! waited instead of the backoff when it fits the budget; otherwise the call
//! gives up with that answer. Nothing waits past the request's deadline.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use backoff::backoff::Backoff;
use backoff::ExponentialBackoff;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use serde_json::Value;

use super::{anthropic, openai, ChatRequest, Completion, LlmError, Role};
use crate::circuit::Circuit;

/// Which wire format and defaults a provider has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// The built-in coach: answers with the route's `offline_reply`; no network.
    Offline,
    Anthropic,
    OpenAi,
    /// Any server speaking OpenAI's format: Ollama, vLLM, llama.cpp.
    OpenAiCompatible,
}

impl ProviderKind {
    /// The config spelling: offline, anthropic, openai, openai_compatible.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "offline" => Some(Self::Offline),
            "anthropic" => Some(Self::Anthropic),
            "openai" => Some(Self::OpenAi),
            "openai_compatible" => Some(Self::OpenAiCompatible),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Offline => "offline",
            Self::Anthropic => "anthropic",
            Self::OpenAi => "openai",
            Self::OpenAiCompatible => "openai_compatible",
        }
    }

    /// Where the provider lives unless `base_url` says otherwise
    /// (OpenAI-compatible: a local Ollama).
    pub fn default_base_url(self) -> &'static str {
        match self {
            Self::Offline => "",
            Self::Anthropic => "https://api.anthropic.com",
            Self::OpenAi => "https://api.openai.com",
            Self::OpenAiCompatible => "http://127.0.0.1:11434",
        }
    }
}

/// A provider as configured. The key never reaches `Debug`.
#[derive(Clone)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    pub model: String,
    /// Empty: the kind's default. A trailing `/v1` is accepted.
    pub base_url: String,
    /// Empty: no key sent.
    pub api_key: String,
}

impl ProviderConfig {
    pub fn offline() -> Self {
        Self {
            kind: ProviderKind::Offline,
            model: "offline".into(),
            base_url: String::new(),
            api_key: String::new(),
        }
    }
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("kind", &self.kind)
            .field("model", &self.model)
            .field("base_url", &strip_query(&self.base_url))
            .field(
                "api_key",
                &if self.api_key.is_empty() {
                    ""
                } else {
                    "[redacted]"
                },
            )
            .finish()
    }
}

/// A provider's counters, for the metrics route.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProviderStats {
    pub name: String,
    /// primary, fallback or embeddings.
    pub role: &'static str,
    pub model: String,
    /// Calls made (each with its retries), and those that failed.
    pub calls: u64,
    pub failures: u64,
    /// HTTP requests sent, retries included.
    pub requests: u64,
    pub circuit_open: bool,
}

/// The time limits of one call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// Each HTTP attempt's own timeout (`llm.timeout_ms`).
    pub attempt_timeout: Duration,
    /// No retry starts after this.
    pub retry_until: Instant,
    /// Nothing runs past this.
    pub deadline: Instant,
}

/// Why one HTTP attempt failed. Carries no URL, body or key.
#[derive(Debug, Clone)]
enum Failure {
    Connect,
    Timeout,
    /// The connection broke while reading the answer.
    Transport,
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
}

impl Failure {
    fn transient(&self) -> bool {
        match self {
            Failure::Connect | Failure::Timeout | Failure::Transport => true,
            Failure::Status { status, .. } => *status == 429 || *status >= 500,
        }
    }

    fn status(&self) -> u16 {
        match self {
            Failure::Status { status, .. } => *status,
            _ => 0,
        }
    }

    fn describe(&self) -> String {
        match self {
            Failure::Connect => "connection failed".into(),
            Failure::Timeout => "timed out".into(),
            Failure::Transport => "connection broke while reading the answer".into(),
            Failure::Status { status, .. } => format!("answered HTTP {status}"),
        }
    }

    fn into_error(self, provider: &str) -> LlmError {
        match self {
            Failure::Connect | Failure::Transport => LlmError::Unavailable {
                provider: provider.to_string(),
                retry_after: Duration::from_secs(1),
            },
            Failure::Timeout => LlmError::Timeout,
            Failure::Status {
                status: 429,
                retry_after,
            } => LlmError::RateLimited {
                retry_after: retry_after.unwrap_or(Duration::from_secs(1)),
            },
            Failure::Status { status, .. } => LlmError::Upstream {
                provider: provider.to_string(),
                status,
            },
        }
    }

    fn from_reqwest(e: &reqwest::Error) -> Self {
        if e.is_timeout() {
            Failure::Timeout
        } else if e.is_connect() {
            Failure::Connect
        } else {
            Failure::Transport
        }
    }
}

/// Exponential backoff with jitter that ends where the budget does.
struct Bounded {
    inner: ExponentialBackoff,
    until: Instant,
}

impl Backoff for Bounded {
    fn next_backoff(&mut self) -> Option<Duration> {
        let wait = self.inner.next_backoff()?;
        (Instant::now() + wait < self.until).then_some(wait)
    }

    fn reset(&mut self) {
        self.inner.reset();
    }
}

fn policy(until: Instant) -> Bounded {
    Bounded {
        inner: ExponentialBackoff {
            initial_interval: Duration::from_millis(100),
            randomization_factor: 0.5,
            multiplier: 2.0,
            max_interval: Duration::from_secs(2),
            // Bounded by `until` instead.
            max_elapsed_time: None,
            ..ExponentialBackoff::default()
        },
        until,
    }
}

/// `Retry-After-Ms` (OpenAI) or `Retry-After` in seconds.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let read = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    read("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms / 1e3))
        .or_else(|| read("retry-after").map(Duration::from_secs_f64))
}

/// Base URLs may carry a query string (some gateways put tokens there): it
/// is never shown.
pub(crate) fn strip_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

pub(crate) struct Provider {
    pub(crate) kind: ProviderKind,
    pub(crate) name: String,
    role: &'static str,
    pub(crate) model: String,
    base: String,
    headers: HeaderMap,
    pub(crate) circuit: Circuit,
    calls: AtomicU64,
    failures: AtomicU64,
    requests: AtomicU64,
}

impl Provider {
    pub(crate) fn new(
        cfg: &ProviderConfig,
        role: &'static str,
        circuit: Circuit,
    ) -> Result<Self, String> {
        let raw = if cfg.base_url.trim().is_empty() {
            cfg.kind.default_base_url()
        } else {
            cfg.base_url.trim()
        };
        let base = raw.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base).to_string();
        let mut headers = HeaderMap::new();
        if !cfg.api_key.is_empty() {
            let bad = || {
                format!(
                    "the {} API key is not a valid header value",
                    cfg.kind.name()
                )
            };
            let (name, value) = match cfg.kind {
                ProviderKind::Anthropic => ("x-api-key", cfg.api_key.clone()),
                _ => ("authorization", format!("Bearer {}", cfg.api_key)),
            };
            let mut value = HeaderValue::from_str(&value).map_err(|_| bad())?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        if cfg.kind == ProviderKind::Anthropic {
            headers.insert(
                "anthropic-version",
                HeaderValue::from_static(anthropic::VERSION),
            );
        }
        Ok(Self {
            kind: cfg.kind,
            name: cfg.kind.name().to_string(),
            role,
            model: cfg.model.clone(),
            base,
            headers,
            circuit,
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        })
    }

    pub(crate) fn stats(&self) -> ProviderStats {
        ProviderStats {
            name: self.name.clone(),
            role: self.role,
            model: self.model.clone(),
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            circuit_open: self.circuit.is_open(),
        }
    }

    /// Answers the conversation; counts the call and feeds the circuit.
    pub(crate) async fn complete(
        &self,
        client: &reqwest::Client,
        req: &ChatRequest,
        budget: Budget,
    ) -> Result<Completion, LlmError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let out = match self.kind {
            ProviderKind::Offline => Ok(offline(req)),
            ProviderKind::Anthropic => {
                let body = json_bytes(&anthropic::encode(&self.model, req));
                match self.post(client, "/v1/messages", body, budget).await {
                    Ok(bytes) => self.finish(anthropic::decode(&bytes)),
                    Err(e) => Err(e),
                }
            }
            ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => {
                let field = if self.kind == ProviderKind::OpenAi {
                    "max_completion_tokens"
                } else {
                    "max_tokens"
                };
                let body = json_bytes(&openai::encode(&self.model, req, field));
                match self
                    .post(client, "/v1/chat/completions", body, budget)
                    .await
                {
                    Ok(bytes) => self.finish(openai::decode(&bytes)),
                    Err(e) => Err(e),
                }
            }
        };
        self.account(&out);
        out
    }

    /// One vector of `dim` numbers per text.
    pub(crate) async fn embed(
        &self,
        client: &reqwest::Client,
        texts: &[String],
        dim: usize,
        budget: Budget,
    ) -> Result<Vec<Vec<f32>>, LlmError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let out = match self.kind {
            ProviderKind::Offline | ProviderKind::Anthropic => Ok(texts
                .iter()
                .map(|t| domain::embedding::embed(t, dim))
                .collect()),
            ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => {
                // Compatible servers differ on `dimensions`; the model must
                // produce `dim` on its own, which is checked.
                let dims = (self.kind == ProviderKind::OpenAi).then_some(dim);
                let body = json_bytes(&openai::encode_embeddings(&self.model, texts, dims));
                match self.post(client, "/v1/embeddings", body, budget).await {
                    Ok(bytes) => openai::decode_embeddings(&bytes, texts.len(), dim)
                        .map_err(|e| LlmError::Malformed(format!("{}: {e}", self.name))),
                    Err(e) => Err(e),
                }
            }
        };
        self.account(&out);
        out
    }

    fn finish(
        &self,
        decoded: Result<(String, Vec<super::ToolCall>, Option<String>), String>,
    ) -> Result<Completion, LlmError> {
        match decoded {
            Ok((text, tool_calls, model)) => Ok(Completion {
                text,
                tool_calls,
                provider: self.name.clone(),
                model: model.unwrap_or_else(|| self.model.clone()),
            }),
            Err(e) => {
                tracing::warn!(provider = %self.name, error = %e, "malformed LLM answer");
                Err(LlmError::Malformed(format!("{}: {e}", self.name)))
            }
        }
    }

    fn account<T>(&self, out: &Result<T, LlmError>) {
        match out {
            Ok(_) => self.circuit.success(),
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                // A request the provider refused as such says nothing about
                // the provider's health.
                let about_the_request = matches!(
                    e,
                    LlmError::Upstream {
                        status: 400 | 404 | 413 | 422,
                        ..
                    }
                );
                if !about_the_request {
                    self.circuit.failure();
                }
            }
        }
    }

    /// POSTs `body` with retries; the successful answer's bytes.
    async fn post(
        &self,
        client: &reqwest::Client,
        path: &str,
        body: Bytes,
        budget: Budget,
    ) -> Result<Vec<u8>, LlmError> {
        let url = format!("{}{path}", self.base);
        let attempts = AtomicU32::new(0);
        let retry_until = budget.retry_until.min(budget.deadline);
        let attempt = || async {
            let n = attempts.fetch_add(1, Ordering::Relaxed) + 1;
            let left = budget.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(backoff::Error::permanent(Failure::Timeout));
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let sent = client
                .post(&url)
                .headers(self.headers.clone())
                .timeout(budget.attempt_timeout.min(left))
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            let failure = match sent {
                Ok(res) if res.status().is_success() => match res.bytes().await {
                    Ok(bytes) => return Ok(bytes.to_vec()),
                    Err(e) => Failure::from_reqwest(&e),
                },
                Ok(res) => Failure::Status {
                    status: res.status().as_u16(),
                    retry_after: retry_after(res.headers()),
                },
                Err(e) => Failure::from_reqwest(&e),
            };
            tracing::warn!(
                provider = %self.name,
                status = failure.status(),
                attempt = n,
                error = %failure.describe(),
                "LLM provider call failed"
            );
            Err(match failure {
                f if !f.transient() => backoff::Error::permanent(f),
                Failure::Status {
                    status,
                    retry_after: Some(wait),
                } => {
                    let f = Failure::Status {
                        status,
                        retry_after: Some(wait),
                    };
                    if Instant::now() + wait < retry_until {
                        backoff::Error::retry_after(f, wait)
                    } else {
                        backoff::Error::permanent(f)
                    }
                }
                f => backoff::Error::transient(f),
            })
        };
        backoff::future::retry(policy(retry_until), attempt)
            .await
            .map_err(|f| f.into_error(&self.name))
    }
}

/// The request body, serialised once: a call waiting on the model holds
/// these bytes (shared by its retries), not the `Value` tree they came from,
/// which took ~30 KB per waiting chat in a heap profile.
fn json_bytes(body: &Value) -> Bytes {
    Bytes::from(body.to_string())
}

/// The offline coach: the chat route's own answer, or an echo without one.
fn offline(req: &ChatRequest) -> Completion {
    if !req.offline_tool_calls.is_empty() {
        return Completion {
            text: String::new(),
            tool_calls: req.offline_tool_calls.clone(),
            provider: "offline".into(),
            model: "offline".into(),
        };
    }
    let text = req.offline_reply.clone().unwrap_or_else(|| {
        let last = req
            .turns
            .iter()
            .rev()
            .find(|t| t.role == Role::User)
            .map(|t| t.content.as_str())
            .unwrap_or_default();
        format!("(offline mode) I heard: {last}")
    });
    Completion {
        text,
        tool_calls: Vec::new(),
        provider: "offline".into(),
        model: "offline".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_openais_milliseconds() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        let mut date = HeaderMap::new();
        date.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&date), None);
    }

    #[test]
    fn base_urls_take_a_trailing_v1_or_slash_and_default_per_kind() {
        let mk = |kind, base: &str| {
            let cfg = ProviderConfig {
                kind,
                model: "m".into(),
                base_url: base.into(),
                api_key: String::new(),
            };
            Provider::new(&cfg, "primary", Circuit::new(1, Duration::ZERO))
                .unwrap()
                .base
        };
        assert_eq!(mk(ProviderKind::Anthropic, ""), "https://api.anthropic.com");
        assert_eq!(mk(ProviderKind::OpenAi, ""), "https://api.openai.com");
        assert_eq!(
            mk(ProviderKind::OpenAiCompatible, "http://h:8000/v1/"),
            "http://h:8000"
        );
    }

    #[test]
    fn keys_go_in_sensitive_headers_and_never_into_debug() {
        let cfg = ProviderConfig {
            kind: ProviderKind::Anthropic,
            model: "m".into(),
            base_url: "https://gw.example/?token=abc".into(),
            api_key: "sk-ant-secret".into(),
        };
        let p = Provider::new(&cfg, "primary", Circuit::new(1, Duration::ZERO)).unwrap();
        assert!(p.headers["x-api-key"].is_sensitive());
        assert_eq!(p.headers["anthropic-version"], "2023-06-01");
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("sk-ant-secret") && !shown.contains("abc"),
            "{shown}"
        );
        let openai = ProviderConfig {
            kind: ProviderKind::OpenAi,
            api_key: "sk-secret".into(),
            ..cfg
        };
        let p = Provider::new(&openai, "primary", Circuit::new(1, Duration::ZERO)).unwrap();
        assert_eq!(p.headers["authorization"], "Bearer sk-secret");
        assert!(p.headers["authorization"].is_sensitive());
    }

    #[test]
    fn only_failures_that_may_pass_are_retried() {
        let s = |status| Failure::Status {
            status,
            retry_after: None,
        };
        for f in [Failure::Connect, Failure::Timeout, s(429), s(500), s(503)] {
            assert!(f.transient(), "{f:?}");
        }
        for f in [s(400), s(401), s(404)] {
            assert!(!f.transient(), "{f:?}");
        }
    }
}
