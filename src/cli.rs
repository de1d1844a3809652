//! The `health-agent` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_postgres::NoTls;

use crate::config::Settings;
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
    MockLlm(crate::mock_llm::MockOptions),
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
    Monitor(crate::monitor::MonitorOptions),
    /// API key tools.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
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
            return match crate::monitor::run(opts) {
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
            print!("{}", settings.redacted_toml());
            Ok(())
        }
        Command::Migrate { action } => {
            runtime().and_then(|rt| rt.block_on(migrate_cmd(&settings, action)))
        }
        Command::Serve => actix_web::rt::System::new().block_on(serve(settings)),
        Command::Backup { dir } => crate::backup::backup(&settings, dir).map(|path| {
            println!("{}", path.display());
        }),
        Command::Restore { file, force } => runtime().and_then(|rt| {
            rt.block_on(crate::backup::restore(&settings, &file, force))
                .map(|done| println!("{done}"))
        }),
        Command::MockLlm(opts) => crate::mock_llm::run(opts),
        Command::Monitor(opts) => crate::monitor::run(opts),
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
