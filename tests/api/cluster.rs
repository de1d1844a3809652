//! The production shape, brought up by `./dev cluster up 3` on free ports
//! (or `HA_TEST_CLUSTER_PORT`, the first of 6): three instances of this
//! build behind nginx, with a real streaming replica of the test PostgreSQL.
//! It checks, through nginx: requests are spread; read-your-writes with the
//! replica's replay paused half of the time; reads leave a paused or stopped
//! replica within about a second (counted) and come back; a rolling restart
//! under load fails no request; a SIGKILL fails only writes in flight on
//! that instance, and every acknowledged write is stored.
//!
//! Needs nginx (`./dev` installs it with apt as root; CI's `.ci/run` does):
//! without it the test fails saying so.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::KEY;

struct Cluster {
    dir: PathBuf,
    env: Vec<(String, String)>,
    url: String,
    instances: Vec<String>,
    client: reqwest::Client,
}

fn port_of(url: &str, default: u16) -> u16 {
    url.rsplit_once('@')
        .map_or(url, |(_, t)| t)
        .trim_start_matches("redis://")
        .split(['/', '?'])
        .next()
        .and_then(|hp| hp.rsplit_once(':'))
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(default)
}

/// The first of `n` consecutive ports free on 127.0.0.1.
fn free_ports(n: u16) -> u16 {
    if let Some(base) = std::env::var("HA_TEST_CLUSTER_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
    {
        return base;
    }
    let seed = std::process::id() as u16;
    for attempt in 0..200u16 {
        let base = 20_000 + (seed.wrapping_mul(7).wrapping_add(attempt * 97)) % 30_000;
        let listeners: Vec<_> = (base..base + n)
            .map_while(|p| std::net::TcpListener::bind(("127.0.0.1", p)).ok())
            .collect();
        if listeners.len() == n as usize {
            return base;
        }
    }
    panic!("no {n} consecutive free ports found");
}

impl Cluster {
    fn repo() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    fn dev(&self, args: &[&str]) -> String {
        let out = Command::new(Self::repo().join("dev"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("run ./dev");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "./dev {} failed ({}).\nIf nginx is missing: apt-get install nginx (CI's .ci/run does).\nstdout:\n{stdout}\nstderr:\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// `./dev` on a blocking thread, so the load keeps running meanwhile.
    async fn dev_async(&self, args: &[&str]) -> String {
        // No url: this copy does not tear the cluster down when dropped.
        let me = Cluster {
            dir: self.dir.clone(),
            env: self.env.clone(),
            url: String::new(),
            instances: Vec::new(),
            client: self.client.clone(),
        };
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        actix_web::rt::task::spawn_blocking(move || {
            me.dev(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .await
        .expect("./dev thread")
    }

    async fn pause_replay(&self, pause: bool) {
        let what = if pause { "pause" } else { "resume" };
        self.dev_async(&["cluster", "replica", what]).await;
    }

    fn up() -> Self {
        let base = free_ports(6);
        let db_url = actors::testing::admin_url();
        let redis = std::env::var("REDIS_URL").unwrap_or_default();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cluster-{base}"));
        let _ = std::fs::remove_dir_all(&dir);
        let env: Vec<(String, String)> = [
            ("HA_PG_PORT", port_of(&db_url, 5439).to_string()),
            ("HA_REDIS_PORT", port_of(&redis, 6389).to_string()),
            ("HA_NGINX_PORT", base.to_string()),
            ("HA_NGINX_TLS_PORT", (base + 1).to_string()),
            ("HA_REPLICA_PORT", (base + 2).to_string()),
            ("HA_INSTANCE_PORT", (base + 3).to_string()),
            ("HA_CLUSTER_DIR", dir.display().to_string()),
            ("HA_BIN", env!("CARGO_BIN_EXE_health-agent").to_owned()),
            // ./dev test drops ha_test_* databases left behind.
            (
                "HA_DB_NAME",
                format!("ha_test_cluster_{}", uuid::Uuid::new_v4().simple()),
            ),
            ("API_KEYS", KEY.to_owned()),
            (
                "HEALTH_AGENT__CACHE__NAMESPACE",
                format!("c{}", uuid::Uuid::new_v4().simple()),
            ),
            ("HEALTH_AGENT__API__WORKERS", "1".to_owned()),
            ("HEALTH_AGENT__DATABASE__POOL_MAX_SIZE", "4".to_owned()),
            ("LOG_LEVEL", "info".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let me = Cluster {
            dir,
            env,
            url: format!("http://127.0.0.1:{base}"),
            instances: (0..3)
                .map(|i| format!("http://127.0.0.1:{}", base + 3 + i))
                .collect(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        };
        // Torn down by Drop even if `up` fails half-way.
        me.dev(&["cluster", "up", "3"]);
        me
    }

    fn pid(&self, instance: usize) -> i32 {
        std::fs::read_to_string(self.dir.join(format!("instances/{instance}/pid")))
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid")
    }

    async fn replica(&self, instance: &str) -> Value {
        let res = self
            .client
            .get(format!("{instance}/api/v1/metrics"))
            .header("X-API-Key", KEY)
            .send()
            .await
            .expect("metrics");
        let body: Value = res.json().await.expect("metrics JSON");
        body["database"]["replica"].clone()
    }

    /// Waits until every instance reports `usable == want`; returns how long.
    async fn until_usable(&self, want: bool, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let mut all = true;
            for i in &self.instances {
                all &= self.replica(i).await["usable"] == want;
            }
            if all {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "replica usable != {want} after {within:?}: {}",
                self.replica(&self.instances[0]).await
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn fallback_reads(&self) -> u64 {
        let mut n = 0;
        for i in &self.instances {
            n += self.replica(i).await["fallback_reads"].as_u64().unwrap();
        }
        n
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.url))
            .header("X-API-Key", KEY)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.url.is_empty() {
            return;
        }
        let _ = Command::new(Self::repo().join("dev"))
            .args(["cluster", "down"])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output();
        // Kept after a failure: the logs of nginx and each instance are there.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("cluster logs kept in {}", self.dir.display());
        }
    }
}

#[derive(Default, Debug)]
struct Seen {
    ok: u64,
    failed_reads: Vec<String>,
    failed_writes: Vec<String>,
    /// user → descriptions of the food entries acknowledged with a 201.
    acked: HashMap<String, Vec<String>>,
}

/// Clients looping POST food, GET food, GET profile through nginx until
/// `stop`, nothing retried.
async fn load(cluster: Rc<Cluster>, clients: usize, stop: Rc<AtomicBool>) -> Seen {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (cluster, stop) = (Rc::clone(&cluster), Rc::clone(&stop));
            let user = format!("load{}{c}", &run[..8]);
            actix_web::rt::spawn(async move {
                let mut seen = Seen::default();
                let res = cluster
                    .req(reqwest::Method::POST, "/api/v1/users")
                    .json(&json!({ "user_id": user }))
                    .send()
                    .await
                    .expect("create user");
                assert_eq!(res.status(), 201);
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let desc = format!("pear {n}");
                    let w = cluster
                        .req(reqwest::Method::POST, &format!("/api/v1/users/{user}/food"))
                        .json(&json!({"description": desc, "calories": 50}))
                        .send()
                        .await;
                    match w {
                        Ok(r) if r.status() == 201 => {
                            seen.ok += 1;
                            seen.acked.entry(user.clone()).or_default().push(desc);
                        }
                        Ok(r) => seen.failed_writes.push(format!("POST {}", r.status())),
                        Err(e) => seen.failed_writes.push(format!("POST {e}")),
                    }
                    for path in ["food", "profile"] {
                        let r = cluster
                            .req(
                                reqwest::Method::GET,
                                &format!("/api/v1/users/{user}/{path}"),
                            )
                            .send()
                            .await;
                        match r {
                            Ok(r) if r.status() == 200 => seen.ok += 1,
                            Ok(r) => seen.failed_reads.push(format!("GET {path} {}", r.status())),
                            Err(e) => seen.failed_reads.push(format!("GET {path} {e}")),
                        }
                    }
                }
                seen
            })
        })
        .collect();
    let mut all = Seen::default();
    for t in tasks {
        let s = t.await.expect("client");
        all.ok += s.ok;
        all.failed_reads.extend(s.failed_reads);
        all.failed_writes.extend(s.failed_writes);
        all.acked.extend(s.acked);
    }
    all
}

/// Every acknowledged write is stored, once.
async fn assert_stored(cluster: &Cluster, seen: &Seen) {
    for (user, descs) in &seen.acked {
        let res = cluster
            .req(reqwest::Method::GET, &format!("/api/v1/users/{user}/food"))
            .send()
            .await
            .expect("read back");
        let body: Value = res.json().await.unwrap();
        let stored: Vec<&str> = body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["description"].as_str().unwrap())
            .collect();
        let unique: HashSet<&str> = stored.iter().copied().collect();
        assert_eq!(unique.len(), stored.len(), "duplicated entries for {user}");
        for d in descs {
            assert!(
                unique.contains(d.as_str()),
                "acknowledged {d} of {user} lost"
            );
        }
    }
}

#[actix_web::test]
async fn the_production_shape_reads_its_writes_and_restarts_without_failing_requests() {
    let started = Instant::now();
    let cluster = Rc::new(Cluster::up());
    let c = &*cluster;
    eprintln!("cluster up after {:?}", started.elapsed());

    // Spread over the instances; nginx names the one that answered.
    let mut answered = HashSet::new();
    for _ in 0..30 {
        let res = c
            .req(reqwest::Method::GET, "/api/health")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        answered.insert(res.headers()["x-instance"].to_str().unwrap().to_owned());
    }
    assert_eq!(answered.len(), 3, "answered by {answered:?}");
    // TLS with the certificate the command made.
    let tls = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let tls_port: u16 = c.url.rsplit(':').next().unwrap().parse::<u16>().unwrap() + 1;
    let res = tls
        .get(format!("https://127.0.0.1:{tls_port}/readyz"))
        .send()
        .await
        .expect("TLS through nginx");
    assert_eq!(res.status(), 200);
    // X-Request-ID passes through; metrics are behind basic auth.
    let res = c
        .req(reqwest::Method::GET, "/api/health")
        .header("X-Request-ID", "cluster-rid-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "cluster-rid-1");
    let res = c
        .req(reqwest::Method::GET, "/api/v1/metrics")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        401,
        "metrics must need the balancer's password"
    );
    c.until_usable(true, Duration::from_secs(5)).await;

    // Read-your-writes, replay paused half of the time. Reloads after a
    // write read the primary, so the written value is what gets cached.
    // Writes rotate over 40 users: one user's writes 10 ms apart would race
    // the cache's own re-check 250 ms after each write (issue 12 item 6,
    // not the replica's doing).
    let users: Vec<String> = (0..40).map(|k| format!("ryw{k}")).collect();
    for user in &users {
        let res = c
            .req(reqwest::Method::POST, "/api/v1/users")
            .json(&json!({ "user_id": user }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let mut written: HashMap<&str, usize> = HashMap::new();
    for i in 0..400 {
        if i % 50 == 0 {
            c.pause_replay(i % 100 == 0).await;
        }
        let user = users[i % users.len()].as_str();
        let res = c
            .req(reqwest::Method::POST, &format!("/api/v1/users/{user}/food"))
            .json(&json!({"description": format!("plum {i}"), "calories": 30}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        *written.entry(user).or_default() += 1;
        let day: Value = c
            .req(reqwest::Method::GET, &format!("/api/v1/users/{user}/food"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            day["entries"].as_array().unwrap().len(),
            written[user],
            "write {i} not read back"
        );
        if i % 10 == 0 {
            let r: Value = c
                .req(
                    reqwest::Method::POST,
                    &format!("/api/v1/users/{user}/reminders"),
                )
                .json(&json!({"type": "daily", "message": format!("r{i}"), "daily_time": "08:00"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let list: Value = c
                .req(
                    reqwest::Method::GET,
                    &format!("/api/v1/users/{user}/reminders"),
                )
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(
                list["reminders"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x["id"] == r["id"]),
                "reminder {i} not read back"
            );
        }
    }
    let user = users[0].as_str();

    eprintln!("read-your-writes done after {:?}", started.elapsed());
    // Replay paused: reads leave the replica within about a second, counted.
    c.pause_replay(true).await;
    // Something for the replica to miss.
    c.req(reqwest::Method::POST, &format!("/api/v1/users/{user}/food"))
        .json(&json!({"description": "fig", "calories": 30}))
        .send()
        .await
        .unwrap();
    let took = c.until_usable(false, Duration::from_secs(3)).await;
    eprintln!("replay paused: reads left the replica after {took:?}");
    let before = c.fallback_reads().await;
    for d in 1..=6 {
        // An uncached day: read by the loader, from the primary now.
        let res = c
            .req(
                reqwest::Method::GET,
                &format!("/api/v1/users/{user}/food?date=2020-01-0{d}"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    assert!(
        c.fallback_reads().await > before,
        "fallback reads not counted"
    );
    c.pause_replay(false).await;
    c.until_usable(true, Duration::from_secs(3)).await;

    // Replica stopped: the same, and back when it returns.
    cluster.dev_async(&["cluster", "replica", "stop"]).await;
    let took = c.until_usable(false, Duration::from_secs(3)).await;
    eprintln!("replica stopped: reads left it after {took:?}");
    for i in &c.instances {
        assert_eq!(c.replica(i).await["reachable"], false);
    }
    let res = c
        .req(
            reqwest::Method::GET,
            &format!("/api/v1/users/{user}/food?date=2020-02-01"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "reads are served by the primary");
    cluster.dev_async(&["cluster", "replica", "start"]).await;
    c.until_usable(true, Duration::from_secs(10)).await;

    eprintln!("replica checks done after {:?}", started.elapsed());
    // Rolling restart under load: no client sees a failure.
    let stop = Rc::new(AtomicBool::new(false));
    let clients = actix_web::rt::spawn(load(Rc::clone(&cluster), 6, Rc::clone(&stop)));
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    let out = cluster.dev_async(&["cluster", "restart"]).await;
    eprintln!("{out}");
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = clients.await.unwrap();
    eprintln!(
        "rolling restart: {} ok, {} failed reads, {} failed writes",
        seen.ok,
        seen.failed_reads.len(),
        seen.failed_writes.len()
    );
    assert!(seen.ok > 100, "too little load to judge: {}", seen.ok);
    assert!(
        seen.failed_reads.is_empty() && seen.failed_writes.is_empty(),
        "a rolling restart failed requests: {:?} {:?}",
        seen.failed_reads,
        seen.failed_writes
    );
    assert_stored(c, &seen).await;

    eprintln!("rolling restart done after {:?}", started.elapsed());
    // SIGKILL one instance mid-load: reads are retried by nginx elsewhere;
    // only writes in flight on it may fail; acknowledged writes are stored.
    let stop = Rc::new(AtomicBool::new(false));
    let clients = actix_web::rt::spawn(load(Rc::clone(&cluster), 6, Rc::clone(&stop)));
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    let pid = c.pid(2);
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    assert!(killed.unwrap().success());
    actix_web::rt::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = clients.await.unwrap();
    eprintln!(
        "SIGKILL: {} ok, {} failed reads, failed writes {:?}",
        seen.ok,
        seen.failed_reads.len(),
        seen.failed_writes
    );
    assert!(
        seen.failed_reads.is_empty(),
        "reads must be retried elsewhere: {:?}",
        seen.failed_reads
    );
    assert!(
        seen.failed_writes.len() <= 6,
        "more writes failed than were in flight: {:?}",
        seen.failed_writes
    );
    assert_stored(c, &seen).await;
}
