//! `health-agent mock-llm`: a stand-in language-model server for tests, load
//! tests and demos without a provider account. It speaks Anthropic Messages
//! (`POST /v1/messages`), OpenAI Chat Completions (`POST /v1/chat/completions`)
//! and OpenAI Embeddings (`POST /v1/embeddings`, vectors from
//! `domain::embedding`), with configurable latency and failures:
//! 500s, 429s with `Retry-After: 1`, answers that never come, and broken JSON.
//!
//! Answers are predictable so tests can assert on them:
//! - tools offered (one named `log_food`) and the last user message says what
//!   they ate ("I ate ...", "I had ...") with no tool result after it: a
//!   `log_food {"description": ...}` tool call; when what they ate starts
//!   with "my " ("I had my usual breakfast") and `log_meal` is offered, a
//!   `log_meal {"name": "usual breakfast"}` call;
//! - a tool result after the last user message: a final text answer quoting it;
//! - otherwise: every system-prompt line starting with `- memory:`, verbatim,
//!   then `Mock reply to: <last user message>`.
//!
//! `GET /__mock/stats` counts requests by endpoint and outcome; `GET /__mock/last`
//! returns the last chat request;
//! `POST /__mock/config` changes latency and failure rates at run time, or
//! queues a `script` of outcomes for the next requests (deterministic tests).

use std::collections::{BTreeMap, VecDeque};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// How the mock behaves. `Default` is a perfect, instant provider on a free
/// port (what in-process tests start from); the command line's defaults are
/// a realistic, slightly flaky one.
#[derive(Debug, Clone, clap::Args)]
pub struct MockOptions {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 8089)]
    pub port: u16,
    /// Mean answer latency.
    #[arg(long, default_value_t = 800)]
    pub latency_ms: u64,
    /// Latency varies uniformly by up to this much either way.
    #[arg(long, default_value_t = 200)]
    pub jitter_ms: u64,
    /// Share of requests answered 500.
    #[arg(long, default_value_t = 0.05)]
    pub error_rate: f64,
    /// Share answered 429 with `Retry-After: 1`.
    #[arg(long, default_value_t = 0.02)]
    pub rate_limit_rate: f64,
    /// Share never answered (the mock waits 60 s).
    #[arg(long, default_value_t = 0.0)]
    pub timeout_rate: f64,
    /// Share answered 200 with broken JSON.
    #[arg(long, default_value_t = 0.0)]
    pub malformed_rate: f64,
    /// Seed of the failure dice (default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Require this key (`x-api-key` or `Authorization: Bearer`); 401 otherwise.
    #[arg(long)]
    pub api_key: Option<String>,
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            port: 0,
            latency_ms: 0,
            jitter_ms: 0,
            error_rate: 0.0,
            rate_limit_rate: 0.0,
            timeout_rate: 0.0,
            malformed_rate: 0.0,
            seed: Some(1),
            api_key: None,
        }
    }
}

/// What one request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Error,
    RateLimited,
    Timeout,
    Malformed,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::RateLimited => "rate_limited",
            Outcome::Timeout => "timeout",
            Outcome::Malformed => "malformed",
        }
    }
}

/// The run-time adjustable part of the options.
#[derive(Debug, Clone, Serialize)]
struct Behaviour {
    latency_ms: u64,
    jitter_ms: u64,
    error_rate: f64,
    rate_limit_rate: f64,
    timeout_rate: f64,
    malformed_rate: f64,
    /// Outcomes for the next requests, before the dice.
    script: VecDeque<Outcome>,
}

impl Behaviour {
    fn check(&self) -> Result<(), String> {
        let rates = [
            ("error_rate", self.error_rate),
            ("rate_limit_rate", self.rate_limit_rate),
            ("timeout_rate", self.timeout_rate),
            ("malformed_rate", self.malformed_rate),
        ];
        for (name, r) in rates {
            if !(0.0..=1.0).contains(&r) {
                return Err(format!("{name}: expected 0 to 1, got {r}"));
            }
        }
        let sum: f64 = rates.iter().map(|(_, r)| r).sum();
        if sum > 1.0 + 1e-9 {
            return Err(format!("the failure rates add up to {sum}, more than 1"));
        }
        Ok(())
    }
}

