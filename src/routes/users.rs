use actix_web::{delete, get, patch, post, web, HttpResponse};
use actors::db::ops::{
    ClearConversation, CreateUser, DeleteUser, SetPreference, SetProfileField, UserRow,
};
use actors::db::DbError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::docs::{Preferences, Profile, UserPath};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{self, Body, PathUser};
use crate::state::AppState;
use crate::{cache_keys, reads};
use domain::profile;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user_id": "alice", "profile": {"age": 34, "timezone": "Europe/Berlin"}}))]
pub struct CreateUserRequest {
    /// 1–128 characters of `A-Z a-z 0-9 _ . : @ -`.
    #[schema(pattern = r"^[A-Za-z0-9_.:@-]{1,128}$", example = "alice")]
    user_id: String,
    #[serde(default)]
    #[schema(value_type = Option<super::docs::NewProfile>)]
    profile: Option<Map<String, Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "user_id": "alice",
    "profile": {"age": 34, "timezone": "Europe/Berlin"},
    "preferences": {"tone": "friendly", "brevity": "medium"}
}))]
pub struct UserResponse {
    user_id: String,
    #[schema(value_type = Profile)]
    profile: Value,
    #[schema(value_type = Preferences)]
    preferences: Value,
}

/// Preferences a user has not set read as these.
pub fn with_default_preferences(stored: &Value) -> Value {
    profile::with_preference_defaults(stored)
}

/// The profile as clients read it (`timezone` defaults to UTC).
pub fn with_default_profile(stored: &Value) -> Value {
    profile::with_profile_defaults(stored)
}

impl From<UserRow> for UserResponse {
    fn from(u: UserRow) -> Self {
        Self {
            preferences: with_default_preferences(&u.preferences),
            profile: with_default_profile(&u.profile),
            user_id: u.user_id,
        }
    }
}

/// A 400 for text PostgreSQL cannot store (a NUL character), which would
/// otherwise fail the query and answer 500.
pub(crate) fn reject_nul(field: &str, text: &str) -> ApiResult<()> {
    if text.contains('\0') {
        return Err(ApiError::invalid_field(field, profile::NUL));
    }
    Ok(())
}

/// `POST /api/v1/users`: 201 with the user, 409 when the id is taken.
#[utoipa::path(
    tag = "users",
    request_body = CreateUserRequest,
    responses(
        (status = 201, description = "Created; preferences at their defaults.", body = UserResponse),
        (status = 400, description = "`user_id` or a profile field is invalid (named in `detail`), \
            or the JSON is malformed.", body = ErrorBody),
        (status = 409, description = "The user exists already (or this `Idempotency-Key` is \
            in use).", body = ErrorBody),
        (status = 413, response = super::docs::PayloadTooLarge),
        (status = 415, response = super::docs::UnsupportedMediaType),
    )
)]
#[post("/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    Body(body): Body<CreateUserRequest>,
) -> ApiResult<HttpResponse> {
    let CreateUserRequest {
        user_id,
        profile: sent,
    } = body;
    let user_id = extract::user_id(&user_id)?;
    let profile = profile::validate_profile(&sent.unwrap_or_default())
        .map_err(|e| ApiError::invalid_field(&format!("profile.{}", e.field), e.why))?;
    let row = state
        .db
        .run(CreateUser {
            user_id: user_id.into_inner(),
            profile: Value::Object(profile),
            preferences: Value::Object(Map::new()),
        })
        .await
        .map_err(|e| match e {
            DbError::Conflict(_) => ApiError::Conflict("user already exists".into()),
            other => other.into(),
        })?;
    reads::refresh_new_user(&state, &row.user_id).await;
    Ok(HttpResponse::Created().json(UserResponse::from(row)))
}

