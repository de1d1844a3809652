//! The API's one error type and its JSON body:
//! `{"error": "...", "detail": "..."|null, "timestamp": "..."}`.
//!
//! 500s stay opaque to clients; their cause is logged with the request id.

use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use actors::cache::CacheError;
use actors::db::DbError;
use actors::llm::LlmError;
use actors::ActorError;
use serde::Serialize;

pub type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed or out-of-range input; `detail` says which field.
    #[error("{message}")]
    BadRequest {
        message: String,
        detail: Option<String>,
    },
    #[error("API key required")]
    MissingApiKey,
    #[error("Invalid API key")]
    InvalidApiKey,
    /// 403: a valid client key on an admin route.
    #[error("admin API key required")]
    AdminKeyRequired,
    /// 429: the key's budget is spent; `detail` names which one.
    #[error("rate limit exceeded")]
    RateLimited {
        what: &'static str,
        retry_after: Duration,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("request body too large")]
    PayloadTooLarge(String),
    #[error("unsupported media type")]
    UnsupportedMediaType(String),
    /// 503: a mailbox is full; come back after `retry_after`.
    #[error("service overloaded")]
    Overloaded {
        what: &'static str,
        retry_after: Duration,
    },
    /// 503: a dependency is down.
    #[error("service unavailable")]
    Unavailable {
        what: &'static str,
        retry_after: Duration,
    },
    #[error("upstream timed out")]
    GatewayTimeout(&'static str),
    /// 502: an upstream (the language model) answered with an error or
    /// nonsense; `detail` names it, never its credentials.
    #[error("bad gateway")]
    BadGateway(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
            detail: Some(detail.into()),
        }
    }

    /// The one 404 for a user that does not exist.
    pub fn user_not_found() -> Self {
        ApiError::NotFound("user not found".into())
    }

    /// A database error where `NotFound` means the user does not exist.
    pub fn for_user(e: DbError) -> Self {
        match e {
            DbError::NotFound => ApiError::user_not_found(),
            other => other.into(),
        }
    }

    /// A 400 for one field: "invalid `field`: why".
    pub fn invalid_field(field: &str, why: impl std::fmt::Display) -> Self {
        ApiError::bad_request("invalid request", format!("{field}: {why}"))
    }

    fn detail(&self) -> Option<String> {
        match self {
            ApiError::BadRequest { detail, .. } => detail.clone(),
            ApiError::PayloadTooLarge(d) | ApiError::UnsupportedMediaType(d) => Some(d.clone()),
            ApiError::Overloaded { what, .. } => {
                Some(format!("the {what} queue is full; retry shortly"))
            }
            ApiError::Unavailable { what, .. } => Some(format!("{what} is unavailable")),
            ApiError::GatewayTimeout(what) => Some(format!("{what} did not answer in time")),
            ApiError::AdminKeyRequired => {
                Some("this route needs a key listed in ADMIN_API_KEYS".into())
            }
            ApiError::RateLimited { what, retry_after } => Some(format!(
                "the {what} budget of this API key is spent; retry in {} s",
                retry_after.as_secs().max(1)
            )),
            ApiError::BadGateway(d) => Some(d.clone()),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Overloaded { retry_after, .. }
            | ApiError::Unavailable { retry_after, .. }
            | ApiError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

/// The body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "error": "invalid request",
    "detail": "user_id: may only contain A-Z a-z 0-9 _ . : @ -, found ' '",
    "timestamp": "2026-06-01T12:00:00.000Z"
}))]
pub struct ErrorBody {
    /// What went wrong, e.g. `API key required`, `user not found`.
    pub error: String,
    /// Which field or dependency, when known; never a stack trace or SQL.
    #[schema(required = true)]
    pub detail: Option<String>,
    /// RFC 3339, UTC.
    #[schema(format = DateTime)]
    pub timestamp: String,
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::MissingApiKey => StatusCode::UNAUTHORIZED,
            ApiError::InvalidApiKey | ApiError::AdminKeyRequired => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Overloaded { .. } | ApiError::Unavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(e) = self {
            tracing::error!(error = ?e, "request failed");
        }
        let mut res = HttpResponse::build(self.status_code());
        if let Some(after) = self.retry_after() {
            res.insert_header((header::RETRY_AFTER, after.as_secs().max(1).to_string()));
        }
        res.json(ErrorBody {
            error: self.to_string(),
            detail: self.detail(),
            timestamp: now_rfc3339(),
        })
    }
}

impl From<ActorError> for ApiError {
    fn from(e: ActorError) -> Self {
        match e {
            ActorError::Overloaded { actor, retry_after } => ApiError::Overloaded {
                what: actor,
                retry_after,
            },
            ActorError::Unavailable { actor } => ApiError::Unavailable {
                what: actor,
                retry_after: Duration::from_secs(1),
            },
            ActorError::Panicked { actor } => {
                ApiError::Internal(anyhow::anyhow!("{actor} actor panicked"))
            }
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Actor(a) => a.into(),
            DbError::Unavailable(why) => {
                // At most a line a second, plus a count: an outage under load
                // fails thousands of requests a second.
                actors::lograte::DB_UNAVAILABLE.warn(why);
                ApiError::Unavailable {
                    what: "database",
                    retry_after: Duration::from_secs(2),
                }
            }
            DbError::Timeout => ApiError::Unavailable {
                what: "database",
                retry_after: Duration::from_secs(2),
            },
            DbError::NotFound => ApiError::NotFound("not found".into()),
            DbError::Conflict(what) => ApiError::Conflict(format!("conflict on {what}")),
            DbError::Rejected(constraint) => {
                ApiError::bad_request("invalid data", format!("violates {constraint}"))
            }
            DbError::Query(e) => ApiError::Internal(e.into()),
            DbError::Shared(e) => ApiError::Internal(anyhow::anyhow!(e)),
        }
    }
}

