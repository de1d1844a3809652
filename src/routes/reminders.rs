use actix_web::{delete, get, post, web, HttpResponse};
use actors::db::ops::{
    CompleteReminder, CreateReminder, DeleteReminder, GetReminderStatus, ListReminders,
    ReminderRow, ReminderStatus, Schedule,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::docs::{ReminderPath, UserPath};
use super::users::reject_nul;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, PathItem, PathUser};
use crate::state::AppState;

const MAX_MESSAGE_CHARS: usize = 1000;

/// Every field is read as raw JSON so a wrong type is a 400 naming the field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateReminderRequest {
    #[serde(default, rename = "type")]
    kind: Option<Value>,
    #[serde(default)]
    message: Option<Value>,
    #[serde(default)]
    daily_time: Option<Value>,
    #[serde(default)]
    trigger_time: Option<Value>,
    #[serde(default)]
    timezone: Option<Value>,
}

/// A present, non-null string field; `None` when absent or null.
fn string_field<'a>(field: &str, v: &'a Option<Value>) -> ApiResult<Option<&'a str>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid_field(field, "must be a string")),
    }
}

fn required<'a>(field: &str, v: &'a Option<Value>, what: &str) -> ApiResult<&'a str> {
    string_field(field, v)?
        .ok_or_else(|| ApiError::invalid_field(field, format!("required: {what}")))
}

fn absent(field: &str, v: &Option<Value>, kind: &str) -> ApiResult<()> {
    match v {
        None | Some(Value::Null) => Ok(()),
        Some(_) => Err(ApiError::invalid_field(
            field,
            format!("not allowed for a {kind} reminder"),
        )),
    }
}

impl CreateReminderRequest {
    /// Validates every field into the operation that stores the reminder.
    pub(crate) fn to_op(&self, user_id: String, now: DateTime<Utc>) -> ApiResult<CreateReminder> {
        let kind = required("type", &self.kind, "daily or one_time")?;
        if kind != "daily" && kind != "one_time" {
            return Err(ApiError::invalid_field(
                "type",
                format!("expected daily or one_time, got {kind:?}"),
            ));
        }
        let message = required("message", &self.message, "the reminder's text")?.trim();
        reject_nul("message", message)?;
        let len = message.chars().count();
        if len == 0 || len > MAX_MESSAGE_CHARS {
            return Err(ApiError::invalid_field(
                "message",
                format!("must be 1 to {MAX_MESSAGE_CHARS} characters, got {len}"),
            ));
        }
        let schedule = if kind == "daily" {
            absent("trigger_time", &self.trigger_time, kind)?;
            let raw = required("daily_time", &self.daily_time, "HH:MM (24-hour)")?;
            let t = domain::time::parse_hhmm(raw)
                .map_err(|why| ApiError::invalid_field("daily_time", why))?;
            Schedule::Daily(t)
        } else {
            absent("daily_time", &self.daily_time, kind)?;
            let raw = required("trigger_time", &self.trigger_time, "an RFC 3339 timestamp")?;
            let at = DateTime::parse_from_rfc3339(raw)
                .map_err(|_| {
                    ApiError::invalid_field(
                        "trigger_time",
                        format!(
                            "{raw:?} is not an RFC 3339 timestamp with an offset, \
                             e.g. 2026-06-01T08:00:00Z"
                        ),
                    )
                })?
                .with_timezone(&Utc);
            if at <= now {
                return Err(ApiError::invalid_field(
                    "trigger_time",
                    "must be in the future",
                ));
            }
            Schedule::OneTime(at)
        };
        let timezone = string_field("timezone", &self.timezone)?
            .map(|name| {
                domain::time::parse_timezone(name)
                    .map_err(|why| ApiError::invalid_field("timezone", why))
            })
            .transpose()?;
        Ok(CreateReminder {
            user_id,
            schedule,
            message: message.to_owned(),
            timezone,
            now,
        })
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0b6f4c1e-8f5e-4d8a-9d67-3f1f1f9c2a10", "user_id": "alice", "type": "daily",
    "message": "Take your vitamins",
    "schedule": {"daily_time": "08:30", "timezone": "Europe/Berlin"},
    "active": true, "next_trigger_at": "2026-06-02T06:30:00Z"
}))]
pub struct ReminderResponse {
    #[schema(format = "uuid")]
    id: String,
    user_id: String,
    #[serde(rename = "type")]
    #[schema(value_type = super::docs::ReminderType)]
    kind: &'static str,
    message: String,
    #[schema(value_type = super::docs::ReminderSchedule)]
    schedule: Value,
    /// A one-time reminder turns inactive once it fired.
    active: bool,
    /// The next firing, when active.
    #[schema(format = DateTime)]
    next_trigger_at: Option<String>,
}

