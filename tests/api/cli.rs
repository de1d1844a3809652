use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_health-agent"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUN_ENV")
        .env("API_KEYS", "cli-key");
    c
}

#[test]
fn an_invalid_setting_exits_2_and_names_the_key_and_the_expected_form() {
    let out = bin()
        .args(["config", "check"])
        .env("API_PORT", "eighty")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("API_PORT") && err.contains("api.port"),
        "{err}"
    );
}

#[test]
fn a_misspelt_log_level_exits_2_instead_of_silencing_the_logs() {
    let out = bin()
        .args(["config", "check"])
        .env("LOG_LEVEL", "inof")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("LOG_LEVEL") && err.contains("inof"), "{err}");
}

#[test]
fn a_misspelt_log_format_or_provider_exits_2_naming_the_variable() {
    for (var, raw, key) in [
        ("LOG_FORMAT", "jsno", "log.format"),
        ("HEALTH_AGENT__LLM__PROVIDER", "antropic", "llm.provider"),
    ] {
        let out = bin()
            .args(["config", "check"])
            .env(var, raw)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(var) && err.contains(key), "{err}");
    }
}

#[test]
fn config_check_prints_the_effective_settings_without_secrets() {
    let out = bin()
        .args(["config", "check"])
        .env("DATABASE_URL", "postgres://u:topsecret@db:5432/x")
        .env("OPENAI_API_KEY", "sk-live-123")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("[api]") && text.contains("postgres://u:[redacted]@db:5432/x"),
        "{text}"
    );
    for secret in ["topsecret", "sk-live-123", "cli-key"] {
        assert!(!text.contains(secret), "{secret} leaked");
    }
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["migrate", "up", "--help"],
        vec!["migrate", "down", "--help"],
        vec!["migrate", "status", "--help"],
        vec!["config", "check", "--help"],
        vec!["backup", "--help"],
        vec!["restore", "--help"],
    ] {
        let out = bin().args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

#[actix_web::test]
async fn migrate_down_1_then_up_round_trips_through_the_binary() {
    let url = actors::testing::migrated_database().await;
    let run = |args: &[&str]| {
        let out = bin().args(args).env("DATABASE_URL", &url).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The newest migration, whichever number it has.
    let newest = actors::db::migrate::embedded()
        .unwrap()
        .into_iter()
        .max_by_key(|m| m.version)
        .unwrap();
    let name = format!("{:03}_{}", newest.version, newest.name);
    assert!(run(&["migrate", "down", "1"]).contains(&format!("rolled back {name}")));
    assert!(run(&["migrate", "status"]).contains("pending"));
    assert!(run(&["migrate", "up"]).contains(&format!("applied {name}")));
    assert!(!run(&["migrate", "status"]).contains("pending"));
}

#[test]
fn config_check_names_the_chat_and_embedding_models() {
    let out = bin()
        .args(["config", "check"])
        .env("ANTHROPIC_API_KEY", "sk-ant-test")
        .env("HEALTH_AGENT__LLM__EMBEDDING_PROVIDER", "hashed")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(
            "# chat: anthropic claude-sonnet-4-5; embeddings: hashed hashed-ngram-384"
        ),
        "{text}"
    );
}
