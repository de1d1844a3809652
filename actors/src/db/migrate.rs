//! Numbered SQL migrations, embedded in the binary.
//!
//! `migrations/NNN_name.sql` goes up, `migrations/rollbacks/NNN_name_rollback.sql`
//! comes down. Each runs in its own transaction and is recorded with a
//! checksum in `schema_migrations`; an applied file that was edited afterwards
//! is refused rather than silently diverging. A session advisory lock lets
//! several instances start at once without racing.
//!
//! refinery and others were considered; none runs down-migrations from
//! separate rollback files, which the deployment guide's rollback plan uses.

use include_dir::{include_dir, Dir};
use sha2::{Digest, Sha256};
use tokio_postgres::Client;

static MIGRATIONS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../migrations");

/// Arbitrary, fixed key for `pg_advisory_lock`.
const LOCK_KEY: i64 = 0x6865_616c_7468; // "health"

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("database error during migration: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("invalid migration set: {0}")]
    Invalid(String),
    #[error("migration {version} ({name}) was edited after it was applied (checksum differs)")]
    Modified { version: i64, name: String },
}

#[derive(Debug, Clone)]
pub struct Migration {
    pub version: i64,
    pub name: String,
    pub up: &'static str,
    pub down: &'static str,
    pub checksum: String,
}

/// One line of `migrate status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub version: i64,
    pub name: String,
    pub applied_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The embedded migrations in order, checked for pairs and duplicates.
pub fn embedded() -> Result<Vec<Migration>, MigrateError> {
    let mut out = Vec::new();
    for file in MIGRATIONS.files() {
        let Some(fname) = file.path().file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let Some(stem) = fname.strip_suffix(".sql") else {
            continue;
        };
        let (num, name) = stem
            .split_once('_')
            .ok_or_else(|| MigrateError::Invalid(format!("{fname}: expected NNN_name.sql")))?;
        let version: i64 = num
            .parse()
            .map_err(|_| MigrateError::Invalid(format!("{fname}: expected NNN_name.sql")))?;
        let up = file
            .contents_utf8()
            .ok_or_else(|| MigrateError::Invalid(format!("{fname}: not UTF-8")))?;
        let rollback = format!("rollbacks/{stem}_rollback.sql");
        let down = MIGRATIONS
            .get_file(&rollback)
            .and_then(|f| f.contents_utf8())
            .ok_or_else(|| MigrateError::Invalid(format!("{fname}: missing {rollback}")))?;
        out.push(Migration {
            version,
            name: name.to_string(),
            up,
            down,
            checksum: hex(&Sha256::digest(up.as_bytes())),
        });
    }
    out.sort_by_key(|m| m.version);
    if let Some(w) = out.windows(2).find(|w| w[0].version == w[1].version) {
        return Err(MigrateError::Invalid(format!(
            "two migrations numbered {}",
            w[0].version
        )));
    }
    Ok(out)
}

/// A digest of the whole set, used to name test template databases.
pub fn fingerprint() -> Result<String, MigrateError> {
    let mut h = Sha256::new();
    for m in embedded()? {
        h.update(m.checksum.as_bytes());
        h.update(m.down.as_bytes());
    }
    Ok(hex(&h.finalize())[..12].to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn ensure_table(client: &Client) -> Result<(), MigrateError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version    bigint PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await?;
    Ok(())
}

async fn applied(
    client: &Client,
) -> Result<Vec<(i64, String, String, chrono::DateTime<chrono::Utc>)>, MigrateError> {
    let rows = client
        .query(
            "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}

/// Runs `f` while holding the migration lock on this session.
async fn locked<T>(
    client: &mut Client,
    f: impl AsyncFnOnce(&mut Client) -> Result<T, MigrateError>,
) -> Result<T, MigrateError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await?;
    let out = f(client).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await?;
    out
}

/// Applies every pending migration in order; returns the ones applied.
pub async fn up(client: &mut Client) -> Result<Vec<Migration>, MigrateError> {
    let all = embedded()?;
    locked(client, async |client| {
        ensure_table(client).await?;
        let done = applied(client).await?;
        for (version, name, checksum, _) in &done {
            if let Some(m) = all.iter().find(|m| m.version == *version) {
                if &m.checksum != checksum {
                    return Err(MigrateError::Modified {
                        version: *version,
                        name: name.clone(),
                    });
                }
            }
        }
        let mut ran = Vec::new();
        for m in all
            .iter()
            .filter(|m| !done.iter().any(|d| d.0 == m.version))
        {
            let tx = client.transaction().await?;
            tx.batch_execute(m.up).await?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                &[&m.version, &m.name, &m.checksum],
            )
            .await?;
            tx.commit().await?;
            tracing::info!(version = m.version, name = %m.name, "migration applied");
            ran.push(m.clone());
        }
        Ok(ran)
    })
    .await
}

/// Rolls back the `n` most recent migrations, newest first.
pub async fn down(client: &mut Client, n: usize) -> Result<Vec<Migration>, MigrateError> {
    let all = embedded()?;
    locked(client, async |client| {
        ensure_table(client).await?;
        let done = applied(client).await?;
        let mut ran = Vec::new();
        for (version, name, _, _) in done.iter().rev().take(n) {
            let m = all.iter().find(|m| m.version == *version).ok_or_else(|| {
                MigrateError::Invalid(format!(
                    "migration {version} ({name}) is applied but this binary has no rollback for it"
                ))
            })?;
            let tx = client.transaction().await?;
            tx.batch_execute(m.down).await?;
            tx.execute(
                "DELETE FROM schema_migrations WHERE version = $1",
                &[version],
            )
            .await?;
            tx.commit().await?;
            tracing::info!(version = m.version, name = %m.name, "migration rolled back");
            ran.push(m.clone());
        }
        Ok(ran)
    })
    .await
}

/// Every known migration with when it was applied, if it was.
pub async fn status(client: &mut Client) -> Result<Vec<MigrationStatus>, MigrateError> {
    ensure_table(client).await?;
    let done = applied(client).await?;
    Ok(embedded()?
        .into_iter()
        .map(|m| MigrationStatus {
            applied_at: done.iter().find(|d| d.0 == m.version).map(|d| d.3),
            version: m.version,
            name: m.name,
        })
        .collect())
}

/// Whether every embedded migration is applied; the server refuses to serve
/// a schema older than its code.
pub async fn pending(client: &mut Client) -> Result<Vec<MigrationStatus>, MigrateError> {
    Ok(status(client)
        .await?
        .into_iter()
        .filter(|s| s.applied_at.is_none())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_migration_has_a_rollback_and_a_unique_number() {
        let all = embedded().unwrap();
        assert!(all.len() >= 8);
        assert!(all.windows(2).all(|w| w[0].version < w[1].version));
        assert!(all
            .iter()
            .any(|m| m.version == 17 && m.name == "performance_indexes"));
    }
}
