//! Load scenarios for the Health Agent API, on goose.
//!
//! ```text
//! loadtest steady    [--wait human|0|MIN-MAX] [--api-key K] [goose options: -H URL, -u N, -t 5m, ...]
//! loadtest spike | endurance | smoke
//! ```
//!
//! Each virtual user creates its user (409 is fine), then repeats the
//! original service's mix: chat 5, food 2, reminders 2, gamification 1
//! (weights of actions). The run passes when p95, the error rate (and, where
//! set, throughput) are within the scenario's limits and the cache hit rate of
//! the reads made after warm-up, from `/api/v1/metrics`, is above the minimum.
//! Exit status: 0 pass, 1 fail, 2 the run could not happen.

mod traffic;
mod verdict;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use goose::config::GooseConfiguration;
use goose::prelude::*;
use serde_json::Value;

use verdict::{CacheCounters, Criteria, Observed};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// 100 users started at 10/s, 5 min; p95 < 3 s, errors < 1 %.
    Steady,
    /// 0 → 200 users at once, 2 min; p95 < 5 s, errors < 5 %.
    Spike,
    /// 50 users, 60 min; p95 < 3 s, errors < 1 %.
    Endurance,
    /// CI: 20 users, no waits, 40 s; p95 < 5 s, errors < 1 %, >= 25 req/s.
    Smoke,
}

struct Preset {
    users: usize,
    increase_rate: &'static str,
    run_time: &'static str,
    wait: &'static str,
    criteria: Criteria,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Steady => "steady",
            Kind::Spike => "spike",
            Kind::Endurance => "endurance",
            Kind::Smoke => "smoke",
        }
    }

    fn preset(self) -> Preset {
        let strict = Criteria {
            max_p95_ms: 3000.0,
            max_error_pct: 1.0,
            min_cache_hit_pct: Some(60.0),
            min_rps: None,
        };
        match self {
            Kind::Steady => Preset {
                users: 100,
                increase_rate: "10",
                run_time: "5m",
                wait: "human",
                criteria: strict,
            },
            Kind::Spike => Preset {
                users: 200,
                // Every user within a few milliseconds.
                increase_rate: "100000",
                run_time: "2m",
                wait: "human",
                criteria: Criteria {
                    max_p95_ms: 5000.0,
                    max_error_pct: 5.0,
                    ..strict
                },
            },
            Kind::Endurance => Preset {
                users: 50,
                increase_rate: "10",
                run_time: "60m",
                wait: "human",
                criteria: strict,
            },
            Kind::Smoke => Preset {
                users: 20,
                increase_rate: "20",
                run_time: "40s",
                wait: "0",
                // Lenient on purpose: a debug build on a shared 2-core CI box
                // measured 76–236 req/s and p95 0.7–0.9 s; these catch a
                // collapse (errors, 10× slower) without flaking.
                criteria: Criteria {
                    max_p95_ms: 5000.0,
                    max_error_pct: 1.0,
                    min_cache_hit_pct: None,
                    min_rps: Some(25.0),
                },
            },
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "loadtest",
    about = "Load scenarios for the Health Agent API (goose). Goose's own options follow ours.",
    long_about = "Load scenarios for the Health Agent API (goose). Goose's own options follow ours.\n\nEach user creates its user, then repeats chat (weight 5), food log (2), reminders (2) and gamification (1). Exit status: 0 pass, 1 fail, 2 the run could not happen.",
    after_help = "Examples:\n  loadtest steady\n  loadtest steady --wait 0 -u 200 -t 2m\n  loadtest endurance -t 10m\n  loadtest smoke --min-rps 200"
)]
struct Cli {
    /// Which scenario.
    #[arg(value_enum)]
    scenario: Kind,
    /// The wait between a user's actions: `human` (5–15 s), `0` (capacity
    /// runs) or `MIN-MAX` seconds. Default: human (0 for smoke).
    #[arg(long, value_name = "WAIT", value_parser = parse_wait)]
    wait: Option<(u64, u64)>,
    /// Sent as X-API-Key (`./dev up` sets dev-local-key).
    #[arg(
        long,
        env = "API_KEY",
        default_value = "dev-local-key",
        hide_env_values = true
    )]
    api_key: String,
    /// Fail when the p95 of all requests is not below this (default: the scenario's).
    #[arg(long, value_name = "MS")]
    max_p95_ms: Option<f64>,
    /// Fail when the share of failed requests is not below this (default: the scenario's).
    #[arg(long, value_name = "PCT")]
    max_error_pct: Option<f64>,
    /// Fail when the cache hit rate after warm-up is not above this; 0 = not judged.
    #[arg(long, value_name = "PCT")]
    min_cache_hit_pct: Option<f64>,
    /// Fail below this many requests per second (default: smoke 25, others none).
    #[arg(long, value_name = "RPS")]
    min_rps: Option<f64>,
    /// Seconds after the last user started before the cache counters are read
    /// (the hit rate judged is that of the reads after it).
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    warmup: u64,
    /// User ids are PREFIX-N (default: lt<unix time>, new users each run).
    #[arg(long)]
    user_prefix: Option<String>,
    /// Where the HTML, JSON and CSV reports go.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results"))]
    results_dir: PathBuf,
    #[command(flatten)]
    goose: GooseConfiguration,
}

