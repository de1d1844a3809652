//! Saved meals: `…/users/{user_id}/meals…`. A meal's foods are settled as
//! `POST …/food` settles an entry (given, estimated or unknown) and its
//! totals are summed by us; logging it stores every food in one transaction
//! as one food-logging event. The original's `/api/formulas…` paths
//! (`routes::formulas`) call the same functions.

use std::collections::{BTreeSet, HashMap};

use actix_web::{delete, get, patch, post, web, HttpResponse};
use actors::db::ops::{
    CreateMeal, DeleteMeal, FoodEntryRow, GetMeal, GetMealHistory, LogMeal, LoggedMeal, MealFood,
    MealHit, MealRow, NewMeal, SearchMeals, UpdateMeal,
};
use actors::db::DbError;
use chrono::{DateTime, SecondsFormat, Utc};
use domain::meals::{self as rules, LoggedFood, MealTime};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::docs::{MealPath, UserPath};
use super::food::{parse_timestamp, FoodEntryResponse, LogFoodRequest};
use super::users::reject_nul;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{self, Body, PathItem, PathUser};
use crate::reads;
use crate::state::AppState;

const MAX_NAME_CHARS: usize = 200;
const MAX_FOODS: usize = 50;
const MAX_KEYWORDS: usize = 20;
const MAX_KEYWORD_CHARS: usize = 50;
const MAX_DESCRIPTION_CHARS: usize = 500;
const MAX_QUERY_CHARS: usize = 200;
const DEFAULT_LIMIT: i64 = 5;
const MAX_LIMIT: i64 = 50;
const MIN_PORTION: f64 = 0.1;
const MAX_PORTION: f64 = 10.0;
/// How near in meaning a meal must be to be found without a keyword hit
/// (cosine similarity of the embeddings). The offline embedder's unrelated
/// texts land within about ±0.12 of each other; related ones above 0.15.
pub(crate) const MIN_SIMILARITY: f64 = 0.15;

// ---------------------------------------------------------------------------
// Requests.

/// One food of a meal: as `POST …/food` takes it, without a time.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"description": "oats", "quantity": "1 cup"}))]
pub struct MealFoodRequest {
    /// 1–500 characters, not blank.
    #[schema(min_length = 1, max_length = 500, example = "oats")]
    description: String,
    #[serde(default)]
    #[schema(max_length = 100, example = "1 cup")]
    quantity: Option<String>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 20000)]
    calories: Option<f64>,
    #[serde(default, alias = "protein")]
    #[schema(minimum = 0, maximum = 2000)]
    protein_g: Option<f64>,
    #[serde(default, alias = "carbs")]
    #[schema(minimum = 0, maximum = 2000)]
    carbs_g: Option<f64>,
    #[serde(default, alias = "fat")]
    #[schema(minimum = 0, maximum = 2000)]
    fat_g: Option<f64>,
}

/// A meal to save: `name` and `foods`, or `from_suggestion` (the id of one
/// of `GET …/meals/suggestions`, whose name may be replaced).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Usual breakfast", "keywords": ["oats", "morning"],
    "foods": [{"description": "oats", "quantity": "1 cup"}, {"description": "banana"},
              {"description": "coffee with milk", "calories": 40}]
}))]
pub struct CreateMealRequest {
    /// 1–200 characters, not blank; required unless `from_suggestion`.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200, example = "Usual breakfast")]
    name: Option<String>,
    /// At most 20, each 1–50 characters.
    #[serde(default)]
    #[schema(max_items = 20)]
    keywords: Option<Vec<String>>,
    /// At most 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    description: Option<String>,
    /// 1–50 foods; required unless `from_suggestion`.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 50)]
    foods: Option<Vec<MealFoodRequest>>,
    /// Save this suggestion (its foods, its name unless `name` is given).
    #[serde(default)]
    #[schema(example = "9f1c0e6a52b3d4e7")]
    from_suggestion: Option<String>,
}

