//! `health-agent backup` and `health-agent restore`: PostgreSQL's own
//! `pg_dump` / `pg_restore` in custom format (compressed, restorable object by
//! object, one transaction), plus the deployment guide's retention.
//!
//! The password never goes on a command line (where `ps` shows it): the tools
//! get the URL without it and `PGPASSWORD` in their environment.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context};
use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use tokio_postgres::NoTls;

use crate::config::{redact_url, Settings};

const PREFIX: &str = "health-agent-";
const SUFFIX: &str = ".dump";
const STAMP: &str = "%Y%m%dT%H%M%SZ";
/// How long `restore` waits for a table lock before giving up.
const RESTORE_LOCK_TIMEOUT: &str = "20s";

/// `health-agent-20260118T020000Z.dump`: sorts by time, and retention can
/// tell its own files from anything else in the directory.
pub fn file_name(at: DateTime<Utc>) -> String {
    format!("{PREFIX}{}{SUFFIX}", at.format(STAMP))
}

/// The time in a name `file_name` made; `None` for any other file.
pub fn parse_file_name(name: &str) -> Option<DateTime<Utc>> {
    let stamp = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    NaiveDateTime::parse_from_str(stamp, STAMP)
        .ok()
        .map(|t| t.and_utc())
}

/// How many daily, weekly (ISO weeks) and monthly backups to keep (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

/// The backups to keep: for each of the newest `daily` days that have a
/// backup, that day's newest one; likewise per ISO week and per month (the
/// rule restic's `forget --keep-daily/--keep-weekly/--keep-monthly` uses).
/// One backup may count for all three. The newest is always kept.
pub fn to_keep(taken: &[DateTime<Utc>], r: Retention) -> BTreeSet<DateTime<Utc>> {
    let mut newest_first = taken.to_vec();
    newest_first.sort_unstable_by(|a, b| b.cmp(a));
    newest_first.dedup();
    let mut keep = BTreeSet::new();
    keep.extend(newest_first.first().copied());
    let mut by = |limit: u32, period: &dyn Fn(&DateTime<Utc>) -> (i32, u32)| {
        let mut last = None;
        let mut kept = 0;
        for t in &newest_first {
            if kept >= limit {
                break;
            }
            let p = period(t);
            if last != Some(p) {
                last = Some(p);
                keep.insert(*t);
                kept += 1;
            }
        }
    };
    by(r.daily, &|t| (t.year(), t.ordinal()));
    by(r.weekly, &|t| (t.iso_week().year(), t.iso_week().week()));
    by(r.monthly, &|t| (t.year(), t.month()));
    keep
}

