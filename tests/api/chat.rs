use std::time::{Duration, Instant};

use health_agent_tools::mock_llm::{start_mock, MockOptions};
use serde_json::{json, Value};

use crate::helpers::{assert_error, mock_json, TestApp};

async fn chat(app: &TestApp, user: &str, message: &str) -> reqwest::Response {
    app.post_json(
        "/api/v1/chat",
        &json!({"user_id": user, "message": message}),
    )
    .await
}

async fn answer(app: &TestApp, user: &str, message: &str) -> String {
    let res = chat(app, user, message).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user_id"], user);
    assert!(body["timestamp"].is_string());
    body["response"].as_str().unwrap().to_owned()
}

/// A server whose language model is the in-process mock.
async fn with_mock(opts: MockOptions) -> (TestApp, String) {
    with_mock_and(opts, Vec::new()).await
}

/// The settings that make the mock at `url` the chat model.
fn mock_model(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("HEALTH_AGENT__LLM__PROVIDER", "openai_compatible".into()),
        ("HEALTH_AGENT__LLM__MODEL", "mock-model".into()),
        ("HEALTH_AGENT__LLM__BASE_URL", url.to_owned()),
    ]
}

fn quick_mock() -> MockOptions {
    MockOptions {
        latency_ms: 0,
        jitter_ms: 0,
        error_rate: 0.0,
        rate_limit_rate: 0.0,
        ..MockOptions::default()
    }
}

#[actix_web::test]
async fn offline_the_pizza_memory_survives_clearing_the_conversation() {
    // The original service's acceptance test, in offline mode.
    let app = TestApp::spawn().await;
    app.create_user("pat").await;
    let first = answer(&app, "pat", "I love pizza").await;
    assert!(first.starts_with("(offline mode)"), "{first}");

    assert_eq!(
        app.delete("/api/v1/users/pat/conversation").await.status(),
        204
    );

    let reply = answer(&app, "pat", "What's my favorite food?").await;
    assert!(reply.contains("offline mode"), "{reply}");
    assert!(reply.contains("pizza"), "{reply}");
}

