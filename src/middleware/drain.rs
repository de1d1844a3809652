//! A graceful stop that answers everyone. Once the listener is closed the
//! server keeps serving the connections it has, but every response closes
//! its connection (so a balancer's pooled connections go away, and its new
//! ones are refused and retried elsewhere); a request still running at the
//! drain deadline is answered 503 with `Retry-After` instead of a socket
//! closed under it. Its handler is dropped there: a transaction it had
//! open rolls back, so nothing is half-written.
//!
//! Behind a balancer that retries a 503 elsewhere (nginx's
//! `proxy_next_upstream http_503`), `api.drain_turn_away_retryable` answers
//! the requests it may retry 503 from SIGTERM on: they are served elsewhere,
//! and three of them mark this instance failed there, so nothing new is sent
//! to it before its listener closes. Otherwise a POST could arrive on a
//! connection still in the accept queue as the listener went, and be lost.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, ConnectionType, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse, ResponseError};

use crate::error::{now_rfc3339, ErrorBody};
use crate::middleware::request_id::{RequestId, HEADER};
use crate::state::AppState;

pub async fn drain(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let shared = state.shared();
    let lifecycle = shared.lifecycle.clone();
    let id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    if lifecycle.is_draining()
        && shared.settings.api.drain_turn_away_retryable
        && balancer_retries(&req)
    {
        metrics::counter!("health_agent_shutdown_turned_away_total").increment(1);
        let res = ShuttingDown { request_id: id }.error_response();
        return Ok(req.into_response(res).map_into_right_body());
    }
    let mut deadline = lifecycle.deadline();
    tokio::select! {
        res = next.call(req) => {
            let mut res = res?;
            if lifecycle.is_closing() {
                res.response_mut().head_mut().set_connection_type(ConnectionType::Close);
            }
            Ok(res.map_into_left_body())
        }
        _ = deadline.wait_for(|passed| *passed) => {
            metrics::counter!("health_agent_shutdown_answered_total").increment(1);
            Err(ShuttingDown { request_id: id }.into())
        }
    }
}

/// What nginx re-sends to another instance after a 503: everything but
/// POST, PATCH and LOCK. The probes answer for themselves.
fn balancer_retries(req: &ServiceRequest) -> bool {
    !matches!(req.method().as_str(), "POST" | "PATCH" | "LOCK")
        && !matches!(req.path(), "/livez" | "/readyz")
}

/// The answer to a request the drain deadline cut short.
#[derive(Debug, thiserror::Error)]
#[error("service unavailable")]
pub struct ShuttingDown {
    request_id: Option<String>,
}

impl ResponseError for ShuttingDown {
    fn status_code(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::ServiceUnavailable();
        res.insert_header((header::RETRY_AFTER, "1"));
        if let Some(id) = &self.request_id {
            res.insert_header((HEADER, id.as_str()));
        }
        let mut res = res.json(ErrorBody {
            error: self.to_string(),
            detail: Some("the server is shutting down; retry".into()),
            timestamp: now_rfc3339(),
        });
        res.head_mut().set_connection_type(ConnectionType::Close);
        res
    }
}
