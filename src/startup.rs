//! Wiring: actors, the HTTP server and the route table.

use std::net::TcpListener;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::middleware::{from_fn, Compress};
use actix_web::{http, web, App, HttpServer};
use actors::cache::CacheShared;
use actors::db::DbShared;
use actors::llm::LlmShared;
use actors::metrics::MetricsHandle;
use actors::reminders::ReminderSchedulerHandle;
use anyhow::Context as _;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use utoipa_actix_web::AppExt as _;

use crate::config::Settings;
use crate::error::extractors;
use crate::lifecycle::Shutdown;
use crate::middleware::{
    auth, drain, idempotency, json_errors, observe, rate_limit, request_id, shed,
};
use crate::reload;
use crate::routes;
use crate::state::{AppState, Shared};

pub struct Application {
    port: u16,
    server: Server,
    /// The probes' own server (`api.probe_port`) and its port.
    probes: Option<(Server, u16)>,
    shared: Arc<Shared>,
    reminders: Option<ReminderSchedulerHandle>,
    shutdown: Shutdown,
}

/// The recorder is process-global; tests build many applications in one process.
fn prometheus() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("health_agent_request_duration_ms".into()),
            observe::DURATION_BUCKETS_MS,
        )?
        .set_buckets_for_metric(
            Matcher::Suffix("_ms".into()),
            &[
                0.1, 0.5, 1.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0,
            ],
        )?
        .install_recorder()
        .or_else(|e| HANDLE.get().cloned().ok_or(e))?;
    crate::metric_help::describe();
    Ok(HANDLE.get_or_init(|| handle).clone())
}

