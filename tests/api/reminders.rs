use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use actors::db::ops::{ClaimDueReminders, CreateReminder, Schedule};
use actors::db::DbOperation;
use chrono::{DateTime, NaiveTime, SecondsFormat, SubsecRound, Utc};
use serde_json::{json, Value};

use crate::helpers::{assert_error, wait_for, Env, TestApp};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn z(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A daily time `hours` from now in UTC: far enough that the scheduler
/// does not fire it during a test.
fn hhmm_in(hours: i64) -> String {
    (Utc::now() + chrono::Duration::hours(hours))
        .format("%H:%M")
        .to_string()
}

fn reminders_path(user: &str) -> String {
    format!("/api/v1/users/{user}/reminders")
}

async fn create(app: &TestApp, user: &str, body: Value) -> Value {
    let res = app.post_json(&reminders_path(user), &body).await;
    assert_eq!(res.status(), 201, "creating {body}");
    res.json().await.unwrap()
}

async fn status(app: &TestApp, user: &str, id: &str) -> Value {
    let res = app
        .get(&format!("{}/{id}/status", reminders_path(user)))
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn complete(app: &TestApp, user: &str, id: &str) -> Value {
    let res = app
        .post_json(
            &format!("{}/{id}/complete", reminders_path(user)),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn total_xp(db: &tokio_postgres::Client, user: &str) -> i64 {
    db.query_one(
        "SELECT COALESCE(sum(xp), 0)::bigint FROM xp_events WHERE user_id = $1",
        &[&user],
    )
    .await
    .unwrap()
    .get(0)
}

async fn count(db: &tokio_postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).await.unwrap().get(0)
}

/// A webhook receiver that records every call and answers from a script
/// (status, Retry-After), then 200.
#[derive(Clone)]
struct Hook {
    url: String,
    calls: Arc<Mutex<Vec<(Instant, Value)>>>,
}

impl Hook {
    async fn start(script: Vec<(u16, Option<&'static str>)>) -> Self {
        let calls: Arc<Mutex<Vec<(Instant, Value)>>> = Arc::default();
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (c, s) = (Arc::clone(&calls), Arc::clone(&script));
        let server = HttpServer::new(move || {
            let (c, s) = (Arc::clone(&c), Arc::clone(&s));
            App::new().default_service(web::to(move |body: web::Bytes| {
                let (c, s) = (Arc::clone(&c), Arc::clone(&s));
                async move {
                    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    c.lock().unwrap().push((Instant::now(), json));
                    let next = s.lock().unwrap().pop_front();
                    match next {
                        Some((code, retry_after)) => {
                            let mut res = HttpResponse::build(
                                actix_web::http::StatusCode::from_u16(code).unwrap(),
                            );
                            if let Some(after) = retry_after {
                                res.insert_header(("Retry-After", after));
                            }
                            res.finish()
                        }
                        None => HttpResponse::Ok().finish(),
                    }
                }
            }))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        actix_web::rt::spawn(server);
        Self { url, calls }
    }

    fn calls(&self) -> Vec<(Instant, Value)> {
        self.calls.lock().unwrap().clone()
    }

    fn env(&self, poll_ms: u64) -> Env {
        vec![
            ("REMINDER_WEBHOOK_URL", self.url.clone()),
            (
                "HEALTH_AGENT__REMINDERS__POLL_INTERVAL_MS",
                poll_ms.to_string(),
            ),
        ]
    }
}

#[actix_web::test]
async fn daily_and_one_time_reminders_are_created_with_their_schedules() {
    let app = TestApp::spawn().await;
    let res = app
        .post_json(
            "/api/v1/users",
            &json!({"user_id": "ana", "profile": {"timezone": "Europe/Berlin"}}),
        )
        .await;
    assert_eq!(res.status(), 201);

    // Daily without a timezone: the profile's.
    let before = Utc::now();
    let daily = create(
        &app,
        "ana",
        json!({"type": "daily", "message": "  Take vitamins ", "daily_time": "7:05"}),
    )
    .await;
    let after = Utc::now();
    let keys: HashSet<&str> = daily
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        HashSet::from([
            "id",
            "user_id",
            "type",
            "message",
            "schedule",
            "active",
            "next_trigger_at"
        ])
    );
    assert!(uuid::Uuid::parse_str(daily["id"].as_str().unwrap()).is_ok());
    assert_eq!(daily["user_id"], "ana");
    assert_eq!(daily["type"], "daily");
    assert_eq!(daily["message"], "Take vitamins");
    assert_eq!(
        daily["schedule"],
        json!({"daily_time": "07:05", "timezone": "Europe/Berlin"})
    );
    assert_eq!(daily["active"], true);
    let berlin = domain::time::parse_timezone("Europe/Berlin").unwrap();
    let t = NaiveTime::from_hms_opt(7, 5, 0).unwrap();
    let expected: HashSet<String> = [before, after]
        .iter()
        .map(|now| z(domain::time::next_daily_trigger(t, berlin, *now)))
        .collect();
    assert!(
        expected.contains(daily["next_trigger_at"].as_str().unwrap()),
        "{daily} vs {expected:?}"
    );

    // One time, with an offset: stored and shown in UTC.
    let when = (Utc::now() + chrono::Duration::days(2))
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .to_rfc3339_opts(SecondsFormat::Secs, false);
    let once = create(
        &app,
        "ana",
        json!({"type": "one_time", "message": "Dentist", "trigger_time": when,
               "timezone": "America/New_York"}),
    )
    .await;
    let when_utc = z(utc(&when));
    assert_eq!(once["type"], "one_time");
    assert_eq!(
        once["schedule"],
        json!({"trigger_time": when_utc, "timezone": "America/New_York"})
    );
    assert_eq!(once["next_trigger_at"], when_utc);
    assert_eq!(once["active"], true);

    // A user without a profile timezone gets UTC.
    app.create_user("bo").await;
    let utc_daily = create(
        &app,
        "bo",
        json!({"type": "daily", "message": "Walk", "daily_time": hhmm_in(6)}),
    )
    .await;
    assert_eq!(utc_daily["schedule"]["timezone"], "UTC");

    let db = app.db().await;
    let stored: i64 = count(
        &db,
        "SELECT count(*) FROM reminders WHERE user_id = 'ana' AND active",
    )
    .await;
    assert_eq!(stored, 2);
    let row = db
        .query_one(
            "SELECT kind, daily_time::text, timezone FROM reminders WHERE id = $1::text::uuid",
            &[&daily["id"].as_str().unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), "daily");
    assert_eq!(row.get::<_, &str>(1), "07:05:00");
    assert_eq!(row.get::<_, &str>(2), "Europe/Berlin");
}

#[actix_web::test]
async fn the_list_has_active_and_inactive_reminders_newest_first_and_only_the_users_own() {
    let app = TestApp::spawn().await;
    app.create_user("cy").await;
    app.create_user("di").await;
    let first = create(
        &app,
        "cy",
        json!({"type": "daily", "message": "one", "daily_time": hhmm_in(6), "timezone": "UTC"}),
    )
    .await;
    let second = create(
        &app,
        "cy",
        json!({"type": "one_time", "message": "two",
               "trigger_time": z(Utc::now() + chrono::Duration::hours(5))}),
    )
    .await;
    create(
        &app,
        "di",
        json!({"type": "daily", "message": "not cy's", "daily_time": hhmm_in(6)}),
    )
    .await;
    app.db()
        .await
        .execute(
            "UPDATE reminders SET active = false WHERE id = $1::text::uuid",
            &[&first["id"].as_str().unwrap()],
        )
        .await
        .unwrap();

    let res = app.get(&reminders_path("cy")).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let list = body["reminders"].as_array().unwrap();
    let ids: Vec<&str> = list.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        vec![
            second["id"].as_str().unwrap(),
            first["id"].as_str().unwrap()
        ]
    );
    assert_eq!(list[1]["active"], false);
    assert_eq!(list[0], second);

    app.create_user("empty").await;
    let none: Value = app
        .get(&reminders_path("empty"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none, json!({"reminders": []}));
}

#[actix_web::test]
async fn completing_awards_xp_once_per_firing_and_the_status_follows() {
    let app = TestApp::spawn_with(vec![(
        "HEALTH_AGENT__REMINDERS__POLL_INTERVAL_MS",
        "50".into(),
    )])
    .await;
    app.create_user("eve").await;
    let db = app.db().await;
    let r = create(
        &app,
        "eve",
        json!({"type": "daily", "message": "stretch", "daily_time": hhmm_in(6), "timezone": "UTC"}),
    )
    .await;
    let id = r["id"].as_str().unwrap();

    let s = status(&app, "eve", id).await;
    assert_eq!(
        s,
        json!({"id": id, "triggered": false, "completed": false, "completed_at": null})
    );

    // Never fired: completing records a completion now.
    let done = complete(&app, "eve", id).await;
    assert_eq!(done["triggered"], false);
    assert_eq!(done["completed"], true);
    let at = utc(done["completed_at"].as_str().unwrap());
    assert!((Utc::now() - at).num_seconds().abs() < 10);
    assert_eq!(total_xp(&db, "eve").await, 10);
    // Completing the same completion again awards nothing.
    let again = complete(&app, "eve", id).await;
    assert_eq!(again, done);
    assert_eq!(status(&app, "eve", id).await, done);
    assert_eq!(total_xp(&db, "eve").await, 10);
    let xp: Value = app.get("/api/v1/users/eve/xp").await.json().await.unwrap();
    assert_eq!(xp["xp"], 10);

    // It comes due and the scheduler fires it: a pending firing.
    db.execute(
        "UPDATE reminders SET next_trigger_at = now() - interval '1 minute' WHERE id = $1::text::uuid",
        &[&id],
    )
    .await
    .unwrap();
    let fired = wait_for(Duration::from_secs(10), || async {
        status(&app, "eve", id).await["triggered"] == true
    })
    .await;
    assert!(fired, "the scheduler did not fire the reminder");
    let s = status(&app, "eve", id).await;
    assert_eq!(s["completed"], false);
    assert_eq!(s["completed_at"], Value::Null);

    let done = complete(&app, "eve", id).await;
    assert_eq!(
        (done["triggered"].clone(), done["completed"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(total_xp(&db, "eve").await, 20);
    assert_eq!(complete(&app, "eve", id).await, done);
    assert_eq!(total_xp(&db, "eve").await, 20);
    let completions = count(
        &db,
        "SELECT count(*) FROM reminder_completions WHERE completed_at IS NOT NULL",
    )
    .await;
    assert_eq!(completions, 2);
    let streak: i32 = db
        .query_one(
            "SELECT current FROM streaks WHERE user_id = 'eve' AND streak_type = 'reminders'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(streak, 1);
}

#[actix_web::test]
async fn deleting_a_reminder_removes_it_and_its_firings() {
    let app = TestApp::spawn().await;
    app.create_user("fay").await;
    let r = create(
        &app,
        "fay",
        json!({"type": "daily", "message": "m", "daily_time": hhmm_in(6)}),
    )
    .await;
    let id = r["id"].as_str().unwrap();
    complete(&app, "fay", id).await;

    let path = format!("{}/{id}", reminders_path("fay"));
    assert_eq!(app.delete(&path).await.status(), 204);
    assert_error(app.delete(&path).await, 404).await;
    assert_error(app.get(&format!("{path}/status")).await, 404).await;
    let db = app.db().await;
    assert_eq!(count(&db, "SELECT count(*) FROM reminders").await, 0);
    assert_eq!(
        count(&db, "SELECT count(*) FROM reminder_completions").await,
        0
    );
    // The XP earned stays earned.
    assert_eq!(total_xp(&db, "fay").await, 10);
}

#[actix_web::test]
async fn every_invalid_field_is_a_400_naming_it_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    app.create_user("gil").await;
    let future = z(Utc::now() + chrono::Duration::hours(3));
    let past = z(Utc::now() - chrono::Duration::minutes(1));
    let long = "x".repeat(1001);
    let cases: Vec<(&str, Value)> = vec![
        ("type", json!({"message": "m", "daily_time": "08:00"})),
        (
            "type",
            json!({"type": "weekly", "message": "m", "daily_time": "08:00"}),
        ),
        (
            "type",
            json!({"type": 1, "message": "m", "daily_time": "08:00"}),
        ),
        ("message", json!({"type": "daily", "daily_time": "08:00"})),
        (
            "message",
            json!({"type": "daily", "message": "", "daily_time": "08:00"}),
        ),
        (
            "message",
            json!({"type": "daily", "message": "   ", "daily_time": "08:00"}),
        ),
        (
            "message",
            json!({"type": "daily", "message": long, "daily_time": "08:00"}),
        ),
        (
            "message",
            json!({"type": "daily", "message": 7, "daily_time": "08:00"}),
        ),
        ("daily_time", json!({"type": "daily", "message": "m"})),
        (
            "daily_time",
            json!({"type": "daily", "message": "m", "daily_time": "24:00"}),
        ),
        (
            "daily_time",
            json!({"type": "daily", "message": "m", "daily_time": "8"}),
        ),
        (
            "daily_time",
            json!({"type": "daily", "message": "m", "daily_time": 800}),
        ),
        (
            "daily_time",
            json!({"type": "one_time", "message": "m", "trigger_time": future,
                              "daily_time": "08:00"}),
        ),
        (
            "trigger_time",
            json!({"type": "daily", "message": "m", "daily_time": "08:00",
                                "trigger_time": future}),
        ),
        ("trigger_time", json!({"type": "one_time", "message": "m"})),
        (
            "trigger_time",
            json!({"type": "one_time", "message": "m", "trigger_time": "tomorrow"}),
        ),
        (
            "trigger_time",
            json!({"type": "one_time", "message": "m",
                                "trigger_time": "2030-01-01T08:00:00"}),
        ),
        (
            "trigger_time",
            json!({"type": "one_time", "message": "m", "trigger_time": past}),
        ),
        (
            "timezone",
            json!({"type": "daily", "message": "m", "daily_time": "08:00",
                            "timezone": "Mars/Olympus"}),
        ),
        (
            "timezone",
            json!({"type": "daily", "message": "m", "daily_time": "08:00",
                            "timezone": 2}),
        ),
        (
            "colour",
            json!({"type": "daily", "message": "m", "daily_time": "08:00",
                          "colour": "red"}),
        ),
    ];
    for (field, body) in cases {
        let res = app.post_json(&reminders_path("gil"), &body).await;
        let err = assert_error(res, 400).await;
        let detail = err["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(field), "{body}: {err}");
    }
    let res = app
        .post_json(&reminders_path("gil"), &json!(["not", "an", "object"]))
        .await;
    assert_error(res, 400).await;
    assert_eq!(
        count(&*app.db().await, "SELECT count(*) FROM reminders").await,
        0
    );
    // The limits themselves are fine.
    create(
        &app,
        "gil",
        json!({"type": "daily", "message": "x".repeat(1000), "daily_time": "23:59"}),
    )
    .await;
}

#[actix_web::test]
async fn unknown_users_and_reminders_are_404_and_another_users_reminder_is_invisible() {
    let app = TestApp::spawn().await;
    let body = json!({"type": "daily", "message": "m", "daily_time": hhmm_in(6)});
    assert_error(app.post_json(&reminders_path("ghost"), &body).await, 404).await;
    assert_error(app.get(&reminders_path("ghost")).await, 404).await;
    let bad = app.post_json(&reminders_path("bad%20id"), &body).await;
    let err = assert_error(bad, 400).await;
    assert!(err["detail"].as_str().unwrap().contains("user_id"), "{err}");

    app.create_user("hal").await;
    app.create_user("ivy").await;
    let hals = create(&app, "hal", body.clone()).await;
    let id = hals["id"].as_str().unwrap();
    let unknown = uuid::Uuid::new_v4().to_string();
    for user in ["hal", "ivy", "ghost"] {
        for rid in [unknown.as_str(), "not-a-uuid"] {
            let base = format!("{}/{rid}", reminders_path(user));
            assert_error(app.get(&format!("{base}/status")).await, 404).await;
            let res = app.post_json(&format!("{base}/complete"), &json!({})).await;
            assert_error(res, 404).await;
            assert_error(app.delete(&base).await, 404).await;
        }
    }
    // Hal's reminder through Ivy's (or no one's) path: not found, untouched.
    for user in ["ivy", "ghost"] {
        let base = format!("{}/{id}", reminders_path(user));
        assert_error(app.get(&format!("{base}/status")).await, 404).await;
        let res = app.post_json(&format!("{base}/complete"), &json!({})).await;
        assert_error(res, 404).await;
        assert_error(app.delete(&base).await, 404).await;
    }
    let ivys: Value = app.get(&reminders_path("ivy")).await.json().await.unwrap();
    assert_eq!(ivys, json!({"reminders": []}));
    let db = app.db().await;
    assert_eq!(count(&db, "SELECT count(*) FROM reminders").await, 1);
    assert_eq!(
        count(&db, "SELECT count(*) FROM reminder_completions").await,
        0
    );
    assert_eq!(count(&db, "SELECT count(*) FROM xp_events").await, 0);
    assert_eq!(status(&app, "hal", id).await["completed"], false);
}

#[actix_web::test]
async fn a_completion_whose_xp_award_fails_leaves_nothing_behind() {
    let app = TestApp::spawn_with(vec![("HEALTH_AGENT__REMINDERS__ENABLED", "false".into())]).await;
    app.create_user("jo").await;
    let body = json!({"type": "daily", "message": "m", "daily_time": hhmm_in(6)});
    let never = create(&app, "jo", body.clone()).await;
    let fired = create(&app, "jo", body).await;
    let (never, fired) = (never["id"].as_str().unwrap(), fired["id"].as_str().unwrap());
    let db = app.db().await;
    db.execute(
        "INSERT INTO reminder_completions (reminder_id, user_id, scheduled_for)
         VALUES ($1::text::uuid, 'jo', now())",
        &[&fired],
    )
    .await
    .unwrap();
    db.batch_execute(
        "CREATE FUNCTION fail_award() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN RAISE EXCEPTION 'award failed'; END $$;
         CREATE TRIGGER fail_award BEFORE INSERT ON xp_events
             FOR EACH ROW EXECUTE FUNCTION fail_award();",
    )
    .await
    .unwrap();

    for id in [never, fired] {
        let res = app
            .post_json(
                &format!("{}/{id}/complete", reminders_path("jo")),
                &json!({}),
            )
            .await;
        let err = assert_error(res, 500).await;
        assert!(!err.to_string().contains("award failed"), "{err}");
    }
    assert_eq!(
        count(&db, "SELECT count(*) FROM reminder_completions").await,
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM reminder_completions WHERE completed_at IS NOT NULL"
        )
        .await,
        0
    );
    assert_eq!(count(&db, "SELECT count(*) FROM user_stats").await, 0);
    assert_eq!(status(&app, "jo", never).await["completed"], false);
    assert_eq!(status(&app, "jo", fired).await["completed"], false);
}

/// The operations with a fixed clock, the scheduler off so only they run.
#[actix_web::test]
async fn a_daily_0230_new_york_reminder_follows_the_spring_forward_gap() {
    let app = TestApp::spawn_with(vec![("HEALTH_AGENT__REMINDERS__ENABLED", "false".into())]).await;
    app.create_user("kit").await;
    let mut db = app.db().await;
    let created = CreateReminder {
        user_id: "kit".into(),
        schedule: Schedule::Daily(NaiveTime::from_hms_opt(2, 30, 0).unwrap()),
        message: "meds".into(),
        timezone: Some(domain::time::parse_timezone("America/New_York").unwrap()),
        // 15:00 EST, the day before clocks jump from 02:00 to 03:00.
        now: utc("2026-03-07T20:00:00Z"),
    }
    .run(&mut db)
    .await
    .unwrap();
    assert_eq!(created.next_trigger_at, Some(utc("2026-03-08T07:00:00Z")));

    let list: Value = app.get(&reminders_path("kit")).await.json().await.unwrap();
    let r = &list["reminders"][0];
    assert_eq!(r["next_trigger_at"], "2026-03-08T07:00:00Z");
    assert_eq!(
        r["schedule"],
        json!({"daily_time": "02:30", "timezone": "America/New_York"})
    );

    let claim = |now: &str| ClaimDueReminders {
        now: utc(now),
        limit: 100,
        webhook: false,
    };
    // Not due a second early.
    assert!(claim("2026-03-08T06:59:59Z")
        .run(&mut db)
        .await
        .unwrap()
        .is_empty());
    // Fires at 03:00 EDT, then at the real 02:30 EDT the next day.
    let fired = claim("2026-03-08T07:00:00Z").run(&mut db).await.unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].scheduled_for, utc("2026-03-08T07:00:00Z"));
    assert!(claim("2026-03-08T07:00:00Z")
        .run(&mut db)
        .await
        .unwrap()
        .is_empty());
    let list: Value = app.get(&reminders_path("kit")).await.json().await.unwrap();
    assert_eq!(
        list["reminders"][0]["next_trigger_at"],
        "2026-03-09T06:30:00Z"
    );

    // Three days down: it fires once, and next comes after "now".
    let fired = claim("2026-03-12T12:00:00Z").run(&mut db).await.unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].scheduled_for, utc("2026-03-09T06:30:00Z"));
    assert!(claim("2026-03-12T12:00:00Z")
        .run(&mut db)
        .await
        .unwrap()
        .is_empty());
    let next: DateTime<Utc> = db
        .query_one("SELECT next_trigger_at FROM reminders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(next, utc("2026-03-13T06:30:00Z"));
    assert_eq!(
        count(&db, "SELECT count(*) FROM reminder_completions").await,
        2
    );
    let s = status(&app, "kit", &created.id).await;
    assert_eq!(
        (s["triggered"].clone(), s["completed"].clone()),
        (json!(true), json!(false))
    );
}

#[actix_web::test]
async fn the_scheduler_fires_a_due_one_time_reminder_once_and_posts_the_webhook() {
    let hook = Hook::start(Vec::new()).await;
    let app = TestApp::spawn_with(hook.env(50)).await;
    app.create_user("lee").await;
    // Whole milliseconds: the database keeps microseconds.
    let trigger = (Utc::now() + chrono::Duration::milliseconds(1500)).trunc_subsecs(3);
    let r = create(
        &app,
        "lee",
        json!({"type": "one_time", "message": "call mum", "trigger_time": z(trigger)}),
    )
    .await;
    let id = r["id"].as_str().unwrap().to_owned();

    assert!(
        wait_for(Duration::from_secs(10), || async {
            !hook.calls().is_empty()
        })
        .await,
        "no webhook call"
    );
    let delivered_at = Instant::now();
    // Several more polls: nothing fires again.
    actix_web::rt::time::sleep(Duration::from_millis(600)).await;
    let calls = hook.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let body = &calls[0].1;
    assert_eq!(body["reminder_id"], id.as_str());
    assert_eq!(body["user_id"], "lee");
    assert_eq!(body["message"], "call mum");
    assert_eq!(body["scheduled_for"], z(trigger));
    let triggered_at = utc(body["triggered_at"].as_str().unwrap());
    assert!(triggered_at >= trigger, "fired early: {body}");
    assert!(delivered_at.elapsed() < Duration::from_secs(5));

    let db = app.db().await;
    let row = db
        .query_one(
            "SELECT count(*), min(webhook_status) FROM reminder_completions
              WHERE reminder_id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
    let delivered = wait_for(Duration::from_secs(5), || async {
        count(
            &db,
            "SELECT count(*) FROM reminder_completions WHERE webhook_status = 'delivered'",
        )
        .await
            == 1
    })
    .await;
    assert!(delivered, "webhook status not recorded");
    let list: Value = app.get(&reminders_path("lee")).await.json().await.unwrap();
    assert_eq!(list["reminders"][0]["active"], false);
    assert_eq!(list["reminders"][0]["next_trigger_at"], Value::Null);
    let s = status(&app, "lee", &id).await;
    assert_eq!(
        (s["triggered"].clone(), s["completed"].clone()),
        (json!(true), json!(false))
    );

    let metrics: Value = app.get("/api/v1/metrics").await.json().await.unwrap();
    let gate = &metrics["actors"]["reminders"];
    assert_eq!(gate["mailbox_capacity"], 256, "{metrics}");
    assert_eq!(gate["restarts"], 0);
}

async fn fire_one(hook: &Hook, calls: usize) -> (TestApp, String) {
    let app = TestApp::spawn_with(hook.env(50)).await;
    app.create_user("max").await;
    let r = create(
        &app,
        "max",
        json!({"type": "daily", "message": "water", "daily_time": hhmm_in(6)}),
    )
    .await;
    let id = r["id"].as_str().unwrap().to_owned();
    app.db()
        .await
        .execute(
            "UPDATE reminders SET next_trigger_at = now() WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(15), || async {
            hook.calls().len() >= calls
        })
        .await,
        "expected {calls} webhook calls, got {:?}",
        hook.calls()
    );
    (app, id)
}

async fn webhook_status(app: &TestApp, id: &str) -> String {
    app.db()
        .await
        .query_one(
            "SELECT webhook_status FROM reminder_completions WHERE reminder_id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap()
        .get(0)
}

#[actix_web::test]
async fn a_failing_webhook_is_retried_until_it_accepts() {
    let hook = Hook::start(vec![(500, None), (503, None)]).await;
    let (app, id) = fire_one(&hook, 3).await;
    actix_web::rt::time::sleep(Duration::from_millis(700)).await;
    let calls = hook.calls();
    assert_eq!(calls.len(), 3, "{calls:?}");
    for (_, body) in &calls {
        assert_eq!(body["reminder_id"], id.as_str());
    }
    // Backoff between attempts, not a tight loop.
    assert!(calls[1].0 - calls[0].0 >= Duration::from_millis(100));
    assert!(
        wait_for(Duration::from_secs(3), || async {
            webhook_status(&app, &id).await == "delivered"
        })
        .await
    );
}

#[actix_web::test]
async fn a_429_is_retried_after_its_retry_after() {
    let hook = Hook::start(vec![(429, Some("2"))]).await;
    let (app, id) = fire_one(&hook, 2).await;
    let calls = hook.calls();
    let waited = calls[1].0 - calls[0].0;
    assert!(
        waited >= Duration::from_millis(1900),
        "retried after {waited:?}"
    );
    assert!(
        wait_for(Duration::from_secs(3), || async {
            webhook_status(&app, &id).await == "delivered"
        })
        .await
    );
}

#[actix_web::test]
async fn a_webhook_refusal_is_not_retried_and_is_recorded_as_failed() {
    let hook = Hook::start(vec![(400, None)]).await;
    let (app, id) = fire_one(&hook, 1).await;
    assert!(
        wait_for(Duration::from_secs(3), || async {
            webhook_status(&app, &id).await == "failed"
        })
        .await
    );
    actix_web::rt::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(hook.calls().len(), 1);
}

#[actix_web::test]
async fn three_instances_fire_each_of_fifty_due_reminders_exactly_once() {
    let db_url = actors::testing::migrated_database().await;
    let hook = Hook::start(Vec::new()).await;
    let mut apps = Vec::new();
    for _ in 0..3 {
        apps.push(TestApp::spawn_on(&db_url, hook.env(20)).await);
    }
    apps[0].create_user("ned").await;
    let db = apps[0].db().await;

    // In batches, so the instances race for them as they come due.
    for batch in 0..10 {
        db.batch_execute(&format!(
            "INSERT INTO reminders (user_id, kind, message, daily_time, trigger_time, next_trigger_at)
             SELECT 'ned',
                    CASE WHEN i % 2 = 0 THEN 'daily' ELSE 'one_time' END,
                    'r{batch}-' || i,
                    CASE WHEN i % 2 = 0 THEN (now() + interval '6 hours')::time END,
                    CASE WHEN i % 2 = 1 THEN now() - interval '1 second' END,
                    now() - interval '1 second'
               FROM generate_series(1, 5) AS i"
        ))
        .await
        .unwrap();
        actix_web::rt::time::sleep(Duration::from_millis(15)).await;
    }
    let ids: HashSet<String> = db
        .query("SELECT id::text FROM reminders", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids.len(), 50);

    assert!(
        wait_for(Duration::from_secs(20), || async {
            hook.calls().len() >= 50
        })
        .await,
        "only {} webhook calls",
        hook.calls().len()
    );
    // Many more polls by all three: nothing fires twice.
    actix_web::rt::time::sleep(Duration::from_millis(1000)).await;
    let calls = hook.calls();
    assert_eq!(calls.len(), 50);
    let mut per_reminder: HashMap<String, usize> = HashMap::new();
    for (_, body) in &calls {
        *per_reminder
            .entry(body["reminder_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_reminder.keys().cloned().collect::<HashSet<_>>(), ids);
    assert!(per_reminder.values().all(|n| *n == 1), "{per_reminder:?}");

    let rows = db
        .query(
            "SELECT r.id::text, count(c.id), bool_and(c.webhook_status = 'delivered')
               FROM reminders r LEFT JOIN reminder_completions c ON c.reminder_id = r.id
              GROUP BY r.id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 50);
    for r in &rows {
        assert_eq!(r.get::<_, i64>(1), 1, "reminder {}", r.get::<_, &str>(0));
    }
    assert!(
        wait_for(Duration::from_secs(5), || async {
            count(
                &db,
                "SELECT count(*) FROM reminder_completions WHERE webhook_status = 'delivered'",
            )
            .await
                == 50
        })
        .await
    );
    // Two daily and three one-time per batch: one-time ones deactivate,
    // daily ones move to their next occurrence.
    assert_eq!(
        count(&db, "SELECT count(*) FROM reminders WHERE active").await,
        20,
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM reminders
              WHERE kind = 'daily' AND active AND next_trigger_at > now()"
        )
        .await,
        20
    );
}
