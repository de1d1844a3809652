use chrono::{DateTime, Utc};
use serde_json::Value;
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
            .query(
                "INSERT INTO users (user_id, profile, preferences) VALUES ($1, $2, $3)
                 RETURNING user_id, profile, preferences, created_at",
                &[&self.user_id, &self.profile, &self.preferences],
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
            .query(
                "SELECT user_id, profile, preferences, created_at FROM users WHERE user_id = $1",
                &[&self.user_id],
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
            .query(
                "DELETE FROM users WHERE user_id = $1 RETURNING 1",
                &[&self.user_id],
            )
            .await?;
        Ok(!rows.is_empty())
    }
}

/// The user's timezone (profile `timezone`, default UTC) inside a
/// transaction, locking the user row so concurrent writes for one user
/// serialise; `NotFound` when the user does not exist.
pub async fn lock_user_tz(
    tx: &crate::db::Transaction<'_>,
    user_id: &str,
) -> Result<chrono_tz::Tz, DbError> {
    let rows = tx
        .query(
            "SELECT profile->>'timezone' FROM users WHERE user_id = $1 FOR UPDATE",
            &[&user_id],
        )
        .await?;
    let row = rows.first().ok_or(DbError::NotFound)?;
    let tz: Option<String> = row.get(0);
    Ok(domain::profile::timezone_named(tz.as_deref()))
}

const MAX_FIELDS: i64 = domain::profile::MAX_FIELDS as i64;
const MAX_BYTES: i32 = domain::profile::MAX_BYTES as i32;

/// No row updated: the user is missing (`None`) or the caps refused the
/// value (`Rejected(what)`).
async fn within_caps(
    client: &mut Client,
    user_id: &str,
    stored: Option<Value>,
    what: &str,
) -> Result<Option<Value>, DbError> {
    if stored.is_some() {
        return Ok(stored);
    }
    let exists = client
        .query("SELECT 1 FROM users WHERE user_id = $1", &[&user_id])
        .await?;
    if exists.is_empty() {
        Ok(None)
    } else {
        Err(DbError::Rejected(what.into()))
    }
}

/// Sets one profile field, or removes it when `value` is `None`, in one
/// statement; returns the stored profile, `None` when the user does not exist.
#[derive(Debug, Clone)]
pub struct SetProfileField {
    pub user_id: String,
    pub field: String,
    pub value: Option<Value>,
}

impl DbOperation for SetProfileField {
    type Output = Option<Value>;
    const NAME: &'static str = "set_profile_field";

    async fn run(self, client: &mut Client) -> Result<Option<Value>, DbError> {
        let rows = client
            .query(
                // The caps hold in the statement, so concurrent PATCHes can't
                // pass them together; removing a field is always allowed.
                "UPDATE users SET
                     profile = CASE WHEN $3::jsonb IS NULL THEN profile - $2
                                    ELSE profile || jsonb_build_object($2, $3) END,
                     updated_at = now()
                 WHERE user_id = $1
                   AND ($3::jsonb IS NULL
                        OR ((profile ? $2 OR (SELECT count(*) FROM jsonb_object_keys(profile)) < $4)
                            AND octet_length((profile || jsonb_build_object($2, $3))::text) <= $5))
                 RETURNING profile",
                &[
                    &self.user_id,
                    &self.field,
                    &self.value,
                    &MAX_FIELDS,
                    &MAX_BYTES,
                ],
            )
            .await?;
        within_caps(
            client,
            &self.user_id,
            rows.first().map(|r| r.get(0)),
            "profile_limits",
        )
        .await
    }
}

/// Sets one preference, or removes it when `value` is `None`, in one
/// statement; returns the stored preferences, `None` when the user does not exist.
#[derive(Debug, Clone)]
pub struct SetPreference {
    pub user_id: String,
    pub preference: String,
    pub value: Option<Value>,
}

impl DbOperation for SetPreference {
    type Output = Option<Value>;
    const NAME: &'static str = "set_preference";

    async fn run(self, client: &mut Client) -> Result<Option<Value>, DbError> {
        let rows = client
            .query(
                "UPDATE users SET
                     preferences = CASE WHEN $3::jsonb IS NULL THEN preferences - $2
                                        ELSE preferences || jsonb_build_object($2, $3) END,
                     updated_at = now()
                 WHERE user_id = $1
                   AND ($3::jsonb IS NULL
                        OR ((preferences ? $2
                             OR (SELECT count(*) FROM jsonb_object_keys(preferences)) < $4)
                            AND octet_length((preferences || jsonb_build_object($2, $3))::text) <= $5))
                 RETURNING preferences",
                &[&self.user_id, &self.preference, &self.value, &MAX_FIELDS, &MAX_BYTES],
            )
            .await?;
        within_caps(
            client,
            &self.user_id,
            rows.first().map(|r| r.get(0)),
            "preference_limits",
        )
        .await
    }
}

/// Deletes a user's conversation history; profile, preferences and long-term
/// memories stay. Returns how many messages went; `NotFound` for an unknown user.
#[derive(Debug, Clone)]
pub struct ClearConversation {
    pub user_id: String,
}

impl DbOperation for ClearConversation {
    type Output = u64;
    const NAME: &'static str = "clear_conversation";

    async fn run(self, client: &mut Client) -> Result<u64, DbError> {
        let tx = client.transaction().await?;
        // The lock orders this after a chat turn already writing for the user.
        lock_user_tz(&tx, &self.user_id).await?;
        let deleted = tx
            .execute(
                "DELETE FROM conversation_history WHERE user_id = $1",
                &[&self.user_id],
            )
            .await?;
        tx.commit().await?;
        Ok(deleted)
    }
}