impl Application {
    /// Starts the actors and binds the listener (port 0 picks a free port).
    /// Must run inside an actix `System`.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.check_serving()?;
        let prometheus = prometheus()?;
        let db = DbShared::start(&settings.db_config()).context("database settings")?;
        let cache = CacheShared::start(&settings.cache_config()).context("cache settings")?;
        let llm = LlmShared::new(&settings.llm_config()).context("llm settings")?;
        let (chat_provider, chat_model) = llm.chat_model();
        tracing::info!(
            chat_provider,
            chat_model,
            embedding_provider = llm.embedding_provider(),
            embedding_model = llm.embedding_model(),
            "language models"
        );
        check_embedding_models(&db, &llm.embedding_model()).await?;
        let metrics = MetricsHandle::start();
        actors::lograte::spawn_flusher();
        // Prometheus' histograms grow until upkeep runs.
        let upkeep = prometheus.clone();
        actix::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                upkeep.run_upkeep();
            }
        });

        let listener = listen(&settings.api.host, settings.api.port, settings.api.backlog)
            .with_context(|| {
                format!(
                    "cannot listen on {}:{}",
                    settings.api.host, settings.api.port
                )
            })?;
        let port = listener.local_addr()?.port();
        // Shut at SIGTERM while actix keeps serving the open connections.
        let listener_control = Arc::new(listener.try_clone()?);
        let shared = Arc::new(Shared::new(settings, db, cache, llm, metrics, prometheus));

        let s = &shared.settings.api;
        let workers = if s.workers == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            s.workers
        };
        // Descriptors left for the pools (primary, replica, reminders'),
        // Redis, the probe, LLM clients, listeners and files.
        let d = &shared.settings.database;
        let reserved = 2 * u64::from(d.pool_max_size + shared.settings.reminders.db_connections)
            + u64::from(shared.settings.cache.pool_max_size)
            + 512;
        let max_connections = crate::connections::cap(
            s.max_connections,
            crate::connections::raise_fd_limit(),
            reserved,
        );
        if max_connections < s.max_connections {
            tracing::warn!(
                configured = s.max_connections,
                max_connections,
                "api.max_connections lowered to fit the open-file limit"
            );
        }
        shared.connections.set_max(max_connections);
        let connections = Arc::clone(&shared.connections);
        let document = web::Data::new(crate::openapi::api_document()?);
        let factory_shared = Arc::clone(&shared);
        let lifecycle = Arc::clone(&shared.lifecycle);
        let server = HttpServer::new(move || {
            // Runs once on each worker thread: its actors live on that thread,
            // and it drives a share of the database connections.
            factory_shared.db.drive_connections_here();
            let state = web::Data::new(AppState::for_this_worker(Arc::clone(&factory_shared)));
            let limit = factory_shared.settings.api.body_limit_bytes;
            App::new()
                .app_data(state)
                .app_data(document.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(limit)
                        .error_handler(extractors::json),
                )
                .app_data(web::PayloadConfig::default().limit(limit))
                .app_data(web::PathConfig::default().error_handler(extractors::path))
                .app_data(web::QueryConfig::default().error_handler(extractors::query))
                .into_utoipa_app()
                .configure(routes::public)
                // Everything else: an unknown path too is answered only
                // with a key, so none of the API's shape shows without one.
                .service(
                    utoipa_actix_web::scope("")
                        .configure(routes::private)
                        .default_service(web::to(routes::not_found))
                        // Inside auth: only authenticated requests claim keys.
                        .wrap(from_fn(idempotency::idempotency))
                        // Inside auth (per key), outside idempotency (a 429 claims nothing).
                        .wrap(from_fn(rate_limit::rate_limit))
                        .wrap(from_fn(auth::require_api_key)),
                )
                .into_app()
                // Nested scopes fall back to the app's default, not their
                // parent's; they are inside the auth scope all the same.
                .default_service(web::to(routes::not_found))
                .wrap(cors(&factory_shared.settings.api.cors_origins))
                // Outside CORS: its rejections (and Swagger UI's 404s) become JSON.
                .wrap(from_fn(json_errors::json_errors))
                .wrap(Compress::default())
                // Before anything spends CPU on a write it would refuse.
                .wrap(from_fn(shed::shed))
                .wrap(from_fn(observe::observe))
                .wrap(from_fn(drain::drain))
                .wrap(from_fn(request_id::request_id))
        })
        .workers(workers)
        // Our own handler drains first (lifecycle::Shutdown).
        .disable_signals()
        .shutdown_timeout(s.shutdown_timeout_secs.as_secs())
        .keep_alive(s.keep_alive_secs)
        // actix counts this per worker; the setting is for the process.
        .max_connections(max_connections.div_ceil(workers).max(1))
        .client_request_timeout(s.client_request_timeout_ms)
        .client_disconnect_timeout(s.client_disconnect_timeout_ms)
        // One callback: a second `on_connect` would replace the first.
        .on_connect(move |_, ext| {
            ext.insert(connections.opened());
            ext.insert(lifecycle.connected());
            ext.insert(shed::RetryAfter::default());
        })
        .listen(listener)?
        .run();

        // Once per process, on its own arbiter; instances share the work
        // through the database.
        let reminders = if shared.settings.reminders.enabled {
            let cfg = shared.settings.reminder_config();
            let gate = shared.reminders.work.clone();
            // Connections and permits of its own: HTTP load saturating the
            // db gate and pool cannot make polls fail.
            let db = shared
                .db
                .reserved(
                    shared.reminders.db.clone(),
                    shared.settings.reminders.db_connections,
                )
                .context("reminders.db_connections")?;
            Some(
                ReminderSchedulerHandle::start(&cfg, gate, db)
                    .context("reminder webhook client")?,
            )
        } else {
            None
        };

        let probes = match shared.settings.api.probe_port {
            0 => None,
            port => Some(probe_server(&shared, port).with_context(|| {
                format!(
                    "cannot listen on {}:{port} (api.probe_port)",
                    shared.settings.api.host
                )
            })?),
        };

        reload_on_sighup(Arc::downgrade(&shared)).context("SIGHUP handler")?;
        let shutdown = Shutdown {
            lifecycle: Arc::clone(&shared.lifecycle),
            server: server.handle(),
            listener: listener_control,
            drain_delay: shared.settings.api.drain_delay_ms,
            timeout: shared.settings.api.shutdown_timeout_secs,
        };

        crate::housekeeping::spawn(shared.settings.housekeeping, Arc::clone(&shared.db));

        // Rate limits: count live instances (the fallback's divisor).
        if shared.cache.enabled() {
            let cache = actors::cache::CacheHandle::start(Arc::clone(&shared.cache));
            shared.rate_limiter.spawn_announcer(cache);
        }

        Ok(Self {
            port,
            server,
            probes,
            shared,
            reminders,
            shutdown,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The probes' own port, when `api.probe_port` is set.
    pub fn probe_port(&self) -> Option<u16> {
        self.probes.as_ref().map(|(_, port)| *port)
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// What SIGTERM does, for callers that stop the server themselves.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Serves until SIGINT/SIGTERM: drain (see `lifecycle`), stop accepting,
    /// answer in-flight requests within `api.shutdown_timeout_secs`, then
    /// flush the metrics actor.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.shutdown.clone().on_signals()?;
        tracing::info!(
            port = self.port,
            probe_port = self.probe_port(),
            "listening"
        );
        // The probes answer through the drain (readyz 503) and stop after.
        let probes = self.probes.map(|(server, _)| {
            let handle = server.handle();
            actix_web::rt::spawn(server);
            handle
        });
        let result = self.server.await;
        if let Some(probes) = probes {
            probes.stop(false).await;
        }
        if let Some(scheduler) = &self.reminders {
            scheduler.stop();
        }
        let summary = self.shared.metrics.summary();
        tracing::info!(
            requests = summary.total,
            errors = summary.errors,
            "server stopped"
        );
        result
    }
}

/// /livez, /readyz and /api/health on a port of their own: one worker, a
/// small cap and short timeouts, so what fills the main port's cap and
/// accept queue cannot delay a probe.
fn probe_server(shared: &Arc<Shared>, port: u16) -> anyhow::Result<(Server, u16)> {
    let listener = listen(&shared.settings.api.host, port, 128)?;
    let port = listener.local_addr()?.port();
    let shared = Arc::clone(shared);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(AppState::for_this_worker(Arc::clone(
                &shared,
            ))))
            .into_utoipa_app()
            .configure(routes::probes)
            .into_app()
    })
    .workers(1)
    .disable_signals()
    .max_connections(256)
    .keep_alive(Duration::from_secs(5))
    .client_request_timeout(Duration::from_secs(1))
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    Ok((server, port))
}

