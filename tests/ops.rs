//! The monitoring files pass promtool: the alert rules, their unit tests and
//! the Prometheus configuration. promtool comes with Debian's `prometheus`
//! package (`./dev test` installs it when run as root).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test says where it failed

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs promtool with `args` and fails the test, with promtool's output, unless it succeeds.
fn promtool(args: &[&str]) -> String {
    let out = match Command::new("promtool")
        .args(args)
        .current_dir(repo())
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "promtool is not on PATH: apt-get install prometheus (Debian's package ships promtool)"
        ),
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool {} failed ({}):\n{text}",
        args.join(" "),
        out.status
    );
    text
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "health-agent-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_alert_rules_are_valid() {
    let out = promtool(&["check", "rules", "config/alerts.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn the_alert_rule_unit_tests_pass() {
    let out = promtool(&["test", "rules", "config/alerts_test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn the_prometheus_config_is_valid_with_its_key_file() {
    // promtool checks that credentials_file exists, so point it at a temporary
    // key, as the header of config/prometheus.yml describes.
    let tmp = TempDir::new("promtool");
    let key = tmp.0.join("api_key");
    std::fs::write(&key, "scrape-key\n").unwrap();
    std::fs::copy(repo().join("config/alerts.yml"), tmp.0.join("alerts.yml")).unwrap();
    let original = std::fs::read_to_string(repo().join("config/prometheus.yml")).unwrap();
    assert!(
        original.contains("credentials_file: /etc/prometheus/api_key"),
        "prometheus.yml no longer reads its key from /etc/prometheus/api_key"
    );
    let config = original.replace("/etc/prometheus/api_key", key.to_str().unwrap());
    let path = tmp.0.join("prometheus.yml");
    std::fs::write(&path, config).unwrap();

    let out = promtool(&["check", "config", path.to_str().unwrap()]);
    assert!(out.contains("SUCCESS"), "{out}");
    assert!(
        out.contains("rules found"),
        "the rule file was not checked:\n{out}"
    );
}