fn parse_wait(s: &str) -> Result<(u64, u64), String> {
    match s {
        "human" => Ok((5, 15)),
        "0" => Ok((0, 0)),
        _ => {
            let (a, b) = s
                .split_once('-')
                .ok_or_else(|| format!("expected human, 0 or MIN-MAX seconds, got {s:?}"))?;
            let a: u64 = a.trim().parse().map_err(|e| format!("{a:?}: {e}"))?;
            let b: u64 = b.trim().parse().map_err(|e| format!("{b:?}: {e}"))?;
            if a > b {
                return Err(format!("MIN {a} is above MAX {b}"));
            }
            Ok((a, b))
        }
    }
}

fn wait_label(w: (u64, u64)) -> String {
    if w.1 == 0 {
        "0".into()
    } else {
        format!("{}-{}s", w.0, w.1)
    }
}

/// Seconds in goose's time syntax: `90`, `90s`, `5m`, `1h30m`.
fn seconds(t: &str) -> Option<u64> {
    if let Ok(n) = t.parse() {
        return Some(n);
    }
    let mut total = 0;
    let mut num = String::new();
    for ch in t.chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        total += n * match ch {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
    }
    if !num.is_empty() {
        total += num.parse::<u64>().ok()?;
    }
    Some(total)
}

async fn cache_counters(client: &reqwest::Client, host: &str, key: &str) -> Option<CacheCounters> {
    let url = format!("{}/api/v1/metrics", host.trim_end_matches('/'));
    let v: Value = client
        .get(url)
        .header("X-API-Key", key)
        .send()
        .await
        .ok()?
        .error_for_status()
        .ok()?
        .json()
        .await
        .ok()?;
    CacheCounters::from_metrics(&v)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(mut cli: Cli) -> anyhow::Result<bool> {
    let kind = cli.scenario;
    let preset = kind.preset();
    let wait = match cli.wait {
        Some(w) => w,
        None => parse_wait(preset.wait).map_err(anyhow::Error::msg)?,
    };
    let criteria = Criteria {
        max_p95_ms: cli.max_p95_ms.unwrap_or(preset.criteria.max_p95_ms),
        max_error_pct: cli.max_error_pct.unwrap_or(preset.criteria.max_error_pct),
        min_cache_hit_pct: match cli.min_cache_hit_pct {
            Some(p) if p <= 0.0 => None,
            Some(p) => Some(p),
            None => preset.criteria.min_cache_hit_pct,
        },
        min_rps: cli.min_rps.or(preset.criteria.min_rps),
    };

    let started_at = chrono::Local::now();
    let stamp = started_at.format("%Y%m%d-%H%M%S");
    std::fs::create_dir_all(&cli.results_dir)?;
    let base = cli.results_dir.join(format!("{}-{stamp}", kind.name()));
    let with_ext = |ext: &str| base.with_extension(ext).to_string_lossy().into_owned();
    if cli.goose.report_file.is_empty() {
        cli.goose.report_file = vec![with_ext("html"), with_ext("json")];
    }

    let host = cli
        .goose
        .host
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:8000".into());
    let users = cli.goose.users.unwrap_or(preset.users);
    let increase_rate: f64 = cli
        .goose
        .increase_rate
        .as_deref()
        .unwrap_or(preset.increase_rate)
        .parse()
        .unwrap_or(1.0);
    let run_time = cli.goose.run_time.clone().unwrap_or(preset.run_time.into());
    let ramp_secs = users as f64 / increase_rate.max(0.001);

    traffic::init(traffic::Traffic {
        api_key: cli.api_key.clone(),
        user_prefix: cli
            .user_prefix
            .clone()
            .unwrap_or_else(|| format!("lt{}", started_at.timestamp())),
    });

    println!(
        "loadtest {}: {users} users at {} /s, wait {}, run {run_time} after the last start, against {host}",
        kind.name(),
        preset_rate_label(increase_rate),
        wait_label(wait),
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let at_start = cache_counters(&client, &host, &cli.api_key).await;
    if at_start.is_none() {
        println!(
            "note: {host}/api/v1/metrics is not readable with this key; the cache hit rate cannot be judged"
        );
    }
    // The cache counters once users have run for `warmup` seconds at full strength.
    let warm = {
        let (client, host, key) = (client.clone(), host.clone(), cli.api_key.clone());
        let delay = Duration::from_secs_f64(ramp_secs + cli.warmup as f64);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            cache_counters(&client, &host, &key).await
        })
    };

    let attack = GooseAttack::initialize_with_config(cli.goose)?
        .register_scenario(traffic::scenario(wait)?)
        .set_scheduler(GooseScheduler::Random)
        .set_default(GooseDefault::Host, "http://127.0.0.1:8000")?
        .set_default(GooseDefault::Users, preset.users)?
        .set_default(GooseDefault::IncreaseRate, preset.increase_rate)?
        .set_default(
            GooseDefault::RunTime,
            seconds(preset.run_time).unwrap_or(60) as usize,
        )?
        .set_default(GooseDefault::RunningMetrics, 15)?
        .set_default(GooseDefault::NoThresholdAbort, true)?
        .set_default(GooseDefault::NoTelnet, true)?
        // A spike is judged with its first second in: goose would otherwise
        // reset the metrics once every user has started.
        .set_default(GooseDefault::NoResetMetrics, kind == Kind::Spike)?;
    let metrics = match attack.execute().await {
        Ok(m) => m,
        // The user's own --threshold rules failed; our criteria still decide.
        Err(GooseError::ThresholdsFailed { metrics, .. }) => *metrics.0,
        Err(e) => return Err(e.into()),
    };

    let after = cache_counters(&client, &host, &cli.api_key).await;
    let warm = match warm.is_finished() {
        true => warm.await.ok().flatten(),
        false => {
            warm.abort();
            None
        }
    };
    let (cache_hit_pct, cache_note) = match (after, warm.or(at_start)) {
        (Some(a), _) if !a.enabled => (None, "cache: disabled on the server".into()),
        (Some(a), Some(w)) => {
            let rate = a.rate_since(&w);
            let note = format!(
                "cache: hit rate {} over the {} reads after warm-up; {:.1} % since the server started (.cache.hit_rate_percent)",
                rate.map_or_else(|| "unknown".into(), |r| format!("{r:.1} %")),
                a.total_reads.saturating_sub(w.total_reads),
                a.since_start_pct
            );
            (rate, note)
        }
        (Some(a), None) => (
            Some(a.since_start_pct),
            format!("cache: {:.1} % since server start", a.since_start_pct),
        ),
        _ => (None, "cache: /api/v1/metrics unreadable".into()),
    };

    let mut aggs: Vec<_> = metrics.requests.iter().collect();
    aggs.sort_by(|a, b| a.0.cmp(b.0));
    let all = verdict::merged(&aggs.iter().map(|(_, a)| *a).collect::<Vec<_>>());
    let failures: usize = aggs.iter().map(|(_, a)| a.fail_count).sum();
    let secs = (metrics.duration as f64).max(1.0);
    let observed = Observed {
        requests: all.counter,
        p95_ms: all.percentile_us(0.95) as f64 / 1000.0,
        error_pct: if all.counter == 0 {
            0.0
        } else {
            failures as f64 * 100.0 / all.counter as f64
        },
        rps: all.counter as f64 / secs,
        cache_hit_pct,
    };
    let checks = verdict::judge(&criteria, &observed);
    let pass = checks.iter().all(|c| c.passed);

    let csv = with_ext("csv");
    std::fs::write(&csv, verdict::requests_csv(&aggs, secs))?;
    let runs = cli.results_dir.join("runs.csv");
    let new = !runs.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&runs)?;
    if new {
        f.write_all(verdict::RUNS_CSV_HEADER.as_bytes())?;
    }
    writeln!(
        f,
        "{},{},{users},{},{secs:.0},{},{:.2},{:.1},{:.3},{},{}",
        started_at.to_rfc3339(),
        kind.name(),
        wait_label(wait),
        observed.requests,
        observed.rps,
        observed.p95_ms,
        observed.error_pct,
        observed
            .cache_hit_pct
            .map_or_else(String::new, |p| format!("{p:.1}")),
        if pass { "pass" } else { "fail" },
    )?;

    println!("{cache_note}");
    println!(
        "reports: {}.{{html,json,csv}}, history: {}",
        base.display(),
        runs.display()
    );
    println!("{}", verdict::summary_line(kind.name(), &checks));
    Ok(pass)
}

