//! Pass criteria, the cache hit rate over the measured part of a run, and
//! the CSV reports.

use std::fmt::Write as _;

use goose::metrics::{GooseRequestMetricAggregate, GooseRequestMetricTimingData};
use serde_json::Value;

/// What a scenario must meet. `None` = not judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Criteria {
    pub max_p95_ms: f64,
    pub max_error_pct: f64,
    pub min_cache_hit_pct: Option<f64>,
    pub min_rps: Option<f64>,
}

/// The cache counters of `/api/v1/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CacheCounters {
    pub enabled: bool,
    pub hits: u64,
    pub total_reads: u64,
    /// `.cache.hit_rate_percent`: since the server started.
    pub since_start_pct: f64,
}

impl CacheCounters {
    pub fn from_metrics(v: &Value) -> Option<Self> {
        let c = v.get("cache")?;
        Some(Self {
            enabled: c.get("enabled")?.as_bool()?,
            hits: c.get("hits")?.as_u64()?,
            total_reads: c.get("total_reads")?.as_u64()?,
            since_start_pct: c.get("hit_rate_percent")?.as_f64()?,
        })
    }

    /// The hit rate of the reads between `earlier` and `self`; `None`
    /// without reads (or when the server restarted in between).
    pub fn rate_since(&self, earlier: &CacheCounters) -> Option<f64> {
        let reads = self.total_reads.checked_sub(earlier.total_reads)?;
        let hits = self.hits.checked_sub(earlier.hits)?;
        (reads > 0).then(|| hits as f64 * 100.0 / reads as f64)
    }
}

/// What was measured.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Observed {
    pub requests: usize,
    pub p95_ms: f64,
    pub error_pct: f64,
    pub rps: f64,
    /// Over the measured part of the run; `None` if unknown.
    pub cache_hit_pct: Option<f64>,
}

/// One judged criterion, for the summary line.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub what: &'static str,
    pub observed: String,
    pub limit: String,
    pub passed: bool,
}

pub fn judge(c: &Criteria, o: &Observed) -> Vec<Check> {
    let mut checks = vec![
        Check {
            what: "requests",
            observed: o.requests.to_string(),
            limit: "> 0".into(),
            passed: o.requests > 0,
        },
        Check {
            what: "p95",
            observed: format!("{:.0} ms", o.p95_ms),
            limit: format!("< {:.0} ms", c.max_p95_ms),
            passed: o.requests > 0 && o.p95_ms < c.max_p95_ms,
        },
        Check {
            what: "errors",
            observed: format!("{:.2} %", o.error_pct),
            limit: format!("< {} %", c.max_error_pct),
            passed: o.requests > 0 && o.error_pct < c.max_error_pct,
        },
    ];
    if let Some(min) = c.min_rps {
        checks.push(Check {
            what: "throughput",
            observed: format!("{:.1} req/s", o.rps),
            limit: format!(">= {min} req/s"),
            passed: o.rps >= min,
        });
    }
    if let Some(min) = c.min_cache_hit_pct {
        checks.push(Check {
            what: "cache hit",
            observed: o
                .cache_hit_pct
                .map_or_else(|| "unknown".into(), |p| format!("{p:.1} %")),
            limit: format!("> {min} %"),
            passed: o.cache_hit_pct.is_some_and(|p| p > min),
        });
    }
    checks
}

/// `RESULT steady: PASS  p95 812 ms (< 3000 ms)  ...`
pub fn summary_line(scenario: &str, checks: &[Check]) -> String {
    let pass = checks.iter().all(|c| c.passed);
    let mut line = format!("RESULT {scenario}: {}", if pass { "PASS" } else { "FAIL" });
    for c in checks.iter().filter(|c| c.what != "requests" || !c.passed) {
        let mark = if c.passed { "" } else { " ✗" };
        let _ = write!(line, "  {} {} ({}){mark}", c.what, c.observed, c.limit);
    }
    line
}

