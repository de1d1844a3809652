use reqwest::Method;

use crate::helpers::{assert_error, TestApp, KEY};

#[actix_web::test]
async fn a_request_without_a_key_is_401_and_with_a_wrong_key_403() {
    let app = TestApp::spawn().await;
    let url = format!("{}/api/v1/users/alice", app.address);

    let res = app.client.get(&url).send().await.unwrap();
    let body = assert_error(res, 401).await;
    assert_eq!(body["error"], "API key required");

    let res = app
        .client
        .get(&url)
        .header("X-API-Key", "nope")
        .send()
        .await
        .unwrap();
    let body = assert_error(res, 403).await;
    assert_eq!(body["error"], "Invalid API key");

    let res = app
        .client
        .get(&url)
        .header("Authorization", "Bearer nope")
        .send()
        .await
        .unwrap();
    assert_error(res, 403).await;
}

#[actix_web::test]
async fn both_key_headers_and_every_configured_key_are_accepted() {
    let app = TestApp::spawn().await;
    app.create_user("alice").await;
    let url = format!("{}/api/v1/users/alice", app.address);
    for (name, value) in [
        ("X-API-Key", KEY.to_string()),
        ("Authorization", format!("Bearer {KEY}")),
        ("X-API-Key", "test-key-2".to_string()),
    ] {
        let res = app
            .client
            .get(&url)
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{name}");
    }
}

#[actix_web::test]
async fn the_guides_api_key_secret_is_accepted_too() {
    let app = TestApp::spawn_with(vec![("API_KEY_SECRET", "guide-secret".into())]).await;
    let res = app
        .client
        .get(format!("{}/api/v1/metrics", app.address))
        .header("Authorization", "Bearer guide-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[actix_web::test]
async fn metrics_routes_need_a_key_unless_the_operator_opens_them() {
    let closed = TestApp::spawn().await;
    for path in ["/metrics", "/api/v1/metrics"] {
        let res = closed
            .client
            .get(format!("{}{path}", closed.address))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{path}");
    }
    let open = TestApp::spawn_with(vec![(
        "HEALTH_AGENT__METRICS__REQUIRE_API_KEY",
        "false".into(),
    )])
    .await;
    for path in ["/metrics", "/api/v1/metrics"] {
        let res = open
            .client
            .get(format!("{}{path}", open.address))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
    }
}

#[actix_web::test]
async fn every_response_carries_a_request_id_and_a_valid_one_is_echoed() {
    let app = TestApp::spawn().await;
    let res = app
        .request(Method::GET, "/api/health")
        .header("X-Request-ID", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers().get("x-request-id").unwrap(), "abc-123");

    let res = app
        .request(Method::GET, "/api/health")
        .header("X-Request-ID", "has spaces and\ttabs")
        .send()
        .await
        .unwrap();
    let id = res.headers().get("x-request-id").unwrap().to_str().unwrap();
    assert_ne!(id, "has spaces and\ttabs");
    assert_eq!(id.len(), 32);

    let res = app
        .client
        .get(format!("{}/nowhere", app.address))
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("x-request-id"));
}

#[actix_web::test]
async fn cors_allows_configured_origins_only() {
    let app = TestApp::spawn_with(vec![("CORS_ORIGINS", "https://app.example".into())]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, format!("{}/api/v1/users", app.address))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type, x-api-key")
            .send()
    };
    let ok = preflight("https://app.example").await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers().get("access-control-allow-origin").unwrap(),
        "https://app.example"
    );
    let denied = preflight("https://evil.example").await.unwrap();
    assert!(denied
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}