#[actix_web::test]
async fn with_a_model_the_prompt_carries_the_pizza_memory_after_a_clear() {
    let (app, mock) = with_mock(quick_mock()).await;
    app.create_user("pat").await;
    answer(&app, "pat", "I love pizza").await;
    app.delete("/api/v1/users/pat/conversation").await;

    let reply = answer(&app, "pat", "What's my favorite food?").await;
    let last = mock_json(&mock, "/__mock/last").await;
    let system = last["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(system.contains("- memory: you love pizza"), "{system}");
    assert!(reply.contains("pizza"), "the mock echoes memories: {reply}");
    // The cleared history is not sent again: only this turn's user message.
    let users = last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user")
        .count();
    assert_eq!(users, 1);
}

#[actix_web::test]
async fn one_users_memories_never_reach_another_users_prompt() {
    let (app, mock) = with_mock(quick_mock()).await;
    answer(&app, "alice", "I'm allergic to peanuts").await;
    answer(&app, "bob", "What am I allergic to?").await;
    let last = mock_json(&mock, "/__mock/last").await;
    assert!(!last.to_string().contains("peanuts"), "{last}");
}

#[actix_web::test]
async fn the_first_chat_creates_the_user_and_stores_both_messages() {
    let app = TestApp::spawn().await;
    answer(&app, "newbie", "Hello coach").await;
    let db = app.db().await;
    let rows = db
        .query(
            "SELECT role, embedding IS NOT NULL FROM conversation_history WHERE user_id = 'newbie' ORDER BY \"timestamp\"",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, bool)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    // The message's vector came with the memory search; nothing reads an
    // answer's, so none is made.
    assert_eq!(
        got,
        vec![("user".into(), true), ("assistant".into(), false)]
    );
    let xp: Value = app
        .get("/api/v1/users/newbie/xp")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(xp["xp"], 5);
}

#[actix_web::test]
async fn a_chat_embeds_its_message_and_new_memories_not_the_answer() {
    // The mock makes the embeddings too, so it counts them.
    let (port, _handle) = start_mock(quick_mock()).await.expect("mock");
    let url = format!("http://127.0.0.1:{port}");
    let mut env = mock_model(&url);
    env.extend([
        (
            "HEALTH_AGENT__LLM__EMBEDDING_PROVIDER",
            "openai_compatible".into(),
        ),
        ("HEALTH_AGENT__LLM__EMBEDDING_MODEL", "mock-embedder".into()),
        ("HEALTH_AGENT__LLM__EMBEDDING_BASE_URL", url.clone()),
    ]);
    let app = TestApp::spawn_with(env).await;
    // Calls to the embeddings endpoint so far.
    let embedded = || async {
        let stats = mock_json(&url, "/__mock/stats").await;
        stats["by_endpoint"]["/v1/embeddings"]["ok"]
            .as_u64()
            .unwrap_or(0)
    };
    let before = embedded().await;
    answer(&app, "emma", "Hello coach").await;
    assert_eq!(embedded().await - before, 1, "the message, for the search");
    answer(&app, "emma", "I'm allergic to peanuts").await;
    assert_eq!(
        embedded().await - before,
        3,
        "then the message and the allergy it states"
    );
    let db = app.db().await;
    let memories = db
        .query_one("SELECT count(*) FROM memories WHERE user_id = 'emma'", &[])
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(memories, 1, "the allergy, with the vector made for it");
}

#[actix_web::test]
async fn message_history_from_the_client_replaces_the_stored_window() {
    let (app, mock) = with_mock(quick_mock()).await;
    answer(&app, "kim", "stored message one").await;
    let res = app
        .post_json(
            "/api/v1/chat",
            &json!({"user_id": "kim", "message": "now", "message_history": [
                {"role": "user", "content": "client says hi"},
                {"role": "assistant", "content": "hello from history"}]}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let last = mock_json(&mock, "/__mock/last").await;
    let text = last["messages"].to_string();
    assert!(
        text.contains("client says hi") && text.contains("hello from history"),
        "{text}"
    );
    assert!(!text.contains("stored message one"), "{text}");
}

#[actix_web::test]
async fn a_food_mention_becomes_a_log_food_tool_call_through_the_food_actor_path() {
    let (app, _mock) = with_mock(quick_mock()).await;
    app.create_user("eve").await;
    let reply = answer(&app, "eve", "I ate 2 eggs for breakfast").await;
    assert!(!reply.is_empty());
    let day: Value = app
        .get("/api/v1/users/eve/food")
        .await
        .json()
        .await
        .unwrap();
    let entries = day["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{day}");
    assert_eq!(entries[0]["nutrition_source"], "estimated");
}

#[actix_web::test]
async fn bad_chat_input_is_a_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({"user_id": "u", "message": "   "}), "message"),
        (
            json!({"user_id": "u", "message": "x".repeat(8 * 1024 + 1)}),
            "message",
        ),
        (json!({"user_id": "bad id", "message": "hi"}), "user_id"),
        (
            json!({"user_id": "u", "message": "hi", "message_history": [{"role": "wizard", "content": "x"}]}),
            "message_history[0].role",
        ),
        (
            json!({"user_id": "u", "message": "hi", "message_history": vec![json!({"role": "user", "content": "x"}); 51]}),
            "message_history",
        ),
        (
            json!({"user_id": "u", "message": "hi", "message_history": [{"role": "user", "content": ""}]}),
            "message_history[0].content",
        ),
    ];
    for (body, field) in cases {
        let res = app.post_json("/api/v1/chat", &body).await;
        let err = assert_error(res, 400).await;
        assert!(
            err["detail"].as_str().unwrap().starts_with(field),
            "{field}: {err}"
        );
    }
    let n = app.count("SELECT count(*) FROM users").await;
    assert_eq!(n, 0, "bad input creates nothing");
}

