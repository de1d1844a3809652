use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use tracing::Instrument;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served, in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// A client's id is echoed when it is 1–128 chars of `[A-Za-z0-9._:-]`;
/// anything else is replaced, so logs can't be forged through it.
fn valid(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Gives every request an id, a tracing span carrying it, and the
/// `X-Request-ID` response header, errors included.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id);
    // Inner layers turn errors into responses; an Err here is actix-web's own
    // and is rendered by it (cloning the request to render it ourselves would
    // break routing, which needs the only reference).
    let mut res = next.call(req).instrument(span).await?;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HEADER, v);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::valid;

    #[test]
    fn ids_with_spaces_newlines_or_too_long_are_not_echoed() {
        assert!(valid("abc-123_x.y:z"));
        assert!(!valid(""));
        assert!(!valid("a b"));
        assert!(!valid("a\nb"));
        assert!(!valid(&"a".repeat(129)));
    }
}
