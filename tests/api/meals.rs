//! Saved meals (`…/meals…`) and the original's `/api/formulas…`: totals
//! computed by us, search by keyword and by meaning, one-step logging as
//! one food-logging event (idempotent), suggestions from repeated
//! combinations, and the chat's `log_meal`.

use chrono::{Duration, SecondsFormat, Utc};
use health_agent_tools::mock_llm::{start_mock, MockOptions};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_error, TestApp};

async fn json_of(res: reqwest::Response, status: u16) -> Value {
    let s = res.status().as_u16();
    let body: Value = res.json().await.expect("JSON body");
    assert_eq!(s, status, "{body}");
    body
}

async fn get_ok(app: &TestApp, path: &str) -> Value {
    json_of(app.get(path).await, 200).await
}

fn breakfast() -> Value {
    json!({
        "name": "Usual breakfast",
        "keywords": ["porridge"],
        "foods": [
            {"description": "porridge oats", "quantity": "1 cup"},
            {"description": "banana"},
            {"description": "coffee with milk", "calories": 40, "protein_g": 2, "carbs_g": 3, "fat_g": 2}
        ]
    })
}

async fn save(app: &TestApp, user: &str, meal: &Value) -> Value {
    json_of(
        app.post_json(&format!("/api/v1/users/{user}/meals"), meal)
            .await,
        201,
    )
    .await
}

fn sum(foods: &Value, field: &str) -> f64 {
    let s: f64 = foods
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f[field].as_f64())
        .sum();
    (s * 100.0).round() / 100.0
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.011
}

