//! `health-agent backup` / `restore` through the binary, against the local
//! stack's PostgreSQL with its own pg_dump/pg_restore (`./dev env` exports
//! PG_BIN_DIR; Debian's pg_dump 15 cannot dump a 16 server).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::json;

use crate::helpers::TestApp;

fn bin(db_url: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_health-agent"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUN_ENV")
        .env_remove("BACKUP_DIR")
        .env("DATABASE_URL", db_url);
    c
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `backup --dir dir`, asserts success and returns the file it printed last.
fn backup(db_url: &str, dir: &Path) -> (PathBuf, String) {
    let out = bin(db_url)
        .args(["backup", "--dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "backup failed: {stderr}");
    let last = stdout.lines().last().expect("a path on stdout").to_owned();
    let path = PathBuf::from(&last);
    assert!(path.is_file(), "{last} is not a file");
    assert_eq!(path.parent(), Some(dir));
    (path, stdout)
}

fn restore(db_url: &str, file: &Path, force: bool) -> Output {
    let mut c = bin(db_url);
    c.arg("restore").arg(file);
    if force {
        c.arg("--force");
    }
    c.output().unwrap()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(format!("ha-backup-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    actix_web::rt::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// Every table of the public schema as its rows' text forms, sorted (a
/// vector's text form is its every component), plus each sequence's position.
async fn contents(url: &str) -> BTreeMap<String, Vec<String>> {
    let db = connect(url).await;
    let mut out = BTreeMap::new();
    let tables = db
        .query(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    for t in tables {
        let name: String = t.get(0);
        let rows = db
            .query(
                &format!("SELECT t::text FROM public.{name} t ORDER BY 1"),
                &[],
            )
            .await
            .unwrap();
        out.insert(name, rows.iter().map(|r| r.get(0)).collect());
    }
    let seqs = db
        .query(
            "SELECT sequencename || '=' || coalesce(last_value::text, 'unset')
               FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    out.insert(
        "(sequences)".into(),
        seqs.iter().map(|r| r.get(0)).collect(),
    );
    out
}

/// A database with a row in every table the API writes.
async fn populated() -> TestApp {
    let app = TestApp::spawn().await;
    for user in ["ana", "bo"] {
        assert_eq!(app.create_user(user).await.status(), 201);
        for msg in [
            "I love pizza",
            "I am allergic to peanuts",
            "what did I eat?",
        ] {
            let res = app
                .post_json("/api/v1/chat", &json!({"user_id": user, "message": msg}))
                .await;
            assert_eq!(res.status(), 200);
        }
        let res = app
            .post_json(
                &format!("/api/v1/users/{user}/food"),
                &json!({"description": "2 eggs and toast"}),
            )
            .await;
        assert_eq!(res.status(), 201);
        let res = app
            .post_json(
                &format!("/api/v1/users/{user}/reminders"),
                &json!({"type": "daily", "message": "Take vitamins", "daily_time": "07:05"}),
            )
            .await;
        assert_eq!(res.status(), 201);
        let reminder: serde_json::Value = res.json().await.unwrap();
        let id = reminder["id"].as_str().unwrap();
        let res = app
            .post_json(
                &format!("/api/v1/users/{user}/reminders/{id}/complete"),
                &json!({}),
            )
            .await;
        assert_eq!(res.status(), 200);
    }
    let res = app
        .request(reqwest::Method::POST, "/api/v1/users")
        .header("Idempotency-Key", "backup-test-1")
        .json(&json!({"user_id": "cy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    app
}

#[actix_web::test]
async fn a_backup_restores_into_a_fresh_database_row_for_row_vectors_included() {
    let app = populated().await;
    let before = contents(&app.db_url).await;
    for table in [
        "users",
        "conversation_history",
        "memories",
        "food_entries",
        "reminders",
        "xp_events",
        "idempotency_keys",
        "schema_migrations",
    ] {
        assert!(
            !before.get(table).map(Vec::is_empty).unwrap_or(true),
            "{table} is empty: the test would prove nothing"
        );
    }
    let with_vectors = app
        .count("SELECT count(*) FROM memories WHERE embedding IS NOT NULL")
        .await;
    assert!(with_vectors > 0, "no memory has an embedding");

    let dir = TempDir::new();
    let (file, _) = backup(&app.db_url, &dir.0);
    assert!(file
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("health-agent-"));

    let fresh = actors::testing::empty_database().await;
    let out = restore(&fresh, &file, false);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "restore failed: {stderr}");
    assert!(stdout.contains("restored"), "{stdout}");

    let after = contents(&fresh).await;
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (table, rows) in &before {
        assert_eq!(rows, &after[table], "table {table} differs after restore");
    }
    // The vectors came back as vectors, usable by the same search.
    let db = connect(&fresh).await;
    let dims: i32 = db
        .query_one(
            "SELECT vector_dims(embedding) FROM memories WHERE embedding IS NOT NULL LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(dims, 384);
}

#[actix_web::test]
async fn restore_refuses_a_non_empty_database_and_force_replaces_it() {
    let app = populated().await;
    let dir = TempDir::new();
    let (file, _) = backup(&app.db_url, &dir.0);

    // No scheduler: it would hold the restore's locks for a poll.
    let other =
        TestApp::spawn_with(vec![("HEALTH_AGENT__REMINDERS__ENABLED", "false".into())]).await;
    assert_eq!(other.create_user("intruder").await.status(), 201);
    let out = restore(&other.db_url, &file, false);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("not empty") && stderr.contains("--force"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("health_agent:health_agent@"),
        "password shown: {stderr}"
    );
    assert_eq!(
        other
            .count("SELECT count(*) FROM users WHERE user_id = 'intruder'")
            .await,
        1,
        "a refused restore changed the database"
    );

    // As the runbook says: stop the instances, then restore.
    other.handle.stop(true).await;
    let out = restore(&other.db_url, &file, true);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "restore --force failed: {stderr}");
    assert_eq!(contents(&other.db_url).await, contents(&app.db_url).await);
}

#[actix_web::test]
async fn a_failed_backup_or_restore_exits_non_zero_with_a_clear_message() {
    let url = actors::testing::migrated_database().await;
    let dir = TempDir::new();
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
        text(&out).1
    };
    let dir_arg = dir.0.to_str().unwrap();

    // The database is down (nothing listens on port 1).
    let err = run(bin("postgres://health_agent:pw@127.0.0.1:1/health_agent")
        .args(["backup", "--dir", dir_arg]));
    assert!(err.contains("pg_dump") && err.contains("failed"), "{err}");
    assert!(!err.contains(":pw@"), "password shown: {err}");

    // No pg_dump where we were told to look.
    let err = run(bin(&url)
        .env("PG_BIN_DIR", "/nonexistent/bin")
        .args(["backup", "--dir", dir_arg]));
    assert!(err.contains("pg_dump not found"), "{err}");

    // The directory cannot be made: a file is in the way.
    let blocker = dir.0.join("a-file");
    std::fs::write(&blocker, "x").unwrap();
    let err = run(bin(&url).args(["backup", "--dir", blocker.join("sub").to_str().unwrap()]));
    assert!(err.contains("backup directory"), "{err}");

    // Nothing that looks like a backup was left behind by the failures.
    let left: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, vec!["a-file".to_string()]);

    // Restoring something that is not a dump.
    let fresh = actors::testing::empty_database().await;
    let err = run(bin(&fresh).arg("restore").arg(&blocker));
    assert!(err.contains("not a pg_dump custom-format archive"), "{err}");
}

#[actix_web::test]
async fn backup_keeps_the_guides_retention_and_leaves_other_files_alone() {
    let url = actors::testing::migrated_database().await;
    let dir = TempDir::new();
    // Forty nightly backups ending two days ago, and a file of someone else's.
    let now = chrono::Utc::now();
    let old: Vec<_> = (2..42u64).map(|d| now - chrono::Days::new(d)).collect();
    for t in &old {
        std::fs::write(dir.0.join(health_agent::backup::file_name(*t)), "old").unwrap();
    }
    std::fs::write(dir.0.join("notes.txt"), "keep me").unwrap();

    let (file, stdout) = backup(&url, &dir.0);
    let mut all = old.clone();
    all.push(
        health_agent::backup::parse_file_name(file.file_name().unwrap().to_str().unwrap()).unwrap(),
    );
    let keep = health_agent::backup::to_keep(
        &all,
        health_agent::backup::Retention {
            daily: 7,
            weekly: 4,
            monthly: 12,
        },
    );
    let mut left: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    let mut expected: Vec<String> = keep
        .iter()
        .map(|t| health_agent::backup::file_name(*t))
        .chain(["notes.txt".to_string()])
        .collect();
    expected.sort();
    assert_eq!(left, expected);
    assert!(keep.len() < all.len(), "nothing was pruned");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("pruned ")).count(),
        all.len() - keep.len(),
        "{stdout}"
    );
}
