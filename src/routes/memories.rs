//! A user's long-term memories, as Zep and mem0 offer them: list (newest
//! first, by cursor), create (stored as given, embedded by the current
//! provider), delete (the next chat and search no longer see it: memories
//! are read from the primary, never from a cache) and search (the chat's
//! exact per-user top-k).

use actix_web::{delete, get, post, web, HttpResponse};
use actors::db::ops::memories::{
    CreateMemory, DeleteMemory, ListMemories, MemoryRow, SearchMemories,
};
use actors::db::DbError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::docs::{MemoryPath, UserPath};
use super::users::reject_nul;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, PathItem, PathUser};
use crate::state::AppState;

pub const MAX_CONTENT_CHARS: usize = 2000;
const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;
const DEFAULT_K: i64 = 5;
const MAX_K: i64 = 50;

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "42", "content": "I'm allergic to peanuts",
    "created_at": "2026-06-01T08:00:00Z"}))]
pub struct MemoryResponse {
    id: String,
    content: String,
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<MemoryRow> for MemoryResponse {
    fn from(m: MemoryRow) -> Self {
        Self {
            id: m.id.to_string(),
            content: m.content,
            created_at: m
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemoryList {
    /// Newest first.
    memories: Vec<MemoryResponse>,
    /// Pass as `cursor` for the next page; null on the last one.
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1–100, default 20.
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The previous page's `next_cursor`.
    #[serde(default)]
    cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"content": "I'm allergic to peanuts"}))]
pub struct CreateMemoryRequest {
    /// Stored as given: 1–2000 characters, not blank.
    #[schema(min_length = 1, max_length = 2000)]
    content: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// What to look for: 1–8192 bytes.
    q: Option<String>,
    /// How many results, 1–50, default 5.
    #[serde(default)]
    #[param(minimum = 1, maximum = 50)]
    k: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHit {
    id: String,
    content: String,
    /// Cosine similarity to the query (1 = same meaning).
    score: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    /// Best first; this user's memories only.
    results: Vec<SearchHit>,
}

fn int_param(field: &str, raw: Option<&str>, default: i64, max: i64) -> ApiResult<i64> {
    let Some(raw) = raw else { return Ok(default) };
    match raw.trim().parse::<i64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::invalid_field(
            field,
            format!("must be an integer from 1 to {max}, got {raw:?}"),
        )),
    }
}

fn not_found(e: DbError) -> ApiError {
    match e {
        DbError::NotFound => ApiError::user_not_found(),
        other => other.into(),
    }
}

/// `GET /api/v1/users/{user_id}/memories`.
#[utoipa::path(
    tag = "memories",
    params(UserPath, ListQuery),
    responses(
        (status = 200, description = "A page of memories, newest first.", body = MemoryList),
        (status = 400, description = "`user_id`, `limit` or `cursor` is invalid.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[get("/memories")]
pub async fn list_memories(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
    query: web::Query<ListQuery>,
) -> ApiResult<web::Json<MemoryList>> {
    let user_id = user_id.into_inner();
    let limit = int_param("limit", query.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let before = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(c.parse::<i64>().map_err(|_| {
            ApiError::invalid_field("cursor", "must be a `next_cursor` from an earlier page")
        })?),
    };
    let rows = state
        .db
        .run(ListMemories {
            user_id,
            limit,
            before,
        })
        .await
        .map_err(not_found)?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|m| m.id.to_string()))
        .flatten();
    Ok(web::Json(MemoryList {
        memories: rows.into_iter().map(MemoryResponse::from).collect(),
        next_cursor,
    }))
}