impl From<LlmError> for ApiError {
    fn from(e: LlmError) -> Self {
        match e {
            LlmError::Actor(a) => a.into(),
            LlmError::Timeout => ApiError::GatewayTimeout("the language model"),
            LlmError::RateLimited { retry_after } => ApiError::Unavailable {
                what: "the language model (rate limited)",
                retry_after,
            },
            LlmError::Unavailable { retry_after, .. } => ApiError::Unavailable {
                what: "the language model",
                retry_after,
            },
            LlmError::Upstream { provider, status } => ApiError::BadGateway(format!(
                "the language model provider {provider} answered HTTP {status}"
            )),
            LlmError::Malformed(why) => {
                tracing::warn!(%why, "malformed language model answer");
                ApiError::BadGateway(format!(
                    "the language model provider {} sent a malformed answer",
                    why.split(':').next().unwrap_or("")
                ))
            }
            LlmError::Embedder(why) => ApiError::Internal(anyhow::anyhow!(why)),
        }
    }
}

impl From<CacheError> for ApiError {
    fn from(e: CacheError) -> Self {
        ApiError::Internal(e.into())
    }
}

/// Turns actix-web's extractor failures into our JSON errors.
pub mod extractors {
    use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};

    use super::*;

    pub fn json(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
        match err {
            JsonPayloadError::ContentType => ApiError::UnsupportedMediaType(
                "send the body as JSON with `Content-Type: application/json`".into(),
            ),
            JsonPayloadError::OverflowKnownLength { length, limit } => ApiError::PayloadTooLarge(
                format!("the body is {length} bytes; the limit is {limit}"),
            ),
            JsonPayloadError::Overflow { limit } => {
                ApiError::PayloadTooLarge(format!("the limit is {limit} bytes"))
            }
            JsonPayloadError::Deserialize(e) if e.is_data() => {
                ApiError::bad_request("invalid request body", e.to_string())
            }
            JsonPayloadError::Deserialize(e) => {
                ApiError::bad_request("malformed JSON", e.to_string())
            }
            other => ApiError::bad_request("unreadable request body", other.to_string()),
        }
        .into()
    }

    pub fn path(err: PathError, _req: &HttpRequest) -> actix_web::Error {
        ApiError::bad_request("invalid path", err.to_string()).into()
    }

    pub fn query(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
        ApiError::bad_request("invalid query string", err.to_string()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    #[actix_web::test]
    async fn an_overload_is_a_503_with_retry_after_and_the_json_body() {
        let e = ApiError::Overloaded {
            what: "db",
            retry_after: Duration::from_secs(1),
        };
        let res = e.error_response();
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers().get("retry-after").unwrap(), "1");
        let body: serde_json::Value =
            serde_json::from_slice(&to_bytes(res.into_body()).await.unwrap()).unwrap();
        assert_eq!(body["error"], "service overloaded");
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[actix_web::test]
    async fn llm_failures_map_to_502_503_and_504() {
        let cases = [
            (
                LlmError::Upstream {
                    provider: "anthropic".into(),
                    status: 500,
                },
                502,
                None,
            ),
            (LlmError::Malformed("openai: eof".into()), 502, None),
            (
                LlmError::RateLimited {
                    retry_after: Duration::from_secs(3),
                },
                503,
                Some("3"),
            ),
            (
                LlmError::Unavailable {
                    provider: "openai".into(),
                    retry_after: Duration::from_millis(200),
                },
                503,
                Some("1"),
            ),
            (LlmError::Timeout, 504, None),
        ];
        for (e, status, retry_after) in cases {
            let res = ApiError::from(e).error_response();
            assert_eq!(res.status(), status);
            assert_eq!(
                res.headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .as_deref(),
                retry_after
            );
            let body: serde_json::Value =
                serde_json::from_slice(&to_bytes(res.into_body()).await.unwrap()).unwrap();
            if status == 502 {
                let detail = body["detail"].as_str().unwrap();
                assert!(
                    detail.contains("anthropic") || detail.contains("openai"),
                    "{detail}"
                );
            }
        }
    }

    /// Collects what a test's subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_thousand_unavailable_errors_log_a_line_and_a_summary_not_a_thousand_lines() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..1000 {
                let e = ApiError::from(DbError::Unavailable(
                    "no connection available in time".into(),
                ));
                assert_eq!(e.status_code(), 503);
            }
            actors::lograte::flush(Duration::from_secs(1));
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("database unavailable"))
            .collect();
        // One in full (two if a second boundary fell in between), one summary.
        assert!((2..=3).contains(&lines.len()), "{text}");
        assert!(
            lines.last().unwrap().contains("suppressed=99"),
            "the summary counts the rest: {text}"
        );
    }

    #[actix_web::test]
    async fn an_internal_error_does_not_reveal_its_cause() {
        let res = ApiError::Internal(anyhow::anyhow!("SELECT secret FROM t")).error_response();
        let body = to_bytes(res.into_body()).await.unwrap();
        assert!(!String::from_utf8_lossy(&body).contains("SELECT"));
    }
}
