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
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;

use bb8_postgres::PostgresConnectionManager;
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
}

/// A connection: `query`/`execute` take SQL known at compile time and run
/// its cached prepared statement; everything else of `tokio_postgres::Client`
/// is reachable through `Deref`.
pub struct Client {
    inner: tokio_postgres::Client,
    statements: Arc<Statements>,
}

impl Client {
    pub async fn query(&self, sql: &'static str, params: Params<'_>) -> Result<Vec<Row>, Error> {
        self.statements.query(&self.inner, sql, params).await
    }

    pub async fn execute(&self, sql: &'static str, params: Params<'_>) -> Result<u64, Error> {
        self.statements.execute(&self.inner, sql, params).await
    }

    pub async fn transaction(&mut self) -> Result<Transaction<'_>, Error> {
        Ok(Transaction {
            inner: self.inner.transaction().await?,
            statements: Arc::clone(&self.statements),
        })
    }
}

/// A connection made outside the pool (tests, tools).
impl From<tokio_postgres::Client> for Client {
    fn from(inner: tokio_postgres::Client) -> Self {
        Self {
            inner,
            statements: Arc::default(),
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

/// A transaction on a [`Client`], with the same cached statements.
pub struct Transaction<'a> {
    inner: tokio_postgres::Transaction<'a>,
    statements: Arc<Statements>,
}

impl Transaction<'_> {
    pub async fn query(&self, sql: &'static str, params: Params<'_>) -> Result<Vec<Row>, Error> {
        self.statements.query(&self.inner, sql, params).await
    }

    pub async fn execute(&self, sql: &'static str, params: Params<'_>) -> Result<u64, Error> {
        self.statements.execute(&self.inner, sql, params).await
    }

    pub async fn commit(self) -> Result<(), Error> {
        self.inner.commit().await
    }
}

/// bb8's PostgreSQL manager, handing out [`Client`]s.
#[derive(Debug)]
pub struct PgManager(pub PostgresConnectionManager<NoTls>);

impl bb8::ManageConnection for PgManager {
    type Connection = Client;
    type Error = Error;

    async fn connect(&self) -> Result<Client, Error> {
        Ok(self.0.connect().await?.into())
    }

    async fn is_valid(&self, conn: &mut Client) -> Result<(), Error> {
        self.0.is_valid(&mut conn.inner).await
    }

    fn has_broken(&self, conn: &mut Client) -> bool {
        self.0.has_broken(&mut conn.inner)
    }
}
