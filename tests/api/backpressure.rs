use std::time::{Duration, Instant};

use crate::helpers::{host_port, FreezableProxy, TestApp};

#[actix_web::test]
async fn a_full_db_mailbox_answers_503_with_retry_after_at_once_and_nothing_else_fails() {
    // Arrange: capacity 10, and PostgreSQL stalled so admitted requests wait.
    let db_url = actors::testing::migrated_database().await;
    let proxy = FreezableProxy::start(host_port(&db_url)).await;
    let app = TestApp::spawn_on(
        &proxy.url_for(&db_url),
        vec![
            ("HEALTH_AGENT__ACTORS__DB__MAILBOX_CAPACITY", "10".into()),
            (
                "HEALTH_AGENT__DATABASE__CONNECTION_TIMEOUT_MS",
                "5000".into(),
            ),
        ],
    )
    .await;
    proxy.freeze(true);

    // Act: 300 concurrent reads.
    let mut tasks = Vec::new();
    for i in 0..300 {
        let req = app.request(reqwest::Method::GET, &format!("/api/v1/users/u{i}"));
        tasks.push(actix_web::rt::spawn(async move {
            let started = Instant::now();
            let res = req.send().await.expect("response");
            let retry_after = res.headers().get("retry-after").cloned();
            (res.status().as_u16(), retry_after, started.elapsed())
        }));
    }
    // Long enough that a request that had waited for the database is told
    // apart from a shed one even on a busy CI box.
    actix_web::rt::time::sleep(Duration::from_millis(2500)).await;
    proxy.freeze(false);
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }

    // Assert: at most 10 got through (404: no such user); the rest were shed
    // quickly with Retry-After; no other status.
    let served = results.iter().filter(|r| r.0 == 404).count();
    let shed: Vec<_> = results.iter().filter(|r| r.0 == 503).collect();
    assert!((1..=10).contains(&served), "served {served}");
    assert_eq!(served + shed.len(), 300, "other statuses: {results:?}");
    for (_, retry_after, took) in &shed {
        // 1: the gate was full; 2: health had seen the stall by then
        // (the database is down, so nothing waits for it).
        let after = retry_after.as_ref().unwrap();
        assert!(after == "1" || after == "2", "{after:?}");
        assert!(
            *took < Duration::from_millis(1500),
            "a shed request waited {took:?}"
        );
    }
    let metrics: serde_json::Value = app.get("/api/v1/metrics").await.json().await.unwrap();
    assert_eq!(metrics["actors"]["db"]["mailbox_capacity"], 10);
    assert!(metrics["actors"]["db"]["rejected"].as_u64().unwrap() >= shed.len() as u64);
    // Once the pressure is gone, requests are served again.
    assert_eq!(app.get("/api/v1/users/after").await.status(), 404);
}