/// `POST /__mock/config`: any subset of the fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Patch {
    latency_ms: Option<u64>,
    jitter_ms: Option<u64>,
    error_rate: Option<f64>,
    rate_limit_rate: Option<f64>,
    timeout_rate: Option<f64>,
    malformed_rate: Option<f64>,
    /// Replaces the queued outcomes.
    script: Option<Vec<Outcome>>,
    /// Zero the counters.
    #[serde(default)]
    reset_stats: bool,
}

struct MockState {
    behaviour: Mutex<Behaviour>,
    rng: Mutex<u64>,
    stats: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
    ids: AtomicU64,
    api_key: Option<String>,
    /// The last chat request's body, for tests that check what the model saw.
    last_chat: Mutex<Option<serde_json::Value>>,
}

impl MockState {
    /// splitmix64: a uniform number in [0, 1).
    fn dice(&self) -> f64 {
        let Ok(mut s) = self.rng.lock() else {
            return 1.0;
        };
        *s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The outcome and the latency of the next request.
    fn draw(&self) -> (Outcome, Duration) {
        let (scripted, b) = match self.behaviour.lock() {
            Ok(mut b) => (b.script.pop_front(), b.clone()),
            Err(_) => return (Outcome::Error, Duration::ZERO),
        };
        let outcome = scripted.unwrap_or_else(|| {
            let r = self.dice();
            let mut edge = 0.0;
            for (rate, o) in [
                (b.error_rate, Outcome::Error),
                (b.rate_limit_rate, Outcome::RateLimited),
                (b.timeout_rate, Outcome::Timeout),
                (b.malformed_rate, Outcome::Malformed),
            ] {
                edge += rate;
                if r < edge {
                    return o;
                }
            }
            Outcome::Ok
        });
        let spread = b.jitter_ms as f64 * (2.0 * self.dice() - 1.0);
        let ms = (b.latency_ms as f64 + spread).max(0.0);
        (outcome, Duration::from_secs_f64(ms / 1e3))
    }

    fn count(&self, endpoint: &str, outcome: &str) {
        if let Ok(mut s) = self.stats.lock() {
            *s.entry(endpoint.to_string())
                .or_default()
                .entry(outcome.to_string())
                .or_default() += 1;
        }
    }

    fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn authorised(&self, req: &HttpRequest) -> bool {
        let Some(key) = &self.api_key else {
            return true;
        };
        let h = |name: header::HeaderName| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        h(header::HeaderName::from_static("x-api-key")).as_deref() == Some(key.as_str())
            || h(header::AUTHORIZATION).as_deref() == Some(format!("Bearer {key}").as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Anthropic,
    OpenAi,
    Embeddings,
}

impl Wire {
    fn path(self) -> &'static str {
        match self {
            Wire::Anthropic => "/v1/messages",
            Wire::OpenAi => "/v1/chat/completions",
            Wire::Embeddings => "/v1/embeddings",
        }
    }

    fn error(self, status: u16, kind: &str, message: &str) -> HttpResponse {
        let body = match self {
            Wire::Anthropic => {
                json!({"type": "error", "error": {"type": kind, "message": message}})
            }
            _ => json!({"error": {"message": message, "type": kind, "code": Value::Null}}),
        };
        let status = actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
        HttpResponse::build(status).json(body)
    }
}

async fn messages(state: web::Data<MockState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    remember(&state, &body);
    answer(&state, Wire::Anthropic, &req, &body).await
}

async fn chat_completions(
    state: web::Data<MockState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    remember(&state, &body);
    answer(&state, Wire::OpenAi, &req, &body).await
}

async fn embeddings(
    state: web::Data<MockState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    answer(&state, Wire::Embeddings, &req, &body).await
}

/// Answers `latency` after `arrived`, to the tenth of a millisecond. tokio's
/// timer rounds a deadline up to its next 1 ms tick (and a zero sleep waits
/// for one), which added ~1 ms to every answer and so to the chat overhead
/// the benchmarks measure as "end-to-end minus the mock's latency". The
/// timer covers all but the last 2 ms; a blocking-pool thread sleeps the rest.
async fn wait_precisely(arrived: std::time::Instant, latency: Duration) {
    let deadline = arrived + latency;
    let coarse = deadline.checked_sub(Duration::from_millis(2));
    if let Some(t) = coarse.filter(|t| *t > std::time::Instant::now()) {
        tokio::time::sleep_until(t.into()).await;
    }
    let rest = deadline.saturating_duration_since(std::time::Instant::now());
    if rest.is_zero() {
        return;
    }
    // A burst of thousands of answers at once would queue on the blocking
    // pool: past a few precise sleeps at a time, the timer does it.
    static PRECISE: AtomicUsize = AtomicUsize::new(0);
    if PRECISE.fetch_add(1, Ordering::AcqRel) < 8 {
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
    } else {
        tokio::time::sleep(rest).await;
    }
    PRECISE.fetch_sub(1, Ordering::AcqRel);
}

async fn answer(state: &MockState, wire: Wire, req: &HttpRequest, body: &[u8]) -> HttpResponse {
    let arrived = std::time::Instant::now();
    let endpoint = wire.path();
    if !state.authorised(req) {
        state.count(endpoint, "unauthorized");
        return wire.error(401, "authentication_error", "invalid API key");
    }
    if wire == Wire::Anthropic && !req.headers().contains_key("anthropic-version") {
        state.count(endpoint, "bad_request");
        return wire.error(
            400,
            "invalid_request_error",
            "anthropic-version header is required",
        );
    }
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            state.count(endpoint, "bad_request");
            return wire.error(
                400,
                "invalid_request_error",
                "the body is not a JSON object",
            );
        }
    };
    let (outcome, latency) = state.draw();
    state.count(endpoint, outcome.name());
    wait_precisely(arrived, latency).await;
    match outcome {
        Outcome::Error => wire.error(500, "api_error", "mock: internal server error"),
        Outcome::RateLimited => {
            let mut res = wire.error(429, "rate_limit_error", "mock: rate limited");
            res.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            res
        }
        Outcome::Timeout => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            wire.error(504, "timeout", "mock: gave up")
        }
        Outcome::Malformed => HttpResponse::Ok()
            .content_type("application/json")
            .body(r#"{"id": "mock", "content": [{"type": "text", "te"#),
        Outcome::Ok => match wire {
            Wire::Embeddings => HttpResponse::Ok().json(embeddings_answer(&parsed)),
            _ => {
                let conv = Conversation::read(wire, &parsed);
                let reply = conv.reply(state.next_id());
                HttpResponse::Ok().json(render(wire, &parsed, &reply, state.next_id()))
            }
        },
    }
}

