//! Layered configuration: `config/default.toml`, then `config/$RUN_ENV.toml`,
//! then environment variables (the deployment guide's names, plus
//! `HEALTH_AGENT__SECTION__KEY` for any key). Every value is checked once at
//! start-up; a bad one stops the process with status 2 and names the key.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use actors::llm::ProviderKind;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value as Json;
use toml::{Table, Value};

mod actor_configs;
mod duration;
mod live;
mod providers;

pub use live::{LiveActors, LiveDatabase, LiveMetrics, LiveSettings};
pub use providers::{ChatProvider, EmbeddingProvider};

/// The defaults shipped in the binary, used when no `config/` directory is
/// next to the process (tests, containers built without it).
const EMBEDDED_DEFAULT: &str = include_str!("../config/default.toml");

/// The guide's environment names and the keys they set.
const ENV_KEYS: &[(&str, &str)] = &[
    ("RUN_MODE", "run_mode"),
    ("API_HOST", "api.host"),
    ("API_PORT", "api.port"),
    ("API_KEYS", "api.api_keys"),
    ("API_KEY_SECRET", "api.api_key_secret"),
    ("ADMIN_API_KEYS", "api.admin_api_keys"),
    ("RATE_LIMIT_PER_MINUTE", "rate_limit.per_minute"),
    ("RATE_LIMIT_CHAT_PER_MINUTE", "rate_limit.chat_per_minute"),
    ("CORS_ORIGINS", "api.cors_origins"),
    ("DATABASE_URL", "database.url"),
    ("DATABASE_URL_REPLICA", "database.replica_url"),
    ("REDIS_URL", "cache.url"),
    ("ENABLE_CACHE", "cache.enabled"),
    ("ANTHROPIC_API_KEY", "llm.anthropic_api_key"),
    ("OPENAI_API_KEY", "llm.openai_api_key"),
    ("ENABLE_METRICS", "metrics.enabled"),
    (
        "SLOW_REQUEST_THRESHOLD_MS",
        "metrics.slow_request_threshold_ms",
    ),
    ("LOG_LEVEL", "log.level"),
    ("LOG_FORMAT", "log.format"),
    ("REMINDER_WEBHOOK_URL", "reminders.webhook_url"),
    ("BACKUP_DIR", "backup.dir"),
    ("PG_BIN_DIR", "backup.pg_bin_dir"),
];

/// Prefix for setting any key from the environment:
/// `HEALTH_AGENT__ACTORS__DB__MAILBOX_CAPACITY=10` sets `actors.db.mailbox_capacity`.
const ENV_PREFIX: &str = "HEALTH_AGENT__";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

thread_local! {
    static REVEALING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with every `Secret` and `ConnUrl` serializing its real value:
/// only for comparing settings, so that which settings are secret comes
/// from their types.
fn revealing_secrets<T>(f: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            REVEALING.set(false);
        }
    }
    REVEALING.set(true);
    let _reset = Reset;
    f()
}

/// A string that never reaches a log or `config check` output.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"[redacted]\""
        })
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if REVEALING.get() || self.0.is_empty() {
            &self.0
        } else {
            "[redacted]"
        })
    }
}

/// A connection URL whose password is redacted when shown.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct ConnUrl(String);

impl ConnUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

impl fmt::Debug for ConnUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl Serialize for ConnUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if REVEALING.get() {
            s.serialize_str(&self.0)
        } else {
            s.serialize_str(&self.redacted())
        }
    }
}

/// `scheme://user:secret@host` → `scheme://user:[redacted]@host`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let Some(at) = rest.find('@') else {
        return url.to_string();
    };
    let userinfo = &rest[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:[redacted]{}",
            &url[..scheme_end],
            &userinfo[..colon],
            &rest[at..]
        ),
        None => url.to_string(),
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub run_mode: String,
    pub api: ApiSettings,
    pub database: DatabaseSettings,
    pub cache: CacheSettings,
    pub llm: LlmSettings,
    pub metrics: MetricsSettings,
    pub log: LogSettings,
    pub actors: ActorsSettings,
    pub reminders: ReminderSettings,
    pub backup: BackupSettings,
    pub rate_limit: RateLimitSettings,
    pub housekeeping: HousekeepingSettings,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub api_keys: Vec<Secret>,
    pub api_key_secret: Secret,
    /// Keys that may also call `/api/v1/admin/*` (plain or `sha256:<hex>`).
    pub admin_api_keys: Vec<Secret>,
    pub cors_origins: Vec<String>,
    pub body_limit_bytes: usize,
    #[serde(with = "duration::secs")]
    pub shutdown_timeout_secs: Duration,
    #[serde(with = "duration::millis")]
    pub drain_delay_ms: Duration,
    /// While draining, answer 503 to what a balancer re-sends elsewhere.
    pub drain_turn_away_retryable: bool,
    #[serde(with = "duration::secs")]
    pub keep_alive_secs: Duration,
    pub max_connections: usize,
    /// A listener of its own for /livez, /readyz and /api/health, outside
    /// the connection cap; 0 = none.
    pub probe_port: u16,
    pub backlog: u32,
    #[serde(with = "duration::millis")]
    pub client_request_timeout_ms: Duration,
    #[serde(with = "duration::millis")]
    pub client_disconnect_timeout_ms: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: ConnUrl,
    pub replica_url: ConnUrl,
    pub pool_max_size: u32,
    pub pool_min_idle: u32,
    #[serde(with = "duration::millis")]
    pub connection_timeout_ms: Duration,
    #[serde(with = "duration::millis")]
    pub queue_timeout_ms: Duration,
    #[serde(with = "duration::millis")]
    pub query_timeout_ms: Duration,
    pub test_on_checkout: bool,
    #[serde(with = "duration::millis")]
    pub probe_interval_ms: Duration,
    #[serde(with = "duration::millis")]
    pub probe_timeout_ms: Duration,
    #[serde(with = "duration::millis")]
    pub replica_max_lag_ms: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    pub enabled: bool,
    pub url: ConnUrl,
    pub namespace: String,
    pub pool_max_size: u32,
    #[serde(with = "duration::millis")]
    pub op_timeout_ms: Duration,
    #[serde(with = "duration::millis")]
    pub l1_ttl_ms: Duration,
    pub l1_max_entries: u64,
    pub circuit_failures: u32,
    #[serde(with = "duration::millis")]
    pub circuit_open_ms: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LlmSettings {
    pub provider: ChatProvider,
    pub model: String,
    pub base_url: ConnUrl,
    #[serde(with = "duration::millis")]
    pub timeout_ms: Duration,
    #[serde(with = "duration::millis")]
    pub retry_budget_ms: Duration,
    pub circuit_failures: u32,
    #[serde(with = "duration::millis")]
    pub circuit_open_ms: Duration,
    /// None: no fallback (empty in the file).
    #[serde(with = "providers::fallback")]
    pub fallback_provider: Option<ProviderKind>,
    pub fallback_model: String,
    pub fallback_base_url: ConnUrl,
    pub anthropic_api_key: Secret,
    pub openai_api_key: Secret,
    pub openai_compatible_api_key: Secret,
    pub embedding_provider: EmbeddingProvider,
    pub embedding_model: String,
    pub embedding_base_url: ConnUrl,
    pub embedding_dimensions: usize,
    /// all-MiniLM-L6-v2's files (config.json, tokenizer.json, model.safetensors).
    pub local_model_dir: String,
    pub embedder_threads: usize,
    pub embedder_max_batch: usize,
}

