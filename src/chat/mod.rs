//! The chat use case, apart from its HTTP handler (`routes::chat`, which
//! only parses and answers): context → model (with tools) → persist.
//!
//! 1. Admit the chat once (the LLM family, and the embedder family with the
//!    local model), embed the message, load the context through the
//!    DbActor (profile, today's food, streak, reminders, the user's nearest
//!    memories of the current embedding model) and the window (cache, or
//!    the client's `message_history`).
//! 2. Ask the model ([`prompt`]); run its tool calls ([`tools`]: the REST
//!    routes' validation and reads, writes queued); ask again with the
//!    results (at most `MAX_TOOL_ROUNDS`). The offline coach ([`offline`])
//!    plans its tool calls the same way (a saved meal the user says they
//!    ate is a `log_meal` call) and words its answer from their results.
//! 3. Persist both messages (the user's with its embedding, which the
//!    memory search needed anyway), newly stated facts (the
//!    model's `remember` calls and `domain::memory`'s rules) and the tools'
//!    writes (food, reminders, saved meals) in one transaction, awarding
//!    the XP, then write the caches through. The model is paid for by
//!    then, so the save waits out a busy pool instead of being shed.

pub mod offline;
pub mod prompt;
pub mod tools;

use actors::db::ops::conversation::{HistoryTurn, LoadChatContext, NewMemory, SaveChatExchange};
use actors::llm::{ChatRequest, ChatTurn, Role};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use tools::Tools;

/// Memories put in the prompt.
pub const MEMORY_K: i64 = 5;
const MAX_TOOL_ROUNDS: usize = 3;

/// A chat as the handler parsed it.
pub struct ChatInput {
    pub user_id: String,
    pub message: String,
    /// The client's history, replacing the stored window for this answer.
    pub history: Option<Vec<ChatTurn>>,
    /// Microseconds, as PostgreSQL stores it, so the cached window matches.
    pub now: DateTime<Utc>,
}

pub fn turn(role: Role, content: String) -> ChatTurn {
    ChatTurn {
        role,
        content,
        tool_calls: Vec::new(),
        tool_call_id: None,
    }
}

