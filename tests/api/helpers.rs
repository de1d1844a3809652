use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use health_agent::config::Settings;
use health_agent::startup::Application;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const KEY: &str = "test-key-1";

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_env_filter("info").try_init();
    }
});

pub struct TestApp {
    pub address: String,
    pub db_url: String,
    pub client: reqwest::Client,
    pub handle: actix_web::dev::ServerHandle,
}

/// Extra settings for one test, as environment strings.
pub type Env = Vec<(&'static str, String)>;

pub fn settings(db_url: &str, extra: &Env) -> Settings {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut env: Vec<(String, String)> = vec![
        ("DATABASE_URL".into(), db_url.to_owned()),
        ("API_KEYS".into(), format!("{KEY},test-key-2")),
        ("API_PORT".into(), "0".into()),
        ("LOG_LEVEL".into(), "warn".into()),
        (
            "HEALTH_AGENT__CACHE__NAMESPACE".into(),
            format!("t{}", uuid::Uuid::new_v4().simple()),
        ),
        ("HEALTH_AGENT__API__WORKERS".into(), "2".into()),
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
        let app = Application::build(settings).await.expect("build app");
        let address = format!("http://127.0.0.1:{}", app.port());
        let handle = app.server_handle();
        actix_web::rt::spawn(app.run_until_stopped());
        let me = Self {
            address,
            db_url: db_url.to_owned(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            handle,
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

    pub async fn db(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.db_url, tokio_postgres::NoTls)
            .await
            .expect("connect to test db");
        actix_web::rt::spawn(async move {
            let _ = conn.await;
        });
        client
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

/// A TCP proxy in front of PostgreSQL that can stop forwarding, the way
/// `kill -STOP` on the server looks from a client: connections stay open
/// and nothing answers.
pub struct FreezableProxy {
    pub port: u16,
    frozen: Arc<AtomicBool>,
}

impl FreezableProxy {
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(AtomicBool::new(false));
        let f = Arc::clone(&frozen);
        actix_web::rt::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let up = upstream.clone();
                let f = Arc::clone(&f);
                actix_web::rt::spawn(async move {
                    if let Ok(server) = TcpStream::connect(up).await {
                        let (cr, cw) = client.into_split();
                        let (sr, sw) = server.into_split();
                        actix_web::rt::spawn(pipe(cr, sw, Arc::clone(&f)));
                        pipe(sr, cw, f).await;
                    }
                });
            }
        });
        Self { port, frozen }
    }

    pub fn freeze(&self, on: bool) {
        self.frozen.store(on, Ordering::SeqCst);
    }

    /// `url` rewritten to go through this proxy.
    pub fn url_for(&self, url: &str) -> String {
        let (head, tail) = url.rsplit_once('@').expect("url with credentials");
        let rest = tail.split_once('/').map(|(_, db)| db).unwrap_or("");
        format!("{head}@127.0.0.1:{}/{rest}", self.port)
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                while frozen.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// host:port of a postgres URL.
pub fn host_port(url: &str) -> String {
    let tail = url.rsplit_once('@').map(|(_, t)| t).unwrap_or(url);
    tail.split('/').next().unwrap().to_owned()
}
