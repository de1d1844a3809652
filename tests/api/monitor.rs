//! `health-agent monitor` against a live instance, through the real binary.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{TestApp, KEY};

/// Runs the monitor without blocking this thread: the instance's metrics
/// actor answers on it.
async fn monitor(args: &[&str], key: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_health-agent"))
        .arg("monitor")
        .args(args)
        .env("API_KEY", key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the monitor");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("poll the monitor").is_none() {
        assert!(Instant::now() < deadline, "the monitor did not stop");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    child.wait_with_output().expect("monitor output")
}

#[actix_web::test]
async fn the_monitor_prints_and_writes_a_row_per_interval_then_stops_after_its_duration() {
    let app = TestApp::spawn().await;
    assert_eq!(app.create_user("watched").await.status(), 201);
    assert_eq!(app.get("/api/v1/users/watched").await.status(), 200);
    let csv = std::env::temp_dir().join(format!("monitor-{}.csv", uuid::Uuid::new_v4().simple()));
    let csv_arg = csv.to_string_lossy().into_owned();

    let out = monitor(
        &[
            "--host",
            &app.address,
            "--interval",
            "1",
            "--duration",
            "2",
            "--csv",
            &csv_arg,
        ],
        KEY,
    )
    .await;

    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("pool%") && stdout.contains("q:db"),
        "{stdout}"
    );
    assert!(stdout.contains("samples"), "no closing summary: {stdout}");
    let text = std::fs::read_to_string(&csv).expect("the CSV");
    let _ = std::fs::remove_file(&csv);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(
        (2..=3).contains(&rows.len()),
        "one row a second for 2 s: {text}"
    );
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no {name} column: {header:?}"))
    };
    for row in &rows {
        assert_eq!(row.len(), header.len(), "{text}");
        let pool: f64 = row[col("pool_utilization_percent")].parse().unwrap();
        assert!((0.0..=100.0).contains(&pool), "{text}");
        let memory: f64 = row[col("memory_mb")].parse().unwrap();
        assert!(memory > 0.0, "the instance's RSS: {text}");
        let _: u64 = row[col("mailbox_depth_db")].parse().unwrap();
    }
    // The server counted our two requests before the first sample.
    let p95: f64 = rows[0][col("p95_ms")].parse().unwrap();
    assert!(p95 > 0.0, "{text}");
    // From the second sample on, throughput is a rate.
    let rps: f64 = rows[1][col("requests_per_s")].parse().unwrap();
    assert!(rps >= 0.0, "{text}");
}

#[actix_web::test]
async fn the_monitor_with_a_refused_key_exits_1_and_names_the_fix() {
    let app = TestApp::spawn().await;
    let out = monitor(
        &["--host", &app.address, "--interval", "1", "--duration", "5"],
        "wrong",
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("403") && err.contains("--api-key"), "{err}");
}