/// The parts of a conversation the canned answers depend on.
#[derive(Debug, Default)]
struct Conversation {
    system: String,
    /// (is a tool result, text) of user-side turns, in order.
    user_side: Vec<(bool, String)>,
    tools: Vec<String>,
}

/// Text of a content field: a string, or an array of `{type: text, text}` parts.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

impl Conversation {
    fn read(wire: Wire, body: &Value) -> Self {
        let mut c = Conversation::default();
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        match wire {
            Wire::Anthropic => {
                c.system = text_of(&body["system"]);
                for m in messages.iter().filter(|m| m["role"] == "user") {
                    match &m["content"] {
                        Value::Array(blocks) => {
                            for b in blocks {
                                match b["type"].as_str() {
                                    Some("tool_result") => {
                                        c.user_side.push((true, text_of(&b["content"])))
                                    }
                                    Some("text") => c
                                        .user_side
                                        .push((false, b["text"].as_str().unwrap_or("").into())),
                                    _ => {}
                                }
                            }
                        }
                        other => c.user_side.push((false, text_of(other))),
                    }
                }
                c.tools = names(&body["tools"], |t| &t["name"]);
            }
            _ => {
                let mut system = Vec::new();
                for m in &messages {
                    match m["role"].as_str() {
                        Some("system") | Some("developer") => system.push(text_of(&m["content"])),
                        Some("user") => c.user_side.push((false, text_of(&m["content"]))),
                        Some("tool") => c.user_side.push((true, text_of(&m["content"]))),
                        _ => {}
                    }
                }
                c.system = system.join("\n");
                c.tools = names(&body["tools"], |t| &t["function"]["name"]);
            }
        }
        c
    }

