//! The chaos suite's load generator, verifier and cases (loadtest/chaos/).
//!
//! ```text
//! chaos load   --url U --secs S --workers W --tag T --out acks.jsonl
//! chaos verify --database-url D acks.jsonl...
//! chaos first-contact --url U --tag T --out acks.jsonl          (issue 12.2)
//! chaos failed-tool   --url U --mock-url M --database-url D --tag T   (12.1)
//! chaos llm-overload  --url U --mock-url M --capacity C --tag T --out F (12.3)
//! ```
//!
//! Every write carries a marker unique to the run (a food description, a
//! chat message, a reminder text). `load` records each attempt with whether
//! it was acknowledged (2xx); `verify` reads PostgreSQL and checks that every
//! acknowledged write exists exactly once, an unacknowledged one at most once,
//! and that nothing is half-written (food without its XP event, a chat
//! without both history rows, XP totals that are not the ledger's sum).
//! Each command prints one JSON summary line and exits 1 on a violation.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Parser)]
#[command(name = "chaos", about = "Chaos suite: mixed load, cases and verifier")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Args, Clone)]
struct Http {
    #[arg(long, default_value = "http://127.0.0.1:18480")]
    url: String,
    #[arg(
        long,
        env = "API_KEY",
        default_value = "dev-local-key",
        hide_env_values = true
    )]
    api_key: String,
    /// Unique per run: every marker and user id starts with it.
    #[arg(long)]
    tag: String,
    /// Attempts are appended here (JSON lines) for `verify`.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Mixed writes (users, food, chats, reminders) for a bounded time.
    Load {
        #[command(flatten)]
        h: Http,
        #[arg(long, default_value_t = 20.0)]
        secs: f64,
        #[arg(long, default_value_t = 12)]
        workers: usize,
    },
    /// Check the recorded attempts and the ledger invariants in PostgreSQL.
    Verify {
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
        files: Vec<std::path::PathBuf>,
    },
    /// Send every `Idempotency-Key` write of the files again (after the
    /// 60 s stale-claim window): each must replay or run once, never twice.
    LateRetry {
        #[command(flatten)]
        h: Http,
        files: Vec<std::path::PathBuf>,
    },
    /// Warm pooled connections with food posts, then first-contact chats: no 404.
    FirstContact {
        #[command(flatten)]
        h: Http,
        #[arg(long, default_value_t = 64)]
        warm: usize,
        #[arg(long, default_value_t = 40)]
        chats: usize,
    },
    /// A model that fails after a tool call stores nothing; the retry stores once.
    FailedTool {
        #[command(flatten)]
        h: Http,
        #[arg(long, default_value = "http://127.0.0.1:18481")]
        mock_url: String,
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
    /// 10x the LLM gate's capacity: completions discarded must stay <= 1 %.
    LlmOverload {
        #[command(flatten)]
        h: Http,
        #[arg(long, default_value = "http://127.0.0.1:18481")]
        mock_url: String,
        /// The server's `actors.llm.mailbox_capacity`.
        #[arg(long, default_value_t = 16)]
        capacity: usize,
        #[arg(long, default_value_t = 10)]
        factor: usize,
        #[arg(long, default_value_t = 400)]
        latency_ms: u64,
        #[arg(long, default_value_t = 6.0)]
        secs: f64,
    },
}

/// One write attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Rec {
    kind: String,
    user: String,
    /// The unique text the write stores (food description, chat message,
    /// reminder message; the user id for users).
    marker: String,
    /// The food a chat's tool should log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    food: Option<String>,
    /// The id the server answered with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    ack: bool,
    /// The final answer's status (0: none).
    #[serde(default)]
    status: u16,
    /// An `Idempotency-Key` write: enough to send it again (`late-retry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry: Option<Resend>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Resend {
    key: String,
    path: String,
    body: Value,
}

#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    ok: AtomicU64,
    unacked: AtomicU64,
    rejected: AtomicU64,
    chat_404: AtomicU64,
    replay_mismatch: AtomicU64,
    recs: Mutex<Vec<Rec>>,
}

impl Tally {
    fn push(&self, r: Rec) {
        if let Ok(mut v) = self.recs.lock() {
            v.push(r);
        }
    }
}

