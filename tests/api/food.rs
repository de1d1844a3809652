use chrono::{DateTime, Duration, FixedOffset, NaiveDate, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::helpers::{assert_error, TestApp};

const UNKNOWN_FOOD: &str = "grandma's mystery casserole";

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn log(app: &TestApp, user: &str, body: Value) -> Value {
    let res = app
        .post_json(&format!("/api/v1/users/{user}/food"), &body)
        .await;
    assert_eq!(res.status(), 201, "POST food {body}");
    res.json().await.unwrap()
}

async fn day(app: &TestApp, user: &str, date: &str) -> Value {
    let res = app
        .get(&format!("/api/v1/users/{user}/food?date={date}"))
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn count(app: &TestApp, table: &str) -> i64 {
    app.db()
        .await
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

async fn set_timezone(app: &TestApp, user: &str, tz: &str) {
    let res = app
        .patch_json(
            &format!("/api/v1/users/{user}/profile"),
            &json!({"field": "timezone", "value": tz}),
        )
        .await;
    assert_eq!(res.status(), 200, "{tz}");
}

fn local_today(tz: &str) -> NaiveDate {
    domain::time::local_date(Utc::now(), domain::time::parse_timezone(tz).unwrap())
}

#[actix_web::test]
async fn given_macros_are_stored_as_given_and_the_rest_stay_null() {
    let app = TestApp::spawn().await;
    app.create_user("ann").await;
    let at = DateTime::from_timestamp(Utc::now().timestamp() - 3 * 3600, 0).unwrap();
    // Sent with an offset, answered in UTC.
    let plus_two = FixedOffset::east_opt(2 * 3600).unwrap();
    let sent = at
        .with_timezone(&plus_two)
        .to_rfc3339_opts(SecondsFormat::Secs, false);
    let e = log(
        &app,
        "ann",
        json!({"description": "  2 eggs and toast  ", "quantity": "one plate",
               "timestamp": sent, "calories": 412.5, "protein_g": 21}),
    )
    .await;
    assert_eq!(e["user_id"], "ann");
    assert_eq!(e["description"], "2 eggs and toast");
    assert_eq!(e["quantity"], "one plate");
    assert_eq!(e["nutrition_source"], "user");
    assert_eq!(e["calories"], 412.5);
    assert_eq!(e["protein_g"], 21.0);
    for k in ["carbs_g", "fat_g", "food", "grams"] {
        assert!(e[k].is_null(), "{k} should be null: {e}");
    }
    assert_eq!(e["timestamp"], rfc3339(at));
    assert_eq!(e["local_date"], at.date_naive().to_string());
    assert!(uuid::Uuid::parse_str(e["id"].as_str().unwrap()).is_ok());

    let row = app
        .db()
        .await
        .query_one(
            "SELECT description, calories, protein_g, carbs_g, fat_g, nutrition_source, logged_at
               FROM food_entries WHERE user_id = 'ann'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "2 eggs and toast");
    assert_eq!(row.get::<_, Option<f64>>(1), Some(412.5));
    assert_eq!(row.get::<_, Option<f64>>(2), Some(21.0));
    assert_eq!(row.get::<_, Option<f64>>(3), None);
    assert_eq!(row.get::<_, Option<f64>>(4), None);
    assert_eq!(row.get::<_, String>(5), "user");
    assert_eq!(row.get::<_, DateTime<Utc>>(6), at);
}

#[actix_web::test]
async fn a_listed_food_is_estimated_from_the_table() {
    let app = TestApp::spawn().await;
    app.create_user("ben").await;
    let eggs = log(&app, "ben", json!({"description": "2 eggs"})).await;
    assert_eq!(eggs["nutrition_source"], "estimated");
    assert_eq!(eggs["food"], "egg");
    assert_eq!(eggs["grams"], 100.0);
    assert_eq!(eggs["calories"], 143.0);
    for k in ["protein_g", "carbs_g", "fat_g"] {
        assert!(eggs[k].as_f64().unwrap() >= 0.0, "{k}: {eggs}");
    }
    assert!(eggs["quantity"].is_null());

    let banana = log(
        &app,
        "ben",
        json!({"description": "banana", "quantity": "1 medium"}),
    )
    .await;
    assert_eq!(
        (&banana["food"], &banana["grams"], &banana["calories"]),
        (&json!("banana"), &json!(118.0), &json!(105.0))
    );
    let banana2 = log(&app, "ben", json!({"description": "1 medium banana"})).await;
    assert_eq!(banana2["grams"], 118.0);
    assert_eq!(banana2["calories"], 105.0);

    let stored: f64 = app
        .db()
        .await
        .query_one(
            "SELECT calories FROM food_entries WHERE food = 'egg' AND nutrition_source = 'estimated'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 143.0);
}

#[actix_web::test]
async fn an_unknown_food_is_stored_without_numbers_and_left_out_of_the_totals() {
    let app = TestApp::spawn().await;
    app.create_user("cat").await;
    // The three entries span 10 minutes of one day: just after midnight
    // UTC they would straddle two.
    let now = match Utc::now() {
        t if t.time() < chrono::NaiveTime::from_hms_opt(0, 15, 0).unwrap() => {
            t - Duration::minutes(20)
        }
        t => t,
    };
    let today = now.date_naive().to_string();
    let unknown = log(
        &app,
        "cat",
        json!({"description": UNKNOWN_FOOD, "timestamp": rfc3339(now - Duration::minutes(5))}),
    )
    .await;
    assert_eq!(unknown["nutrition_source"], "unknown");
    for k in ["food", "grams", "calories", "protein_g", "carbs_g", "fat_g"] {
        assert!(unknown[k].is_null(), "{k} should be null: {unknown}");
    }
    let eggs = log(
        &app,
        "cat",
        json!({"description": "2 eggs", "timestamp": rfc3339(now - Duration::minutes(10))}),
    )
    .await;
    log(
        &app,
        "cat",
        json!({"description": "shake", "timestamp": rfc3339(now), "protein_g": 30.5}),
    )
    .await;

    let s = day(&app, "cat", &today).await;
    assert_eq!(s["date"], today);
    assert_eq!(s["timezone"], "UTC");
    let entries = s["entries"].as_array().unwrap();
    let descriptions: Vec<&str> = entries
        .iter()
        .map(|e| e["description"].as_str().unwrap())
        .collect();
    assert_eq!(descriptions, ["2 eggs", UNKNOWN_FOOD, "shake"], "by time");
    assert_eq!(entries[0], eggs);
    assert_eq!(entries[1], unknown);
    assert_eq!(s["unknown_entries"], 1);
    assert_eq!(s["total_calories"], 143.0);
    let close = |k: &str, want: f64| {
        let got = s[k].as_f64().unwrap();
        assert!((got - want).abs() < 1e-9, "{k}: {got} != {want}");
    };
    close("total_protein", eggs["protein_g"].as_f64().unwrap() + 30.5);
    close("total_carbs", eggs["carbs_g"].as_f64().unwrap());
    close("total_fat", eggs["fat_g"].as_f64().unwrap());

    let empty = day(&app, "cat", "2020-01-01").await;
    assert_eq!(empty["entries"], json!([]));
    assert_eq!(empty["total_calories"], 0.0);
    assert_eq!(empty["unknown_entries"], 0);
}

#[actix_web::test]
async fn food_is_filed_under_the_users_local_day() {
    let app = TestApp::spawn().await;
    app.create_user("tevita").await;
    set_timezone(&app, "tevita", "Pacific/Tongatapu").await;
    // 11:30Z is 00:30 the next day at UTC+13 (e.g. 2026-06-01T11:30Z is
    // 2026-06-02 local); a recent date keeps it inside the accepted year.
    let utc_day = Utc::now().date_naive() - Duration::days(30);
    let at = format!("{utc_day}T11:30:00Z");
    let local_day = (utc_day + Duration::days(1)).to_string();
    let e = log(
        &app,
        "tevita",
        json!({"description": "2 eggs", "timestamp": at}),
    )
    .await;
    assert_eq!(e["local_date"], local_day);
    assert_eq!(e["timestamp"], at);

    let s = day(&app, "tevita", &local_day).await;
    assert_eq!(s["timezone"], "Pacific/Tongatapu");
    assert_eq!(s["entries"].as_array().unwrap().len(), 1);
    assert_eq!(s["entries"][0]["id"], e["id"]);
    assert_eq!(s["total_calories"], 143.0);

    let before = day(&app, "tevita", &utc_day.to_string()).await;
    assert_eq!(before["entries"], json!([]));
    assert_eq!(before["total_calories"], 0.0);
}

#[actix_web::test]
async fn without_a_date_the_summary_is_today_in_the_users_timezone() {
    let app = TestApp::spawn().await;
    for (user, tz) in [
        ("west", "Pacific/Pago_Pago"),
        ("east", "Pacific/Kiritimati"),
    ] {
        app.create_user(user).await;
        set_timezone(&app, user, tz).await;
        let zone = domain::time::parse_timezone(tz).unwrap();
        let (start, end) = domain::time::local_day_bounds(local_today(tz), zone);
        let today = log(&app, user, json!({"description": "apple"})).await;
        // The last minute of local yesterday and the first of local tomorrow.
        log(
            &app,
            user,
            json!({"description": "banana", "timestamp": rfc3339(start - Duration::minutes(1))}),
        )
        .await;
        log(
            &app,
            user,
            json!({"description": "orange", "timestamp": rfc3339(end)}),
        )
        .await;

        let res = app.get(&format!("/api/v1/users/{user}/food")).await;
        assert_eq!(res.status(), 200);
        let s: Value = res.json().await.unwrap();
        let local = local_today(tz).to_string();
        assert_eq!(s["date"], local, "{tz}");
        assert_eq!(s["timezone"], tz);
        assert_eq!(today["local_date"], local);
        let entries = s["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{tz}: {s}");
        assert_eq!(entries[0]["id"], today["id"]);
    }
}

#[actix_web::test]
async fn every_bad_field_is_a_400_naming_it_and_writes_nothing() {
    let app = TestApp::spawn().await;
    app.create_user("dan").await;
    let now = Utc::now();
    let cases: Vec<(&str, Value)> = vec![
        ("description", json!({})),
        ("description", json!({"description": "   "})),
        ("description", json!({"description": "x".repeat(501)})),
        ("description", json!({"description": 12})),
        (
            "quantity",
            json!({"description": "apple", "quantity": "q".repeat(101)}),
        ),
        ("quantity", json!({"description": "apple", "quantity": 2})),
        (
            "timestamp",
            json!({"description": "apple", "timestamp": "yesterday"}),
        ),
        (
            "timestamp",
            json!({"description": "apple", "timestamp": "2026-06-01T12:00:00"}),
        ),
        (
            "timestamp",
            json!({"description": "apple", "timestamp": rfc3339(now + Duration::hours(25))}),
        ),
        (
            "timestamp",
            json!({"description": "apple", "timestamp": rfc3339(now - Duration::days(367))}),
        ),
        ("calories", json!({"description": "apple", "calories": -1})),
        (
            "calories",
            json!({"description": "apple", "calories": 20000.5}),
        ),
        (
            "calories",
            json!({"description": "apple", "calories": "100"}),
        ),
        (
            "protein_g",
            json!({"description": "apple", "protein_g": 2001}),
        ),
        (
            "protein_g",
            json!({"description": "apple", "protein_g": -0.1}),
        ),
        (
            "carbs_g",
            json!({"description": "apple", "carbs_g": 2000.01}),
        ),
        ("carbs_g", json!({"description": "apple", "carbs_g": -3})),
        ("fat_g", json!({"description": "apple", "fat_g": 5000})),
        ("fat_g", json!({"description": "apple", "fat_g": true})),
        ("sugar_g", json!({"description": "apple", "sugar_g": 3})),
    ];
    for (field, body) in cases {
        let res = app.post_json("/api/v1/users/dan/food", &body).await;
        let err = assert_error(res, 400).await;
        let detail = err["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(field),
            "{body} → {err}: should name {field}"
        );
    }
    // Limits are inclusive.
    let edge = log(
        &app,
        "dan",
        json!({"description": "é".repeat(500), "quantity": "q".repeat(100),
               "calories": 20000, "protein_g": 0, "carbs_g": 2000, "fat_g": 2000,
               "timestamp": rfc3339(now + Duration::hours(23))}),
    )
    .await;
    assert_eq!(edge["calories"], 20000.0);
    assert_eq!(count(&app, "food_entries").await, 1);
    assert_eq!(count(&app, "xp_events").await, 1);

    let err = assert_error(
        app.post_json("/api/v1/users/a%20b/food", &json!({"description": "apple"}))
            .await,
        400,
    )
    .await;
    assert!(err["detail"].as_str().unwrap().contains("user_id"));

    for bad in ["2026-13-01", "yesterday", "2026-6-1", "2026-02-30", ""] {
        let err = assert_error(
            app.get(&format!("/api/v1/users/dan/food?date={bad}")).await,
            400,
        )
        .await;
        assert!(
            err["detail"].as_str().unwrap().contains("date"),
            "{bad}: {err}"
        );
    }
    let err = assert_error(app.get("/api/v1/users/a%20b/food").await, 400).await;
    assert!(err["detail"].as_str().unwrap().contains("user_id"));
}

#[actix_web::test]
async fn an_unknown_user_is_404_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let res = app
        .post_json(
            "/api/v1/users/ghost/food",
            &json!({"description": "2 eggs"}),
        )
        .await;
    let err = assert_error(res, 404).await;
    assert_eq!(err["error"], "user not found");
    assert_error(app.get("/api/v1/users/ghost/food").await, 404).await;
    assert_error(
        app.get("/api/v1/users/ghost/food?date=2026-06-01").await,
        404,
    )
    .await;
    for table in ["food_entries", "xp_events", "user_stats", "streaks"] {
        assert_eq!(count(&app, table).await, 0, "{table}");
    }
}

#[actix_web::test]
async fn a_failure_half_way_leaves_no_food_and_no_xp() {
    let app = TestApp::spawn().await;
    app.create_user("eve").await;
    let db = app.db().await;
    // The award after the food insert breaks; the insert must roll back with it.
    db.batch_execute("ALTER TABLE xp_events ADD CONSTRAINT no_xp CHECK (xp < 0)")
        .await
        .unwrap();
    let res = app
        .post_json("/api/v1/users/eve/food", &json!({"description": "2 eggs"}))
        .await;
    let status = res.status().as_u16();
    assert!(status == 400 || status >= 500, "got {status}");
    let body = res.text().await.unwrap();
    assert!(!body.contains("INSERT"), "SQL leaked: {body}");
    for table in [
        "food_entries",
        "xp_events",
        "user_stats",
        "streaks",
        "achievements",
    ] {
        assert_eq!(count(&app, table).await, 0, "{table}");
    }

    db.batch_execute("ALTER TABLE xp_events DROP CONSTRAINT no_xp")
        .await
        .unwrap();
    log(&app, "eve", json!({"description": "2 eggs"})).await;
    assert_eq!(count(&app, "food_entries").await, 1);
    assert_eq!(count(&app, "xp_events").await, 1);
}
