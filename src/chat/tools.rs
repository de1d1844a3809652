//! The chat's tools. A tool computes its answer from reads and the same
//! validation and rules as the REST routes, and *queues* any write: the
//! writes are stored by `SaveChatExchange` in the exchange's transaction.
//! So a chat that fails after a tool ran (a later model round, the save)
//! stores nothing, and a retry stores things once. No transaction stays
//! open across a model call.

use std::sync::{Arc, LazyLock};

use actors::db::ops::conversation::ToolWrite;
use actors::db::ops::{FoodDay, FoodEntryRow, MealRow, NewFoodEntry};
use actors::llm::{ToolCall, ToolSpec};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use domain::gamification::XpEvent;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::routes::food::{parse_day, FoodDayResponse, LogFoodRequest};
use crate::routes::meals::{self, LogMealRequest};
use crate::routes::reminders::CreateReminderRequest;
use crate::state::AppState;

/// What the model may call: built once, shared by every request.
pub fn specs() -> Arc<[ToolSpec]> {
    static SPECS: LazyLock<Arc<[ToolSpec]>> = LazyLock::new(|| build_specs().into());
    Arc::clone(&SPECS)
}

fn build_specs() -> Vec<ToolSpec> {
    let tool = |name: &str, description: &str, parameters: Value| ToolSpec {
        name: name.to_owned(),
        description: description.to_owned(),
        parameters,
    };
    vec![
        tool(
            "log_food",
            "Log something the user ate.",
            json!({"type": "object", "properties": {
                "description": {"type": "string"}, "quantity": {"type": "string"},
                "calories": {"type": "number"}, "protein_g": {"type": "number"},
                "carbs_g": {"type": "number"}, "fat_g": {"type": "number"}},
                "required": ["description"]}),
        ),
        tool(
            "log_meal",
            "Log one of the user's saved meals (\"my usual breakfast\") in one step: \
             every food of it, as one food-logging event.",
            json!({"type": "object", "properties": {
                "name": {"type": "string", "description": "The saved meal's name or a keyword"},
                "portion": {"type": "number", "description": "0.1 to 10, default 1"},
                "timestamp": {"type": "string", "description": "RFC 3339, default now"}},
                "required": ["name"]}),
        ),
        tool(
            "get_food_summary",
            "Today's food log and totals (or a given date, YYYY-MM-DD).",
            json!({"type": "object", "properties": {"date": {"type": "string"}}}),
        ),
        tool(
            "create_reminder",
            "Create a daily (HH:MM) or one-time (RFC 3339) reminder.",
            json!({"type": "object", "properties": {
                "type": {"enum": ["daily", "one_time"]}, "message": {"type": "string"},
                "daily_time": {"type": "string"}, "trigger_time": {"type": "string"},
                "timezone": {"type": "string"}}, "required": ["type", "message"]}),
        ),
        tool(
            "get_xp",
            "The user's XP, level and tier.",
            json!({"type": "object", "properties": {}}),
        ),
        tool(
            "remember",
            "Remember a lasting fact the user stated about themselves, in the second \
             person (\"you are vegetarian\"). A fact in a slot (diet, \
             weight_goal, name) replaces the earlier one there.",
            json!({"type": "object", "properties": {
                "fact": {"type": "string"},
                "kind": {"enum": ["allergy", "diet", "preference", "dislike", "goal", "name", "fact"]},
                "slot": {"enum": ["diet", "weight_goal", "name"]}},
                "required": ["fact"]}),
        ),
    ]
}

/// One chat's tool calls and the writes they queued.
pub struct Tools<'a> {
    state: &'a AppState,
    user_id: &'a str,
    /// Whether the user is stored yet (first contact creates it on save).
    exists: bool,
    /// The profile's zone: which local day "today" and a food entry fall on.
    timezone: Tz,
    total_xp: i64,
    now: DateTime<Utc>,
    writes: Vec<ToolWrite>,
    /// Facts the model asked to remember (stored with the exchange).
    remembered: Vec<Remembered>,
    /// The entries the queued meals will store, for the summaries.
    meal_entries: Vec<NewFoodEntry>,
}

/// A fact a model's `remember` call gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered {
    pub kind: String,
    pub text: String,
    pub slot: Option<String>,
}

const MAX_FACT_CHARS: usize = 500;

