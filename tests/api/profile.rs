use serde_json::{json, Value};

use crate::helpers::{assert_error, TestApp};

async fn patch_profile(app: &TestApp, field: &str, value: Value) -> reqwest::Response {
    app.patch_json(
        "/api/v1/users/alice/profile",
        &json!({"field": field, "value": value}),
    )
    .await
}

async fn stored_profile(app: &TestApp, user: &str) -> Value {
    app.db()
        .await
        .query_one("SELECT profile FROM users WHERE user_id = $1", &[&user])
        .await
        .unwrap()
        .get(0)
}

/// A 400 whose detail starts with `name:` and mentions `mentions`.
async fn assert_names(res: reqwest::Response, name: &str, mentions: &str) {
    let body = assert_error(res, 400).await;
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with(&format!("{name}:")) && detail.contains(mentions),
        "detail {detail:?} should name {name} and {mentions}"
    );
}

#[actix_web::test]
async fn a_new_profile_reads_with_the_default_timezone() {
    let app = TestApp::spawn().await;
    assert_eq!(app.create_user("alice").await.status(), 201);
    let res = app.get("/api/v1/users/alice/profile").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"timezone": "UTC"})
    );
    // The default is how it reads, not what is stored.
    assert_eq!(stored_profile(&app, "alice").await, json!({}));
}

#[actix_web::test]
async fn every_typed_field_accepts_good_values_and_names_itself_on_bad_ones() {
    let app = TestApp::spawn().await;
    app.create_user("alice").await;
    let good = [
        ("age", json!(34), json!(34)),
        ("age", json!("35"), json!(35)),
        ("height_cm", json!(172.5), json!(172.5)),
        ("weight_kg", json!(70), json!(70)),
        ("sex", json!("Female"), json!("female")),
        ("timezone", json!("Europe/Berlin"), json!("Europe/Berlin")),
        ("goals", json!("run a 10k"), json!("run a 10k")),
        (
            "goals",
            json!(["sleep 8h", "eat greens"]),
            json!(["sleep 8h", "eat greens"]),
        ),
    ];
    for (field, value, stored) in good {
        let res = patch_profile(&app, field, value.clone()).await;
        assert_eq!(res.status(), 200, "{field} = {value}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body[field], stored, "{field} = {value}");
        assert_eq!(stored_profile(&app, "alice").await[field], stored);
    }
    let bad = [
        ("age", json!(0)),
        ("age", json!(131)),
        ("age", json!(30.5)),
        ("age", json!("old")),
        ("height_cm", json!(29)),
        ("height_cm", json!(301)),
        ("weight_kg", json!(1.5)),
        ("weight_kg", json!(701)),
        ("weight_kg", json!(true)),
        ("sex", json!("robot")),
        ("timezone", json!("Mars/Base")),
        ("timezone", json!(3)),
        ("goals", json!("g".repeat(501))),
        ("goals", json!(vec!["g"; 21])),
        ("goals", json!({"a": "b"})),
    ];
    let before = stored_profile(&app, "alice").await;
    for (field, value) in bad {
        let res = patch_profile(&app, field, value.clone()).await;
        assert_names(res, "value", field).await;
    }
    assert_eq!(
        stored_profile(&app, "alice").await,
        before,
        "a refused value changed the profile"
    );
}

#[actix_web::test]
async fn the_timezone_read_back_is_the_one_set() {
    let app = TestApp::spawn().await;
    app.create_user("alice").await;
    patch_profile(&app, "timezone", json!("America/New_York")).await;
    let body: Value = app
        .get("/api/v1/users/alice/profile")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["timezone"], "America/New_York");
}

#[actix_web::test]
async fn unknown_fields_are_kept_as_strings_and_null_removes_a_field() {
    let app = TestApp::spawn().await;
    app.create_user("alice").await;
    patch_profile(&app, "favourite_food", json!("pho")).await;
    patch_profile(&app, "shoe_size", json!(43)).await;
    let res = patch_profile(&app, "vegan", json!(true)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"favourite_food": "pho", "shoe_size": "43", "vegan": "true", "timezone": "UTC"})
    );
    assert_names(
        patch_profile(&app, "notes", json!({"nested": 1})).await,
        "value",
        "notes",
    )
    .await;
    assert_names(
        patch_profile(&app, "notes", json!(["a"])).await,
        "value",
        "notes",
    )
    .await;

    let res = patch_profile(&app, "shoe_size", Value::Null).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(body.get("shoe_size").is_none(), "{body}");
    assert_eq!(
        stored_profile(&app, "alice").await,
        json!({"favourite_food": "pho", "vegan": "true"})
    );
    // Removing what is not there is fine.
    assert_eq!(
        patch_profile(&app, "nothing", Value::Null).await.status(),
        200
    );
}

