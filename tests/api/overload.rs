//! Overload sheds in milliseconds, an outage fails at once, reminders keep
//! their own database capacity, and client connections are capped (issue 12
//! items 4 and 5).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use crate::helpers::{assert_error, host_port, wait_for, FreezableProxy, TestApp, KEY};

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// 40 sockets to `addr` that never send a request, and a client that opens
/// a new connection for each request (as a health probe does).
async fn idle_sockets_and_a_fresh_client(
    addr: &str,
) -> (Vec<tokio::net::TcpStream>, reqwest::Client) {
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    (idle, client)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[actix_web::test]
async fn a_stalled_database_sheds_with_503_in_milliseconds_not_after_the_connection_timeout() {
    // Arrange: a full pool of 4 over a proxy, the default gate (1024) and
    // queue target (50 ms), and PostgreSQL stalled.
    let db_url = actors::testing::migrated_database().await;
    let proxy = FreezableProxy::start(host_port(&db_url)).await;
    let app = TestApp::spawn_on(
        &proxy.url_for(&db_url),
        vec![
            ("HEALTH_AGENT__DATABASE__POOL_MAX_SIZE", "4".into()),
            ("HEALTH_AGENT__DATABASE__POOL_MIN_IDLE", "4".into()),
            // Waiting for a connection, as before, takes this long: far
            // from the bound below even on a box starved of CPU.
            (
                "HEALTH_AGENT__DATABASE__CONNECTION_TIMEOUT_MS",
                "5000".into(),
            ),
        ],
    )
    .await;
    assert!(
        wait_for(Duration::from_secs(10), || async {
            app.metrics().await["database"]["pool_size"] == 4
        })
        .await,
        "the pool did not open its 4 connections"
    );
    proxy.freeze(true);

    // Act: 200 concurrent reads.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let req = app.request(reqwest::Method::GET, &format!("/api/v1/users/stall{i}"));
        tasks.push(actix_web::rt::spawn(async move {
            let started = Instant::now();
            let res = req.send().await.expect("response");
            let status = res.status().as_u16();
            let retry_after = res.headers().get("retry-after").cloned();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            (status, retry_after, body, started.elapsed())
        }));
    }
    // Long enough that a request that waited for the database (2 s
    // connection_timeout before) is told apart from a shed one.
    actix_web::rt::time::sleep(Duration::from_millis(2500)).await;
    proxy.freeze(false);
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }

    // Assert: at most the 4 holding connections waited; the rest were shed
    // with the JSON error and Retry-After, p99 well under the old 2 s.
    let mut shed: Vec<Duration> = Vec::new();
    for (status, retry_after, body, took) in &results {
        if *status == 503 {
            assert!(retry_after.is_some(), "503 without Retry-After");
            assert!(body["error"].is_string() && body["timestamp"].is_string());
            shed.push(*took);
        } else {
            assert_eq!(*status, 404, "{body}");
        }
    }
    assert!(shed.len() >= 190, "only {} of 200 shed", shed.len());
    shed.sort();
    let (p50, p99) = (percentile(&shed, 0.5), percentile(&shed, 0.99));
    // 50 ms target; generous for a box shared with other builds (p50 was
    // 1.5 s at a load average of 20 on 2 cores), while waiting for the
    // pool took connection_timeout (p50 and p99 2.1 s with 2 s).
    assert!(p99 < Duration::from_millis(2500), "p50 {p50:?} p99 {p99:?}");
    // Independent of the box's load: shed by the queue target (gate
    // rejections), not by the 1024-slot gate, which all 200 fit in.
    let m = app.metrics().await;
    assert!(
        m["actors"]["db"]["rejected"].as_u64().unwrap() >= 100,
        "{m}"
    );
    // Once the stall is over, requests are served again.
    app.wait_until_healthy(Duration::from_secs(5)).await;
    assert_eq!(app.get("/api/v1/users/after").await.status(), 404);
}

/// Starts `n` reads of unknown users (404 when served) and returns their
/// tasks: each yields its status and how long it took.
fn spawn_reads(
    app: &TestApp,
    prefix: &str,
    n: usize,
) -> Vec<actix_web::rt::task::JoinHandle<(u16, Duration)>> {
    (0..n)
        .map(|i| {
            let req = app.request(reqwest::Method::GET, &format!("/api/v1/users/{prefix}{i}"));
            actix_web::rt::spawn(async move {
                let started = Instant::now();
                let status = req.send().await.expect("response").status().as_u16();
                (status, started.elapsed())
            })
        })
        .collect()
}

