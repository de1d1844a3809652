//! `POST /api/v1/chat`: parse and validate, run the chat use case
//! (`crate::chat`), answer.

use actix_web::{post, web};
use actors::llm::{ChatTurn, Role};
use chrono::{SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::users::reject_nul;
use crate::chat::{turn, ChatInput};
use crate::error::{now_rfc3339, ApiError, ApiResult, ErrorBody};
use crate::extract::{self, Body};
use crate::state::AppState;

/// The longest message accepted, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;
const MAX_HISTORY_ITEMS: usize = 50;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user_id": "alice", "message": "I had oatmeal for breakfast"}))]
pub struct ChatBody {
    /// Created on first contact. 1–128 characters of `A-Z a-z 0-9 _ . : @ -`.
    #[schema(pattern = r"^[A-Za-z0-9_.:@-]{1,128}$", example = "alice")]
    user_id: String,
    /// Not blank; at most 8 KiB (UTF-8 bytes).
    #[schema(min_length = 1, max_length = 8192)]
    message: String,
    /// The conversation so far (at most 50 turns), replacing the stored one
    /// for this answer.
    #[serde(default)]
    #[schema(max_items = 50)]
    message_history: Option<Vec<HistoryItem>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryItem {
    /// `user` or `assistant`.
    #[schema(pattern = "^(user|assistant)$", example = "user")]
    role: String,
    /// Not blank; at most 8 KiB.
    #[schema(min_length = 1, max_length = 8192)]
    content: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "response": "Oatmeal is a great start: about 300 kcal and slow carbs.",
    "timestamp": "2026-06-01T08:05:00.000Z", "user_id": "alice"
}))]
pub struct ChatResponse {
    response: String,
    #[schema(format = DateTime)]
    timestamp: String,
    user_id: String,
}

fn validate_text(field: &str, text: &str) -> ApiResult<()> {
    if text.trim().is_empty() {
        return Err(ApiError::invalid_field(field, "must not be empty"));
    }
    reject_nul(field, text)?;
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(ApiError::invalid_field(
            field,
            format!(
                "must be at most {MAX_MESSAGE_BYTES} bytes, got {}",
                text.len()
            ),
        ));
    }
    Ok(())
}

fn client_history(items: &[HistoryItem]) -> ApiResult<Vec<ChatTurn>> {
    if items.len() > MAX_HISTORY_ITEMS {
        return Err(ApiError::invalid_field(
            "message_history",
            format!("at most {MAX_HISTORY_ITEMS} items, got {}", items.len()),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let role = match item.role.as_str() {
                "user" => Role::User,
                "assistant" => Role::Assistant,
                other => {
                    return Err(ApiError::invalid_field(
                        &format!("message_history[{i}].role"),
                        format!("must be \"user\" or \"assistant\", got {other:?}"),
                    ))
                }
            };
            validate_text(&format!("message_history[{i}].content"), &item.content)?;
            Ok(turn(role, item.content.clone()))
        })
        .collect()
}

/// `POST /api/v1/chat`.
#[utoipa::path(
    tag = "chat",
    description = "The coach answers with the user's profile, today's food, streaks, \
        reminders and nearest memories in mind, and may log food, read the food summary, \
        create reminders or read XP on the way. Both messages, new memories and 5 XP are \
        stored in one transaction before the answer; a failure stores nothing.",
    request_body = ChatBody,
    responses(
        (status = 200, description = "The coach's answer.", body = ChatResponse),
        (status = 400, description = "A field is invalid (named in `detail`), or the JSON is \
            malformed.", body = ErrorBody),
        (status = 413, response = super::docs::PayloadTooLarge),
        (status = 415, response = super::docs::UnsupportedMediaType),
        (status = 502, response = super::docs::BadGateway),
        (status = 503, response = super::docs::Unavailable),
        (status = 504, response = super::docs::GatewayTimeout),
    )
)]
#[post("/chat")]
pub async fn chat(
    state: web::Data<AppState>,
    Body(body): Body<ChatBody>,
) -> ApiResult<web::Json<ChatResponse>> {
    let ChatBody {
        user_id,
        message,
        message_history,
    } = body;
    let user_id = extract::user_id(&user_id)?.into_inner();
    validate_text("message", &message)?;
    let history = message_history.as_deref().map(client_history).transpose()?;
    let response = crate::chat::respond(
        &state,
        ChatInput {
            user_id: user_id.clone(),
            message,
            history,
            // Microseconds, as PostgreSQL stores it, so the cached window matches.
            now: Utc::now().trunc_subsecs(6),
        },
    )
    .await?;
    Ok(web::Json(ChatResponse {
        response,
        timestamp: now_rfc3339(),
        user_id,
    }))
}