/// Chat models picked when only a provider's key is given.
pub const DEFAULT_ANTHROPIC_MODEL: &str = "claude-sonnet-4-5";
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";
/// OpenAI's embeddings model, asked for 384 dimensions.
pub const DEFAULT_OPENAI_EMBEDDING_MODEL: &str = "text-embedding-3-small";

/// The dimension of the `vector(384)` columns (migrations 003 and 004).
pub const EMBEDDING_DIMENSIONS: usize = 384;

impl LlmSettings {
    /// Turns `auto` into what is used (`chat_kind`, `embedding_kind`) and
    /// fills in a hosted provider's default model. Explicit values are kept.
    fn resolve(&mut self) {
        self.provider = ChatProvider::Kind(self.chat_kind());
        if self.model.trim().is_empty() {
            match self.chat_kind() {
                ProviderKind::Anthropic => self.model = DEFAULT_ANTHROPIC_MODEL.into(),
                ProviderKind::OpenAi => self.model = DEFAULT_OPENAI_MODEL.into(),
                _ => {}
            }
        }
        self.embedding_provider = self.embedding_kind();
        if self.embedding_provider == EmbeddingProvider::OpenAi
            && self.embedding_model.trim().is_empty()
        {
            self.embedding_model = DEFAULT_OPENAI_EMBEDDING_MODEL.into();
        }
    }

    /// The chat provider; `auto`: a key alone picks its provider (Anthropic
    /// first when both are set), else offline.
    pub fn chat_kind(&self) -> ProviderKind {
        match self.provider {
            ChatProvider::Kind(kind) => kind,
            ChatProvider::Auto if !self.anthropic_api_key.is_empty() => ProviderKind::Anthropic,
            ChatProvider::Auto if !self.openai_api_key.is_empty() => ProviderKind::OpenAi,
            ChatProvider::Auto => ProviderKind::Offline,
        }
    }

    /// The embedder, never `Auto`; `auto`: OpenAI's when it is the chat
    /// provider with a key, else the local model when its files are
    /// present, else hashed.
    pub fn embedding_kind(&self) -> EmbeddingProvider {
        match self.embedding_provider {
            EmbeddingProvider::Auto
                if self.chat_kind() == ProviderKind::OpenAi && !self.openai_api_key.is_empty() =>
            {
                EmbeddingProvider::OpenAi
            }
            EmbeddingProvider::Auto
                if actors::embedder::model_present(Path::new(&self.local_model_dir)) =>
            {
                EmbeddingProvider::Local
            }
            EmbeddingProvider::Auto => EmbeddingProvider::Hashed,
            chosen => chosen,
        }
    }

