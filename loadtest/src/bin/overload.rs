//! Overload and idle-socket load with latencies by status (issue 12 items 4, 5).
//!
//! ```text
//! overload db   --url URL --conns N --secs S [--path food|xp]   closed loop, N keep-alive connections
//! overload idle --url URL --sockets N --secs S                  N idle sockets (reopened when closed),
//!                                                               while health probes and real requests run
//! ```
//!
//! `db` sends `POST /api/v1/users/benchK/food` (a write; `--path xp` a read)
//! on N connections, each sending its next request after the last answer,
//! and reports goodput (2xx/s), 503s/s and p50/p99 of each separately: wrk
//! mixes the latencies of served and shed requests.
//!
//! `idle` keeps N sockets open that never send a request (each reconnects
//! when the server closes it), and meanwhile sends a health probe on a new
//! connection and a `GET xp` on a kept-alive one every 100 ms; it reports how
//! many of those were answered 200 and how fast.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;

#[derive(Debug, Parser)]
#[command(
    name = "overload",
    about = "Overload and idle-socket load, latencies by status"
)]
struct Cli {
    #[arg(long, default_value = "http://127.0.0.1:18310")]
    url: String,
    #[arg(
        long,
        env = "API_KEY",
        default_value = "bench-key",
        hide_env_values = true
    )]
    api_key: String,
    /// Requests go to PREFIX1..PREFIXN at random.
    #[arg(long, default_value_t = 1000)]
    users: u64,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    Db {
        #[arg(long)]
        conns: usize,
        #[arg(long, default_value_t = 15.0)]
        secs: f64,
        /// food (POST, a write) or xp (GET, a read).
        #[arg(long, default_value = "food")]
        path: String,
        /// After a 503, wait the `Retry-After` it gives before the next
        /// request (as a well-behaved client does) instead of resending.
        #[arg(long)]
        honour_retry_after: bool,
    },
    Idle {
        #[arg(long)]
        sockets: usize,
        #[arg(long, default_value_t = 20.0)]
        secs: f64,
        /// Also probe health here (the server's `api.probe_port`).
        #[arg(long)]
        probe_url: Option<String>,
    },
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: &str) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Fails only for an API key or address that cannot be sent in a header.
fn request(
    cli: &Cli,
    addr: &str,
    path: &str,
    n: u64,
) -> Result<hyper::Request<Full<Bytes>>, hyper::http::Error> {
    let user = 1 + n % cli.users;
    let b = hyper::Request::builder()
        .header("host", addr)
        .header("x-api-key", &cli.api_key);
    match path {
        "xp" => b
            .method("GET")
            .uri(format!("/api/v1/users/bench{user}/xp"))
            .body(Full::new(Bytes::new())),
        _ => b
            .method("POST")
            .uri(format!("/api/v1/users/bench{user}/food"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(
                br#"{"description":"1 medium banana"}"#,
            ))),
    }
}

