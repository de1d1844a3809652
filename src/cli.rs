//! The `health-agent` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_postgres::NoTls;

use crate::config::{EmbeddingProvider, Settings};
use crate::startup::Application;
use crate::telemetry;
use actors::db::migrate;

#[derive(Debug, Parser)]
#[command(
    name = "health-agent",
    version,
    about = "The Health Agent API server and its tools"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (stops gracefully on SIGTERM or Ctrl-C).
    Serve,
    /// Apply, roll back or list database migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Serve a mock language model (Anthropic and OpenAI wire formats) with
    /// configurable latency and failures, for tests and demos.
    MockLlm(health_agent_tools::mock_llm::MockOptions),
    /// Dump the database (pg_dump, custom format, compressed) into the backup
    /// directory, keep 7 daily, 4 weekly and 12 monthly backups, and print the
    /// new file's path as the last line.
    Backup {
        /// Directory for the dump (default: `backup.dir`, BACKUP_DIR).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// Restore a `backup` file into the database of DATABASE_URL, which must
    /// be empty unless --force (one transaction: all or nothing).
    Restore {
        /// The `.dump` file `backup` wrote.
        file: std::path::PathBuf,
        /// Restore into a non-empty database: drop and recreate every object
        /// the backup holds.
        #[arg(long)]
        force: bool,
    },
    /// Watch a running instance: one row of CPU, memory, pool, cache hit
    /// rate, p95 and mailbox depths per interval, thresholds marked.
    Monitor(health_agent_tools::monitor::MonitorOptions),
    /// Manage the stored long-term memories.
    Memories {
        #[command(subcommand)]
        action: MemoriesAction,
    },
    /// API key tools.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum MemoriesAction {
    /// Re-embed every memory and saved meal whose vector another model
    /// made, with the configured embeddings provider (run after changing
    /// it), with progress.
    Reembed {
        /// Memories per batch (one embedding call and one transaction each).
        #[arg(long, default_value_t = 64)]
        batch: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Print `sha256:<hex>` for a key, to put in API_KEYS / ADMIN_API_KEYS
    /// instead of the key. Reads the key from stdin when not given (keeps
    /// it out of the shell history).
    Hash { key: Option<String> },
}

/// `keys hash`: the digest form of the argument or of stdin's first line.
fn keys_cmd(action: KeysAction) -> anyhow::Result<()> {
    let KeysAction::Hash { key } = action;
    let key = match key {
        Some(k) => k,
        None => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line
        }
    };
    let key = key.trim();
    anyhow::ensure!(!key.is_empty(), "no key given (argument or stdin)");
    println!("{}", crate::middleware::auth::digest_form(key));
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Roll back the newest N migrations (default 1).
    Down {
        #[arg(default_value_t = 1)]
        n: usize,
    },
    /// List migrations and whether each is applied.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Validate and print the effective configuration, secrets redacted.
    Check,
}