    /// The key a provider kind uses: required for anthropic and openai.
    pub fn api_key_for(&self, kind: ProviderKind) -> &Secret {
        match kind {
            ProviderKind::Anthropic => &self.anthropic_api_key,
            ProviderKind::OpenAi => &self.openai_api_key,
            ProviderKind::OpenAiCompatible | ProviderKind::Offline => {
                &self.openai_compatible_api_key
            }
        }
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut provider = |role: &str, kind: Option<ProviderKind>, model: &str, url: &str| {
            let Some(kind) = kind.filter(|k| *k != ProviderKind::Offline) else {
                return;
            };
            let kind_name = kind.name();
            if model.trim().is_empty() {
                problems.push(format!(
                    "`llm.{role}model`: expected a model name for the {kind_name} provider"
                ));
            }
            if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
                problems.push(format!(
                    "`llm.{role}base_url`: expected empty or an http(s) URL"
                ));
            }
            let var = match kind {
                ProviderKind::Anthropic => Some("ANTHROPIC_API_KEY"),
                ProviderKind::OpenAi => Some("OPENAI_API_KEY"),
                _ => None,
            };
            if let Some(var) = var.filter(|_| self.api_key_for(kind).is_empty()) {
                problems.push(format!(
                    "`llm.{kind_name}_api_key` ({var}): required by the {kind_name} provider"
                ));
            }
        };
        provider(
            "",
            Some(self.chat_kind()),
            &self.model,
            self.base_url.expose(),
        );
        provider(
            "fallback_",
            self.fallback_provider,
            &self.fallback_model,
            self.fallback_base_url.expose(),
        );
        provider(
            "embedding_",
            self.embedding_kind().remote(),
            &self.embedding_model,
            self.embedding_base_url.expose(),
        );
        if self.embedding_provider == EmbeddingProvider::Local
            && !actors::embedder::model_present(Path::new(&self.local_model_dir))
        {
            problems.push(format!(
                "`llm.local_model_dir`: {:?} does not hold all-MiniLM-L6-v2 ({}); \
                 run `./dev model` to fetch it, or set llm.embedding_provider = \"hashed\"",
                self.local_model_dir,
                actors::embedder::MODEL_FILES.join(", ")
            ));
        }
        if !(1..=64).contains(&self.embedder_threads) {
            problems.push("`llm.embedder_threads`: expected 1 to 64".into());
        }
        if !(1..=1024).contains(&self.embedder_max_batch) {
            problems.push("`llm.embedder_max_batch`: expected 1 to 1024".into());
        }
        if self.embedding_dimensions != EMBEDDING_DIMENSIONS {
            problems.push(format!(
                "`llm.embedding_dimensions`: expected {EMBEDDING_DIMENSIONS}, the size of the database's vector columns"
            ));
        }
        if self.retry_budget_ms > Duration::from_secs(3600) {
            problems.push("`llm.retry_budget_ms`: expected milliseconds from 0 to 3600000".into());
        }
        if !(1..=1000).contains(&self.circuit_failures) {
            problems.push("`llm.circuit_failures`: expected 1 to 1000".into());
        }
        problems
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    pub enabled: bool,
    pub require_api_key: bool,
    /// Only admin keys may read the metrics routes.
    pub require_admin_key: bool,
    #[serde(with = "duration::millis")]
    pub slow_request_threshold_ms: Duration,
}

/// Per-API-key request budgets, shared by every instance through Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Requests a minute for every limited route but the chat; 0 = off.
    pub per_minute: u32,
    /// Chats a minute (model cost); 0 = off.
    pub chat_per_minute: u32,
    /// Requests that may arrive at once; 0 = a whole minute's budget.
    pub burst: u32,
}

/// Background clean-up that runs on every instance (one at a time).
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HousekeepingSettings {
    pub enabled: bool,
    #[serde(with = "duration::millis")]
    pub interval_ms: Duration,
    /// Rows deleted per statement (short transactions, short locks).
    pub purge_batch: u32,
}

/// The reminder scheduler (one per process; safe on every instance).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReminderSettings {
    pub enabled: bool,
    #[serde(with = "duration::millis")]
    pub poll_interval_ms: Duration,
    /// Connections reserved for the scheduler, outside `database.pool_max_size`.
    pub db_connections: u32,
    /// May carry a token in its path or query, so it is never shown.
    pub webhook_url: Secret,
}