/// Answers one chat message and stores the exchange; returns the answer.
///
/// Each step that waits is boxed: an async fn's future is as large as its
/// largest step, and every chat in flight holds one (a test keeps it small).
pub async fn respond(state: &AppState, input: ChatInput) -> ApiResult<String> {
    let ChatInput {
        user_id,
        message,
        history: supplied,
        now,
    } = input;
    // One admission for the whole chat: once in, it is not refused later.
    let llm = state.llm.admit()?;
    let embedding_model = state.llm.shared().embedding_model();
    let context = async {
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
                embedding_model: embedding_model.clone(),
                memory_k: MEMORY_K,
                now,
            })
            .await?;
        ApiResult::Ok((query_embedding, ctx))
    };
    // The client's history, when given, replaces the stored window; the
    // stored one is read meanwhile.
    let window = async {
        match supplied {
            Some(_) => Ok(None),
            None => crate::reads::history(state, &user_id).await.map(Some),
        }
    };
    let ((query_embedding, ctx), stored) =
        Box::pin(futures_util::future::try_join(context, window)).await?;
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
    let goals = domain::coach::Goals::from_profile(&ctx.profile);
    let timezone = ctx.timezone;
    let mut tools = Tools::new(state, &user_id, ctx.exists, timezone, ctx.total_xp, now);
    let offline = if state.llm.may_answer_offline() {
        // No model to call `log_meal`: the coach logs a saved meal the user
        // says they ate, through the same tool.
        let meals = Box::pin(tools.saved_meals()).await?;
        Some(offline::Offline::new(
            &ctx, goals, &turns, &message, now, timezone, &meals,
        ))
    } else {
        None
    };
    turns.push(turn(Role::User, message.clone()));

    let system = prompt::system_prompt(&ctx, goals);
    // The profile, memories and totals are in the prompt now: not held
    // while the model thinks.
    let known_timezone = ctx.exists.then_some(ctx.timezone);
    drop(ctx);
    let mut answer = String::new();
    for round in 0..=MAX_TOOL_ROUNDS {
        let last = round == MAX_TOOL_ROUNDS;
        let completion = Box::pin(llm.complete(ChatRequest {
            system: system.clone(),
            turns: turns.clone(),
            // The last round must answer in words.
            tools: if last { Arc::new([]) } else { tools::specs() },
            max_tokens: 1024,
            offline_reply: offline.as_ref().map(|o| o.reply(&turns)),
            offline_tool_calls: match (&offline, last) {
                (Some(o), false) => o.calls(&turns),
                _ => Vec::new(),
            },
        }))
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
            let result = Box::pin(tools.run(call)).await;
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

    let (writes, remembered) = tools.into_writes();
    let facts = facts_to_store(&message, remembered);
    // Only the new memories: the answer's vector would be stored and never
    // read (recall searches memories), yet cost a forward pass of the local
    // model, or a paid call to the provider, on every chat.
    let memories = if facts.is_empty() {
        Vec::new()
    } else {
        let texts = facts.iter().map(|f| f.content.clone()).collect();
        let vectors = Box::pin(llm.embed(texts)).await?;
        facts
            .into_iter()
            .zip(vectors)
            .map(|(f, embedding)| NewMemory { embedding, ..f })
            .collect()
    };
    // The window as the database now holds it, without reading it back.
    let window = stored.map(|w| {
        let at = |t: DateTime<Utc>, role: &str, content: &str| HistoryTurn {
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
    // Paid for by now: a busy pool is waited out, not shed.
    let saved = Box::pin(state.db.patient().run(SaveChatExchange {
        user_id: user_id.clone(),
        known_timezone,
        user_message: message,
        user_embedding: query_embedding,
        assistant_message: answer.clone(),
        memories,
        embedding_model,
        writes,
        source_key: format!("chat:{}", uuid::Uuid::new_v4()),
        at: now,
    }))
    .await?;
    drop(llm);
    let food_days: Vec<_> = saved.food.iter().map(|f| f.local_date).collect();
    Box::pin(crate::reads::refresh_chat(
        state,
        &user_id,
        window,
        saved.total_xp,
        &food_days,
        saved.meals_logged > 0,
    ))
    .await;
    Ok(answer)
}

/// The rules' facts (`domain::memory`) and the model's `remember` calls,
/// one per text and one per slot (the model's word wins a slot).
fn facts_to_store(message: &str, remembered: Vec<tools::Remembered>) -> Vec<NewMemory> {
    let mut out: Vec<NewMemory> = domain::memory::extract(message)
        .into_iter()
        .map(|f| NewMemory {
            kind: f.kind.to_owned(),
            content: f.text,
            slot: f.slot.map(str::to_owned),
            embedding: Vec::new(),
        })
        .collect();
    for r in remembered {
        if r.slot.is_some() {
            out.retain(|m| m.slot != r.slot);
        }
        if out.iter().any(|m| m.content.eq_ignore_ascii_case(&r.text)) {
            continue;
        }
        out.push(NewMemory {
            kind: r.kind,
            content: r.text,
            slot: r.slot,
            embedding: Vec::new(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<'a, Fut>(_: impl FnOnce(&'a AppState, ChatInput) -> Fut) -> usize {
        std::mem::size_of::<Fut>()
    }

    /// Every chat in flight holds its future, sized for its largest step:
    /// 5,256 bytes (debug build) before each step was boxed, 1,392 after.
    /// A boxed step is allocated only while it runs.
    #[test]
    fn a_waiting_chat_holds_a_small_future() {
        let size = future_size(respond);
        assert!(size <= 2048, "the chat's future grew to {size} bytes");
    }
}
