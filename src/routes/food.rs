use actix_web::{delete, get, post, web, HttpResponse};
use actors::db::ops::{
    DeleteFoodEntry, FoodDay, FoodEntryRow, LogFood, NewFoodEntry, NutritionSource,
};
use chrono::{DateTime, Duration, Months, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::docs::UserPath;
use super::users::reject_nul;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, PathItem, PathUser};
use crate::reads;
use crate::state::AppState;

const MAX_DESCRIPTION_CHARS: usize = 500;
const MAX_QUANTITY_CHARS: usize = 100;
const MAX_CALORIES: f64 = 20_000.0;
const MAX_MACRO_G: f64 = 2_000.0;

/// A food entry. Nutrition given (any of the four) is stored as given;
/// with none, it is estimated from the description and quantity when the
/// food is known, else left unknown (`nutrition_source`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"description": "banana", "quantity": "2 medium"}))]
pub struct LogFoodRequest {
    /// 1–500 characters, not blank.
    #[schema(min_length = 1, max_length = 500, example = "banana")]
    description: String,
    /// An amount the estimate reads (`2 medium`, `150 g`, `1 1/2 cups`): at
    /// most 5000 g and 20000 kcal once estimated, else a 400 naming it.
    #[serde(default)]
    #[schema(max_length = 100, example = "2 medium")]
    quantity: Option<String>,
    /// When it was eaten (default now): RFC 3339 with an offset, at most
    /// 24 h ahead and one year back.
    #[serde(default)]
    #[schema(format = DateTime, example = "2026-06-01T12:30:00Z")]
    timestamp: Option<String>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 20000)]
    calories: Option<f64>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 2000)]
    protein_g: Option<f64>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 2000)]
    carbs_g: Option<f64>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 2000)]
    fat_g: Option<f64>,
}

impl LogFoodRequest {
    /// One food of a saved meal, settled as `POST …/food` settles an entry.
    pub(crate) fn for_meal(
        description: String,
        quantity: Option<String>,
        [calories, protein_g, carbs_g, fat_g]: [Option<f64>; 4],
    ) -> Self {
        Self {
            description,
            quantity,
            timestamp: None,
            calories,
            protein_g,
            carbs_g,
            fat_g,
        }
    }

    /// Validates every field and settles the nutrition: given values as
    /// given, else the table's estimate, else unknown (never made up).
    pub(crate) fn into_entry(self, now: DateTime<Utc>) -> ApiResult<NewFoodEntry> {
        // Counted before trimming, as the schema's maxLength counts it.
        let raw_len = self.description.chars().count();
        let description = self.description.trim().to_owned();
        reject_nul("description", &description)?;
        let len = if description.is_empty() { 0 } else { raw_len };
        if len == 0 || len > MAX_DESCRIPTION_CHARS {
            return Err(ApiError::invalid_field(
                "description",
                format!("must be 1 to {MAX_DESCRIPTION_CHARS} characters, got {len}"),
            ));
        }
        let quantity = self
            .quantity
            .map(|q| q.trim().to_owned())
            .filter(|q| !q.is_empty());
        if let Some(q) = &quantity {
            reject_nul("quantity", q)?;
            let len = q.chars().count();
            if len > MAX_QUANTITY_CHARS {
                return Err(ApiError::invalid_field(
                    "quantity",
                    format!("must be at most {MAX_QUANTITY_CHARS} characters, got {len}"),
                ));
            }
        }
        let logged_at = match self.timestamp.as_deref() {
            Some(raw) => parse_timestamp(raw, now)?,
            None => now,
        };
        let calories = amount("calories", self.calories, MAX_CALORIES)?;
        let protein_g = amount("protein_g", self.protein_g, MAX_MACRO_G)?;
        let carbs_g = amount("carbs_g", self.carbs_g, MAX_MACRO_G)?;
        let fat_g = amount("fat_g", self.fat_g, MAX_MACRO_G)?;

        let mut entry = NewFoodEntry {
            description,
            quantity,
            food: None,
            grams: None,
            calories,
            protein_g,
            carbs_g,
            fat_g,
            source: NutritionSource::User,
            logged_at,
        };
        if [calories, protein_g, carbs_g, fat_g]
            .iter()
            .all(Option::is_none)
        {
            // Named after the text the amount came from: `quantity` when given.
            let field = if entry.quantity.is_some() {
                "quantity"
            } else {
                "description"
            };
            let estimate =
                domain::nutrition::estimate_checked(&entry.description, entry.quantity.as_deref())
                    .map_err(|why| ApiError::invalid_field(field, why))?;
            match estimate {
                Some(est) => {
                    // The estimate must fit the bounds given values have.
                    amount("calories", Some(est.calories), MAX_CALORIES).map_err(|_| {
                        ApiError::invalid_field(
                            field,
                            format!(
                                "means {} kcal; at most {MAX_CALORIES} can be logged at once",
                                est.calories
                            ),
                        )
                    })?;
                    entry.food = Some(est.food.to_owned());
                    entry.grams = Some(est.grams);
                    entry.calories = Some(est.calories);
                    entry.protein_g = Some(est.protein_g);
                    entry.carbs_g = Some(est.carbs_g);
                    entry.fat_g = Some(est.fat_g);
                    entry.source = NutritionSource::Estimated;
                }
                None => entry.source = NutritionSource::Unknown,
            }
        }
        Ok(entry)
    }
}

