//! Sheds writes at the door while the database's connection queue is past
//! its target (`DbShared::sheds_writes`). Refused here, before CORS, the API
//! key, the rate limit, idempotency and the body are looked at, a 503 costs
//! a few microseconds of the CPU that the requests being served need; the
//! DB family would refuse the same write later, after all that work.
//!
//! Only writes to user data: reads may be served from the cache, a chat is
//! admitted by the LLM family, and an operator's reload must get through.
//!
//! A 503 comes at once to a client that waits its `Retry-After`. One that
//! resends at once on the same connection gets its next 503s at the queue
//! target instead: still within the bound, but its loop of refusals no
//! longer takes the CPU from the requests being served.

use std::cell::Cell;
use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, ResponseError};

use super::idempotency::read_body;
use crate::error::ApiError;
use crate::state::AppState;

/// Per connection: until when its client was asked to stay away.
#[derive(Debug, Default)]
pub struct RetryAfter(Cell<Option<Instant>>);

pub async fn shed(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let refusal = writes_user_data(&req)
        .then(|| req.app_data::<web::Data<AppState>>())
        .flatten()
        .filter(|state| state.shared().db.sheds_writes())
        .map(|state| {
            let shared = state.shared();
            let res = ApiError::from(shared.db.gate().shed()).error_response();
            (res, shared.settings.api.body_limit_bytes)
        });
    let res = match refusal {
        Some((res, limit)) => {
            // Read, so the connection stays usable: actix closes one whose
            // request body was left unread.
            let _ = read_body(&mut req, limit).await;
            req.into_response(res).map_into_right_body()
        }
        None => next.call(req).await?.map_into_left_body(),
    };
    // Only a 503 pays for the lookups below.
    if res.status() == StatusCode::SERVICE_UNAVAILABLE {
        let target = res
            .request()
            .app_data::<web::Data<AppState>>()
            .map(|state| state.shared().db.queue_timeout());
        if let Some(target) = target {
            pace(res.request(), res.headers(), target).await;
        }
    }
    Ok(res)
}

/// Holds a 503 until `target` after the request arrived if its client came
/// back before the last `Retry-After` was up; remembers the new one.
async fn pace(req: &HttpRequest, headers: &header::HeaderMap, target: std::time::Duration) {
    let Some(told) = req.conn_data::<RetryAfter>() else {
        return;
    };
    let now = Instant::now();
    if told.0.get().is_some_and(|until| now < until) {
        let arrived = actors::trace::arrived().unwrap_or(now);
        actix_web::rt::time::sleep_until((arrived + target).into()).await;
    }
    let secs = headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(secs) = secs {
        told.0
            .set(Some(Instant::now() + std::time::Duration::from_secs(secs)));
    }
}

fn writes_user_data(req: &ServiceRequest) -> bool {
    !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && req.path().starts_with("/api/v1/users")
}