/// All requests' times together.
pub fn merged(aggs: &[&GooseRequestMetricAggregate]) -> GooseRequestMetricTimingData {
    let mut all = GooseRequestMetricTimingData::default();
    for a in aggs {
        let d = &a.raw_data;
        if d.counter == 0 {
            continue;
        }
        for (&bucket, &count) in d.times_us.iter() {
            let had = all.times_us.get(&bucket).copied().unwrap_or(0);
            all.times_us.insert(bucket, had + count);
        }
        if all.counter == 0 || d.minimum_time_us < all.minimum_time_us {
            all.minimum_time_us = d.minimum_time_us;
        }
        all.maximum_time_us = all.maximum_time_us.max(d.maximum_time_us);
        all.total_time_us += d.total_time_us;
        all.counter += d.counter;
    }
    all
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// One CSV row per request name, then `All`.
pub fn requests_csv(aggs: &[(&String, &GooseRequestMetricAggregate)], seconds: f64) -> String {
    let mut out = String::from(
        "request,requests,failures,error_pct,req_per_s,avg_ms,p50_ms,p95_ms,p99_ms,max_ms\n",
    );
    let row = |out: &mut String, name: &str, d: &GooseRequestMetricTimingData, fails: usize| {
        let n = d.counter.max(1) as f64;
        let _ = writeln!(
            out,
            "\"{}\",{},{},{:.2},{:.2},{:.1},{:.1},{:.1},{:.1},{:.1}",
            name.replace('"', "'"),
            d.counter,
            fails,
            fails as f64 * 100.0 / n,
            d.counter as f64 / seconds.max(1.0),
            ms(d.total_time_us) / n,
            ms(d.percentile_us(0.50)),
            ms(d.percentile_us(0.95)),
            ms(d.percentile_us(0.99)),
            ms(d.maximum_time_us),
        );
    };
    let mut fails_total = 0;
    for (name, a) in aggs {
        row(&mut out, name, &a.raw_data, a.fail_count);
        fails_total += a.fail_count;
    }
    let only: Vec<_> = aggs.iter().map(|(_, a)| *a).collect();
    row(&mut out, "All", &merged(&only), fails_total);
    out
}

pub const RUNS_CSV_HEADER: &str = "started_at,scenario,users,wait,seconds,requests,req_per_s,p95_ms,error_pct,cache_hit_pct,verdict\n";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn steady() -> Criteria {
        Criteria {
            max_p95_ms: 3000.0,
            max_error_pct: 1.0,
            min_cache_hit_pct: Some(60.0),
            min_rps: None,
        }
    }

    fn good() -> Observed {
        Observed {
            requests: 1000,
            p95_ms: 900.0,
            error_pct: 0.2,
            rps: 50.0,
            cache_hit_pct: Some(75.0),
        }
    }

    #[test]
    fn a_run_inside_every_limit_passes() {
        let checks = judge(&steady(), &good());
        assert!(checks.iter().all(|c| c.passed), "{checks:?}");
        let line = summary_line("steady", &checks);
        assert!(line.starts_with("RESULT steady: PASS"), "{line}");
        assert!(line.contains("p95 900 ms (< 3000 ms)"), "{line}");
    }

    #[test]
    fn each_limit_fails_the_run_on_its_own_and_is_marked() {
        type Spoil = fn(&mut Observed);
        let cases: [(&str, Spoil); 4] = [
            ("p95", |o| o.p95_ms = 3000.0),
            ("errors", |o| o.error_pct = 1.0),
            ("cache hit", |o| o.cache_hit_pct = Some(60.0)),
            ("cache hit", |o| o.cache_hit_pct = None),
        ];
        for (what, spoil) in cases {
            let mut o = good();
            spoil(&mut o);
            let checks = judge(&steady(), &o);
            let failed: Vec<_> = checks.iter().filter(|c| !c.passed).collect();
            assert_eq!(failed.len(), 1, "{what}: {checks:?}");
            assert_eq!(failed[0].what, what);
            let line = summary_line("steady", &checks);
            assert!(line.starts_with("RESULT steady: FAIL"), "{line}");
            assert!(line.contains(" ✗"), "{line}");
        }
    }

    #[test]
    fn a_run_without_requests_fails_and_throughput_is_judged_when_asked() {
        let checks = judge(&steady(), &Observed::default());
        assert!(checks.iter().any(|c| c.what == "requests" && !c.passed));
        let smoke = Criteria {
            min_rps: Some(100.0),
            min_cache_hit_pct: None,
            ..steady()
        };
        let checks = judge(&smoke, &good());
        let rps = checks.iter().find(|c| c.what == "throughput").unwrap();
        assert!(!rps.passed);
        assert!(!checks.iter().any(|c| c.what == "cache hit"));
    }

    #[test]
    fn the_hit_rate_is_that_of_the_reads_between_two_snapshots() {
        let m = |hits, reads| {
            CacheCounters::from_metrics(&json!({"cache": {
                "enabled": true, "hits": hits, "total_reads": reads, "hit_rate_percent": 1.0}}))
            .unwrap()
        };
        assert_eq!(m(45, 100).rate_since(&m(10, 50)), Some(70.0));
        assert_eq!(m(10, 50).rate_since(&m(10, 50)), None);
        // A restarted server's counters went down.
        assert_eq!(m(1, 2).rate_since(&m(10, 50)), None);
        assert!(CacheCounters::from_metrics(&json!({"cache": {}})).is_none());
    }
}