/// RFC 3339 with an offset, at most a day ahead (clock skew, time zones) and
/// at most a year back.
pub(crate) fn parse_timestamp(raw: &str, now: DateTime<Utc>) -> ApiResult<DateTime<Utc>> {
    let at = DateTime::parse_from_rfc3339(raw)
        .map_err(|e| {
            ApiError::invalid_field(
                "timestamp",
                format!("expected RFC 3339 with an offset, e.g. 2026-06-01T12:30:00Z ({e})"),
            )
        })?
        .with_timezone(&Utc);
    if at > now + Duration::hours(24) {
        return Err(ApiError::invalid_field(
            "timestamp",
            "must not be more than 24 hours in the future",
        ));
    }
    let oldest = now.checked_sub_months(Months::new(12)).unwrap_or(now);
    if at < oldest {
        return Err(ApiError::invalid_field(
            "timestamp",
            "must not be more than one year in the past",
        ));
    }
    Ok(at)
}

fn amount(field: &str, value: Option<f64>, max: f64) -> ApiResult<Option<f64>> {
    match value {
        Some(v) if !v.is_finite() || !(0.0..=max).contains(&v) => Err(ApiError::invalid_field(
            field,
            format!("must be a number from 0 to {max}, got {v}"),
        )),
        other => Ok(other),
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "5f0c1c9e-2b1a-4c43-9a55-8f1a0e7b9d21", "user_id": "alice",
    "description": "banana", "quantity": "2 medium", "food": "banana", "grams": 236.0,
    "calories": 210.4, "protein_g": 2.6, "carbs_g": 54.0, "fat_g": 0.8,
    "nutrition_source": "estimated", "timestamp": "2026-06-01T12:30:00Z",
    "local_date": "2026-06-01"
}))]
pub struct FoodEntryResponse {
    #[schema(format = "uuid")]
    id: String,
    user_id: String,
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
    #[schema(format = DateTime)]
    timestamp: String,
    /// The day it counts for, in the user's time zone.
    #[schema(format = Date)]
    local_date: String,
}

impl From<FoodEntryRow> for FoodEntryResponse {
    fn from(r: FoodEntryRow) -> Self {
        Self {
            id: r.id,
            user_id: r.user_id,
            description: r.description,
            quantity: r.quantity,
            food: r.food,
            grams: r.grams,
            calories: r.calories,
            protein_g: r.protein_g,
            carbs_g: r.carbs_g,
            fat_g: r.fat_g,
            nutrition_source: r.nutrition_source,
            timestamp: r.logged_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            local_date: r.local_date.to_string(),
        }
    }
}

