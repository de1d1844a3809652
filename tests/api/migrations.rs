use actors::db::migrate;
use tokio_postgres::NoTls;

async fn connect(url: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    actix_web::rt::spawn(async move {
        let _ = conn.await;
    });
    c
}

async fn tables(c: &tokio_postgres::Client) -> Vec<String> {
    c.query(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[actix_web::test]
async fn migrations_go_up_down_and_up_again_on_a_real_database() {
    let url = actors::testing::empty_database().await;
    let mut c = connect(&url).await;
    let all = migrate::embedded().unwrap();

    let ran = migrate::up(&mut c).await.unwrap();
    assert_eq!(ran.len(), all.len());
    let after_up = tables(&c).await;
    for t in [
        "users",
        "conversation_history",
        "memories",
        "food_entries",
        "reminders",
        "reminder_completions",
        "xp_events",
        "streaks",
        "achievements",
        "saved_meals",
    ] {
        assert!(
            after_up.contains(&t.to_string()),
            "{t} missing: {after_up:?}"
        );
    }
    assert!(
        migrate::up(&mut c).await.unwrap().is_empty(),
        "up is idempotent"
    );

    // The newest migration goes first, whichever number it has.
    let newest = all.iter().map(|m| m.version).max().unwrap();
    let back = migrate::down(&mut c, 1).await.unwrap();
    assert_eq!(back[0].version, newest);
    assert!(migrate::pending(&mut c)
        .await
        .unwrap()
        .iter()
        .any(|p| p.version == newest));

    migrate::down(&mut c, all.len()).await.unwrap();
    assert_eq!(tables(&c).await, vec!["schema_migrations".to_string()]);

    assert_eq!(migrate::up(&mut c).await.unwrap().len(), all.len());
    assert_eq!(tables(&c).await, after_up);
}

#[actix_web::test]
async fn an_applied_migration_that_was_edited_is_refused() {
    let url = actors::testing::migrated_database().await;
    let mut c = connect(&url).await;
    c.execute(
        "UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 2",
        &[],
    )
    .await
    .unwrap();
    let err = migrate::up(&mut c).await.unwrap_err();
    assert!(
        matches!(err, migrate::MigrateError::Modified { version: 2, .. }),
        "{err}"
    );
}

#[actix_web::test]
async fn the_history_query_is_an_index_only_scan_of_the_covering_index() {
    let url = actors::testing::migrated_database().await;
    let c = connect(&url).await;
    c.batch_execute(
        "INSERT INTO users (user_id) SELECT 'u' || g FROM generate_series(1, 50) g;
         INSERT INTO conversation_history (user_id, role, content)
             SELECT 'u' || (g % 50 + 1), 'user', 'message ' || g FROM generate_series(1, 5000) g;",
    )
    .await
    .unwrap();
    // The visibility map must be set for an index-only scan.
    c.batch_execute("VACUUM ANALYZE conversation_history")
        .await
        .unwrap();
    let plan: Vec<String> = c
        .query(
            "EXPLAIN SELECT role, content, message_type, metadata, \"timestamp\"
               FROM conversation_history WHERE user_id = 'u7'
              ORDER BY \"timestamp\" DESC LIMIT 20",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(
        plan.contains("Index Only Scan using idx_conversation_history_user_ts"),
        "{plan}"
    );
}

#[actix_web::test]
async fn the_due_reminder_poll_uses_the_partial_index() {
    let url = actors::testing::migrated_database().await;
    let c = connect(&url).await;
    c.batch_execute(
        "INSERT INTO users (user_id) VALUES ('u');
         INSERT INTO reminders (user_id, kind, message, daily_time, active, next_trigger_at)
             SELECT 'u', 'daily', 'm', '08:00', g % 10 = 0, now() + (g || ' minutes')::interval
               FROM generate_series(1, 5000) g;
         ANALYZE reminders;",
    )
    .await
    .unwrap();
    let plan: Vec<String> = c
        .query(
            "EXPLAIN SELECT id FROM reminders WHERE active AND next_trigger_at <= now() + interval '5 minutes'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        plan.join("\n").contains("idx_reminders_active_due"),
        "{plan:?}"
    );
}
