//! A graceful stop that answers everyone. Once the listener is closed the
//! server keeps serving the connections it has, but every response closes
//! its connection (so a balancer's pooled connections go away, and its new
//! ones are refused and retried elsewhere); a request still running at the
//! drain deadline is answered 503 with `Retry-After` instead of a socket
//! closed under it. Its handler is dropped there: a transaction it had
//! open rolls back, so nothing is half-written.

use actix_web::body::MessageBody;
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
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(lifecycle) = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.shared().lifecycle.clone())
    else {
        return next.call(req).await;
    };
    let id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let mut deadline = lifecycle.deadline();
    tokio::select! {
        res = next.call(req) => {
            let mut res = res?;
            if lifecycle.is_closing() {
                res.response_mut().head_mut().set_connection_type(ConnectionType::Close);
            }
            Ok(res)
        }
        _ = deadline.wait_for(|passed| *passed) => {
            metrics::counter!("health_agent_shutdown_answered_total").increment(1);
            Err(ShuttingDown { request_id: id }.into())
        }
    }
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
