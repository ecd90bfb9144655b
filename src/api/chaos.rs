//! What the emulator does to requests before the handlers see them, at the user's request:
//! injected faults (`/_emulator/faults`) and, with `--throttle`, the service's rate limits.
//! Also the `/_emulator/faults` handlers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::extract::{AcsJson, AcsPath};
use super::{ServedRoute, json_response, operation_of};
use crate::error::{ApiError, ApiResult};
use crate::faults::{FaultEffect, FaultSpec, RequestFacts};
use crate::request::Operation;
use crate::state::AppState;

/// What the chaos middleware needs: the app and the service routes (for operationIds).
#[derive(Clone)]
pub struct ChaosState {
    pub app: AppState,
    pub routes: Arc<Vec<ServedRoute>>,
}

/// Middleware on the chat and identity routes: fault rules first, then rate limits.
pub async fn chaos(State(chaos): State<ChaosState>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let path = percent_encoding::percent_decode_str(request.uri().path())
        .decode_utf8_lossy()
        .into_owned();
    let operation = operation_of(&chaos.routes, &method, &path);
    let thread_id = path
        .strip_prefix("/chat/threads/")
        .and_then(|rest| rest.split('/').next())
        .map(str::to_owned);
    let user_id = caller(&request, &path);
    let facts = RequestFacts {
        operation,
        method: &method,
        path: &path,
        thread_id: thread_id.as_deref(),
        user_id: user_id.as_deref(),
    };

    let mut response = match chaos.app.faults.apply(&facts, rand::random::<f64>) {
        Some(effect) => apply(effect, request, next).await,
        None => {
            let refused = match (&chaos.app.throttle, operation) {
                (Some(throttle), Some(op)) => throttle
                    .admit(op, user_id.as_deref(), thread_id.as_deref(), Instant::now())
                    .err(),
                _ => None,
            };
            match refused {
                Some(wait) => too_many_requests(wait),
                None => next.run(request).await,
            }
        }
    };
    if let Some(op) = operation {
        response.extensions_mut().insert(Operation(op));
    }
    response
}

/// The calling user, for matching: the bearer token's identity (read, not verified: the
/// handler verifies), or the identity named in an identity path.
fn caller(request: &Request, path: &str) -> Option<String> {
    if let Some(rest) = path.strip_prefix("/identities/") {
        return rest.split('/').next().map(str::to_owned);
    }
    crate::auth::claimed_identity_of(request)
}

async fn apply(effect: FaultEffect, request: Request, next: Next) -> Response {
    if let Some(ms) = effect.latency_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if effect.drop_connection {
        // A body that fails before its first byte makes the server abort the connection: the
        // client sees the connection break mid-response, as with a network fault.
        let broken = futures_util::stream::once(async {
            Err::<Bytes, std::io::Error>(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "injected fault",
            ))
        });
        return Response::new(Body::from_stream(broken));
    }
    let Some(status) = effect.status.and_then(|s| StatusCode::from_u16(s).ok()) else {
        return next.run(request).await;
    };
    let code = effect
        .code
        .unwrap_or_else(|| default_code(status).to_owned());
    let message = effect
        .message
        .unwrap_or_else(|| "Injected fault.".to_owned());
    ApiError::Injected {
        status,
        code,
        message,
        retry_after_secs: effect.retry_after_seconds.map(u64::from),
    }
    .into_response()
}

/// The ACS error code the spec examples use for a status.
fn default_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        _ => "InternalError",
    }
}

/// The service's throttling answer (spec example): 429 `TooManyRequests` "Rate limit exceeded."
/// with `Retry-After` in whole seconds, rounded up.
fn too_many_requests(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::TooManyRequests {
        retry_after_secs: seconds.max(1),
    }
    .into_response()
}

/// Emulator_AddFault: POST /_emulator/faults. Installs a rule; 201 with its id.
pub async fn add_fault(
    State(state): State<AppState>,
    AcsJson(spec): AcsJson<FaultSpec>,
) -> ApiResult<Response> {
    spec.validate()
        .map_err(|e| ApiError::bad_request(format!("The fault rule is not valid: {e}.")))?;
    let rule = state.faults.add(spec);
    tracing::info!(id = %rule.id, "fault rule installed");
    Ok(json_response(StatusCode::CREATED, &rule))
}

/// Emulator_ListFaults: GET /_emulator/faults.
pub async fn list_faults(State(state): State<AppState>) -> Response {
    json_response(StatusCode::OK, &json!({ "value": state.faults.list() }))
}

/// Emulator_ClearFaults: DELETE /_emulator/faults. Removes every rule.
pub async fn clear_faults(State(state): State<AppState>) -> StatusCode {
    state.faults.clear();
    StatusCode::NO_CONTENT
}

/// Emulator_DeleteFault: DELETE /_emulator/faults/{id}.
pub async fn delete_fault(
    State(state): State<AppState>,
    AcsPath(id): AcsPath<String>,
) -> ApiResult<StatusCode> {
    if state.faults.remove(&id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "No fault rule has the id {id}."
        )))
    }
}
