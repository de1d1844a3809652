use reqwest::{Method, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{assert_error, TestApp, KEY};

const USERS: &str = "/api/v1/users";

/// POSTs `body` (exact bytes) with an Idempotency-Key, as `api_key`.
async fn post_keyed(app: &TestApp, path: &str, body: &str, key: &str, api_key: &str) -> Response {
    app.client
        .request(Method::POST, format!("{}{}", app.address, path))
        .header("X-API-Key", api_key)
        .header("Content-Type", "application/json")
        .header("Idempotency-Key", key)
        .body(body.to_owned())
        .send()
        .await
        .expect("POST")
}

async fn post(app: &TestApp, path: &str, body: &str, key: &str) -> Response {
    post_keyed(app, path, body, key, KEY).await
}

fn replayed(res: &Response) -> bool {
    res.headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.db().await.query_one(sql, &[]).await.unwrap().get(0)
}

fn sha256(parts: &[&[u8]]) -> Vec<u8> {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().to_vec()
}

#[actix_web::test]
async fn a_retry_with_the_same_key_replays_the_first_response() {
    let app = TestApp::spawn().await;
    let body = r#"{"user_id":"alice","profile":{"age":30}}"#;
    let first = post(&app, USERS, body, "k-1").await;
    assert_eq!(first.status(), 201);
    assert!(!replayed(&first));
    let first: Value = first.json().await.unwrap();

    let second = post(&app, USERS, body, "k-1").await;
    assert_eq!(second.status(), 201);
    assert!(replayed(&second), "no Idempotent-Replayed header");
    assert!(second.headers().contains_key("x-request-id"));
    assert_eq!(second.json::<Value>().await.unwrap(), first);

    assert_eq!(
        count(&app, "SELECT count(*) FROM users WHERE user_id = 'alice'").await,
        1
    );
    let row = app
        .db()
        .await
        .query_one(
            "SELECT api_key_hash, user_id, status, response_body FROM idempotency_keys WHERE key = 'k-1'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Vec<u8>>(0), sha256(&[KEY.as_bytes()]));
    assert_eq!(row.get::<_, String>(1), "alice");
    assert_eq!(row.get::<_, Option<i16>>(2), Some(201));
    assert_eq!(row.get::<_, Option<Value>>(3), Some(first));
}

#[actix_web::test]
async fn the_same_key_with_a_different_body_is_422() {
    let app = TestApp::spawn().await;
    assert_eq!(
        post(&app, USERS, r#"{"user_id":"alice"}"#, "k-1")
            .await
            .status(),
        201
    );
    let res = post(
        &app,
        USERS,
        r#"{"user_id":"alice","profile":{"age":31}}"#,
        "k-1",
    )
    .await;
    let body = assert_error(res, 422).await;
    assert_eq!(
        body["error"],
        "Idempotency-Key reused with a different request"
    );
    let stored: Value = app
        .db()
        .await
        .query_one("SELECT profile FROM users WHERE user_id = 'alice'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, json!({}), "the second request ran");
}

#[actix_web::test]
async fn keys_are_scoped_by_api_key() {
    let app = TestApp::spawn().await;
    let body = r#"{"user_id":"alice"}"#;
    assert_eq!(post(&app, USERS, body, "k-1").await.status(), 201);
    // Another caller's identical key is a different key: the request runs
    // and finds the user taken.
    let res = post_keyed(&app, USERS, body, "k-1", "test-key-2").await;
    assert!(!replayed(&res));
    assert_error(res, 409).await;
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM idempotency_keys WHERE key = 'k-1'"
        )
        .await,
        2
    );
}

#[actix_web::test]
async fn keys_are_scoped_by_user() {
    let app = TestApp::spawn().await;
    let alice = post(&app, USERS, r#"{"user_id":"alice"}"#, "k-1").await;
    assert_eq!(alice.status(), 201);
    // A different user with the same key is not a reuse: it would be a 422
    // if the user were not part of the scope.
    let bob = post(&app, USERS, r#"{"user_id":"bob"}"#, "k-1").await;
    assert_eq!(bob.status(), 201);
    assert!(!replayed(&bob));
    assert_eq!(count(&app, "SELECT count(*) FROM users").await, 2);
}

#[actix_web::test]
async fn a_4xx_is_replayed_as_the_same_4xx() {
    let app = TestApp::spawn().await;
    let body = r#"{"user_id":"a b"}"#;
    let first = post(&app, USERS, body, "bad-1").await;
    assert!(!replayed(&first));
    let first = assert_error(first, 400).await;
    assert!(first["detail"].as_str().unwrap().starts_with("user_id:"));

    let second = post(&app, USERS, body, "bad-1").await;
    assert!(replayed(&second));
    // The same timestamp shows it is the stored response, not a new one.
    assert_eq!(assert_error(second, 400).await, first);

    let malformed = post(&app, USERS, "{not json", "bad-2").await;
    let malformed = assert_error(malformed, 400).await;
    let again = post(&app, USERS, "{not json", "bad-2").await;
    assert!(replayed(&again));
    assert_eq!(assert_error(again, 400).await, malformed);
    assert_eq!(count(&app, "SELECT count(*) FROM users").await, 0);
}

#[actix_web::test]
async fn without_the_header_nothing_changes() {
    let app = TestApp::spawn().await;
    let res = app.create_user("alice").await;
    assert_eq!(res.status(), 201);
    assert!(!replayed(&res));
    assert_error(app.create_user("alice").await, 409).await;
    assert_eq!(
        count(&app, "SELECT count(*) FROM idempotency_keys").await,
        0
    );
}

#[actix_web::test]
async fn a_malformed_key_is_400_and_nothing_runs() {
    let app = TestApp::spawn().await;
    let body = r#"{"user_id":"alice"}"#;
    for key in ["k".repeat(256), "a b".to_owned(), String::new()] {
        let res = post(&app, USERS, body, &key).await;
        let err = assert_error(res, 400).await;
        assert!(
            err["detail"]
                .as_str()
                .unwrap()
                .starts_with("Idempotency-Key:"),
            "{err}"
        );
    }
    assert_eq!(count(&app, "SELECT count(*) FROM users").await, 0);
    assert_eq!(
        count(&app, "SELECT count(*) FROM idempotency_keys").await,
        0
    );
    // 255 characters is fine.
    let res = post(&app, USERS, body, &"k".repeat(255)).await;
    assert_eq!(res.status(), 201);
}

#[actix_web::test]
async fn a_key_in_progress_is_409_until_its_claim_goes_stale() {
    let app = TestApp::spawn().await;
    let body = r#"{"user_id":"alice"}"#;
    let hash = sha256(&[b"POST\n", USERS.as_bytes(), b"\n", body.as_bytes()]);
    let db = app.db().await;
    // Another instance holds the key and has not answered yet.
    db.execute(
        "INSERT INTO idempotency_keys (api_key_hash, user_id, key, request_hash)
         VALUES ($1, 'alice', 'k-1', $2)",
        &[&sha256(&[KEY.as_bytes()]), &hash],
    )
    .await
    .unwrap();

    let res = post(&app, USERS, body, "k-1").await;
    assert_eq!(res.headers().get("retry-after").unwrap(), "1");
    assert_error(res, 409).await;
    assert_eq!(count(&app, "SELECT count(*) FROM users").await, 0);

    // That instance died: after 60 s the retry takes the key over and runs.
    db.execute(
        "UPDATE idempotency_keys SET created_at = now() - interval '61 seconds'",
        &[],
    )
    .await
    .unwrap();
    let res = post(&app, USERS, body, "k-1").await;
    assert_eq!(res.status(), 201);
    assert!(!replayed(&res));
    let status: Option<i16> = db
        .query_one("SELECT status FROM idempotency_keys", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, Some(201));
}

#[actix_web::test]
async fn a_key_older_than_24_hours_counts_as_new() {
    let app = TestApp::spawn().await;
    assert_eq!(
        post(&app, USERS, r#"{"user_id":"alice"}"#, "k-1")
            .await
            .status(),
        201
    );
    let db = app.db().await;
    db.execute(
        "UPDATE idempotency_keys SET created_at = now() - interval '25 hours'",
        &[],
    )
    .await
    .unwrap();
    // A different request would be a 422 within 24 h; now it simply runs.
    let res = post(&app, USERS, r#"{"user_id":"alice","profile":{}}"#, "k-1").await;
    assert!(!replayed(&res));
    assert_error(res, 409).await;
    let fresh: bool = db
        .query_one(
            "SELECT created_at > now() - interval '1 minute' AND status = 409 FROM idempotency_keys",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(fresh, "the expired row was not overwritten");
}

#[actix_web::test]
async fn a_5xx_releases_the_key_so_the_retry_runs() {
    let app = TestApp::spawn().await;
    let db = app.db().await;
    // An unexpected database error: the handler answers 500.
    db.batch_execute(
        "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN RAISE EXCEPTION 'boom'; END $$;
         CREATE TRIGGER boom BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION boom();",
    )
    .await
    .unwrap();
    let body = r#"{"user_id":"alice"}"#;
    assert_error(post(&app, USERS, body, "k-1").await, 500).await;
    assert_eq!(
        count(&app, "SELECT count(*) FROM idempotency_keys").await,
        0
    );

    db.batch_execute("DROP TRIGGER boom ON users")
        .await
        .unwrap();
    let res = post(&app, USERS, body, "k-1").await;
    assert_eq!(res.status(), 201);
    assert!(!replayed(&res));
}

#[actix_web::test]
async fn concurrent_retries_run_the_request_once() {
    let app = TestApp::spawn().await;
    let body = r#"{"user_id":"alice"}"#;
    let all = futures_util::future::join_all((0..6).map(|_| post(&app, USERS, body, "k-1"))).await;
    let mut ran = 0;
    for res in all {
        match res.status().as_u16() {
            201 if !replayed(&res) => ran += 1,
            201 => {}
            409 => assert_eq!(res.headers().get("retry-after").unwrap(), "1"),
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ran, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM users").await, 1);
}

#[actix_web::test]
async fn a_retried_food_log_awards_xp_once() {
    let app = TestApp::spawn().await;
    app.create_user("alice").await;
    let path = "/api/v1/users/alice/food";
    let body = r#"{"description":"apple","calories":95}"#;
    let first = post(&app, path, body, "food-1").await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let second = post(&app, path, body, "food-1").await;
    assert_eq!(second.status(), 201);
    assert!(replayed(&second));
    assert_eq!(second.json::<Value>().await.unwrap(), first);

    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM food_entries WHERE user_id = 'alice'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT COALESCE(sum(xp), 0) FROM xp_events WHERE user_id = 'alice'"
        )
        .await,
        10
    );
    // The user's scope comes from the path: the row says so.
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM idempotency_keys WHERE key = 'food-1' AND user_id = 'alice'"
        )
        .await,
        1
    );
}

/// Found by the chaos suite (loadtest/chaos, PostgreSQL SIGINT under load): a
/// write committed and answered 201, but storing its response failed, so
/// the claim stayed pending; 60 s later it went stale and a retry with the
/// same key logged the food a second time. A failed completion is retried in
/// the background until it is stored.
#[actix_web::test]
async fn a_response_that_could_not_be_stored_at_first_is_still_replayed() {
    let app = TestApp::spawn().await;
    assert_eq!(app.create_user("dana").await.status(), 201);
    // Completions fail (as if the database went away right after the write
    // committed) until chaos_failed has a row.
    app.db()
        .await
        .batch_execute(
            "CREATE TABLE chaos_failed (n int);
             CREATE FUNCTION fail_first_completion() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF NOT EXISTS (SELECT 1 FROM chaos_failed) THEN
                 RAISE EXCEPTION 'injected: completion lost';
               END IF;
               RETURN NEW;
             END $$;
             CREATE TRIGGER fail_first_completion BEFORE UPDATE ON idempotency_keys
               FOR EACH ROW WHEN (OLD.status IS NULL AND NEW.status IS NOT NULL)
               EXECUTE FUNCTION fail_first_completion();",
        )
        .await
        .unwrap();
    let path = "/api/v1/users/dana/food";
    let body = r#"{"description":"one apple","calories":95}"#;
    let first = post(&app, path, body, "k-lost").await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    // The database is back.
    app.db()
        .await
        .batch_execute("INSERT INTO chaos_failed VALUES (1)")
        .await
        .unwrap();

    let stored = "SELECT count(*) FROM idempotency_keys WHERE key = 'k-lost' AND status = 201";
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while count(&app, stored).await == 0 && std::time::Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Past the stale-claim window, the retry must replay, not run again.
    app.db()
        .await
        .batch_execute("UPDATE idempotency_keys SET created_at = now() - interval '61 seconds'")
        .await
        .unwrap();
    let retry = post(&app, path, body, "k-lost").await;
    assert_eq!(retry.status(), 201);
    assert!(replayed(&retry), "the retry ran the write again");
    assert_eq!(retry.json::<Value>().await.unwrap()["id"], first["id"]);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM food_entries WHERE user_id = 'dana'"
        )
        .await,
        1
    );
}

#[actix_web::test]
async fn expired_keys_are_purged_in_the_background_and_fresh_ones_stay() {
    let app = crate::helpers::TestApp::spawn_with(vec![
        ("HEALTH_AGENT__HOUSEKEEPING__INTERVAL_MS", "1000".into()),
        ("HEALTH_AGENT__HOUSEKEEPING__PURGE_BATCH", "3".into()),
    ])
    .await;
    let (db, conn) = tokio_postgres::connect(&app.db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    actix_web::rt::spawn(conn);
    // 10 expired (several batches) and 2 inside their window.
    db.execute(
        "INSERT INTO idempotency_keys (api_key_hash, user_id, key, request_hash, status, created_at)
         SELECT '\\x00'::bytea, 'u', 'old' || i, '\\x00'::bytea, 200,
                now() - interval '25 hours'
           FROM generate_series(1, 10) i
         UNION ALL
         SELECT '\\x00'::bytea, 'u', 'new' || i, '\\x00'::bytea, 200, now() - interval '23 hours'
           FROM generate_series(1, 2) i",
        &[],
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let left: i64 = db
            .query_one(
                "SELECT count(*) FROM idempotency_keys WHERE key LIKE 'old%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{left} expired keys left"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let fresh: i64 = db
        .query_one(
            "SELECT count(*) FROM idempotency_keys WHERE key LIKE 'new%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(fresh, 2);
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.lines().any(
            |l| l.starts_with("health_agent_idempotency_keys_purged_total") && l.ends_with(" 10")
        ),
        "purge counted"
    );
}