/// Exit statuses: 0 ok, 1 failure, 2 invalid configuration.
pub fn run(cli: Cli) -> ExitCode {
    // The monitor watches another process and needs none of this one's settings.
    let cli = match cli.command {
        Command::Monitor(opts) => {
            return match health_agent_tools::monitor::run(opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("health-agent: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Keys { action } => {
            return match keys_cmd(action) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("health-agent: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        command => Cli { command },
    };
    let needs_keys = matches!(
        cli.command,
        Command::Serve
            | Command::Config {
                action: ConfigAction::Check
            }
    );
    let settings = match Settings::load().and_then(|s| {
        if needs_keys {
            s.check_serving()?;
        }
        Ok(s)
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("health-agent: invalid configuration:\n{e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log);
    let outcome = match cli.command {
        Command::Config {
            action: ConfigAction::Check,
        } => {
            println!("{}", models_line(&settings));
            print!("{}", settings.redacted_toml());
            Ok(())
        }
        Command::Migrate { action } => {
            runtime().and_then(|rt| rt.block_on(migrate_cmd(&settings, action)))
        }
        Command::Serve => actix_web::rt::System::new().block_on(serve(settings)),
        Command::Memories {
            action: MemoriesAction::Reembed { batch },
        } => actix_web::rt::System::new().block_on(reembed(settings, batch)),
        Command::Backup { dir } => crate::backup::backup(&settings, dir).map(|path| {
            println!("{}", path.display());
        }),
        Command::Restore { file, force } => runtime().and_then(|rt| {
            rt.block_on(crate::backup::restore(&settings, &file, force))
                .map(|done| println!("{done}"))
        }),
        Command::MockLlm(opts) => health_agent_tools::mock_llm::run(opts),
        Command::Monitor(opts) => health_agent_tools::monitor::run(opts),
        Command::Keys { action } => keys_cmd(action),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("health-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `# chat: anthropic claude-sonnet-4-5; embeddings: local all-MiniLM-L6-v2`.
pub fn models_line(s: &Settings) -> String {
    let l = &s.llm;
    let chat_model = if l.chat_kind() == actors::llm::ProviderKind::Offline {
        "offline"
    } else {
        l.model.as_str()
    };
    let embedding_model = match l.embedding_kind() {
        EmbeddingProvider::Local => format!(
            "{} ({})",
            actors::embedder::LOCAL_MODEL_NAME,
            l.local_model_dir
        ),
        EmbeddingProvider::Hashed => actors::llm::HASHED_MODEL_NAME.to_owned(),
        _ => l.embedding_model.clone(),
    };
    format!(
        "# chat: {} {chat_model}; embeddings: {} {embedding_model}",
        l.provider, l.embedding_provider
    )
}

/// Re-embeds, batch by batch, every memory and saved meal another model
/// embedded.
async fn reembed(settings: Settings, batch: i64) -> anyhow::Result<()> {
    use actors::db::ops::memories::{Embedded, StaleVectors, StoreVectors};
    let batch = batch.clamp(1, 1024);
    let db = actors::db::DbShared::start(&settings.db_config())?;
    let db = actors::db::DbHandle::start(db);
    let llm = actors::llm::LlmShared::new(&settings.llm_config())?;
    let model = llm.embedding_model();
    let llm = actors::llm::LlmHandle::start(llm);
    let mut counts = Vec::new();
    for what in [Embedded::Memories, Embedded::SavedMeals] {
        let started = std::time::Instant::now();
        let mut done = 0u64;
        let mut total = None;
        loop {
            let (rows, remaining) = db
                .run(StaleVectors {
                    what,
                    embedding_model: model.clone(),
                    limit: batch,
                })
                .await?;
            let total = *total.get_or_insert(remaining as u64);
            if rows.is_empty() {
                break;
            }
            let texts = rows.iter().map(|(_, t)| t.clone()).collect();
            let vectors = llm.embed(texts).await?;
            done += db
                .run(StoreVectors {
                    what,
                    embedding_model: model.clone(),
                    vectors: rows.into_iter().map(|(id, _)| id).zip(vectors).collect(),
                })
                .await?;
            let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-3);
            eprintln!(
                "re-embedded {done}/{total} {} with {model} ({rate:.0}/s)",
                what.label()
            );
        }
        counts.push(done);
    }
    println!(
        "all memories and saved meals are embedded by {model} \
         ({} memories and {} saved meals re-embedded)",
        counts[0], counts[1]
    );
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}

async fn migrate_cmd(settings: &Settings, action: MigrateAction) -> anyhow::Result<()> {
    let (mut client, conn) = tokio_postgres::connect(settings.database.url.expose(), NoTls)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot connect to {}: {e}",
                settings.database.url.redacted()
            )
        })?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    match action {
        MigrateAction::Up => {
            let ran = migrate::up(&mut client).await?;
            if ran.is_empty() {
                println!("up to date");
            }
            for m in ran {
                println!("applied {:03}_{}", m.version, m.name);
            }
        }
        MigrateAction::Down { n } => {
            let ran = migrate::down(&mut client, n).await?;
            if ran.is_empty() {
                println!("nothing to roll back");
            }
            for m in ran {
                println!("rolled back {:03}_{}", m.version, m.name);
            }
        }
        MigrateAction::Status => {
            for s in migrate::status(&mut client).await? {
                let when = s
                    .applied_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "pending".into());
                println!("{:03}_{:<28} {when}", s.version, s.name);
            }
        }
    }
    Ok(())
}
