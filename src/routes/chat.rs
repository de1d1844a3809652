//! `POST /api/v1/chat`: context → model (with tools) → persist → answer.
//!
//! 1. Load the context through the DbActor: profile, the last messages (or
//!    the client's `message_history`), today's food, and the user's nearest
//!    long-term memories by pgvector distance.
//! 2. Ask the LlmActor; run tool calls with the REST routes' validation,
//!    queueing their writes; ask again with the results (at most
//!    `MAX_TOOL_ROUNDS`).
//! 3. Persist both messages, their embeddings, any newly stated facts and
//!    the tools' writes in one transaction, awarding the XP, before
//!    answering 200. The chat is admitted to the LlmActor once, up front.

use actix_web::web;
use actors::db::ops::conversation::{
    ChatContext, HistoryTurn, LoadChatContext, NewMemory, SaveChatExchange,
};
use actors::llm::{ChatRequest, ChatTurn, Role};
use chrono::{SubsecRound, Utc};
use domain::coach::{self, CoachContext};
use domain::gamification::XpEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::chat::tools::{self, Tools};

use super::users::{parse_user_id, reject_nul};
use crate::error::{now_rfc3339, ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// The longest message accepted, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;
const MAX_HISTORY_ITEMS: usize = 50;
const MEMORY_K: i64 = 5;
const MAX_TOOL_ROUNDS: usize = 3;

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

fn turn(role: Role, content: String) -> ChatTurn {
    ChatTurn {
        role,
        content,
        tool_calls: Vec::new(),
        tool_call_id: None,
    }
}

/// What the prompt takes from the profile and from memories, in characters
/// (≈ 4 per token: about 500 tokens each), so no stored data can make every
/// chat's prompt huge.
const PROMPT_PROFILE_CHARS: usize = 2_000;
const PROMPT_MEMORY_CHARS: usize = 2_000;

/// The first `max` characters of `text`, marked when cut.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

fn system_prompt(ctx: &ChatContext) -> String {
    let tone = ctx
        .preferences
        .get("tone")
        .and_then(Value::as_str)
        .unwrap_or("friendly");
    let brevity = ctx
        .preferences
        .get("brevity")
        .and_then(Value::as_str)
        .unwrap_or("medium");
    let mut p = format!(
        "You are a supportive health coach. Tone: {tone}. Length: {brevity}. \
         Use the tools to log food or a saved meal, read the food summary, create reminders and read XP.\n\
         User profile: {}\n\
         Today so far: {} food entries, {:.0} kcal, {:.0} g protein, {:.0} g carbs, {:.0} g fat. \
         Food-logging streak: {} days. Active reminders: {}.\n\
         What you know about the user:\n",
        clip(&ctx.profile.to_string(), PROMPT_PROFILE_CHARS),
        ctx.food_entries_today,
        ctx.calories_today,
        ctx.protein_today,
        ctx.carbs_today,
        ctx.fat_today,
        ctx.food_streak,
        ctx.reminders_active
    );
    // Nearest first: what the budget leaves out is the least relevant.
    let mut left = PROMPT_MEMORY_CHARS;
    for m in &ctx.memories {
        let line = format!("- memory: the user {}\n", clip(&m.content, left));
        let n = line.chars().count();
        if n > left + 32 {
            break;
        }
        left = left.saturating_sub(n);
        p.push_str(&line);
        if left == 0 {
            break;
        }
    }
    p
}

/// `POST /api/v1/chat`.
#[utoipa::path(
    post,
    path = "/api/v1/chat",
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
        (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 415, response = crate::openapi::UnsupportedMediaType),
        (status = 502, response = crate::openapi::BadGateway),
        (status = 503, response = crate::openapi::Unavailable),
        (status = 504, response = crate::openapi::GatewayTimeout),
    )
)]
pub async fn chat(
    state: web::Data<AppState>,
    body: web::Json<ChatBody>,
) -> ApiResult<web::Json<ChatResponse>> {
    let ChatBody {
        user_id,
        message,
        message_history,
    } = body.into_inner();
    let user_id = parse_user_id(&user_id)?.into_inner();
    validate_text("message", &message)?;
    let supplied = message_history.as_deref().map(client_history).transpose()?;
    // Microseconds, as PostgreSQL stores it, so the cached window matches.
    let now = Utc::now().trunc_subsecs(6);

    // One admission for the whole chat: once in, it is not refused later.
    let llm = state.llm.admit()?;
    let query_embedding = llm
        .embed(vec![message.clone()])
        .await?
        .pop()
        .unwrap_or_default();
    let ctx = state
        .db
        .run(LoadChatContext {
            user_id: user_id.clone(),
            query_embedding: query_embedding.clone(),
            memory_k: MEMORY_K,
            now,
        })
        .await?;

    // The client's history, when given, replaces the stored window.
    let stored = match supplied {
        Some(_) => None,
        None => Some(crate::reads::history(&state, &user_id).await?),
    };
    let mut turns: Vec<ChatTurn> = match (supplied, &stored) {
        (Some(t), _) => t,
        (None, window) => window
            .iter()
            .flatten()
            .filter_map(|h| {
                let role = match h.role.as_str() {
                    "user" => Role::User,
                    "assistant" => Role::Assistant,
                    _ => return None,
                };
                Some(turn(role, h.content.clone()))
            })
            .collect(),
    };
    turns.push(turn(Role::User, message.clone()));

    let timezone = domain::time::parse_timezone(&ctx.timezone).unwrap_or(chrono_tz::UTC);
    let mut tools = Tools::new(&state, &user_id, ctx.exists, timezone, ctx.total_xp, now);
    // No model to call `log_meal`: the coach logs a saved meal the user
    // says they ate, through the same tool.
    let mut logged_meal = None;
    if state.llm.is_offline() && ctx.exists {
        let meals = tools.saved_meals().await?;
        let named = coach::eaten_meal(
            &message,
            meals
                .iter()
                .map(|m| (m.name.as_str(), m.keywords.as_slice())),
        );
        if let Some(meal) = named.map(|i| &meals[i]) {
            tools.queue_meal(meal, now, 1.0)?;
            logged_meal = Some((meal.name.clone(), meal.foods.len(), meal.totals));
        }
    }
    let offline_reply = state.llm.may_answer_offline().then(|| {
        let info = domain::gamification::level_for_xp(ctx.total_xp);
        let meal = logged_meal.as_ref();
        coach::reply(
            &CoachContext {
                name: ctx
                    .profile
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                memories: ctx.memories.iter().map(|m| m.content.clone()).collect(),
                food_entries_today: ctx.food_entries_today as u32 + meal.map_or(0, |m| m.1 as u32),
                calories_today: ctx.calories_today + meal.map_or(0.0, |m| m.2.calories),
                protein_today: ctx.protein_today + meal.map_or(0.0, |m| m.2.protein_g),
                food_streak: ctx.food_streak.max(0) as u32,
                reminders_active: ctx.reminders_active as u32,
                level: info.level,
                xp: ctx.total_xp
                    + if meal.is_some() {
                        XpEvent::FoodLogged.xp()
                    } else {
                        0
                    },
                logged_meal: meal.map(|m| (m.0.clone(), m.2.calories)),
            },
            &message,
        )
    });
    let system = system_prompt(&ctx);
    let mut answer = String::new();
    for round in 0..=MAX_TOOL_ROUNDS {
        let completion = llm
            .complete(ChatRequest {
                system: system.clone(),
                turns: turns.clone(),
                // The last round must answer in words.
                tools: if round < MAX_TOOL_ROUNDS {
                    tools::specs()
                } else {
                    Vec::new()
                },
                max_tokens: 1024,
                offline_reply: offline_reply.clone(),
            })
            .await?;
        if completion.tool_calls.is_empty() {
            answer = completion.text;
            break;
        }
        turns.push(ChatTurn {
            role: Role::Assistant,
            content: completion.text.clone(),
            tool_calls: completion.tool_calls.clone(),
            tool_call_id: None,
        });
        for call in &completion.tool_calls {
            let result = tools.run(call).await;
            turns.push(ChatTurn {
                role: Role::Tool,
                content: result.to_string(),
                tool_calls: Vec::new(),
                tool_call_id: Some(call.id.clone()),
            });
        }
        answer = completion.text;
    }
    if answer.trim().is_empty() {
        return Err(ApiError::BadGateway(
            "the language model returned an empty answer".into(),
        ));
    }

    let facts = domain::memory::extract(&message);
    let mut to_embed = vec![answer.clone()];
    to_embed.extend(facts.iter().map(|f| f.text.clone()));
    let mut vectors = llm.embed(to_embed).await?.into_iter();
    let answer_embedding = vectors.next().unwrap_or_default();
    let memories = facts
        .into_iter()
        .zip(vectors)
        .map(|(f, embedding)| NewMemory {
            kind: f.kind.to_owned(),
            content: f.text,
            embedding,
        })
        .collect();
    // The window as the database now holds it, without reading it back.
    let window = stored.map(|w| {
        let at = |t: chrono::DateTime<Utc>, role: &str, content: &str| HistoryTurn {
            role: role.to_owned(),
            content: content.to_owned(),
            timestamp: t,
        };
        crate::reads::extend_window(
            w,
            [
                at(now, "user", &message),
                at(
                    now + chrono::Duration::microseconds(1),
                    "assistant",
                    &answer,
                ),
            ],
        )
    });
    let writes = tools.into_writes();
    // Paid for by now: a busy pool is waited out, not shed.
    let saved = state
        .db
        .patient()
        .run(SaveChatExchange {
            user_id: user_id.clone(),
            user_message: message,
            user_embedding: query_embedding,
            assistant_message: answer.clone(),
            assistant_embedding: answer_embedding,
            memories,
            writes,
            source_key: format!("chat:{}", uuid::Uuid::new_v4()),
            at: now,
        })
        .await?;
    drop(llm);
    let food_days: Vec<_> = saved.food.iter().map(|f| f.local_date).collect();
    crate::reads::refresh_chat(
        &state,
        &user_id,
        window,
        saved.total_xp,
        &food_days,
        saved.meals_logged > 0,
    )
    .await;
    Ok(web::Json(ChatResponse {
        response: answer,
        timestamp: now_rfc3339(),
        user_id,
    }))
}

#[cfg(test)]
mod prompt_budget {
    use super::*;
    use actors::db::ops::conversation::MemoryHit;

    #[test]
    fn a_huge_profile_and_many_memories_stay_within_the_budget() {
        let profile: serde_json::Map<String, Value> = (0..3000)
            .map(|i| (format!("f{i}"), Value::from("x".repeat(500))))
            .collect();
        let ctx = ChatContext {
            profile: Value::Object(profile),
            memories: (0..100)
                .map(|i| MemoryHit {
                    content: format!("likes food number {i} {}", "y".repeat(300)),
                    distance: 0.1,
                })
                .collect(),
            ..Default::default()
        };
        let p = system_prompt(&ctx);
        let n = p.chars().count();
        assert!(n < 5_000, "prompt of {n} chars");
        assert!(
            p.contains("likes food number 0"),
            "the nearest memory stays"
        );
        assert!(!p.contains("likes food number 99"));
    }
}
