//! `health-agent monitor`: polls `/api/v1/metrics` of a running instance and
//! prints one table row per interval, marking the deployment guide's
//! thresholds (CPU > 80 %, memory > 85 %, pool > 80 %, cache hit < 30 % after
//! warm-up, p95 > 3 s). The guide's `monitor.py --host … --interval 5`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

#[derive(Debug, Clone, clap::Args)]
pub struct MonitorOptions {
    /// The instance to watch.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub host: String,
    /// Seconds between samples.
    #[arg(long, default_value_t = 5.0)]
    pub interval: f64,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Also append every sample to this CSV file.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Sent as X-API-Key.
    #[arg(long, env = "API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Seconds before a low cache hit rate counts (a cold cache misses).
    #[arg(long, default_value_t = 60.0)]
    pub warmup: f64,
    /// Exit 1 when any sample crossed a threshold.
    #[arg(long)]
    pub fail_on_alert: bool,
}

/// The guide's alert thresholds.
pub const CPU_PERCENT: f64 = 80.0;
pub const MEMORY_PERCENT: f64 = 85.0;
pub const POOL_PERCENT: f64 = 80.0;
pub const CACHE_HIT_PERCENT: f64 = 30.0;
pub const P95_MS: f64 = 3000.0;

/// The figures of one `/api/v1/metrics` answer that the table shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    pub cpu_percent: f64,
    pub memory_mb: f64,
    pub memory_percent: f64,
    pub pool_percent: f64,
    pub cache_hits: u64,
    pub cache_reads: u64,
    pub cache_hit_rate_percent: f64,
    pub requests: u64,
    pub errors: u64,
    pub p95_ms: f64,
    /// (actor, mailbox depth), in the answer's order.
    pub mailboxes: Vec<(String, u64)>,
}

impl Reading {
    pub fn parse(v: &Value) -> Result<Self, String> {
        let num = |path: &[&str]| -> Result<f64, String> {
            path.iter()
                .try_fold(v, |v, k| v.get(k))
                .and_then(Value::as_f64)
                .ok_or_else(|| format!("no number at .{}", path.join(".")))
        };
        let count = |path: &[&str]| num(path).map(|x| x.max(0.0) as u64);
        let mailboxes = v
            .get("actors")
            .and_then(Value::as_object)
            .map(|actors| {
                actors
                    .iter()
                    .map(|(name, a)| {
                        let depth = a.get("mailbox_depth").and_then(Value::as_u64).unwrap_or(0);
                        (name.clone(), depth)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            cpu_percent: num(&["system", "cpu_percent"])?,
            memory_mb: num(&["system", "memory_mb"])?,
            memory_percent: num(&["system", "memory_percent"])?,
            pool_percent: num(&["database", "pool_utilization_percent"])?,
            cache_hits: count(&["cache", "hits"])?,
            cache_reads: count(&["cache", "total_reads"])?,
            cache_hit_rate_percent: num(&["cache", "hit_rate_percent"])?,
            requests: count(&["requests", "total"])?,
            errors: count(&["requests", "errors"])?,
            p95_ms: num(&["requests", "p95_ms"])?,
            mailboxes,
        })
    }
}

/// A row: a reading and what changed since the previous one.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub elapsed_s: f64,
    pub reading: Reading,
    /// Hit rate of the cache reads since the previous sample (`None`: no reads,
    /// or no previous sample).
    pub cache_hit_percent: Option<f64>,
    pub requests_per_s: Option<f64>,
    pub new_errors: u64,
}

impl Sample {
    pub fn new(elapsed_s: f64, reading: Reading, previous: Option<(f64, &Reading)>) -> Self {
        let mut s = Sample {
            elapsed_s,
            cache_hit_percent: None,
            requests_per_s: None,
            new_errors: 0,
            reading,
        };
        // Counters that went down mean the server restarted: no deltas then.
        if let Some((t0, p)) = previous {
            let r = &s.reading;
            if r.requests >= p.requests && r.cache_reads >= p.cache_reads {
                let reads = r.cache_reads - p.cache_reads;
                let hits = r.cache_hits.saturating_sub(p.cache_hits);
                s.cache_hit_percent = (reads > 0).then(|| hits as f64 * 100.0 / reads as f64);
                let dt = elapsed_s - t0;
                s.requests_per_s = (dt > 0.0).then(|| (r.requests - p.requests) as f64 / dt);
                s.new_errors = r.errors.saturating_sub(p.errors);
            }
        }
        s
    }
}

/// A threshold a sample crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alert {
    Cpu,
    Memory,
    Pool,
    CacheHit,
    P95,
}

