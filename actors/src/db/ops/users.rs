use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::types::Type;
use tokio_postgres::Row;

use crate::db::{Client, DbError, DbOperation};

#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub user_id: String,
    pub profile: Value,
    pub preferences: Value,
    pub created_at: DateTime<Utc>,
}

impl UserRow {
    fn from_row(r: &Row) -> Self {
        Self {
            user_id: r.get(0),
            profile: r.get(1),
            preferences: r.get(2),
            created_at: r.get(3),
        }
    }
}

/// Creates a user; `Conflict` when the id is taken.
#[derive(Debug, Clone)]
pub struct CreateUser {
    pub user_id: String,
    pub profile: Value,
    pub preferences: Value,
}

impl DbOperation for CreateUser {
    type Output = UserRow;
    const NAME: &'static str = "create_user";

    async fn run(self, client: &mut Client) -> Result<UserRow, DbError> {
        let rows = client
            .query_typed(
                "INSERT INTO users (user_id, profile, preferences) VALUES ($1, $2, $3)
                 RETURNING user_id, profile, preferences, created_at",
                &[
                    (&self.user_id, Type::TEXT),
                    (&self.profile, Type::JSONB),
                    (&self.preferences, Type::JSONB),
                ],
            )
            .await?;
        rows.first().map(UserRow::from_row).ok_or(DbError::NotFound)
    }
}

/// Reads one user.
#[derive(Debug, Clone)]
pub struct GetUser {
    pub user_id: String,
}

impl DbOperation for GetUser {
    type Output = Option<UserRow>;
    const NAME: &'static str = "get_user";
    const READ_ONLY: bool = true;

    async fn run(self, client: &mut Client) -> Result<Option<UserRow>, DbError> {
        let rows = client
            .query_typed(
                "SELECT user_id, profile, preferences, created_at FROM users WHERE user_id = $1",
                &[(&self.user_id, Type::TEXT)],
            )
            .await?;
        Ok(rows.first().map(UserRow::from_row))
    }
}

/// Deletes a user and, through the cascading keys, every row of theirs.
/// Returns whether the user existed.
#[derive(Debug, Clone)]
pub struct DeleteUser {
    pub user_id: String,
}

impl DbOperation for DeleteUser {
    type Output = bool;
    const NAME: &'static str = "delete_user";

    async fn run(self, client: &mut Client) -> Result<bool, DbError> {
        let rows = client
            .query_typed(
                "DELETE FROM users WHERE user_id = $1 RETURNING 1",
                &[(&self.user_id, Type::TEXT)],
            )
            .await?;
        Ok(!rows.is_empty())
    }
}

/// The user's timezone (profile `timezone`, default UTC) inside a
/// transaction, locking the user row so concurrent writes for one user
/// serialise; `NotFound` when the user does not exist.
pub async fn lock_user_tz(
    tx: &tokio_postgres::Transaction<'_>,
    user_id: &str,
) -> Result<chrono_tz::Tz, DbError> {
    let rows = tx
        .query_typed(
            "SELECT profile->>'timezone' FROM users WHERE user_id = $1 FOR UPDATE",
            &[(&user_id, Type::TEXT)],
        )
        .await?;
    let row = rows.first().ok_or(DbError::NotFound)?;
    let tz: Option<String> = row.get(0);
    Ok(tz
        .and_then(|t| domain::time::parse_timezone(&t).ok())
        .unwrap_or(chrono_tz::UTC))
}