/// One local day of food; totals sum the known values only.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FoodDayResponse {
    #[schema(format = Date, example = "2026-06-01")]
    date: String,
    #[schema(example = "Europe/Berlin")]
    timezone: String,
    entries: Vec<FoodEntryResponse>,
    total_calories: f64,
    total_protein: f64,
    total_carbs: f64,
    total_fat: f64,
    /// Entries whose nutrition is unknown (not in the totals).
    unknown_entries: u64,
}

/// Sums known values only; rounded to 0.01 so float noise stays out.
fn total(entries: &[FoodEntryRow], value: impl Fn(&FoodEntryRow) -> Option<f64>) -> f64 {
    let sum: f64 = entries.iter().filter_map(value).sum();
    // An empty f64 sum is -0.0; + 0.0 makes it 0.
    (sum * 100.0).round() / 100.0 + 0.0
}

impl From<FoodDay> for FoodDayResponse {
    fn from(day: FoodDay) -> Self {
        let e = &day.entries;
        Self {
            date: day.date.to_string(),
            timezone: day.timezone.name().to_owned(),
            total_calories: total(e, |r| r.calories),
            total_protein: total(e, |r| r.protein_g),
            total_carbs: total(e, |r| r.carbs_g),
            total_fat: total(e, |r| r.fat_g),
            unknown_entries: e
                .iter()
                .filter(|r| r.nutrition_source == NutritionSource::Unknown.as_str())
                .count() as u64,
            entries: day.entries.into_iter().map(Into::into).collect(),
        }
    }
}