/// Changes to a saved meal; fields left out stay (an empty `description`
/// removes it). New foods are settled again and the totals recomputed.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"keywords": ["oats", "usual"]}))]
pub struct UpdateMealRequest {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    #[serde(default)]
    #[schema(max_items = 20)]
    keywords: Option<Vec<String>>,
    #[serde(default)]
    #[schema(max_length = 500)]
    description: Option<String>,
    #[serde(default)]
    #[schema(min_items = 1, max_items = 50)]
    foods: Option<Vec<MealFoodRequest>>,
}

/// Logging a saved meal; the body may be left out.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"portion": 1.5}))]
pub struct LogMealRequest {
    /// When it was eaten (default now): RFC 3339 with an offset, at most
    /// 24 h ahead and one year back.
    #[serde(default)]
    #[schema(format = DateTime, example = "2026-06-01T08:00:00Z")]
    timestamp: Option<String>,
    /// Scales every food's quantity and nutrition: 0.1–10, default 1.
    #[serde(default)]
    #[schema(minimum = 0.1, maximum = 10, example = 1.5)]
    portion: Option<f64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MealSearchQuery {
    /// Words of a name, keyword, description or food, or what the meal is
    /// like ("my morning oats"); 1–200 characters.
    #[param(min_length = 1, max_length = 200, example = "morning oats")]
    q: Option<String>,
    /// 1–50, default 5.
    #[param(minimum = 1, maximum = 50)]
    limit: Option<i64>,
}

// ---------------------------------------------------------------------------
// Responses.

#[derive(Debug, Serialize, ToSchema)]
pub struct MealFoodResponse {
    description: String,
    quantity: Option<String>,
    /// The food the estimate matched, when estimated.
    food: Option<String>,
    grams: Option<f64>,
    calories: Option<f64>,
    protein_g: Option<f64>,
    carbs_g: Option<f64>,
    fat_g: Option<f64>,
    /// `user` (given), `estimated` or `unknown`.
    #[schema(example = "estimated")]
    nutrition_source: String,
}

impl From<&MealFood> for MealFoodResponse {
    fn from(f: &MealFood) -> Self {
        Self {
            description: f.description.clone(),
            quantity: f.quantity.clone(),
            food: f.food.clone(),
            grams: f.grams,
            calories: f.calories,
            protein_g: f.protein_g,
            carbs_g: f.carbs_g,
            fat_g: f.fat_g,
            nutrition_source: f.nutrition_source.clone(),
        }
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn unknown_foods(foods: &[MealFood]) -> u64 {
    foods
        .iter()
        .filter(|f| f.nutrition_source == "unknown")
        .count() as u64
}

/// A saved meal; the totals are the sums of its foods' known values.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "3c9a4b1e-1f7d-4d8a-9d67-3f1f1f9c2a10", "user_id": "alice",
    "name": "Usual breakfast", "keywords": ["oats"], "description": null,
    "foods": [{"description": "banana", "quantity": null, "food": "banana", "grams": 118.0,
               "calories": 105.2, "protein_g": 1.3, "carbs_g": 27.0, "fat_g": 0.4,
               "nutrition_source": "estimated"}],
    "total_calories": 105.2, "total_protein_g": 1.3, "total_carbs_g": 27.0, "total_fat_g": 0.4,
    "unknown_foods": 0, "times_used": 3, "last_used_at": "2026-06-01T08:00:00Z",
    "is_auto_detected": false, "confidence_score": null,
    "created_at": "2026-05-20T08:00:00Z", "updated_at": "2026-05-20T08:00:00Z"
}))]
pub struct MealResponse {
    #[schema(format = "uuid")]
    id: String,
    user_id: String,
    name: String,
    keywords: Vec<String>,
    description: Option<String>,
    foods: Vec<MealFoodResponse>,
    total_calories: f64,
    total_protein_g: f64,
    total_carbs_g: f64,
    total_fat_g: f64,
    /// Foods whose nutrition is unknown (not in the totals).
    unknown_foods: u64,
    /// Times logged.
    times_used: i32,
    #[schema(format = DateTime)]
    last_used_at: Option<String>,
    /// Saved from a suggestion.
    is_auto_detected: bool,
    /// The suggestion's confidence, when saved from one.
    confidence_score: Option<f64>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

impl From<&MealRow> for MealResponse {
    fn from(m: &MealRow) -> Self {
        Self {
            id: m.id.clone(),
            user_id: m.user_id.clone(),
            name: m.name.clone(),
            keywords: m.keywords.clone(),
            description: m.description.clone(),
            foods: m.foods.iter().map(Into::into).collect(),
            total_calories: m.totals.calories,
            total_protein_g: m.totals.protein_g,
            total_carbs_g: m.totals.carbs_g,
            total_fat_g: m.totals.fat_g,
            unknown_foods: unknown_foods(&m.foods),
            times_used: m.times_used,
            last_used_at: m.last_used_at.map(rfc3339),
            is_auto_detected: m.is_auto_detected,
            confidence_score: m.confidence_score,
            created_at: rfc3339(m.created_at),
            updated_at: rfc3339(m.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MealListResponse {
    /// Most used first.
    meals: Vec<MealResponse>,
}

/// A search result.
#[derive(Debug, Serialize, ToSchema)]
pub struct MealSearchHit {
    #[serde(flatten)]
    meal: MealResponse,
    /// A word of the query matched the name, a keyword, the description or
    /// a food (such hits come first).
    keyword_match: bool,
    /// Cosine similarity of the query's and the meal's embeddings (−1–1).
    score: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MealSearchResponse {
    /// Best first.
    meals: Vec<MealSearchHit>,
}

/// What logging a meal stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoggedMealResponse {
    #[schema(format = "uuid")]
    pub(crate) meal_id: String,
    pub(crate) portion: f64,
    /// One per food of the meal, as `POST …/food` answers them.
    pub(crate) entries: Vec<FoodEntryResponse>,
    /// XP this log earned: 10 (one food-logging event), 0 on a replay.
    pub(crate) xp_awarded: i64,
    /// The meal's use count after this log.
    pub(crate) times_used: i32,
}

impl LoggedMealResponse {
    fn new(logged: LoggedMeal, portion: f64) -> Self {
        Self {
            meal_id: logged.meal.id.clone(),
            portion,
            xp_awarded: logged.award.map_or(0, |a| a.xp),
            times_used: logged.meal.times_used,
            entries: logged.entries.into_iter().map(Into::into).collect(),
        }
    }
}

/// A combination of foods the user keeps eating together, not saved yet.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuggestionResponse {
    /// Pass as `from_suggestion` to `POST …/meals` to save it.
    #[schema(example = "9f1c0e6a52b3d4e7")]
    pub(crate) id: String,
    /// A proposed name: `Usual breakfast`, or the meal time and its foods.
    #[schema(example = "Usual breakfast")]
    pub(crate) name: String,
    /// As last logged.
    pub(crate) foods: Vec<MealFoodResponse>,
    /// Of the meals in the last 14 days holding any of these foods, the
    /// share holding all of them (0–1).
    #[schema(minimum = 0, maximum = 1, example = 0.75)]
    pub(crate) confidence: f64,
    /// Meals in the last 14 days holding all of them (at least 3).
    pub(crate) occurrences: u32,
    /// `breakfast` (05–11 h local), `lunch` (11–15), `snack` (15–17),
    /// `dinner` (17–22) or `late snack` (22–05).
    #[schema(example = "breakfast")]
    pub(crate) meal_time: String,
    pub(crate) total_calories: f64,
    pub(crate) total_protein_g: f64,
    pub(crate) total_carbs_g: f64,
    pub(crate) total_fat_g: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SuggestionsResponse {
    /// Best first.
    suggestions: Vec<SuggestionResponse>,
}

// ---------------------------------------------------------------------------
// Validation.

/// `ApiError::invalid_field` of a food's field, named `foods[i].field`.
fn in_food(i: usize, e: ApiError) -> ApiError {
    match e {
        ApiError::BadRequest {
            message,
            detail: Some(d),
        } => ApiError::BadRequest {
            message,
            detail: Some(format!("foods[{i}].{d}")),
        },
        other => other,
    }
}

fn text_field(field: &str, raw: &str, min: usize, max: usize) -> ApiResult<String> {
    let t = raw.trim().to_owned();
    reject_nul(field, &t)?;
    let len = t.chars().count();
    if len < min || len > max {
        return Err(ApiError::invalid_field(
            field,
            format!("must be {min} to {max} characters, got {len}"),
        ));
    }
    Ok(t)
}

fn name(raw: &str) -> ApiResult<String> {
    text_field("name", raw, 1, MAX_NAME_CHARS)
}

fn keywords(raw: Vec<String>) -> ApiResult<Vec<String>> {
    if raw.len() > MAX_KEYWORDS {
        return Err(ApiError::invalid_field(
            "keywords",
            format!("at most {MAX_KEYWORDS}, got {}", raw.len()),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, k) in raw.iter().enumerate() {
        let k = text_field(&format!("keywords[{i}]"), k, 1, MAX_KEYWORD_CHARS)?;
        if seen.insert(k.to_lowercase()) {
            out.push(k);
        }
    }
    Ok(out)
}

fn description(raw: Option<String>) -> ApiResult<Option<String>> {
    match raw {
        Some(d) => {
            let d = text_field("description", &d, 0, MAX_DESCRIPTION_CHARS)?;
            Ok((!d.is_empty()).then_some(d))
        }
        None => Ok(None),
    }
}

/// Each food settled exactly as `POST …/food` settles an entry.
fn foods(raw: Vec<MealFoodRequest>, now: DateTime<Utc>) -> ApiResult<Vec<MealFood>> {
    if raw.is_empty() || raw.len() > MAX_FOODS {
        return Err(ApiError::invalid_field(
            "foods",
            format!("must hold 1 to {MAX_FOODS} foods, got {}", raw.len()),
        ));
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, f)| {
            let request = LogFoodRequest::for_meal(
                f.description,
                f.quantity,
                [f.calories, f.protein_g, f.carbs_g, f.fat_g],
            );
            let entry = request.into_entry(now).map_err(|e| in_food(i, e))?;
            Ok(MealFood::from_entry(&entry))
        })
        .collect()
}

/// A meal id from a path: a malformed one names no meal (404).
fn meal_id(raw: &str) -> ApiResult<String> {
    uuid::Uuid::parse_str(raw)
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| meal_not_found())
}

pub(crate) fn meal_not_found() -> ApiError {
    ApiError::NotFound("saved meal not found".into())
}

pub(crate) fn meal_error(e: DbError) -> ApiError {
    match e {
        DbError::Conflict(what) if what == "saved_meals_limit" => ApiError::Conflict(format!(
            "a user may keep at most {} saved meals",
            actors::db::ops::meals::MAX_MEALS_PER_USER
        )),
        DbError::Conflict(what) if what == "saved_meals_foods" => {
            ApiError::Conflict("a saved meal has these foods already".into())
        }
        DbError::Rejected(what) if what == "portion" => ApiError::invalid_field(
            "portion",
            "scales a food past what a food entry may hold (20000 kcal, 2000 g of a macro)",
        ),
        other => ApiError::for_user(other),
    }
}

/// Embeds a meal's search text: one admitted LLM call.
async fn meal_to_store(
    state: &AppState,
    name: String,
    keywords: Vec<String>,
    description: Option<String>,
    foods: Vec<MealFood>,
    suggested: Option<f64>,
) -> ApiResult<NewMeal> {
    let search_text = NewMeal::search_text(&name, &keywords, description.as_deref(), &foods);
    let embedding = state
        .llm
        .embed(vec![search_text.clone()])
        .await?
        .pop()
        .unwrap_or_default();
    Ok(NewMeal {
        name,
        keywords,
        description,
        foods,
        search_text,
        embedding,
        embedding_model: state.llm.shared().embedding_model(),
        is_auto_detected: suggested.is_some(),
        confidence_score: suggested,
    })
}

// ---------------------------------------------------------------------------
// What the routes (ours and the original's) do.

pub(crate) async fn create(
    state: &AppState,
    user_id: &str,
    req: CreateMealRequest,
) -> ApiResult<MealRow> {
    let now = Utc::now();
    let meal = match req.from_suggestion.as_deref() {
        Some(id) => {
            if req.foods.is_some() {
                return Err(ApiError::invalid_field(
                    "foods",
                    "must be left out with from_suggestion (its foods are saved)",
                ));
            }
            let s = suggestions(state, user_id)
                .await?
                .into_iter()
                .find(|s| s.id == id)
                .ok_or_else(|| {
                    ApiError::NotFound("suggestion not found (or saved already)".into())
                })?;
            let name = match req.name.as_deref() {
                Some(n) => name(n)?,
                None => s.name.clone(),
            };
            let foods = s.stored;
            meal_to_store(
                state,
                name,
                keywords(req.keywords.unwrap_or_default())?,
                description(req.description)?,
                foods,
                Some(s.view.confidence),
            )
            .await?
        }
        None => {
            let name = name(
                req.name
                    .as_deref()
                    .ok_or_else(|| ApiError::invalid_field("name", "missing field `name`"))?,
            )?;
            let keywords = keywords(req.keywords.unwrap_or_default())?;
            let description = description(req.description)?;
            let foods = foods(
                req.foods
                    .ok_or_else(|| ApiError::invalid_field("foods", "missing field `foods`"))?,
                now,
            )?;
            // The user first: no embedding for a user that does not exist.
            reads::user(state, user_id).await?;
            meal_to_store(state, name, keywords, description, foods, None).await?
        }
    };
    let row = state
        .db
        .run(CreateMeal {
            user_id: user_id.to_owned(),
            meal,
        })
        .await
        .map_err(meal_error)?;
    reads::refresh_meals(state, user_id).await;
    Ok(row)
}

pub(crate) async fn list(state: &AppState, user_id: &str) -> ApiResult<Vec<MealRow>> {
    reads::meals(state, user_id).await
}

pub(crate) async fn get(state: &AppState, user_id: &str, raw_id: &str) -> ApiResult<MealRow> {
    let id = meal_id(raw_id)?;
    reads::meals(state, user_id)
        .await?
        .into_iter()
        .find(|m| m.id == id)
        .ok_or_else(meal_not_found)
}

pub(crate) async fn update(
    state: &AppState,
    user_id: &str,
    raw_id: &str,
    req: UpdateMealRequest,
) -> ApiResult<MealRow> {
    let id = meal_id(raw_id)?;
    let new_name = req.name.as_deref().map(name).transpose()?;
    let new_keywords = req.keywords.map(keywords).transpose()?;
    let new_description = req.description.map(|d| description(Some(d))).transpose()?;
    let new_foods = req.foods.map(|f| foods(f, Utc::now())).transpose()?;
    reads::user(state, user_id).await?;
    let current = state
        .db
        .run(GetMeal {
            user_id: user_id.to_owned(),
            meal_id: id.clone(),
        })
        .await
        .map_err(ApiError::for_user)?
        .ok_or_else(meal_not_found)?;
    let meal = meal_to_store(
        state,
        new_name.unwrap_or(current.name),
        new_keywords.unwrap_or(current.keywords),
        new_description.unwrap_or(current.description),
        new_foods.unwrap_or(current.foods),
        None,
    )
    .await?;
    let row = state
        .db
        .run(UpdateMeal {
            user_id: user_id.to_owned(),
            meal_id: id,
            meal,
        })
        .await
        .map_err(meal_error)?
        .ok_or_else(meal_not_found)?;
    reads::refresh_meals(state, user_id).await;
    Ok(row)
}

pub(crate) async fn delete(state: &AppState, user_id: &str, raw_id: &str) -> ApiResult<()> {
    let id = meal_id(raw_id)?;
    reads::user(state, user_id).await?;
    let deleted = state
        .db
        .run(DeleteMeal {
            user_id: user_id.to_owned(),
            meal_id: id,
        })
        .await?;
    if !deleted {
        return Err(meal_not_found());
    }
    reads::refresh_meals(state, user_id).await;
    Ok(())
}

/// `to_tsquery('simple', …)` text matching any word of `q` as a prefix.
fn tsquery(q: &str) -> String {
    q.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("{w}:*"))
        .collect::<Vec<_>>()
        .join(" | ")
}

pub(crate) async fn search(
    state: &AppState,
    user_id: &str,
    q: Option<&str>,
    limit: Option<i64>,
) -> ApiResult<Vec<MealHit>> {
    let q = text_field(
        "q",
        q.ok_or_else(|| ApiError::invalid_field("q", "missing"))?,
        1,
        MAX_QUERY_CHARS,
    )?;
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            format!("must be 1 to {MAX_LIMIT}, got {limit}"),
        ));
    }
    reads::user(state, user_id).await?;
    let embedding = state
        .llm
        .embed(vec![q.clone()])
        .await?
        .pop()
        .unwrap_or_default();
    Ok(state
        .db
        .run(SearchMeals {
            user_id: user_id.to_owned(),
            tsquery: tsquery(&q),
            embedding,
            embedding_model: state.llm.shared().embedding_model(),
            min_similarity: MIN_SIMILARITY,
            limit,
        })
        .await?)
}

/// Parses a log body: none, `{}` or the fields.
pub(crate) fn log_request(body: &[u8]) -> ApiResult<LogMealRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(LogMealRequest::default());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("malformed JSON", e.to_string()))?;
    extract::decode(value)
}