#[actix_web::test]
async fn a_failure_after_the_model_answered_stores_nothing() {
    let app = TestApp::spawn().await;
    let db = app.db().await;
    // Storing the memory will fail, after the model has answered.
    db.batch_execute("ALTER TABLE memories ADD CONSTRAINT nope CHECK (false)")
        .await
        .unwrap();
    let res = chat(&app, "zed", "I love sushi").await;
    assert!(res.status().is_client_error() || res.status().is_server_error());
    for table in ["users", "conversation_history", "memories", "xp_events"] {
        let n: i64 = db
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "{table} has rows");
    }
}

#[actix_web::test]
async fn a_model_that_is_down_gives_a_fast_503_once_its_circuit_is_open() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = TestApp::spawn_with(vec![
        ("HEALTH_AGENT__LLM__PROVIDER", "openai_compatible".into()),
        ("HEALTH_AGENT__LLM__MODEL", "m".into()),
        (
            "HEALTH_AGENT__LLM__BASE_URL",
            format!("http://127.0.0.1:{dead}"),
        ),
        ("HEALTH_AGENT__LLM__RETRY_BUDGET_MS", "200".into()),
        ("HEALTH_AGENT__LLM__CIRCUIT_FAILURES", "2".into()),
    ])
    .await;
    for _ in 0..2 {
        let res = chat(&app, "u1", "hi").await;
        assert!(
            res.status() == 503 || res.status() == 502,
            "{}",
            res.status()
        );
    }
    let started = Instant::now();
    let res = chat(&app, "u1", "hi").await;
    let took = started.elapsed();
    assert_error(res, 503).await;
    assert!(took < Duration::from_millis(100), "took {took:?}");
}

#[actix_web::test]
async fn the_stored_window_carries_each_previous_exchange_through_the_cache() {
    let (app, mock) = with_mock(quick_mock()).await;
    let last = || async { mock_json(&mock, "/__mock/last").await["messages"].to_string() };
    answer(&app, "lee", "first message").await;
    answer(&app, "lee", "second message").await;
    assert!(last().await.contains("first message"));
    // The window read (and cached) for the second chat must not be served
    // stale to the third: the second exchange has to be in it.
    answer(&app, "lee", "third message").await;
    let seen = last().await;
    assert!(
        seen.contains("second message") && seen.contains("first message"),
        "{seen}"
    );
}

