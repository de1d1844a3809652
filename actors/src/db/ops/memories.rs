//! Long-term memories as a resource: list, create, delete and search, and
//! the re-embedding of every stored vector (memories' and saved meals')
//! when the model changes.
//!
//! Reads go to the primary (`READ_ONLY = false`): a memory created or
//! deleted must show (or be gone) in the very next search, which a lagging
//! replica could not promise.

use chrono::{DateTime, Utc};

use super::conversation::vector;
use crate::db::{Client, DbError, DbOperation, Transaction};

#[derive(Debug, Clone, PartialEq)]
pub struct MemoryRow {
    pub id: i64,
    pub content: String,
    pub kind: String,
    pub created_at: DateTime<Utc>,
}

/// A user's memories, newest first, `limit` after the cursor (an id).
/// `NotFound` when the user does not exist.
#[derive(Debug, Clone)]
pub struct ListMemories {
    pub user_id: String,
    pub limit: i64,
    /// Only memories older than this id (the previous page's last).
    pub before: Option<i64>,
}

impl DbOperation for ListMemories {
    type Output = Vec<MemoryRow>;
    const NAME: &'static str = "list_memories";

    async fn run(self, client: &mut Client) -> Result<Vec<MemoryRow>, DbError> {
        let before = self.before.unwrap_or(i64::MAX);
        let rows = client
            .query(
                "SELECT m.id, m.content, m.kind, m.created_at
                   FROM users u
                   LEFT JOIN LATERAL (
                        SELECT id, content, kind, created_at FROM memories
                         WHERE user_id = u.user_id AND id < $2
                         ORDER BY id DESC LIMIT $3) m ON true
                  WHERE u.user_id = $1
                  ORDER BY m.id DESC",
                &[&self.user_id, &before, &self.limit],
            )
            .await?;
        of_existing_user(&rows, |r| MemoryRow {
            id: r.get(0),
            content: r.get(1),
            kind: r.get(2),
            created_at: r.get(3),
        })
    }
}

/// Stores a memory as given (an exact duplicate returns the stored one).
/// A fact filling a `slot` replaces the user's earlier fact in that slot.
/// `NotFound` when the user does not exist.
#[derive(Debug, Clone)]
pub struct CreateMemory {
    pub user_id: String,
    pub kind: String,
    pub content: String,
    pub slot: Option<String>,
    pub embedding: Vec<f32>,
    pub embedding_model: String,
}

/// The stored memory and whether this call created it.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedMemory {
    pub memory: MemoryRow,
    pub created: bool,
}

impl DbOperation for CreateMemory {
    type Output = CreatedMemory;
    const NAME: &'static str = "create_memory";

    async fn run(self, client: &mut Client) -> Result<CreatedMemory, DbError> {
        let tx = client.transaction().await?;
        let exists = tx
            .query(
                "SELECT 1 FROM users WHERE user_id = $1 FOR KEY SHARE",
                &[&self.user_id],
            )
            .await?;
        if exists.is_empty() {
            return Err(DbError::NotFound);
        }
        let m = NewMemoryRef {
            kind: &self.kind,
            content: &self.content,
            slot: self.slot.as_deref(),
            embedding: vector(&self.embedding),
            model: &self.embedding_model,
        };
        let (row, created) = insert_memory(&tx, &self.user_id, &m).await?;
        tx.commit().await?;
        Ok(CreatedMemory {
            memory: row,
            created,
        })
    }
}

pub(crate) struct NewMemoryRef<'a> {
    pub kind: &'a str,
    pub content: &'a str,
    pub slot: Option<&'a str>,
    pub embedding: pgvector::Vector,
    pub model: &'a str,
}

