use std::time::{Duration, Instant};

use crate::helpers::{host_port, FreezableProxy, TestApp};

#[actix_web::test]
async fn health_is_public_and_reports_a_connected_database() {
    let app = TestApp::spawn().await;
    let res = app.get_health().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["database"], "connected");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[actix_web::test]
async fn liveness_and_readiness_probes_answer_without_a_key() {
    let app = TestApp::spawn().await;
    for path in ["/livez", "/readyz"] {
        let res = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
    }
}

#[actix_web::test]
async fn health_turns_503_within_a_second_when_postgres_stops_answering_and_recovers() {
    // Arrange: the server reaches PostgreSQL through a proxy we can freeze.
    let db_url = actors::testing::migrated_database().await;
    let proxy = FreezableProxy::start(host_port(&db_url)).await;
    let app = TestApp::spawn_on(&proxy.url_for(&db_url), Vec::new()).await;
    assert_eq!(app.get_health().await.unwrap().status(), 200);

    // Act: PostgreSQL stops answering, as under `kill -STOP`.
    proxy.freeze(true);
    let frozen_at = Instant::now();
    let mut degraded_after = None;
    while frozen_at.elapsed() < Duration::from_secs(3) {
        let asked = Instant::now();
        let res = app.get_health().await.unwrap();
        assert!(
            asked.elapsed() < Duration::from_millis(200),
            "health must not wait on the database"
        );
        if res.status() == 503 {
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(body["status"], "degraded");
            assert_eq!(body["database"], "disconnected");
            degraded_after = Some(frozen_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Assert
    let after = degraded_after.expect("health never turned 503");
    assert!(after <= Duration::from_secs(1), "took {after:?}");

    proxy.freeze(false);
    let thawed_at = Instant::now();
    app.wait_until_healthy(Duration::from_secs(3)).await;
    assert_eq!(app.get_health().await.unwrap().status(), 200);
    assert!(thawed_at.elapsed() < Duration::from_secs(3));
}

#[actix_web::test]
async fn health_is_503_when_the_database_is_unreachable_from_the_start() {
    let db_url = actors::testing::migrated_database().await;
    // A port nothing listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (head, tail) = db_url.rsplit_once('@').unwrap();
    let db = tail.split_once('/').unwrap().1;
    let app = TestApp::spawn_on(&format!("{head}@127.0.0.1:{dead}/{db}"), Vec::new()).await;
    let res = app.get_health().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers().get("retry-after").unwrap(), "1");
    // A request that needs the database fails fast with 503, not a hang.
    let started = Instant::now();
    let res = app.get("/api/v1/users/nobody").await;
    assert_eq!(res.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[actix_web::test]
async fn health_reports_the_cache_connected_or_disabled() {
    let app = TestApp::spawn().await;
    app.wait_for_cache(Duration::from_secs(2)).await;

    let no_cache = TestApp::spawn_with(vec![("ENABLE_CACHE", "false".into())]).await;
    let body: serde_json::Value = no_cache.get_health().await.unwrap().json().await.unwrap();
    assert_eq!(body["cache"], "disabled");
    assert_eq!(body["status"], "healthy");
}