    fn reply(&self, id: u64) -> Reply {
        let last_user = self.user_side.iter().rposition(|(tool, _)| !tool);
        let said = last_user
            .map(|i| self.user_side[i].1.clone())
            .unwrap_or_default();
        let tool_result = self
            .user_side
            .iter()
            .skip(last_user.map_or(0, |i| i + 1))
            .rfind(|(tool, _)| *tool)
            .map(|(_, t)| t.clone());
        let memories: Vec<&str> = self
            .system
            .lines()
            .filter(|l| l.trim_start().starts_with("- memory:"))
            .collect();
        let mut lines: Vec<String> = memories.iter().map(|l| l.trim_end().to_string()).collect();
        match tool_result {
            Some(result) => {
                lines.push(format!("Logged it. Tool said: {result}"));
                Reply::Text(lines.join("\n"))
            }
            None => match food_eaten(&said) {
                // "I had my usual breakfast": a saved meal, by its name.
                Some(d) if d.starts_with("my ") && self.tools.iter().any(|t| t == "log_meal") => {
                    Reply::Tool {
                        id: format!("mock_{id}"),
                        name: "log_meal",
                        arguments: json!({"name": d.trim_start_matches("my ")}),
                    }
                }
                Some(description) if self.tools.iter().any(|t| t == "log_food") => Reply::Tool {
                    id: format!("mock_{id}"),
                    name: "log_food",
                    arguments: json!({ "description": description }),
                },
                _ => {
                    lines.push(format!("Mock reply to: {said}"));
                    Reply::Text(lines.join("\n"))
                }
            },
        }
    }
}

fn names(tools: &Value, name: impl Fn(&Value) -> &Value) -> Vec<String> {
    tools
        .as_array()
        .map(|ts| {
            ts.iter()
                .filter_map(|t| name(t).as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// What follows "I ate" / "I had" (and kin), if the message says so.
fn food_eaten(message: &str) -> Option<String> {
    const MARKERS: &[&str] = &[
        "i just ate",
        "i just had",
        "i've eaten",
        "i have eaten",
        "i've had",
        "i ate",
        "i had",
    ];
    // ASCII lowering keeps byte offsets, so the match indexes the original.
    let lower = message.to_ascii_lowercase();
    for marker in MARKERS {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(marker).map(|p| p + from) {
            let starts_word = lower[..pos]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric() && c != '\'');
            if starts_word {
                let rest = message[pos + marker.len()..]
                    .trim()
                    .trim_end_matches(['.', '!', '?'])
                    .trim();
                return Some(if rest.is_empty() {
                    message.trim().to_string()
                } else {
                    rest.to_string()
                });
            }
            from = pos + marker.len();
        }
    }
    None
}

enum Reply {
    Text(String),
    Tool {
        id: String,
        name: &'static str,
        arguments: Value,
    },
}

fn render(wire: Wire, req: &Value, reply: &Reply, id: u64) -> Value {
    let model = req["model"].as_str().unwrap_or("mock");
    let input_tokens = req.to_string().len() / 4;
    match (wire, reply) {
        (Wire::Anthropic, Reply::Text(text)) => json!({
            "id": format!("msg_mock_{id}"), "type": "message", "role": "assistant",
            "model": model, "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": input_tokens, "output_tokens": text.len() / 4 + 1},
        }),
        (
            Wire::Anthropic,
            Reply::Tool {
                id: call,
                name,
                arguments,
            },
        ) => json!({
            "id": format!("msg_mock_{id}"), "type": "message", "role": "assistant",
            "model": model,
            "content": [{"type": "tool_use", "id": format!("toolu_{call}"), "name": name,
                         "input": arguments}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": input_tokens, "output_tokens": 20},
        }),
        (_, Reply::Text(text)) => json!({
            "id": format!("chatcmpl-mock-{id}"), "object": "chat.completion",
            "created": chrono::Utc::now().timestamp(), "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": input_tokens, "completion_tokens": text.len() / 4 + 1},
        }),
        (
            _,
            Reply::Tool {
                id: call,
                name,
                arguments,
            },
        ) => json!({
            "id": format!("chatcmpl-mock-{id}"), "object": "chat.completion",
            "created": chrono::Utc::now().timestamp(), "model": model,
            "choices": [{"index": 0, "finish_reason": "tool_calls",
                         "message": {"role": "assistant", "content": null, "tool_calls": [{
                             "id": format!("call_{call}"), "type": "function",
                             "function": {"name": name,
                                          "arguments": arguments.to_string()}
                         }]}}],
            "usage": {"prompt_tokens": input_tokens, "completion_tokens": 20},
        }),
    }
}

fn embeddings_answer(req: &Value) -> Value {
    let inputs: Vec<String> = match &req["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().unwrap_or_default().to_owned())
            .collect(),
        _ => Vec::new(),
    };
    let dim = req["dimensions"].as_u64().map_or(384, |d| d as usize);
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({"object": "embedding", "index": i,
                   "embedding": domain::embedding::embed(t, dim)})
        })
        .collect();
    json!({
        "object": "list", "data": data,
        "model": req["model"].as_str().unwrap_or("mock-embedding"),
        "usage": {"prompt_tokens": inputs.iter().map(|t| t.len() / 4).sum::<usize>()},
    })
}