/// A log's time (default `now`) and portion (default 1), checked.
pub(crate) fn when_and_portion(
    req: &LogMealRequest,
    now: DateTime<Utc>,
) -> ApiResult<(DateTime<Utc>, f64)> {
    let at = match req.timestamp.as_deref() {
        Some(raw) => parse_timestamp(raw, now)?,
        None => now,
    };
    let portion = req.portion.unwrap_or(1.0);
    if !portion.is_finite() || !(MIN_PORTION..=MAX_PORTION).contains(&portion) {
        return Err(ApiError::invalid_field(
            "portion",
            format!("must be a number from {MIN_PORTION} to {MAX_PORTION}, got {portion}"),
        ));
    }
    Ok((at, portion))
}

pub(crate) async fn log(
    state: &AppState,
    user_id: &str,
    raw_id: &str,
    req: LogMealRequest,
) -> ApiResult<LoggedMealResponse> {
    let id = meal_id(raw_id)?;
    let (at, portion) = when_and_portion(&req, Utc::now())?;
    let logged = state
        .db
        .run(LogMeal {
            user_id: user_id.to_owned(),
            meal_id: id,
            at,
            portion,
        })
        .await
        .map_err(meal_error)?
        .ok_or_else(meal_not_found)?;
    let day = logged.entries.first().map(|e| e.local_date);
    match day {
        Some(day) => reads::refresh_meal_log(state, user_id, day).await,
        None => reads::refresh_meals(state, user_id).await,
    }
    Ok(LoggedMealResponse::new(logged, portion))
}