#[actix_web::test]
async fn a_patch_bumps_updated_at() {
    let app = TestApp::spawn().await;
    app.create_user("alice").await;
    let db = app.db().await;
    db.execute(
        "UPDATE users SET updated_at = now() - interval '1 day' WHERE user_id = 'alice'",
        &[],
    )
    .await
    .unwrap();
    patch_profile(&app, "age", json!(40)).await;
    let fresh: bool = db
        .query_one(
            "SELECT updated_at > now() - interval '1 minute' FROM users WHERE user_id = 'alice'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(fresh);
}

#[actix_web::test]
async fn bad_patch_bodies_name_the_field() {
    let app = TestApp::spawn().await;
    app.create_user("alice").await;
    for name in ["Age", "", "eye-colour", &"a".repeat(65)] {
        assert_names(patch_profile(&app, name, json!("x")).await, "field", "").await;
    }
    let missing_value = app
        .patch_json("/api/v1/users/alice/profile", &json!({"field": "age"}))
        .await;
    let body = assert_error(missing_value, 400).await;
    assert!(body["detail"].as_str().unwrap().contains("value"), "{body}");
    let missing_field = app
        .patch_json("/api/v1/users/alice/profile", &json!({"value": 3}))
        .await;
    let body = assert_error(missing_field, 400).await;
    assert!(body["detail"].as_str().unwrap().contains("field"), "{body}");
    let extra = app
        .patch_json(
            "/api/v1/users/alice/profile",
            &json!({"field": "age", "value": 3, "other": 1}),
        )
        .await;
    assert_error(extra, 400).await;
    assert_eq!(stored_profile(&app, "alice").await, json!({}));
}

#[actix_web::test]
async fn creating_a_user_validates_the_profile() {
    let app = TestApp::spawn().await;
    let res = app
        .post_json(
            "/api/v1/users",
            &json!({"user_id": "bob", "profile": {"age": "29", "sex": "MALE", "city": "Oslo", "pets": 2}}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["profile"],
        json!({"age": 29, "sex": "male", "city": "Oslo", "pets": "2", "timezone": "UTC"})
    );
    assert_eq!(
        stored_profile(&app, "bob").await,
        json!({"age": 29, "sex": "male", "city": "Oslo", "pets": "2"})
    );

    for (profile, field) in [
        (json!({"age": 200}), "profile.age"),
        (json!({"timezone": "Nowhere"}), "profile.timezone"),
        (json!({"notes": {"a": 1}}), "profile.notes"),
        (json!({"city": null}), "profile.city"),
        (json!({"Bad-Name": "x"}), "profile.Bad-Name"),
    ] {
        let res = app
            .post_json(
                "/api/v1/users",
                &json!({"user_id": "carol", "profile": profile}),
            )
            .await;
        assert_names(res, field, "").await;
    }
    let n = app
        .count("SELECT count(*) FROM users WHERE user_id = 'carol'")
        .await;
    assert_eq!(n, 0, "a refused profile created the user");
}

#[actix_web::test]
async fn preferences_default_patch_and_refuse_bad_values() {
    let app = TestApp::spawn().await;
    app.create_user("alice").await;
    let prefs = "/api/v1/users/alice/preferences";
    let res = app.get(prefs).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"tone": "friendly", "brevity": "medium"})
    );

    let res = app
        .patch_json(prefs, &json!({"preference": "tone", "value": "Direct"}))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"tone": "direct", "brevity": "medium"})
    );
    for b in ["short", "medium", "long"] {
        let res = app
            .patch_json(prefs, &json!({"preference": "brevity", "value": b}))
            .await;
        assert_eq!(res.json::<Value>().await.unwrap()["brevity"], b);
    }
    let res = app
        .patch_json(prefs, &json!({"preference": "language", "value": "de"}))
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["language"], "de");
    let res = app
        .patch_json(prefs, &json!({"preference": "emoji", "value": false}))
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["emoji"], "false");

    for (name, value) in [
        ("tone", json!("sarcastic")),
        ("tone", json!(1)),
        ("brevity", json!("epic")),
        ("language", json!({"a": 1})),
    ] {
        let res = app
            .patch_json(prefs, &json!({"preference": name, "value": value}))
            .await;
        assert_names(res, "value", name).await;
    }
    let res = app
        .patch_json(prefs, &json!({"preference": "Tone!", "value": "direct"}))
        .await;
    assert_names(res, "preference", "").await;

    // Null restores the default.
    let res = app
        .patch_json(prefs, &json!({"preference": "tone", "value": null}))
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["tone"], "friendly");
    let stored: Value = app
        .db()
        .await
        .query_one("SELECT preferences FROM users WHERE user_id = 'alice'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        stored,
        json!({"brevity": "long", "language": "de", "emoji": "false"})
    );
    let user: Value = app.get("/api/v1/users/alice").await.json().await.unwrap();
    assert_eq!(user["preferences"]["brevity"], "long");
    assert_eq!(user["preferences"]["tone"], "friendly");
}

