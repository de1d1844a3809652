use serde_json::json;

use crate::helpers::{assert_error, TestApp};

#[actix_web::test]
async fn a_user_is_created_read_and_a_duplicate_is_409() {
    let app = TestApp::spawn().await;
    let res = app
        .post_json(
            "/api/v1/users",
            &json!({"user_id": "alice", "profile": {"age": 30}}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["user_id"], "alice");
    assert_eq!(body["preferences"]["tone"], "friendly");

    let got: serde_json::Value = app.get("/api/v1/users/alice").await.json().await.unwrap();
    assert_eq!(got["profile"]["age"], 30);

    assert_error(app.create_user("alice").await, 409).await;
}

#[actix_web::test]
async fn an_unknown_user_is_404() {
    let app = TestApp::spawn().await;
    assert_error(app.get("/api/v1/users/ghost").await, 404).await;
    assert_error(app.delete("/api/v1/users/ghost").await, 404).await;
}

#[actix_web::test]
async fn deleting_a_user_removes_every_row_of_theirs() {
    let app = TestApp::spawn().await;
    app.create_user("bob").await;
    app.create_user("carol").await;
    let db = app.db().await;
    db.batch_execute(
        "INSERT INTO food_entries (user_id, description, nutrition_source, logged_at, local_date)
             VALUES ('bob', 'apple', 'unknown', now(), current_date),
                    ('carol', 'pear', 'unknown', now(), current_date);
         INSERT INTO xp_events (user_id, event_type, xp, source_key, local_date) VALUES ('bob', 'food_logged', 10, 'k1', current_date);",
    )
    .await
    .unwrap();

    assert_eq!(app.delete("/api/v1/users/bob").await.status(), 204);

    for table in ["users", "food_entries", "xp_events"] {
        let n: i64 = db
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE user_id = 'bob'"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "{table} still has bob's rows");
    }
    let carol: i64 = db
        .query_one(
            "SELECT count(*) FROM food_entries WHERE user_id = 'carol'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(carol, 1, "another user's rows must stay");
}
