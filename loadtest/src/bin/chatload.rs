//! Chat load with exact latencies, for the capacity benchmarks (d) and (e).
//!
//! ```text
//! chatload seed  --url URL --users N [--user-prefix P]        create users (409 is fine)
//! chatload rate  --url URL --rps R --secs S --latency-ms L     open loop at R chats/s
//! chatload sweep --url URL --from A --step B --to C --latency-ms L [--limit-ms 5]
//! chatload burst --url URL --n 10000 --latency-ms L            N connections, then N chats at once
//! chatload closed --url URL --conns C --secs S                  C clients, each chatting back to back
//! ```
//!
//! `closed` is the overload run: goodput (200s a second) and how fast the
//! refusals (503) come, with C set to a multiple of the server's capacity.
//!
//! `rate` sends on a clock, not after answers (open loop), so a slow server
//! cannot slow the offered load down. Overhead = end-to-end − the mock's fixed
//! latency. `sweep` raises the rate until the overhead p95 passes the limit
//! (or a chat fails), then bisects, and reports the highest passing rate.
//! `burst` opens every connection first, so the figures are of the chats, not
//! of a SYN queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::sync::Mutex;

#[derive(Debug, Parser)]
#[command(
    name = "chatload",
    about = "Chat load with exact latencies (capacity benchmarks d and e)"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Args, Clone)]
struct Common {
    /// The server.
    #[arg(long, default_value = "http://127.0.0.1:8100")]
    url: String,
    #[arg(
        long,
        env = "API_KEY",
        default_value = "dev-local-key",
        hide_env_values = true
    )]
    api_key: String,
    /// Chats go round-robin to PREFIX1..PREFIXN.
    #[arg(long, default_value_t = 1000)]
    users: usize,
    #[arg(long, default_value = "bench")]
    user_prefix: String,
    /// The mock's fixed latency, subtracted to get the overhead.
    #[arg(long, default_value_t = 0.0)]
    latency_ms: f64,
    /// One model call, no tool, no new memory.
    #[arg(long, default_value = "How am I doing today?")]
    message: String,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Create the users chats go to (409 = already there).
    Seed {
        #[command(flatten)]
        c: Common,
    },
    /// Chats at a fixed rate.
    Rate {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        rps: f64,
        #[arg(long, default_value_t = 10.0)]
        secs: f64,
        /// Chats sent in the first seconds are not counted.
        #[arg(long, default_value_t = 2.0)]
        warmup_secs: f64,
    },
    /// The highest rate whose overhead p95 stays within --limit-ms, without errors.
    Sweep {
        #[command(flatten)]
        c: Common,
        #[arg(long, default_value_t = 250.0)]
        from: f64,
        #[arg(long, default_value_t = 250.0)]
        step: f64,
        #[arg(long, default_value_t = 5000.0)]
        to: f64,
        #[arg(long, default_value_t = 10.0)]
        secs: f64,
        #[arg(long, default_value_t = 2.0)]
        warmup_secs: f64,
        #[arg(long, default_value_t = 5.0)]
        limit_ms: f64,
        /// Bisections between the last passing and the first failing rate.
        #[arg(long, default_value_t = 2)]
        refine: u32,
    },
    /// N connections opened first, then one chat on each, all at once.
    Burst {
        #[command(flatten)]
        c: Common,
        #[arg(long, default_value_t = 10_000)]
        n: usize,
        /// Connections opened at a time while preparing.
        #[arg(long, default_value_t = 256)]
        connect_concurrency: usize,
    },
    /// C clients, each sending its next chat when the last one answered.
    Closed {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        conns: usize,
        #[arg(long, default_value_t = 20.0)]
        secs: f64,
        /// Answers in the first seconds are not counted.
        #[arg(long, default_value_t = 3.0)]
        warmup_secs: f64,
        /// A refused client waits as the 503's Retry-After says (else 50 ms).
        #[arg(long)]
        honour_retry_after: bool,
    },
}

/// Latencies in microseconds and failures of one run.
#[derive(Debug, Default)]
struct Tally {
    micros: Vec<u64>,
    failures: Vec<String>,
    max_lag_us: u64,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

struct Figures {
    n: usize,
    failures: usize,
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

impl Tally {
    fn figures(&mut self) -> Figures {
        self.micros.sort_unstable();
        let m = &self.micros;
        Figures {
            n: m.len() + self.failures.len(),
            failures: self.failures.len(),
            p50: percentile(m, 0.50),
            p95: percentile(m, 0.95),
            p99: percentile(m, 0.99),
            max: m.last().map_or(0.0, |&x| x as f64 / 1000.0),
        }
    }