#[actix_web::test]
async fn clearing_the_conversation_keeps_profile_preferences_and_memories() {
    let app = TestApp::spawn().await;
    app.create_user("alice").await;
    app.create_user("bob").await;
    patch_profile(&app, "age", json!(30)).await;
    app.patch_json(
        "/api/v1/users/alice/preferences",
        &json!({"preference": "tone", "value": "direct"}),
    )
    .await;
    let db = app.db().await;
    db.batch_execute(
        "INSERT INTO conversation_history (user_id, role, content, embedding) VALUES
             ('alice', 'user', 'hi', array_fill(0.1::real, ARRAY[384])::vector),
             ('alice', 'assistant', 'hello', array_fill(0.1::real, ARRAY[384])::vector),
             ('bob', 'user', 'hey', array_fill(0.1::real, ARRAY[384])::vector);
         INSERT INTO memories (user_id, content, embedding) VALUES
             ('alice', 'allergic to peanuts', array_fill(0.1::real, ARRAY[384])::vector);",
    )
    .await
    .unwrap();

    assert_eq!(
        app.delete("/api/v1/users/alice/conversation")
            .await
            .status(),
        204
    );

    let count = |sql: &'static str| {
        let db = &db;
        async move { db.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(
        count("SELECT count(*) FROM conversation_history WHERE user_id = 'alice'").await,
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM conversation_history WHERE user_id = 'bob'").await,
        1,
        "another user's history must stay"
    );
    assert_eq!(
        count("SELECT count(*) FROM memories WHERE user_id = 'alice'").await,
        1
    );
    let user: Value = app.get("/api/v1/users/alice").await.json().await.unwrap();
    assert_eq!(user["profile"]["age"], 30);
    assert_eq!(user["preferences"]["tone"], "direct");
    // Clearing an empty history is fine too.
    assert_eq!(
        app.delete("/api/v1/users/alice/conversation")
            .await
            .status(),
        204
    );
}

#[actix_web::test]
async fn unknown_users_are_404_and_bad_ids_400() {
    let app = TestApp::spawn().await;
    assert_error(app.get("/api/v1/users/ghost/profile").await, 404).await;
    assert_error(app.get("/api/v1/users/ghost/preferences").await, 404).await;
    assert_error(
        app.patch_json(
            "/api/v1/users/ghost/profile",
            &json!({"field": "age", "value": 30}),
        )
        .await,
        404,
    )
    .await;
    assert_error(
        app.patch_json(
            "/api/v1/users/ghost/preferences",
            &json!({"preference": "tone", "value": "direct"}),
        )
        .await,
        404,
    )
    .await;
    assert_error(app.delete("/api/v1/users/ghost/conversation").await, 404).await;
    let n = app.count("SELECT count(*) FROM users").await;
    assert_eq!(n, 0, "a PATCH must not create a user");

    let bad = "/api/v1/users/a%20b/profile";
    assert_names(app.get(bad).await, "user_id", "").await;
}

#[actix_web::test]
async fn a_failed_write_leaves_profile_and_history_as_they_were() {
    let app = TestApp::spawn().await;
    app.create_user("alice").await;
    patch_profile(&app, "age", json!(30)).await;
    let db = app.db().await;
    db.batch_execute(
        "INSERT INTO conversation_history (user_id, role, content, embedding) VALUES
             ('alice', 'user', 'one', array_fill(0.1::real, ARRAY[384])::vector),
             ('alice', 'user', 'two', array_fill(0.1::real, ARRAY[384])::vector);
         -- Fails on the second row: the first must not stay deleted.
         CREATE FUNCTION fail_on_two() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN IF OLD.content = 'two' THEN RAISE EXCEPTION 'boom'; END IF; RETURN OLD; END $$;
         CREATE TRIGGER fail_on_two BEFORE DELETE ON conversation_history
             FOR EACH ROW EXECUTE FUNCTION fail_on_two();
         CREATE FUNCTION fail_update() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN RAISE EXCEPTION 'boom'; END $$;
         CREATE TRIGGER fail_update BEFORE UPDATE ON users
             FOR EACH ROW EXECUTE FUNCTION fail_update();",
    )
    .await
    .unwrap();

    assert_error(app.delete("/api/v1/users/alice/conversation").await, 500).await;
    let n: i64 = db
        .query_one(
            "SELECT count(*) FROM conversation_history WHERE user_id = 'alice'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);

    assert_error(patch_profile(&app, "age", json!(31)).await, 500).await;
    assert_eq!(stored_profile(&app, "alice").await, json!({"age": 30}));
}