/// Latencies in microseconds by outcome.
#[derive(Default)]
struct Tally {
    ok: Vec<u64>,
    shed: Vec<u64>,
    other: u64,
    failed: u64,
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

async fn db(
    cli: Arc<Cli>,
    conns: usize,
    secs: f64,
    path: String,
    honour_retry_after: bool,
) -> anyhow::Result<()> {
    let addr = cli.url.trim_start_matches("http://").to_owned();
    // Once here, so the load loop need not tell a bad key from a failure.
    request(&cli, &addr, &path, 0).map_err(|e| anyhow::anyhow!("API key or URL unusable: {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(rand_seed()));
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (cli, addr, stop, counter, path) = (
            Arc::clone(&cli),
            addr.clone(),
            Arc::clone(&stop),
            Arc::clone(&counter),
            path.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut t = Tally::default();
            let mut sender: Option<Sender> = None;
            while !stop.load(Ordering::Relaxed) {
                let s = match sender.as_mut() {
                    Some(s) => s,
                    None => match connect(&addr).await {
                        Ok(s) => sender.insert(s),
                        Err(_) => {
                            t.failed += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                };
                let n = counter.fetch_add(7919, Ordering::Relaxed);
                let started = Instant::now();
                let Ok(req) = request(&cli, &addr, &path, n) else {
                    t.failed += 1;
                    continue;
                };
                let res = s.send_request(req).await;
                match res {
                    Ok(res) => {
                        let status = res.status().as_u16();
                        let retry_after = res
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                        let body = res.into_body().collect().await;
                        let us = started.elapsed().as_micros() as u64;
                        if body.is_err() {
                            t.failed += 1;
                            sender = None;
                        } else if (200..300).contains(&status) {
                            t.ok.push(us);
                        } else if status == 503 {
                            t.shed.push(us);
                            if let (true, Some(secs)) = (honour_retry_after, retry_after) {
                                tokio::time::sleep(Duration::from_secs(secs)).await;
                            }
                        } else {
                            t.other += 1;
                        }
                    }
                    Err(_) => {
                        t.failed += 1;
                        sender = None;
                    }
                }
            }
            t
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Tally::default();
    for task in tasks {
        let t = task.await?;
        all.ok.extend(t.ok);
        all.shed.extend(t.shed);
        all.other += t.other;
        all.failed += t.failed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.ok.sort_unstable();
    all.shed.sort_unstable();
    println!(
        "RESULT conns={conns} secs={elapsed:.1} goodput_per_s={:.0} shed_per_s={:.0} ok_p50_ms={:.1} ok_p99_ms={:.1} shed_p50_ms={:.1} shed_p99_ms={:.1} other={} failed={}",
        all.ok.len() as f64 / elapsed,
        all.shed.len() as f64 / elapsed,
        pct(&all.ok, 0.5),
        pct(&all.ok, 0.99),
        pct(&all.shed, 0.5),
        pct(&all.shed, 0.99),
        all.other,
        all.failed,
    );
    Ok(())
}

async fn idle(
    cli: Arc<Cli>,
    sockets: usize,
    secs: f64,
    probe_url: Option<String>,
) -> anyhow::Result<()> {
    let addr = cli.url.trim_start_matches("http://").to_owned();
    // A client already connected, as a balancer's pooled connection is.
    let mut kept = Some(connect(&addr).await?);
    let stop = Arc::new(AtomicBool::new(false));
    let open = Arc::new(AtomicU64::new(0));
    let connect_errors = Arc::new(AtomicU64::new(0));
    for _ in 0..sockets {
        let (addr, stop, open, errors) = (
            addr.clone(),
            Arc::clone(&stop),
            Arc::clone(&open),
            Arc::clone(&connect_errors),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match tokio::net::TcpStream::connect(&addr).await {
                    Ok(mut s) => {
                        open.fetch_add(1, Ordering::Relaxed);
                        let mut buf = [0u8; 512];
                        // Held until the server closes it (or the run ends).
                        loop {
                            tokio::select! {
                                r = s.read(&mut buf) => if matches!(r, Ok(0) | Err(_)) { break },
                                _ = tokio::time::sleep(Duration::from_millis(500)) => {
                                    if stop.load(Ordering::Relaxed) { break }
                                }
                            }
                        }
                        open.fetch_sub(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }
    // Let the sockets pile up before measuring.
    let ramp = Instant::now();
    while open.load(Ordering::Relaxed) < sockets as u64 * 9 / 10
        && ramp.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "idle sockets open after {:.1}s: {}",
        ramp.elapsed().as_secs_f64(),
        open.load(Ordering::Relaxed)
    );

    // Health on a fresh connection every 100 ms, as a balancer probes, on
    // the API port and (when given) the probe port; each probe on its own,
    // so a slow one does not delay the next.
    let started = Instant::now();
    let probers: Vec<_> = std::iter::once(("health", addr.clone()))
        .chain(probe_url.iter().map(|u| {
            (
                "health (probe port)",
                u.trim_start_matches("http://").to_owned(),
            )
        }))
        .map(|(name, addr)| {
            tokio::spawn(async move {
                let mut probes = Vec::new();
                while started.elapsed().as_secs_f64() < secs {
                    let addr = addr.clone();
                    probes.push(tokio::spawn(async move {
                        let t0 = Instant::now();
                        let probe = tokio::time::timeout(Duration::from_secs(10), async {
                            let mut s = connect(&addr).await?;
                            let req = hyper::Request::get("/api/health")
                                .header("host", &addr)
                                .body(Full::new(Bytes::new()))?;
                            let res = s.send_request(req).await?;
                            let status = res.status().as_u16();
                            res.into_body().collect().await?;
                            anyhow::Ok(status)
                        })
                        .await;
                        (probe.ok().and_then(Result::ok), t0)
                    }));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let mut tally = Tally::default();
                for p in probes {
                    if let Ok((status, t0)) = p.await {
                        record(&mut tally, status, t0);
                    }
                }
                (name, tally)
            })
        })
        .collect();
    // A real request every 100 ms on the kept-alive connection (reconnecting
    // only if the server closed it).
    let mut real = Tally::default();
    let mut n = 0u64;
    let mut open_min = u64::MAX;
    while started.elapsed().as_secs_f64() < secs {
        open_min = open_min.min(open.load(Ordering::Relaxed));
        let t0 = Instant::now();
        n += 1;
        let res = tokio::time::timeout(Duration::from_secs(10), async {
            let s = match &mut kept {
                Some(s) => s,
                none => none.insert(connect(&addr).await?),
            };
            let res = s.send_request(request(&cli, &addr, "xp", n)?).await?;
            let status = res.status().as_u16();
            res.into_body().collect().await?;
            anyhow::Ok(status)
        })
        .await;
        if !matches!(res, Ok(Ok(_))) {
            kept = None;
        }
        record(&mut real, res.ok().and_then(Result::ok), t0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut tallies = Vec::new();
    for p in probers {
        tallies.push(p.await?);
    }
    stop.store(true, Ordering::Relaxed);
    tallies.push(("real (kept alive)", real));
    for (name, t) in &mut tallies {
        t.ok.sort_unstable();
        let total = t.ok.len() as u64 + t.other + t.failed;
        println!(
            "RESULT {name}: {}/{} answered 200 ({:.1} %), p50_ms={:.1} p99_ms={:.1} max_ms={:.1}, other_status={} no_answer={}",
            t.ok.len(),
            total,
            100.0 * t.ok.len() as f64 / total.max(1) as f64,
            pct(&t.ok, 0.5),
            pct(&t.ok, 0.99),
            pct(&t.ok, 1.0),
            t.other,
            t.failed
        );
    }
    println!(
        "RESULT idle sockets: {sockets} wanted, at least {open_min} open during the run, {} connect errors",
        connect_errors.load(Ordering::Relaxed)
    );
    Ok(())
}

fn record(t: &mut Tally, status: Option<u16>, t0: Instant) {
    match status {
        Some(200) => t.ok.push(t0.elapsed().as_micros() as u64),
        Some(_) => t.other += 1,
        None => t.failed += 1,
    }
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.subsec_nanos() as u64)
}

fn main() -> anyhow::Result<()> {
    let cli = Arc::new(Cli::parse());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match &cli.mode {
            Mode::Db {
                conns,
                secs,
                path,
                honour_retry_after,
            } => {
                db(
                    Arc::clone(&cli),
                    *conns,
                    *secs,
                    path.clone(),
                    *honour_retry_after,
                )
                .await
            }
            Mode::Idle {
                sockets,
                secs,
                probe_url,
            } => idle(Arc::clone(&cli), *sockets, *secs, probe_url.clone()).await,
        }
    })
}