impl From<ReminderRow> for ReminderResponse {
    fn from(r: ReminderRow) -> Self {
        let schedule = match r.schedule {
            Schedule::Daily(t) => json!({
                "daily_time": t.format("%H:%M").to_string(),
                "timezone": r.timezone,
            }),
            Schedule::OneTime(at) => json!({
                "trigger_time": rfc3339(at),
                "timezone": r.timezone,
            }),
        };
        Self {
            kind: r.schedule.kind(),
            id: r.id,
            user_id: r.user_id,
            message: r.message,
            schedule,
            active: r.active,
            next_trigger_at: r.next_trigger_at.map(rfc3339),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0b6f4c1e-8f5e-4d8a-9d67-3f1f1f9c2a10", "triggered": true, "completed": true,
    "completed_at": "2026-06-01T08:31:00Z"
}))]
pub struct StatusResponse {
    #[schema(format = "uuid")]
    id: String,
    /// It fired at least once.
    triggered: bool,
    completed: bool,
    #[schema(format = DateTime)]
    completed_at: Option<String>,
}

impl From<ReminderStatus> for StatusResponse {
    fn from(s: ReminderStatus) -> Self {
        Self {
            id: s.id,
            triggered: s.triggered,
            completed: s.completed,
            completed_at: s.completed_at.map(rfc3339),
        }
    }
}

fn reminder_not_found() -> ApiError {
    ApiError::NotFound("reminder not found".into())
}

/// A malformed reminder id names no reminder, so it is a 404 like an
/// unknown one.
fn reminder_id(item: &str) -> ApiResult<String> {
    let id = uuid::Uuid::parse_str(item).map_err(|_| reminder_not_found())?;
    Ok(id.hyphenated().to_string())
}

