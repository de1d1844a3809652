//! Test support: one PostgreSQL database per test, cloned from a template
//! migrated once per migration set (cloning takes milliseconds; migrating
//! each time would not). Needs `DATABASE_URL` of a role that may create
//! databases, as `./dev test` provides.

use tokio_postgres::NoTls;

use crate::db::migrate;

/// The admin URL from the environment, or a panic that says how to get one.
pub fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set: run the tests with `./dev test` (it starts PostgreSQL)")
}

/// `url` with its database name replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..path_start], db);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test database server: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// Creates an empty database (no migrations) and returns its URL.
pub async fn empty_database() -> String {
    let admin = admin_url();
    let name = format!("ha_test_{}", uuid::Uuid::new_v4().simple());
    connect(&admin)
        .await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("CREATE DATABASE");
    with_database(&admin, &name)
}

/// Creates a migrated database for one test and returns its URL.
pub async fn migrated_database() -> String {
    let admin = admin_url();
    let template = format!("ha_tpl_{}", migrate::fingerprint().expect("migrations"));
    let client = connect(&admin).await;
    // Tests run as parallel processes: one of them builds the template.
    client
        .execute("SELECT pg_advisory_lock(7243)", &[])
        .await
        .expect("lock");
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&template])
        .await
        .expect("pg_database")
        .is_some();
    if !exists {
        let building = format!("{template}_building");
        // Left over by a run killed half-way; separate statements because
        // neither may run inside the implicit transaction of a batch.
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {building}"))
            .await
            .expect("drop stale template");
        client
            .batch_execute(&format!("CREATE DATABASE {building}"))
            .await
            .expect("create template");
        {
            let mut tpl = connect(&with_database(&admin, &building)).await;
            migrate::up(&mut tpl).await.expect("migrate template");
        }
        // The migrating session must be gone before the rename.
        for _ in 0..100 {
            let busy: i64 = client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                    &[&building],
                )
                .await
                .expect("pg_stat_activity")
                .get(0);
            if busy == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // Renaming publishes the template only once it is complete.
        client
            .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {template}"))
            .await
            .expect("publish template");
    }
    client
        .execute("SELECT pg_advisory_unlock(7243)", &[])
        .await
        .expect("unlock");
    let name = format!("ha_test_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
        .await
        .expect("clone template");
    with_database(&admin, &name)
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_name_is_replaced_and_the_rest_kept() {
        assert_eq!(
            with_database(
                "postgres://u:p@127.0.0.1:5439/health_agent?sslmode=disable",
                "x"
            ),
            "postgres://u:p@127.0.0.1:5439/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "y"), "postgres://h:1/y");
    }
}