/// `health-agent backup` / `restore`: where dumps go, what is kept, and
/// which PostgreSQL client tools run them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSettings {
    pub dir: String,
    pub pg_bin_dir: String,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ActorsSettings {
    pub db: ActorSettings,
    pub cache: ActorSettings,
    pub llm: ActorSettings,
    pub embedder: ActorSettings,
    pub reminders: ActorSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ActorSettings {
    pub mailbox_capacity: usize,
}

impl Settings {
    /// Loads from `./config` (or `$CONFIG_DIR`) and the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        let dir = std::env::var_os("CONFIG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("config"));
        Self::from_sources(&dir, std::env::vars())
    }

    /// Loads from a config directory and an explicit environment (testable).
    pub fn from_sources(
        dir: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = env.into_iter().collect();
        let default_path = dir.join("default.toml");
        let mut table = match std::fs::read_to_string(&default_path) {
            Ok(text) => parse_toml(&text, &default_path.display().to_string())?,
            Err(_) => parse_toml(EMBEDDED_DEFAULT, "built-in default.toml")?,
        };
        if let Some(run_env) = env.get("RUN_ENV").filter(|v| !v.is_empty()) {
            if !run_env
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(ConfigError(format!(
                    "RUN_ENV={run_env:?}: expected a name such as `production`"
                )));
            }
            let path = dir.join(format!("{run_env}.toml"));
            let text = std::fs::read_to_string(&path).map_err(|e| {
                ConfigError(format!(
                    "RUN_ENV={run_env}: cannot read {}: {e}",
                    path.display()
                ))
            })?;
            let overlay = parse_toml(&text, &path.display().to_string())?;
            merge(&mut table, overlay, "")?;
        }
        // Which variable set a key, to name it when the key's type refuses the value.
        let mut set_by: BTreeMap<String, &str> = BTreeMap::new();
        for (var, key) in ENV_KEYS {
            if let Some(raw) = env.get(*var) {
                set_from_env(&mut table, key, raw, var)?;
                set_by.insert((*key).to_owned(), var);
            }
        }
        for (var, raw) in &env {
            if let Some(path) = var.strip_prefix(ENV_PREFIX) {
                let key = path.to_ascii_lowercase().replace("__", ".");
                set_from_env(&mut table, &key, raw, var)?;
                set_by.insert(key, var);
            }
        }
        if let Some(filter) = env.get("RUST_LOG").filter(|f| !f.trim().is_empty()) {
            // Logging would silently fall back to LOG_LEVEL.
            if let Err(e) = tracing_subscriber::EnvFilter::try_new(filter) {
                return Err(ConfigError(format!(
                    "RUST_LOG={filter:?}: not a tracing filter ({e})"
                )));
            }
        }
        let mut settings: Settings = serde_path_to_error::deserialize(Value::Table(table))
            .map_err(|e| {
                let key = e.path().to_string();
                match set_by.get(&key) {
                    Some(var) => ConfigError(format!("{var}: `{key}`: {}", e.inner())),
                    None => ConfigError(format!("`{key}`: {}", e.inner())),
                }
            })?;
        settings.normalise();
        settings.validate()?;
        Ok(settings)
    }

    fn normalise(&mut self) {
        self.log.level = self.log.level.trim().to_ascii_lowercase();
        self.llm.resolve();
        self.run_mode = self.run_mode.trim().to_ascii_lowercase();
        self.api.api_keys.retain(|k| !k.is_empty());
        self.api.admin_api_keys.retain(|k| !k.is_empty());
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, msg: &str| {
            if !ok {
                problems.push(msg.to_string());
            }
        };
        check(
            self.run_mode == "api",
            "`run_mode` (RUN_MODE): expected `api`",
        );
        check(
            self.database.url.expose().starts_with("postgres://")
                || self.database.url.expose().starts_with("postgresql://"),
            "`database.url` (DATABASE_URL): expected postgres://user:password@host:port/database",
        );
        let replica = self.database.replica_url.expose();
        check(
            replica.is_empty()
                || replica.starts_with("postgres://")
                || replica.starts_with("postgresql://"),
            "`database.replica_url` (DATABASE_URL_REPLICA): expected empty or postgres://...",
        );
        check(
            !self.cache.enabled
                || self.cache.url.expose().starts_with("redis://")
                || self.cache.url.expose().starts_with("rediss://"),
            "`cache.url` (REDIS_URL): expected redis://[:password@]host:port/db",
        );
        check(
            (1..=1000).contains(&self.database.pool_max_size),
            "`database.pool_max_size`: expected 1 to 1000",
        );
        check(
            self.database.pool_min_idle <= self.database.pool_max_size,
            "`database.pool_min_idle`: expected at most `database.pool_max_size`",
        );
        check(
            (1..=100).contains(&self.reminders.db_connections),
            "`reminders.db_connections`: expected 1 to 100",
        );
        check(
            (1..=1_000_000).contains(&self.api.max_connections),
            "`api.max_connections`: expected 1 to 1000000",
        );
        check(
            (1..=65_535).contains(&self.api.backlog),
            "`api.backlog`: expected 1 to 65535",
        );
        check(
            (1..=1000).contains(&self.cache.pool_max_size),
            "`cache.pool_max_size`: expected 1 to 1000",
        );
        for (name, v) in [
            (
                "database.connection_timeout_ms",
                self.database.connection_timeout_ms,
            ),
            ("database.query_timeout_ms", self.database.query_timeout_ms),
            ("database.queue_timeout_ms", self.database.queue_timeout_ms),
            (
                "api.client_request_timeout_ms",
                self.api.client_request_timeout_ms,
            ),
            (
                "api.client_disconnect_timeout_ms",
                self.api.client_disconnect_timeout_ms,
            ),
            (
                "database.probe_interval_ms",
                self.database.probe_interval_ms,
            ),
            ("database.probe_timeout_ms", self.database.probe_timeout_ms),
            (
                "database.replica_max_lag_ms",
                self.database.replica_max_lag_ms,
            ),
            ("cache.op_timeout_ms", self.cache.op_timeout_ms),
            ("cache.l1_ttl_ms", self.cache.l1_ttl_ms),
            ("cache.circuit_open_ms", self.cache.circuit_open_ms),
            ("llm.timeout_ms", self.llm.timeout_ms),
            ("llm.circuit_open_ms", self.llm.circuit_open_ms),
            (
                "reminders.poll_interval_ms",
                self.reminders.poll_interval_ms,
            ),
            (
                "metrics.slow_request_threshold_ms",
                self.metrics.slow_request_threshold_ms,
            ),
        ] {
            check(
                (Duration::from_millis(1)..=Duration::from_secs(3600)).contains(&v),
                &format!("`{name}`: expected milliseconds from 1 to 3600000"),
            );
        }
        for (name, a) in [
            ("actors.db", self.actors.db),
            ("actors.cache", self.actors.cache),
            ("actors.llm", self.actors.llm),
            ("actors.embedder", self.actors.embedder),
            ("actors.reminders", self.actors.reminders),
        ] {
            check(
                (1..=1_000_000).contains(&a.mailbox_capacity),
                &format!("`{name}.mailbox_capacity`: expected 1 to 1000000"),
            );
        }
        check(
            self.actors.reminders.mailbox_capacity >= 2,
            "`actors.reminders.mailbox_capacity`: expected at least 2 (a poll and a delivery)",
        );
        let hook = self.reminders.webhook_url.expose();
        check(
            hook.is_empty() || hook.starts_with("http://") || hook.starts_with("https://"),
            "`reminders.webhook_url` (REMINDER_WEBHOOK_URL): expected empty or an http(s) URL",
        );
        check(
            !self.backup.dir.trim().is_empty(),
            "`backup.dir` (BACKUP_DIR): expected a directory path",
        );
        check(
            self.backup.keep_daily >= 1,
            "`backup.keep_daily`: expected at least 1 (the newest backup is always kept)",
        );
        for (name, v) in [
            ("backup.keep_daily", self.backup.keep_daily),
            ("backup.keep_weekly", self.backup.keep_weekly),
            ("backup.keep_monthly", self.backup.keep_monthly),
        ] {
            check(v <= 1000, &format!("`{name}`: expected 0 to 1000"));
        }
        check(
            self.api.body_limit_bytes >= 1024,
            "`api.body_limit_bytes`: expected at least 1024",
        );
        check(
            valid_log_level(&self.log.level),
            &format!(
                "`log.level` (LOG_LEVEL): {:?} is not error, warn, info, debug, trace, off \
                 or a tracing filter of target=level directives",
                self.log.level
            ),
        );
        for origin in &self.api.cors_origins {
            check(
                origin == "*" || origin.starts_with("http://") || origin.starts_with("https://"),
                &format!("`api.cors_origins` (CORS_ORIGINS): {origin:?} is not an http(s) origin"),
            );
        }
        for (name, keys) in [
            ("api.api_keys", &self.api.api_keys),
            ("api.admin_api_keys", &self.api.admin_api_keys),
        ] {
            for k in keys {
                if let Some(hex) = k.expose().strip_prefix("sha256:") {
                    check(
                        crate::middleware::auth::parse_digest(hex).is_some(),
                        &format!("`{name}`: a `sha256:` key needs 64 hex digits after the prefix"),
                    );
                }
            }
        }
        check(
            self.rate_limit.per_minute <= 60_000_000
                && self.rate_limit.chat_per_minute <= 60_000_000,
            "`rate_limit.per_minute` / `chat_per_minute`: expected 0 (off) to 60000000",
        );
        check(
            self.rate_limit.burst <= 1_000_000,
            "`rate_limit.burst`: expected 0 (a minute's budget) to 1000000",
        );
        check(
            (Duration::from_secs(1)..=Duration::from_secs(86_400))
                .contains(&self.housekeeping.interval_ms),
            "`housekeeping.interval_ms`: expected 1000 to 86400000",
        );
        check(
            (1..=100_000).contains(&self.housekeeping.purge_batch),
            "`housekeeping.purge_batch`: expected 1 to 100000",
        );
        problems.extend(self.llm.problems());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(problems.join("\n")))
        }
    }

    /// What serving needs beyond a valid file: at least one API key, so the
    /// API is never open by accident. (`migrate` does not need one.)
    pub fn check_serving(&self) -> Result<(), ConfigError> {
        if self.api_keys().is_empty() {
            return Err(ConfigError(
                "`api.api_keys` (API_KEYS) and `api.api_key_secret` (API_KEY_SECRET) are both empty: \
                 set at least one key so the API is not open"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Every accepted API key: API_KEYS plus the guide's API_KEY_SECRET.
    pub fn api_keys(&self) -> Vec<&str> {
        self.api
            .api_keys
            .iter()
            .chain(std::iter::once(&self.api.api_key_secret))
            .map(Secret::expose)
            .filter(|k| !k.is_empty())
            .collect()
    }

    /// The admin keys (they are accepted on every route too).
    pub fn admin_api_keys(&self) -> Vec<&str> {
        self.api
            .admin_api_keys
            .iter()
            .map(Secret::expose)
            .filter(|k| !k.is_empty())
            .collect()
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }

    /// Every setting by dotted key with its real value, secrets included,
    /// so that a changed secret can be told (the redacted rendering hides
    /// it). Only to compare: never to be shown or logged.
    pub(crate) fn values_to_compare(&self) -> BTreeMap<String, Json> {
        revealing_secrets(|| dotted(self))
    }

    pub fn slow_request_threshold(&self) -> Duration {
        self.metrics.slow_request_threshold_ms
    }
}

/// `{"a": {"b": 1}}` → `{"a.b": 1}`: the keys as written in the TOML file.
pub(crate) fn dotted(value: &impl Serialize) -> BTreeMap<String, Json> {
    fn walk(prefix: &str, v: Json, out: &mut BTreeMap<String, Json>) {
        match v {
            Json::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            leaf => {
                out.insert(prefix.to_owned(), leaf);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(
        "",
        serde_json::to_value(value).unwrap_or_default(),
        &mut out,
    );
    out
}

fn parse_toml(text: &str, origin: &str) -> Result<Table, ConfigError> {
    text.parse::<Table>()
        .map_err(|e| ConfigError(format!("{origin}: {e}")))
}

/// Overlays `from` onto `into`; keys that the defaults don't have are typos.
fn merge(into: &mut Table, from: Table, prefix: &str) -> Result<(), ConfigError> {
    for (k, v) in from {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match (into.get_mut(&k), v) {
            (Some(Value::Table(a)), Value::Table(b)) => merge(a, b, &path)?,
            (Some(slot), v) => *slot = v,
            (None, _) => return Err(ConfigError(format!("`{path}`: unknown setting"))),
        }
    }
    Ok(())
}

/// Sets `key` from an environment string, parsed as the type the default has.
fn set_from_env(table: &mut Table, key: &str, raw: &str, var: &str) -> Result<(), ConfigError> {
    let mut parts = key.split('.').peekable();
    let mut t = table;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            let Some(slot) = t.get_mut(part) else { break };
            let bad =
                |expected: &str| ConfigError(format!("{var}={raw:?}: `{key}` expects {expected}"));
            *slot = match slot {
                Value::Integer(_) => match raw.trim().parse() {
                    Ok(n) => Value::Integer(n),
                    // "250ms" for a duration; any other key's type refuses it.
                    Err(_) if duration::has_units(raw) => Value::String(raw.trim().to_owned()),
                    Err(_) => return Err(bad("a whole number")),
                },
                Value::Float(_) => Value::Float(raw.trim().parse().map_err(|_| bad("a number"))?),
                Value::Boolean(_) => {
                    Value::Boolean(match raw.trim().to_ascii_lowercase().as_str() {
                        "true" | "1" | "yes" | "on" => true,
                        "false" | "0" | "no" | "off" => false,
                        _ => return Err(bad("true or false")),
                    })
                }
                Value::Array(_) => Value::Array(
                    raw.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.to_string()))
                        .collect(),
                ),
                Value::Table(_) => return Err(bad("a section, not a single value")),
                _ => Value::String(raw.to_string()),
            };
            return Ok(());
        }
        match t.get_mut(part) {
            Some(Value::Table(inner)) => t = inner,
            _ => break,
        }
    }
    Err(ConfigError(format!(
        "{var}: `{key}` is not a known setting"
    )))
}

/// A level, or a filter whose every directive names its level. tracing
/// reads a bare word as a target at TRACE, so `LOG_LEVEL=inof` would be a
/// valid filter that silently drops every log line.
fn valid_log_level(filter: &str) -> bool {
    let is_level = |l: &str| {
        ["error", "warn", "info", "debug", "trace", "off"]
            .iter()
            .any(|known| l.trim().eq_ignore_ascii_case(known))
    };
    tracing_subscriber::EnvFilter::try_new(filter).is_ok()
        && filter.split(',').filter(|d| !d.trim().is_empty()).all(|d| {
            d.rsplit_once('=')
                .map_or_else(|| is_level(d), |(_, level)| is_level(level))
        })
        && !filter.trim().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let mut vars: Vec<(String, String)> = vec![("API_KEYS".into(), "k1".into())];
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Settings::from_sources(&dir, vars)
    }

    #[test]
    fn a_log_level_is_a_level_or_a_filter_that_names_its_levels() {
        for ok in [
            "info",
            "WARN",
            "off",
            "info,actix_web=warn",
            "health_agent=debug,tower=off",
            "actors[run]=trace",
        ] {
            assert!(valid_log_level(ok), "{ok}");
        }
        // A bare word is a target to tracing: everything else goes dark.
        for bad in ["inof", "info,actix_web", "", "warn,=", "debug=loud"] {
            assert!(!valid_log_level(bad), "{bad}");
        }
    }

    #[test]
    fn the_defaults_load_and_the_guides_names_override_them() {
        let s = load(&[
            ("API_PORT", "9001"),
            ("ENABLE_CACHE", "false"),
            ("LOG_LEVEL", "INFO"),
            ("CORS_ORIGINS", "https://a.example, https://b.example"),
            ("DATABASE_URL", "postgres://u:pw@db:5432/x"),
        ])
        .unwrap();
        assert_eq!(s.api.port, 9001);
        assert!(!s.cache.enabled);
        assert_eq!(s.log.level, "info");
        assert_eq!(
            s.api.cors_origins,
            vec!["https://a.example", "https://b.example"]
        );
        assert_eq!(s.database.url.expose(), "postgres://u:pw@db:5432/x");
    }

    #[test]
    fn any_key_can_be_set_with_the_prefixed_name() {
        let s = load(&[("HEALTH_AGENT__ACTORS__DB__MAILBOX_CAPACITY", "10")]).unwrap();
        assert_eq!(s.actors.db.mailbox_capacity, 10);
    }

    #[test]
    fn a_bad_number_names_the_variable_the_key_and_the_expected_form() {
        let e = load(&[("API_PORT", "eighty")]).unwrap_err().0;
        assert!(
            e.contains("API_PORT") && e.contains("api.port") && e.contains("whole number"),
            "{e}"
        );
    }

    #[test]
    fn an_out_of_range_port_names_the_key() {
        let e = load(&[("API_PORT", "70000")]).unwrap_err().0;
        assert!(e.contains("api.port"), "{e}");
    }

    #[test]
    fn a_bad_boolean_is_rejected() {
        let e = load(&[("ENABLE_CACHE", "maybe")]).unwrap_err().0;
        assert!(
            e.contains("cache.enabled") && e.contains("true or false"),
            "{e}"
        );
    }

    #[test]
    fn a_zero_mailbox_is_rejected() {
        let e = load(&[("HEALTH_AGENT__ACTORS__LLM__MAILBOX_CAPACITY", "0")])
            .unwrap_err()
            .0;
        assert!(e.contains("actors.llm.mailbox_capacity"), "{e}");
    }

    #[test]
    fn an_unknown_prefixed_key_is_rejected() {
        let e = load(&[("HEALTH_AGENT__API__PROT", "1")]).unwrap_err().0;
        assert!(e.contains("api.prot"), "{e}");
    }

    #[test]
    fn the_run_env_file_overrides_the_defaults() {
        let s = load(&[("RUN_ENV", "production")]).unwrap();
        assert_eq!(s.api.host, "0.0.0.0");
        assert_eq!(s.log.format, LogFormat::Json);
    }

    #[test]
    fn a_missing_run_env_file_is_an_error() {
        let e = load(&[("RUN_ENV", "nowhere")]).unwrap_err().0;
        assert!(e.contains("nowhere.toml"), "{e}");
    }

    #[test]
    fn without_any_key_the_server_refuses_to_start() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let s = Settings::from_sources(&dir, Vec::new()).unwrap();
        let e = s.check_serving().unwrap_err().0;
        assert!(e.contains("API_KEYS"), "{e}");
    }

    #[test]
    fn the_guides_api_key_secret_counts_as_a_key() {
        let s = load(&[("API_KEY_SECRET", "s3")]).unwrap();
        assert_eq!(s.api_keys(), vec!["k1", "s3"]);
    }

    #[test]
    fn secrets_and_passwords_never_reach_the_rendered_config() {
        let s = load(&[
            ("DATABASE_URL", "postgres://u:hunter2@db/x"),
            ("OPENAI_API_KEY", "sk-very-secret"),
            ("REDIS_URL", "redis://:redispw@r:6379/0"),
        ])
        .unwrap();
        let text = s.redacted_toml();
        for secret in ["hunter2", "sk-very-secret", "redispw", "k1"] {
            assert!(!text.contains(secret), "{secret} leaked:\n{text}");
            assert!(
                !format!("{s:?}").contains(secret),
                "{secret} leaked in Debug"
            );
        }
        assert!(text.contains("postgres://u:[redacted]@db/x"));
    }

    #[test]
    fn a_hosted_llm_provider_needs_a_model_and_its_key() {
        let e = load(&[("HEALTH_AGENT__LLM__PROVIDER", "anthropic")])
            .unwrap_err()
            .0;
        assert!(e.contains("ANTHROPIC_API_KEY"), "{e}");
        let e = load(&[("HEALTH_AGENT__LLM__PROVIDER", "openai_compatible")])
            .unwrap_err()
            .0;
        assert!(e.contains("`llm.model`"), "{e}");
        let e = load(&[
            ("HEALTH_AGENT__LLM__FALLBACK_PROVIDER", "openai"),
            ("HEALTH_AGENT__LLM__FALLBACK_MODEL", "gpt-4o-mini"),
            ("HEALTH_AGENT__LLM__FALLBACK_BASE_URL", "ftp://x"),
        ])
        .unwrap_err()
        .0;
        assert!(e.contains("OPENAI_API_KEY"), "{e}");
        assert!(e.contains("llm.fallback_base_url"), "{e}");
    }

    #[test]
    fn a_complete_llm_setup_loads_and_offline_stays_offline_with_a_key() {
        let s = load(&[
            ("HEALTH_AGENT__LLM__PROVIDER", "Anthropic"),
            ("HEALTH_AGENT__LLM__MODEL", "claude-x"),
            ("ANTHROPIC_API_KEY", "sk-ant"),
            ("HEALTH_AGENT__LLM__FALLBACK_PROVIDER", "openai_compatible"),
            ("HEALTH_AGENT__LLM__FALLBACK_MODEL", "llama3"),
            (
                "HEALTH_AGENT__LLM__FALLBACK_BASE_URL",
                "http://127.0.0.1:11434/v1",
            ),
        ])
        .unwrap();
        assert_eq!(s.llm.provider, ChatProvider::Kind(ProviderKind::Anthropic));
        assert_eq!(
            s.llm.fallback_provider,
            Some(ProviderKind::OpenAiCompatible)
        );
        assert_eq!(
            s.llm.api_key_for(ProviderKind::Anthropic).expose(),
            "sk-ant"
        );
        let offline = load(&[
            ("OPENAI_API_KEY", "sk-x"),
            ("HEALTH_AGENT__LLM__PROVIDER", "offline"),
        ])
        .unwrap();
        assert_eq!(
            offline.llm.provider,
            ChatProvider::Kind(ProviderKind::Offline)
        );
    }

    #[test]
    fn a_key_alone_selects_its_provider_and_a_default_model() {
        let hashed = ("HEALTH_AGENT__LLM__EMBEDDING_PROVIDER", "hashed");
        let a = load(&[("ANTHROPIC_API_KEY", "sk-ant"), hashed]).unwrap();
        assert_eq!(
            (a.llm.provider.to_string().as_str(), a.llm.model.as_str()),
            ("anthropic", DEFAULT_ANTHROPIC_MODEL)
        );
        assert_eq!(a.llm.embedding_provider, EmbeddingProvider::Hashed);
        let o = load(&[("OPENAI_API_KEY", "sk-x")]).unwrap();
        assert_eq!(
            (o.llm.provider.to_string().as_str(), o.llm.model.as_str()),
            ("openai", DEFAULT_OPENAI_MODEL)
        );
        assert_eq!(
            (
                o.llm.embedding_provider.to_string().as_str(),
                o.llm.embedding_model.as_str()
            ),
            ("openai", DEFAULT_OPENAI_EMBEDDING_MODEL)
        );
        let pinned = load(&[
            ("OPENAI_API_KEY", "sk-x"),
            ("HEALTH_AGENT__LLM__MODEL", "gpt-4.1"),
            hashed,
        ])
        .unwrap();
        assert_eq!(pinned.llm.model, "gpt-4.1");
        assert_eq!(pinned.llm.embedding_provider, EmbeddingProvider::Hashed);
        let none = load(&[("HEALTH_AGENT__LLM__LOCAL_MODEL_DIR", "/nonexistent")]).unwrap();
        assert_eq!(none.llm.provider, ChatProvider::Kind(ProviderKind::Offline));
        assert_eq!(none.llm.embedding_provider, EmbeddingProvider::Hashed);
        let e = load(&[
            ("HEALTH_AGENT__LLM__EMBEDDING_PROVIDER", "local"),
            ("HEALTH_AGENT__LLM__LOCAL_MODEL_DIR", "/nonexistent"),
        ])
        .unwrap_err()
        .0;
        assert!(
            e.contains("llm.local_model_dir") && e.contains("./dev model"),
            "{e}"
        );
    }

    #[test]
    fn embeddings_must_fit_the_vector_columns() {
        let e = load(&[("HEALTH_AGENT__LLM__EMBEDDING_DIMENSIONS", "768")])
            .unwrap_err()
            .0;
        assert!(e.contains("llm.embedding_dimensions"), "{e}");
        let e = load(&[("HEALTH_AGENT__LLM__EMBEDDING_PROVIDER", "anthropic")])
            .unwrap_err()
            .0;
        assert!(e.contains("llm.embedding_provider"), "{e}");
    }

    #[test]
    fn backup_settings_come_from_their_variables_and_are_checked() {
        let s = load(&[
            ("BACKUP_DIR", "/srv/backups"),
            ("PG_BIN_DIR", "/opt/pg/bin"),
        ])
        .unwrap();
        assert_eq!(s.backup.dir, "/srv/backups");
        assert_eq!(s.backup.pg_bin_dir, "/opt/pg/bin");
        assert_eq!(
            (
                s.backup.keep_daily,
                s.backup.keep_weekly,
                s.backup.keep_monthly
            ),
            (7, 4, 12)
        );
        let e = load(&[("BACKUP_DIR", " ")]).unwrap_err().0;
        assert!(e.contains("BACKUP_DIR"), "{e}");
        let e = load(&[("HEALTH_AGENT__BACKUP__KEEP_DAILY", "0")])
            .unwrap_err()
            .0;
        assert!(e.contains("backup.keep_daily"), "{e}");
    }

    #[test]
    fn a_malformed_key_digest_and_rate_limits_are_checked() {
        let e = load(&[("ADMIN_API_KEYS", "sha256:zz")]).unwrap_err().0;
        assert!(e.contains("api.admin_api_keys"), "{e}");
        let ok = load(&[("API_KEYS", &format!("sha256:{}", "ab".repeat(32)))]).unwrap();
        assert_eq!(ok.api_keys().len(), 1);
        let s = load(&[
            ("RATE_LIMIT_PER_MINUTE", "600"),
            ("RATE_LIMIT_CHAT_PER_MINUTE", "10"),
        ])
        .unwrap();
        assert_eq!(
            (s.rate_limit.per_minute, s.rate_limit.chat_per_minute),
            (600, 10)
        );
        let e = load(&[("RATE_LIMIT_PER_MINUTE", "-1")]).unwrap_err().0;
        assert!(e.contains("rate_limit.per_minute"), "{e}");
    }

    #[test]
    fn durations_take_units_and_render_in_their_keys_unit() {
        let s = load(&[
            ("SLOW_REQUEST_THRESHOLD_MS", "250ms"),
            ("HEALTH_AGENT__API__KEEP_ALIVE_SECS", "2m"),
            ("HEALTH_AGENT__DATABASE__QUEUE_TIMEOUT_MS", "45"),
        ])
        .unwrap();
        assert_eq!(
            (
                s.metrics.slow_request_threshold_ms,
                s.api.keep_alive_secs,
                s.database.queue_timeout_ms
            ),
            (
                Duration::from_millis(250),
                Duration::from_secs(120),
                Duration::from_millis(45)
            )
        );
        let text = s.redacted_toml();
        for line in [
            "slow_request_threshold_ms = 250\n",
            "keep_alive_secs = 120\n",
            "queue_timeout_ms = 45\n",
        ] {
            assert!(text.contains(line), "{line}");
        }
        let e = load(&[("HEALTH_AGENT__API__SHUTDOWN_TIMEOUT_SECS", "1500ms")])
            .unwrap_err()
            .0;
        assert!(
            e.contains("HEALTH_AGENT__API__SHUTDOWN_TIMEOUT_SECS")
                && e.contains("api.shutdown_timeout_secs")
                && e.contains("whole number of seconds"),
            "{e}"
        );
        // Units are for durations only; the range checks still apply.
        let e = load(&[("API_PORT", "5s")]).unwrap_err().0;
        assert!(e.contains("API_PORT") && e.contains("api.port"), "{e}");
        let e = load(&[("SLOW_REQUEST_THRESHOLD_MS", "2h")]).unwrap_err().0;
        assert!(e.contains("metrics.slow_request_threshold_ms"), "{e}");
    }

    #[test]
    fn an_unknown_provider_kind_names_its_key_and_variable() {
        for (var, raw) in [
            ("HEALTH_AGENT__LLM__PROVIDER", "antropic"),
            ("HEALTH_AGENT__LLM__FALLBACK_PROVIDER", "auto"),
            ("HEALTH_AGENT__LLM__EMBEDDING_PROVIDER", "ollama"),
        ] {
            let e = load(&[(var, raw)]).unwrap_err().0;
            let key = var["HEALTH_AGENT__".len()..]
                .to_ascii_lowercase()
                .replace("__", ".");
            assert!(e.contains(var) && e.contains(&format!("`{key}`")), "{e}");
            assert!(e.contains(raw), "{e}");
        }
    }

    #[test]
    fn a_misspelt_log_format_or_rust_log_filter_is_an_error() {
        let e = load(&[("LOG_FORMAT", "jsno")]).unwrap_err().0;
        assert!(
            e.contains("LOG_FORMAT") && e.contains("log.format") && e.contains("json"),
            "{e}"
        );
        let e = load(&[("RUST_LOG", "info,actors=loud")]).unwrap_err().0;
        assert!(e.contains("RUST_LOG"), "{e}");
        assert!(load(&[("RUST_LOG", "info,actors=debug")]).is_ok());
    }

    #[test]
    fn a_malformed_database_url_is_rejected() {
        let e = load(&[("DATABASE_URL", "mysql://x")]).unwrap_err().0;
        assert!(e.contains("DATABASE_URL"), "{e}");
    }

    #[test]
    fn the_reminder_webhook_comes_from_its_variable_and_is_never_shown() {
        let s = load(&[("REMINDER_WEBHOOK_URL", "https://hooks.example/t0ken")]).unwrap();
        assert_eq!(
            s.reminders.webhook_url.expose(),
            "https://hooks.example/t0ken"
        );
        assert!(s.reminders.enabled);
        assert_eq!(s.reminders.poll_interval_ms, Duration::from_secs(1));
        assert!(!s.redacted_toml().contains("t0ken"));
        let e = load(&[("REMINDER_WEBHOOK_URL", "ftp://x")]).unwrap_err().0;
        assert!(e.contains("REMINDER_WEBHOOK_URL"), "{e}");
        let e = load(&[("HEALTH_AGENT__REMINDERS__POLL_INTERVAL_MS", "0")])
            .unwrap_err()
            .0;
        assert!(e.contains("reminders.poll_interval_ms"), "{e}");
    }
}
