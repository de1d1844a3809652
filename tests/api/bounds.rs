//! Bounded inputs (issue 14): quantities, profile growth, dates, deleting a
//! wrong food entry.

use serde_json::{json, Value};

use crate::helpers::{assert_error, TestApp};

async fn food_count(app: &TestApp) -> i64 {
    app.count("SELECT count(*) FROM food_entries").await
}

#[actix_web::test]
async fn absurd_quantities_are_a_400_naming_the_field_and_store_nothing() {
    let app = TestApp::spawn().await;
    app.create_user("q").await;
    let huge96 = "9".repeat(96);
    let huge305 = format!("1{}", "0".repeat(304));
    for (body, field) in [
        (
            json!({"description": "banana", "quantity": huge96}),
            "quantity",
        ),
        (
            json!({"description": "banana", "quantity": format!("{huge305} g")}),
            "quantity",
        ),
        (
            json!({"description": "banana", "quantity": "6 kg"}),
            "quantity",
        ),
        (
            json!({"description": format!("{huge305} bananas")}),
            "description",
        ),
        (
            json!({"description": "butter", "quantity": "4 kg"}),
            "quantity",
        ),
    ] {
        let res = app.post_json("/api/v1/users/q/food", &body).await;
        let err = assert_error(res, 400).await;
        assert!(
            err["detail"].as_str().unwrap().starts_with(field),
            "{body} → {err}"
        );
    }
    assert_eq!(food_count(&app).await, 0);
    // A plausible amount still estimates.
    let res = app
        .post_json(
            "/api/v1/users/q/food",
            &json!({"description": "banana", "quantity": "2 kg"}),
        )
        .await;
    assert_eq!(res.status(), 201);
}

