//! What the DbActor costs: `SELECT 1` through the actor vs. straight from
//! the same bb8 pool, under concurrent load, in one process.
//!
//! Run against the local stack: `eval "$(./dev env)" && cargo bench -p actors --bench db_actor`
//! Knobs: BENCH_SECS (per round, default 5), BENCH_ROUNDS (default 3),
//! BENCH_CONCURRENCY (default 64), BENCH_WORKERS (load threads, default 2).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test says where it failed

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::db::ops::Ping;
use actors::db::{DbConfig, DbHandle, DbShared};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Copy, PartialEq)]
enum Path {
    Direct,
    Actor,
}

/// Runs `concurrency` loops spread over the load arbiters for `secs`; returns ops/s.
async fn round(
    shared: &Arc<DbShared>,
    arbiters: &[actix::Arbiter],
    path: Path,
    concurrency: u64,
    secs: u64,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let per = (concurrency as usize).div_ceil(arbiters.len());
    for arbiter in arbiters {
        let (shared, done, errors, stop) =
            (shared.clone(), done.clone(), errors.clone(), stop.clone());
        arbiter.spawn(async move {
            // One actor per load thread, as the server runs one per HTTP worker.
            let handle = DbHandle::start(shared.clone());
            for _ in 0..per {
                let (shared, handle, done, errors, stop) = (
                    shared.clone(),
                    handle.clone(),
                    done.clone(),
                    errors.clone(),
                    stop.clone(),
                );
                actix::spawn(async move {
                    let one: i32 = 1;
                    while !stop.load(Ordering::Relaxed) {
                        let ok = match path {
                            Path::Actor => handle.run(Ping).await.is_ok(),
                            // The statement Ping runs, prepared once per
                            // connection on both sides.
                            Path::Direct => match shared.primary_pool().get().await {
                                Ok(c) => c.query("SELECT $1::int4", &[&one]).await.is_ok(),
                                Err(_) => false,
                            },
                        };
                        let counter = if ok { &done } else { &errors };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
    }
    // Warm-up second, then measure.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let start_count = done.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let ops = done.load(Ordering::Relaxed) - start_count;
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let errs = errors.load(Ordering::Relaxed);
    if errs > 0 {
        eprintln!("  ({errs} errors)");
    }
    ops as f64 / elapsed
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL: run `eval \"$(./dev env)\"` first (./dev stack starts PostgreSQL)");
    let secs = env_or("BENCH_SECS", 5);
    let rounds = env_or("BENCH_ROUNDS", 3);
    let concurrency = env_or("BENCH_CONCURRENCY", 64);
    let workers = env_or("BENCH_WORKERS", 2) as usize;
    let pool_size = env_or("BENCH_POOL", 16) as u32;

    actix::System::new().block_on(async move {
        let shared = DbShared::start(&DbConfig {
            url,
            replica_url: None,
            pool_max_size: pool_size,
            pool_min_idle: pool_size,
            connection_timeout: Duration::from_secs(5),
            queue_timeout: Duration::from_secs(5),
            query_timeout: Duration::from_secs(5),
            test_on_checkout: false,
            mailbox_capacity: 100_000,
            probe_interval: Duration::from_millis(250),
            probe_timeout: Duration::from_millis(500),
            replica_max_lag: Duration::from_millis(500),
        })
        .expect("pool");
        let arbiters: Vec<_> = (0..workers).map(|_| actix::Arbiter::new()).collect();
        println!(
            "db_actor bench: SELECT 1, concurrency {concurrency}, {workers} load threads, pool {pool_size}, {rounds}x{secs}s rounds"
        );
        let (mut direct, mut actor) = (Vec::new(), Vec::new());
        for i in 0..rounds {
            // Alternate the order so drift on a shared box hits both paths alike.
            let (d, a) = if i % 2 == 0 {
                let d = round(&shared, &arbiters, Path::Direct, concurrency, secs).await;
                (d, round(&shared, &arbiters, Path::Actor, concurrency, secs).await)
            } else {
                let a = round(&shared, &arbiters, Path::Actor, concurrency, secs).await;
                (round(&shared, &arbiters, Path::Direct, concurrency, secs).await, a)
            };
            println!("  round {}: direct {d:>9.0} ops/s   actor {a:>9.0} ops/s", i + 1);
            direct.push(d);
            actor.push(a);
        }
        let (d, a) = (median(direct), median(actor));
        println!(
            "median: direct {d:.0} ops/s, actor {a:.0} ops/s, actor/direct = {:.3} (target >= 0.95)",
            a / d
        );
        for arbiter in arbiters {
            arbiter.stop();
        }
        actix::System::current().stop();
    });
}
