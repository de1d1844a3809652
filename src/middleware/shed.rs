//! Sheds writes at the door while the database's connection queue is past
//! its target (`DbShared::sheds_writes`). Refused here, before CORS, the API
//! key, the rate limit, idempotency and the body are looked at, a 503 costs
//! a few microseconds of the CPU that the requests being served need; the
//! DB family would refuse the same write later, after all that work.
//!
//! Only writes to user data: reads may be served from the cache, a chat is
//! admitted by the LLM family, and an operator's reload must get through.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};

use crate::error::ApiError;
use crate::state::AppState;

pub async fn shed(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if writes_user_data(&req) {
        if let Some(state) = req.app_data::<web::Data<AppState>>() {
            let db = &state.shared().db;
            if db.sheds_writes() {
                let res = ApiError::from(db.gate().shed()).error_response();
                return Ok(req.into_response(res).map_into_right_body());
            }
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

fn writes_user_data(req: &ServiceRequest) -> bool {
    !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && req.path().starts_with("/api/v1/users")
}