/// `GET /api/v1/users/{user_id}`.
#[utoipa::path(
    tag = "users",
    params(UserPath),
    responses(
        (status = 200, description = "The user, defaults filled in.", body = UserResponse),
        (status = 400, description = "`user_id` is invalid.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[get("")]
pub async fn get_user(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
) -> ApiResult<web::Json<UserResponse>> {
    let u = reads::user(&state, user_id.as_ref()).await?;
    Ok(web::Json(UserResponse {
        preferences: with_default_preferences(&u.preferences),
        profile: with_default_profile(&u.profile),
        user_id: u.user_id,
    }))
}

/// `DELETE /api/v1/users/{user_id}`: every row of the user goes (cascade).
#[utoipa::path(
    tag = "users",
    params(UserPath),
    responses(
        (status = 204, description = "Deleted with everything that was theirs."),
        (status = 400, description = "`user_id` is invalid.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[delete("")]
pub async fn delete_user(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
) -> ApiResult<HttpResponse> {
    let user_id = user_id.into_inner();
    let existed = state
        .db
        .run(DeleteUser {
            user_id: user_id.clone(),
        })
        .await?;
    reads::forget_everything(&state, &user_id).await;
    if existed {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::user_not_found())
    }
}

/// `GET /api/v1/users/{user_id}/profile`.
#[utoipa::path(
    tag = "users",
    params(UserPath),
    responses(
        (status = 200, description = "The profile; `timezone` defaults to `UTC`.", body = Profile),
        (status = 400, description = "`user_id` is invalid.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[get("/profile")]
pub async fn get_profile(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
) -> ApiResult<web::Json<Value>> {
    let u = reads::user(&state, user_id.as_ref()).await?;
    Ok(web::Json(with_default_profile(&u.profile)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"field": "weight_kg", "value": 68.5}))]
pub struct PatchProfileRequest {
    /// A known field (`age`, `height_cm`, `weight_kg`, `sex`, `timezone`,
    /// `goals`) or any other name, kept as text.
    #[schema(pattern = r"^[a-z0-9_]{1,64}$", example = "weight_kg")]
    field: String,
    /// `null` removes the field; absent is a 400, not a removal.
    #[serde(deserialize_with = "present")]
    #[schema(schema_with = super::docs::patch_value_schema, required = true)]
    value: Option<Value>,
}

/// Distinguishes `"value": null` (removal) from a missing `value` (an error):
/// serde treats an absent `Option` as `None` unless told otherwise.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(|v| if v.is_null() { None } else { Some(v) })
}

/// `PATCH /api/v1/users/{user_id}/profile` `{"field","value"}`: 200 with the
/// updated profile; `value: null` removes the field.
#[utoipa::path(
    tag = "users",
    params(UserPath),
    request_body = PatchProfileRequest,
    responses(
        (status = 200, description = "The updated profile.", body = Profile),
        (status = 400, description = "`user_id`, `field` or `value` is invalid (named in \
            `detail`), or the JSON is malformed.", body = ErrorBody),
        (status = 413, response = super::docs::PayloadTooLarge),
        (status = 415, response = super::docs::UnsupportedMediaType),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[patch("/profile")]
pub async fn patch_profile(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
    Body(body): Body<PatchProfileRequest>,
) -> ApiResult<web::Json<Value>> {
    let PatchProfileRequest { field, value } = body;
    profile::check_name(&field).map_err(|why| ApiError::invalid_field("field", why))?;
    let value = value
        .map(|v| profile::profile_value(&field, &v))
        .transpose()
        .map_err(|why| ApiError::invalid_field("value", format!("{field} {why}")))?;
    let user_id = user_id.into_inner();
    let stored = state
        .db
        .run(SetProfileField {
            user_id: user_id.clone(),
            field: field.clone(),
            value,
        })
        .await
        .map_err(|e| over_caps(e, "field", &field))?
        .ok_or_else(ApiError::user_not_found)?;
    reads::refresh_user(&state, &user_id).await;
    Ok(web::Json(with_default_profile(&stored)))
}

/// The database refused a value past the field-count or size cap: a 400
/// naming the field (the caps hold in the UPDATE itself).
fn over_caps(e: actors::db::DbError, what: &str, name: &str) -> ApiError {
    match e {
        actors::db::DbError::Rejected(_) => ApiError::invalid_field(
            what,
            format!(
                "cannot store {name:?}: at most {} fields and {} bytes of JSON are kept",
                profile::MAX_FIELDS,
                profile::MAX_BYTES
            ),
        ),
        other => other.into(),
    }
}

/// `GET /api/v1/users/{user_id}/preferences`, defaults filled in.
#[utoipa::path(
    tag = "users",
    params(UserPath),
    responses(
        (status = 200, description = "The preferences, defaults filled in.", body = Preferences),
        (status = 400, description = "`user_id` is invalid.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[get("/preferences")]
pub async fn get_preferences(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
) -> ApiResult<web::Json<Value>> {
    let u = reads::user(&state, user_id.as_ref()).await?;
    Ok(web::Json(with_default_preferences(&u.preferences)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"preference": "tone", "value": "direct"}))]
pub struct PatchPreferenceRequest {
    /// `tone`, `brevity` or any other name, kept as text.
    #[schema(pattern = r"^[a-z0-9_]{1,64}$", example = "tone")]
    preference: String,
    /// `null` restores the default; absent is a 400.
    #[serde(deserialize_with = "present")]
    #[schema(schema_with = super::docs::patch_value_schema, required = true)]
    value: Option<Value>,
}

/// `PATCH /api/v1/users/{user_id}/preferences` `{"preference","value"}`: 200
/// with the updated preferences; `value: null` restores the default.
#[utoipa::path(
    tag = "users",
    params(UserPath),
    request_body = PatchPreferenceRequest,
    responses(
        (status = 200, description = "The updated preferences.", body = Preferences),
        (status = 400, description = "`user_id`, `preference` or `value` is invalid (named in \
            `detail`), or the JSON is malformed.", body = ErrorBody),
        (status = 413, response = super::docs::PayloadTooLarge),
        (status = 415, response = super::docs::UnsupportedMediaType),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[patch("/preferences")]
pub async fn patch_preferences(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
    Body(body): Body<PatchPreferenceRequest>,
) -> ApiResult<web::Json<Value>> {
    let PatchPreferenceRequest { preference, value } = body;
    profile::check_name(&preference).map_err(|why| ApiError::invalid_field("preference", why))?;
    let value = value
        .map(|v| profile::preference_value(&preference, &v))
        .transpose()
        .map_err(|why| ApiError::invalid_field("value", format!("{preference} {why}")))?;
    let user_id = user_id.into_inner();
    let stored = state
        .db
        .run(SetPreference {
            user_id: user_id.clone(),
            preference: preference.clone(),
            value,
        })
        .await
        .map_err(|e| over_caps(e, "preference", &preference))?
        .ok_or_else(ApiError::user_not_found)?;
    reads::refresh_user(&state, &user_id).await;
    Ok(web::Json(with_default_preferences(&stored)))
}

/// `DELETE /api/v1/users/{user_id}/conversation`: 204; the profile,
/// preferences and long-term memories stay.
#[utoipa::path(
    tag = "users",
    params(UserPath),
    responses(
        (status = 204, description = "Cleared; profile, preferences and memories stay."),
        (status = 400, description = "`user_id` is invalid.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[delete("/conversation")]
pub async fn clear_conversation(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
) -> ApiResult<HttpResponse> {
    let user_id = user_id.into_inner();
    state
        .db
        .run(ClearConversation {
            user_id: user_id.clone(),
        })
        .await
        .map_err(ApiError::for_user)?;
    state
        .cache
        .invalidate(&[cache_keys::history(&user_id).name])
        .await;
    Ok(HttpResponse::NoContent().finish())
}