fn remember(state: &MockState, body: &[u8]) {
    if let (Ok(v), Ok(mut last)) = (serde_json::from_slice(body), state.last_chat.lock()) {
        *last = Some(v);
    }
}

/// `GET /__mock/last`: the last chat request as received.
async fn last(state: web::Data<MockState>) -> HttpResponse {
    let last = state.last_chat.lock().ok().and_then(|l| l.clone());
    HttpResponse::Ok().json(last.unwrap_or(serde_json::Value::Null))
}

async fn stats(state: web::Data<MockState>) -> HttpResponse {
    let by_endpoint = state.stats.lock().map(|s| s.clone()).unwrap_or_default();
    let total: u64 = by_endpoint.values().flat_map(|m| m.values()).sum();
    HttpResponse::Ok().json(json!({"total": total, "by_endpoint": by_endpoint}))
}

async fn configure(state: web::Data<MockState>, body: web::Bytes) -> HttpResponse {
    let patch: Patch = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return HttpResponse::BadRequest().json(json!({"error": e.to_string()})),
    };
    let Ok(mut b) = state.behaviour.lock() else {
        return HttpResponse::InternalServerError().finish();
    };
    let mut next = b.clone();
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = patch.$f { next.$f = v; } )* };
    }
    set!(
        latency_ms,
        jitter_ms,
        error_rate,
        rate_limit_rate,
        timeout_rate,
        malformed_rate
    );
    if let Some(script) = patch.script {
        next.script = script.into();
    }
    if let Err(e) = next.check() {
        return HttpResponse::BadRequest().json(json!({"error": e}));
    }
    *b = next.clone();
    drop(b);
    if patch.reset_stats {
        if let Ok(mut s) = state.stats.lock() {
            s.clear();
        }
    }
    HttpResponse::Ok().json(next)
}