#[actix_web::test]
async fn the_database_refuses_non_finite_nutrition() {
    let app = TestApp::spawn().await;
    app.create_user("inf").await;
    let (db, conn) = tokio_postgres::connect(&app.db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    actix_web::rt::spawn(conn);
    for column in ["calories", "grams", "protein_g"] {
        let sql = format!(
            "INSERT INTO food_entries (user_id, description, {column}, nutrition_source, logged_at, local_date)
             VALUES ('inf', 'x', 'Infinity', 'estimated', now(), current_date)"
        );
        let err = db.execute(&sql, &[]).await.unwrap_err();
        assert!(
            format!("{err:?}").contains("food_entries_finite_nutrition"),
            "{column}: {err:?}"
        );
        let nan = sql.replace("'Infinity'", "'NaN'");
        assert!(db.execute(&nan, &[]).await.is_err(), "{column} NaN");
    }
}

#[actix_web::test]
async fn a_wrong_entry_can_be_deleted_and_the_day_and_xp_follow() {
    let app = TestApp::spawn().await;
    app.create_user("del").await;
    let today = chrono::Utc::now().date_naive().to_string();
    let day_url = format!("/api/v1/users/del/food?date={today}");
    // Empty day: 0, never -0.0.
    let text = app.get(&day_url).await.text().await.unwrap();
    assert!(!text.contains(":-0"), "{text}");

    let res = app
        .post_json(
            "/api/v1/users/del/food",
            &json!({"description": "x", "calories": 500}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let entry: Value = res.json().await.unwrap();
    let id = entry["id"].as_str().unwrap();
    // Read once so the day and XP are cached before the delete.
    let day: Value = app.get(&day_url).await.json().await.unwrap();
    assert_eq!(day["total_calories"], 500.0);
    let xp: Value = app.get("/api/v1/users/del/xp").await.json().await.unwrap();
    assert_eq!(xp["xp"], 10);

    let res = app.delete(&format!("/api/v1/users/del/food/{id}")).await;
    assert_eq!(res.status(), 204);
    let text = app.get(&day_url).await.text().await.unwrap();
    let day: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(day["entries"], json!([]));
    assert!(!text.contains(":-0"), "{text}");
    let xp: Value = app.get("/api/v1/users/del/xp").await.json().await.unwrap();
    assert_eq!(xp["xp"], 0, "the entry's XP is taken back");

    assert_error(
        app.delete(&format!("/api/v1/users/del/food/{id}")).await,
        404,
    )
    .await;
    assert_error(app.delete("/api/v1/users/del/food/not-a-uuid").await, 404).await;
    assert_error(
        app.delete(&format!("/api/v1/users/ghost/food/{id}")).await,
        404,
    )
    .await;
    // Another user's entry is not this user's to delete.
    app.create_user("other").await;
    let res = app
        .post_json(
            "/api/v1/users/other/food",
            &json!({"description": "x", "calories": 1}),
        )
        .await;
    let theirs: Value = res.json().await.unwrap();
    let res = app
        .delete(&format!(
            "/api/v1/users/del/food/{}",
            theirs["id"].as_str().unwrap()
        ))
        .await;
    assert_error(res, 404).await;
    assert_eq!(food_count(&app).await, 1);
}

#[actix_web::test]
async fn dates_outside_1900_to_2100_are_a_400() {
    let app = TestApp::spawn().await;
    app.create_user("d").await;
    for bad in [
        "-001-01-01",
        "0000-01-01",
        "1899-12-31",
        "2101-01-01",
        "+10000-01-01",
    ] {
        let res = app.get(&format!("/api/v1/users/d/food?date={bad}")).await;
        let err = assert_error(res, 400).await;
        assert!(
            err["detail"].as_str().unwrap().starts_with("date"),
            "{bad}: {err}"
        );
    }
    for good in ["1900-01-01", "2100-12-31"] {
        let res = app.get(&format!("/api/v1/users/d/food?date={good}")).await;
        assert_eq!(res.status(), 200, "{good}");
    }
}

#[actix_web::test]
async fn a_profile_stops_growing_at_its_field_and_size_caps() {
    let app = TestApp::spawn().await;
    app.create_user("grow").await;
    let patch = |field: String, value: Value| {
        let app = &app;
        async move {
            app.patch_json(
                "/api/v1/users/grow/profile",
                &json!({"field": field, "value": value}),
            )
            .await
        }
    };
    // The profile reads back with a default timezone; stored fields count.
    for i in 0..domain::profile::MAX_FIELDS {
        let res = patch(format!("f{i}"), json!("v")).await;
        assert_eq!(res.status(), 200, "field {i}");
    }
    let err = assert_error(patch("one_more".into(), json!("v")).await, 400).await;
    assert!(
        err["detail"].as_str().unwrap().starts_with("field"),
        "{err}"
    );
    // Changing an existing field and removing one still work.
    assert_eq!(patch("f0".into(), json!("changed")).await.status(), 200);
    assert_eq!(patch("f1".into(), Value::Null).await.status(), 200);
    assert_eq!(patch("one_more".into(), json!("v")).await.status(), 200);

    // Size: 40 fields of 500 characters pass the count but not 16 KiB.
    app.create_user("big").await;
    let mut refused = 0;
    for i in 0..40 {
        let res = app
            .patch_json(
                "/api/v1/users/big/profile",
                &json!({"field": format!("f{i}"), "value": "x".repeat(500)}),
            )
            .await;
        if res.status() == 400 {
            refused += 1;
        }
    }
    assert!(refused > 0, "the size cap never bit");
    let profile: Value = app
        .get("/api/v1/users/big/profile")
        .await
        .json()
        .await
        .unwrap();
    assert!(profile.to_string().len() <= domain::profile::MAX_BYTES + 64);

    // The same caps on preferences and on a profile sent with the user.
    let fields: serde_json::Map<String, Value> =
        (0..60).map(|i| (format!("f{i}"), json!("v"))).collect();
    let res = app
        .post_json(
            "/api/v1/users",
            &json!({"user_id": "bulk", "profile": fields}),
        )
        .await;
    assert_error(res, 400).await;
    for i in 0..domain::profile::MAX_FIELDS {
        let res = app
            .patch_json(
                "/api/v1/users/grow/preferences",
                &json!({"preference": format!("p{i}"), "value": "v"}),
            )
            .await;
        assert_eq!(res.status(), 200, "preference {i}");
    }
    let res = app
        .patch_json(
            "/api/v1/users/grow/preferences",
            &json!({"preference": "too_many", "value": "v"}),
        )
        .await;
    assert_error(res, 400).await;
}

#[actix_web::test]
async fn the_original_services_preference_values_are_accepted() {
    let app = TestApp::spawn().await;
    app.create_user("prefs").await;
    for (name, value) in [
        ("tone", "formal"),
        ("tone", "casual"),
        ("brevity", "brief"),
        ("brevity", "detailed"),
    ] {
        let res = app
            .patch_json(
                "/api/v1/users/prefs/preferences",
                &json!({"preference": name, "value": value}),
            )
            .await;
        assert_eq!(res.status(), 200, "{name}={value}");
    }
}