impl FoodDayResponse {
    /// Adds entries not stored yet (a chat's queued ones) to the day.
    pub(crate) fn add(&mut self, rows: Vec<FoodEntryRow>) {
        let plus = |sum: &mut f64, v: f64| *sum = ((*sum + v) * 100.0).round() / 100.0;
        for r in rows {
            plus(&mut self.total_calories, r.calories.unwrap_or(0.0));
            plus(&mut self.total_protein, r.protein_g.unwrap_or(0.0));
            plus(&mut self.total_carbs, r.carbs_g.unwrap_or(0.0));
            plus(&mut self.total_fat, r.fat_g.unwrap_or(0.0));
            if r.nutrition_source == NutritionSource::Unknown.as_str() {
                self.unknown_entries += 1;
            }
            self.entries.push(r.into());
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FoodDayQuery {
    /// `YYYY-MM-DD` from 1900-01-01 to 2100-12-31, a day in the user's
    /// time zone; default today.
    #[serde(default)]
    #[param(format = Date, pattern = r"^(19[0-9]{2}|20[0-9]{2}|2100)-[0-9]{2}-[0-9]{2}$", example = "2026-06-01")]
    date: Option<String>,
}

/// `POST /api/v1/users/{user_id}/food`: 201 with the stored entry.
#[utoipa::path(
    tag = "food",
    params(UserPath),
    request_body = LogFoodRequest,
    responses(
        (status = 201, description = "Stored, with its nutrition; awards 10 XP.",
            body = FoodEntryResponse),
        (status = 400, description = "`user_id` or a field is invalid (named in `detail`), \
            or the JSON is malformed.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 413, response = super::docs::PayloadTooLarge),
        (status = 415, response = super::docs::UnsupportedMediaType),
    )
)]
#[post("/food")]
pub async fn log_food(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
    Body(request): Body<LogFoodRequest>,
) -> ApiResult<HttpResponse> {
    let entry = request.into_entry(Utc::now())?;
    let user_id = user_id.into_inner();
    let row = state
        .db
        .run(LogFood {
            user_id: user_id.clone(),
            entry,
        })
        .await
        .map_err(ApiError::for_user)?;
    reads::refresh_food(&state, &user_id, row.local_date).await;
    Ok(HttpResponse::Created().json(FoodEntryResponse::from(row)))
}

/// A `date` field: `YYYY-MM-DD`, exactly.
pub(crate) fn parse_day(d: &str) -> ApiResult<NaiveDate> {
    let bad = |why: String| ApiError::invalid_field("date", format!("expected YYYY-MM-DD{why}"));
    // chrono alone would take "2026-6-1" too.
    if d.len() != 10 {
        return Err(bad(String::new()));
    }
    let day = NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|e| bad(format!(" ({e})")))?;
    // "-001-01-01" is ten characters too.
    if !(MIN_YEAR..=MAX_YEAR).contains(&chrono::Datelike::year(&day)) {
        return Err(ApiError::invalid_field(
            "date",
            format!("must be between {MIN_YEAR}-01-01 and {MAX_YEAR}-12-31"),
        ));
    }
    Ok(day)
}

/// The days a `date` may name.
pub(crate) const MIN_YEAR: i32 = 1900;
pub(crate) const MAX_YEAR: i32 = 2100;

/// `GET /api/v1/users/{user_id}/food?date=YYYY-MM-DD`: one local day's log.
#[utoipa::path(
    tag = "food",
    params(UserPath, FoodDayQuery),
    responses(
        (status = 200, description = "The day's entries, oldest first, and totals.",
            body = FoodDayResponse),
        (status = 400, description = "`user_id` or `date` is invalid.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[get("/food")]
pub async fn food_day(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
    query: web::Query<FoodDayQuery>,
) -> ApiResult<web::Json<FoodDayResponse>> {
    let date = query.date.as_deref().map(parse_day).transpose()?;
    // The user (cached) gives the timezone that decides which day is today.
    let user = reads::user(&state, user_id.as_ref()).await?;
    let date = date.unwrap_or_else(|| domain::time::local_date(Utc::now(), user.timezone()));
    let day = reads::food_day(&state, user_id.as_ref(), date).await?;
    Ok(web::Json(day.into()))
}

/// One food entry of a user.
#[derive(IntoParams)]
#[allow(dead_code)] // documents the path; the handler reads it as a tuple
#[into_params(parameter_in = Path)]
pub struct FoodEntryPath {
    /// An opaque id: 1–128 characters of `A-Z a-z 0-9 _ . : @ -`.
    #[param(pattern = r"^[A-Za-z0-9_.:@-]{1,128}$", example = "alice")]
    pub user_id: String,
    /// The entry's id; anything that is not a UUID names no entry (404).
    #[param(format = "uuid", example = "5f0c1c9e-2b1a-4c43-9a55-8f1a0e7b9d21")]
    pub entry_id: String,
}

fn entry_not_found() -> ApiError {
    ApiError::NotFound("food entry not found".into())
}

/// `DELETE /api/v1/users/{user_id}/food/{entry_id}`: 204. The day's totals
/// and cache follow, and the entry's 10 XP is taken back; streak days and
/// achievements stay (the user did log that day).
#[utoipa::path(
    tag = "food",
    params(FoodEntryPath),
    responses(
        (status = 204, description = "Deleted; its XP is taken back and the day's totals follow."),
        (status = 400, description = "`user_id` is invalid.", body = ErrorBody),
        (status = 404, description = "No such user, or no such entry of this user.",
            body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[delete("/food/{entry_id}")]
pub async fn delete_food(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
    PathItem(item): PathItem,
) -> ApiResult<HttpResponse> {
    let user_id = user_id.into_inner();
    let entry_id = uuid::Uuid::parse_str(&item)
        .map_err(|_| entry_not_found())?
        .hyphenated()
        .to_string();
    let day = state
        .db
        .run(DeleteFoodEntry {
            user_id: user_id.clone(),
            entry_id,
        })
        .await
        .map_err(ApiError::for_user)?
        .ok_or_else(entry_not_found)?;
    reads::refresh_food(&state, &user_id, day).await;
    Ok(HttpResponse::NoContent().finish())
}
