use actix_web::{web, HttpResponse};
use actors::db::ops::{CreateUser, DeleteUser, GetUser, UserRow};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use domain::UserId;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    user_id: String,
    #[serde(default)]
    profile: Option<Map<String, Value>>,
}

#[derive(Debug, Serialize)]
pub struct UserResponse {
    user_id: String,
    profile: Value,
    preferences: Value,
}

/// Preferences a user has not set read as these.
pub fn with_default_preferences(stored: &Value) -> Value {
    let mut out = serde_json::json!({"tone": "friendly", "brevity": "medium"});
    if let (Some(o), Some(s)) = (out.as_object_mut(), stored.as_object()) {
        for (k, v) in s {
            o.insert(k.clone(), v.clone());
        }
    }
    out
}

impl From<UserRow> for UserResponse {
    fn from(u: UserRow) -> Self {
        Self {
            preferences: with_default_preferences(&u.preferences),
            user_id: u.user_id,
            profile: u.profile,
        }
    }
}

pub fn parse_user_id(raw: &str) -> ApiResult<UserId> {
    UserId::parse(raw).map_err(|why| ApiError::invalid_field("user_id", why))
}

/// `POST /api/v1/users`: 201 with the user, 409 when the id is taken.
pub async fn create_user(
    state: web::Data<AppState>,
    body: web::Json<CreateUserRequest>,
) -> ApiResult<HttpResponse> {
    let CreateUserRequest { user_id, profile } = body.into_inner();
    let user_id = parse_user_id(&user_id)?;
    let row = state
        .db
        .run(CreateUser {
            user_id: user_id.into_inner(),
            profile: Value::Object(profile.unwrap_or_default()),
            preferences: Value::Object(Map::new()),
        })
        .await
        .map_err(|e| match e {
            actors::db::DbError::Conflict(_) => ApiError::Conflict("user already exists".into()),
            other => other.into(),
        })?;
    Ok(HttpResponse::Created().json(UserResponse::from(row)))
}

/// `GET /api/v1/users/{user_id}`.
pub async fn get_user(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<web::Json<UserResponse>> {
    let user_id = parse_user_id(&path)?;
    let row = state
        .db
        .run(GetUser {
            user_id: user_id.into_inner(),
        })
        .await?
        .ok_or_else(|| ApiError::NotFound("user not found".into()))?;
    Ok(web::Json(row.into()))
}

/// `DELETE /api/v1/users/{user_id}`: every row of the user goes (cascade).
pub async fn delete_user(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let user_id = parse_user_id(&path)?;
    let existed = state
        .db
        .run(DeleteUser {
            user_id: user_id.into_inner(),
        })
        .await?;
    if existed {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound("user not found".into()))
    }
}
