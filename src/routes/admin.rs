//! Operator routes, behind the API key like every other.

use actix_web::{web, HttpResponse};

use crate::error::ApiError;
use crate::reload;
use crate::state::AppState;

/// `POST /api/v1/admin/reload`: what `SIGHUP` does, with the result in the
/// response: 200 with the applied and restart-required settings, or 400
/// naming the invalid key (nothing applied).
pub async fn reload(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // Reading the files is small and rare; not worth a thread hop.
    match reload::reload(state.shared()) {
        Ok(report) => Ok(HttpResponse::Ok().json(report)),
        Err(e) => Err(ApiError::bad_request("invalid configuration", e.0)),
    }
}