/// Status (0 = no answer) and body.
async fn post(
    c: &reqwest::Client,
    h: &Http,
    path: &str,
    body: &Value,
    key: Option<&str>,
) -> (u16, Value) {
    let mut req = c
        .post(format!("{}{path}", h.url))
        .header("X-API-Key", &h.api_key)
        .json(body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    match req.send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            let v = res.json::<Value>().await.unwrap_or(Value::Null);
            (status, v)
        }
        Err(_) => (0, Value::Null),
    }
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(3))
        .pool_max_idle_per_host(64)
        .build()?)
}

/// xorshift64*: a dependency-free dice for the mix.
struct Dice(u64);
impl Dice {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Sends once, then (with a key) retries the same key on purpose until a
/// definite answer: 2xx (which must replay the first 2xx), 4xx, or 3 tries.
async fn send_write(
    c: &reqwest::Client,
    h: &Http,
    t: &Tally,
    path: &str,
    body: &Value,
    key: Option<&str>,
) -> (u16, Value) {
    t.requests.fetch_add(1, Ordering::Relaxed);
    let (mut status, mut v) = post(c, h, path, body, key).await;
    let Some(k) = key else {
        return (status, v);
    };
    let first_ok = (200..300).contains(&status).then(|| v.clone());
    for _ in 0..3 {
        t.requests.fetch_add(1, Ordering::Relaxed);
        let (s2, v2) = post(c, h, path, body, Some(k)).await;
        if let (Some(first), true) = (&first_ok, (200..300).contains(&s2)) {
            let same = if first.get("id").is_some() {
                first.get("id") == v2.get("id")
            } else {
                first.get("response") == v2.get("response")
            };
            if !same {
                t.replay_mismatch.fetch_add(1, Ordering::Relaxed);
            }
        }
        if first_ok.is_none() {
            (status, v) = (s2, v2);
        }
        // 409: the first attempt's claim is still held; anything else is final.
        if s2 != 409 && s2 != 0 && s2 < 500 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    (status, v)
}

fn record(t: &Tally, status: u16, mut r: Rec, v: &Value) {
    r.ack = (200..300).contains(&status);
    r.status = status;
    if r.ack {
        t.ok.fetch_add(1, Ordering::Relaxed);
        r.id = v
            .get("id")
            .map(|i| i.to_string().trim_matches('"').to_owned());
    } else if (400..500).contains(&status) {
        t.rejected.fetch_add(1, Ordering::Relaxed);
        if r.kind == "chat" && status == 404 {
            t.chat_404.fetch_add(1, Ordering::Relaxed);
        }
    } else {
        t.unacked.fetch_add(1, Ordering::Relaxed);
    }
    t.push(r);
}

async fn worker(c: reqwest::Client, h: Http, t: Arc<Tally>, w: usize, deadline: Instant) {
    let seed = (w as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
    let mut dice = Dice(seed | 1);
    let mut users: Vec<String> = Vec::new();
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        let m = format!("{}-w{w}-{n}", h.tag);
        let roll = dice.next(100);
        let status = if users.is_empty() || roll < 6 {
            let user = format!("{}-u{w}-{n}", h.tag);
            let (s, v) = send_write(
                &c,
                &h,
                &t,
                "/api/v1/users",
                &json!({"user_id": user, "profile": {"name": "chaos"}}),
                None,
            )
            .await;
            let r = Rec {
                kind: "user".into(),
                user: user.clone(),
                marker: user.clone(),
                food: None,
                id: None,
                ack: false,
                status: 0,
                retry: None,
            };
            record(&t, s, r, &v);
            if (200..300).contains(&s) || s == 409 {
                users.push(user);
            }
            s
        } else if roll < 45 {
            let user = users[dice.next(users.len() as u64) as usize].clone();
            let desc = format!("chaosfood-{m} apple");
            let key = (roll % 3 == 0).then(|| format!("k-{m}"));
            let path = format!("/api/v1/users/{user}/food");
            let body = json!({"description": desc, "calories": 95});
            let (s, v) = send_write(&c, &h, &t, &path, &body, key.as_deref()).await;
            let r = Rec {
                retry: key.map(|key| Resend { key, path, body }),
                kind: "food".into(),
                user,
                marker: desc,
                food: None,
                id: None,
                ack: false,
                status: 0,
            };
            record(&t, s, r, &v);
            s
        } else if roll < 80 {
            // A tenth are first contact: the chat creates the user.
            let first = dice.next(10) == 0;
            let user = if first {
                format!("{}-c{w}-{n}", h.tag)
            } else {
                users[dice.next(users.len() as u64) as usize].clone()
            };
            // No digits in what the model logs: the nutrition estimate would
            // read the marker's numbers as a quantity, and an absurd one is
            // (rightly) refused, so the chat would store no food.
            let food = (roll % 2 == 0).then(|| {
                let letters: String = m
                    .chars()
                    .map(|c| match c.to_digit(10) {
                        Some(d) => char::from(b'a' + d as u8),
                        None => c,
                    })
                    .collect();
                format!("chaosmeal-{letters} banana")
            });
            let msg = match &food {
                Some(f) => format!("I had {f}"),
                None => format!("How am I doing today? ({m})"),
            };
            let key = (roll % 3 == 0).then(|| format!("k-{m}"));
            let path = "/api/v1/chat".to_owned();
            let body = json!({"user_id": user, "message": msg});
            let (s, v) = send_write(&c, &h, &t, &path, &body, key.as_deref()).await;
            let r = Rec {
                retry: key.map(|key| Resend { key, path, body }),
                kind: "chat".into(),
                user: user.clone(),
                marker: msg,
                food,
                id: None,
                ack: false,
                status: 0,
            };
            record(&t, s, r, &v);
            if first && (200..300).contains(&s) {
                users.push(user);
            }
            s
        } else {
            let user = users[dice.next(users.len() as u64) as usize].clone();
            let msg = format!("chaosreminder-{m}");
            let key = (roll % 3 == 0).then(|| format!("k-{m}"));
            let path = format!("/api/v1/users/{user}/reminders");
            let body =
                json!({"type": "daily", "message": msg, "daily_time": "03:17", "timezone": "UTC"});
            let (s, v) = send_write(&c, &h, &t, &path, &body, key.as_deref()).await;
            let r = Rec {
                retry: key.map(|key| Resend { key, path, body }),
                kind: "reminder".into(),
                user,
                marker: msg,
                food: None,
                id: None,
                ack: false,
                status: 0,
            };
            record(&t, s, r, &v);
            s
        };
        // Refused or unanswered: back off a little so an outage is not a spin.
        if status == 0 || status >= 500 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn write_recs(out: &Option<std::path::PathBuf>, recs: &[Rec]) -> anyhow::Result<()> {
    let Some(path) = out else { return Ok(()) };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    let mut buf = String::new();
    for r in recs {
        buf.push_str(&serde_json::to_string(r)?);
        buf.push('\n');
    }
    f.write_all(buf.as_bytes())?;
    Ok(())
}

fn summary(t: &Tally, extra: Value) -> Value {
    let recs = t.recs.lock().map(|r| r.clone()).unwrap_or_default();
    let mut by_kind: HashMap<String, (u64, u64)> = HashMap::new();
    for r in &recs {
        let e = by_kind.entry(r.kind.clone()).or_default();
        e.0 += 1;
        e.1 += u64::from(r.ack);
    }
    let mut v = json!({
        "requests": t.requests.load(Ordering::Relaxed),
        "acknowledged": t.ok.load(Ordering::Relaxed),
        "unacknowledged": t.unacked.load(Ordering::Relaxed),
        "rejected_4xx": t.rejected.load(Ordering::Relaxed),
        "chat_404": t.chat_404.load(Ordering::Relaxed),
        "replay_mismatch": t.replay_mismatch.load(Ordering::Relaxed),
        "by_kind": by_kind.iter().map(|(k, (n, a))| (k.clone(), json!({"attempts": n, "acked": a}))).collect::<serde_json::Map<_, _>>(),
    });
    if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
        m.extend(e);
    }
    v
}

async fn load(h: Http, secs: f64, workers: usize) -> anyhow::Result<bool> {
    let c = client()?;
    let t = Arc::new(Tally::default());
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..workers)
        .map(|w| tokio::spawn(worker(c.clone(), h.clone(), t.clone(), w, deadline)))
        .collect();
    for task in tasks {
        task.await?;
    }
    let recs = t.recs.lock().map(|r| r.clone()).unwrap_or_default();
    write_recs(&h.out, &recs)?;
    let bad = t.replay_mismatch.load(Ordering::Relaxed) + t.chat_404.load(Ordering::Relaxed);
    let s = summary(
        &t,
        json!({"mode": "load", "secs": start.elapsed().as_secs_f64(), "pass": bad == 0}),
    );
    println!("{s}");
    Ok(bad == 0)
}

async fn pg(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .context("connect to PostgreSQL")?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// (markers → rows found) for one kind's unique text column.
async fn found(
    db: &tokio_postgres::Client,
    sql: &str,
    markers: Vec<String>,
) -> anyhow::Result<HashMap<String, Vec<(String, String)>>> {
    let mut m: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for row in db.query(sql, &[&markers]).await? {
        let (marker, user, id): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        m.entry(marker).or_default().push((user, id));
    }
    Ok(m)
}

fn read_recs(files: &[std::path::PathBuf]) -> anyhow::Result<Vec<Rec>> {
    let mut recs = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).with_context(|| format!("read {}", f.display()))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            recs.push(serde_json::from_str::<Rec>(line)?);
        }
    }
    Ok(recs)
}

