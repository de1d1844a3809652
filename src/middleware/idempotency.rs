//! `Idempotency-Key` for POSTs: a retry with the same key (same API key and
//! user) within 24 h gets the first response again and changes nothing.
//!
//! The key is claimed in PostgreSQL before the handler runs, so two instances
//! racing on one key cannot both run it; the response is stored after. A 5xx
//! (or a 429) releases the claim instead, so the retry the client is told to
//! make actually runs.

use actix_web::body::{to_bytes, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use actors::db::ops::{
    Claim, ClaimIdempotencyKey, CompleteIdempotencyKey, IdempotencyScope, ReleaseIdempotencyKey,
};
use actors::db::{DbHandle, DbOperation};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

use super::auth;
use crate::error::{now_rfc3339, ApiError, ErrorBody};
use crate::state::AppState;
use domain::UserId;

pub const HEADER: HeaderName = HeaderName::from_static("idempotency-key");
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
const MAX_KEY_LEN: usize = 255;

/// 1–255 visible ASCII characters.
fn parse_key(raw: &HeaderValue) -> Result<String, String> {
    let bytes = raw.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_KEY_LEN {
        return Err(format!(
            "must be 1 to {MAX_KEY_LEN} characters, got {}",
            bytes.len()
        ));
    }
    if !bytes.iter().all(|b| b.is_ascii_graphic()) {
        return Err("may only contain visible ASCII characters".into());
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

#[derive(Deserialize)]
struct BodyUser {
    user_id: String,
}

/// The user a request is about: the path segment after `/users/`, else the
/// body's `user_id`, else none. Only valid ids count (an invalid one gets a
/// 400 from the handler anyway, and a huge one must not reach the key).
fn user_scope(path: &str, body: &[u8]) -> String {
    let mut segments = path.split('/');
    let from_path = segments
        .by_ref()
        .find(|s| *s == "users")
        .and_then(|_| segments.next())
        .filter(|s| !s.is_empty());
    let raw = match from_path {
        Some(s) => Some(s.to_owned()),
        None => serde_json::from_slice::<BodyUser>(body)
            .ok()
            .map(|b| b.user_id),
    };
    raw.and_then(|r| UserId::parse(&r).ok())
        .map(UserId::into_inner)
        .unwrap_or_default()
}

/// SHA-256 of method, path (with query) and body: "the same request".
fn request_hash(method: &Method, path_and_query: &str, body: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(method.as_str().as_bytes());
    h.update(b"\n");
    h.update(path_and_query.as_bytes());
    h.update(b"\n");
    h.update(body);
    h.finalize().to_vec()
}

/// Reads the whole body, within the configured limit.
pub(crate) async fn read_body(
    req: &mut ServiceRequest,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    let too_large = || ApiError::PayloadTooLarge(format!("the limit is {limit} bytes"));
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut payload = req.take_payload();
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request("unreadable request body", e.to_string()))?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn boxed(req: ServiceRequest, res: HttpResponse) -> ServiceResponse<BoxBody> {
    req.into_response(res).map_into_boxed_body()
}

fn error(req: ServiceRequest, e: ApiError) -> ServiceResponse<BoxBody> {
    req.error_response(e).map_into_boxed_body()
}

fn replay(status: u16, body: Option<Value>) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = HttpResponse::build(status);
    res.insert_header((REPLAYED, "true"));
    match body {
        Some(b) => res.json(b),
        None => res.finish(),
    }
}

/// Runs only for POSTs carrying the header; everything else passes through.
pub async fn idempotency(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.method() != Method::POST {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let Some(raw) = req.headers().get(&HEADER) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let key = match parse_key(raw) {
        Ok(k) => k,
        Err(why) => return Ok(error(req, ApiError::invalid_field("Idempotency-Key", why))),
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(error(
            req,
            ApiError::Internal(anyhow::anyhow!("app state missing")),
        ));
    };
    let limit = state.shared().settings.api.body_limit_bytes;
    let body = match read_body(&mut req, limit).await {
        Ok(b) => b,
        Err(e) => return Ok(error(req, e)),
    };
    req.set_payload(Payload::from(body.clone()));

    let scope = IdempotencyScope {
        api_key_hash: auth::digest(auth::presented_key(req.request()).unwrap_or_default()).to_vec(),
        user_id: user_scope(req.path(), &body),
        key,
    };
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_owned(), |p| p.as_str().to_owned());
    let request_hash = request_hash(req.method(), &path, &body);

    let claim = state
        .db
        .run(ClaimIdempotencyKey {
            scope: scope.clone(),
            request_hash: request_hash.clone(),
        })
        .await;
    match claim {
        Err(e) => return Ok(error(req, e.into())),
        Ok(Claim::Claimed) => {}
        Ok(Claim::Replay { status, body }) => return Ok(boxed(req, replay(status, body))),
        Ok(Claim::Mismatch) => {
            let res = HttpResponse::UnprocessableEntity().json(ErrorBody {
                error: "Idempotency-Key reused with a different request".into(),
                detail: Some(
                    "this key was first used with another method, path or body; \
                     use a new key for a new request"
                        .into(),
                ),
                timestamp: now_rfc3339(),
            });
            return Ok(boxed(req, res));
        }
        Ok(Claim::InProgress) => {
            let mut res = req.error_response(ApiError::Conflict(
                "a request with this Idempotency-Key is still in progress".into(),
            ));
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return Ok(res.map_into_boxed_body());
        }
    }

    let claimed = Claimed {
        db: state.db.clone(),
        scope,
        request_hash,
    };
    let res = match next.call(req).await {
        Ok(res) => res,
        Err(e) => {
            claimed.release().await;
            return Err(e);
        }
    };
    let status = res.status();
    let (http_req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let bytes = match to_bytes(body).await {
        Ok(b) => b,
        Err(e) => {
            claimed.release().await;
            let e: Box<dyn std::error::Error> = e.into();
            return Err(ApiError::Internal(anyhow::anyhow!("response body: {e}")).into());
        }
    };
    let stored = if bytes.is_empty() {
        Some(None)
    } else {
        serde_json::from_slice::<Value>(&bytes).ok().map(Some)
    };
    match stored {
        Some(body) if !status.is_server_error() && status != StatusCode::TOO_MANY_REQUESTS => {
            claimed.complete(status.as_u16(), body).await;
        }
        // Failed (a retry should run again), or a body we could not replay.
        _ => claimed.release().await,
    }
    let res = head.set_body(bytes);
    Ok(ServiceResponse::new(http_req, res).map_into_boxed_body())
}

/// A key this request holds.
struct Claimed {
    db: DbHandle,
    scope: IdempotencyScope,
    request_hash: Vec<u8>,
}

impl Claimed {
    async fn complete(self, status: u16, body: Option<Value>) {
        let op = CompleteIdempotencyKey {
            scope: self.scope,
            request_hash: self.request_hash,
            status,
            body,
        };
        // The client gets its response either way. Unstored, the claim would
        // go stale after 60 s and a retry would run the write again (the
        // chaos suite saw a chat stored twice after a PostgreSQL restart), so
        // keep trying in the background; until then a retry gets 409.
        if let Err(e) = self.db.run(op.clone()).await {
            tracing::warn!(error = %e, "could not store the idempotent response; retrying");
            settle(self.db, op, "store the idempotent response");
        }
    }

    async fn release(self) {
        let op = ReleaseIdempotencyKey {
            scope: self.scope,
            request_hash: self.request_hash,
        };
        // Unreleased, the claim answers 409 until it goes stale: retry.
        if let Err(e) = self.db.run(op.clone()).await {
            tracing::warn!(error = %e, "could not release an idempotency key; retrying");
            settle(self.db, op, "release an idempotency key");
        }
    }
}

/// How long a completion or release that failed is retried: well inside the
/// 60 s after which a claim counts as stale and a retry may take it over.
const SETTLE_WITHIN: Duration = Duration::from_secs(45);

/// Retries `op` off the request path with backoff (0.1 s doubling to 2 s)
/// until it succeeds or `SETTLE_WITHIN` has passed.
fn settle<O>(db: DbHandle, op: O, what: &'static str)
where
    O: DbOperation<Output = ()> + Clone + 'static,
{
    actix_web::rt::spawn(async move {
        let until = Instant::now() + SETTLE_WITHIN;
        let mut pause = Duration::from_millis(100);
        loop {
            actix_web::rt::time::sleep(pause).await;
            match db.run(op.clone()).await {
                Ok(()) => return,
                Err(e) if Instant::now() + pause >= until => {
                    tracing::error!(error = %e, "gave up trying to {what}");
                    return;
                }
                Err(_) => pause = (pause * 2).min(Duration::from_secs(2)),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_1_to_255_visible_ascii_characters() {
        assert!(parse_key(&HeaderValue::from_static("abc-123_XYZ:~!")).is_ok());
        assert!(parse_key(&HeaderValue::from_str(&"k".repeat(255)).unwrap()).is_ok());
        assert!(parse_key(&HeaderValue::from_str(&"k".repeat(256)).unwrap()).is_err());
        assert!(parse_key(&HeaderValue::from_static("")).is_err());
        assert!(parse_key(&HeaderValue::from_static("a b")).is_err());
        assert!(parse_key(&HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()).is_err());
    }

    #[test]
    fn the_user_comes_from_the_path_then_the_body() {
        assert_eq!(user_scope("/api/v1/users/alice/food", b"{}"), "alice");
        assert_eq!(
            user_scope("/api/v1/users/alice/reminders/1/complete", b""),
            "alice"
        );
        assert_eq!(
            user_scope("/api/v1/users", br#"{"user_id":"bob","profile":{}}"#),
            "bob"
        );
        assert_eq!(
            user_scope("/api/v1/chat", br#"{"user_id":"carol"}"#),
            "carol"
        );
        assert_eq!(user_scope("/api/v1/chat", b"not json"), "");
        assert_eq!(user_scope("/api/v1/chat", br#"{"user_id":7}"#), "");
        assert_eq!(user_scope("/api/v1/chat", br#"{"user_id":"a b"}"#), "");
    }

    #[test]
    fn the_request_hash_covers_method_path_and_body() {
        let a = request_hash(&Method::POST, "/api/v1/users", b"{}");
        assert_eq!(a, request_hash(&Method::POST, "/api/v1/users", b"{}"));
        assert_ne!(a, request_hash(&Method::POST, "/api/v1/users", b"{ }"));
        assert_ne!(a, request_hash(&Method::POST, "/api/v1/chat", b"{}"));
        assert_ne!(a, request_hash(&Method::PUT, "/api/v1/users", b"{}"));
    }
}