fn preset_rate_label(rate: f64) -> String {
    if rate >= 1000.0 {
        "once".into()
    } else {
        format!("{rate}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_read_as_human_zero_or_a_range() {
        assert_eq!(parse_wait("human"), Ok((5, 15)));
        assert_eq!(parse_wait("0"), Ok((0, 0)));
        assert_eq!(parse_wait("1-3"), Ok((1, 3)));
        assert!(parse_wait("3-1").is_err());
        assert!(parse_wait("fast").is_err());
    }

    #[test]
    fn run_times_read_as_goose_writes_them() {
        assert_eq!(seconds("90"), Some(90));
        assert_eq!(seconds("5m"), Some(300));
        assert_eq!(seconds("1h30m"), Some(5400));
        assert_eq!(seconds("2m10"), Some(130));
        assert_eq!(seconds("5x"), None);
    }

    #[test]
    fn goose_options_follow_ours_on_one_command_line() {
        let cli = Cli::try_parse_from([
            "loadtest",
            "steady",
            "--wait",
            "0",
            "-H",
            "http://h:1",
            "-u",
            "7",
            "-t",
            "30s",
        ])
        .unwrap();
        assert_eq!(cli.scenario, Kind::Steady);
        assert_eq!(cli.wait, Some((0, 0)));
        assert_eq!(cli.goose.host.as_deref(), Some("http://h:1"));
        assert_eq!(cli.goose.users, Some(7));
        assert_eq!(cli.goose.run_time.as_deref(), Some("30s"));
    }
}
