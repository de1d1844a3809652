//! The original service's saved meals, `/api/formulas…`, for its clients:
//! the user in a `user_id` query parameter (or the body's `user_id` when
//! saving), its field names (`total_macros`, `confidence_score`, …), and
//! the same code as `routes::meals` behind them. Deprecated in the document.

use actix_web::{delete, get, post, put, web, HttpResponse};
use actors::db::ops::MealRow;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::docs::{FormulaPath, NewFormula};
use super::food::FoodEntryResponse;
use super::meals::{self, CreateMealRequest, MealFoodResponse, UpdateMealRequest};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{self, PathItem};
use crate::state::AppState;

/// The user, as the original takes it.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// 1–128 characters of `A-Z a-z 0-9 _ . : @ -`; when saving, the body's
    /// `user_id` may say it instead.
    #[param(pattern = r"^[A-Za-z0-9_.:@-]{1,128}$", example = "alice")]
    user_id: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FormulaSearchQuery {
    /// 1–128 characters of `A-Z a-z 0-9 _ . : @ -`.
    #[param(pattern = r"^[A-Za-z0-9_.:@-]{1,128}$", example = "alice")]
    user_id: Option<String>,
    /// Words of a name, keyword or food, or what the formula is like.
    #[param(min_length = 1, max_length = 200, example = "oats")]
    keyword: Option<String>,
    /// 1–50, default 5.
    #[param(minimum = 1, maximum = 50)]
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Macros {
    /// Grams.
    protein: f64,
    carbs: f64,
    fat: f64,
}

/// A saved meal in the original's words.
#[derive(Debug, Serialize, ToSchema)]
pub struct FormulaResponse {
    #[schema(format = "uuid")]
    id: String,
    user_id: String,
    name: String,
    keywords: Vec<String>,
    description: Option<String>,
    foods: Vec<MealFoodResponse>,
    total_calories: f64,
    total_macros: Macros,
    times_used: i32,
    #[schema(format = DateTime)]
    last_used_at: Option<String>,
    is_auto_detected: bool,
    confidence_score: Option<f64>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

impl From<&MealRow> for FormulaResponse {
    fn from(m: &MealRow) -> Self {
        let ts = |t: chrono::DateTime<chrono::Utc>| {
            t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        };
        Self {
            id: m.id.clone(),
            user_id: m.user_id.clone(),
            name: m.name.clone(),
            keywords: m.keywords.clone(),
            description: m.description.clone(),
            foods: m.foods.iter().map(Into::into).collect(),
            total_calories: m.totals.calories,
            total_macros: Macros {
                protein: m.totals.protein_g,
                carbs: m.totals.carbs_g,
                fat: m.totals.fat_g,
            },
            times_used: m.times_used,
            last_used_at: m.last_used_at.map(ts),
            is_auto_detected: m.is_auto_detected,
            confidence_score: m.confidence_score,
            created_at: ts(m.created_at),
            updated_at: ts(m.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FormulaListResponse {
    formulas: Vec<FormulaResponse>,
}

/// What using a formula logged.
#[derive(Debug, Serialize, ToSchema)]
pub struct FormulaUseResponse {
    #[schema(format = "uuid")]
    formula_id: String,
    portion: f64,
    entries: Vec<FoodEntryResponse>,
    xp_awarded: i64,
    times_used: i32,
}

/// A detected combination in the original's words.
#[derive(Debug, Serialize, ToSchema)]
pub struct FormulaSuggestion {
    /// Pass as `from_suggestion` when saving.
    id: String,
    name: String,
    foods: Vec<MealFoodResponse>,
    total_calories: f64,
    total_macros: Macros,
    /// 0–1.
    confidence_score: f64,
    occurrences: u32,
    meal_time: String,
    /// Always true: found in what the user logged.
    is_auto_detected: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FormulaSuggestionsResponse {
    suggestions: Vec<FormulaSuggestion>,
}

fn user(query: Option<&str>) -> ApiResult<String> {
    let raw = query.ok_or_else(|| ApiError::invalid_field("user_id", "missing"))?;
    Ok(extract::user_id(raw)?.into_inner())
}

/// `GET /api/formulas?user_id=`.
#[utoipa::path(
    tag = "formulas",
    params(UserQuery),
    responses(
        (status = 200, description = "Most used first.", body = FormulaListResponse),
        (status = 400, description = "`user_id` is missing or invalid.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[get("")]
pub async fn list_formulas(
    state: web::Data<AppState>,
    query: web::Query<UserQuery>,
) -> ApiResult<web::Json<FormulaListResponse>> {
    let user_id = user(query.user_id.as_deref())?;
    let meals = meals::list(&state, &user_id).await?;
    Ok(web::Json(FormulaListResponse {
        formulas: meals.iter().map(Into::into).collect(),
    }))
}

/// `POST /api/formulas?user_id=`: 201 with the formula.
#[utoipa::path(
    tag = "formulas",
    params(UserQuery),
    request_body = NewFormula,
    responses(
        (status = 201, description = "Saved; totals computed by us.", body = FormulaResponse),
        (status = 400, description = "`user_id` or a field is missing or invalid.",
            body = ErrorBody),
        (status = 404, description = "No such user, or no such suggestion.", body = ErrorBody),
        (status = 409, description = "At the limit of saved meals, or saved already.",
            body = ErrorBody),
        (status = 413, response = super::docs::PayloadTooLarge),
        (status = 415, response = super::docs::UnsupportedMediaType),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[post("")]
pub async fn create_formula(
    state: web::Data<AppState>,
    query: web::Query<UserQuery>,
    body: web::Json<Value>,
) -> ApiResult<HttpResponse> {
    let mut body = body.into_inner();
    let in_body = match body.as_object_mut().and_then(|o| o.remove("user_id")) {
        Some(Value::String(u)) => Some(u),
        Some(_) => return Err(ApiError::invalid_field("user_id", "must be a string")),
        None => None,
    };
    let user_id = match (query.user_id.as_deref(), in_body.as_deref()) {
        (Some(q), Some(b)) if q != b => {
            return Err(ApiError::invalid_field(
                "user_id",
                "the query and the body name different users",
            ))
        }
        (Some(u), _) | (None, Some(u)) => user(Some(u))?,
        (None, None) => user(None)?,
    };
    let req: CreateMealRequest = extract::decode(body)?;
    let row = meals::create(&state, &user_id, req).await?;
    Ok(HttpResponse::Created().json(FormulaResponse::from(&row)))
}

/// `GET /api/formulas/{id}?user_id=`.
#[utoipa::path(
    tag = "formulas",
    params(FormulaPath, UserQuery),
    responses(
        (status = 200, description = "The formula.", body = FormulaResponse),
        (status = 400, description = "`user_id` is missing or invalid.", body = ErrorBody),
        (status = 404, description = "No such user or formula.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[get("/{id}")]
pub async fn get_formula(
    state: web::Data<AppState>,
    PathItem(id): PathItem,
    query: web::Query<UserQuery>,
) -> ApiResult<web::Json<FormulaResponse>> {
    let user_id = user(query.user_id.as_deref())?;
    let meal = meals::get(&state, &user_id, &id).await?;
    Ok(web::Json((&meal).into()))
}

/// `PUT /api/formulas/{id}?user_id=`: fields left out stay.
#[utoipa::path(
    tag = "formulas",
    params(FormulaPath, UserQuery),
    request_body = UpdateMealRequest,
    responses(
        (status = 200, description = "The changed formula.", body = FormulaResponse),
        (status = 400, description = "`user_id` or a field is missing or invalid.",
            body = ErrorBody),
        (status = 404, description = "No such user or formula.", body = ErrorBody),
        (status = 413, response = super::docs::PayloadTooLarge),
        (status = 415, response = super::docs::UnsupportedMediaType),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[put("/{id}")]
pub async fn put_formula(
    state: web::Data<AppState>,
    PathItem(id): PathItem,
    query: web::Query<UserQuery>,
    body: web::Json<Value>,
) -> ApiResult<web::Json<FormulaResponse>> {
    let user_id = user(query.user_id.as_deref())?;
    let mut body = body.into_inner();
    // The original's clients send the record back whole: what we compute
    // ourselves, or cannot change, is ignored.
    if let Some(o) = body.as_object_mut() {
        for computed in [
            "id",
            "user_id",
            "total_calories",
            "total_macros",
            "times_used",
            "last_used_at",
            "is_auto_detected",
            "confidence_score",
            "created_at",
            "updated_at",
        ] {
            o.remove(computed);
        }
    }
    let req: UpdateMealRequest = extract::decode(body)?;
    let meal = meals::update(&state, &user_id, &id, req).await?;
    Ok(web::Json((&meal).into()))
}

/// `DELETE /api/formulas/{id}?user_id=`.
#[utoipa::path(
    tag = "formulas",
    params(FormulaPath, UserQuery),
    responses(
        (status = 204, description = "Deleted; the food it logged stays."),
        (status = 400, description = "`user_id` is missing or invalid.", body = ErrorBody),
        (status = 404, description = "No such user or formula.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[delete("/{id}")]
pub async fn delete_formula(
    state: web::Data<AppState>,
    PathItem(id): PathItem,
    query: web::Query<UserQuery>,
) -> ApiResult<HttpResponse> {
    let user_id = user(query.user_id.as_deref())?;
    meals::delete(&state, &user_id, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/formulas/search?user_id=&keyword=`.
#[utoipa::path(
    tag = "formulas",
    params(FormulaSearchQuery),
    responses(
        (status = 200, description = "Keyword matches first, then by meaning.",
            body = FormulaListResponse),
        (status = 400, description = "`user_id`, `keyword` or `limit` is missing or invalid.",
            body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[get("/search")]
pub async fn search_formulas(
    state: web::Data<AppState>,
    query: web::Query<FormulaSearchQuery>,
) -> ApiResult<web::Json<FormulaListResponse>> {
    let user_id = user(query.user_id.as_deref())?;
    let hits = meals::search(&state, &user_id, query.keyword.as_deref(), query.limit)
        .await
        .map_err(|e| rename_field(e, "q", "keyword"))?;
    Ok(web::Json(FormulaListResponse {
        formulas: hits.iter().map(|h| (&h.meal).into()).collect(),
    }))
}

/// A 400 about our field name, told in the original's.
fn rename_field(e: ApiError, ours: &str, theirs: &str) -> ApiError {
    match e {
        ApiError::BadRequest {
            message,
            detail: Some(d),
        } if d.starts_with(&format!("{ours}:")) => ApiError::BadRequest {
            message,
            detail: Some(format!("{theirs}{}", &d[ours.len()..])),
        },
        other => other,
    }
}

/// `POST /api/formulas/{id}/use?user_id=`: 201 with the entries logged.
#[utoipa::path(
    tag = "formulas",
    params(FormulaPath, UserQuery),
    request_body(content = Option<meals::LogMealRequest>, description = "May be left out."),
    responses(
        (status = 201, description = "Every food logged in one transaction: one food-logging \
            event.", body = FormulaUseResponse),
        (status = 400, description = "`user_id` or a field is missing or invalid.",
            body = ErrorBody),
        (status = 404, description = "No such user or formula.", body = ErrorBody),
        (status = 413, response = super::docs::PayloadTooLarge),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[post("/{id}/use")]
pub async fn use_formula(
    state: web::Data<AppState>,
    PathItem(id): PathItem,
    query: web::Query<UserQuery>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let user_id = user(query.user_id.as_deref())?;
    let req = meals::log_request(&body)?;
    let logged = meals::log(&state, &user_id, &id, req).await?;
    Ok(HttpResponse::Created().json(FormulaUseResponse {
        formula_id: logged.meal_id,
        portion: logged.portion,
        entries: logged.entries,
        xp_awarded: logged.xp_awarded,
        times_used: logged.times_used,
    }))
}

/// `POST /api/formulas/suggestions?user_id=`: the detected combinations.
#[utoipa::path(
    tag = "formulas",
    params(UserQuery),
    responses(
        (status = 200, description = "Foods logged together at least 3 times in 14 days, not \
            saved yet; best first.", body = FormulaSuggestionsResponse),
        (status = 400, description = "`user_id` is missing or invalid.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[post("/suggestions")]
pub async fn formula_suggestions(
    state: web::Data<AppState>,
    query: web::Query<UserQuery>,
) -> ApiResult<web::Json<FormulaSuggestionsResponse>> {
    let user_id = user(query.user_id.as_deref())?;
    let found = meals::suggestions(&state, &user_id).await?;
    Ok(web::Json(FormulaSuggestionsResponse {
        suggestions: found
            .into_iter()
            .map(|s| {
                let v = s.view;
                FormulaSuggestion {
                    id: v.id,
                    name: v.name,
                    foods: v.foods,
                    total_calories: v.total_calories,
                    total_macros: Macros {
                        protein: v.total_protein_g,
                        carbs: v.total_carbs_g,
                        fat: v.total_fat_g,
                    },
                    confidence_score: v.confidence,
                    occurrences: v.occurrences,
                    meal_time: v.meal_time,
                    is_auto_detected: true,
                }
            })
            .collect(),
    }))
}