/// Runs `pg_dump` into the backup directory, applies retention and returns
/// the new file's path. Lines about pruned files go to stdout first, so the
/// caller can print the path as the last line.
pub fn backup(settings: &Settings, dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let dir = dir.unwrap_or_else(|| PathBuf::from(&settings.backup.dir));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the backup directory {}", dir.display()))?;
    let pg_dump = tool(settings, "pg_dump")?;
    // Names have whole seconds: a second backup within the same second waits
    // for the next one rather than overwrite the first.
    let (name, path) = loop {
        let name = file_name(Utc::now());
        let path = dir.join(&name);
        if !path.exists() {
            break (name, path);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // pg_dump writes a dot-file that retention ignores; only a complete dump
    // gets the real name, so a failure never leaves a backup that isn't one.
    let partial = dir.join(format!(".{name}.partial"));
    std::fs::File::create(&partial)
        .with_context(|| format!("the backup directory {} is not writable", dir.display()))?;
    let target = Target::of(settings.database.url.expose())?;
    let out = target
        .command(&pg_dump)
        .arg("--format=custom")
        .arg("--compress=6")
        .arg("--no-password")
        .arg(format!("--file={}", partial.display()))
        .arg(format!("--dbname={}", target.url))
        .output()
        .with_context(|| format!("cannot run {}", pg_dump.display()))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&partial);
        bail!(
            "pg_dump of {} failed ({}): {}",
            redact_url(settings.database.url.expose()),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .and_then(|()| std::fs::rename(&partial, &path))
        .with_context(|| format!("cannot finish {}", path.display()))?;

    for pruned in prune(&dir, settings)? {
        println!("pruned {}", pruned.display());
    }
    Ok(path)
}

/// Deletes this tool's backups in `dir` that retention does not keep.
fn prune(dir: &Path, settings: &Settings) -> anyhow::Result<Vec<PathBuf>> {
    let mut ours = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        if let Some(at) = entry.file_name().to_str().and_then(parse_file_name) {
            ours.push((at, entry.path()));
        }
    }
    let times: Vec<_> = ours.iter().map(|(t, _)| *t).collect();
    let keep = to_keep(
        &times,
        Retention {
            daily: settings.backup.keep_daily,
            weekly: settings.backup.keep_weekly,
            monthly: settings.backup.keep_monthly,
        },
    );
    let mut pruned = Vec::new();
    for (at, path) in ours {
        if !keep.contains(&at) {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot delete the old backup {}", path.display()))?;
            pruned.push(path);
        }
    }
    pruned.sort();
    Ok(pruned)
}

/// Restores `file` into the database of `database.url`. Refuses a database
/// that holds any table, view or sequence of its own (extension objects do
/// not count) unless `force`, which drops and recreates the objects the
/// backup holds. One transaction: a failure leaves the database as it was.
/// Returns a line saying what was done.
pub async fn restore(settings: &Settings, file: &Path, force: bool) -> anyhow::Result<String> {
    let mut head = Vec::with_capacity(5);
    std::fs::File::open(file)
        .and_then(|f| f.take(5).read_to_end(&mut head))
        .with_context(|| format!("cannot read {}", file.display()))?;
    if head != b"PGDMP" {
        bail!(
            "{} is not a pg_dump custom-format archive (made by `health-agent backup`)",
            file.display()
        );
    }
    let pg_restore = tool(settings, "pg_restore")?;
    let url = settings.database.url.expose();
    let shown = redact_url(url);
    let existing = user_relations(url)
        .await
        .with_context(|| format!("cannot inspect {shown}"))?;
    if !existing.is_empty() && !force {
        bail!(
            "refusing to restore into {shown}: it is not empty ({} relations, e.g. {}); \
             restore into a new database, or pass --force to replace what the backup holds",
            existing.len(),
            existing
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let target = Target::of(url)?;
    let mut cmd = target.command(&pg_restore);
    cmd.args([
        "--exit-on-error",
        "--single-transaction",
        "--no-owner",
        "--no-privileges",
        "--no-password",
    ]);
    if force {
        cmd.args(["--clean", "--if-exists"]);
    }
    // Dropping a table waits for every session using it; a running API can
    // hold such a lock while it waits on the restore's own locks, a wait
    // PostgreSQL cannot see as a deadlock. Fail instead of hanging.
    cmd.env(
        "PGOPTIONS",
        format!("-c lock_timeout={RESTORE_LOCK_TIMEOUT}"),
    );
    let out = cmd
        .arg(format!("--dbname={}", target.url))
        .arg(file)
        .output()
        .with_context(|| format!("cannot run {}", pg_restore.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let hint = if err.contains("lock timeout") {
            " (the database is in use: stop the API instances first)"
        } else {
            ""
        };
        bail!(
            "pg_restore into {shown} failed ({}){hint}; nothing was changed: {}",
            out.status,
            err.trim()
        );
    }
    let tables = user_relations(url).await?.len();
    Ok(format!(
        "restored {} into {shown} ({tables} relations)",
        file.display()
    ))
}

/// Tables, views and sequences outside the system schemas that no extension
/// owns, as `schema.name`.
async fn user_relations(url: &str) -> anyhow::Result<Vec<String>> {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let rows = client
        .query(
            "SELECT n.nspname || '.' || c.relname
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
                AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
                AND NOT EXISTS (SELECT 1 FROM pg_depend d
                                 WHERE d.classid = 'pg_class'::regclass
                                   AND d.objid = c.oid AND d.deptype = 'e')
              ORDER BY 1",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Where a PostgreSQL client tool is: `backup.pg_bin_dir` (PG_BIN_DIR), else PATH.
fn tool(settings: &Settings, name: &str) -> anyhow::Result<PathBuf> {
    let dir = settings.backup.pg_bin_dir.trim();
    if !dir.is_empty() {
        let path = Path::new(dir).join(name);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(anyhow!(
                "{name} not found in PG_BIN_DIR={dir} (`backup.pg_bin_dir`)"
            ))
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!(
                "{name} not found on PATH: install the PostgreSQL client tools of the server's \
                 major version or set PG_BIN_DIR"
            )
        })
}

/// A database URL split into what goes on the command line and the password.
struct Target {
    url: String,
    password: Option<OsString>,
}

impl Target {
    fn of(url: &str) -> anyhow::Result<Self> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| anyhow!("cannot parse {}: {e}", redact_url(url)))?;
        let password = config
            .get_password()
            .map(|p| OsString::from(String::from_utf8_lossy(p).into_owned()));
        Ok(Self {
            url: without_password(url),
            password,
        })
    }

    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        if let Some(p) = &self.password {
            cmd.env("PGPASSWORD", p);
        }
        cmd
    }
}

/// `scheme://user:secret@host/db` → `scheme://user@host/db`.
fn without_password(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[start..];
    // The userinfo ends at the last '@' before the path.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    match rest[..at].find(':') {
        Some(colon) => format!("{}{}{}", &url[..start], &rest[..colon], &rest[at..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    const GUIDE: Retention = Retention {
        daily: 7,
        weekly: 4,
        monthly: 12,
    };

    #[test]
    fn names_round_trip_and_other_files_are_not_ours() {
        let t = at(2026, 1, 18, 2);
        assert_eq!(file_name(t), "health-agent-20260118T020000Z.dump");
        assert_eq!(parse_file_name(&file_name(t)), Some(t));
        for other in [
            "notes.txt",
            "health-agent-latest.dump",
            ".health-agent-20260118T020000Z.dump.partial",
            "health-agent-20260118T020000Z.sql",
        ] {
            assert_eq!(parse_file_name(other), None, "{other}");
        }
    }

    #[test]
    fn a_year_of_nightly_backups_keeps_7_daily_4_weekly_12_monthly() {
        // Nightly at 02:00 from 2025-01-01 to 2025-12-31 (a Wednesday).
        let start = at(2025, 1, 1, 2);
        let taken: Vec<_> = (0..365).map(|d| start + chrono::Days::new(d)).collect();
        let keep = to_keep(&taken, GUIDE);
        let days = |v: &[(u32, u32)]| -> BTreeSet<_> {
            v.iter().map(|&(m, d)| at(2025, m, d, 2)).collect()
        };
        // 7 daily: Dec 25..31. Weekly (newest of each ISO week): Sun Dec 28,
        // Dec 21, Dec 14 beyond the week of Dec 29..31 (Wed Dec 31, already
        // daily). Monthly: last day of each month.
        let mut expected = days(&[
            (12, 25),
            (12, 26),
            (12, 27),
            (12, 28),
            (12, 29),
            (12, 30),
            (12, 31),
            (12, 21),
            (12, 14),
        ]);
        for (m, d) in [
            (1, 31),
            (2, 28),
            (3, 31),
            (4, 30),
            (5, 31),
            (6, 30),
            (7, 31),
            (8, 31),
            (9, 30),
            (10, 31),
            (11, 30),
        ] {
            expected.insert(at(2025, m, d, 2));
        }
        assert_eq!(keep, expected);
        assert_eq!(keep.len(), 7 + 2 + 11);
    }

    #[test]
    fn several_backups_a_day_keep_the_newest_of_each_day() {
        let taken = vec![at(2026, 3, 2, 1), at(2026, 3, 2, 13), at(2026, 3, 1, 23)];
        let keep = to_keep(&taken, GUIDE);
        assert_eq!(
            keep,
            [at(2026, 3, 2, 13), at(2026, 3, 1, 23)]
                .into_iter()
                .collect()
        );
    }

    #[test]
    fn gaps_count_days_that_have_a_backup_and_the_newest_is_always_kept() {
        // Backups only every 10 days: 7 daily reach back 60 days.
        let newest = at(2026, 6, 30, 2);
        let taken: Vec<_> = (0..10)
            .map(|i| newest - chrono::Days::new(10 * i))
            .collect();
        let only_daily = Retention {
            daily: 7,
            weekly: 0,
            monthly: 0,
        };
        let keep = to_keep(&taken, only_daily);
        assert_eq!(keep.len(), 7);
        assert!(keep.contains(&newest));
        assert!(!keep.contains(&taken[7]));
        assert!(to_keep(&[], GUIDE).is_empty());
        assert_eq!(
            to_keep(
                &[newest],
                Retention {
                    daily: 0,
                    weekly: 0,
                    monthly: 0
                }
            ),
            [newest].into_iter().collect()
        );
    }

    #[test]
    fn the_password_leaves_the_url() {
        assert_eq!(
            without_password("postgres://u:p%40ss@db:5432/x?sslmode=require"),
            "postgres://u@db:5432/x?sslmode=require"
        );
        assert_eq!(without_password("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(without_password("postgres://db/x"), "postgres://db/x");
        let t = Target::of("postgres://u:p%40ss@db:5432/x").unwrap();
        assert_eq!(t.password.as_deref(), Some(std::ffi::OsStr::new("p@ss")));
    }
}
