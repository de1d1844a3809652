//! Pipelined statements run in the order written, whatever each pooled
//! connection has prepared already.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test says where it failed

use actors::db::ops::lock_user_tz;
use actors::db::{Client, DbError};
use futures_util::future::try_join;
use futures_util::TryFutureExt;
use tokio_postgres::NoTls;

async fn client(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client.into()
}

const INSERT_USER: &str = "INSERT INTO users (user_id) VALUES ($1) ON CONFLICT DO NOTHING";

#[tokio::test]
async fn a_statement_still_to_prepare_is_not_overtaken_by_one_already_prepared() {
    let url = actors::testing::migrated_database().await;
    let mut c = client(&url).await;
    // Warm the connection with the SELECT only, as a food post would.
    {
        let tx = c.transaction().await.unwrap();
        assert!(matches!(
            lock_user_tz(&tx, "nobody").await,
            Err(DbError::NotFound)
        ));
    }
    for i in 0..5 {
        let user = format!("first-contact-{i}");
        let tx = c.transaction().await.unwrap();
        // The INSERT is new to this connection on the first round only.
        let (_, tz) = try_join(
            tx.execute(INSERT_USER, &[&user]).err_into::<DbError>(),
            lock_user_tz(&tx, &user),
        )
        .await
        .unwrap_or_else(|e| panic!("round {i}: the lock ran before the insert: {e:?}"));
        assert_eq!(tz, chrono_tz::UTC);
        tx.commit().await.unwrap();
    }
}

#[tokio::test]
async fn many_pipelined_statements_come_back_in_order() {
    let url = actors::testing::migrated_database().await;
    let c = client(&url).await;
    c.execute(INSERT_USER, &[&"warm"]).await.unwrap();
    // Half the statements are prepared, half are not: all run in order.
    let tx_free = futures_util::future::try_join_all((0..20).map(|i| {
        let c = &c;
        async move {
            if i % 2 == 0 {
                c.execute(INSERT_USER, &[&format!("u{i}")]).await?;
                Ok::<_, tokio_postgres::Error>(i)
            } else {
                let rows = c
                    .query("SELECT count(*) FROM users WHERE user_id LIKE 'u%'", &[])
                    .await?;
                let n: i64 = rows[0].get(0);
                assert_eq!(n, i64::from(i / 2 + 1), "statement {i} saw the wrong count");
                Ok(i)
            }
        }
    }))
    .await
    .unwrap();
    assert_eq!(tx_free.len(), 20);
}
