//! Operator routes, behind the API key like every other.

use actix_web::{post, web, HttpResponse};

use crate::error::ApiError;
use crate::state::AppState;

/// `POST /api/v1/admin/reload`: what `SIGHUP` does, with the result in the
/// response: 200 with the applied and restart-required settings, or 400
/// naming the invalid key (nothing applied).
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Re-read and applied; nothing changed is an empty `applied`.",
            body = crate::reload::ReloadReport),
        (status = 400, description = "The configuration is invalid; `detail` names the key \
            and nothing was applied.", body = crate::error::ErrorBody),
    )
)]
#[post("/admin/reload")]
pub async fn reload(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // Reading the files is small and rare; not worth a thread hop.
    match crate::reload::reload(state.shared()) {
        Ok(report) => Ok(HttpResponse::Ok().json(report)),
        Err(e) => Err(ApiError::bad_request("invalid configuration", e.0)),
    }
}
