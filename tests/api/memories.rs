//! The memories API (list, create, delete, search), supersession, the
//! embedding-model guard and retrieval quality on the labelled set.

use serde_json::{json, Value};

use crate::helpers::{assert_error, TestApp};

async fn remember(app: &TestApp, user: &str, content: &str) -> Value {
    let res = app
        .post_json(
            &format!("/api/v1/users/{user}/memories"),
            &json!({ "content": content }),
        )
        .await;
    assert_eq!(res.status(), 201, "{content}");
    res.json().await.unwrap()
}

async fn search(app: &TestApp, user: &str, q: &str, k: usize) -> Vec<Value> {
    let res = app
        .request(
            reqwest::Method::GET,
            &format!("/api/v1/users/{user}/memories/search"),
        )
        .query(&[("q", q), ("k", &k.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{q}");
    let body: Value = res.json().await.unwrap();
    body["results"].as_array().unwrap().clone()
}

async fn list(app: &TestApp, path: &str) -> Value {
    let res = app.get(path).await;
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

#[actix_web::test]
async fn memories_are_listed_created_searched_and_forgotten() {
    let app = TestApp::spawn().await;
    app.create_user("mia").await;
    let a = remember(&app, "mia", "I'm allergic to peanuts").await;
    assert!(a["id"].is_string() && a["created_at"].is_string(), "{a}");
    assert_eq!(a["content"], "I'm allergic to peanuts", "stored as given");
    let b = remember(&app, "mia", "I love pizza").await;
    let c = remember(&app, "mia", "My sister lives in Toronto").await;

    // An exact duplicate is not stored twice.
    let again = app
        .post_json(
            "/api/v1/users/mia/memories",
            &json!({"content": "I love pizza"}),
        )
        .await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], b["id"]);

    // Newest first, by cursor.
    let page = list(&app, "/api/v1/users/mia/memories?limit=2").await;
    let ids: Vec<&Value> = page["memories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["id"])
        .collect();
    assert_eq!(ids, [&c["id"], &b["id"]]);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let rest = list(
        &app,
        &format!("/api/v1/users/mia/memories?limit=2&cursor={cursor}"),
    )
    .await;
    assert_eq!(rest["memories"][0]["id"], a["id"]);
    assert_eq!(rest["memories"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());

    // Search: best first, scores falling, this user's only.
    app.create_user("other").await;
    remember(&app, "other", "I'm allergic to peanuts and shellfish").await;
    let hits = search(&app, "mia", "allergic to peanuts?", 5).await;
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0]["id"], a["id"]);
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert_eq!(search(&app, "mia", "pizza", 1).await.len(), 1);

    // Forgotten at once: search and the chat's context no longer see it.
    let path = format!("/api/v1/users/mia/memories/{}", a["id"].as_str().unwrap());
    assert_eq!(app.delete(&path).await.status(), 204);
    assert_error(app.delete(&path).await, 404).await;
    let hits = search(&app, "mia", "allergic to peanuts?", 5).await;
    assert!(hits.iter().all(|h| h["id"] != a["id"]), "{hits:?}");
    let res = app
        .post_json(
            "/api/v1/chat",
            &json!({"user_id": "mia", "message": "what am I allergic to?"}),
        )
        .await;
    let reply: Value = res.json().await.unwrap();
    assert!(
        !reply["response"].as_str().unwrap().contains("peanut"),
        "{reply}"
    );
}

#[actix_web::test]
async fn bad_input_is_a_400_naming_the_field_and_unknown_users_404() {
    let app = TestApp::spawn().await;
    app.create_user("ned").await;
    for (body, field) in [
        (json!({"content": "  "}), "content"),
        (json!({"content": "x".repeat(2001)}), "content"),
        (json!({"content": "a\u{0}b"}), "content"),
    ] {
        let e = assert_error(
            app.post_json("/api/v1/users/ned/memories", &body).await,
            400,
        )
        .await;
        assert!(
            e["detail"].as_str().unwrap_or_default().contains(field)
                || e["error"].as_str().unwrap_or_default().contains(field),
            "{e}"
        );
    }
    assert_error(
        app.post_json(
            "/api/v1/users/ned/memories",
            &json!({"content": "x", "extra": 1}),
        )
        .await,
        400,
    )
    .await;
    for path in [
        "/api/v1/users/ned/memories?limit=0",
        "/api/v1/users/ned/memories?limit=101",
        "/api/v1/users/ned/memories?cursor=abc",
        "/api/v1/users/ned/memories/search",
        "/api/v1/users/ned/memories/search?q=x&k=0",
        "/api/v1/users/ned/memories/search?q=x&k=51",
    ] {
        assert_error(app.get(path).await, 400).await;
    }
    assert_error(
        app.delete("/api/v1/users/ned/memories/not-a-number").await,
        404,
    )
    .await;
    assert_error(app.get("/api/v1/users/nobody/memories").await, 404).await;
    assert_error(
        app.get("/api/v1/users/nobody/memories/search?q=x").await,
        404,
    )
    .await;
    assert_error(
        app.post_json("/api/v1/users/nobody/memories", &json!({"content": "x"}))
            .await,
        404,
    )
    .await;
    assert_eq!(
        app.count("SELECT count(*) FROM memories").await,
        0,
        "nothing half-written"
    );
}

#[actix_web::test]
async fn an_updated_fact_replaces_the_old_one() {
    let app = TestApp::spawn().await;
    let chat = |m: &'static str| {
        let app = &app;
        async move {
            let res = app
                .post_json("/api/v1/chat", &json!({"user_id": "val", "message": m}))
                .await;
            assert_eq!(res.status(), 200);
        }
    };
    chat("I'm vegetarian").await;
    chat("I love pizza").await;
    chat("My goal weight is 80 kg").await;
    chat("I'm vegan now").await;
    chat("my goal is 70 kg now").await;
    chat("I love pizza").await;
    let all = list(&app, "/api/v1/users/val/memories").await;
    let mut contents: Vec<&str> = all["memories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    contents.sort_unstable();
    assert_eq!(
        contents,
        [
            "you are vegan",
            "you love pizza",
            "your goal weight is 70 kg"
        ]
    );
    // Through the API too: a stated diet supersedes the chat's.
    remember(&app, "val", "I eat meat again").await;
    let all = list(&app, "/api/v1/users/val/memories").await;
    let diets: Vec<&str> = all["memories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .filter(|c| c.contains("vegan") || c.contains("meat"))
        .collect();
    assert_eq!(diets, ["I eat meat again"]);
}

#[actix_web::test]
async fn the_server_refuses_memories_of_another_embedding_model() {
    let db = actors::testing::migrated_database().await;
    let hashed = TestApp::spawn_on(&db, Vec::new()).await;
    hashed.create_user("kim").await;
    remember(&hashed, "kim", "I love pizza").await;
    assert_eq!(
        hashed
            .count("SELECT count(*) FROM memories WHERE embedding_model = 'hashed-ngram-384'")
            .await,
        1
    );
    hashed.handle.stop(true).await;

    let settings = crate::helpers::settings(
        &db,
        &vec![("HEALTH_AGENT__LLM__EMBEDDING_PROVIDER", "local".into())],
    );
    let err = crate::helpers::start_error(settings).await;
    assert!(
        err.contains("hashed-ngram-384")
            && err.contains("all-MiniLM-L6-v2")
            && err.contains("memories reembed"),
        "{err}"
    );

    // The command re-embeds them, with progress, and the server starts.
    let stderr = crate::helpers::reembed(&db, "local");
    assert!(stderr.contains("re-embedded 1/1"), "{stderr}");
    let app = TestApp::spawn_on(
        &db,
        vec![("HEALTH_AGENT__LLM__EMBEDDING_PROVIDER", "local".into())],
    )
    .await;
    assert_eq!(
        search(&app, "kim", "what's my favourite dish?", 1)
            .await
            .len(),
        1
    );
}

/// (fact, question) pairs, five per user, from tests/fixtures/recall_set.tsv.
pub fn recall_set() -> Vec<(String, String)> {
    include_str!("../fixtures/recall_set.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (f, q) = l.split_once('\t').expect("fact<TAB>question");
            (f.to_owned(), q.to_owned())
        })
        .collect()
}

/// recall@5 over the labelled set through the HTTP API: each of 20 users
/// stores their 5 facts and their two neighbours' 10 as distractors, then
/// asks each of their questions.
async fn recall_at_5(app: &TestApp) -> f64 {
    let set = recall_set();
    assert_eq!(set.len(), 100);
    let users = set.len() / 5;
    for u in 0..users {
        let user = format!("r{u}");
        app.create_user(&user).await;
        for n in [u, (u + 1) % users, (u + 2) % users] {
            for (fact, _) in &set[n * 5..n * 5 + 5] {
                remember(app, &user, fact).await;
            }
        }
    }
    let mut hits = 0;
    for (i, (fact, question)) in set.iter().enumerate() {
        let found = search(app, &format!("r{}", i / 5), question, 5).await;
        if found.iter().any(|h| h["content"] == fact.as_str()) {
            hits += 1;
        } else {
            println!("missed: {question:?} → {fact:?}");
        }
    }
    hits as f64 / set.len() as f64
}

#[actix_web::test]
async fn the_local_model_finds_paraphrases_the_hashed_embedder_misses() {
    let local = TestApp::spawn_with(vec![(
        "HEALTH_AGENT__LLM__EMBEDDING_PROVIDER",
        "local".into(),
    )])
    .await;
    let hashed = TestApp::spawn().await;
    let (l, h) = (recall_at_5(&local).await, recall_at_5(&hashed).await);
    println!("recall@5 on the labelled set: local {l:.2}, hashed {h:.2}");
    assert!(l >= 0.9, "local recall@5 {l}");
    assert!(l > h, "local {l} vs hashed {h}");

    // The pizza question through the chat: the memory reaches the coach.
    let res = local
        .post_json(
            "/api/v1/chat",
            &json!({"user_id": "r0", "message": "which snacks should I avoid?"}),
        )
        .await;
    assert_eq!(res.status(), 200);
}