/// Binds like `TcpListener::bind` (SO_REUSEADDR, as std does) but with our
/// backlog: connections beyond `api.max_connections` wait there.
fn listen(host: &str, port: u16, backlog: u32) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    use std::net::ToSocketAddrs;
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        match socket
            .bind(&addr.into())
            .and_then(|()| socket.listen(backlog.min(i32::MAX as u32) as i32))
        {
            Ok(()) => return Ok(socket.into()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to bind")
    }))
}

/// `kill -HUP` re-reads the configuration and applies what can change live
/// (see `reload`). Runs on the current (system) arbiter until the
/// application is gone.
fn reload_on_sighup(shared: Weak<Shared>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = signal(SignalKind::hangup())?;
    actix::spawn(async move {
        while hangup.recv().await.is_some() {
            let Some(shared) = shared.upgrade() else {
                break;
            };
            tracing::info!("SIGHUP: reloading the configuration");
            // The outcome is logged by `reload`; there is no one to answer.
            let _ = reload::reload(&shared);
        }
    });
    Ok(())
}

fn cors(origins: &[String]) -> Cors {
    let base = Cors::default()
        .allowed_methods(["GET", "POST", "PATCH", "DELETE", "OPTIONS"])
        .allowed_headers([
            http::header::AUTHORIZATION,
            http::header::CONTENT_TYPE,
            http::header::HeaderName::from_static("x-api-key"),
            http::header::HeaderName::from_static("x-request-id"),
            http::header::HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([
            http::header::HeaderName::from_static("x-request-id"),
            http::header::RETRY_AFTER,
            idempotency::REPLAYED,
            rate_limit::LIMIT,
            rate_limit::REMAINING,
            rate_limit::RESET,
        ])
        .max_age(600);
    origins.iter().fold(base, |c, o| {
        if o == "*" {
            // `*` itself, never the request's Origin echoed back (that would
            // include `null`, sent by sandboxed documents); no credentials.
            c.allow_any_origin().send_wildcard()
        } else {
            c.allowed_origin(o)
        }
    })
}

/// Refuses to start when stored memories or saved meals were embedded by
/// another model than the configured one: comparing vectors of two models
/// is noise. A database that cannot be asked now is not a reason to stay
/// down.
pub async fn check_embedding_models(db: &Arc<DbShared>, current: &str) -> anyhow::Result<()> {
    let handle = actors::db::DbHandle::start(Arc::clone(db));
    let op = handle.run(actors::db::ops::memories::EmbeddingModelsInUse);
    match tokio::time::timeout(Duration::from_secs(5), op).await {
        Ok(Ok(models)) => {
            let other: Vec<&String> = models.iter().filter(|m| *m != current).collect();
            if !other.is_empty() {
                anyhow::bail!(
                    "memories or saved meals in the database were embedded by {} but the \
                     configured embeddings model is {current}: vectors of different models \
                     cannot be compared. Run `health-agent memories reembed` to re-embed them \
                     with {current}, or set llm.embedding_provider back",
                    other
                        .iter()
                        .map(|m| m.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            Ok(())
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not check which models embedded the stored memories");
            Ok(())
        }
        Err(_) => {
            tracing::warn!("could not check which models embedded the stored memories (timed out)");
            Ok(())
        }
    }
}
