//! A pooled connection with a statement cache.
//!
//! Sending SQL text on every call makes PostgreSQL parse, analyse and plan
//! each statement again: on the chat's context queries that is ~3.7× the
//! work of running prepared ones (pgbench, 6.5k vs 23.8k TPS here). Each
//! connection prepares a statement the first time it runs it and reuses it
//! after; the statements are named per connection, so behind PgBouncer this
//! needs session pooling or PgBouncer ≥ 1.21 (`max_prepared_statements`).
//!
//! Pipelined statements must still run in the order they are written. A
//! statement that has to be prepared first would otherwise be overtaken by
//! a later one this connection already knows (seen: a `SELECT … FOR UPDATE`
//! of a user ran before the `INSERT` of that user sent ahead of it). So a
//! statement holds the connection's send turn from its lookup until its
//! execution is on the wire: FIFO, in the order the futures were first polled.

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::ops::{Deref, DerefMut};
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;

use bb8_postgres::PostgresConnectionManager;

use super::homes::Homes;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Error, GenericClient, NoTls, Row, Statement};

pub type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

#[derive(Debug, Default)]
struct Statements {
    prepared: Mutex<HashMap<&'static str, Statement>>,
    /// Held while a statement is looked up (and maybe prepared) and sent.
    send_turn: tokio::sync::Mutex<()>,
}

/// Awaits `fut`, releasing `turn` once its first poll has returned.
/// tokio-postgres writes a request to the connection on that first poll, so
/// the next statement in line goes out after it, and the two still overlap
/// on the wire (the pipelining the caller asked for).
async fn sent_then_release<T>(
    turn: tokio::sync::MutexGuard<'_, ()>,
    fut: impl Future<Output = T>,
) -> T {
    let mut fut = pin!(fut);
    if let Poll::Ready(out) = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
        return out;
    }
    drop(turn);
    fut.await
}

impl Statements {
    async fn get(&self, c: &impl GenericClient, sql: &'static str) -> Result<Statement, Error> {
        let cached = self
            .prepared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(sql)
            .cloned();
        if let Some(s) = cached {
            return Ok(s);
        }
        let s = c.prepare(sql).await?;
        self.prepared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sql, s.clone());
        Ok(s)
    }

    async fn query(
        &self,
        c: &impl GenericClient,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<Vec<Row>, Error> {
        let turn = self.send_turn.lock().await;
        let statement = self.get(c, sql).await?;
        sent_then_release(turn, c.query(&statement, params)).await
    }

    async fn execute(
        &self,
        c: &impl GenericClient,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<u64, Error> {
        let turn = self.send_turn.lock().await;
        let statement = self.get(c, sql).await?;
        sent_then_release(turn, c.execute(&statement, params)).await
    }

    /// `sql` as a simple query, in its turn.
    async fn simple(&self, c: &tokio_postgres::Client, sql: &'static str) -> Result<(), Error> {
        let turn = self.send_turn.lock().await;
        sent_then_release(turn, c.batch_execute(sql)).await
    }
}

/// A connection: `query`/`execute` take SQL known at compile time and run
/// its cached prepared statement; everything else of `tokio_postgres::Client`
/// is reachable through `Deref`.
pub struct Client {
    inner: tokio_postgres::Client,
    statements: Arc<Statements>,
    /// Opened on a worker (`Homes`), not where bb8 happened to ask.
    homed: bool,
}

impl Client {
    pub async fn query(&self, sql: &'static str, params: Params<'_>) -> Result<Vec<Row>, Error> {
        self.statements.query(&self.inner, sql, params).await
    }

    pub async fn execute(&self, sql: &'static str, params: Params<'_>) -> Result<u64, Error> {
        self.statements.execute(&self.inner, sql, params).await
    }

    /// Begins a transaction without waiting for PostgreSQL's answer: the
    /// `BEGIN` goes out ahead of the transaction's first statements, in the
    /// same round trip, and its answer is checked at `commit`. A `BEGIN`
    /// that fails leaves every statement after it failing too.
    pub async fn transaction(&mut self) -> Result<Transaction<'_>, Error> {
        let (client, statements) = (&self.inner, &self.statements);
        let turn = statements.send_turn.lock().await;
        let mut begin: Pending<'_> = Box::pin(client.batch_execute("BEGIN"));
        // Its first poll sends it; then it waits for the answer, which
        // `commit` collects.
        let done = poll_fn(|cx| Poll::Ready(begin.as_mut().poll(cx))).await;
        drop(turn);
        let begin = match done {
            Poll::Ready(answer) => {
                answer?;
                None
            }
            Poll::Pending => Some(begin),
        };
        Ok(Transaction {
            client,
            statements,
            begin,
            open: true,
        })
    }
}

