//! The emulator's own endpoints under `/_emulator`: health, info, the CA certificate, state
//! export/import/reset, and inspection of identities and threads without a user token.
//! Destructive calls (`reset`, `PUT state`) sit behind `auth::require_admin_key`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::extract::{AcsJson, AcsPath};
use super::json_response;
use crate::chat::thread_not_found;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::StateDocument;
use crate::versions;

/// Emulator_Health: GET /_emulator/health. 200 once the database answers.
pub async fn health(State(state): State<AppState>) -> ApiResult<Response> {
    state.store.ping().await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "status": "healthy", "version": env!("CARGO_PKG_VERSION") }),
    ))
}

/// Emulator_CaCertificate: GET /_emulator/ca.pem. The certificate clients should trust.
pub async fn ca_pem(State(state): State<AppState>) -> Response {
    (
        [(CONTENT_TYPE, "application/x-pem-file")],
        state.trust_pem.as_str().to_owned(),
    )
        .into_response()
}

/// Emulator_Info: GET /_emulator/info. Version, resource, endpoints, api-versions, uptime.
pub async fn info(State(state): State<AppState>) -> Response {
    let runtime = &state.runtime;
    let https = match &state.config.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("https://{}", runtime.https_addr),
    };
    let body = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "resourceId": state.config.resource_id,
        "armResourceId": state.config.resource_arm_id,
        "endpoints": { "https": https, "http": format!("http://{}", runtime.http_addr) },
        "apiVersions": {
            "chat": versions::CHAT_VERSIONS.iter().map(|v| v.name).collect::<Vec<_>>(),
            "identity": versions::IDENTITY_VERSIONS.iter().map(|v| v.name).collect::<Vec<_>>(),
        },
        "storage": if state.config.in_memory { "memory" } else { "sqlite" },
        "auth": if state.config.auth == crate::config::AuthMode::Strict { "strict" } else { "lenient" },
        "uptimeSeconds": runtime.started.elapsed().as_secs(),
    });
    json_response(StatusCode::OK, &body)
}

/// Query of `reset`.
#[derive(Debug, Deserialize)]
pub struct ResetQuery {
    /// `identities` keeps identities and their token state.
    pub keep: Option<String>,
}

/// Emulator_Reset: POST /_emulator/reset[?keep=identities]. All state gone in one transaction.
pub async fn reset(
    State(state): State<AppState>,
    query: Result<Query<ResetQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<StatusCode> {
    let Query(query) = query?;
    let keep_identities = match query.keep.as_deref() {
        None => false,
        Some("identities") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "keep={other} is not supported; use keep=identities."
            )));
        }
    };
    state.store.reset(keep_identities).await?;
    tracing::info!(keep_identities, "state reset");
    Ok(StatusCode::NO_CONTENT)
}

/// Emulator_ExportState: GET /_emulator/state. The whole state as one JSON document.
pub async fn export_state(State(state): State<AppState>) -> ApiResult<Response> {
    let document = state.store.export_state().await?;
    Ok(json_response(StatusCode::OK, &document))
}

/// Emulator_ImportState: PUT /_emulator/state. Replaces the whole state with the document;
/// an invalid document is a 400 and changes nothing.
pub async fn import_state(
    State(state): State<AppState>,
    AcsJson(document): AcsJson<StateDocument>,
) -> ApiResult<StatusCode> {
    document
        .validate()
        .map_err(|e| ApiError::bad_request(format!("The state document is not valid: {e}.")))?;
    let (identities, threads) = (document.identities.len(), document.threads.len());
    // Constraints the validation does not repeat are still the client's mistake: the store
    // says `Inconsistent`, which answers 400.
    state.store.import_state(document).await?;
    tracing::info!(identities, threads, "state imported");
    Ok(StatusCode::NO_CONTENT)
}

/// Emulator_ListIdentities: GET /_emulator/identities. Identities with their token state.
pub async fn list_identities(State(state): State<AppState>) -> ApiResult<Response> {
    let identities = state.store.export_identities().await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "value": identities }),
    ))
}

/// Emulator_ListThreads: GET /_emulator/threads. Every thread with participants, messages and
/// read receipts, deleted ones included.
pub async fn list_threads(State(state): State<AppState>) -> ApiResult<Response> {
    let threads = state.store.export_threads(None).await?;
    Ok(json_response(StatusCode::OK, &json!({ "value": threads })))
}

/// Emulator_GetThread: GET /_emulator/threads/{chatThreadId}.
pub async fn get_thread(
    State(state): State<AppState>,
    AcsPath(thread_id): AcsPath<String>,
) -> ApiResult<Response> {
    let thread = state
        .store
        .export_threads(Some(&thread_id))
        .await?
        .into_iter()
        .next()
        .ok_or_else(thread_not_found)?;
    Ok(json_response(StatusCode::OK, &thread))
}