/// `POST /api/v1/users/{user_id}/memories`.
#[utoipa::path(
    tag = "memories",
    description = "Stores the memory as given, embedded by the current embeddings provider. \
        An identical memory is not stored twice (200 with the stored one); a fact that \
        updates a single-valued one (diet, goal weight, name) replaces it.",
    params(UserPath),
    request_body = CreateMemoryRequest,
    responses(
        (status = 201, description = "Stored.", body = MemoryResponse),
        (status = 200, description = "Already stored: the same memory.", body = MemoryResponse),
        (status = 400, description = "`user_id` or `content` is invalid.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 413, response = super::docs::PayloadTooLarge),
        (status = 415, response = super::docs::UnsupportedMediaType),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[post("/memories")]
pub async fn create_memory(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
    Body(body): Body<CreateMemoryRequest>,
) -> ApiResult<HttpResponse> {
    let user_id = user_id.into_inner();
    let content = body.content.trim().to_owned();
    reject_nul("content", &content)?;
    let len = content.chars().count();
    if len == 0 || len > MAX_CONTENT_CHARS {
        return Err(ApiError::invalid_field(
            "content",
            format!("must be 1 to {MAX_CONTENT_CHARS} characters, got {len}"),
        ));
    }
    // A single-valued fact stated here ("I'm vegan now") supersedes too.
    let facts = domain::memory::extract(&content);
    let (kind, slot) = match facts.as_slice() {
        [one] => (one.kind, one.slot),
        _ => ("fact", None),
    };
    let embedding = state
        .llm
        .embed(vec![content.clone()])
        .await?
        .pop()
        .unwrap_or_default();
    let stored = state
        .db
        .run(CreateMemory {
            user_id,
            kind: kind.to_owned(),
            content,
            slot: slot.map(str::to_owned),
            embedding,
            embedding_model: state.llm.shared().embedding_model(),
        })
        .await
        .map_err(not_found)?;
    let body = MemoryResponse::from(stored.memory);
    Ok(if stored.created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// `DELETE /api/v1/users/{user_id}/memories/{memory_id}`.
#[utoipa::path(
    tag = "memories",
    params(MemoryPath),
    responses(
        (status = 204, description = "Forgotten: the next chat and search no longer see it."),
        (status = 400, description = "`user_id` is invalid.", body = ErrorBody),
        (status = 404, description = "No such memory of this user.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[delete("/memories/{memory_id}")]
pub async fn delete_memory(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
    PathItem(item): PathItem,
) -> ApiResult<HttpResponse> {
    let user_id = user_id.into_inner();
    let memory_not_found = || ApiError::NotFound("memory not found".into());
    let memory_id: i64 = item.parse().map_err(|_| memory_not_found())?;
    let existed = state.db.run(DeleteMemory { user_id, memory_id }).await?;
    if existed {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(memory_not_found())
    }
}

/// `GET /api/v1/users/{user_id}/memories/search?q=...&k=5`.
#[utoipa::path(
    tag = "memories",
    description = "The user's memories nearest in meaning to `q`: the same exact per-user \
        top-k the chat puts in its prompt, best first.",
    params(UserPath, SearchQuery),
    responses(
        (status = 200, description = "Best first.", body = SearchResults),
        (status = 400, description = "`user_id`, `q` or `k` is invalid.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[get("/memories/search")]
pub async fn search_memories(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
    query: web::Query<SearchQuery>,
) -> ApiResult<web::Json<SearchResults>> {
    let user_id = user_id.into_inner();
    let q = query.q.as_deref().unwrap_or_default().trim();
    if q.is_empty() {
        return Err(ApiError::invalid_field("q", "required: what to search for"));
    }
    reject_nul("q", q)?;
    if q.len() > super::chat::MAX_MESSAGE_BYTES {
        return Err(ApiError::invalid_field(
            "q",
            format!("must be at most {} bytes", super::chat::MAX_MESSAGE_BYTES),
        ));
    }
    let k = int_param("k", query.k.as_deref(), DEFAULT_K, MAX_K)?;
    let embedding = state
        .llm
        .embed(vec![q.to_owned()])
        .await?
        .pop()
        .unwrap_or_default();
    let hits = state
        .db
        .run(SearchMemories {
            user_id,
            embedding,
            embedding_model: state.llm.shared().embedding_model(),
            k,
        })
        .await
        .map_err(not_found)?;
    Ok(web::Json(SearchResults {
        results: hits
            .into_iter()
            .map(|h| SearchHit {
                id: h.id.to_string(),
                content: h.content,
                score: (h.score * 1e4).round() / 1e4,
            })
            .collect(),
    }))
}
