use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::helpers::{assert_error, TestApp};

async fn log_food(app: &TestApp, user: &str, at: Option<DateTime<Utc>>) {
    let mut body = json!({"description": "2 eggs"});
    if let Some(at) = at {
        body["timestamp"] = json!(at.to_rfc3339_opts(SecondsFormat::Secs, true));
    }
    let res = app
        .post_json(&format!("/api/v1/users/{user}/food"), &body)
        .await;
    assert_eq!(res.status(), 201);
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    let res = app.get(path).await;
    assert_eq!(res.status(), 200, "GET {path}");
    res.json().await.unwrap()
}

fn streak<'a>(body: &'a Value, kind: &str) -> &'a Value {
    body["streaks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} streak in {body}"))
}

#[actix_web::test]
async fn a_new_user_has_no_xp_streaks_or_achievements() {
    let app = TestApp::spawn().await;
    app.create_user("new").await;
    let xp = get_json(&app, "/api/v1/users/new/xp").await;
    assert_eq!(
        xp,
        json!({"user_id": "new", "xp": 0, "level": 1, "tier": "bronze", "xp_to_next_level": 100})
    );
    let s = get_json(&app, "/api/v1/users/new/streaks").await;
    assert_eq!(s["user_id"], "new");
    assert_eq!(s["streaks"].as_array().unwrap().len(), 2);
    for kind in ["food_logging", "reminders"] {
        assert_eq!(streak(&s, kind)["current"], 0);
        assert_eq!(streak(&s, kind)["best"], 0);
    }
    let a = get_json(&app, "/api/v1/users/new/achievements").await;
    assert_eq!(a["unlocked"], json!([]));
    assert_eq!(
        a["locked"].as_array().unwrap().len(),
        domain::gamification::ACHIEVEMENTS.len()
    );
}

#[actix_web::test]
async fn logging_food_earns_10_xp_and_ten_foods_reach_level_2() {
    let app = TestApp::spawn().await;
    app.create_user("fay").await;
    log_food(&app, "fay", None).await;
    let xp = get_json(&app, "/api/v1/users/fay/xp").await;
    assert_eq!(
        xp,
        json!({"user_id": "fay", "xp": 10, "level": 1, "tier": "bronze", "xp_to_next_level": 90})
    );
    for _ in 0..9 {
        log_food(&app, "fay", None).await;
    }
    let xp = get_json(&app, "/api/v1/users/fay/xp").await;
    assert_eq!(xp["xp"], 100);
    assert_eq!(xp["level"], 2);
    assert_eq!(xp["tier"], "bronze");
    assert_eq!(xp["xp_to_next_level"], 100);
    let ledger = app.count("SELECT sum(xp)::bigint FROM xp_events WHERE user_id = 'fay' AND event_type = 'food_logged'").await;
    assert_eq!(ledger, 100);
}

#[actix_web::test]
async fn the_food_streak_counts_consecutive_local_days() {
    let app = TestApp::spawn().await;
    app.create_user("gus").await;
    log_food(&app, "gus", None).await;
    let s = get_json(&app, "/api/v1/users/gus/streaks").await;
    assert_eq!(streak(&s, "food_logging")["current"], 1);
    assert_eq!(streak(&s, "food_logging")["best"], 1);
    assert_eq!(streak(&s, "reminders")["current"], 0);

    app.create_user("hal").await;
    let now = Utc::now();
    for days_ago in [2, 1, 0] {
        log_food(&app, "hal", Some(now - Duration::days(days_ago))).await;
    }
    let s = get_json(&app, "/api/v1/users/hal/streaks").await;
    assert_eq!(streak(&s, "food_logging")["current"], 3);
    assert_eq!(streak(&s, "food_logging")["best"], 3);
}

#[actix_web::test]
async fn a_streak_whose_last_day_is_before_yesterday_reads_as_broken() {
    // The test rewrites rows behind the API's back, so no cache in between.
    let app = TestApp::spawn_with(vec![("ENABLE_CACHE", "false".into())]).await;
    app.create_user("ida").await;
    app.db()
        .await
        .batch_execute(
            r#"UPDATE users SET profile = '{"timezone":"Pacific/Tongatapu"}' WHERE user_id = 'ida'"#,
        )
        .await
        .unwrap();
    let tz = domain::time::parse_timezone("Pacific/Tongatapu").unwrap();
    let today = domain::time::local_date(Utc::now(), tz);
    let set_last = |last: NaiveDate| {
        let app = &app;
        async move {
            app.db()
                .await
                .execute(
                    "INSERT INTO streaks (user_id, streak_type, current, best, last_date)
                     VALUES ('ida', 'food_logging', 4, 6, $1)
                     ON CONFLICT (user_id, streak_type) DO UPDATE SET last_date = $1",
                    &[&last],
                )
                .await
                .unwrap();
        }
    };
    // Yesterday in the user's zone still counts: they may not have eaten yet today.
    set_last(today - Duration::days(1)).await;
    let s = get_json(&app, "/api/v1/users/ida/streaks").await;
    assert_eq!(streak(&s, "food_logging")["current"], 4);

    set_last(today - Duration::days(2)).await;
    let s = get_json(&app, "/api/v1/users/ida/streaks").await;
    assert_eq!(streak(&s, "food_logging")["current"], 0);
    assert_eq!(streak(&s, "food_logging")["best"], 6);
}

#[actix_web::test]
async fn the_first_food_unlocks_first_food_once() {
    let app = TestApp::spawn().await;
    app.create_user("jo").await;
    log_food(&app, "jo", None).await;
    log_food(&app, "jo", None).await;
    let a = get_json(&app, "/api/v1/users/jo/achievements").await;
    assert_eq!(a["user_id"], "jo");
    let unlocked = a["unlocked"].as_array().unwrap();
    assert_eq!(unlocked.len(), 1, "{a}");
    assert_eq!(unlocked[0]["id"], "first_food");
    assert_eq!(unlocked[0]["name"], "First Bite");
    assert!(unlocked[0]["description"].is_string());
    let at = unlocked[0]["unlocked_at"].as_str().unwrap();
    assert!(at.ends_with('Z'), "{at}");
    let at = DateTime::parse_from_rfc3339(at).unwrap();
    assert!((Utc::now() - at.with_timezone(&Utc)).num_minutes().abs() < 5);

    let locked: Vec<&str> = a["locked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    let others: Vec<&str> = domain::gamification::ACHIEVEMENTS
        .iter()
        .map(|d| d.id)
        .filter(|id| *id != "first_food")
        .collect();
    assert_eq!(locked, others);
    assert!(a["locked"][0].get("unlocked_at").is_none());
    assert!(a["locked"][0]["name"].is_string());

    let stored = app
        .count("SELECT count(*) FROM achievements WHERE user_id = 'jo'")
        .await;
    assert_eq!(stored, 1);
}

#[actix_web::test]
async fn gamification_reads_are_404_for_an_unknown_user_and_400_for_a_bad_id() {
    let app = TestApp::spawn().await;
    for what in ["xp", "streaks", "achievements"] {
        let err = assert_error(app.get(&format!("/api/v1/users/ghost/{what}")).await, 404).await;
        assert_eq!(err["error"], "user not found", "{what}");
        let err = assert_error(app.get(&format!("/api/v1/users/a%20b/{what}")).await, 400).await;
        assert!(
            err["detail"].as_str().unwrap().contains("user_id"),
            "{what}: {err}"
        );
    }
}
