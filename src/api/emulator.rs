//! The emulator's own endpoints under `/_emulator`: health and the CA certificate. No auth.

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::json_response;
use crate::app::AppState;
use crate::error::ApiResult;

/// GET /_emulator/health: 200 once the database answers.
pub async fn health(State(state): State<AppState>) -> ApiResult<Response> {
    state.store.ping().await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "status": "healthy", "version": env!("CARGO_PKG_VERSION") }),
    ))
}

/// GET /_emulator/ca.pem: the certificate clients should trust for the HTTPS listener.
pub async fn ca_pem(State(state): State<AppState>) -> Response {
    (
        [(CONTENT_TYPE, "application/x-pem-file")],
        state.trust_pem.as_str().to_owned(),
    )
        .into_response()
}
