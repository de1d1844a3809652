//! The cache on a real Redis: L1 and L2 hits, TTLs, invalidation across
//! instances, single-flight, and serving through Redis outages.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test says where it failed

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::cache::{CacheConfig, CacheHandle, CacheShared, Refill};
use actors::db::DbError;
use actors::testing::FreezableProxy;

fn redis_url() -> String {
    std::env::var("REDIS_URL").expect("REDIS_URL: run the tests with ./dev test")
}

fn config(url: String, namespace: &str) -> CacheConfig {
    CacheConfig {
        enabled: true,
        url,
        namespace: namespace.to_owned(),
        pool_max_size: 4,
        op_timeout: Duration::from_millis(50),
        mailbox_capacity: 1024,
        l1_ttl: Duration::from_secs(30),
        l1_max_entries: 1000,
        circuit_failures: 3,
        circuit_open: Duration::from_millis(300),
    }
}

fn namespace() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}

/// A loader that counts its calls and returns `value`.
fn counting(
    value: &'static str,
    calls: &Arc<AtomicUsize>,
) -> impl Fn() -> std::future::Ready<Result<String, DbError>> {
    let calls = calls.clone();
    move || {
        calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(value.to_owned()))
    }
}

async fn wait_until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[actix::test]
async fn a_value_is_loaded_once_then_served_from_l1_and_from_redis_by_another_instance() {
    let ns = namespace();
    let a = CacheHandle::start(CacheShared::start(&config(redis_url(), &ns)).unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let ttl = Duration::from_secs(60);

    assert_eq!(
        a.get_or_load("k", ttl, counting("v1", &calls))
            .await
            .unwrap(),
        "v1"
    );
    assert_eq!(
        a.get_or_load("k", ttl, counting("v1", &calls))
            .await
            .unwrap(),
        "v1"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let s = a.shared().snapshot();
    assert_eq!((s.misses, s.hits, s.l1_hits), (1, 1, 1));

    // Another instance: empty L1, same Redis.
    let b = CacheHandle::start(CacheShared::start(&config(redis_url(), &ns)).unwrap());
    wait_until("the fill to reach Redis", async || {
        a.shared().snapshot().sets == 1
    })
    .await;
    assert_eq!(
        b.get_or_load("k", ttl, counting("other", &calls))
            .await
            .unwrap(),
        "v1"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "b read Redis, not the loader"
    );
    assert_eq!(b.shared().snapshot().hit_rate_percent, 100.0);
}

#[actix::test]
async fn an_entry_expires_after_its_ttl() {
    let mut cfg = config(redis_url(), &namespace());
    cfg.l1_ttl = Duration::from_millis(200);
    let c = CacheHandle::start(CacheShared::start(&cfg).unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    c.get_or_load("k", Duration::from_secs(1), counting("v", &calls))
        .await
        .unwrap();
    wait_until("the fill", async || c.shared().snapshot().sets == 1).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    c.get_or_load("k", Duration::from_secs(1), counting("v", &calls))
        .await
        .unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "expired in both L1 and Redis"
    );
}

#[actix::test]
async fn an_invalidation_through_one_instance_is_seen_by_another() {
    let ns = namespace();
    let a = CacheHandle::start(CacheShared::start(&config(redis_url(), &ns)).unwrap());
    let b = CacheHandle::start(CacheShared::start(&config(redis_url(), &ns)).unwrap());
    let ttl = Duration::from_secs(60);
    let calls = Arc::new(AtomicUsize::new(0));
    // b caches the old value in its L1 (and Redis).
    assert_eq!(
        b.get_or_load("profile", ttl, counting("old", &calls))
            .await
            .unwrap(),
        "old"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;

    a.invalidate(&["profile".to_owned()]).await;

    wait_until("b to drop its copy", async || {
        b.get_or_load("profile", ttl, counting("new", &calls))
            .await
            .unwrap()
            == "new"
    })
    .await;
}

/// The database row a loader reads, as the test changes it.
fn truth(value: &str) -> Arc<std::sync::Mutex<String>> {
    Arc::new(std::sync::Mutex::new(value.to_owned()))
}

fn reload(
    row: &Arc<std::sync::Mutex<String>>,
) -> impl Fn() -> std::future::Ready<Result<String, DbError>> + 'static {
    let row = row.clone();
    move || std::future::ready(Ok(row.lock().unwrap().clone()))
}

async fn redis_conn() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[actix::test]
async fn a_refresh_writes_the_new_value_through_and_other_instances_read_it_from_redis() {
    let ns = namespace();
    let a = CacheHandle::start(CacheShared::start(&config(redis_url(), &ns)).unwrap());
    let b = CacheHandle::start(CacheShared::start(&config(redis_url(), &ns)).unwrap());
    let ttl = Duration::from_secs(60);
    let row = truth("old");
    let b_loads = Arc::new(AtomicUsize::new(0));
    assert_eq!(
        b.get_or_load("k", ttl, counting("old", &b_loads))
            .await
            .unwrap(),
        "old"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;

    *row.lock().unwrap() = "new".to_owned();
    a.refresh(vec![Refill::new("k".into(), ttl, reload(&row))])
        .await;
    wait_until("a's refill to reach Redis", async || {
        a.shared().snapshot().sets == 1
    })
    .await;

    wait_until("b to read the new value", async || {
        b.get_or_load("k", ttl, counting("from b's loader", &b_loads))
            .await
            .unwrap()
            == "new"
    })
    .await;
    assert_eq!(
        b_loads.load(Ordering::SeqCst),
        1,
        "after the refresh b read Redis (a hit), not its loader"
    );
}

#[actix::test]
async fn a_fill_that_read_the_old_row_does_not_replace_a_refreshed_value() {
    let ns = namespace();
    let a = CacheHandle::start(CacheShared::start(&config(redis_url(), &ns)).unwrap());
    let c = CacheHandle::start(CacheShared::start(&config(redis_url(), &ns)).unwrap());
    let ttl = Duration::from_secs(60);
    let row = truth("new");
    // c misses and reads the old row, slowly; a's write lands meanwhile.
    let slow_fill = c.get_or_load("k", ttl, || async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        Ok::<_, DbError>("old".to_owned())
    });
    let write = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        a.refresh(vec![
            Refill::new("k".into(), ttl, reload(&row)).known(Some(&"new"))
        ])
        .await;
    };
    let (filled, ()) = tokio::join!(slow_fill, write);
    assert_eq!(filled.unwrap(), "old", "the read began before the write");

    // The fill's SET NX lost; after the check, c's L1 copy is dropped too.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut r = redis_conn().await;
    let stored: Option<String> = redis::cmd("GET")
        .arg(a.shared().key("k"))
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some("\"new\""));
    let never = Arc::new(AtomicUsize::new(0));
    assert_eq!(
        c.get_or_load("k", ttl, counting("loader", &never))
            .await
            .unwrap(),
        "new"
    );
    assert_eq!(never.load(Ordering::SeqCst), 0);
}

