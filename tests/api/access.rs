//! Abuse and access: admin scope, hashed keys, odd key bytes, and per-key
//! rate limits shared across instances (issue 14).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};

use crate::helpers::{assert_error, TestApp, ADMIN_KEY, KEY};

async fn send_with_key(app: &TestApp, method: Method, path: &str, key: &str) -> reqwest::Response {
    app.client
        .request(method, format!("{}{path}", app.address))
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn a_client_key_gets_403_on_the_admin_route_and_an_admin_key_gets_in() {
    let app = TestApp::spawn().await;
    let res = send_with_key(&app, Method::POST, "/api/v1/admin/reload", KEY).await;
    let body = assert_error(res, 403).await;
    assert_eq!(body["error"], "admin API key required");
    // Past the scope check (the test process has no config to reload: 400).
    let res = send_with_key(&app, Method::POST, "/api/v1/admin/reload", ADMIN_KEY).await;
    let body = assert_error(res, 400).await;
    assert_eq!(body["error"], "invalid configuration");
    // An admin key is a key like any other elsewhere.
    let res = send_with_key(&app, Method::GET, "/api/v1/users/nobody", ADMIN_KEY).await;
    assert_eq!(res.status(), 404);
}

#[actix_web::test]
async fn metrics_can_be_kept_for_admin_keys() {
    let app = TestApp::spawn_with(vec![(
        "HEALTH_AGENT__METRICS__REQUIRE_ADMIN_KEY",
        "true".into(),
    )])
    .await;
    for path in ["/metrics", "/api/v1/metrics"] {
        let res = send_with_key(&app, Method::GET, path, KEY).await;
        assert_error(res, 403).await;
        let res = send_with_key(&app, Method::GET, path, ADMIN_KEY).await;
        assert_eq!(res.status(), 200, "{path}");
    }
}

#[actix_web::test]
async fn keys_configured_as_digests_are_accepted_and_rotation_overlaps() {
    let hashed = health_agent::middleware::auth::digest_form("new-key");
    let admin = health_agent::middleware::auth::digest_form("new-admin");
    // Rotation: the old and the new key are both valid until the old is removed.
    let app = TestApp::spawn_with(vec![
        ("API_KEYS", format!("old-key,{hashed}")),
        ("ADMIN_API_KEYS", admin.clone()),
    ])
    .await;
    for key in ["old-key", "new-key", "new-admin"] {
        let res = send_with_key(&app, Method::GET, "/api/v1/users/nobody", key).await;
        assert_eq!(res.status(), 404, "{key}");
    }
    // The digest itself is not a key.
    let res = send_with_key(&app, Method::GET, "/api/v1/users/nobody", &hashed).await;
    assert_error(res, 403).await;
    let res = send_with_key(&app, Method::POST, "/api/v1/admin/reload", "new-key").await;
    assert_error(res, 403).await;
}

#[actix_web::test]
async fn a_non_ascii_key_is_403_like_any_wrong_key() {
    let app = TestApp::spawn().await;
    for header in ["X-API-Key", "Authorization"] {
        let value = reqwest::header::HeaderValue::from_bytes("Bearer k\u{e9}y".as_bytes()).unwrap();
        let res = app
            .client
            .get(format!("{}/api/v1/users/nobody", app.address))
            .header(header, value)
            .send()
            .await
            .unwrap();
        let body = assert_error(res, 403).await;
        assert_eq!(body["error"], "Invalid API key", "{header}");
    }
}

#[test]
fn keys_hash_prints_the_digest_from_an_argument_or_stdin() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let bin = env!("CARGO_BIN_EXE_health-agent");
    let out = Command::new(bin)
        .args(["keys", "hash", "abc"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let expected = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n";
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    let mut child = Command::new(bin)
        .args(["keys", "hash"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"abc\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
}

/// Fires `n` GETs at `app` from `concurrency` loops; counts 200s and 429s.
async fn hammer(app: &TestApp, n: usize, concurrency: usize) -> (usize, usize) {
    use futures_util::StreamExt;
    let url = format!("{}/api/v1/users/nobody/xp", app.address);
    let results: Vec<StatusCode> = futures_util::stream::iter(0..n)
        .map(|_| {
            let req = app.client.get(&url).header("X-API-Key", KEY);
            async move {
                req.send()
                    .await
                    .map(|r| r.status())
                    .unwrap_or(StatusCode::IM_A_TEAPOT)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let ok = results
        .iter()
        .filter(|s| **s != StatusCode::TOO_MANY_REQUESTS)
        .count();
    let limited = results
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    (ok, limited)
}

#[actix_web::test]
async fn two_instances_share_one_budget_within_five_percent() {
    let budget = 600.0;
    // A loaded test box can take longer than the 50 ms cache deadline; this
    // measures the shared bucket, not the per-instance fallback.
    let env = |ns: Option<String>| {
        let mut env = vec![
            ("RATE_LIMIT_PER_MINUTE", "600".to_string()),
            ("HEALTH_AGENT__CACHE__OP_TIMEOUT_MS", "2000".to_string()),
        ];
        env.extend(ns.map(|ns| ("HEALTH_AGENT__CACHE__NAMESPACE", ns)));
        env
    };
    let a = TestApp::spawn_with(env(None)).await;
    // Same database and, through the same namespace, the same Redis buckets.
    let b = TestApp::spawn_on(&a.db_url, env(Some(a.cache_namespace.clone()))).await;
    let started = Instant::now();
    let ((ok_a, lim_a), (ok_b, lim_b)) = tokio::join!(hammer(&a, 700, 8), hammer(&b, 700, 8));
    let elapsed = started.elapsed().as_secs_f64();
    let accepted = (ok_a + ok_b) as f64;
    // The bucket refills at 10/s while the burst runs; that share is known.
    let expected = budget + budget / 60.0 * elapsed;
    assert!(
        lim_a > 0 && lim_b > 0,
        "both instances refused some: {lim_a} {lim_b}"
    );
    assert!(
        (accepted - expected).abs() <= 0.05 * budget,
        "accepted {accepted} (a {ok_a}, b {ok_b}) vs {expected:.0} expected in {elapsed:.2}s"
    );
}

#[actix_web::test]
async fn limited_answers_carry_the_headers_and_a_429_says_when_to_retry() {
    let app = TestApp::spawn_with(vec![
        ("RATE_LIMIT_PER_MINUTE", "60".into()),
        ("HEALTH_AGENT__RATE_LIMIT__BURST", "3".into()),
        ("RATE_LIMIT_CHAT_PER_MINUTE", "0".into()),
        ("HEALTH_AGENT__CACHE__OP_TIMEOUT_MS", "2000".into()),
    ])
    .await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let res = app.get("/api/v1/users/nobody").await;
        assert_eq!(res.status(), 404);
        assert_eq!(res.headers()["ratelimit-limit"], "60");
        assert!(res.headers().contains_key("ratelimit-reset"));
        remaining.push(
            res.headers()["ratelimit-remaining"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let res = app.get("/api/v1/users/nobody").await;
    assert_eq!(res.headers()["retry-after"], "1");
    assert_eq!(res.headers()["ratelimit-remaining"], "0");
    let body = assert_error(res, 429).await;
    assert!(body["detail"].as_str().unwrap().contains("api"), "{body}");
    // The chat budget is off, health is public: neither is limited.
    let res = app.get_health().await.unwrap();
    assert!(!res.headers().contains_key("ratelimit-limit"));
    // Another key has its own budget.
    let res = send_with_key(&app, Method::GET, "/api/v1/users/nobody", "test-key-2").await;
    assert_eq!(res.status(), 404);
    // After the retry time a request goes through again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.get("/api/v1/users/nobody").await.status(), 404);
}

#[actix_web::test]
async fn the_chat_has_its_own_budget() {
    let app = TestApp::spawn_with(vec![
        ("RATE_LIMIT_PER_MINUTE", "1000".into()),
        ("RATE_LIMIT_CHAT_PER_MINUTE", "2".into()),
    ])
    .await;
    let chat = serde_json::json!({"user_id": "rl-chat", "message": "hi"});
    for _ in 0..2 {
        let res = app.post_json("/api/v1/chat", &chat).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["ratelimit-limit"], "2");
    }
    assert_error(app.post_json("/api/v1/chat", &chat).await, 429).await;
    let res = app.get("/api/v1/users/rl-chat").await;
    assert_eq!(res.status(), 200, "the other budget is untouched");
    assert_eq!(res.headers()["ratelimit-limit"], "1000");
}

#[actix_web::test]
async fn with_redis_unreachable_the_instance_limits_alone_and_never_fails() {
    let app = TestApp::spawn_with(vec![
        ("REDIS_URL", "redis://127.0.0.1:9/0".into()),
        ("RATE_LIMIT_PER_MINUTE", "60".into()),
        ("HEALTH_AGENT__RATE_LIMIT__BURST", "5".into()),
    ])
    .await;
    let (ok, limited) = hammer(&app, 20, 4).await;
    assert_eq!((ok, limited), (5, 15), "the local bucket, not unlimited");
    let metrics = send_with_key(&app, Method::GET, "/metrics", ADMIN_KEY).await;
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("health_agent_rate_limit_fallback_total"),
        "fallback counted"
    );
}

#[actix_web::test]
async fn switching_between_redis_and_the_local_bucket_admits_nothing_extra() {
    // A budget of 4 at once, refilling one per 10 s, with Redis behind a
    // proxy that can freeze.
    let redis = std::env::var("REDIS_URL").expect("REDIS_URL");
    let proxy = crate::helpers::FreezableProxy::start(crate::helpers::host_port(&redis)).await;
    let app = TestApp::spawn_with(vec![
        ("REDIS_URL", proxy.url_for(&redis)),
        ("RATE_LIMIT_PER_MINUTE", "6".into()),
        ("HEALTH_AGENT__RATE_LIMIT__BURST", "4".into()),
    ])
    .await;
    let xp = "/api/v1/users/nobody/xp";
    let admitted = |status: StatusCode| usize::from(status != StatusCode::TOO_MANY_REQUESTS);
    app.wait_for_cache(Duration::from_secs(10)).await;
    let started = Instant::now();

    // Two through Redis, then Redis freezes: the local bucket knows of them.
    let mut total = 0;
    for _ in 0..2 {
        total += admitted(app.get(xp).await.status());
    }
    proxy.freeze(true);
    for _ in 0..4 {
        total += admitted(app.get(xp).await.status());
    }
    // Redis back: what was admitted alone is charged to the shared bucket.
    proxy.freeze(false);
    app.wait_for_cache(Duration::from_secs(10)).await;
    for _ in 0..4 {
        total += admitted(app.get(xp).await.status());
    }
    let refilled = (started.elapsed().as_secs_f64() / 10.0).ceil() as usize;
    assert!(
        total <= 4 + refilled,
        "{total} admitted, the budget allows {}",
        4 + refilled
    );
    assert!(total >= 4, "only {total} admitted");
}

#[actix_web::test]
async fn a_late_redis_reply_is_charged_once() {
    // A budget of 3, refilling one per 20 s. The second request's call
    // misses its 50 ms deadline but Redis runs it when it thaws: the request
    // was charged there, so the fallback must not owe it again.
    let redis = std::env::var("REDIS_URL").expect("REDIS_URL");
    let proxy = crate::helpers::FreezableProxy::start(crate::helpers::host_port(&redis)).await;
    let app = TestApp::spawn_with(vec![
        ("REDIS_URL", proxy.url_for(&redis)),
        ("RATE_LIMIT_PER_MINUTE", "3".into()),
        ("HEALTH_AGENT__RATE_LIMIT__BURST", "3".into()),
    ])
    .await;
    let xp = "/api/v1/users/nobody/xp";
    let started = Instant::now();
    assert_ne!(app.get(xp).await.status(), StatusCode::TOO_MANY_REQUESTS);
    proxy.freeze(true);
    assert_ne!(app.get(xp).await.status(), StatusCode::TOO_MANY_REQUESTS);
    proxy.freeze(false);
    app.wait_for_cache(Duration::from_secs(10)).await;
    let third = app.get(xp).await.status();
    let fourth = app.get(xp).await.status();
    if started.elapsed() < Duration::from_secs(20) {
        assert_ne!(third, StatusCode::TOO_MANY_REQUESTS, "charged twice");
        assert_eq!(fourth, StatusCode::TOO_MANY_REQUESTS, "charged not at all");
    }
}

#[actix_web::test]
async fn docs_404s_and_cors_rejections_are_json_errors() {
    let app = TestApp::spawn_with(vec![("CORS_ORIGINS", "https://app.example".into())]).await;
    let res = app
        .client
        .get(format!("{}/api/docs/no-such-asset.js", app.address))
        .send()
        .await
        .unwrap();
    assert_error(res, 404).await;
    // Swagger UI itself still serves.
    let res = app
        .client
        .get(format!("{}/api/docs/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let res = app
        .client
        .request(Method::OPTIONS, format!("{}/api/v1/users", app.address))
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    let body = assert_error(res, 400).await;
    assert!(
        body["detail"].as_str().unwrap_or("").contains("Origin"),
        "{body}"
    );

    let res = app
        .client
        .request(Method::OPTIONS, format!("{}/api/v1/users", app.address))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[actix_web::test]
async fn a_wildcard_cors_origin_never_reflects_null_nor_allows_credentials() {
    let app = TestApp::spawn_with(vec![("CORS_ORIGINS", "*".into())]).await;
    for origin in ["null", "https://any.example"] {
        let res = app
            .client
            .request(Method::OPTIONS, format!("{}/api/v1/users", app.address))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .send()
            .await
            .unwrap();
        let h = res.headers();
        assert_eq!(
            h.get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap()),
            Some("*"),
            "{origin}"
        );
        assert!(
            !h.contains_key("access-control-allow-credentials"),
            "{origin}"
        );
        let res = app
            .request(Method::GET, "/api/v1/users/nobody")
            .header("Origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.headers()["access-control-allow-origin"],
            "*",
            "{origin}"
        );
        assert!(!res
            .headers()
            .contains_key("access-control-allow-credentials"));
    }
}

#[actix_web::test]
async fn a_wrong_second_credential_is_a_wrong_key() {
    let app = TestApp::spawn().await;
    for (name, value) in [
        ("Authorization", "Basic dXNlcjpwdw=="),
        ("Authorization", "Bearer nope"),
    ] {
        let res = app
            .client
            .get(format!("{}/api/v1/users/nobody", app.address))
            .header("X-API-Key", KEY)
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_error(res, 403).await;
    }
    let res = app
        .client
        .get(format!("{}/api/v1/users/nobody", app.address))
        .header("X-API-Key", "nope")
        .header("Authorization", format!("Bearer {KEY}"))
        .send()
        .await
        .unwrap();
    assert_error(res, 403).await;
    // Both right: fine.
    let res = app
        .client
        .get(format!("{}/api/v1/users/nobody", app.address))
        .header("X-API-Key", KEY)
        .header("Authorization", format!("Bearer {KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
