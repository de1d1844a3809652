//! Live tuning: `SIGHUP` and `POST /api/v1/admin/reload` re-read the
//! configuration as at start-up (`Settings::load`: the files and the process
//! environment) and apply its `LiveSettings`: every resizable mailbox, the
//! database pool sizes and queue timeout, the slow-request threshold and the
//! rate limits. Any other changed setting is reported as needing a restart
//! and left as it is. An invalid configuration changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::PoisonError;

use serde::Serialize;
use serde_json::Value;

use crate::config::{dotted, ConfigError, Settings};
use crate::error::now_rfc3339;
use crate::state::Shared;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Change {
    pub old: Value,
    pub new: Value,
}

/// What a reload did: the body of `POST /api/v1/admin/reload`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "applied": {"actors.db.mailbox_capacity": {"old": 1024, "new": 2048}},
    "restart_required": ["api.workers"],
    "timestamp": "2026-06-01T12:00:00.000Z"
}))]
pub struct ReloadReport {
    /// Changed live settings, now in effect.
    pub applied: BTreeMap<String, Change>,
    /// Changed settings that take effect only after a restart (not applied).
    pub restart_required: Vec<String>,
    #[schema(format = DateTime)]
    pub timestamp: String,
}

/// Loads the configuration as at start-up and applies it; logs the outcome.
pub fn reload(shared: &Shared) -> Result<ReloadReport, ConfigError> {
    let outcome = Settings::load()
        .and_then(|s| s.check_serving().map(|()| s))
        .and_then(|s| apply(shared, &s));
    match &outcome {
        Ok(report) => log(report),
        Err(e) => tracing::error!(
            reason = %e,
            "configuration reload rejected; the running values stay"
        ),
    }
    outcome
}

/// Applies the live part of `new` and reports the rest. `new` must be valid
/// (as `Settings::load` returns it).
pub fn apply(shared: &Shared, new: &Settings) -> Result<ReloadReport, ConfigError> {
    let mut running = shared
        .running
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let (applied, restart_required) = diff(&running, new);
    let (old, live) = (running.live(), new.live());

    // The one step that can fail goes first, so a failure changes nothing.
    let (d, new_d) = (old.database, live.database);
    if (d.pool_max_size, d.pool_min_idle) != (new_d.pool_max_size, new_d.pool_min_idle) {
        shared
            .db
            .resize_pools(new_d.pool_max_size, new_d.pool_min_idle)
            .map_err(|e| ConfigError(format!("`database.pool_max_size`: {e}")))?;
    }
    if d.queue_timeout_ms != new_d.queue_timeout_ms {
        shared.db.set_queue_timeout(new_d.queue_timeout_ms);
    }
    let (a, new_a) = (old.actors, live.actors);
    for (gate, was, now) in [
        (shared.db.gate(), a.db, new_a.db),
        (shared.cache.gate(), a.cache, new_a.cache),
        (shared.llm.gate(), a.llm, new_a.llm),
    ] {
        if was != now {
            gate.resize(now.mailbox_capacity);
        }
    }
    if a.reminders != new_a.reminders {
        shared.reminders.resize(new_a.reminders.mailbox_capacity);
    }
    if old.metrics != live.metrics {
        let threshold = live.metrics.slow_request_threshold_ms;
        shared.set_slow_threshold_ms(threshold.as_millis() as u64);
    }
    if old.rate_limit != live.rate_limit {
        shared.rate_limiter.set(&live.rate_limit);
    }
    running.set_live(&live);
    Ok(ReloadReport {
        applied,
        restart_required,
        timestamp: now_rfc3339(),
    })
}

/// The changed settings: live ones with their old and new values, and the
/// names of the others, which need a restart. Those are found by giving the
/// running settings the new live values: what still differs is not live.
/// Secrets are compared by value (`values_to_compare`) but only ever named.
fn diff(running: &Settings, new: &Settings) -> (BTreeMap<String, Change>, Vec<String>) {
    let (old_live, new_live) = (dotted(&running.live()), dotted(&new.live()));
    let applied = changed(&old_live, &new_live)
        .map(|key| {
            let value = |m: &BTreeMap<String, Value>| m.get(key).cloned().unwrap_or(Value::Null);
            let change = Change {
                old: value(&old_live),
                new: value(&new_live),
            };
            (key.to_owned(), change)
        })
        .collect();
    let mut kept = running.clone();
    kept.set_live(&new.live());
    let (kept, new) = (kept.values_to_compare(), new.values_to_compare());
    let restart = changed(&kept, &new).map(str::to_owned).collect();
    (applied, restart)
}