impl Alert {
    pub const ALL: [Alert; 5] = [
        Alert::Cpu,
        Alert::Memory,
        Alert::Pool,
        Alert::CacheHit,
        Alert::P95,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Alert::Cpu => "CPU>80%",
            Alert::Memory => "MEM>85%",
            Alert::Pool => "POOL>80%",
            Alert::CacheHit => "CACHE<30%",
            Alert::P95 => "P95>3s",
        }
    }
}

/// The thresholds `s` crossed; a low hit rate counts only after `warmup_s`.
pub fn alerts(s: &Sample, warmup_s: f64) -> Vec<Alert> {
    let r = &s.reading;
    let mut out = Vec::new();
    if r.cpu_percent > CPU_PERCENT {
        out.push(Alert::Cpu);
    }
    if r.memory_percent > MEMORY_PERCENT {
        out.push(Alert::Memory);
    }
    if r.pool_percent > POOL_PERCENT {
        out.push(Alert::Pool);
    }
    if s.elapsed_s >= warmup_s && s.cache_hit_percent.is_some_and(|p| p < CACHE_HIT_PERCENT) {
        out.push(Alert::CacheHit);
    }
    if r.p95_ms > P95_MS {
        out.push(Alert::P95);
    }
    out
}

/// The header line for these actors.
pub fn header(actors: &[String]) -> String {
    let mut h = format!(
        "{:>8} {:>7} {:>8} {:>6} {:>7} {:>7} {:>8} {:>8} {:>6}",
        "time", "cpu%", "mem_MB", "mem%", "pool%", "cache%", "req/s", "p95_ms", "err+"
    );
    for a in actors {
        let _ = write!(h, " {:>9}", format!("q:{a}"));
    }
    h.push_str("  alerts");
    h
}

fn cell(value: String, alert: bool) -> String {
    if alert {
        format!("{value}!")
    } else {
        value
    }
}

/// One table row; a value past its threshold ends in `!` and the alerts are
/// named at the end, so the marker never rests on colour alone.
pub fn row(s: &Sample, alerts: &[Alert], actors: &[String]) -> String {
    let r = &s.reading;
    let has = |a: Alert| alerts.contains(&a);
    let opt =
        |v: Option<f64>, digits: usize| v.map_or_else(|| "-".into(), |x| format!("{x:.digits$}"));
    let mut line = format!(
        "{:>8} {:>7} {:>8} {:>6} {:>7} {:>7} {:>8} {:>8} {:>6}",
        clock(s.elapsed_s),
        cell(format!("{:.1}", r.cpu_percent), has(Alert::Cpu)),
        format!("{:.1}", r.memory_mb),
        cell(format!("{:.1}", r.memory_percent), has(Alert::Memory)),
        cell(format!("{:.1}", r.pool_percent), has(Alert::Pool)),
        cell(opt(s.cache_hit_percent, 1), has(Alert::CacheHit)),
        opt(s.requests_per_s, 1),
        cell(format!("{:.1}", r.p95_ms), has(Alert::P95)),
        s.new_errors,
    );
    for a in actors {
        let depth = r
            .mailboxes
            .iter()
            .find(|(name, _)| name == a)
            .map_or_else(|| "-".into(), |(_, d)| d.to_string());
        let _ = write!(line, " {depth:>9}");
    }
    if alerts.is_empty() {
        line.push_str("  ok");
    } else {
        line.push_str("  ");
        let names: Vec<_> = alerts.iter().map(|a| a.label()).collect();
        line.push_str(&names.join(" "));
    }
    line
}

fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

pub fn csv_header(actors: &[String]) -> String {
    let mut h = String::from(
        "timestamp,elapsed_s,cpu_percent,memory_mb,memory_percent,pool_utilization_percent,\
         cache_hit_percent,cache_hit_rate_percent_since_start,requests_per_s,p95_ms,\
         errors_total,errors_new",
    );
    for a in actors {
        let _ = write!(h, ",mailbox_depth_{a}");
    }
    h.push_str(",alerts");
    h
}