    fn failure_kinds(&self) -> String {
        let mut kinds: std::collections::BTreeMap<&str, usize> = Default::default();
        for f in &self.failures {
            *kinds.entry(f.as_str()).or_default() += 1;
        }
        kinds
            .iter()
            .map(|(k, n)| format!("{k}×{n}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn chat_body(c: &Common, i: usize) -> String {
    json!({"user_id": format!("{}{}", c.user_prefix, i % c.users.max(1) + 1), "message": c.message})
        .to_string()
}

fn client(c: &Common) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-api-key", c.api_key.parse()?);
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(60))
        .build()?)
}

async fn seed(c: &Common) -> anyhow::Result<()> {
    let http = client(c)?;
    let url = format!("{}/api/v1/users", c.url);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(1));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (http, url, next, c) = (http.clone(), url.clone(), next.clone(), c.clone());
        tasks.push(tokio::spawn(async move {
            let mut bad = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i > c.users {
                    return bad;
                }
                let body = json!({"user_id": format!("{}{i}", c.user_prefix),
                                  "profile": {"timezone": "Europe/Paris"}});
                // A server shedding load (503) is asked again, as Retry-After says.
                let mut ok = false;
                for _ in 0..20 {
                    match http.post(&url).json(&body).send().await {
                        Ok(r) if r.status().is_success() || r.status() == 409 => {
                            ok = true;
                            break;
                        }
                        Ok(r) if r.status() == 503 => {
                            tokio::time::sleep(Duration::from_millis(200)).await
                        }
                        _ => break,
                    }
                }
                if !ok {
                    bad += 1;
                }
            }
        }));
    }
    let mut bad = 0;
    for t in tasks {
        bad += t.await?;
    }
    println!(
        "seeded {} users {}1..{} ({bad} failed)",
        c.users, c.user_prefix, c.users
    );
    anyhow::ensure!(bad == 0, "{bad} users could not be created");
    Ok(())
}

/// Open loop: chat i is due at start + i / rps.
async fn rate(c: &Common, rps: f64, secs: f64, warmup: f64) -> anyhow::Result<Tally> {
    let http = client(c)?;
    let url = format!("{}/api/v1/chat", c.url);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let total = ((secs + warmup) * rps).round() as usize;
    let counted_from = (warmup * rps).round() as usize;
    let start = Instant::now();
    let mut handles = Vec::with_capacity(total);
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rps);
        tokio::time::sleep_until(due.into()).await;
        let lag = Instant::now().saturating_duration_since(due).as_micros() as u64;
        let (http, url, tally) = (http.clone(), url.clone(), tally.clone());
        let body = chat_body(c, i);
        handles.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let res = http
                .post(&url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            let outcome = match res {
                Ok(r) if r.status().is_success() => {
                    r.bytes().await.map(|_| ()).map_err(|e| e.to_string())
                }
                Ok(r) => Err(r.status().as_u16().to_string()),
                Err(e) if e.is_timeout() => Err("timeout".into()),
                Err(e) if e.is_connect() => Err("connect".into()),
                Err(_) => Err("io".into()),
            };
            let us = t0.elapsed().as_micros() as u64;
            if i >= counted_from {
                let mut t = tally.lock().await;
                t.max_lag_us = t.max_lag_us.max(lag);
                match outcome {
                    Ok(()) => t.micros.push(us),
                    Err(e) => t.failures.push(e),
                }
            }
        }));
    }
    for h in handles {
        h.await?;
    }
    let mut t = tally.lock().await;
    Ok(std::mem::take(&mut *t))
}

fn report(mode: &str, extra: &str, c: &Common, t: &mut Tally) -> Figures {
    let f = t.figures();
    let l = c.latency_ms;
    println!(
        "RESULT mode={mode}{extra} chats={} failures={} e2e_p50_ms={:.1} e2e_p95_ms={:.1} e2e_p99_ms={:.1} e2e_max_ms={:.1} overhead_p50_ms={:.2} overhead_p95_ms={:.2} overhead_p99_ms={:.2} max_send_lag_ms={:.1}{}",
        f.n,
        f.failures,
        f.p50,
        f.p95,
        f.p99,
        f.max,
        f.p50 - l,
        f.p95 - l,
        f.p99 - l,
        t.max_lag_us as f64 / 1000.0,
        if f.failures > 0 { format!(" failure_kinds={}", t.failure_kinds()) } else { String::new() },
    );
    f
}