async fn verify(database_url: &str, files: &[std::path::PathBuf]) -> anyhow::Result<bool> {
    let started = Instant::now();
    let recs = read_recs(files)?;
    let db = pg(database_url).await?;
    let of = |kind: &str| -> Vec<String> {
        recs.iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.marker.clone())
            .collect()
    };
    let mut foods = of("food");
    foods.extend(recs.iter().filter_map(|r| r.food.clone()));
    let food = found(
        &db,
        "SELECT description, user_id, id::text FROM food_entries WHERE description = ANY($1)",
        foods,
    )
    .await?;
    let chat = found(
        &db,
        "SELECT content, user_id, id::text FROM conversation_history
          WHERE role = 'user' AND content = ANY($1)",
        of("chat"),
    )
    .await?;
    let reminder = found(
        &db,
        "SELECT message, user_id, id::text FROM reminders WHERE message = ANY($1)",
        of("reminder"),
    )
    .await?;
    let user = found(
        &db,
        "SELECT user_id, user_id, user_id FROM users WHERE user_id = ANY($1)",
        of("user"),
    )
    .await?;

    let (mut lost, mut duplicated, mut wrong, mut acked) = (0u64, 0u64, 0u64, 0u64);
    let mut examples: Vec<String> = Vec::new();
    let note = |what: &str, r: &Rec, ex: &mut Vec<String>| {
        if ex.len() < 10 {
            ex.push(format!("{what}: {} {} ({})", r.kind, r.marker, r.user));
        }
    };
    for r in &recs {
        let table = match r.kind.as_str() {
            "food" => &food,
            "chat" => &chat,
            "reminder" => &reminder,
            _ => &user,
        };
        let rows = table.get(&r.marker).map_or(&[][..], |v| &v[..]);
        acked += u64::from(r.ack);
        if rows.len() > 1 {
            duplicated += 1;
            note("duplicated", r, &mut examples);
        } else if r.ack && rows.is_empty() {
            lost += 1;
            note("lost", r, &mut examples);
        } else if let Some((u, id)) = rows.first() {
            let id_differs = r.ack && r.id.as_ref().is_some_and(|want| want != id);
            if *u != r.user || id_differs {
                wrong += 1;
                note("wrong user or id", r, &mut examples);
            }
        }
        // A chat's logged food: there exactly once iff the chat was stored.
        if let Some(f) = &r.food {
            let n = food.get(f).map_or(0, Vec::len);
            let stored = !rows.is_empty();
            if n > 1 {
                duplicated += 1;
                note("duplicated chat food", r, &mut examples);
            } else if stored != (n == 1) {
                wrong += 1;
                note("chat and its food disagree", r, &mut examples);
            }
        }
    }

    // Ledger invariants over the whole database.
    let checks: [(&str, &str); 7] = [
        (
            "food_without_xp_event",
            "SELECT count(*) FROM food_entries f WHERE NOT EXISTS (SELECT 1 FROM xp_events x
              WHERE x.user_id = f.user_id AND x.source_key = 'food:' || f.id)",
        ),
        (
            "food_xp_without_food",
            "SELECT count(*) FROM xp_events x WHERE x.source_key LIKE 'food:%' AND NOT EXISTS
              (SELECT 1 FROM food_entries f WHERE 'food:' || f.id = x.source_key)",
        ),
        (
            "xp_total_not_ledger_sum",
            "SELECT count(*) FROM user_stats s FULL JOIN
              (SELECT user_id, sum(xp) AS xp FROM xp_events GROUP BY user_id) e USING (user_id)
              WHERE coalesce(s.total_xp, 0) <> coalesce(e.xp, 0)",
        ),
        (
            "user_message_without_answer",
            "SELECT count(*) FROM conversation_history u WHERE u.role = 'user' AND NOT EXISTS
              (SELECT 1 FROM conversation_history a WHERE a.user_id = u.user_id
                AND a.role = 'assistant' AND a.\"timestamp\" = u.\"timestamp\" + interval '1 microsecond')",
        ),
        (
            "answer_without_user_message",
            "SELECT count(*) FROM conversation_history a WHERE a.role = 'assistant' AND NOT EXISTS
              (SELECT 1 FROM conversation_history u WHERE u.user_id = a.user_id
                AND u.role = 'user' AND a.\"timestamp\" = u.\"timestamp\" + interval '1 microsecond')",
        ),
        (
            "chat_xp_not_exchanges",
            "SELECT count(*) FROM users us
              WHERE (SELECT count(*) FROM xp_events x WHERE x.user_id = us.user_id
                      AND x.source_key LIKE 'chat:%')
                 <> (SELECT count(*) FROM conversation_history h WHERE h.user_id = us.user_id
                      AND h.role = 'user')",
        ),
        (
            "chat_food_without_exchange",
            "SELECT count(*) FROM food_entries f WHERE f.description LIKE 'chaosmeal-%'
              AND NOT EXISTS (SELECT 1 FROM conversation_history h WHERE h.user_id = f.user_id
                AND h.role = 'user' AND h.content = 'I had ' || f.description)",
        ),
    ];
    let mut invariants = serde_json::Map::new();
    let mut broken = 0i64;
    for (name, sql) in checks {
        let n: i64 = db.query_one(sql, &[]).await?.get(0);
        broken += n;
        invariants.insert(name.into(), json!(n));
    }
    // Claims a crash left behind (the request's
    // release or completion never reached the database). They go stale after
    // 60 s; one whose write is stored is a retry that would run twice.
    let keys: Vec<String> = recs
        .iter()
        .filter_map(|r| r.retry.as_ref().map(|x| x.key.clone()))
        .collect();
    let pending: HashMap<String, ()> = db
        .query(
            "SELECT key FROM idempotency_keys WHERE status IS NULL AND key = ANY($1)",
            &[&keys],
        )
        .await?
        .iter()
        .map(|r| (r.get::<_, String>(0), ()))
        .collect();
    let mut stuck_with_write = 0u64;
    for r in &recs {
        let Some(x) = &r.retry else { continue };
        let table = match r.kind.as_str() {
            "food" => &food,
            "chat" => &chat,
            _ => &reminder,
        };
        if pending.contains_key(&x.key) && table.contains_key(&r.marker) {
            stuck_with_write += 1;
            note("claim left pending, write stored", r, &mut examples);
        }
    }
    let pending = pending.len();
    // A stored write whose claim stays pending is a duplicate waiting for a retry.
    let pass = lost == 0 && duplicated == 0 && wrong == 0 && broken == 0 && stuck_with_write == 0;
    println!(
        "{}",
        json!({
            "mode": "verify", "attempts": recs.len(), "acknowledged": acked,
            "lost": lost, "duplicated": duplicated, "wrong": wrong,
            "invariants": invariants, "pending_idempotency_claims": pending,
            "pending_claims_with_write": stuck_with_write,
            "examples": examples, "secs": started.elapsed().as_secs_f64(), "pass": pass,
        })
    );
    Ok(pass)
}

