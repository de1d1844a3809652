//! The DbActor on a real PostgreSQL: panics restart it, a full gate answers
//! at once, and operations run on pooled connections.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test says where it failed

use std::time::{Duration, Instant};

use actors::db::{Client, DbConfig, DbError, DbHandle, DbOperation, DbShared};
use actors::ActorError;

fn config(url: String, mailbox_capacity: usize) -> DbConfig {
    DbConfig {
        url,
        replica_url: None,
        pool_max_size: 4,
        pool_min_idle: 0,
        connection_timeout: Duration::from_secs(2),
        queue_timeout: Duration::from_secs(2),
        query_timeout: Duration::from_secs(5),
        test_on_checkout: false,
        mailbox_capacity,
        probe_interval: Duration::from_millis(250),
        probe_timeout: Duration::from_millis(500),
        replica_max_lag: Duration::from_millis(500),
    }
}

/// An operation that panics mid-flight, as a bug in a handler would.
struct Explode;

impl DbOperation for Explode {
    type Output = ();
    const NAME: &'static str = "explode";

    async fn run(self, client: &mut Client) -> Result<(), DbError> {
        client.simple_query("SELECT 1").await?;
        panic!("bug in a handler");
    }
}

/// An operation that takes a while, to fill the gate.
struct Sleep(f64);

impl DbOperation for Sleep {
    type Output = ();
    const NAME: &'static str = "sleep";

    async fn run(self, client: &mut Client) -> Result<(), DbError> {
        client.execute("SELECT pg_sleep($1)", &[&self.0]).await?;
        Ok(())
    }
}

#[actix::test]
async fn a_panicking_handler_fails_its_request_cleanly_and_the_actor_is_restarted() {
    let shared = DbShared::start(&config(actors::testing::migrated_database().await, 16)).unwrap();
    let db = DbHandle::start(shared.clone());
    assert_eq!(db.run(actors::db::ops::Ping).await.unwrap(), 1);

    let err = db.run(Explode).await.unwrap_err();
    assert!(
        matches!(err, DbError::Actor(ActorError::Panicked { actor: "db" })),
        "{err:?}"
    );

    // The supervisor restarted the actor: the next request succeeds.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(db.run(actors::db::ops::Ping).await.unwrap(), 1);
    let stats = shared.gate().stats().snapshot();
    assert_eq!(stats.restarts, 1);
    assert_eq!((stats.in_flight, stats.mailbox_depth), (0, 0));
}

#[actix::test]
async fn a_full_gate_rejects_within_a_millisecond_and_frees_as_work_finishes() {
    let shared = DbShared::start(&config(actors::testing::migrated_database().await, 2)).unwrap();
    let db = DbHandle::start(shared.clone());
    let (a, b) = (db.clone(), db.clone());
    let slow1 = actix::spawn(async move { a.run(Sleep(0.3)).await });
    let slow2 = actix::spawn(async move { b.run(Sleep(0.3)).await });
    tokio::time::sleep(Duration::from_millis(50)).await;

    let started = Instant::now();
    let err = db.run(actors::db::ops::Ping).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(1),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(
        err,
        DbError::Actor(ActorError::Overloaded { actor: "db", .. })
    ));

    slow1.await.unwrap().unwrap();
    slow2.await.unwrap().unwrap();
    assert_eq!(db.run(actors::db::ops::Ping).await.unwrap(), 1);
    assert_eq!(shared.gate().stats().snapshot().rejected, 1);
}