#[actix_web::test]
async fn past_half_the_queue_target_requests_are_shed_on_arrival_and_writes_at_the_door() {
    // Arrange: a pool of 2 and a 2 s queue target, so a request that waited
    // for its 503 is told apart from one shed on arrival.
    let app = TestApp::spawn_with(vec![
        ("HEALTH_AGENT__DATABASE__POOL_MAX_SIZE", "2".into()),
        ("HEALTH_AGENT__DATABASE__POOL_MIN_IDLE", "2".into()),
        ("HEALTH_AGENT__DATABASE__QUEUE_TIMEOUT_MS", "2000".into()),
    ])
    .await;
    assert!(
        wait_for(Duration::from_secs(10), || async {
            app.metrics().await["database"]["pool_size"] == 2
        })
        .await,
        "the pool did not open its 2 connections"
    );
    let locker = app.db().await;
    let in_flight = |n: u64| {
        let app = &app;
        move || async move { app.metrics().await["actors"]["db"]["in_flight"].as_u64() >= Some(n) }
    };
    // Queries on `users` block while the table is locked: the two
    // connections are each held about 400 ms, which the estimate's moving
    // average (of every hold since startup) learns in part.
    locker
        .batch_execute("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let warm = spawn_reads(&app, "warm", 2);
    assert!(wait_for(Duration::from_secs(5), in_flight(2)).await);
    actix_web::rt::time::sleep(Duration::from_millis(400)).await;
    locker.batch_execute("ROLLBACK").await.unwrap();
    for t in warm {
        assert_eq!(t.await.unwrap().0, 404);
    }

    // Act: the same again with 40 reads behind the two: each waiter adds
    // half the average hold (≥ 60 ms) to the expected wait, so past about
    // 16 of them the rest are shed.
    locker
        .batch_execute("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let rejected_before = app.metrics().await["actors"]["db"]["rejected"]
        .as_u64()
        .unwrap();
    let queued = spawn_reads(&app, "queued", 40);
    assert!(
        wait_for(Duration::from_secs(5), || async {
            app.metrics().await["actors"]["db"]["rejected"]
                .as_u64()
                .unwrap()
                > rejected_before
        })
        .await,
        "nothing was shed while 40 reads queued for 2 locked connections"
    );
    // A write whose body is not even JSON: shed at the door, before the
    // body is parsed (400) or the queue is joined. Then the same again at
    // once on the same connection, ignoring the Retry-After.
    let one_connection = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let send = |req: reqwest::RequestBuilder| async move {
        let started = Instant::now();
        let res = req.header("x-api-key", KEY).send().await.unwrap();
        (res, started.elapsed())
    };
    let write = || {
        send(
            one_connection
                .post(format!("{}/api/v1/users/queued0/food", app.address))
                .header("content-type", "application/json")
                .body("{not json"),
        )
    };
    let mut writes = Vec::new();
    let mut read = None;
    for _ in 0..2 {
        let (res, took) = write().await;
        assert!(res.headers().contains_key("retry-after"));
        let body = assert_error(res, 503).await;
        assert_eq!(
            body["detail"], "the db queue is full; retry shortly",
            "{body}"
        );
        writes.push(took);
        // A read on a new connection (the test's pool has had 503s), while
        // the queue is still long.
        if read.is_none() {
            let (res, took) =
                send(reqwest::Client::new().get(format!("{}/api/v1/users/late", app.address)))
                    .await;
            read = Some((res.status().as_u16(), took));
        }
    }
    let (read_status, read_took) = read.unwrap();
    actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    locker.batch_execute("ROLLBACK").await.unwrap();
    let mut statuses = Vec::new();
    for t in queued {
        statuses.push(t.await.unwrap());
    }

    // Assert: the write and a late read were refused at once, far inside
    // the 2 s target they would otherwise have waited, but the write resent
    // before its Retry-After was up was paced to the target; the queued
    // reads were either served after the lock or shed.
    assert!(
        writes[0] < Duration::from_millis(1000),
        "writes took {writes:?}"
    );
    assert!(
        writes[1] >= Duration::from_millis(1900),
        "writes took {writes:?}"
    );
    assert_eq!(read_status, 503);
    assert!(
        read_took < Duration::from_millis(1000),
        "read took {read_took:?}"
    );
    let served = statuses.iter().filter(|(s, _)| *s == 404).count();
    let shed = statuses.iter().filter(|(s, _)| *s == 503).count();
    assert_eq!(served + shed, 40, "{statuses:?}");
    assert!(served >= 2 && shed >= 10, "{statuses:?}");
    // Nothing half-written, and served again once the queue is gone.
    assert_eq!(app.count("SELECT count(*) FROM food_entries").await, 0);
    assert_eq!(app.get("/api/v1/users/after").await.status(), 404);
}

#[actix_web::test]
async fn while_health_says_the_database_is_down_reads_and_writes_fail_at_once() {
    let db_url = actors::testing::migrated_database().await;
    let proxy = FreezableProxy::start(host_port(&db_url)).await;
    let app = TestApp::spawn_on(
        &proxy.url_for(&db_url),
        vec![(
            "HEALTH_AGENT__DATABASE__CONNECTION_TIMEOUT_MS",
            "5000".into(),
        )],
    )
    .await;
    assert_eq!(app.create_user("before").await.status(), 201);

    // PostgreSQL goes away; health notices within a second.
    proxy.cut();
    assert!(
        wait_for(Duration::from_secs(5), || async {
            app.get_health().await.is_ok_and(|r| r.status() == 503)
        })
        .await,
        "health never said the database is down"
    );

    // Every request answers 503 at once instead of waiting out the 5 s
    // connection_timeout.
    for i in 0..10 {
        let started = Instant::now();
        let res = if i % 2 == 0 {
            app.get(&format!("/api/v1/users/down{i}")).await
        } else {
            app.create_user(&format!("down{i}")).await
        };
        let took = started.elapsed();
        assert!(res.headers().contains_key("retry-after"));
        let body = assert_error(res, 503).await;
        assert_eq!(body["detail"], "database is unavailable", "{body}");
        // Waiting for the pool took 5 s; generous for a box shared with builds.
        assert!(
            took < Duration::from_millis(2500),
            "request {i} took {took:?}"
        );
    }

    // Back up: served again, and nothing was half-written meanwhile.
    proxy.restore();
    app.wait_until_healthy(Duration::from_secs(10)).await;
    assert!(
        wait_for(Duration::from_secs(5), || async {
            app.get("/api/v1/users/before").await.status() == 200
        })
        .await
    );
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE user_id LIKE 'down%'")
            .await,
        0
    );
}

#[actix_web::test]
async fn reminder_polls_keep_their_connections_while_http_saturates_the_db_gate() {
    // Arrange: HTTP gets one db slot and one connection; a row lock makes
    // the one request that holds them wait.
    let app = TestApp::spawn_with(vec![
        ("HEALTH_AGENT__ACTORS__DB__MAILBOX_CAPACITY", "1".into()),
        ("HEALTH_AGENT__DATABASE__POOL_MAX_SIZE", "1".into()),
        ("HEALTH_AGENT__DATABASE__POOL_MIN_IDLE", "1".into()),
        ("HEALTH_AGENT__DATABASE__QUERY_TIMEOUT_MS", "20000".into()),
        ("HEALTH_AGENT__REMINDERS__POLL_INTERVAL_MS", "100".into()),
    ])
    .await;
    // A one-slot gate is briefly taken by background work (the cache's
    // write-through check, health): the arrangement retries a 503 as any
    // client would.
    let accepted = |req: reqwest::RequestBuilder| async move {
        for _ in 0..100 {
            let res = req.try_clone().unwrap().send().await.unwrap();
            if res.status() != 503 {
                return res;
            }
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("still refused after 100 tries");
    };
    for user in ["holder", "rita"] {
        let req = app
            .request(reqwest::Method::POST, "/api/v1/users")
            .json(&json!({ "user_id": user }));
        assert_eq!(accepted(req).await.status(), 201);
    }
    let trigger = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let req = app
        .request(reqwest::Method::POST, "/api/v1/users/rita/reminders")
        .json(&json!({"type": "one_time", "message": "stretch", "trigger_time": trigger}));
    let res = accepted(req).await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (mut locker, conn) = tokio_postgres::connect(&app.db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    actix_web::rt::spawn(async move {
        let _ = conn.await;
    });
    let tx = locker.transaction().await.unwrap();
    tx.execute(
        "SELECT 1 FROM users WHERE user_id = 'holder' FOR UPDATE",
        &[],
    )
    .await
    .unwrap();
    // The PATCH waits on the row lock holding HTTP's only slot; other
    // requests (cache misses) are then refused. Sent again if background
    // work had the slot when it arrived.
    let mut n = 0;
    let mut held = None;
    for _ in 0..20 {
        let patch = app
            .request(reqwest::Method::PATCH, "/api/v1/users/holder/profile")
            .json(&json!({"field": "age", "value": 40}));
        let task = actix_web::rt::spawn(async move { patch.send().await.map(|r| r.status()) });
        let filled = wait_for(Duration::from_secs(5), || {
            n += 1;
            let path = format!("/api/v1/users/ghost{n}");
            let app = &app;
            let finished = task.is_finished();
            async move { !finished && app.get(&path).await.status() == 503 }
        })
        .await;
        if filled && !task.is_finished() {
            held = Some(task);
            break;
        }
        let status = task.await.unwrap().unwrap();
        assert_eq!(status, 503, "the PATCH ended while the row was locked");
    }
    let held = held.expect("HTTP's db gate never filled");

    // Act: the reminder comes due.
    let db = app.db().await;
    db.execute(
        "UPDATE reminders SET next_trigger_at = now() - interval '1 minute' WHERE id = $1::text::uuid",
        &[&id],
    )
    .await
    .unwrap();

    // Assert: the scheduler fires it while HTTP is still saturated.
    let fired = wait_for(Duration::from_secs(10), || async {
        db.query_one(
            "SELECT count(*) FROM reminder_completions WHERE reminder_id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
            == 1
    })
    .await;
    assert!(!held.is_finished(), "the row lock was released early");
    assert!(
        fired,
        "the reminder did not fire while HTTP held the db gate"
    );
    let m = metrics_when_free(&app, tx, held).await;
    assert!(
        m["actors"]["db_reminders"]["mailbox_capacity"].is_u64(),
        "{m}"
    );
    assert!(m["actors"]["db"]["rejected"].as_u64().unwrap() >= 1, "{m}");
}

/// Releases the lock, lets the held request finish and reads the metrics.
async fn metrics_when_free(
    app: &TestApp,
    tx: tokio_postgres::Transaction<'_>,
    held: actix_web::rt::task::JoinHandle<reqwest::Result<reqwest::StatusCode>>,
) -> Value {
    tx.rollback().await.unwrap();
    assert_eq!(held.await.unwrap().unwrap(), 200);
    app.metrics().await
}

#[actix_web::test]
async fn the_probe_port_answers_at_once_while_idle_sockets_fill_the_main_one() {
    // Arrange: a cap of 8 on the main port, reaped only after 5 s, and the
    // probes' own port.
    let app = TestApp::spawn_with(vec![
        ("HEALTH_AGENT__API__MAX_CONNECTIONS", "8".into()),
        (
            "HEALTH_AGENT__API__CLIENT_REQUEST_TIMEOUT_MS",
            "5000".into(),
        ),
        ("HEALTH_AGENT__API__PROBE_PORT", free_port().to_string()),
    ])
    .await;
    let probes = app.probe_address.clone().expect("probe port");
    let addr = app.address.trim_start_matches("http://").to_owned();

    // Act: 40 sockets that never send a request take the main port's slots
    // and queue; then each probe on a fresh connection to the probe port.
    let (idle, client) = idle_sockets_and_a_fresh_client(&addr).await;
    let mut slowest = Duration::ZERO;
    for path in ["/api/health", "/livez", "/readyz"] {
        let started = Instant::now();
        let res = client.get(format!("{probes}{path}")).send().await.unwrap();
        slowest = slowest.max(started.elapsed());
        assert_eq!(res.status(), 200, "{path}");
    }
    // The main port meanwhile makes a new connection wait for the reaping.
    let main_port = client
        .get(format!("{}/api/health", app.address))
        .timeout(Duration::from_secs(1))
        .send()
        .await;

    // Assert
    assert!(
        slowest < Duration::from_millis(500),
        "probe took {slowest:?}"
    );
    assert!(
        main_port.is_err(),
        "the main port was not full: {main_port:?}"
    );
    // While draining, readiness says so on the probe port too.
    app.shutdown.begin();
    let res = client.get(format!("{probes}/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    drop(idle);
}

#[actix_web::test]
async fn idle_sockets_beyond_the_cap_wait_are_reaped_and_health_is_still_served() {
    // Arrange: a cap of 8 connections (4 per worker) and idle sockets
    // closed after 500 ms without a request.
    let app = TestApp::spawn_with(vec![
        ("HEALTH_AGENT__API__MAX_CONNECTIONS", "8".into()),
        ("HEALTH_AGENT__API__CLIENT_REQUEST_TIMEOUT_MS", "500".into()),
    ])
    .await;
    assert_eq!(app.metrics().await["connections"]["max"], 8);
    let addr = app.address.trim_start_matches("http://").to_owned();

    // Act: 40 sockets that never send a request, then a health probe on a
    // fresh connection.
    let (idle, client) = idle_sockets_and_a_fresh_client(&addr).await;
    let started = Instant::now();
    let res = client
        .get(format!("{}/api/health", app.address))
        .send()
        .await
        .expect("health answered");

    // Assert: served once idle sockets were reaped; never more than the cap open.
    assert_eq!(res.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    // The server closed the idle sockets (408 or EOF) instead of holding them.
    let mut closed = 0;
    for mut s in idle {
        let mut buf = [0u8; 256];
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 40);
    let m = app.metrics().await;
    let peak = m["connections"]["peak"].as_i64().unwrap();
    assert!((1..=8).contains(&peak), "peak {peak}: {m}");
}