async fn sweep(
    c: &Common,
    (from, step, to): (f64, f64, f64),
    secs: f64,
    warmup: f64,
    limit_ms: f64,
    refine: u32,
) -> anyhow::Result<()> {
    let passes = |f: &Figures| f.failures == 0 && f.n > 0 && f.p95 - c.latency_ms <= limit_ms;
    let mut best: Option<f64> = None;
    let mut first_fail: Option<f64> = None;
    let mut r = from;
    while r <= to {
        let mut t = rate(c, r, secs, warmup).await?;
        let f = report("rate", &format!(" rps={r:.0}"), c, &mut t);
        if passes(&f) {
            best = Some(r);
            r += step;
            // Let the previous rate's stragglers and writes settle.
            tokio::time::sleep(Duration::from_secs(2)).await;
        } else {
            first_fail = Some(r);
            break;
        }
    }
    if let (Some(mut lo), Some(mut hi)) = (best, first_fail) {
        for _ in 0..refine {
            let mid = ((lo + hi) / 2.0).round();
            if mid <= lo || mid >= hi {
                break;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            let mut t = rate(c, mid, secs, warmup).await?;
            let f = report("rate", &format!(" rps={mid:.0}"), c, &mut t);
            if passes(&f) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        best = Some(lo);
        first_fail = Some(hi);
    }
    println!(
        "SWEEP limit overhead_p95 <= {limit_ms} ms, no failures: highest passing rate {} chats/s; first failing {}",
        best.map_or_else(|| "none".into(), |b| format!("{b:.0}")),
        first_fail.map_or_else(|| format!("none up to {to:.0}"), |f| format!("{f:.0}")),
    );
    Ok(())
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// A connection that has already served one request: actix closes a
/// connection whose first request is late (`client_request_timeout`, 5 s),
/// and opening thousands takes longer than that.
async fn connect(addr: &str) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let probe = hyper::Request::get("/livez")
        .header("host", addr)
        .body(Full::new(Bytes::new()))?;
    let res = sender.send_request(probe).await?;
    res.into_body().collect().await?;
    Ok(sender)
}

async fn burst(c: &Common, n: usize, concurrency: usize) -> anyhow::Result<()> {
    let authority = c
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    // Open every connection first.
    let t_open = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut opening = Vec::with_capacity(n);
    for _ in 0..n {
        let (sem, addr) = (sem.clone(), authority.clone());
        opening.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await?;
            connect(&addr).await
        }));
    }
    let mut senders = Vec::with_capacity(n);
    for o in opening {
        senders.push(o.await??);
    }
    println!(
        "opened {n} connections in {:.1} s",
        t_open.elapsed().as_secs_f64()
    );

    let start = Arc::new(tokio::sync::Barrier::new(n + 1));
    let mut handles = Vec::with_capacity(n);
    for (i, mut s) in senders.into_iter().enumerate() {
        let req = hyper::Request::post(format!("{}/api/v1/chat", c.url))
            .header("host", &authority)
            .header("content-type", "application/json")
            .header("x-api-key", &c.api_key)
            .body(Full::new(Bytes::from(chat_body(c, i))))?;
        let start = start.clone();
        handles.push(tokio::spawn(async move {
            start.wait().await;
            let t0 = Instant::now();
            let out = match s.send_request(req).await {
                Ok(res) if res.status().is_success() => res
                    .into_body()
                    .collect()
                    .await
                    .map(|_| ())
                    .map_err(|_| "body".to_string()),
                Ok(res) => {
                    let status = res.status().as_u16();
                    let body = res.into_body().collect().await.map(|b| b.to_bytes());
                    let detail = body.map(|b| {
                        String::from_utf8_lossy(&b)
                            .chars()
                            .take(200)
                            .collect::<String>()
                    });
                    Err(format!("{status} {}", detail.unwrap_or_default()))
                }
                Err(e) => Err(format!("io {e}")),
            };
            (t0.elapsed().as_micros() as u64, out)
        }));
    }
    start.wait().await;
    let t_all = Instant::now();
    let mut tally = Tally::default();
    for h in handles {
        let (us, out) = h.await?;
        match out {
            Ok(()) => tally.micros.push(us),
            Err(e) => tally.failures.push(e),
        }
    }
    let wall = t_all.elapsed().as_secs_f64();
    // One example answer per failure kind, then the kinds by status alone.
    let mut seen = std::collections::BTreeMap::new();
    for f in &tally.failures {
        let kind = f.split(' ').next().unwrap_or("").to_owned();
        seen.entry(kind).or_insert_with(|| f.clone());
    }
    for example in seen.values() {
        println!("failure example: {example}");
    }
    for f in tally.failures.iter_mut() {
        *f = f.split(' ').next().unwrap_or("").to_owned();
    }
    report(
        "burst",
        &format!(" n={n} wall_s={wall:.2} chats_per_s={:.0}", n as f64 / wall),
        c,
        &mut tally,
    );
    Ok(())
}