#[actix::test]
async fn a_refreshed_value_a_racing_writer_replaced_is_reloaded_from_the_database() {
    let ns = namespace();
    let a = CacheHandle::start(CacheShared::start(&config(redis_url(), &ns)).unwrap());
    let ttl = Duration::from_secs(60);
    // a computed its value from a window that missed the other write.
    let row = truth("both writes");
    a.refresh(vec![
        Refill::new("k".into(), ttl, reload(&row)).known(Some(&"only a's write"))
    ])
    .await;
    let full = a.shared().key("k");
    let mut r = redis_conn().await;
    wait_until("a's value in Redis", async || {
        let v: Option<String> = redis::cmd("GET")
            .arg(&full)
            .query_async(&mut r)
            .await
            .unwrap();
        v.is_some()
    })
    .await;
    // The other writer's SET lands last, with its own partial value.
    let _: () = redis::cmd("SET")
        .arg(&full)
        .arg("\"only b's write\"")
        .query_async(&mut r)
        .await
        .unwrap();

    wait_until("the check to reload the truth", async || {
        let v: Option<String> = redis::cmd("GET")
            .arg(&full)
            .query_async(&mut r)
            .await
            .unwrap();
        v.as_deref() == Some("\"both writes\"")
    })
    .await;
}

#[actix::test]
async fn a_check_never_replaces_a_write_through_that_landed_after_it_looked() {
    let ns = namespace();
    let a = CacheHandle::start(CacheShared::start(&config(redis_url(), &ns)).unwrap());
    let ttl = Duration::from_secs(60);
    let (started, release) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let slow_reload = {
        let (started, release) = (started.clone(), release.clone());
        move || {
            let (started, release) = (started.clone(), release.clone());
            async move {
                started.store(true, Ordering::SeqCst);
                while !release.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                // Read before the newest write committed.
                Ok::<_, DbError>("reloaded before the third write".to_owned())
            }
        }
    };
    a.refresh(vec![
        Refill::new("k".into(), ttl, slow_reload).known(Some(&"first write"))
    ])
    .await;
    let full = a.shared().key("k");
    let mut r = redis_conn().await;
    let get = async |r: &mut redis::aio::MultiplexedConnection| -> Option<String> {
        redis::cmd("GET").arg(&full).query_async(r).await.unwrap()
    };
    // A racing writer replaces it: the check will see that and reload.
    let _: () = redis::cmd("SET")
        .arg(&full)
        .arg("\"second write\"")
        .query_async(&mut r)
        .await
        .unwrap();
    wait_until("the check to start reloading", async || {
        started.load(Ordering::SeqCst)
    })
    .await;
    // The newest write-through lands while the reload is under way.
    let _: () = redis::cmd("SET")
        .arg(&full)
        .arg("\"third write\"")
        .query_async(&mut r)
        .await
        .unwrap();
    let sets = a.shared().snapshot().sets;
    release.store(true, Ordering::SeqCst);
    wait_until("the check to finish", async || {
        a.shared().snapshot().sets > sets
    })
    .await;
    assert_eq!(get(&mut r).await.as_deref(), Some("\"third write\""));
}

