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

/// A TCP proxy that can stall like `kill -STOP` (connections stay open,
/// nothing answers) or cut like `kill -9` (connections drop, new ones are
/// refused), so outage tests leave the shared servers alone.
pub struct FreezableProxy {
    pub port: u16,
    frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FreezableProxy {
    /// Forwards a local port to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Self {
        use std::sync::atomic::Ordering;
        use std::sync::Arc;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let me = Self {
            port,
            frozen: Arc::default(),
            generation: Arc::default(),
            cut: Arc::default(),
        };
        let (frozen, generation, cut) = (me.frozen.clone(), me.generation.clone(), me.cut.clone());
        tokio::task::spawn_local(async move {
            while let Ok((client, _)) = listener.accept().await {
                if cut.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let (up, frozen, generation) =
                    (upstream.clone(), frozen.clone(), generation.clone());
                let born = generation.load(Ordering::SeqCst);
                tokio::task::spawn_local(async move {
                    if let Ok(server) = tokio::net::TcpStream::connect(up).await {
                        let (cr, cw) = client.into_split();
                        let (sr, sw) = server.into_split();
                        let link = Link {
                            frozen,
                            generation,
                            born,
                        };
                        tokio::task::spawn_local(link.clone().pipe(cr, sw));
                        link.pipe(sr, cw).await;
                    }
                });
            }
        });
        me
    }

    pub fn freeze(&self, on: bool) {
        self.frozen.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Drops every open connection and refuses new ones until `restore`.
    pub fn cut(&self) {
        use std::sync::atomic::Ordering;
        self.cut.store(true, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// `url` (`scheme://[user@]host:port/rest`) rewritten to go through this proxy.
    pub fn url_for(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("url with scheme");
        let (auth, hostpart) = match rest.rsplit_once('@') {
            Some((a, h)) => (format!("{a}@"), h),
            None => (String::new(), rest),
        };
        let tail = hostpart.split_once('/').map(|(_, t)| t).unwrap_or("");
        format!("{scheme}://{auth}127.0.0.1:{}/{tail}", self.port)
    }
}

#[derive(Clone)]
struct Link {
    frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
    born: u64,
}

impl Link {
    fn alive(&self) -> bool {
        self.generation.load(std::sync::atomic::Ordering::SeqCst) == self.born
    }

    async fn hold(&self) -> bool {
        while self.frozen.load(std::sync::atomic::Ordering::SeqCst) {
            if !self.alive() {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        self.alive()
    }

    async fn pipe(
        self,
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            if !self.hold().await {
                return;
            }
            let read =
                tokio::time::timeout(std::time::Duration::from_millis(100), from.read(&mut buf))
                    .await;
            let n = match read {
                Err(_) => continue, // re-check cut/freeze
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(n)) => n,
            };
            if !self.hold().await || to.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }
}