/// Inside a transaction: supersedes the slot's earlier fact, then inserts
/// (or finds the identical memory). Returns the row and whether it is new.
pub(crate) async fn insert_memory(
    tx: &Transaction<'_>,
    user_id: &str,
    m: &NewMemoryRef<'_>,
) -> Result<(MemoryRow, bool), DbError> {
    if let Some(slot) = m.slot {
        tx.execute(
            "DELETE FROM memories WHERE user_id = $1 AND slot = $2 AND content <> $3",
            &[&user_id, &slot, &m.content],
        )
        .await?;
    }
    // `xmax = 0` only on a row this statement inserted; an identical
    // memory is touched (DO UPDATE) so that it is returned, not stored twice.
    let rows = tx
        .query(
            "INSERT INTO memories (user_id, kind, content, embedding, embedding_model, slot)
             VALUES ($1, $2, $3, $4::vector, $5, $6)
             ON CONFLICT (user_id, content) DO UPDATE SET slot = COALESCE(EXCLUDED.slot, memories.slot)
             RETURNING id, content, kind, created_at, (xmax = 0)",
            &[&user_id, &m.kind, &m.content, &m.embedding, &m.model, &m.slot],
        )
        .await?;
    let r = rows
        .first()
        .ok_or_else(|| DbError::Rejected("memory insert returned nothing".into()))?;
    Ok((
        MemoryRow {
            id: r.get(0),
            content: r.get(1),
            kind: r.get(2),
            created_at: r.get(3),
        },
        r.get(4),
    ))
}

/// Forgets one memory. Returns whether it existed (for this user).
#[derive(Debug, Clone)]
pub struct DeleteMemory {
    pub user_id: String,
    pub memory_id: i64,
}

impl DbOperation for DeleteMemory {
    type Output = bool;
    const NAME: &'static str = "delete_memory";