/// A suggestion with the foods a save stores.
pub(crate) struct Suggested {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) view: SuggestionResponse,
    stored: Vec<MealFood>,
}

/// The user's suggestions now, best first (`domain::meals::suggest`).
pub(crate) async fn suggestions(state: &AppState, user_id: &str) -> ApiResult<Vec<Suggested>> {
    let today_utc = Utc::now().date_naive();
    // A day of slack for the zones ahead of or behind UTC; the rule keeps
    // its own window of the user's days.
    let since = today_utc - chrono::Duration::days(rules::WINDOW_DAYS);
    let history = state
        .db
        .run(GetMealHistory {
            user_id: user_id.to_owned(),
            since,
        })
        .await
        .map_err(ApiError::for_user)?;
    let tz = history.timezone;
    let today = domain::time::local_date(Utc::now(), tz);
    let key = |e: &FoodEntryRow| rules::food_key(e.food.as_deref(), &e.description);
    let logged: Vec<LoggedFood> = history
        .entries
        .iter()
        .map(|e| LoggedFood {
            key: key(e),
            local_date: e.local_date,
            meal_time: MealTime::of(e.logged_at.with_timezone(&tz)),
        })
        .collect();
    // The latest entry of each food is what a save stores.
    let latest: HashMap<String, &FoodEntryRow> =
        history.entries.iter().map(|e| (key(e), e)).collect();
    let saved: Vec<BTreeSet<String>> = history
        .saved
        .into_iter()
        .map(|k| k.into_iter().collect())
        .collect();
    Ok(rules::suggest(&logged, &saved, today)
        .into_iter()
        .map(|s| {
            let stored: Vec<MealFood> = s
                .foods
                .iter()
                .filter_map(|k| latest.get(k))
                .map(|e| MealFood {
                    description: e.description.clone(),
                    quantity: e.quantity.clone(),
                    food: e.food.clone(),
                    grams: e.grams,
                    calories: e.calories,
                    protein_g: e.protein_g,
                    carbs_g: e.carbs_g,
                    fat_g: e.fat_g,
                    nutrition_source: e.nutrition_source.clone(),
                })
                .collect();
            let totals = actors::db::ops::MealTotals::of(&stored);
            let id = rules::suggestion_id(&s.foods);
            let view = SuggestionResponse {
                id: id.clone(),
                name: s.name.clone(),
                foods: stored.iter().map(Into::into).collect(),
                confidence: s.confidence,
                occurrences: s.occurrences as u32,
                meal_time: s.meal_time.as_str().to_owned(),
                total_calories: totals.calories,
                total_protein_g: totals.protein_g,
                total_carbs_g: totals.carbs_g,
                total_fat_g: totals.fat_g,
            };
            Suggested {
                id,
                name: s.name,
                view,
                stored,
            }
        })
        .collect())
}