/// `POST /api/v1/users/{user_id}/reminders`: 201 with the reminder.
#[utoipa::path(
    tag = "reminders",
    params(UserPath),
    request_body = super::docs::NewReminder,
    responses(
        (status = 201, description = "Created, with its next firing.", body = ReminderResponse),
        (status = 400, description = "`user_id` or a field is invalid (named in `detail`), \
            or the JSON is malformed.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 413, response = super::docs::PayloadTooLarge),
        (status = 415, response = super::docs::UnsupportedMediaType),
    )
)]
#[post("/reminders")]
pub async fn create_reminder(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
    Body(body): Body<CreateReminderRequest>,
) -> ApiResult<HttpResponse> {
    let op = body.to_op(user_id.into_inner(), Utc::now())?;
    let row = state.db.run(op).await.map_err(ApiError::for_user)?;
    Ok(HttpResponse::Created().json(ReminderResponse::from(row)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReminderList {
    reminders: Vec<ReminderResponse>,
}

/// `GET /api/v1/users/{user_id}/reminders`: active and inactive, newest first.
#[utoipa::path(
    tag = "reminders",
    params(UserPath),
    responses(
        (status = 200, description = "Every reminder of the user, newest first.",
            body = ReminderList),
        (status = 400, description = "`user_id` is invalid.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[get("/reminders")]
pub async fn list_reminders(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
) -> ApiResult<web::Json<ReminderList>> {
    let rows = state
        .db
        .run(ListReminders {
            user_id: user_id.into_inner(),
        })
        .await
        .map_err(ApiError::for_user)?;
    Ok(web::Json(ReminderList {
        reminders: rows.into_iter().map(Into::into).collect(),
    }))
}

/// `GET /api/v1/users/{user_id}/reminders/{id}/status`.
#[utoipa::path(
    tag = "reminders",
    params(ReminderPath),
    responses(
        (status = 200, description = "Whether it fired and was completed.",
            body = StatusResponse),
        (status = 400, description = "`user_id` is invalid.", body = ErrorBody),
        (status = 404, description = "No such reminder of this user.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[get("/reminders/{id}/status")]
pub async fn reminder_status(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
    PathItem(item): PathItem,
) -> ApiResult<web::Json<StatusResponse>> {
    let (user_id, reminder_id) = (user_id.into_inner(), reminder_id(&item)?);
    let status = state
        .db
        .run(GetReminderStatus {
            user_id,
            reminder_id,
        })
        .await?
        .ok_or_else(reminder_not_found)?;
    Ok(web::Json(status.into()))
}

/// `POST /api/v1/users/{user_id}/reminders/{id}/complete`: 200 with the
/// status; awards XP once per firing.
#[utoipa::path(
    tag = "reminders",
    params(ReminderPath),
    responses(
        (status = 200, description = "Completed (again: no more XP); awards 10 XP once per \
            firing.", body = StatusResponse),
        (status = 400, description = "`user_id` is invalid.", body = ErrorBody),
        (status = 404, description = "No such reminder of this user.", body = ErrorBody),
    )
)]
#[post("/reminders/{id}/complete")]
pub async fn complete_reminder(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
    PathItem(item): PathItem,
) -> ApiResult<web::Json<StatusResponse>> {
    let (user_id, reminder_id) = (user_id.into_inner(), reminder_id(&item)?);
    let status = state
        .db
        .run(CompleteReminder {
            user_id: user_id.clone(),
            reminder_id,
            now: Utc::now(),
        })
        .await
        .map_err(|e| match e {
            actors::db::DbError::NotFound => reminder_not_found(),
            other => other.into(),
        })?;
    crate::reads::refresh_awards(&state, &user_id).await;
    Ok(web::Json(status.into()))
}

/// `DELETE /api/v1/users/{user_id}/reminders/{id}`: 204, its firings too.
#[utoipa::path(
    tag = "reminders",
    params(ReminderPath),
    responses(
        (status = 204, description = "Deleted with its firings."),
        (status = 400, description = "`user_id` is invalid.", body = ErrorBody),
        (status = 404, description = "No such reminder of this user.", body = ErrorBody),
        (status = 503, response = super::docs::Unavailable),
    )
)]
#[delete("/reminders/{id}")]
pub async fn delete_reminder(
    state: web::Data<AppState>,
    PathUser(user_id): PathUser,
    PathItem(item): PathItem,
) -> ApiResult<HttpResponse> {
    let (user_id, reminder_id) = (user_id.into_inner(), reminder_id(&item)?);
    let existed = state
        .db
        .run(DeleteReminder {
            user_id,
            reminder_id,
        })
        .await?;
    if existed {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(reminder_not_found())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(v: Value) -> CreateReminderRequest {
        serde_json::from_value(v).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_daily_0230_new_york_reminder_made_the_day_before_spring_forward_first_fires_at_0300_edt() {
        let new = request(
            json!({"type": "daily", "message": "meds", "daily_time": "02:30",
                                 "timezone": "America/New_York"}),
        )
        .to_op("u".into(), utc("2026-03-07T20:00:00Z"))
        .unwrap();
        let tz = new.timezone.unwrap();
        assert_eq!(
            new.schedule.first_trigger(tz, utc("2026-03-07T20:00:00Z")),
            utc("2026-03-08T07:00:00Z")
        );
    }

    #[test]
    fn a_one_time_trigger_in_the_past_or_without_offset_is_rejected() {
        let now = utc("2026-06-01T12:00:00Z");
        for raw in [
            "2026-06-01T11:59:59Z",
            "2026-06-01T12:00:00Z",
            "2026-07-01T08:00:00",
        ] {
            let e = request(json!({"type": "one_time", "message": "m", "trigger_time": raw}))
                .to_op("u".into(), now)
                .err()
                .unwrap();
            assert!(format!("{e:?}").contains("trigger_time"), "{raw}: {e:?}");
        }
    }
}
