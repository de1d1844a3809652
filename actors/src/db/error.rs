use tokio_postgres::error::SqlState;

use crate::error::ActorError;

/// Why a database operation failed, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Actor(#[from] ActorError),
    /// No connection could be had within the pool's timeout, or it broke.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database operation timed out")]
    Timeout,
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was violated (e.g. the user exists).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The data broke a constraint the caller should have checked.
    #[error("rejected by the database: {0}")]
    Rejected(String),
    #[error("database error: {0}")]
    Query(tokio_postgres::Error),
    /// A failure seen by another caller sharing the same load (single-flight).
    #[error("database error: {0}")]
    Shared(String),
}

impl DbError {
    /// A copy for the other waiters of a shared load; driver errors, which
    /// cannot be cloned, keep their message.
    pub fn duplicate(&self) -> DbError {
        match self {
            DbError::Actor(a) => DbError::Actor(*a),
            DbError::Unavailable(s) => DbError::Unavailable(s.clone()),
            DbError::Timeout => DbError::Timeout,
            DbError::NotFound => DbError::NotFound,
            DbError::Conflict(s) => DbError::Conflict(s.clone()),
            DbError::Rejected(s) => DbError::Rejected(s.clone()),
            DbError::Query(e) => DbError::Shared(e.to_string()),
            DbError::Shared(s) => DbError::Shared(s.clone()),
        }
    }
}

impl crate::cache::LoadError for DbError {
    fn duplicate(&self) -> Self {
        DbError::duplicate(self)
    }

    fn not_encodable(e: serde_json::Error) -> Self {
        DbError::Shared(format!("cache encode: {e}"))
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.is_closed() {
            return DbError::Unavailable(e.to_string());
        }
        match e.code() {
            Some(c) if *c == SqlState::UNIQUE_VIOLATION => DbError::Conflict(constraint(&e)),
            Some(c)
                if *c == SqlState::FOREIGN_KEY_VIOLATION
                    || *c == SqlState::CHECK_VIOLATION
                    || *c == SqlState::NOT_NULL_VIOLATION =>
            {
                DbError::Rejected(constraint(&e))
            }
            Some(c)
                if *c == SqlState::ADMIN_SHUTDOWN
                    || *c == SqlState::CANNOT_CONNECT_NOW
                    || *c == SqlState::TOO_MANY_CONNECTIONS =>
            {
                DbError::Unavailable(e.to_string())
            }
            Some(c) if *c == SqlState::QUERY_CANCELED => DbError::Timeout,
            _ => DbError::Query(e),
        }
    }
}

impl From<bb8::RunError<tokio_postgres::Error>> for DbError {
    fn from(e: bb8::RunError<tokio_postgres::Error>) -> Self {
        match e {
            bb8::RunError::User(e) => DbError::Unavailable(e.to_string()),
            bb8::RunError::TimedOut => {
                DbError::Unavailable("no connection available in time".into())
            }
        }
    }
}

/// The constraint's name only: never leak SQL or row data to callers.
fn constraint(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .and_then(|d| d.constraint())
        .unwrap_or("constraint")
        .to_string()
}
