use reqwest::Method;
use serde_json::json;

use crate::helpers::{assert_error, TestApp};

#[actix_web::test]
async fn malformed_json_is_a_400_that_says_what_is_wrong() {
    let app = TestApp::spawn().await;
    let res = app
        .request(Method::POST, "/api/v1/users")
        .header("Content-Type", "application/json")
        .body("{\"user_id\": ")
        .send()
        .await
        .unwrap();
    let body = assert_error(res, 400).await;
    assert_eq!(body["error"], "malformed JSON");
}

#[actix_web::test]
async fn a_missing_or_ill_typed_field_is_a_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let body = assert_error(app.post_json("/api/v1/users", &json!({})).await, 400).await;
    assert!(
        body["detail"].as_str().unwrap().contains("user_id"),
        "{body}"
    );

    let body = assert_error(
        app.post_json("/api/v1/users", &json!({"user_id": 42}))
            .await,
        400,
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("invalid type"),
        "{body}"
    );

    let body = assert_error(
        app.post_json("/api/v1/users", &json!({"user_id": "no spaces please"}))
            .await,
        400,
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().starts_with("user_id"),
        "{body}"
    );
}

#[actix_web::test]
async fn a_body_that_is_not_json_is_415() {
    let app = TestApp::spawn().await;
    let res = app
        .request(Method::POST, "/api/v1/users")
        .header("Content-Type", "text/plain")
        .body("user_id=alice")
        .send()
        .await
        .unwrap();
    assert_error(res, 415).await;
}

#[actix_web::test]
async fn a_body_over_the_limit_is_413_and_nothing_is_written() {
    let app =
        TestApp::spawn_with(vec![("HEALTH_AGENT__API__BODY_LIMIT_BYTES", "2048".into())]).await;
    let big = "x".repeat(4096);
    let res = app
        .post_json(
            "/api/v1/users",
            &json!({"user_id": "big", "profile": {"notes": big}}),
        )
        .await;
    assert_error(res, 413).await;
    let count = app.count("SELECT count(*) FROM users").await;
    assert_eq!(count, 0);
}

#[actix_web::test]
async fn an_unknown_route_is_a_json_404() {
    let app = TestApp::spawn().await;
    let body = assert_error(app.get("/api/v1/nothing-here").await, 404).await;
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("/api/v1/nothing-here"));
}