/// Binds and builds the server (not yet running).
fn build(opts: &MockOptions, signals: bool) -> std::io::Result<(u16, Server)> {
    let behaviour = Behaviour {
        latency_ms: opts.latency_ms,
        jitter_ms: opts.jitter_ms,
        error_rate: opts.error_rate,
        rate_limit_rate: opts.rate_limit_rate,
        timeout_rate: opts.timeout_rate,
        malformed_rate: opts.malformed_rate,
        script: VecDeque::new(),
    };
    behaviour
        .check()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let seed = opts.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(7, |d| d.as_nanos() as u64)
    });
    let state = web::Data::new(MockState {
        behaviour: Mutex::new(behaviour),
        rng: Mutex::new(seed),
        stats: Mutex::new(BTreeMap::new()),
        ids: AtomicU64::new(0),
        api_key: opts.api_key.clone().filter(|k| !k.is_empty()),
        last_chat: Mutex::new(None),
    });
    let listener = TcpListener::bind(("127.0.0.1", opts.port))?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(16 << 20))
            .route("/v1/messages", web::post().to(messages))
            .route("/v1/chat/completions", web::post().to(chat_completions))
            .route("/v1/embeddings", web::post().to(embeddings))
            .route("/__mock/stats", web::get().to(stats))
            .route("/__mock/last", web::get().to(last))
            .route("/__mock/config", web::post().to(configure))
    })
    .workers(2)
    .shutdown_timeout(1)
    .listen(listener)?;
    let server = if signals {
        server
    } else {
        server.disable_signals()
    };
    Ok((port, server.run()))
}

/// Starts the mock inside the current actix system (tests); port 0 picks a
/// free port. Stop it with the handle.
pub async fn start_mock(opts: MockOptions) -> std::io::Result<(u16, ServerHandle)> {
    let (port, server) = build(&opts, false)?;
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok((port, handle))
}

/// `health-agent mock-llm`: serves until Ctrl-C.
pub fn run(opts: MockOptions) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let (port, server) = build(&opts, true)?;
        println!("mock LLM listening on http://127.0.0.1:{port}");
        server.await?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn food_is_found_after_the_markers_only_at_a_word_start() {
        assert_eq!(
            food_eaten("I ate two eggs and toast.").as_deref(),
            Some("two eggs and toast")
        );
        assert_eq!(
            food_eaten("Hi! I just had a banana").as_deref(),
            Some("a banana")
        );
        assert_eq!(food_eaten("Chai had no sugar"), None);
        assert_eq!(food_eaten("How much protein?"), None);
    }

    #[test]
    fn memories_are_echoed_verbatim_before_the_reply() {
        let body = json!({
            "system": "You coach.\n- memory: vegetarian\nother\n- memory: runs on Sundays",
            "messages": [{"role": "user", "content": "What now?"}],
        });
        let Reply::Text(text) = Conversation::read(Wire::Anthropic, &body).reply(1) else {
            panic!("expected text");
        };
        assert_eq!(
            text,
            "- memory: vegetarian\n- memory: runs on Sundays\nMock reply to: What now?"
        );
    }

    #[test]
    fn a_meal_with_log_food_offered_is_a_tool_call_then_a_final_answer() {
        let tools = json!([{"type": "function", "function": {"name": "log_food"}}]);
        let first = json!({"tools": tools, "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "I had oatmeal"}]});
        assert!(matches!(
            Conversation::read(Wire::OpenAi, &first).reply(1),
            Reply::Tool { name: "log_food", arguments, .. } if arguments["description"] == "oatmeal"
        ));
        let after = json!({"tools": tools, "messages": [
            {"role": "user", "content": "I had oatmeal"},
            {"role": "assistant", "content": null, "tool_calls": []},
            {"role": "tool", "tool_call_id": "c", "content": "logged 150 kcal"}]});
        let Reply::Text(text) = Conversation::read(Wire::OpenAi, &after).reply(2) else {
            panic!("expected text");
        };
        assert!(text.contains("logged 150 kcal"), "{text}");
        let no_tools = json!({"messages": [{"role": "user", "content": "I had oatmeal"}]});
        assert!(matches!(
            Conversation::read(Wire::OpenAi, &no_tools).reply(3),
            Reply::Text(_)
        ));
    }

    #[test]
    fn rates_must_be_shares_that_fit_in_one() {
        let opts = MockOptions {
            error_rate: 0.7,
            rate_limit_rate: 0.5,
            ..MockOptions::default()
        };
        assert!(build(&opts, false).is_err());
    }
}