impl<'a> Tools<'a> {
    pub fn new(
        state: &'a AppState,
        user_id: &'a str,
        exists: bool,
        timezone: Tz,
        total_xp: i64,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            state,
            user_id,
            exists,
            timezone,
            total_xp,
            now,
            writes: Vec::new(),
            remembered: Vec::new(),
            meal_entries: Vec::new(),
        }
    }

    /// The facts the model asked to remember.
    pub fn remembered(&self) -> &[Remembered] {
        &self.remembered
    }

    /// The writes to store with the exchange, and the facts to remember.
    pub fn into_writes(self) -> (Vec<ToolWrite>, Vec<Remembered>) {
        (self.writes, self.remembered)
    }

    /// Runs one call; failures go back to the model as the tool's result.
    pub async fn run(&mut self, call: &ToolCall) -> Value {
        let result = match call.name.as_str() {
            "log_food" => self.log_food(&call.arguments),
            "log_meal" => self.log_meal(&call.arguments).await,
            "create_reminder" => self.create_reminder(&call.arguments),
            "get_food_summary" => self.food_summary(&call.arguments).await,
            "get_xp" => Ok(self.xp()),
            "remember" => self.remember(&call.arguments),
            other => Err(ApiError::invalid_field(
                "tool",
                format!("unknown tool {other:?}"),
            )),
        };
        result.unwrap_or_else(|e| json!({"error": e.to_string()}))
    }

    fn queued_food(&self) -> impl Iterator<Item = &NewFoodEntry> {
        self.writes
            .iter()
            .filter_map(|w| match w {
                ToolWrite::Food(e) => Some(e),
                ToolWrite::Reminder(_) | ToolWrite::Meal { .. } => None,
            })
            .chain(&self.meal_entries)
    }

    /// Food-logging events queued: each food entry, and each meal as one.
    fn queued_food_events(&self) -> usize {
        self.writes
            .iter()
            .filter(|w| matches!(w, ToolWrite::Food(_) | ToolWrite::Meal { .. }))
            .count()
    }

    /// The user's saved meals (through the cache); none before first contact.
    pub async fn saved_meals(&self) -> ApiResult<Vec<MealRow>> {
        if !self.exists {
            return Ok(Vec::new());
        }
        crate::reads::meals(self.state, self.user_id).await
    }

    async fn log_meal(&mut self, args: &Value) -> ApiResult<Value> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Args {
            name: String,
            #[serde(flatten)]
            when: LogMealRequest,
        }
        let args: Args = serde_json::from_value(args.clone())
            .map_err(|e| ApiError::invalid_field("arguments", e))?;
        let meals = self.saved_meals().await?;
        let found = meals
            .iter()
            .position(|m| m.id == args.name.trim())
            .or_else(|| {
                domain::meals::recognise(
                    &args.name,
                    meals
                        .iter()
                        .map(|m| (m.name.as_str(), m.keywords.as_slice())),
                )
            })
            .ok_or_else(|| {
                let names: Vec<&str> = meals.iter().map(|m| m.name.as_str()).collect();
                ApiError::NotFound(format!(
                    "no saved meal is named {:?}; saved meals: {names:?}",
                    args.name
                ))
            })?;
        let (at, portion) = meals::when_and_portion(&args.when, self.now)?;
        self.queue_meal(&meals[found], at, portion)
    }

    /// Queues logging `meal`: its entries are stored with the exchange.
    fn queue_meal(&mut self, meal: &MealRow, at: DateTime<Utc>, portion: f64) -> ApiResult<Value> {
        let entries = meal
            .foods
            .iter()
            .map(|f| f.entry(portion, at))
            .collect::<Result<Vec<_>, _>>()
            .map_err(meals::meal_error)?;
        let calories: f64 = entries.iter().filter_map(|e| e.calories).sum();
        let answer = json!({
            "logged_meal": meal.name,
            "foods": entries.iter().map(|e| e.description.as_str()).collect::<Vec<_>>(),
            "portion": portion,
            "calories": (calories * 100.0).round() / 100.0,
            "date": domain::time::local_date(at, self.timezone).to_string(),
        });
        self.writes.push(ToolWrite::Meal {
            meal_id: meal.id.clone(),
            at,
            portion,
        });
        self.meal_entries.extend(entries);
        Ok(answer)
    }

    fn log_food(&mut self, args: &Value) -> ApiResult<Value> {
        let req: LogFoodRequest = serde_json::from_value(args.clone())
            .map_err(|e| ApiError::invalid_field("arguments", e))?;
        let entry = req.into_entry(self.now)?;
        let answer = json!({
            "logged": entry.description,
            "calories": entry.calories,
            "nutrition_source": entry.source.as_str(),
            "date": domain::time::local_date(entry.logged_at, self.timezone).to_string(),
        });
        self.writes.push(ToolWrite::Food(entry));
        Ok(answer)
    }

    fn remember(&mut self, args: &Value) -> ApiResult<Value> {
        let field = |k: &str| args.get(k).and_then(Value::as_str).map(str::trim);
        let text = field("fact").unwrap_or_default();
        if text.is_empty() || text.chars().count() > MAX_FACT_CHARS {
            return Err(ApiError::invalid_field(
                "fact",
                format!("must be 1 to {MAX_FACT_CHARS} characters"),
            ));
        }
        crate::routes::users::reject_nul("fact", text)?;
        let slot = field("slot").filter(|s| ["diet", "weight_goal", "name"].contains(s));
        let fact = Remembered {
            kind: field("kind").unwrap_or("fact").chars().take(32).collect(),
            text: text.to_owned(),
            slot: slot.map(str::to_owned),
        };
        if let Some(slot) = &fact.slot {
            self.remembered.retain(|r| r.slot.as_ref() != Some(slot));
        }
        self.remembered.push(fact);
        Ok(json!({"remembered": text}))
    }

    fn create_reminder(&mut self, args: &Value) -> ApiResult<Value> {
        let req: CreateReminderRequest = serde_json::from_value(args.clone())
            .map_err(|e| ApiError::invalid_field("arguments", e))?;
        let op = req.to_op(self.user_id.to_owned(), self.now)?;
        let tz = op.timezone.unwrap_or(self.timezone);
        let answer = json!({
            "created": op.message,
            "type": op.schedule.kind(),
            "timezone": tz.name(),
            "next_trigger_at": op.schedule.first_trigger(tz, op.now).to_rfc3339(),
        });
        self.writes.push(ToolWrite::Reminder(op));
        Ok(answer)
    }

    /// The day as the REST route reads it (through the cache), plus what
    /// this chat logged so far.
    async fn food_summary(&self, args: &Value) -> ApiResult<Value> {
        let date = match args.get("date").and_then(Value::as_str) {
            Some(d) => parse_day(d)?,
            None => domain::time::local_date(self.now, self.timezone),
        };
        let mut day = if self.exists {
            crate::reads::food_day(self.state, self.user_id, date)
                .await?
                .into()
        } else {
            FoodDayResponse::from(FoodDay {
                date,
                timezone: self.timezone,
                entries: Vec::new(),
            })
        };
        let queued: Vec<FoodEntryRow> = self
            .queued_food()
            .filter(|e| domain::time::local_date(e.logged_at, self.timezone) == date)
            .map(|e| pending_row(self.user_id, e, date))
            .collect();
        day.add(queued);
        Ok(serde_json::to_value(day).unwrap_or(Value::Null))
    }

    fn xp(&self) -> Value {
        let queued = self.queued_food_events() as i64 * XpEvent::FoodLogged.xp();
        let xp = self.total_xp + queued;
        let info = domain::gamification::level_for_xp(xp);
        json!({"xp": xp, "level": info.level, "tier": info.tier.as_str(),
               "xp_to_next_level": info.xp_to_next_level})
    }
}

/// A queued entry as the day's log will show it once stored.
fn pending_row(user_id: &str, e: &NewFoodEntry, date: NaiveDate) -> FoodEntryRow {
    FoodEntryRow {
        id: "pending".to_owned(),
        user_id: user_id.to_owned(),
        description: e.description.clone(),
        quantity: e.quantity.clone(),
        food: e.food.clone(),
        grams: e.grams,
        calories: e.calories,
        protein_g: e.protein_g,
        carbs_g: e.carbs_g,
        fat_g: e.fat_g,
        nutrition_source: e.source.as_str().to_owned(),
        logged_at: e.logged_at,
        local_date: date,
    }
}
