use std::sync::LazyLock;
use std::time::Duration;

use health_agent::config::Settings;
use health_agent::startup::Application;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

pub const KEY: &str = "test-key-1";
/// Listed in ADMIN_API_KEYS for every test app.
pub const ADMIN_KEY: &str = "test-admin-key";

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_env_filter("info").try_init();
    }
});

pub struct TestApp {
    pub address: String,
    /// The probes' own listener, when `HEALTH_AGENT__API__PROBE_PORT` is set.
    pub probe_address: Option<String>,
    pub db_url: String,
    /// Redis key prefix; a second app given the same one shares the cache
    /// and the rate-limit buckets.
    pub cache_namespace: String,
    pub client: reqwest::Client,
    pub handle: actix_web::dev::ServerHandle,
    /// What SIGTERM does to this server.
    pub shutdown: health_agent::lifecycle::Shutdown,
}

/// Extra settings for one test, as environment strings.
pub type Env = Vec<(&'static str, String)>;

pub fn settings(db_url: &str, extra: &Env) -> Settings {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut env: Vec<(String, String)> = vec![
        ("DATABASE_URL".into(), db_url.to_owned()),
        ("API_KEYS".into(), format!("{KEY},test-key-2")),
        ("ADMIN_API_KEYS".into(), ADMIN_KEY.into()),
        ("API_PORT".into(), "0".into()),
        ("LOG_LEVEL".into(), "warn".into()),
        (
            "HEALTH_AGENT__CACHE__NAMESPACE".into(),
            format!("t{}", uuid::Uuid::new_v4().simple()),
        ),
        ("HEALTH_AGENT__API__WORKERS".into(), "2".into()),
        // The hashed embedder unless a test asks for the model (`local`).
        (
            "HEALTH_AGENT__LLM__EMBEDDING_PROVIDER".into(),
            "hashed".into(),
        ),
    ];
    if let Ok(redis) = std::env::var("REDIS_URL") {
        env.push(("REDIS_URL".into(), redis));
    }
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    Settings::from_sources(&dir, env).expect("test settings")
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Vec::new()).await
    }

    /// Starts the server on its own migrated database.
    pub async fn spawn_with(extra: Env) -> Self {
        let db_url = actors::testing::migrated_database().await;
        Self::spawn_on(&db_url, extra).await
    }

    pub async fn spawn_on(db_url: &str, extra: Env) -> Self {
        LazyLock::force(&TRACING);
        let settings = settings(db_url, &extra);
        let cache_namespace = settings.cache.namespace.clone();
        let app = Application::build(settings).await.expect("build app");
        let address = format!("http://127.0.0.1:{}", app.port());
        let probe_address = app.probe_port().map(|p| format!("http://127.0.0.1:{p}"));
        let handle = app.server_handle();
        let shutdown = app.shutdown();
        actix_web::rt::spawn(app.run_until_stopped());
        let me = Self {
            address,
            probe_address,
            db_url: db_url.to_owned(),
            cache_namespace,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            handle,
            shutdown,
        };
        me.wait_until_healthy(Duration::from_secs(5)).await;
        me
    }

    /// The database probe needs one round before health says connected.
    pub async fn wait_until_healthy(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if let Ok(r) = self.get_health().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The JSON metrics.
    pub async fn metrics(&self) -> Value {
        self.get("/api/v1/metrics").await.json().await.unwrap()
    }

    /// Waits until `actor` has at least `n` operations in flight: requests
    /// that got past the door and wait on it.
    pub async fn wait_for_in_flight(&self, actor: &str, n: u64) {
        let in_flight =
            || async { self.metrics().await["actors"][actor]["in_flight"].as_u64() >= Some(n) };
        assert!(
            wait_for(Duration::from_secs(10), in_flight).await,
            "{n} {actor} operations never were in flight"
        );
    }

    /// Waits until health reports Redis connected (its probe reconnects on
    /// a 1 s tick, slower when the box is busy).
    pub async fn wait_for_cache(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let health: Value = self.get_health().await.unwrap().json().await.unwrap();
            if health["cache"] == "connected" {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Redis never answered: {health}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{}", self.address, path))
            .header("X-API-Key", KEY)
    }

    pub async fn get_health(&self) -> reqwest::Result<Response> {
        self.client
            .get(format!("{}/api/health", self.address))
            .send()
            .await
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.expect("GET")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.request(Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> Response {
        self.request(Method::PATCH, path)
            .json(body)
            .send()
            .await
            .expect("PATCH")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.request(Method::DELETE, path)
            .send()
            .await
            .expect("DELETE")
    }

    pub async fn create_user(&self, user_id: &str) -> Response {
        self.post_json("/api/v1/users", &serde_json::json!({ "user_id": user_id }))
            .await
    }

    /// The single number a `SELECT count(*) ...` returns.
    pub async fn count(&self, sql: &str) -> i64 {
        self.db()
            .await
            .query_one(sql, &[])
            .await
            .expect("count query")
            .get(0)
    }

    pub async fn db(&self) -> actors::db::Client {
        let (client, conn) = tokio_postgres::connect(&self.db_url, tokio_postgres::NoTls)
            .await
            .expect("connect to test db");
        actix_web::rt::spawn(async move {
            let _ = conn.await;
        });
        client.into()
    }
}

/// Asserts the JSON error format and returns the body.
pub async fn assert_error(res: Response, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status, "unexpected status");
    assert!(
        res.headers().contains_key("x-request-id"),
        "error without X-Request-ID"
    );
    let body: Value = res.json().await.expect("JSON error body");
    assert!(body["error"].is_string(), "no error field: {body}");
    assert!(body.get("detail").is_some(), "no detail field: {body}");
    assert!(body["timestamp"].is_string(), "no timestamp: {body}");
    body
}

pub use actors::testing::FreezableProxy;

/// host:port of a `scheme://[user@]host:port/rest` URL (PostgreSQL, Redis).
/// One of the mock LLM's JSON pages (`/__mock/last`, `/__mock/stats`).
pub async fn mock_json(mock: &str, path: &str) -> Value {
    reqwest::get(format!("{mock}{path}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub fn host_port(url: &str) -> String {
    let tail = url.split_once("://").map_or(url, |(_, t)| t);
    let tail = tail.rsplit_once('@').map_or(tail, |(_, t)| t);
    tail.split('/').next().unwrap().to_owned()
}

/// Why `Application::build` refused to start with `settings`.
pub async fn start_error(settings: Settings) -> String {
    match health_agent::startup::Application::build(settings).await {
        Ok(_) => panic!("the server started"),
        Err(e) => format!("{e:#}"),
    }
}

/// Runs `health-agent memories reembed` on `db` with `provider`; asserts it
/// succeeded and returns its progress output (stderr).
pub fn reembed(db: &str, provider: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_health-agent"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["memories", "reembed"])
        .env("DATABASE_URL", db)
        .env("API_KEYS", "k")
        .env("HEALTH_AGENT__LLM__EMBEDDING_PROVIDER", provider)
        .env_remove("RUN_ENV")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

/// Polls `done` until it holds or `within` has passed; whether it held.
pub async fn wait_for<F, Fut>(within: Duration, mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if done().await {
            return true;
        }
        actix_web::rt::time::sleep(Duration::from_millis(25)).await;
    }
    done().await
}
