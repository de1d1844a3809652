//! The chat's two database operations, run directly: the context read (one
//! statement) and the exchange's save (its statement count cut: no user
//! insert for a known user, whose lock is pipelined with the writes, one
//! award statement, achievements only when one unlocks).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test says where it failed

use actors::db::ops::conversation::{vector as pg_vector, LoadChatContext, SaveChatExchange};
use actors::db::{Client, DbOperation};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use tokio_postgres::NoTls;

const MODEL: &str = "hashed-ngram-384";

async fn client() -> Client {
    let url = actors::testing::migrated_database().await;
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client.into()
}

/// A unit vector along axis `i`, with a little of axis `j`.
fn vector(i: usize, j: usize, of_j: f32) -> Vec<f32> {
    let mut v = vec![0.0; 384];
    v[i] = 1.0;
    v[j] += of_j;
    v
}

fn save(user: &str, known: bool, n: u32, at: DateTime<Utc>) -> SaveChatExchange {
    SaveChatExchange {
        user_id: user.into(),
        known_timezone: known.then_some(chrono_tz::UTC),
        user_message: format!("message {n}"),
        user_embedding: vector(0, 1, 0.0),
        assistant_message: format!("answer {n}"),
        memories: Vec::new(),
        embedding_model: MODEL.into(),
        writes: Vec::new(),
        source_key: format!("chat:{user}:{n}"),
        at,
    }
}

async fn count(c: &Client, sql: &str, user: &str) -> i64 {
    c.query_one(sql, &[&user]).await.unwrap().get(0)
}

#[tokio::test]
async fn the_context_reads_every_part_in_one_statement() {
    let mut c = client().await;
    // 23:30 UTC is already tomorrow in Auckland: "today" is the user's day.
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 23, 30, 0).unwrap();
    let today = NaiveDate::from_ymd_opt(2026, 6, 2).unwrap();
    let utc_day = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
    c.batch_execute(
        "INSERT INTO users (user_id, profile, preferences)
             VALUES ('ana', '{\"timezone\": \"Pacific/Auckland\", \"name\": \"Ana\"}', '{\"tone\": \"brief\"}');
         INSERT INTO user_stats (user_id, total_xp) VALUES ('ana', 120);
         INSERT INTO reminders (user_id, kind, message, daily_time, active) VALUES
             ('ana', 'daily', 'water', '10:00', true),
             ('ana', 'daily', 'walk', '18:00', true),
             ('ana', 'daily', 'old', '07:00', false);
         INSERT INTO users (user_id) VALUES ('other');",
    )
    .await
    .unwrap();
    c.execute(
        "INSERT INTO streaks (user_id, streak_type, current, best, last_date)
         VALUES ('ana', 'food_logging', 4, 9, $1)",
        &[&utc_day],
    )
    .await
    .unwrap();
    for (day, calories) in [(today, 300.0), (today, 200.5), (utc_day, 999.0)] {
        c.execute(
            "INSERT INTO food_entries (user_id, description, calories, protein_g, nutrition_source,
                                       logged_at, local_date)
             VALUES ('ana', 'food', $1, 10, 'user', now(), $2)",
            &[&calories, &day],
        )
        .await
        .unwrap();
    }
    // Nearest first: "near" is closest to the query along axis 0; another
    // user's identical memory and another model's never come back.
    for (user, content, v, model) in [
        ("ana", "far", vector(2, 0, 0.1), MODEL),
        ("ana", "near", vector(0, 2, 0.1), MODEL),
        ("ana", "middle", vector(0, 2, 1.0), MODEL),
        ("ana", "other model", vector(0, 2, 0.0), "another-model"),
        ("other", "someone else's", vector(0, 2, 0.0), MODEL),
    ] {
        c.execute(
            "INSERT INTO memories (user_id, content, embedding, embedding_model)
             VALUES ($1, $2, $3::vector, $4)",
            &[&user, &content, &pg_vector(&v), &model],
        )
        .await
        .unwrap();
    }
    let load = |user: &str| LoadChatContext {
        user_id: user.into(),
        query_embedding: vector(0, 1, 0.0),
        embedding_model: MODEL.into(),
        memory_k: 2,
        now,
    };

    let ctx = load("ana").run(&mut c).await.unwrap();
    assert!(ctx.exists);
    assert_eq!(ctx.timezone, chrono_tz::Pacific::Auckland);
    assert_eq!(ctx.profile["name"], "Ana");
    assert_eq!(ctx.preferences["tone"], "brief");
    assert_eq!(ctx.total_xp, 120);
    let memories: Vec<&str> = ctx.memories.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(memories, ["near", "middle"]);
    assert!(ctx.memories[0].distance < ctx.memories[1].distance);
    assert_eq!(ctx.food_entries_today, 2);
    assert_eq!(ctx.calories_today, 500.5);
    assert_eq!(ctx.protein_today, 20.0);
    // Last logged yesterday (the user's day): the streak is alive.
    assert_eq!(ctx.food_streak, 4);
    assert_eq!(ctx.reminders_active, 2);

    // A user with nothing yet: zeros, not an error.
    let empty = load("other").run(&mut c).await.unwrap();
    assert!(empty.exists);
    assert_eq!(empty.memories.len(), 1);
    assert_eq!(
        (empty.food_entries_today, empty.food_streak, empty.total_xp),
        (0, 0, 0)
    );
    assert!(!load("nobody").run(&mut c).await.unwrap().exists);
}