#[actix::test]
async fn concurrent_misses_on_one_key_load_once() {
    let c = CacheHandle::start(CacheShared::start(&config(redis_url(), &namespace())).unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (c, calls) = (c.clone(), calls.clone());
        tasks.push(actix::spawn(async move {
            c.get_or_load("hot", Duration::from_secs(60), || {
                let calls = calls.clone();
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, DbError>(42u32)
                }
            })
            .await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 42);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[actix::test]
async fn a_loader_error_is_returned_and_not_cached() {
    let c = CacheHandle::start(CacheShared::start(&config(redis_url(), &namespace())).unwrap());
    let err = c
        .get_or_load("missing", Duration::from_secs(60), || async {
            Err::<u8, _>(DbError::NotFound)
        })
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::NotFound));
    let ok = c
        .get_or_load("missing", Duration::from_secs(60), || async {
            Ok::<u8, DbError>(7)
        })
        .await
        .unwrap();
    assert_eq!(ok, 7);
}

#[actix::test]
async fn a_stalled_redis_costs_a_timeout_then_the_circuit_skips_it_and_nothing_fails() {
    let proxy = FreezableProxy::start(host_port(&redis_url())).await;
    let mut cfg = config(proxy.url_for(&redis_url()), &namespace());
    cfg.l1_ttl = Duration::from_millis(1);
    let c = CacheHandle::start(CacheShared::start(&cfg).unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let ttl = Duration::from_secs(60);
    c.get_or_load("k", ttl, counting("db", &calls))
        .await
        .unwrap();

    proxy.freeze(true);
    let mut slow = 0;
    for i in 0..20 {
        let started = Instant::now();
        let v = c
            .get_or_load(&format!("k{i}"), ttl, counting("db", &calls))
            .await
            .unwrap();
        assert_eq!(v, "db");
        if started.elapsed() > Duration::from_millis(40) {
            slow += 1;
        }
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "read {i} waited {:?}",
            started.elapsed()
        );
    }
    assert!(
        slow <= 4,
        "the circuit should stop waiting on Redis ({slow} slow reads)"
    );
    assert!(c.shared().snapshot().errors >= 3);
    assert!(c.shared().snapshot().circuit_open);

    proxy.freeze(false);
    wait_until("the probe to close the circuit", async || {
        c.shared().is_connected()
    })
    .await;
}

#[actix::test]
async fn after_redis_is_killed_and_restarted_the_cache_reconnects_by_itself() {
    let proxy = FreezableProxy::start(host_port(&redis_url())).await;
    let c = CacheHandle::start(
        CacheShared::start(&config(proxy.url_for(&redis_url()), &namespace())).unwrap(),
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let ttl = Duration::from_secs(60);
    c.get_or_load("a", ttl, counting("v", &calls))
        .await
        .unwrap();
    wait_until("connected", async || c.shared().is_connected()).await;

    proxy.cut();
    for i in 0..5 {
        assert_eq!(
            c.get_or_load(&format!("down{i}"), ttl, counting("v", &calls))
                .await
                .unwrap(),
            "v"
        );
    }
    wait_until("the probe to notice", async || !c.shared().is_connected()).await;

    proxy.restore();
    wait_until("a reconnect", async || c.shared().is_connected()).await;
    let sets_before = c.shared().snapshot().sets;
    c.get_or_load("after", ttl, counting("v", &calls))
        .await
        .unwrap();
    wait_until("a write to reach Redis again", async || {
        c.shared().snapshot().sets > sets_before
    })
    .await;
}

#[actix::test]
async fn an_invalidation_made_while_redis_was_stalled_is_replayed_before_redis_is_read() {
    let ns = namespace();
    let proxy = FreezableProxy::start(host_port(&redis_url())).await;
    let mut cfg = config(proxy.url_for(&redis_url()), &ns);
    cfg.l1_ttl = Duration::from_millis(1);
    let c = CacheHandle::start(CacheShared::start(&cfg).unwrap());
    let ttl = Duration::from_secs(60);
    let calls = Arc::new(AtomicUsize::new(0));
    c.get_or_load("profile", ttl, counting("old", &calls))
        .await
        .unwrap();
    wait_until("the fill", async || c.shared().snapshot().sets == 1).await;

    // Freeze Redis, update the profile (the database now says "new").
    proxy.freeze(true);
    c.invalidate(&["profile".to_owned()]).await;
    assert_eq!(c.shared().snapshot().pending_invalidations, 1);

    // Thaw, read: the stale "old" in Redis must not come back.
    proxy.freeze(false);
    let v = c
        .get_or_load("profile", ttl, counting("new", &calls))
        .await
        .unwrap();
    assert_eq!(v, "new");
    assert_eq!(c.shared().snapshot().pending_invalidations, 0);
}

#[actix::test]
async fn with_the_cache_disabled_every_read_goes_to_the_loader_and_needs_no_redis() {
    let mut cfg = config("redis://127.0.0.1:1/0".into(), &namespace());
    cfg.enabled = false;
    let c = CacheHandle::start(CacheShared::start(&cfg).unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        c.get_or_load("k", Duration::from_secs(60), counting("v", &calls))
            .await
            .unwrap();
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(!c.shared().snapshot().enabled);
}

fn host_port(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let rest = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    rest.split('/').next().unwrap().to_owned()
}

/// What a cache namespace announces to every instance's listener.
struct Announcements(std::pin::Pin<Box<dyn futures_util::Stream<Item = redis::Msg> + Send>>);

impl Announcements {
    async fn of(namespace: &str) -> Self {
        let client = redis::Client::open(redis_url()).unwrap();
        let mut sub = client.get_async_pubsub().await.unwrap();
        sub.subscribe(format!("{namespace}:v1:invalidate"))
            .await
            .unwrap();
        Self(Box::pin(sub.into_on_message()))
    }

    /// The next announcement's keys.
    async fn next(&mut self) -> String {
        use futures_util::StreamExt;
        let msg = tokio::time::timeout(Duration::from_secs(3), self.0.next())
            .await
            .expect("an announcement")
            .unwrap();
        msg.get_payload().unwrap()
    }
}

#[actix::test]
async fn a_refresh_rechecks_all_its_keys_in_one_announced_read() {
    let ns = namespace();
    let a = CacheHandle::start(CacheShared::start(&config(redis_url(), &ns)).unwrap());
    let mut heard = Announcements::of(&ns).await;
    let ttl = Duration::from_secs(60);
    let row = truth("both writes");
    a.refresh(vec![
        Refill::new("kept".into(), ttl, reload(&truth("kept"))).known(Some(&"kept")),
        Refill::new("raced".into(), ttl, reload(&row)).known(Some(&"only a's write")),
    ])
    .await;
    // Another writer's SET lands before the check looks.
    let mut r = redis_conn().await;
    let _: () = redis::cmd("SET")
        .arg(a.shared().key("raced"))
        .arg("\"only b's write\"")
        .query_async(&mut r)
        .await
        .unwrap();
    let (kept, raced) = (a.shared().key("kept"), a.shared().key("raced"));
    let both = format!("{kept}\n{raced}");
    assert_eq!(heard.next().await, both, "the write-through");
    assert_eq!(
        heard.next().await,
        both,
        "the check: one read for both keys"
    );
    assert_eq!(heard.next().await, raced, "the raced key's reload");
    let v: Option<String> = redis::cmd("GET")
        .arg(&raced)
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(v.as_deref(), Some("\"both writes\""));
}

#[actix::test]
async fn write_throughs_due_together_are_rechecked_in_one_round_trip() {
    let ns = namespace();
    let a = CacheHandle::start(CacheShared::start(&config(redis_url(), &ns)).unwrap());
    let mut heard = Announcements::of(&ns).await;
    let ttl = Duration::from_secs(60);
    let write = async |key: &str, value: &str| {
        a.refresh(vec![
            Refill::new(key.into(), ttl, reload(&truth(value))).known(Some(&value))
        ])
        .await;
    };
    // Two chats' write-throughs, 10 ms apart; the first key written twice.
    write("one", "1").await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    write("two", "2").await;
    write("one", "1 again").await;
    let (one, two) = (a.shared().key("one"), a.shared().key("two"));
    assert_eq!(heard.next().await, one);
    assert_eq!(heard.next().await, two);
    assert_eq!(heard.next().await, one);
    // One look for both keys, the twice-written one once, for its newest value.
    assert_eq!(heard.next().await, format!("{two}\n{one}"));
    assert!(
        tokio::time::timeout(Duration::from_millis(400), heard.next())
            .await
            .is_err(),
        "nothing else to look at"
    );
}
