//! The deployment files pass schema validators installed from PyPI by
//! `./dev test` into `.data/validators` (pinned there): check-jsonschema with
//! its vendored compose-spec schema for the compose files, and
//! kubernetes-validate with its bundled Kubernetes schemas (strict: unknown
//! fields fail) for `deploy/k8s/`. Both run offline. A missing validator
//! fails these tests; it never skips them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test says where it failed

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `.data/validators/bin/NAME` (or `$HA_VALIDATORS_DIR/bin/NAME`), else PATH.
fn validator(name: &str) -> PathBuf {
    let dir = std::env::var_os("HA_VALIDATORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".data/validators"));
    let pinned = dir.join("bin").join(name);
    if pinned.is_file() {
        return pinned;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed: `./dev test` installs the pinned validators into \
                 .data/validators (python3 -m venv + pip)"
            )
        })
}

/// Runs a validator; returns (success, output).
fn run(name: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(validator(name))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn check_compose(file: &str) -> (bool, String) {
    run(
        "check-jsonschema",
        &["--builtin-schema", "vendor.compose-spec", file],
    )
}

fn k8s_manifests() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo().join("deploy/k8s"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| p.to_str().unwrap().to_owned())
        .collect();
    files.sort();
    files
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap()
}

#[test]
fn both_compose_files_match_the_compose_specification() {
    for file in ["docker-compose.yml", "docker-compose.prod.yml"] {
        let (ok, out) = check_compose(file);
        assert!(ok, "{file}:\n{out}");
    }
}

#[test]
fn the_kubernetes_manifests_match_the_kubernetes_schemas() {
    let files = k8s_manifests();
    let mut args = vec!["--strict"];
    args.extend(files.iter().map(String::as_str));
    let (ok, out) = run("kubernetes-validate", &args);
    assert!(ok, "{out}");
    assert!(out.contains("passed"), "{out}");
    for kind in [
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
        "Secret",
        "Job",
    ] {
        assert!(
            files.iter().any(|f| std::fs::read_to_string(f)
                .unwrap()
                .contains(&format!("kind: {kind}\n"))),
            "no {kind} in deploy/k8s"
        );
    }
}

#[test]
fn the_validators_reject_broken_files() {
    let dir = std::env::temp_dir().join(format!("ha-deploy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let compose = dir.join("compose.yml");
    std::fs::write(
        &compose,
        read("docker-compose.prod.yml").replace("    expose:\n", "    exposes:\n"),
    )
    .unwrap();
    let (ok, out) = check_compose(compose.to_str().unwrap());
    assert!(!ok, "a misspelt compose key passed:\n{out}");

    let deployment = dir.join("deployment.yaml");
    std::fs::write(
        &deployment,
        read("deploy/k8s/deployment.yaml").replace("periodSeconds: 10", "periodSecond: 10"),
    )
    .unwrap();
    let (ok, out) = run(
        "kubernetes-validate",
        &["--strict", deployment.to_str().unwrap()],
    );
    assert!(!ok, "a misspelt probe field passed:\n{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_deployment_probes_the_health_routes_and_drains_before_stopping() {
    let d = read("deploy/k8s/deployment.yaml");
    for needle in ["path: /livez", "path: /readyz", "preStop:", "sleep"] {
        assert!(d.contains(needle), "deployment.yaml lacks {needle}");
    }
    let hpa = read("deploy/k8s/hpa.yaml");
    assert!(hpa.contains("minReplicas: 3") && hpa.contains("maxReplicas: 20"));
    assert!(hpa.contains("name: cpu"));
}

/// Variables a compose file reads: `${NAME`, `${NAME:-x}`; `$${..}` is
/// a literal dollar for the container's shell.
fn compose_variables(text: &str) -> Vec<String> {
    let mut vars = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("${") {
        let start = i + at;
        i = start + 2;
        if start > 0 && bytes[start - 1] == b'$' {
            continue;
        }
        let name: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !vars.contains(&name) {
            vars.push(name);
        }
    }
    vars
}

#[test]
fn env_example_lists_every_variable_of_the_production_compose_file() {
    let example = read(".env.example");
    let vars = compose_variables(&read("docker-compose.prod.yml"));
    assert!(vars.len() > 10, "{vars:?}");
    for var in vars {
        assert!(
            example.lines().any(|l| l.starts_with(&format!("{var}="))),
            ".env.example does not list {var}"
        );
    }
}

#[test]
fn compose_commands_never_demand_a_secret() {
    // `${VAR:?}` makes `docker compose ps` and `down` fail without the secret.
    for file in ["docker-compose.yml", "docker-compose.prod.yml"] {
        let text = read(file);
        assert!(!text.contains(":?"), "{file} demands a variable with :?");
        assert!(!text.contains("${API_KEY_SECRET?"), "{file}");
    }
}