#[actix::test]
async fn an_operation_past_the_query_timeout_is_a_timeout_not_a_hang() {
    let mut cfg = config(actors::testing::migrated_database().await, 4);
    cfg.query_timeout = Duration::from_millis(100);
    let db = DbHandle::start(DbShared::start(&cfg).unwrap());
    let started = Instant::now();
    let err = db.run(Sleep(2.0)).await.unwrap_err();
    assert!(matches!(err, DbError::Timeout), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[actix::test]
async fn each_worker_gets_its_own_actor_sharing_one_gate() {
    let shared = DbShared::start(&config(actors::testing::migrated_database().await, 8)).unwrap();
    let arbiter = actix::Arbiter::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let s = shared.clone();
    arbiter.spawn(async move {
        let db = DbHandle::start(s);
        let _ = tx.send(
            db.run(actors::db::ops::Ping)
                .await
                .map_err(|e| e.to_string()),
        );
    });
    assert_eq!(rx.await.unwrap().unwrap(), 1);
    let here = DbHandle::start(shared.clone());
    assert_eq!(here.run(actors::db::ops::Ping).await.unwrap(), 1);
    assert_eq!(shared.gate().stats().snapshot().admitted, 2);
    arbiter.stop();
}

#[actix::test]
async fn resized_pools_serve_new_work_while_the_old_pool_finishes_its_own() {
    let url = actors::testing::migrated_database().await;
    let shared = DbShared::start(&config(url.clone(), 16)).unwrap();
    let db = DbHandle::start(shared.clone());
    // Every connection of the old pool (4) busy.
    let sleeps: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            actix::spawn(async move { db.run(Sleep(2.0)).await })
        })
        .collect();
    // Connecting (SCRAM in a debug build) takes a while.
    let deadline = Instant::now() + Duration::from_secs(3);
    while shared.pool_stats().size < 4 {
        assert!(Instant::now() < deadline, "{:?}", shared.pool_stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert!(shared.resize_pools(0, 0).is_err());
    assert!(shared.resize_pools(2, 3).is_err());
    assert_eq!(
        shared.pool_stats().max_size,
        4,
        "a bad size changes nothing"
    );
    shared.resize_pools(2, 0).unwrap();
    assert_eq!(shared.pool_stats().max_size, 2);

    // Every connection of the old pool is still busy: answering now proves
    // the new pool served it.
    assert_eq!(db.run(actors::db::ops::Ping).await.unwrap(), 1);
    assert!(sleeps.iter().all(|s| !s.is_finished()));
    for s in sleeps {
        s.await
            .unwrap()
            .expect("in-flight work finishes on the old pool");
    }

    // The old pool's connections close once its last operation is done.
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    actix::spawn(async move {
        let _ = conn.await;
    });
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let n: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND application_name = 'health-agent'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        // The new pool's one connection and the health probe's.
        if n <= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{n} connections still open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix::test]
async fn patient_work_waits_out_a_busy_pool_that_sheds_other_work() {
    let mut cfg = config(actors::testing::migrated_database().await, 16);
    cfg.pool_max_size = 1;
    cfg.queue_timeout = Duration::from_millis(50);
    let db = DbHandle::start(DbShared::start(&cfg).unwrap());
    // The one connection exists and is busy for a while.
    assert_eq!(db.run(actors::db::ops::Ping).await.unwrap(), 1);
    let busy = {
        let db = db.clone();
        actix::spawn(async move { db.run(Sleep(0.6)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let shed = db.run(actors::db::ops::Ping).await.unwrap_err();
    assert!(
        matches!(shed, DbError::Actor(ActorError::Overloaded { .. })),
        "{shed:?}"
    );
    assert_eq!(db.patient().run(actors::db::ops::Ping).await.unwrap(), 1);
    busy.await.unwrap().unwrap();
}

/// The database stops accepting connections (as at `max_connections`) while
/// the pool's own connection keeps working: the probe cannot reconnect, so
/// health reports it down. New work fails fast; work already paid for waits
/// for the pool's connection and is saved.
#[actix::test]
async fn patient_work_is_not_refused_while_health_reports_the_database_down() {
    let url = actors::testing::migrated_database().await;
    let mut cfg = config(url.clone(), 16);
    cfg.pool_max_size = 1;
    cfg.connection_timeout = Duration::from_secs(3);
    let shared = DbShared::start(&cfg).unwrap();
    let db = DbHandle::start(shared.clone());
    // Health has seen the database up (before that, it counts as up).
    let deadline = Instant::now() + Duration::from_secs(2);
    while !shared.health().is_connected() {
        assert!(Instant::now() < deadline, "the probe never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(db.run(actors::db::ops::Ping).await.unwrap(), 1);
    let busy = {
        let db = db.clone();
        actix::spawn(async move { db.run(Sleep(2.0)).await })
    };
    // From another database: a session cannot lock out its own.
    let (admin, conn) =
        tokio_postgres::connect(&actors::testing::admin_url(), tokio_postgres::NoTls)
            .await
            .unwrap();
    actix::spawn(conn);
    let name = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    admin
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .await
        .unwrap();
    // The probe's session; the pool's one connection is the one sleeping.
    tokio::time::sleep(Duration::from_millis(100)).await;
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND query NOT LIKE '%pg_sleep%'",
            &[&name],
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while shared.health().is_connected() {
        assert!(Instant::now() < deadline, "health never saw the outage");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let refused = db.run(actors::db::ops::Ping).await.unwrap_err();
    assert!(matches!(refused, DbError::Unavailable(_)), "{refused:?}");
    let saved = db.patient().run(actors::db::ops::Ping).await;
    admin
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    assert_eq!(saved.unwrap(), 1);
    busy.await.unwrap().unwrap();
}

/// The backend behind the pool's next connection.
async fn backend(pool: &actors::db::PgPool) -> i32 {
    let conn = pool.get().await.unwrap();
    let row = conn
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap();
    row.get(0)
}

#[actix::test]
async fn once_a_worker_registers_the_pool_s_connections_are_driven_by_it() {
    let mut cfg = config(actors::testing::migrated_database().await, 16);
    cfg.pool_max_size = 1;
    let shared = DbShared::start(&cfg).unwrap();
    let pool = shared.primary_pool();
    // No worker yet: the connection opened here stays.
    let first = backend(&pool).await;
    assert_eq!(backend(&pool).await, first);

    let worker = actix::Arbiter::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let registering = shared.clone();
    worker.spawn(async move {
        registering.drive_connections_here();
        let _ = tx.send(());
    });
    rx.await.unwrap();
    // The one this thread opened serves once more, then is retired.
    assert_eq!(backend(&pool).await, first);
    let driven = backend(&pool).await;
    assert_ne!(driven, first);
    assert_eq!(backend(&pool).await, driven, "a worker's connection stays");

    // Its driver ran on the worker: with the worker gone, so is it.
    worker.stop();
    worker.join().unwrap();
    let conn = pool.get().await.unwrap();
    wait_until_closed(&conn).await;
}

async fn wait_until_closed(conn: &actors::db::Client) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while !conn.is_closed() {
        assert!(
            Instant::now() < deadline,
            "the connection outlived its worker"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
