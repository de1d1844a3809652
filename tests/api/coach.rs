//! The offline coach end to end (no key): it acts through the chat's tools
//! and answers from the user's data, in their tone and length.

use serde_json::{json, Value};

use crate::helpers::TestApp;

async fn say(app: &TestApp, user: &str, message: &str) -> String {
    say_with(app, json!({"user_id": user, "message": message})).await
}

async fn say_with(app: &TestApp, body: Value) -> String {
    let res = app.post_json("/api/v1/chat", &body).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let text = body["response"].as_str().unwrap().to_owned();
    assert!(text.starts_with("(offline mode)"), "{text}");
    text
}

async fn json_of(app: &TestApp, path: &str) -> Value {
    let res = app.get(path).await;
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

#[actix_web::test]
async fn food_from_a_sentence_is_logged_with_xp_and_said_back() {
    let app = TestApp::spawn().await;
    let reply = say(&app, "eve", "I just had 2 eggs and a slice of toast").await;
    assert!(
        reply.contains("Logged 2 eggs") && reply.contains("a slice of toast"),
        "{reply}"
    );
    let day = json_of(&app, "/api/v1/users/eve/food").await;
    let entries = day["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{day}");
    assert!(
        entries.iter().all(|e| e["nutrition_source"] == "estimated"),
        "{day}"
    );
    assert!(day["total_calories"].as_f64().unwrap() > 150.0, "{day}");
    // 5 for the chat, 10 per entry.
    assert_eq!(json_of(&app, "/api/v1/users/eve/xp").await["xp"], 25);

    let summary = say(&app, "eve", "how am I doing today?").await;
    assert!(summary.contains("from 2 entries"), "{summary}");
    let week = say(&app, "eve", "how many calories did I eat this week?").await;
    assert!(
        week.contains("This week you logged food on 1 of 7 days"),
        "{week}"
    );
}

#[actix_web::test]
async fn sentences_that_ask_for_no_tool_change_nothing() {
    let app = TestApp::spawn().await;
    for message in [
        "I had a great day",
        "What should I eat for breakfast?",
        "I love pizza",
        "eggs are healthy",
        "remind me later",
        "what's the capital of France?",
    ] {
        say(&app, "sam", message).await;
    }
    assert_eq!(app.count("SELECT count(*) FROM food_entries").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM reminders").await, 0);
    let refusal = say(&app, "sam", "what's the capital of France?").await;
    assert!(refusal.contains("can't help with that"), "{refusal}");
    let idea = say(&app, "sam", "What should I eat for breakfast?").await;
    assert!(idea.contains("For breakfast"), "{idea}");
}

#[actix_web::test]
async fn a_reminder_from_a_sentence() {
    let app = TestApp::spawn().await;
    let reply = say(&app, "rob", "remind me to drink water every day at 10:00").await;
    assert!(
        reply.contains("Drink water") && reply.contains("every day at 10:00"),
        "{reply}"
    );
    let list = json_of(&app, "/api/v1/users/rob/reminders").await;
    let r = &list["reminders"][0];
    assert_eq!(r["type"], "daily", "{list}");
    assert_eq!(r["message"], "Drink water", "{list}");
    assert_eq!(r["schedule"]["daily_time"], "10:00", "{list}");
}

#[actix_web::test]
async fn the_alice_test_and_the_pizza_test() {
    let app = TestApp::spawn().await;
    let reply = say_with(
        &app,
        json!({"user_id": "u1", "message": "What's my name?", "message_history": [
            {"role": "user", "content": "My name is Alice"},
            {"role": "assistant", "content": "Nice to meet you!"}]}),
    )
    .await;
    assert!(reply.contains("Alice"), "{reply}");

    say(&app, "u2", "I love pizza and I'm allergic to peanuts").await;
    assert_eq!(
        app.delete("/api/v1/users/u2/conversation").await.status(),
        204
    );
    let reply = say(&app, "u2", "what do you know about me?").await;
    assert!(
        reply.contains("you love pizza") && reply.contains("you are allergic to peanuts"),
        "{reply}"
    );
    assert!(
        !reply.contains("loves") && !reply.contains("you is"),
        "{reply}"
    );
    let idea = say(&app, "u2", "what should I eat as a snack?").await;
    assert!(!idea.to_lowercase().contains("peanut"), "{idea}");
}

#[actix_web::test]
async fn tone_and_brevity_change_the_wording_including_the_originals_values() {
    let app = TestApp::spawn().await;
    app.create_user("tia").await;
    let set = |pref: &'static str, value: &'static str| {
        let app = &app;
        async move {
            let res = app
                .patch_json(
                    "/api/v1/users/tia/preferences",
                    &json!({"preference": pref, "value": value}),
                )
                .await;
            assert_eq!(res.status(), 200, "{pref}={value}");
        }
    };
    let friendly = say(&app, "tia", "I ate a banana").await;
    set("tone", "formal").await;
    set("brevity", "brief").await;
    let formal = say(&app, "tia", "I ate an apple").await;
    set("tone", "casual").await;
    set("brevity", "detailed").await;
    let casual = say(&app, "tia", "I ate an orange").await;
    assert!(friendly.contains("Nice!"), "{friendly}");
    assert!(
        formal.contains("Noted.") && !formal.contains("goal"),
        "{formal}"
    );
    assert!(casual.contains("Cool, logged"), "{casual}");
    let prefs = json_of(&app, "/api/v1/users/tia/preferences").await;
    assert_eq!(prefs["tone"], "casual");
    assert_eq!(prefs["brevity"], "detailed");
}

#[actix_web::test]
async fn progress_reads_xp_level_and_streak() {
    let app = TestApp::spawn().await;
    say(&app, "lee", "I ate a banana").await;
    let reply = say(&app, "lee", "what's my xp and streak?").await;
    assert!(reply.contains("with 15 XP"), "{reply}");
    assert!(reply.contains("streak is 1 day"), "{reply}");
}
