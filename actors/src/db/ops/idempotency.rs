//! Idempotency keys: the first response to a POST sent with an
//! `Idempotency-Key` is stored, and a retry with the same key gets it back
//! instead of running again. Rows live in PostgreSQL so every instance sees
//! them. A row older than 24 hours counts as absent; a claim without a
//! response older than 60 seconds belongs to a request whose instance died,
//! and a retry of the same request takes it over.

use serde_json::Value;

use crate::db::{Client, DbError, DbOperation};

/// Whose key it is: the caller's API key (as its SHA-256), the user the
/// request is about (empty when none), and the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyScope {
    pub api_key_hash: Vec<u8>,
    pub user_id: String,
    pub key: String,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The key is ours: run the request, then complete or release it.
    Claimed,
    /// The key was used for a different request.
    Mismatch,
    /// The same request is running elsewhere right now.
    InProgress,
    /// The request ran before: answer with this.
    Replay { status: u16, body: Option<Value> },
}

/// Claims a key for a request (identified by `request_hash`): a new key, an
/// expired one or a stale claim of the same request become ours.
#[derive(Debug, Clone)]
pub struct ClaimIdempotencyKey {
    pub scope: IdempotencyScope,
    pub request_hash: Vec<u8>,
}

impl DbOperation for ClaimIdempotencyKey {
    type Output = Claim;
    const NAME: &'static str = "claim_idempotency_key";

    async fn run(self, client: &mut Client) -> Result<Claim, DbError> {
        let s = &self.scope;
        // A claim released between our two statements leaves nothing to
        // read; trying again then normally claims it.
        for _ in 0..3 {
            let claimed = client
                .query(
                    "INSERT INTO idempotency_keys AS k (api_key_hash, user_id, key, request_hash)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (api_key_hash, user_id, key) DO UPDATE SET
                         request_hash = EXCLUDED.request_hash, status = NULL,
                         response_body = NULL, created_at = now()
                     WHERE k.created_at < now() - interval '24 hours'
                        OR (k.status IS NULL AND k.request_hash = EXCLUDED.request_hash
                            AND k.created_at < now() - interval '60 seconds')
                     RETURNING 1",
                    &[&s.api_key_hash, &s.user_id, &s.key, &self.request_hash],
                )
                .await?;
            if !claimed.is_empty() {
                return Ok(Claim::Claimed);
            }
            let rows = client
                .query(
                    "SELECT request_hash, status, response_body,
                            created_at >= now() - interval '60 seconds'
                     FROM idempotency_keys
                     WHERE api_key_hash = $1 AND user_id = $2 AND key = $3",
                    &[&s.api_key_hash, &s.user_id, &s.key],
                )
                .await?;
            let Some(row) = rows.first() else { continue };
            let request_hash: Vec<u8> = row.get(0);
            let status: Option<i16> = row.get(1);
            let fresh: bool = row.get(3);
            if request_hash != self.request_hash {
                return Ok(Claim::Mismatch);
            }
            match status {
                Some(status) => {
                    return Ok(Claim::Replay {
                        status: u16::try_from(status).unwrap_or(500),
                        body: row.get(2),
                    })
                }
                None if fresh => return Ok(Claim::InProgress),
                // Went stale between the two statements: take it over.
                None => continue,
            }
        }
        Ok(Claim::InProgress)
    }
}

/// Stores the response of a claimed request.
#[derive(Debug, Clone)]
pub struct CompleteIdempotencyKey {
    pub scope: IdempotencyScope,
    pub request_hash: Vec<u8>,
    pub status: u16,
    pub body: Option<Value>,
}

impl DbOperation for CompleteIdempotencyKey {
    type Output = ();
    const NAME: &'static str = "complete_idempotency_key";

    async fn run(self, client: &mut Client) -> Result<(), DbError> {
        let s = &self.scope;
        let status = i16::try_from(self.status).map_err(|_| DbError::Rejected("status".into()))?;
        client
            .execute(
                "UPDATE idempotency_keys SET status = $5, response_body = $6
                 WHERE api_key_hash = $1 AND user_id = $2 AND key = $3
                   AND request_hash = $4 AND status IS NULL",
                &[
                    &s.api_key_hash,
                    &s.user_id,
                    &s.key,
                    &self.request_hash,
                    &status,
                    &self.body,
                ],
            )
            .await?;
        Ok(())
    }
}

/// Gives up a claim whose request failed (5xx), so a retry runs again.
#[derive(Debug, Clone)]
pub struct ReleaseIdempotencyKey {
    pub scope: IdempotencyScope,
    pub request_hash: Vec<u8>,
}

impl DbOperation for ReleaseIdempotencyKey {
    type Output = ();
    const NAME: &'static str = "release_idempotency_key";

    async fn run(self, client: &mut Client) -> Result<(), DbError> {
        let s = &self.scope;
        client
            .execute(
                "DELETE FROM idempotency_keys
                 WHERE api_key_hash = $1 AND user_id = $2 AND key = $3
                   AND request_hash = $4 AND status IS NULL",
                &[&s.api_key_hash, &s.user_id, &s.key, &self.request_hash],
            )
            .await?;
        Ok(())
    }
}

/// Deletes up to `batch` keys past their 24 h window (the `created_at`
/// index finds them). Only one instance purges at a time (a transaction
/// advisory lock; the others get `None` and skip the round), and rows a
/// claim holds are skipped, never waited for. Returns how many went.
#[derive(Debug, Clone)]
pub struct PurgeIdempotencyKeys {
    pub batch: i64,
}

/// An arbitrary constant naming the purge's advisory lock.
const PURGE_LOCK: i64 = 0x0068_6169_6465_6d70; // "haidemp"

impl DbOperation for PurgeIdempotencyKeys {
    type Output = Option<u64>;
    const NAME: &'static str = "purge_idempotency_keys";

    async fn run(self, client: &mut Client) -> Result<Option<u64>, DbError> {
        let tx = client.transaction().await?;
        let rows = tx
            .query("SELECT pg_try_advisory_xact_lock($1)", &[&PURGE_LOCK])
            .await?;
        if !rows.first().is_some_and(|r| r.get::<_, bool>(0)) {
            return Ok(None);
        }
        let deleted = tx
            .execute(
                "DELETE FROM idempotency_keys WHERE ctid IN (
                     SELECT ctid FROM idempotency_keys
                      WHERE created_at < now() - interval '24 hours'
                      ORDER BY created_at LIMIT $1
                      FOR UPDATE SKIP LOCKED)",
                &[&self.batch],
            )
            .await?;
        tx.commit().await?;
        Ok(Some(deleted))
    }
}