#[tokio::test]
async fn a_known_user_deleted_before_the_save_is_created_again() {
    let mut c = client().await;
    let at = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
    // The context saw the user, who was deleted before the save.
    let saved = save("gone", true, 1, at).run(&mut c).await.unwrap();
    assert_eq!(saved.total_xp, Some(5));
    assert_eq!(
        count(&c, "SELECT count(*) FROM users WHERE user_id = $1", "gone").await,
        1
    );
    // The first try's pipelined writes were rolled back: one exchange.
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM conversation_history WHERE user_id = $1",
            "gone"
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM xp_events WHERE user_id = $1",
            "gone"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn achievements_are_written_when_an_award_unlocks_them_and_only_then() {
    let mut c = client().await;
    let at = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
    save("bo", false, 0, at).run(&mut c).await.unwrap();
    // 98 more chats' totals, as if they had happened.
    c.execute(
        "UPDATE user_stats SET chat_messages = 99, total_xp = 495 WHERE user_id = $1",
        &[&"bo"],
    )
    .await
    .unwrap();
    let achievements = "SELECT count(*) FROM achievements WHERE user_id = $1";
    assert_eq!(count(&c, achievements, "bo").await, 0);

    // The 100th chat unlocks chat_100 (and level 5 at 500 XP, if it is).
    let saved = save("bo", true, 100, at).run(&mut c).await.unwrap();
    assert_eq!(saved.total_xp, Some(500));
    let ids: Vec<String> = c
        .query(
            "SELECT achievement_id FROM achievements WHERE user_id = $1",
            &[&"bo"],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // Exactly what the rules say the 100th chat unlocks.
    let progress = |total_xp, chat_messages| domain::gamification::Progress {
        total_xp,
        chat_messages,
        ..Default::default()
    };
    let before = domain::gamification::unlocked(&progress(495, 99));
    let mut expected: Vec<String> = domain::gamification::unlocked(&progress(500, 100))
        .into_iter()
        .filter(|id| !before.contains(id))
        .map(str::to_owned)
        .collect();
    let mut ids = ids;
    ids.sort();
    expected.sort();
    assert!(expected.contains(&"chat_100".to_owned()), "{expected:?}");
    assert_eq!(ids, expected);
    let unlocked = ids.len() as i64;

    // The 101st unlocks nothing new and writes nothing; a replayed
    // source key awards nothing at all.
    save("bo", true, 101, at).run(&mut c).await.unwrap();
    assert_eq!(count(&c, achievements, "bo").await, unlocked);
    let replay = save("bo", true, 101, at).run(&mut c).await.unwrap();
    assert_eq!(replay.total_xp, None);
    assert_eq!(
        count(
            &c,
            "SELECT chat_messages FROM user_stats WHERE user_id = $1",
            "bo"
        )
        .await,
        101
    );
}

#[tokio::test]
async fn a_failed_exchange_stores_nothing() {
    let mut c = client().await;
    let at = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
    save("cy", false, 0, at).run(&mut c).await.unwrap();
    // The known user's pipelined exchange; its message's vector has the
    // wrong number of dimensions.
    let mut bad = save("cy", true, 1, at);
    bad.user_embedding = vec![0.5; 3];
    assert!(bad.run(&mut c).await.is_err());
    for (table, before) in [("conversation_history", 2), ("xp_events", 1)] {
        let sql = format!("SELECT count(*) FROM {table} WHERE user_id = $1");
        let n: i64 = c.query_one(sql.as_str(), &[&"cy"]).await.unwrap().get(0);
        assert_eq!(n, before, "{table}");
    }
    assert_eq!(
        count(
            &c,
            "SELECT total_xp FROM user_stats WHERE user_id = $1",
            "cy"
        )
        .await,
        5
    );
}