#[actix_web::test]
async fn a_saved_meal_has_its_foods_estimated_and_its_totals_computed_by_us() {
    let app = TestApp::spawn().await;
    app.create_user("alice").await;
    let mut meal = breakfast();
    meal["foods"]
        .as_array_mut()
        .unwrap()
        .push(json!({"description": "grandma's mystery stew"}));
    let m = save(&app, "alice", &meal).await;
    assert_eq!(m["name"], "Usual breakfast");
    assert_eq!(m["user_id"], "alice");
    assert_eq!(m["times_used"], 0);
    assert_eq!(m["last_used_at"], Value::Null);
    assert_eq!(m["is_auto_detected"], false);
    let foods = &m["foods"];
    assert_eq!(foods[0]["nutrition_source"], "estimated", "{m}");
    assert!(foods[0]["calories"].as_f64().unwrap() > 100.0, "{m}");
    assert_eq!(foods[1]["nutrition_source"], "estimated");
    assert_eq!(foods[2]["nutrition_source"], "user");
    assert_eq!(foods[2]["calories"], 40.0);
    assert_eq!(foods[3]["nutrition_source"], "unknown");
    assert_eq!(m["unknown_foods"], 1);
    for (total, field) in [
        ("total_calories", "calories"),
        ("total_protein_g", "protein_g"),
        ("total_carbs_g", "carbs_g"),
        ("total_fat_g", "fat_g"),
    ] {
        assert!(
            close(m[total].as_f64().unwrap(), sum(foods, field)),
            "{total}: {m}"
        );
    }
    // The estimate is the one `POST …/food` makes.
    let entry = json_of(
        app.post_json(
            "/api/v1/users/alice/food",
            &json!({"description": "porridge oats", "quantity": "1 cup"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(entry["calories"], foods[0]["calories"]);

    // Read back, alone and in the list, the same.
    let id = m["id"].as_str().unwrap();
    let one = get_ok(&app, &format!("/api/v1/users/alice/meals/{id}")).await;
    assert_eq!(one, m);
    let list = get_ok(&app, "/api/v1/users/alice/meals").await;
    assert_eq!(list["meals"], json!([m]));
}

#[actix_web::test]
async fn bad_meal_input_is_a_400_naming_the_field_and_stores_nothing() {
    let app = TestApp::spawn().await;
    app.create_user("bo").await;
    let food = json!({"description": "banana"});
    let many: Vec<Value> = (0..51).map(|_| food.clone()).collect();
    for (body, field) in [
        (json!({"name": "", "foods": [food]}), "name"),
        (json!({"name": "x".repeat(201), "foods": [food]}), "name"),
        (json!({"foods": [food]}), "name"),
        (json!({"name": "m"}), "foods"),
        (json!({"name": "m", "foods": []}), "foods"),
        (json!({"name": "m", "foods": many}), "foods"),
        (
            json!({"name": "m", "foods": [food, {"description": "x", "calories": -1}]}),
            "foods[1].calories",
        ),
        (
            json!({"name": "m", "foods": [food, {"description": "x", "fat_g": 2001}]}),
            "foods[1].fat_g",
        ),
        (
            json!({"name": "m", "foods": [{"description": "  "}]}),
            "foods[0].description",
        ),
        (
            json!({"name": "m", "foods": [{"description": "x", "timestamp": "2026-06-01T08:00:00Z"}]}),
            "foods[0]",
        ),
        (
            json!({"name": "m", "foods": [food], "total_calories": 1}),
            "total_calories",
        ),
        (
            json!({"name": "m", "foods": [food], "keywords": vec!["k"; 21]}),
            "keywords",
        ),
        (
            json!({"name": "m", "foods": [food], "keywords": ["ok", ""]}),
            "keywords[1]",
        ),
        (json!({"name": "m\u{0}", "foods": [food]}), "name"),
        (json!({"from_suggestion": "abc", "foods": [food]}), "foods"),
    ] {
        let res = app.post_json("/api/v1/users/bo/meals", &body).await;
        let err = assert_error(res, 400).await;
        let detail = err["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(field), "{field}: {err}");
    }
    assert_eq!(app.count("SELECT count(*) FROM saved_meals").await, 0);

    let res = app
        .post_json("/api/v1/users/nobody/meals", &breakfast())
        .await;
    assert_eq!(assert_error(res, 404).await["error"], "user not found");
    let res = app.get("/api/v1/users/nobody/meals").await;
    assert_error(res, 404).await;
    for path in [
        "/api/v1/users/bo/meals/0b6f4c1e-8f5e-4d8a-9d67-3f1f1f9c2a10",
        "/api/v1/users/bo/meals/not-a-uuid",
    ] {
        let err = assert_error(app.get(path).await, 404).await;
        assert_eq!(err["error"], "saved meal not found");
        assert_error(app.delete(path).await, 404).await;
        assert_error(app.post_json(&format!("{path}/log"), &json!({})).await, 404).await;
    }
    let res = app
        .post_json(
            "/api/v1/users/bo/meals",
            &json!({"from_suggestion": "0000000000000000"}),
        )
        .await;
    assert_error(res, 404).await;

    // A meal of another user is not yours to read, change or log.
    let m = save(&app, "bo", &breakfast()).await;
    app.create_user("eve").await;
    let theirs = format!("/api/v1/users/eve/meals/{}", m["id"].as_str().unwrap());
    assert_error(app.get(&theirs).await, 404).await;
    assert_error(app.patch_json(&theirs, &json!({"name": "mine"})).await, 404).await;
    assert_error(
        app.post_json(&format!("{theirs}/log"), &json!({})).await,
        404,
    )
    .await;
    assert_error(app.delete(&theirs).await, 404).await;

    // Bad log input: nothing logged.
    let log = format!("/api/v1/users/bo/meals/{}/log", m["id"].as_str().unwrap());
    for (body, field) in [
        (json!({"portion": 0}), "portion"),
        (json!({"portion": 10.5}), "portion"),
        (json!({"portion": "two"}), "portion"),
        (json!({"timestamp": "yesterday"}), "timestamp"),
        (json!({"timestamp": "2020-01-01T00:00:00Z"}), "timestamp"),
        (json!({"portions": 2}), "portions"),
    ] {
        let err = assert_error(app.post_json(&log, &body).await, 400).await;
        assert!(
            err["detail"].as_str().unwrap_or_default().contains(field),
            "{field}: {err}"
        );
    }
    let res = app
        .request(Method::POST, &log)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(res, 400).await;
    assert_eq!(app.count("SELECT count(*) FROM food_entries").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM xp_events").await, 0);
}

#[actix_web::test]
async fn a_meal_is_found_by_keyword_and_by_a_paraphrase_best_first() {
    let app = TestApp::spawn().await;
    app.create_user("cy").await;
    let b = save(&app, "cy", &breakfast()).await;
    let p = save(
        &app,
        "cy",
        &json!({"name": "Friday pizza", "keywords": ["takeaway"],
                "foods": [{"description": "pepperoni pizza", "quantity": "2 slices"}, {"description": "cola"}]}),
    )
    .await;
    let search = |q: &str| format!("/api/v1/users/cy/meals/search?q={q}");

    // By a keyword, a word of the name, a food, or a word's beginning.
    for q in ["porridge", "breakfast", "banana", "break", "BANANA"] {
        let hits = get_ok(&app, &search(q)).await;
        assert_eq!(hits["meals"][0]["id"], b["id"], "{q}: {hits}");
        assert_eq!(hits["meals"][0]["keyword_match"], true, "{q}");
    }
    let hits = get_ok(&app, &search("takeaway")).await;
    assert_eq!(hits["meals"][0]["id"], p["id"], "{hits}");

    // By meaning: "my morning oats" is no keyword, name word or food of
    // the breakfast as written ("oats" is a word of a food, so with the
    // offline embedder the meaning it shares is words and word pieces).
    let hits = get_ok(&app, &search("my%20morning%20oats")).await;
    assert_eq!(hits["meals"][0]["id"], b["id"], "{hits}");
    assert!(
        hits["meals"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["id"] != p["id"]),
        "the pizza is nothing like morning oats: {hits}"
    );
    let hits = get_ok(&app, &search("zzz%20qqq")).await;
    assert_eq!(hits["meals"], json!([]), "{hits}");

    // `limit`, and another user's meals are never found.
    let hits = get_ok(&app, &format!("{}&limit=1", search("a"))).await;
    assert!(hits["meals"].as_array().unwrap().len() <= 1);
    app.create_user("dee").await;
    let hits = get_ok(&app, "/api/v1/users/dee/meals/search?q=porridge").await;
    assert_eq!(hits["meals"], json!([]));

    for bad in [
        "",
        "?q=",
        "?q=x&limit=0",
        "?q=x&limit=51",
        "?q=x&limit=many",
    ] {
        let res = app
            .get(&format!("/api/v1/users/cy/meals/search{bad}"))
            .await;
        assert_error(res, 400).await;
    }
    let res = app.get("/api/v1/users/nobody/meals/search?q=x").await;
    assert_error(res, 404).await;
}

#[actix_web::test]
async fn logging_a_meal_twice_with_one_key_and_once_without_is_two_events() {
    let app = TestApp::spawn().await;
    app.create_user("fay").await;
    let m = save(&app, "fay", &breakfast()).await;
    let other = save(
        &app,
        "fay",
        &json!({"name": "Snack", "foods": [{"description": "apple"}]}),
    )
    .await;
    let id = m["id"].as_str().unwrap();
    let log = format!("/api/v1/users/fay/meals/{id}/log");
    let keyed = || {
        app.request(Method::POST, &log)
            .header("Idempotency-Key", "breakfast-1")
            .json(&json!({}))
            .send()
    };
    let first = json_of(keyed().await.unwrap(), 201).await;
    assert_eq!(first["entries"].as_array().unwrap().len(), 3, "{first}");
    assert_eq!(first["xp_awarded"], 10);
    assert_eq!(first["times_used"], 1);
    assert_eq!(first["portion"], 1.0);
    let replay = keyed().await.unwrap();
    assert_eq!(replay.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(json_of(replay, 201).await, first);
    // Without a key (and with no body at all): a second event.
    let res = app.request(Method::POST, &log).send().await.unwrap();
    let second = json_of(res, 201).await;
    assert_eq!(second["times_used"], 2);

    assert_eq!(app.count("SELECT count(*) FROM food_entries").await, 6);
    // One event per log, not one per food.
    assert_eq!(app.count("SELECT count(*) FROM xp_events").await, 2);
    let xp = get_ok(&app, "/api/v1/users/fay/xp").await;
    assert_eq!(xp["xp"], 20, "{xp}");
    let streaks = get_ok(&app, "/api/v1/users/fay/streaks").await;
    assert!(streaks.to_string().contains("\"current\":1"), "{streaks}");

    // The day's totals: twice the meal's (read through the cache).
    let day = get_ok(&app, "/api/v1/users/fay/food").await;
    assert_eq!(day["entries"].as_array().unwrap().len(), 6);
    let meal_kcal = m["total_calories"].as_f64().unwrap();
    assert!(
        close(day["total_calories"].as_f64().unwrap(), 2.0 * meal_kcal),
        "{day}"
    );

    // Used twice, so first in the list, with when it was last used.
    let list = get_ok(&app, "/api/v1/users/fay/meals").await;
    assert_eq!(list["meals"][0]["id"], m["id"], "{list}");
    assert_eq!(list["meals"][0]["times_used"], 2);
    assert!(list["meals"][0]["last_used_at"].is_string());
    assert_eq!(list["meals"][1]["id"], other["id"]);

    // Half a portion, on a given day: every food halved, on that day.
    let at = (Utc::now() - Duration::days(2)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let half = json_of(
        app.post_json(&log, &json!({"portion": 0.5, "timestamp": at}))
            .await,
        201,
    )
    .await;
    let entries = half["entries"].as_array().unwrap();
    for (e, f) in entries.iter().zip(m["foods"].as_array().unwrap()) {
        assert!(
            close(
                e["calories"].as_f64().unwrap(),
                f["calories"].as_f64().unwrap() / 2.0
            ),
            "{e} vs {f}"
        );
        assert_eq!(e["description"], f["description"]);
        assert!(e["quantity"].as_str().unwrap().contains("×0.5"), "{e}");
    }
    let date = entries[0]["local_date"].as_str().unwrap();
    let day = get_ok(&app, &format!("/api/v1/users/fay/food?date={date}")).await;
    assert!(
        close(day["total_calories"].as_f64().unwrap(), meal_kcal / 2.0),
        "{day}"
    );
    assert_eq!(get_ok(&app, "/api/v1/users/fay/xp").await["xp"], 30);
}

#[actix_web::test]
async fn a_changed_meal_has_its_totals_recomputed_and_a_deleted_one_leaves_its_food() {
    let app = TestApp::spawn().await;
    app.create_user("gil").await;
    let m = save(&app, "gil", &breakfast()).await;
    let path = format!("/api/v1/users/gil/meals/{}", m["id"].as_str().unwrap());
    json_of(app.post_json(&format!("{path}/log"), &json!({})).await, 201).await;

    let changed = json_of(
        app.patch_json(
            &path,
            &json!({"name": "Light breakfast", "foods": [{"description": "tea", "calories": 2}]}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(changed["name"], "Light breakfast");
    assert_eq!(changed["keywords"], json!(["porridge"]));
    assert_eq!(changed["total_calories"], 2.0);
    assert_eq!(changed["times_used"], 1, "use counts stay");
    assert_eq!(get_ok(&app, &path).await, changed);
    let hits = get_ok(&app, "/api/v1/users/gil/meals/search?q=light").await;
    assert_eq!(hits["meals"][0]["id"], m["id"], "{hits}");
    let err = assert_error(app.patch_json(&path, &json!({"name": ""})).await, 400).await;
    assert!(err["detail"].as_str().unwrap().contains("name"));
    let cleared = json_of(
        app.patch_json(&path, &json!({"description": ""})).await,
        200,
    )
    .await;
    assert_eq!(cleared["description"], Value::Null);

    let res = app.delete(&path).await;
    assert_eq!(res.status(), 204);
    assert_error(app.get(&path).await, 404).await;
    assert_eq!(
        get_ok(&app, "/api/v1/users/gil/meals").await["meals"],
        json!([])
    );
    // What it logged stays logged.
    assert_eq!(app.count("SELECT count(*) FROM food_entries").await, 3);
    // Deleting the user deletes the meals.
    save(&app, "gil", &breakfast()).await;
    assert_eq!(app.delete("/api/v1/users/gil").await.status(), 204);
    assert_eq!(app.count("SELECT count(*) FROM saved_meals").await, 0);
}

/// Logs `foods` together on `days_ago` at `hour`:00 UTC.
async fn eat(app: &TestApp, user: &str, days_ago: i64, hour: u32, foods: &[&str]) {
    let day = (Utc::now() - Duration::days(days_ago)).date_naive();
    for (i, f) in foods.iter().enumerate() {
        let at = day
            .and_hms_opt(hour, i as u32, 0)
            .unwrap()
            .and_utc()
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        let res = app
            .post_json(
                &format!("/api/v1/users/{user}/food"),
                &json!({"description": f, "timestamp": at}),
            )
            .await;
        assert_eq!(res.status(), 201);
    }
}

#[actix_web::test]
async fn three_days_of_the_same_three_foods_are_suggested_and_saved_from_the_suggestion() {
    let app = TestApp::spawn().await;
    app.create_user("hal").await;
    for d in 1..=3 {
        eat(&app, "hal", d, 8, &["oats", "banana", "black coffee"]).await;
        // Eaten on the same days, but at dinner: not part of breakfast.
        eat(&app, "hal", d, 19, &["salmon"]).await;
    }
    // Must NOT be suggested: a pair only twice; a pair split across meal
    // times; one food alone; a combination repeated only before the window.
    eat(&app, "hal", 1, 13, &["rice", "beans"]).await;
    eat(&app, "hal", 2, 13, &["rice", "beans"]).await;
    for d in 4..=6 {
        eat(&app, "hal", d, 8, &["eggs"]).await;
        eat(&app, "hal", d, 20, &["toast"]).await;
        eat(&app, "hal", d, 16, &["apple"]).await;
    }
    for d in [20, 21, 22] {
        eat(&app, "hal", d, 13, &["pasta", "pesto"]).await;
    }

    let s = get_ok(&app, "/api/v1/users/hal/meals/suggestions").await;
    let all = s["suggestions"].as_array().unwrap();
    assert_eq!(all.len(), 1, "{s}");
    let sug = &all[0];
    let mut foods: Vec<&str> = sug["foods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["description"].as_str().unwrap())
        .collect();
    foods.sort();
    assert_eq!(foods, ["banana", "black coffee", "oats"]);
    assert_eq!(sug["name"], "Usual breakfast");
    assert_eq!(sug["meal_time"], "breakfast");
    assert_eq!(sug["occurrences"], 3);
    assert_eq!(sug["confidence"], 1.0);
    assert!(sug["total_calories"].as_f64().unwrap() > 0.0, "{sug}");

    // Saved from the suggestion: its foods, its name, flagged as detected.
    let saved = save(
        &app,
        "hal",
        &json!({"from_suggestion": sug["id"], "keywords": ["usual"]}),
    )
    .await;
    assert_eq!(saved["name"], "Usual breakfast");
    assert_eq!(saved["is_auto_detected"], true);
    assert_eq!(saved["confidence_score"], 1.0);
    assert_eq!(saved["foods"].as_array().unwrap().len(), 3);
    assert_eq!(saved["total_calories"], sug["total_calories"]);
    // Saved, so no longer suggested, and not saved twice.
    let s = get_ok(&app, "/api/v1/users/hal/meals/suggestions").await;
    assert_eq!(s["suggestions"], json!([]), "{s}");
    let res = app
        .post_json(
            "/api/v1/users/hal/meals",
            &json!({"from_suggestion": sug["id"]}),
        )
        .await;
    assert_error(res, 404).await;
    assert_eq!(app.count("SELECT count(*) FROM saved_meals").await, 1);

    let res = app.get("/api/v1/users/nobody/meals/suggestions").await;
    assert_error(res, 404).await;
}

#[actix_web::test]
async fn the_originals_formula_paths_drive_the_same_flow() {
    let app = TestApp::spawn().await;
    app.create_user("ivy").await;
    let created = json_of(
        app.post_json(
            "/api/formulas",
            &json!({"user_id": "ivy", "name": "Usual breakfast", "keywords": ["porridge"],
                    "foods": [{"description": "porridge oats"},
                              {"description": "shake", "calories": 200, "protein": 30, "carbs": 5, "fat": 3}]}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(created["user_id"], "ivy");
    assert_eq!(created["times_used"], 0);
    assert_eq!(created["is_auto_detected"], false);
    assert_eq!(created["confidence_score"], Value::Null);
    let macros = &created["total_macros"];
    assert!(macros["protein"].as_f64().unwrap() > 30.0, "{created}");
    assert!(macros["carbs"].is_number() && macros["fat"].is_number());
    assert!(created["total_calories"].as_f64().unwrap() > 200.0);
    let id = created["id"].as_str().unwrap();

    // The same meal through our paths.
    let ours = get_ok(&app, &format!("/api/v1/users/ivy/meals/{id}")).await;
    assert_eq!(ours["total_calories"], created["total_calories"]);
    assert_eq!(ours["total_protein_g"], macros["protein"]);

    let list = get_ok(&app, "/api/formulas?user_id=ivy").await;
    assert_eq!(list["formulas"][0]["id"], id);
    let one = get_ok(&app, &format!("/api/formulas/{id}?user_id=ivy")).await;
    assert_eq!(one, created);
    let found = get_ok(&app, "/api/formulas/search?user_id=ivy&keyword=porridge").await;
    assert_eq!(found["formulas"][0]["id"], id, "{found}");

    // PUT with the record sent back whole, renamed.
    let mut back = created.clone();
    back["name"] = json!("Big breakfast");
    back.as_object_mut().unwrap().remove("foods");
    let put = app
        .request(Method::PUT, &format!("/api/formulas/{id}?user_id=ivy"))
        .json(&back)
        .send()
        .await
        .unwrap();
    let put = json_of(put, 200).await;
    assert_eq!(put["name"], "Big breakfast");
    assert_eq!(put["total_calories"], created["total_calories"]);

    let used = json_of(
        app.post_json(&format!("/api/formulas/{id}/use?user_id=ivy"), &json!({}))
            .await,
        201,
    )
    .await;
    assert_eq!(used["formula_id"], id);
    assert_eq!(used["entries"].as_array().unwrap().len(), 2);
    assert_eq!(used["times_used"], 1);
    assert_eq!(get_ok(&app, "/api/v1/users/ivy/xp").await["xp"], 10);
    let sug = json_of(
        app.post_json("/api/formulas/suggestions?user_id=ivy", &json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(sug["suggestions"], json!([]));

    // The original's user parameter is required, and must agree.
    for res in [
        app.get("/api/formulas").await,
        app.get(&format!("/api/formulas/{id}")).await,
        app.get("/api/formulas/search?keyword=x").await,
        app.post_json(
            "/api/formulas",
            &json!({"name": "m", "foods": [{"description": "x"}]}),
        )
        .await,
        app.post_json(
            "/api/formulas?user_id=ivy",
            &json!({"user_id": "eve", "name": "m", "foods": [{"description": "x"}]}),
        )
        .await,
    ] {
        let err = assert_error(res, 400).await;
        assert!(err["detail"].as_str().unwrap().contains("user_id"), "{err}");
    }
    let err = assert_error(app.get("/api/formulas/search?user_id=ivy").await, 400).await;
    assert!(
        err["detail"].as_str().unwrap().starts_with("keyword"),
        "{err}"
    );
    assert_error(app.get("/api/formulas?user_id=nobody").await, 404).await;

    let res = app.delete(&format!("/api/formulas/{id}?user_id=ivy")).await;
    assert_eq!(res.status(), 204);
    assert_error(
        app.get(&format!("/api/formulas/{id}?user_id=ivy")).await,
        404,
    )
    .await;
}

#[actix_web::test]
async fn the_formula_paths_are_deprecated_in_the_document_and_ours_are_not() {
    let app = TestApp::spawn().await;
    let doc = get_ok(&app, "/api/openapi.json").await;
    let paths = doc["paths"].as_object().unwrap();
    let mut legacy = 0;
    for (path, item) in paths {
        for (_, op) in item.as_object().unwrap() {
            if path.starts_with("/api/formulas") {
                legacy += 1;
                assert_eq!(op["deprecated"], true, "{path}");
            } else {
                assert!(op.get("deprecated").is_none(), "{path}");
            }
        }
    }
    assert_eq!(legacy, 8);
}

#[actix_web::test]
async fn offline_i_had_my_usual_breakfast_logs_the_saved_meal() {
    let app = TestApp::spawn().await;
    app.create_user("jo").await;
    let m = save(&app, "jo", &breakfast()).await;
    let res = app
        .post_json(
            "/api/v1/chat",
            &json!({"user_id": "jo", "message": "I had my usual breakfast"}),
        )
        .await;
    let reply = json_of(res, 200).await;
    let text = reply["response"].as_str().unwrap();
    assert!(text.contains("Logged your Usual breakfast"), "{text}");
    let day = get_ok(&app, "/api/v1/users/jo/food").await;
    assert_eq!(day["entries"].as_array().unwrap().len(), 3, "{day}");
    // One food-logging event and the chat's 5.
    assert_eq!(get_ok(&app, "/api/v1/users/jo/xp").await["xp"], 15);
    let list = get_ok(&app, "/api/v1/users/jo/meals").await;
    assert_eq!(list["meals"][0]["times_used"], 1, "{list}");

    // By a keyword too; a question about it logs nothing.
    json_of(
        app.post_json(
            "/api/v1/chat",
            &json!({"user_id": "jo", "message": "just ate my porridge"}),
        )
        .await,
        200,
    )
    .await;
    json_of(
        app.post_json(
            "/api/v1/chat",
            &json!({"user_id": "jo", "message": "what is in my usual breakfast?"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM food_entries").await, 6);
    let one = get_ok(
        &app,
        &format!("/api/v1/users/jo/meals/{}", m["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(one["times_used"], 2);
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
async fn the_log_meal_tool_logs_once_and_a_failed_chat_stores_nothing() {
    let (port, _mock) = start_mock(quick_mock()).await.expect("mock");
    let mock = format!("http://127.0.0.1:{port}");
    let app = TestApp::spawn_with(vec![
        ("HEALTH_AGENT__LLM__PROVIDER", "openai_compatible".into()),
        ("HEALTH_AGENT__LLM__MODEL", "mock-model".into()),
        ("HEALTH_AGENT__LLM__BASE_URL", mock.clone()),
        ("HEALTH_AGENT__LLM__RETRY_BUDGET_MS", "0".into()),
        ("HEALTH_AGENT__LLM__CIRCUIT_FAILURES", "1000".into()),
    ])
    .await;
    app.create_user("kai").await;
    save(&app, "kai", &breakfast()).await;
    let body = json!({"user_id": "kai", "message": "I had my usual breakfast"});
    let chat = || app.post_json("/api/v1/chat", &body);

    // The tool runs, then the model fails: nothing of the meal is stored.
    let mut script = vec![json!("ok")];
    script.extend(std::iter::repeat_n(json!("error"), 40));
    let set = |script: Value| {
        reqwest::Client::new()
            .post(format!("{mock}/__mock/config"))
            .json(&json!({ "script": script }))
            .send()
    };
    assert_eq!(set(json!(script)).await.unwrap().status(), 200);
    assert!(chat().await.status().is_server_error());
    assert_eq!(set(json!([])).await.unwrap().status(), 200);
    assert_eq!(app.count("SELECT count(*) FROM food_entries").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM xp_events").await, 0);
    assert_eq!(
        app.count("SELECT sum(times_used) FROM saved_meals").await,
        0
    );

    let reply = json_of(chat().await, 200).await;
    let text = reply["response"].as_str().unwrap();
    assert!(text.contains("logged_meal"), "{text}");
    assert_eq!(app.count("SELECT count(*) FROM food_entries").await, 3);
    assert_eq!(get_ok(&app, "/api/v1/users/kai/xp").await["xp"], 15);
    let list = get_ok(&app, "/api/v1/users/kai/meals").await;
    assert_eq!(list["meals"][0]["times_used"], 1, "{list}");
    let day = get_ok(&app, "/api/v1/users/kai/food").await;
    assert_eq!(day["entries"].as_array().unwrap().len(), 3, "{day}");
}

#[actix_web::test]
async fn a_meal_embedded_by_another_model_is_found_by_keyword_only_until_reembedded() {
    let db = actors::testing::migrated_database().await;
    let hashed = TestApp::spawn_on(&db, Vec::new()).await;
    hashed.create_user("lou").await;
    let b = save(&hashed, "lou", &breakfast()).await;
    assert_eq!(
        hashed
            .count("SELECT count(*) FROM saved_meals WHERE embedding_model = 'hashed-ngram-384'")
            .await,
        1
    );
    let search = |q: &str| format!("/api/v1/users/lou/meals/search?q={q}");
    let found = |hits: &Value| {
        hits["meals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == b["id"])
    };
    // By meaning only: "breakfasts" begins no word of the meal ("breakfast").
    let by_meaning = "breakfasts";
    let hits = get_ok(&hashed, &search(by_meaning)).await;
    assert!(found(&hits), "{hits}");
    assert_eq!(hits["meals"][0]["keyword_match"], false, "{hits}");

    // Another model's vector is never compared with the query's.
    hashed
        .db()
        .await
        .execute(
            "UPDATE saved_meals SET embedding_model = 'another-model'",
            &[],
        )
        .await
        .unwrap();
    let hits = get_ok(&hashed, &search(by_meaning)).await;
    assert!(!found(&hits), "compared another model's vector: {hits}");
    let hits = get_ok(&hashed, &search("porridge")).await;
    assert!(found(&hits), "{hits}");
    assert_eq!(hits["meals"][0]["keyword_match"], true);
    hashed.handle.stop(true).await;

    // The server refuses to start on it, and `memories reembed` converts it.
    let settings = crate::helpers::settings(&db, &Vec::new());
    let err = crate::helpers::start_error(settings).await;
    assert!(
        err.contains("saved meals")
            && err.contains("another-model")
            && err.contains("memories reembed"),
        "{err}"
    );
    let stderr = crate::helpers::reembed(&db, "hashed");
    assert!(stderr.contains("re-embedded 1/1 saved meals"), "{stderr}");
    let app = TestApp::spawn_on(&db, Vec::new()).await;
    assert!(found(&get_ok(&app, &search(by_meaning)).await));
    let one = get_ok(
        &app,
        &format!("/api/v1/users/lou/meals/{}", b["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(
        one["updated_at"], b["updated_at"],
        "re-embedding is no edit"
    );
}
