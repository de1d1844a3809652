use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// The accepted keys, kept as SHA-256 digests: every comparison is over 32
/// bytes in constant time, so neither a key's content nor its length leaks
/// through timing.
#[derive(Clone)]
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
}

impl ApiKeys {
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            digests: keys.into_iter().map(digest).collect(),
        }
    }

    /// Checks `candidate` against every key without stopping at a match.
    pub fn accepts(&self, candidate: &str) -> bool {
        let d = digest(candidate);
        self.digests
            .iter()
            .fold(0u8, |acc, k| acc | k.ct_eq(&d).unwrap_u8())
            == 1
    }
}

pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The key a request carries: `Authorization: Bearer KEY` or `X-API-Key: KEY`.
pub fn presented_key(req: &actix_web::HttpRequest) -> Option<&str> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    bearer
        .or_else(|| {
            req.headers()
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        })
        .filter(|k| !k.is_empty())
}

/// Routes anyone may call: health probes, the API docs (Swagger UI's assets
/// too), and the metrics routes when the operator opened them for a private
/// scrape network.
fn is_public(path: &str, metrics_public: bool) -> bool {
    crate::openapi::PUBLIC_PATHS.contains(&path)
        || path.starts_with("/api/docs/")
        || (metrics_public && matches!(path, "/metrics" | "/api/v1/metrics"))
}

/// 401 without a key, 403 with a wrong one.
pub async fn require_api_key(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Err(ApiError::Internal(anyhow::anyhow!("app state missing")).into());
    };
    let shared = state.shared();
    let metrics_public = !shared.settings.metrics.require_api_key;
    if req.method() == actix_web::http::Method::OPTIONS || is_public(req.path(), metrics_public) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let verdict = match presented_key(req.request()) {
        None => Err(ApiError::MissingApiKey),
        Some(k) if shared.api_keys.accepts(k) => Ok(()),
        Some(_) => Err(ApiError::InvalidApiKey),
    };
    match verdict {
        Ok(()) => Ok(next.call(req).await?.map_into_left_body()),
        Err(e) => Ok(req.error_response(e).map_into_right_body()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configured_keys_are_accepted() {
        let keys = ApiKeys::new(["alpha", "beta"]);
        assert!(keys.accepts("alpha"));
        assert!(keys.accepts("beta"));
        assert!(!keys.accepts("alph"));
        assert!(!keys.accepts("alphaa"));
        assert!(!keys.accepts(""));
    }
}