    async fn run(self, client: &mut Client) -> Result<bool, DbError> {
        let rows = client
            .query(
                "DELETE FROM memories WHERE id = $1 AND user_id = $2 RETURNING 1",
                &[&self.memory_id, &self.user_id],
            )
            .await?;
        Ok(!rows.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemoryHitRow {
    pub id: i64,
    pub content: String,
    /// Cosine similarity, 1 = same direction.
    pub score: f64,
}

/// The user's exact top-`k` memories nearest to `embedding`, best first:
/// the same statement shape as the chat's context (B-tree on user_id, then
/// an exact sort), and only vectors of `embedding_model`.
/// `NotFound` when the user does not exist.
#[derive(Debug, Clone)]
pub struct SearchMemories {
    pub user_id: String,
    pub embedding: Vec<f32>,
    pub embedding_model: String,
    pub k: i64,
}

impl DbOperation for SearchMemories {
    type Output = Vec<MemoryHitRow>;
    const NAME: &'static str = "search_memories";

    async fn run(self, client: &mut Client) -> Result<Vec<MemoryHitRow>, DbError> {
        let q = vector(&self.embedding);
        let rows = client
            .query(
                "SELECT m.id, m.content, m.d
                   FROM users u
                   LEFT JOIN LATERAL (
                        SELECT id, content, (embedding <=> $2::vector)::float8 AS d
                          FROM memories
                         WHERE user_id = u.user_id AND embedding_model = $3
                         ORDER BY embedding <=> $2::vector LIMIT $4) m ON true
                  WHERE u.user_id = $1
                  ORDER BY m.d",
                &[&self.user_id, &q, &self.embedding_model, &self.k],
            )
            .await?;
        of_existing_user(&rows, |r| MemoryHitRow {
            id: r.get(0),
            content: r.get(1),
            score: 1.0 - r.get::<_, f64>(2),
        })
    }
}

/// Which models made the stored vectors that are searched (memories and
/// saved meals), sorted, each once (a skip scan of each table's model
/// index: a few index probes however many rows there are).
#[derive(Debug, Clone)]
pub struct EmbeddingModelsInUse;

impl DbOperation for EmbeddingModelsInUse {
    type Output = Vec<String>;
    const NAME: &'static str = "embedding_models_in_use";

    async fn run(self, client: &mut Client) -> Result<Vec<String>, DbError> {
        let rows = client
            .query(
                "WITH RECURSIVE m AS (
                    (SELECT embedding_model FROM memories ORDER BY embedding_model LIMIT 1)
                    UNION ALL
                    SELECT (SELECT embedding_model FROM memories
                             WHERE embedding_model > m.embedding_model
                             ORDER BY embedding_model LIMIT 1)
                      FROM m WHERE m.embedding_model IS NOT NULL),
                 s AS (
                    (SELECT embedding_model FROM saved_meals ORDER BY embedding_model LIMIT 1)
                    UNION ALL
                    SELECT (SELECT embedding_model FROM saved_meals
                             WHERE embedding_model > s.embedding_model
                             ORDER BY embedding_model LIMIT 1)
                      FROM s WHERE s.embedding_model IS NOT NULL)
                 SELECT embedding_model FROM m WHERE embedding_model IS NOT NULL
                 UNION
                 SELECT embedding_model FROM s WHERE embedding_model IS NOT NULL
                 ORDER BY 1",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

/// What holds vectors that must all come from one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedded {
    Memories,
    SavedMeals,
}

impl Embedded {
    pub fn label(self) -> &'static str {
        match self {
            Embedded::Memories => "memories",
            Embedded::SavedMeals => "saved meals",
        }
    }
}

/// Up to `limit` rows of `what` whose vector is not `embedding_model`'s:
/// (id as text, the text to embed), with how many such remain in all (for
/// progress).
#[derive(Debug, Clone)]
pub struct StaleVectors {
    pub what: Embedded,
    pub embedding_model: String,
    pub limit: i64,
}

impl DbOperation for StaleVectors {
    type Output = (Vec<(String, String)>, i64);
    const NAME: &'static str = "stale_vectors";

    async fn run(self, client: &mut Client) -> Result<Self::Output, DbError> {
        let args: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
            [&self.embedding_model, &self.limit];
        match self.what {
            Embedded::Memories => {
                let rows = client
                    .query(
                        "SELECT id::text, content, count(*) OVER ()
                           FROM memories WHERE embedding_model <> $1 ORDER BY id LIMIT $2",
                        &args,
                    )
                    .await?;
                let total = rows.first().map_or(0, |r| r.get(2));
                Ok((rows.iter().map(|r| (r.get(0), r.get(1))).collect(), total))
            }
            Embedded::SavedMeals => super::meals::stale_meals(client, &args).await,
        }
    }
}

/// Replaces the vectors of `what` with `embedding_model`'s, in one
/// transaction; nothing else on the rows changes.
#[derive(Debug, Clone)]
pub struct StoreVectors {
    pub what: Embedded,
    pub embedding_model: String,
    pub vectors: Vec<(String, Vec<f32>)>,
}

impl DbOperation for StoreVectors {
    type Output = u64;
    const NAME: &'static str = "store_vectors";

    async fn run(self, client: &mut Client) -> Result<u64, DbError> {
        let sql = match self.what {
            Embedded::Memories => {
                "UPDATE memories SET embedding = $2::vector, embedding_model = $3
                  WHERE id = $1::text::bigint"
            }
            Embedded::SavedMeals => {
                "UPDATE saved_meals SET embedding = $2::vector, embedding_model = $3
                  WHERE id = $1::text::uuid"
            }
        };
        let tx = client.transaction().await?;
        let mut n = 0;
        for (id, v) in &self.vectors {
            n += tx
                .execute(sql, &[id, &vector(v), &self.embedding_model])
                .await?;
        }
        tx.commit().await?;
        Ok(n)
    }
}

/// The rows of a `users LEFT JOIN LATERAL (…memories…)` query: none means
/// no such user (404); a user without memories gives one row of NULLs,
/// which is skipped.
fn of_existing_user<T>(
    rows: &[tokio_postgres::Row],
    row: impl Fn(&tokio_postgres::Row) -> T,
) -> Result<Vec<T>, DbError> {
    if rows.is_empty() {
        return Err(DbError::NotFound);
    }
    Ok(rows
        .iter()
        .filter(|r| r.get::<_, Option<i64>>(0).is_some())
        .map(row)
        .collect())
}