async fn first_contact(h: Http, warm: usize, chats: usize) -> anyhow::Result<bool> {
    let c = client()?;
    let t = Arc::new(Tally::default());
    let owner = format!("{}-warm", h.tag);
    let (s, _) = post(&c, &h, "/api/v1/users", &json!({"user_id": owner}), None).await;
    anyhow::ensure!(s == 201 || s == 409, "creating {owner}: {s}");
    // Concurrent food posts spread the food statements over the pool's
    // connections, so some have them prepared and others not.
    let posts = (0..warm).map(|i| {
        let (c, h, t, owner) = (c.clone(), h.clone(), t.clone(), owner.clone());
        async move {
            let desc = format!("chaosfood-{}-warm{i} rice", h.tag);
            let path = format!("/api/v1/users/{owner}/food");
            let body = json!({"description": desc, "calories": 200});
            // A 503 (no pooled connection in time on a busy box) stored
            // nothing: send it again, so the posts do warm the pool (were one
            // stored after all, verify reports the duplicate).
            let mut tries = 0;
            let (s, v) = loop {
                tries += 1;
                let (s, v) = send_write(&c, &h, &t, &path, &body, None).await;
                if s != 503 || tries == 10 {
                    break (s, v);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            let r = Rec {
                kind: "food".into(),
                user: owner,
                marker: desc,
                food: None,
                id: None,
                ack: false,
                status: 0,
                retry: None,
            };
            record(&t, s, r, &v);
        }
    });
    futures_join(posts).await;
    let sends = (0..chats).map(|i| {
        let (c, h, t) = (c.clone(), h.clone(), t.clone());
        async move {
            let user = format!("{}-first{i}", h.tag);
            let msg = format!("Hello, first contact {}-{i}", h.tag);
            let body = json!({"user_id": user, "message": msg});
            // More chats than the LLM gate admits: a refused one (503, nothing
            // stored) is sent again, and is still a first contact.
            let mut tries = 0;
            let (s, v) = loop {
                tries += 1;
                let (s, v) = send_write(&c, &h, &t, "/api/v1/chat", &body, None).await;
                if s != 503 || tries == 20 {
                    break (s, v);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            let r = Rec {
                kind: "chat".into(),
                user,
                marker: msg,
                food: None,
                id: None,
                ack: false,
                status: 0,
                retry: None,
            };
            record(&t, s, r, &v);
        }
    });
    futures_join(sends).await;
    let recs = t.recs.lock().map(|r| r.clone()).unwrap_or_default();
    write_recs(&h.out, &recs)?;
    let n404 = t.chat_404.load(Ordering::Relaxed);
    println!(
        "{}",
        summary(&t, json!({"mode": "first-contact", "pass": n404 == 0}))
    );
    Ok(n404 == 0)
}

async fn late_retry(h: Http, files: &[std::path::PathBuf]) -> anyhow::Result<bool> {
    let c = client()?;
    let t = Arc::new(Tally::default());
    let keyed: Vec<Rec> = read_recs(files)?
        .into_iter()
        .filter(|r| r.retry.is_some())
        .collect();
    let queue = Arc::new(Mutex::new(keyed));
    let workers = (0..8).map(|_| {
        let (c, h, t, queue) = (c.clone(), h.clone(), t.clone(), queue.clone());
        async move {
            while let Some(r) = queue.lock().ok().and_then(|mut q| q.pop()) {
                let Some(x) = r.retry.clone() else { continue };
                let (s, v) = send_write(&c, &h, &t, &x.path, &x.body, Some(&x.key)).await;
                // An acknowledged write must be replayed with the same id.
                if r.ack && (200..300).contains(&s) && r.id.is_some() {
                    let id = v
                        .get("id")
                        .map(|i| i.to_string().trim_matches('"').to_owned());
                    if id != r.id {
                        t.replay_mismatch.fetch_add(1, Ordering::Relaxed);
                    }
                }
                record(&t, s, Rec { retry: None, ..r }, &v);
            }
        }
    });
    futures_join(workers).await;
    let recs = t.recs.lock().map(|r| r.clone()).unwrap_or_default();
    write_recs(&h.out, &recs)?;
    let bad = t.replay_mismatch.load(Ordering::Relaxed);
    println!(
        "{}",
        summary(&t, json!({"mode": "late-retry", "pass": bad == 0}))
    );
    Ok(bad == 0)
}

/// Runs futures concurrently on this task (no extra dependency for join_all).
async fn futures_join<F: std::future::Future<Output = ()> + Send + 'static>(
    fs: impl Iterator<Item = F>,
) {
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    for h in handles {
        let _ = h.await;
    }
}

async fn mock_config(c: &reqwest::Client, mock: &str, body: Value) -> anyhow::Result<()> {
    let res = c
        .post(format!("{mock}/__mock/config"))
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(res.status().is_success(), "mock config: {}", res.status());
    Ok(())
}

/// Food rows, XP and history rows of one user.
async fn footprint(db: &tokio_postgres::Client, user: &str) -> anyhow::Result<(i64, i64, i64)> {
    let row = db
        .query_one(
            "SELECT (SELECT count(*) FROM food_entries WHERE user_id = $1),
                    (SELECT coalesce(sum(xp), 0)::bigint FROM xp_events WHERE user_id = $1),
                    (SELECT count(*) FROM conversation_history WHERE user_id = $1)",
            &[&user],
        )
        .await?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

async fn failed_tool(h: Http, mock: &str, database_url: &str) -> anyhow::Result<bool> {
    let c = client()?;
    let db = pg(database_url).await?;
    let user = format!("{}-tool", h.tag);
    let (s, _) = post(&c, &h, "/api/v1/users", &json!({"user_id": user}), None).await;
    anyhow::ensure!(s == 201 || s == 409, "creating {user}: {s}");
    let body = json!({"user_id": user, "message": format!("I had chaosbanana-{}", h.tag)});
    let key = format!("k-{}-tool", h.tag);
    let mut failures = Vec::new();
    // The first round answers with a log_food call, every later one fails.
    let mut script = vec!["ok"];
    script.extend(["error"; 40]);
    for _ in 0..3 {
        mock_config(&c, mock, json!({"script": script, "error_rate": 0.0})).await?;
        let (s, _) = post(&c, &h, "/api/v1/chat", &body, Some(&key)).await;
        failures.push(s);
    }
    mock_config(&c, mock, json!({"script": []})).await?;
    let after_failures = footprint(&db, &user).await?;
    // The retry after the failures runs once (503 while the provider's
    // circuit is still open is retried, bounded).
    let mut retry = 0;
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        (retry, _) = post(&c, &h, "/api/v1/chat", &body, Some(&key)).await;
        if retry == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (replay, _) = post(&c, &h, "/api/v1/chat", &body, Some(&key)).await;
    let after_retry = footprint(&db, &user).await?;
    let all_failed = failures.iter().all(|s| *s >= 500);
    let pass = all_failed
        && after_failures == (0, 0, 0)
        && retry == 200
        && replay == 200
        && after_retry == (1, 15, 2);
    println!(
        "{}",
        json!({
            "mode": "failed-tool", "failed_attempts": failures,
            "after_failures": {"food": after_failures.0, "xp": after_failures.1, "history": after_failures.2},
            "retry": retry, "replay": replay,
            "after_retry": {"food": after_retry.0, "xp": after_retry.1, "history": after_retry.2},
            "pass": pass,
        })
    );
    Ok(pass)
}

/// Completions the mock answered OK.
async fn mock_completions(c: &reqwest::Client, mock: &str) -> anyhow::Result<u64> {
    let v: Value = c
        .get(format!("{mock}/__mock/stats"))
        .send()
        .await?
        .json()
        .await?;
    let mut n = 0;
    if let Some(m) = v["by_endpoint"].as_object() {
        for (endpoint, outcomes) in m {
            if !endpoint.contains("embed") {
                n += outcomes["ok"].as_u64().unwrap_or(0);
            }
        }
    }
    Ok(n)
}

/// `clients` closed loops of chats for `secs`; returns (200s, 503s, others).
async fn chat_loops(
    c: &reqwest::Client,
    h: &Http,
    clients: usize,
    secs: f64,
    phase: &str,
) -> (u64, u64, u64, Vec<Rec>) {
    let t = Arc::new(Tally::default());
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let loops = (0..clients).map(|i| {
        let (c, h, t, counts, phase) = (
            c.clone(),
            h.clone(),
            t.clone(),
            counts.clone(),
            phase.to_owned(),
        );
        async move {
            let user = format!("{}-{phase}{i}", h.tag);
            let mut n = 0;
            while Instant::now() < deadline {
                n += 1;
                let msg = format!("How am I doing? ({}-{phase}{i}-{n})", h.tag);
                let (s, v) = post(
                    &c,
                    &h,
                    "/api/v1/chat",
                    &json!({"user_id": user, "message": msg}),
                    None,
                )
                .await;
                t.requests.fetch_add(1, Ordering::Relaxed);
                counts[match s {
                    200 => 0,
                    503 => 1,
                    _ => 2,
                }]
                .fetch_add(1, Ordering::Relaxed);
                let r = Rec {
                    kind: "chat".into(),
                    user: user.clone(),
                    marker: msg,
                    food: None,
                    id: None,
                    ack: false,
                    status: 0,
                    retry: None,
                };
                record(&t, s, r, &v);
                if s != 200 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    futures_join(loops).await;
    let recs = t.recs.lock().map(|r| r.clone()).unwrap_or_default();
    let get = |i: usize| counts[i].load(Ordering::Relaxed);
    (get(0), get(1), get(2), recs)
}

async fn llm_overload(
    h: Http,
    mock: &str,
    capacity: usize,
    factor: usize,
    latency_ms: u64,
    secs: f64,
) -> anyhow::Result<bool> {
    let c = client()?;
    mock_config(
        &c,
        mock,
        json!({"latency_ms": latency_ms, "jitter_ms": 0, "error_rate": 0.0, "rate_limit_rate": 0.0,
               "timeout_rate": 0.0, "malformed_rate": 0.0, "script": [], "reset_stats": true}),
    )
    .await?;
    // Peak: as many clients as the gate admits.
    let t0 = Instant::now();
    let (ok1, _, _, recs1) = chat_loops(&c, &h, capacity, secs, "peak").await;
    let peak = ok1 as f64 / t0.elapsed().as_secs_f64();
    let base = mock_completions(&c, mock).await?;
    let t1 = Instant::now();
    let (ok, refused, other, recs2) = chat_loops(&c, &h, capacity * factor, secs, "over").await;
    let goodput = ok as f64 / t1.elapsed().as_secs_f64();
    let completions = mock_completions(&c, mock).await? - base;
    write_recs(&h.out, &recs1)?;
    write_recs(&h.out, &recs2)?;
    // One completion per chat here (no tool): any completion beyond the
    // answered chats was paid for and thrown away.
    let discarded = completions.saturating_sub(ok);
    let share = if completions == 0 {
        1.0
    } else {
        discarded as f64 / completions as f64
    };
    let pass = completions > 0 && share <= 0.01;
    println!(
        "{}",
        json!({
            "mode": "llm-overload", "capacity": capacity, "clients": capacity * factor,
            "peak_chats_per_s": peak, "overload_chats_per_s": goodput,
            "goodput_ratio": if peak > 0.0 { goodput / peak } else { 0.0 },
            "ok": ok, "refused_503": refused, "other": other,
            "completions": completions, "discarded": discarded, "discarded_share": share,
            "pass": pass,
        })
    );
    Ok(pass)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let pass = match Cli::parse().mode {
        Mode::Load { h, secs, workers } => load(h, secs, workers).await?,
        Mode::Verify {
            database_url,
            files,
        } => verify(&database_url, &files).await?,
        Mode::LateRetry { h, files } => late_retry(h, &files).await?,
        Mode::FirstContact { h, warm, chats } => first_contact(h, warm, chats).await?,
        Mode::FailedTool {
            h,
            mock_url,
            database_url,
        } => failed_tool(h, &mock_url, &database_url).await?,
        Mode::LlmOverload {
            h,
            mock_url,
            capacity,
            factor,
            latency_ms,
            secs,
        } => llm_overload(h, &mock_url, capacity, factor, latency_ms, secs).await?,
    };
    if !pass {
        std::process::exit(1);
    }
    Ok(())
}