pub fn csv_row(timestamp: &str, s: &Sample, alerts: &[Alert], actors: &[String]) -> String {
    let r = &s.reading;
    let opt = |v: Option<f64>| v.map_or_else(String::new, |x| format!("{x:.2}"));
    let mut line = format!(
        "{timestamp},{:.1},{},{},{},{},{},{},{},{},{},{}",
        s.elapsed_s,
        r.cpu_percent,
        r.memory_mb,
        r.memory_percent,
        r.pool_percent,
        opt(s.cache_hit_percent),
        r.cache_hit_rate_percent,
        opt(s.requests_per_s),
        r.p95_ms,
        r.errors,
        s.new_errors,
    );
    for a in actors {
        let depth = r
            .mailboxes
            .iter()
            .find(|(n, _)| n == a)
            .map_or(0, |(_, d)| *d);
        let _ = write!(line, ",{depth}");
    }
    let names: Vec<_> = alerts.iter().map(|a| a.label()).collect();
    let _ = write!(line, ",{}", names.join(" "));
    line
}

/// What a whole session saw, printed at the end.
#[derive(Debug, Default)]
struct Tally {
    samples: u64,
    failed_polls: u64,
    with_alerts: u64,
    by_alert: [u64; 5],
    max_cpu: f64,
    max_memory_mb: f64,
    max_pool: f64,
    max_p95: f64,
}

impl Tally {
    fn add(&mut self, s: &Sample, alerts: &[Alert]) {
        self.samples += 1;
        if !alerts.is_empty() {
            self.with_alerts += 1;
        }
        for (i, a) in Alert::ALL.iter().enumerate() {
            if alerts.contains(a) {
                self.by_alert[i] += 1;
            }
        }
        let r = &s.reading;
        self.max_cpu = self.max_cpu.max(r.cpu_percent);
        self.max_memory_mb = self.max_memory_mb.max(r.memory_mb);
        self.max_pool = self.max_pool.max(r.pool_percent);
        self.max_p95 = self.max_p95.max(r.p95_ms);
    }

    fn line(&self) -> String {
        let mut l = format!(
            "monitor: {} samples ({} failed polls), {} with alerts; max cpu {:.1} %, memory {:.1} MB, pool {:.1} %, p95 {:.1} ms",
            self.samples, self.failed_polls, self.with_alerts, self.max_cpu, self.max_memory_mb, self.max_pool, self.max_p95
        );
        for (i, a) in Alert::ALL.iter().enumerate() {
            if self.by_alert[i] > 0 {
                let _ = write!(l, "; {} ×{}", a.label(), self.by_alert[i]);
            }
        }
        l
    }
}

enum Poll {
    Reading(Reading),
    /// Worth retrying next interval (down, restarting, slow).
    Failed(String),
}

async fn poll(client: &reqwest::Client, url: &str, key: Option<&str>) -> anyhow::Result<Poll> {
    let mut req = client.get(url).header("Accept", "application/json");
    if let Some(k) = key {
        req = req.header("X-API-Key", k);
    }
    let res = match req.send().await {
        Ok(r) => r,
        Err(e) => return Ok(Poll::Failed(e.to_string())),
    };
    let status = res.status();
    if status == 401 || status == 403 {
        anyhow::bail!("{url} answered {status}: pass the API key with --api-key or API_KEY");
    }
    if !status.is_success() {
        return Ok(Poll::Failed(format!("{url} answered {status}")));
    }
    let v: Value = match res.json().await {
        Ok(v) => v,
        Err(e) => return Ok(Poll::Failed(format!("not JSON: {e}"))),
    };
    Reading::parse(&v)
        .map(Poll::Reading)
        .map_err(|e| anyhow::anyhow!("{url}: unexpected metrics JSON: {e}"))
}