// ---------------------------------------------------------------------------
// Routes.

/// `POST /api/v1/users/{user_id}/meals`: 201 with the saved meal.
#[utoipa::path(
    tag = "meals",
    params(UserPath),
    request_body = CreateMealRequest,
    responses(
        (status = 201, description = "Saved; foods without numbers estimated as `POST …/food` \
            does, totals computed from them.", body = MealResponse),
        (status = 400, description = "`user_id` or a field is invalid (named in `detail`, \
            e.g. `foods[2].calories`), or the JSON is malformed.", body = ErrorBody),
        (status = 404, description = "No such user, or no such suggestion.", body = ErrorBody),
        (status = 409, description = "At the limit of 200 saved meals, or the suggestion's \
            foods are saved already.", body = ErrorBody),
        (status = 413, response = super::docs::PayloadTooLarge),
        (status = 415, response = super::docs::UnsupportedMediaType),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[post("/meals")]
pub async fn create_meal(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
    Body(req): Body<CreateMealRequest>,
) -> ApiResult<HttpResponse> {
    let user_id = user_id.into_inner();
    let row = create(&state, &user_id, req).await?;
    Ok(HttpResponse::Created().json(MealResponse::from(&row)))
}

/// `GET /api/v1/users/{user_id}/meals`: most used first.
#[utoipa::path(
    tag = "meals",
    params(UserPath),
    responses(
        (status = 200, description = "The saved meals, most used first.", body = MealListResponse),
        (status = 400, description = "`user_id` is invalid.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[get("/meals")]
pub async fn list_meals(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
) -> ApiResult<web::Json<MealListResponse>> {
    let meals = list(&state, user_id.as_ref()).await?;
    Ok(web::Json(MealListResponse {
        meals: meals.iter().map(Into::into).collect(),
    }))
}

/// `GET /api/v1/users/{user_id}/meals/{meal_id}`.
#[utoipa::path(
    tag = "meals",
    params(MealPath),
    responses(
        (status = 200, description = "The saved meal.", body = MealResponse),
        (status = 400, description = "`user_id` is invalid.", body = ErrorBody),
        (status = 404, description = "No such user or saved meal.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[get("/meals/{meal_id}")]
pub async fn get_meal(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
    PathItem(item): PathItem,
) -> ApiResult<web::Json<MealResponse>> {
    let meal = get(&state, user_id.as_ref(), &item).await?;
    Ok(web::Json((&meal).into()))
}

/// `PATCH /api/v1/users/{user_id}/meals/{meal_id}`.
#[utoipa::path(
    tag = "meals",
    params(MealPath),
    request_body = UpdateMealRequest,
    responses(
        (status = 200, description = "The changed meal (totals recomputed).", body = MealResponse),
        (status = 400, description = "A field is invalid (named in `detail`), or the JSON is \
            malformed.", body = ErrorBody),
        (status = 404, description = "No such user or saved meal.", body = ErrorBody),
        (status = 413, response = super::docs::PayloadTooLarge),
        (status = 415, response = super::docs::UnsupportedMediaType),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[patch("/meals/{meal_id}")]
pub async fn patch_meal(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
    PathItem(item): PathItem,
    Body(req): Body<UpdateMealRequest>,
) -> ApiResult<web::Json<MealResponse>> {
    let meal = update(&state, user_id.as_ref(), &item, req).await?;
    Ok(web::Json((&meal).into()))
}

/// `DELETE /api/v1/users/{user_id}/meals/{meal_id}`: 204; food it logged stays.
#[utoipa::path(
    tag = "meals",
    params(MealPath),
    responses(
        (status = 204, description = "Deleted; the food it logged stays."),
        (status = 400, description = "`user_id` is invalid.", body = ErrorBody),
        (status = 404, description = "No such user or saved meal.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[delete("/meals/{meal_id}")]
pub async fn delete_meal(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
    PathItem(item): PathItem,
) -> ApiResult<HttpResponse> {
    delete(&state, user_id.as_ref(), &item).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/users/{user_id}/meals/search?q=…&limit=5`.
#[utoipa::path(
    tag = "meals",
    params(UserPath, MealSearchQuery),
    responses(
        (status = 200, description = "Meals whose name, keywords, description or foods hold a \
            word of `q` (as a prefix) first, then the nearest in meaning, best first.",
            body = MealSearchResponse),
        (status = 400, description = "`user_id`, `q` or `limit` is invalid.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[get("/meals/search")]
pub async fn search_meals(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
    query: web::Query<MealSearchQuery>,
) -> ApiResult<web::Json<MealSearchResponse>> {
    let hits = search(&state, user_id.as_ref(), query.q.as_deref(), query.limit).await?;
    Ok(web::Json(MealSearchResponse {
        meals: hits
            .iter()
            .map(|h| MealSearchHit {
                meal: (&h.meal).into(),
                keyword_match: h.keyword_match,
                score: (h.similarity * 1000.0).round() / 1000.0,
            })
            .collect(),
    }))
}

/// `POST /api/v1/users/{user_id}/meals/{meal_id}/log`: 201 with the entries.
#[utoipa::path(
    tag = "meals",
    params(MealPath),
    request_body(content = Option<LogMealRequest>, description = "May be left out."),
    responses(
        (status = 201, description = "Every food of the meal logged in one transaction, scaled \
            by `portion`: one food-logging event (10 XP, one streak day).",
            body = LoggedMealResponse),
        (status = 400, description = "A field is invalid (named in `detail`), or the JSON is \
            malformed.", body = ErrorBody),
        (status = 404, description = "No such user or saved meal.", body = ErrorBody),
        (status = 413, response = super::docs::PayloadTooLarge),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[post("/meals/{meal_id}/log")]
pub async fn log_meal(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
    PathItem(item): PathItem,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let req = log_request(&body)?;
    let logged = log(&state, user_id.as_ref(), &item, req).await?;
    Ok(HttpResponse::Created().json(logged))
}

/// `GET /api/v1/users/{user_id}/meals/suggestions`.
#[utoipa::path(
    tag = "meals",
    params(UserPath),
    responses(
        (status = 200, description = "Combinations of at least two foods logged together (same \
            local day and meal time) at least 3 times in the last 14 days, not saved yet; best \
            first.", body = SuggestionsResponse),
        (status = 400, description = "`user_id` is invalid.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[get("/meals/suggestions")]
pub async fn meal_suggestions(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
) -> ApiResult<web::Json<SuggestionsResponse>> {
    let found = suggestions(&state, user_id.as_ref()).await?;
    Ok(web::Json(SuggestionsResponse {
        suggestions: found.into_iter().map(|s| s.view).collect(),
    }))
}
