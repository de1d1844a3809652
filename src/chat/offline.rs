//! The offline coach in the chat: `domain::coach` plans tool calls from the
//! message, the chat runs them through the same [`Tools`](super::tools::Tools)
//! as a model's, and the coach words the answer from their results. A saved
//! meal the user says they ate ("I had my usual breakfast") is one
//! `log_meal` call, never also a food entry.

use actors::db::ops::conversation::ChatContext;
use actors::db::ops::MealRow;
use actors::llm::{ChatTurn, Role, ToolCall};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use domain::coach::{self, CoachContext, Goals, Intent, SavedMeal};
use serde_json::Value;

pub struct Offline {
    ctx: CoachContext,
    intent: Intent,
    calls: Vec<ToolCall>,
}

impl Offline {
    pub fn new(
        ctx: &ChatContext,
        goals: Goals,
        history: &[ChatTurn],
        message: &str,
        now: DateTime<Utc>,
        timezone: Tz,
        saved_meals: &[MealRow],
    ) -> Self {
        let (tone, brevity) = super::prompt::style(ctx);
        let info = domain::gamification::level_for_xp(ctx.total_xp);
        let coach_ctx = CoachContext {
            name: ctx
                .profile
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned),
            memories: ctx.memories.iter().map(|m| m.content.clone()).collect(),
            history: history
                .iter()
                .filter(|t| t.role == Role::User)
                .map(|t| t.content.clone())
                .collect(),
            food_entries_today: ctx.food_entries_today as u32,
            calories_today: ctx.calories_today,
            protein_today: ctx.protein_today,
            food_streak: ctx.food_streak.max(0) as u32,
            reminders_active: ctx.reminders_active as u32,
            level: info.level,
            xp: ctx.total_xp,
            goals,
            tone,
            brevity,
            now,
            timezone,
            saved_meals: saved_meals
                .iter()
                .map(|m| SavedMeal {
                    id: m.id.clone(),
                    name: m.name.clone(),
                    keywords: m.keywords.clone(),
                })
                .collect(),
        };
        let (intent, planned) = coach::plan(&coach_ctx, message);
        let calls = planned
            .into_iter()
            .enumerate()
            .map(|(i, c)| ToolCall {
                id: format!("offline-{i}"),
                name: c.name.to_owned(),
                arguments: c.arguments,
            })
            .collect();
        Self {
            ctx: coach_ctx,
            intent,
            calls,
        }
    }

    /// The tool calls to make first (none once results are in).
    pub fn calls(&self, turns: &[ChatTurn]) -> Vec<ToolCall> {
        if turns.iter().any(|t| t.role == Role::Tool) {
            Vec::new()
        } else {
            self.calls.clone()
        }
    }

    /// The answer, from the results of the tool calls in `turns`.
    pub fn reply(&self, turns: &[ChatTurn]) -> String {
        let names: std::collections::HashMap<&str, &str> = turns
            .iter()
            .flat_map(|t| t.tool_calls.iter())
            .map(|c| (c.id.as_str(), c.name.as_str()))
            .collect();
        let results: Vec<(String, Value)> = turns
            .iter()
            .filter(|t| t.role == Role::Tool)
            .filter_map(|t| {
                let name = names.get(t.tool_call_id.as_deref()?)?;
                let value = serde_json::from_str(&t.content).unwrap_or(Value::Null);
                Some(((*name).to_owned(), value))
            })
            .collect();
        coach::reply(&self.ctx, &self.intent, &results)
    }
}