/// Runs until `--duration` or Ctrl-C. Fails on a refused key, bad options
/// or an unwritable CSV; a server that is down shows as rows, not an exit.
pub fn run(opts: MonitorOptions) -> anyhow::Result<()> {
    if !opts.interval.is_finite() || opts.interval <= 0.0 {
        anyhow::bail!("--interval must be above 0, got {}", opts.interval);
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(watch(opts))
}

async fn watch(opts: MonitorOptions) -> anyhow::Result<()> {
    let url = format!("{}/api/v1/metrics", opts.host.trim_end_matches('/'));
    let interval = Duration::from_secs_f64(opts.interval);
    let client = reqwest::Client::builder()
        .timeout(interval.min(Duration::from_secs(10)))
        .build()?;
    let key = opts.api_key.as_deref().filter(|k| !k.is_empty());
    let mut csv = match &opts.csv {
        Some(path) => Some(
            std::fs::File::create(path)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?,
        ),
        None => None,
    };
    println!(
        "monitoring {url} every {}s{}; thresholds: cpu > {CPU_PERCENT} %, memory > {MEMORY_PERCENT} %, pool > {POOL_PERCENT} %, cache hit < {CACHE_HIT_PERCENT} % (after {}s), p95 > {P95_MS} ms",
        opts.interval,
        opts.duration.map(|d| format!(" for {d}s")).unwrap_or_default(),
        opts.warmup,
    );

    let start = Instant::now();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous: Option<(f64, Reading)> = None;
    let mut actors: Option<Vec<String>> = None;
    let mut tally = Tally::default();
    let mut rows_since_header = 0;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut ctrl_c => break,
        }
        let elapsed = start.elapsed().as_secs_f64();
        match poll(&client, &url, key).await? {
            Poll::Failed(why) => {
                tally.failed_polls += 1;
                println!("{:>8} unreachable: {why}", clock(elapsed));
            }
            Poll::Reading(reading) => {
                let names = actors.get_or_insert_with(|| {
                    reading.mailboxes.iter().map(|(n, _)| n.clone()).collect()
                });
                let sample = Sample::new(
                    elapsed,
                    reading.clone(),
                    previous.as_ref().map(|(t, r)| (*t, r)),
                );
                let found = alerts(&sample, opts.warmup);
                if rows_since_header % 20 == 0 {
                    println!("{}", header(names));
                }
                rows_since_header += 1;
                println!("{}", row(&sample, &found, names));
                if let Some(f) = csv.as_mut() {
                    if tally.samples == 0 {
                        writeln!(f, "{}", csv_header(names))?;
                    }
                    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                    writeln!(f, "{}", csv_row(&now, &sample, &found, names))?;
                    f.flush()?;
                }
                tally.add(&sample, &found);
                previous = Some((elapsed, reading));
            }
        }
        if let Some(d) = opts.duration {
            if start.elapsed().as_secs_f64() + opts.interval > d + 0.25 * opts.interval {
                break;
            }
        }
    }
    println!("{}", tally.line());
    if opts.fail_on_alert && tally.with_alerts > 0 {
        anyhow::bail!("{} samples crossed a threshold", tally.with_alerts);
    }
    if tally.samples == 0 {
        anyhow::bail!("no sample could be read from {url}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn metrics(cpu: f64, mem_pct: f64, pool: f64, hits: u64, reads: u64, p95: f64) -> Value {
        json!({
            "system": {"cpu_percent": cpu, "memory_mb": 42.5, "memory_percent": mem_pct,
                       "memory_available_mb": 1000.0, "disk_read_mb": 0.0, "disk_write_mb": 0.0},
            "database": {"pool_utilization_percent": pool},
            "cache": {"hits": hits, "total_reads": reads, "hit_rate_percent": 50.0},
            "actors": {"cache": {"mailbox_depth": 0}, "db": {"mailbox_depth": 7}},
            "requests": {"total": 1000 + reads, "errors": 3, "p95_ms": p95},
        })
    }

    fn sample_after(elapsed: f64, now: Value, before: Value) -> Sample {
        let b = Reading::parse(&before).unwrap();
        Sample::new(
            elapsed,
            Reading::parse(&now).unwrap(),
            Some((elapsed - 5.0, &b)),
        )
    }

    #[test]
    fn a_quiet_instance_raises_nothing() {
        let s = sample_after(
            120.0,
            metrics(20.0, 40.0, 10.0, 180, 200, 120.0),
            metrics(20.0, 40.0, 10.0, 90, 100, 120.0),
        );
        assert_eq!(s.cache_hit_percent, Some(90.0));
        assert_eq!(s.requests_per_s, Some(20.0));
        assert!(alerts(&s, 60.0).is_empty());
    }

    #[test]
    fn each_threshold_is_crossed_only_above_its_limit() {
        let base = metrics(0.0, 0.0, 0.0, 0, 0, 0.0);
        let at = |cpu, mem, pool, p95| {
            alerts(
                &sample_after(120.0, metrics(cpu, mem, pool, 0, 0, p95), base.clone()),
                60.0,
            )
        };
        assert!(
            at(80.0, 85.0, 80.0, 3000.0).is_empty(),
            "limits themselves are fine"
        );
        assert_eq!(at(80.1, 0.0, 0.0, 0.0), vec![Alert::Cpu]);
        assert_eq!(at(0.0, 85.1, 0.0, 0.0), vec![Alert::Memory]);
        assert_eq!(at(0.0, 0.0, 80.1, 0.0), vec![Alert::Pool]);
        assert_eq!(at(0.0, 0.0, 0.0, 3000.5), vec![Alert::P95]);
    }

    #[test]
    fn a_low_hit_rate_counts_only_after_warm_up_and_with_reads() {
        let before = metrics(0.0, 0.0, 0.0, 0, 0, 0.0);
        let low = metrics(0.0, 0.0, 0.0, 10, 100, 0.0);
        assert!(alerts(&sample_after(30.0, low.clone(), before.clone()), 60.0).is_empty());
        assert_eq!(
            alerts(&sample_after(60.0, low, before.clone()), 60.0),
            vec![Alert::CacheHit]
        );
        // No reads in the interval: nothing to judge.
        assert!(alerts(&sample_after(90.0, before.clone(), before), 60.0).is_empty());
    }

    #[test]
    fn a_restarted_server_gives_no_deltas() {
        let s = sample_after(
            10.0,
            metrics(0.0, 0.0, 0.0, 1, 2, 0.0),
            metrics(0.0, 0.0, 0.0, 50, 100, 0.0),
        );
        assert_eq!((s.cache_hit_percent, s.requests_per_s), (None, None));
    }

    #[test]
    fn rows_line_up_with_the_header_and_mark_what_crossed() {
        let s = sample_after(
            3725.0,
            metrics(91.0, 40.0, 10.0, 10, 100, 3500.0),
            metrics(0.0, 0.0, 0.0, 0, 0, 0.0),
        );
        let actors = vec!["cache".to_string(), "db".to_string()];
        let found = alerts(&s, 60.0);
        assert_eq!(found, vec![Alert::Cpu, Alert::CacheHit, Alert::P95]);
        let h = header(&actors);
        let r = row(&s, &found, &actors);
        assert!(r.starts_with("01:02:05"), "{r}");
        assert!(
            r.contains("91.0!") && r.contains("10.0!") && r.contains("3500.0!"),
            "{r}"
        );
        assert!(r.ends_with("CPU>80% CACHE<30% P95>3s"), "{r}");
        // The db mailbox depth sits under its column.
        let col = h.find("q:db").unwrap() + "q:db".len();
        assert_eq!(&r[col - 1..col], "7", "{h}\n{r}");
        let quiet = sample_after(
            10.0,
            metrics(1.0, 1.0, 1.0, 1, 1, 1.0),
            metrics(0.0, 0.0, 0.0, 0, 0, 0.0),
        );
        assert!(row(&quiet, &[], &actors).ends_with("  ok"));
    }

    #[test]
    fn csv_rows_have_as_many_fields_as_the_header() {
        let s = sample_after(
            5.0,
            metrics(91.0, 40.0, 10.0, 10, 100, 3500.0),
            metrics(0.0, 0.0, 0.0, 0, 0, 0.0),
        );
        let actors = vec!["cache".to_string(), "db".to_string()];
        let found = alerts(&s, 0.0);
        let h = csv_header(&actors);
        let r = csv_row("2026-01-01T00:00:00Z", &s, &found, &actors);
        assert_eq!(h.split(',').count(), r.split(',').count(), "{h}\n{r}");
        assert!(r.ends_with(",7,CPU>80% CACHE<30% P95>3s"), "{r}");
    }

    #[test]
    fn a_metrics_answer_without_a_figure_is_refused_by_name() {
        let mut v = metrics(0.0, 0.0, 0.0, 0, 0, 0.0);
        v["database"] = json!({});
        let e = Reading::parse(&v).unwrap_err();
        assert!(e.contains("database.pool_utilization_percent"), "{e}");
    }
}
