use std::time::Duration;

use crate::helpers::{host_port, FreezableProxy, TestApp};

#[actix_web::test]
async fn a_graceful_stop_lets_in_flight_requests_finish_and_refuses_new_ones() {
    let db_url = actors::testing::migrated_database().await;
    let proxy = FreezableProxy::start(host_port(&db_url)).await;
    let app = TestApp::spawn_on(&proxy.url_for(&db_url), Vec::new()).await;

    // An in-flight request, held up by a stalled database.
    proxy.freeze(true);
    let req = app.request(reqwest::Method::GET, "/api/v1/users/someone");
    let in_flight = actix_web::rt::spawn(async move { req.send().await.expect("response") });
    // A fixed wait: the db gate's in-flight count is no sign that this
    // request arrived (housekeeping queries hang on the stalled database
    // too), and stopping before it did closes its pooled connection.
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;

    // SIGTERM does the same as a graceful stop of the server handle.
    let stopping = actix_web::rt::spawn(app.handle.clone().stop(true));
    // Nothing to observe: the accept loop pauses but the kernel still
    // completes handshakes. Let the stop begin before the request ends.
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    proxy.freeze(false);

    let res = in_flight.await.unwrap();
    assert_eq!(res.status(), 404, "the in-flight request was answered");
    stopping.await.unwrap();
    let refused = reqwest::Client::new()
        .get(format!("{}/api/health", app.address))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a stopped server must not accept requests"
    );
}

/// Issue 12 item 7: with a provider that never answers, a graceful stop
/// used to close in-flight chats' sockets at its timeout. Now they get a
/// 503 with `Retry-After` and the JSON error, /readyz turns 503 at once
/// while /api/health stays honest, and the server then exits.
#[actix_web::test]
async fn a_graceful_stop_answers_requests_still_running_at_its_deadline() {
    use health_agent_tools::mock_llm::{start_mock, MockOptions};

    let (port, _mock) = start_mock(MockOptions {
        timeout_rate: 1.0, // hung: never answers
        ..MockOptions::default()
    })
    .await
    .expect("mock");
    let app = TestApp::spawn_with(vec![
        ("HEALTH_AGENT__LLM__PROVIDER", "openai_compatible".into()),
        ("HEALTH_AGENT__LLM__MODEL", "mock-model".into()),
        (
            "HEALTH_AGENT__LLM__BASE_URL",
            format!("http://127.0.0.1:{port}"),
        ),
        ("HEALTH_AGENT__LLM__TIMEOUT_MS", "60000".into()),
        ("HEALTH_AGENT__LLM__RETRY_BUDGET_MS", "60000".into()),
        // Long enough for the probes below on a loaded box.
        ("HEALTH_AGENT__API__DRAIN_DELAY_MS", "2000".into()),
        ("HEALTH_AGENT__API__SHUTDOWN_TIMEOUT_SECS", "3".into()),
    ])
    .await;

    let chats: Vec<_> = (0..5)
        .map(|i| {
            let req = app.request(reqwest::Method::POST, "/api/v1/chat").json(
                &serde_json::json!({"user_id": format!("hung{i}"), "message": "I had a banana"}),
            );
            actix_web::rt::spawn(async move { req.send().await })
        })
        .collect();
    app.wait_for_in_flight("llm", 5).await;

    let started = std::time::Instant::now();
    app.shutdown.begin();
    // While draining: not ready, but healthy, and still serving.
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await;
    let ready = ready.expect("served while draining");
    assert_eq!(ready.status(), 503, "readyz must say draining");
    assert_eq!(app.get_health().await.expect("health").status(), 200);

    for chat in chats {
        let res = chat
            .await
            .unwrap()
            .expect("an in-flight chat gets an answer, not a closed socket");
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()["retry-after"], "1");
        assert!(res.headers().contains_key("x-request-id"));
        let body: serde_json::Value = res.json().await.expect("JSON error");
        assert!(body["error"].is_string() && body["timestamp"].is_string());
        assert!(body["detail"].as_str().unwrap().contains("shutting down"));
    }
    // Drain 2 s, then answered 1 s before the 3 s timeout.
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(5_000),
        "answered within drain + shutdown timeout (took {took:?})"
    );
    // Nothing of the cut-short chats was stored.
    assert_eq!(
        app.count("SELECT count(*) FROM conversation_history").await,
        0
    );
}

/// Behind nginx: while draining, what nginx re-sends elsewhere after a 503
/// (reads, PUT, DELETE) is turned away, so nginx takes the instance out
/// before its listener closes; writes it would not re-send are served, and
/// the probes answer for themselves.
#[actix_web::test]
async fn a_draining_instance_turns_away_what_the_balancer_retries_and_serves_writes() {
    let app = TestApp::spawn_with(vec![
        ("HEALTH_AGENT__API__DRAIN_DELAY_MS", "5000".into()),
        (
            "HEALTH_AGENT__API__DRAIN_TURN_AWAY_RETRYABLE",
            "true".into(),
        ),
    ])
    .await;
    assert_eq!(app.create_user("drainer").await.status(), 201);
    assert_eq!(app.get("/api/v1/users/drainer").await.status(), 200);

    app.shutdown.begin();
    let res = app.get("/api/v1/users/drainer").await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "1");
    assert_eq!(res.headers()["connection"], "close");
    assert!(res.json::<serde_json::Value>().await.unwrap()["detail"]
        .as_str()
        .unwrap()
        .contains("shutting down"));
    assert_eq!(app.delete("/api/v1/users/drainer").await.status(), 503);
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1, "not run");
    // A write nginx would not re-send is still served.
    let res = app
        .post_json(
            "/api/v1/users/drainer/food",
            &serde_json::json!({"description": "apple", "calories": 95}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let probe = |path: &'static str| {
        let url = format!("{}{path}", app.address);
        let client = app.client.clone();
        async move { client.get(url).send().await.unwrap().status() }
    };
    assert_eq!(probe("/livez").await, 200);
    assert_eq!(probe("/readyz").await, 503);
}

#[actix_web::test]
async fn by_default_a_draining_instance_still_serves_reads() {
    let app = TestApp::spawn_with(vec![("HEALTH_AGENT__API__DRAIN_DELAY_MS", "5000".into())]).await;
    assert_eq!(app.create_user("stayer").await.status(), 201);
    app.shutdown.begin();
    assert_eq!(app.get("/api/v1/users/stayer").await.status(), 200);
}

/// After the listener closes, a kept-alive connection is still served (its
/// next answer closes it): a balancer sending on a pooled connection at that
/// moment does not lose the request.
#[actix_web::test]
async fn an_open_keep_alive_connection_is_served_after_the_listener_closes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = TestApp::spawn_with(vec![("HEALTH_AGENT__API__DRAIN_DELAY_MS", "100".into())]).await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!("GET /livez HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let mut buf = vec![0u8; 4096];
    conn.write_all(request.as_bytes()).await.unwrap();
    let n = conn.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    app.shutdown.begin();
    // The drain passes and the listener closes: new connections are refused.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(&addr).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the listener stayed open"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    conn.write_all(request.as_bytes()).await.unwrap();
    let n = conn.read(&mut buf).await.unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]).to_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "answer: {answer:?}");
    assert!(answer.contains("connection: close"), "answer: {answer:?}");
}