/// The keys whose values differ, in order.
fn changed<'a>(
    old: &'a BTreeMap<String, Value>,
    new: &'a BTreeMap<String, Value>,
) -> impl Iterator<Item = &'a str> {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter(move |k| old.get(*k) != new.get(*k))
        .map(String::as_str)
}

fn log(report: &ReloadReport) {
    let mut applied = String::new();
    for (key, c) in &report.applied {
        if !applied.is_empty() {
            applied.push_str(", ");
        }
        let _ = write!(applied, "{key} {}→{}", c.old, c.new);
    }
    if applied.is_empty() {
        applied.push_str("nothing");
    }
    tracing::info!(applied = %applied, "configuration reloaded");
    if !report.restart_required.is_empty() {
        tracing::warn!(
            keys = %report.restart_required.join(", "),
            "changed settings need a restart to take effect; not applied"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> Settings {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let mut vars: Vec<(String, String)> = vec![("API_KEYS".into(), "k1".into())];
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Settings::from_sources(&dir, vars).unwrap()
    }

    #[test]
    fn live_settings_are_applied_and_the_rest_need_a_restart() {
        let old = load(&[]);
        let new = load(&[
            ("HEALTH_AGENT__ACTORS__DB__MAILBOX_CAPACITY", "8"),
            ("SLOW_REQUEST_THRESHOLD_MS", "100"),
            ("HEALTH_AGENT__DATABASE__POOL_MAX_SIZE", "4"),
            ("API_PORT", "9999"),
            ("HEALTH_AGENT__API__WORKERS", "3"),
        ]);
        let (applied, restart) = diff(&old, &new);
        assert_eq!(
            applied["actors.db.mailbox_capacity"],
            Change {
                old: 1024.into(),
                new: 8.into()
            }
        );
        assert_eq!(applied["metrics.slow_request_threshold_ms"].new, 100);
        assert_eq!(applied["database.pool_max_size"].new, 4);
        assert_eq!(applied.len(), 3);
        assert_eq!(restart, vec!["api.port", "api.workers"]);
    }

    #[test]
    fn rate_limits_are_live() {
        let new = load(&[
            ("RATE_LIMIT_PER_MINUTE", "600"),
            ("HEALTH_AGENT__RATE_LIMIT__BURST", "9"),
        ]);
        let (applied, restart) = diff(&load(&[]), &new);
        assert_eq!(applied["rate_limit.per_minute"].new, 600);
        assert_eq!(applied["rate_limit.burst"].new, 9);
        assert!(restart.is_empty(), "{restart:?}");
    }

    #[test]
    fn a_changed_secret_is_named_but_never_shown() {
        let old = load(&[("DATABASE_URL", "postgres://u:old-pw@db/x")]);
        let new = load(&[
            ("DATABASE_URL", "postgres://u:new-pw@db/x"),
            ("API_KEYS", "k2"),
        ]);
        let (applied, restart) = diff(&old, &new);
        assert!(applied.is_empty());
        assert_eq!(restart, vec!["api.api_keys", "database.url"]);
    }

    #[test]
    fn nothing_changed_reports_nothing() {
        let (applied, restart) = diff(&load(&[]), &load(&[]));
        assert!(applied.is_empty() && restart.is_empty());
    }

    fn env_name(key: &str) -> String {
        format!(
            "HEALTH_AGENT__{}",
            key.replace('.', "__").to_ascii_uppercase()
        )
    }

    /// Whatever `LiveSettings` holds is applied, under the key and with the
    /// value `Settings` renders, and needs no restart.
    #[test]
    fn every_live_setting_is_applied_under_its_own_key() {
        let old = load(&[]);
        let live = dotted(&old.live());
        assert_eq!(
            live.keys().collect::<Vec<_>>(),
            [
                "actors.cache.mailbox_capacity",
                "actors.db.mailbox_capacity",
                "actors.llm.mailbox_capacity",
                "actors.reminders.mailbox_capacity",
                "database.pool_max_size",
                "database.pool_min_idle",
                "database.queue_timeout_ms",
                "metrics.slow_request_threshold_ms",
                "rate_limit.burst",
                "rate_limit.chat_per_minute",
                "rate_limit.per_minute",
            ]
        );
        let rendered = dotted(&old);
        for (key, value) in &live {
            assert_eq!(rendered.get(key), Some(value), "{key}");
        }
        let raised: Vec<(String, String)> = live
            .iter()
            .map(|(key, v)| (env_name(key), (v.as_u64().unwrap() + 1).to_string()))
            .collect();
        let raised: Vec<(&str, &str)> = raised
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let new = load(&raised);
        let (applied, restart) = diff(&old, &new);
        assert!(restart.is_empty(), "{restart:?}");
        assert_eq!(
            applied.keys().collect::<Vec<_>>(),
            live.keys().collect::<Vec<_>>()
        );
        let mut kept = old.clone();
        kept.set_live(&new.live());
        assert_eq!(kept.live(), new.live());
    }

    #[test]
    fn durations_with_units_compare_by_value() {
        let old = load(&[]);
        let same = load(&[
            ("SLOW_REQUEST_THRESHOLD_MS", "3s"),
            ("HEALTH_AGENT__API__KEEP_ALIVE_SECS", "75s"),
        ]);
        assert_eq!(diff(&old, &same), (BTreeMap::new(), Vec::new()));
        let new = load(&[("HEALTH_AGENT__DATABASE__QUEUE_TIMEOUT_MS", "1s")]);
        let (applied, _) = diff(&old, &new);
        assert_eq!(
            applied["database.queue_timeout_ms"],
            Change {
                old: 40.into(),
                new: 1000.into()
            }
        );
    }

    /// Every text setting, whatever its type: a change is named, and what
    /// the redacted rendering hides (a `Secret`, a `ConnUrl`'s password)
    /// is compared by value but never shown. A new secret field is covered
    /// without being listed anywhere.
    #[test]
    fn a_change_to_any_text_setting_is_named_and_no_secret_is_shown() {
        let defaults = load(&[]);
        let mut hidden = Vec::new();
        for (key, value) in dotted(&defaults) {
            if !(value.is_string() || value.is_array()) {
                continue;
            }
            // The first form the key's checks accept (URLs need their scheme).
            let loaded = [
                "postgres://u:{}@h/x",
                "redis://:{}@h:6379/0",
                "http://u:{}@h/",
            ]
            .into_iter()
            .find_map(|form| {
                let with = |tag: &str| {
                    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
                    let vars = [
                        ("API_KEYS".to_owned(), "k1".to_owned()),
                        (env_name(&key), form.replace("{}", tag)),
                    ];
                    Settings::from_sources(&dir, vars).ok()
                };
                Some((with("pw-old-x")?, with("pw-new-y")?))
            });
            let Some((old, new)) = loaded else {
                continue; // an enumerated setting (run_mode, log, providers)
            };
            let (applied, restart) = diff(&old, &new);
            assert!(restart.contains(&key), "{key}: {restart:?}");
            let shown = serde_json::to_string(&(&applied, &restart)).unwrap();
            assert!(
                !shown.contains("pw-old") && !shown.contains("pw-new"),
                "{shown}"
            );
            if dotted(&old).get(&key) == dotted(&new).get(&key) {
                hidden.push(key);
            }
        }
        // The test reaches hidden settings of each kind (not a list it relies on).
        for secret in [
            "api.api_keys",
            "api.api_key_secret",
            "api.admin_api_keys",
            "database.url",
            "database.replica_url",
            "cache.url",
            "llm.anthropic_api_key",
            "llm.openai_compatible_api_key",
            "llm.embedding_base_url",
            "reminders.webhook_url",
        ] {
            assert!(hidden.iter().any(|k| k == secret), "{secret}: {hidden:?}");
        }
    }
}