/// A server whose model is the mock, with `extra` settings on top.
async fn with_mock_and(opts: MockOptions, extra: Vec<(&'static str, String)>) -> (TestApp, String) {
    let (port, _handle) = start_mock(opts).await.expect("mock");
    let url = format!("http://127.0.0.1:{port}");
    let mut env = mock_model(&url);
    env.extend(extra);
    (TestApp::spawn_with(env).await, url)
}

async fn mock_script(mock: &str, script: Value) {
    let res = reqwest::Client::new()
        .post(format!("{mock}/__mock/config"))
        .json(&json!({ "script": script }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

async fn keyed_chat(app: &TestApp, user: &str, message: &str, key: &str) -> reqwest::Response {
    app.request(reqwest::Method::POST, "/api/v1/chat")
        .header("Idempotency-Key", key)
        .json(&json!({"user_id": user, "message": message}))
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn a_chat_that_fails_after_its_tool_ran_stores_nothing_and_its_retry_stores_once() {
    let (app, mock) = with_mock_and(
        quick_mock(),
        vec![
            // Fail fast, and keep the circuit closed so each attempt reaches
            // the model again (the tool runs every time).
            ("HEALTH_AGENT__LLM__RETRY_BUDGET_MS", "0".into()),
            ("HEALTH_AGENT__LLM__CIRCUIT_FAILURES", "1000".into()),
        ],
    )
    .await;
    app.create_user("kim").await;
    for attempt in 0..3 {
        // The first round asks for log_food; every later one fails.
        let mut script = vec![json!("ok")];
        script.extend(std::iter::repeat_n(json!("error"), 40));
        mock_script(&mock, json!(script)).await;
        let res = keyed_chat(&app, "kim", "I had a banana", "banana-1").await;
        assert!(
            res.status().is_server_error(),
            "attempt {attempt}: {}",
            res.status()
        );
        mock_script(&mock, json!([])).await;
    }
    for table in [
        "food_entries",
        "xp_events",
        "conversation_history",
        "streaks",
    ] {
        let n = app.count(&format!("SELECT count(*) FROM {table}")).await;
        assert_eq!(n, 0, "{table}: a failed chat stored {n} rows");
    }
    let xp: Value = app.get("/api/v1/users/kim/xp").await.json().await.unwrap();
    assert_eq!(xp["xp"], 0, "{xp}");

    // Now the model answers: the retry runs once, and a retry after the
    // success replays the stored answer.
    let ok = keyed_chat(&app, "kim", "I had a banana", "banana-1").await;
    assert_eq!(ok.status(), 200);
    let first: Value = ok.json().await.unwrap();
    let again = keyed_chat(&app, "kim", "I had a banana", "banana-1").await;
    assert_eq!(again.status(), 200);
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(app.count("SELECT count(*) FROM food_entries").await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM conversation_history").await,
        2
    );
    // 10 for the food, 5 for the chat; the caches agree with the database.
    let xp: Value = app.get("/api/v1/users/kim/xp").await.json().await.unwrap();
    assert_eq!(xp["xp"], 15, "{xp}");
    let day: Value = app
        .get("/api/v1/users/kim/food")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(day["entries"].as_array().unwrap().len(), 1, "{day}");
    let streaks: Value = app
        .get("/api/v1/users/kim/streaks")
        .await
        .json()
        .await
        .unwrap();
    assert!(streaks.to_string().contains("\"current\":1"), "{streaks}");
}

/// `send` again while the server sheds load (503), as a client honouring
/// Retry-After would; any other answer is returned.
async fn past_overload<F, Fut>(send: F) -> reqwest::Response
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    for _ in 0..50 {
        let res = send().await;
        if res.status() != 503 {
            return res;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    send().await
}

#[actix_web::test]
async fn first_contact_chats_on_warmed_connections_never_answer_404() {
    let app = TestApp::spawn().await;
    // Warm pooled connections with the food path (it prepares the user's
    // row lock but not the first-contact INSERT), as a busy server would.
    for i in 0..8 {
        app.create_user(&format!("eater{i}")).await;
    }
    let paths: Vec<String> = (0..64)
        .map(|i| format!("/api/v1/users/eater{}/food", i % 8))
        .collect();
    let apple = json!({"description": "apple"});
    let posts = paths
        .iter()
        .map(|p| past_overload(|| app.post_json(p, &apple)));
    for res in futures_util::future::join_all(posts).await {
        assert_eq!(res.status(), 201);
    }
    let users: Vec<String> = (0..40).map(|i| format!("newcomer{i}")).collect();
    let chats = users
        .iter()
        .map(|u| past_overload(|| chat(&app, u, "Hello coach")));
    let statuses: Vec<u16> = futures_util::future::join_all(chats)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE user_id LIKE 'newcomer%'")
            .await,
        40
    );
}

#[actix_web::test]
async fn under_llm_overload_an_admitted_chat_is_never_refused_after_its_completion() {
    let (app, mock) = with_mock_and(
        MockOptions {
            latency_ms: 200,
            ..quick_mock()
        },
        vec![("HEALTH_AGENT__ACTORS__LLM__MAILBOX_CAPACITY", "4".into())],
    )
    .await;
    // 10× the capacity at once.
    let users: Vec<String> = (0..40).map(|i| format!("crowd{i}")).collect();
    let chats = users.iter().map(|u| chat(&app, u, "How am I doing?"));
    let statuses: Vec<u16> = futures_util::future::join_all(chats)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    let ok = statuses.iter().filter(|s| **s == 200).count() as u64;
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    assert!(
        ok >= 4,
        "at least one full gate of chats is served: {statuses:?}"
    );
    let stats = mock_json(&mock, "/__mock/stats").await;
    let completions = stats["by_endpoint"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(endpoint, _)| endpoint.contains("chat"))
        .flat_map(|(_, outcomes)| outcomes.as_object().unwrap().values())
        .map(|n| n.as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(
        completions, ok,
        "every completion the model made went into a 200 ({stats})"
    );
}
