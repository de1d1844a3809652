use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage as _};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// The accepted keys, kept as SHA-256 digests: every comparison is over 32
/// bytes in constant time, so neither a key's content nor its length leaks
/// through timing. A configured `sha256:<hex>` is taken as the digest itself,
/// so config files and environments need not hold keys in plain text.
#[derive(Clone)]
pub struct ApiKeys {
    /// Each key's digest and whether it is an admin key.
    digests: Vec<([u8; 32], bool)>,
}

/// Who a request authenticated as: put in the request's extensions by
/// `require_api_key` for the middleware and handlers after it.
#[derive(Debug, Clone, Copy)]
pub struct ClientKey {
    pub digest: [u8; 32],
    pub admin: bool,
}

impl ApiKeys {
    /// Client keys and admin keys (admin keys are accepted everywhere).
    pub fn with_admins<'a>(
        keys: impl IntoIterator<Item = &'a str>,
        admins: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut digests: Vec<([u8; 32], bool)> = admins
            .into_iter()
            .map(|k| (configured_digest(k), true))
            .collect();
        for k in keys {
            let d = configured_digest(k);
            if !digests.iter().any(|(a, _)| *a == d) {
                digests.push((d, false));
            }
        }
        Self { digests }
    }

    pub fn new<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        Self::with_admins(keys, [])
    }

    /// Checks `candidate` against every key without stopping at a match.
    pub fn accepts(&self, candidate: &str) -> bool {
        self.check(candidate).is_some()
    }

    /// The key's scope, comparing against every configured digest.
    pub fn check(&self, candidate: &str) -> Option<ClientKey> {
        let d = digest(candidate);
        let (mut found, mut admin) = (0u8, 0u8);
        for (k, is_admin) in &self.digests {
            let hit = k.ct_eq(&d).unwrap_u8();
            found |= hit;
            admin |= hit & u8::from(*is_admin);
        }
        (found == 1).then_some(ClientKey {
            digest: d,
            admin: admin == 1,
        })
    }
}

pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// What `health-agent keys hash` prints for a key.
pub fn digest_form(key: &str) -> String {
    format!("sha256:{}", hex(&digest(key)))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 64 hex digits → 32 bytes.
pub fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A configured key: `sha256:<hex>` is already a digest, anything else is
/// the key itself. (Config validation rejects a malformed `sha256:` value.)
fn configured_digest(key: &str) -> [u8; 32] {
    key.strip_prefix("sha256:")
        .and_then(parse_digest)
        .unwrap_or_else(|| digest(key))
}

/// Whether the request carries a key header that is not visible ASCII
/// (HTTP allows other bytes in a header; no configured key can match them).
fn unreadable_key(req: &actix_web::HttpRequest) -> bool {
    [
        header::AUTHORIZATION,
        header::HeaderName::from_static("x-api-key"),
    ]
    .iter()
    .any(|h| req.headers().get(h).is_some_and(|v| v.to_str().is_err()))
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

/// The metrics routes, when the operator opened them for a private scrape
/// network. (The public routes are outside this middleware: `routes::public`.)
fn is_open_metrics(path: &str, metrics_public: bool) -> bool {
    metrics_public && matches!(path, "/metrics" | "/api/v1/metrics")
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
    if req.method() == actix_web::http::Method::OPTIONS
        || is_open_metrics(req.path(), metrics_public)
    {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let verdict = match presented_key(req.request()) {
        None if unreadable_key(req.request()) => Err(ApiError::InvalidApiKey),
        None => Err(ApiError::MissingApiKey),
        Some(k) => shared.api_keys.check(k).ok_or(ApiError::InvalidApiKey),
    };
    // Every credential sent must hold: a wrong `Authorization` next to a
    // right `X-API-Key` (or the other way round) is a wrong key.
    let verdict = verdict.and_then(|key| {
        let headers = req.headers();
        let authorization = headers.get(header::AUTHORIZATION).map(|v| {
            v.to_str().ok().and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
                    .map(str::trim)
            })
        });
        let x_api_key = headers
            .get("x-api-key")
            .map(|v| v.to_str().ok().map(str::trim));
        let mut admin = key.admin;
        for sent in [authorization, x_api_key].into_iter().flatten() {
            match sent.and_then(|k| shared.api_keys.check(k)) {
                Some(other) => admin &= other.admin,
                None => return Err(ApiError::InvalidApiKey),
            }
        }
        Ok(ClientKey { admin, ..key })
    });
    let verdict = verdict.and_then(|key| {
        let admin_path = req.path().starts_with("/api/v1/admin/")
            || (shared.settings.metrics.require_admin_key
                && matches!(req.path(), "/metrics" | "/api/v1/metrics"));
        // Only where the method is served: others answer 405 for any key.
        // Asked only of admin paths: matching the pattern again costs a
        // walk of the route table.
        let admin_only = admin_path
            && crate::routes::docs::ApiDocument::allow_for(req.request())
                .is_some_and(|m| m.split(", ").any(|x| x == req.method().as_str()));
        if admin_only && !key.admin {
            Err(ApiError::AdminKeyRequired)
        } else {
            Ok(key)
        }
    });
    match verdict {
        Ok(key) => {
            req.extensions_mut().insert(key);
            Ok(next.call(req).await?.map_into_left_body())
        }
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

    #[test]
    fn a_digest_stands_for_its_key_and_admins_are_marked() {
        let hashed = digest_form("alpha");
        assert_eq!(hashed.len(), 7 + 64);
        let keys = ApiKeys::with_admins(
            [hashed.as_str()],
            ["sha256:".to_owned() + &hex(&digest("root"))]
                .iter()
                .map(String::as_str),
        );
        assert!(!keys.check("alpha").unwrap().admin);
        assert!(keys.check("root").unwrap().admin);
        assert!(
            keys.check(&hashed).is_none(),
            "the digest itself is not a key"
        );
        assert!(parse_digest("zz").is_none());
    }
}