/// Closed loop: every client chats back to back until the time is up.
async fn closed(
    c: &Common,
    conns: usize,
    secs: f64,
    warmup: f64,
    honour_retry_after: bool,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .default_headers({
            let mut h = reqwest::header::HeaderMap::new();
            h.insert("x-api-key", c.api_key.parse()?);
            h
        })
        .pool_max_idle_per_host(conns)
        .timeout(Duration::from_secs(60))
        .build()?;
    let url = format!("{}/api/v1/chat", c.url);
    let start = Instant::now();
    let (from, until) = (
        start + Duration::from_secs_f64(warmup),
        start + Duration::from_secs_f64(warmup + secs),
    );
    let mut handles = Vec::with_capacity(conns);
    for w in 0..conns {
        let (http, url, c) = (http.clone(), url.clone(), c.clone());
        handles.push(tokio::spawn(async move {
            // (ok µs, 503 µs, other failures, every 200 including the warm-up)
            let mut out = (Vec::new(), Vec::new(), Vec::new(), 0usize);
            let mut i = w;
            while Instant::now() < until {
                let t0 = Instant::now();
                let res = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(chat_body(&c, i))
                    .send()
                    .await;
                i += conns;
                let mut retry_after = Duration::ZERO;
                let status = match res {
                    Ok(r) => {
                        let s = r.status().as_u16();
                        if honour_retry_after {
                            retry_after = r
                                .headers()
                                .get("retry-after")
                                .and_then(|v| v.to_str().ok()?.parse().ok())
                                .map_or(Duration::ZERO, Duration::from_secs);
                        }
                        let _ = r.bytes().await;
                        Ok(s)
                    }
                    Err(e) if e.is_timeout() => Err("timeout".to_owned()),
                    Err(e) if e.is_connect() => Err("connect".to_owned()),
                    Err(_) => Err("io".to_owned()),
                };
                let done = Instant::now();
                let us = (done - t0).as_micros() as u64;
                if status == Ok(200) {
                    out.3 += 1;
                }
                if t0 < from || done > until {
                    continue;
                }
                match status {
                    Ok(200) => out.0.push(us),
                    Ok(503) => {
                        out.1.push(us);
                        // At least a short pause, so a refused client keeps
                        // the pressure on without spinning.
                        tokio::time::sleep(retry_after.max(Duration::from_millis(50))).await;
                    }
                    Ok(s) => out.2.push(s.to_string()),
                    Err(e) => out.2.push(e),
                }
            }
            out
        }));
    }
    let (mut ok, mut refused, mut failed) = (Vec::new(), Vec::new(), Tally::default());
    let mut ok_total = 0;
    for h in handles {
        let (o, r, f, all) = h.await?;
        ok.extend(o);
        refused.extend(r);
        failed.failures.extend(f);
        ok_total += all;
    }
    ok.sort_unstable();
    refused.sort_unstable();
    println!(
        "RESULT mode=closed conns={conns} secs={secs} ok_total={ok_total} ok={} goodput_per_s={:.1} ok_p50_ms={:.1} ok_p99_ms={:.1} refused_503={} refused_p50_ms={:.1} refused_p99_ms={:.1} other_failures={}{}",
        ok.len(),
        ok.len() as f64 / secs,
        percentile(&ok, 0.50),
        percentile(&ok, 0.99),
        refused.len(),
        percentile(&refused, 0.50),
        percentile(&refused, 0.99),
        failed.failures.len(),
        if failed.failures.is_empty() { String::new() } else { format!(" failure_kinds={}", failed.failure_kinds()) },
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Two threads: enough to offer the load, and it leaves the cores to the server.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        match cli.mode {
            Mode::Seed { c } => seed(&c).await,
            Mode::Rate {
                c,
                rps,
                secs,
                warmup_secs,
            } => {
                let mut t = rate(&c, rps, secs, warmup_secs).await?;
                report("rate", &format!(" rps={rps:.0}"), &c, &mut t);
                Ok(())
            }
            Mode::Sweep {
                c,
                from,
                step,
                to,
                secs,
                warmup_secs,
                limit_ms,
                refine,
            } => sweep(&c, (from, step, to), secs, warmup_secs, limit_ms, refine).await,
            Mode::Burst {
                c,
                n,
                connect_concurrency,
            } => burst(&c, n, connect_concurrency).await,
            Mode::Closed {
                c,
                conns,
                secs,
                warmup_secs,
                honour_retry_after,
            } => closed(&c, conns, secs, warmup_secs, honour_retry_after).await,
        }
    })
}
