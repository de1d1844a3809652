//! Every error a client can get is our JSON error body: what a middleware
//! or service we don't own answers in plain text (CORS rejections, Swagger
//! UI's 404s) is rewritten here, keeping its status and headers.
//!
//! Not reachable from here: actix-http's own codec answers to a request it
//! cannot parse (400 bad request line, 431 headers too large, 414-like URI
//! failures) are written before any service runs, with an empty body.

use actix_web::body::{to_bytes, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpResponse;

use crate::error::{now_rfc3339, ErrorBody};

/// Plain-text bodies longer than this are not quoted in `detail`.
const MAX_DETAIL: usize = 512;

fn is_json(res: &HttpResponse<BoxBody>) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Wraps CORS (outside it) so its rejections pass through here too.
pub async fn json_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // actix-cors answers its rejections as responses, not errors.
    let res = next.call(req).await?.map_into_boxed_body();
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(res.response()) {
        return Ok(res);
    }
    let (req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let text = to_bytes(body).await.unwrap_or_default();
    let detail = std::str::from_utf8(&text)
        .ok()
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= MAX_DETAIL)
        .map(str::to_owned);
    let body = serde_json::to_vec(&ErrorBody {
        error: status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase(),
        detail,
        timestamp: now_rfc3339(),
    })
    .unwrap_or_default();
    let mut res = head.set_body(BoxBody::new(body));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res.headers_mut().remove(header::CONTENT_LENGTH);
    Ok(ServiceResponse::new(req, res))
}