/// A connection made outside the pool (tests, tools).
impl From<tokio_postgres::Client> for Client {
    fn from(inner: tokio_postgres::Client) -> Self {
        Self {
            inner,
            statements: Arc::default(),
            homed: false,
        }
    }
}

impl Deref for Client {
    type Target = tokio_postgres::Client;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl DerefMut for Client {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

type Pending<'a> = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>>;

/// A transaction on a [`Client`], with the same cached statements. Dropped
/// without `commit` (an error, a timeout), it rolls back, as
/// `tokio_postgres::Transaction` does: the `ROLLBACK` is sent at once and
/// runs before anything the connection's next user sends.
pub struct Transaction<'a> {
    client: &'a tokio_postgres::Client,
    statements: &'a Statements,
    /// The `BEGIN`'s answer, not awaited yet.
    begin: Option<Pending<'a>>,
    open: bool,
}

impl Transaction<'_> {
    pub async fn query(&self, sql: &'static str, params: Params<'_>) -> Result<Vec<Row>, Error> {
        self.statements.query(self.client, sql, params).await
    }

    pub async fn execute(&self, sql: &'static str, params: Params<'_>) -> Result<u64, Error> {
        self.statements.execute(self.client, sql, params).await
    }

    pub async fn commit(mut self) -> Result<(), Error> {
        if let Some(begin) = self.begin.take() {
            begin.await?;
        }
        // Sent: the transaction ends either way, even if this is dropped.
        self.open = false;
        self.statements.simple(self.client, "COMMIT").await
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        // No statement of this transaction is left to order it against:
        // each borrows the transaction. The first poll sends the ROLLBACK;
        // its answer is dropped, as tokio-postgres drops its own.
        let mut rollback = pin!(self.client.batch_execute("ROLLBACK"));
        let _ = rollback
            .as_mut()
            .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
    }
}

/// bb8's PostgreSQL manager, handing out [`Client`]s opened on the HTTP
/// workers once they have registered (`Homes`).
#[derive(Debug)]
pub struct PgManager {
    pg: PostgresConnectionManager<NoTls>,
    homes: Arc<Homes>,
}

impl PgManager {
    pub fn new(pg: PostgresConnectionManager<NoTls>, homes: Arc<Homes>) -> Self {
        Self { pg, homes }
    }
}

impl bb8::ManageConnection for PgManager {
    type Connection = Client;
    type Error = Error;

    async fn connect(&self) -> Result<Client, Error> {
        let pg = self.pg.clone();
        match self.homes.open_on(async move { pg.connect().await }).await {
            Some(opened) => Ok(Client {
                homed: true,
                ..opened?.into()
            }),
            None => Ok(self.pg.connect().await?.into()),
        }
    }

    async fn is_valid(&self, conn: &mut Client) -> Result<(), Error> {
        self.pg.is_valid(&mut conn.inner).await
    }

    /// Also retires a connection the start-up thread opened, once there
    /// are homes: its replacement opens on a worker.
    fn has_broken(&self, conn: &mut Client) -> bool {
        self.pg.has_broken(&mut conn.inner) || (!conn.homed && self.homes.any())
    }
}
