//! The HTTP surface: one file per resource, the router that joins them, and what handlers share
//! (access checks, limits, response helpers). Handlers validate, authorize, call the store and
//! render; they hold no SQL.

pub mod emulator;
pub mod extract;
pub mod identity;
pub mod messages;
pub mod participants;
pub mod read_receipts;
pub mod render;
pub mod threads;

use std::collections::BTreeMap;

use axum::Router;
use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::app::AppState;
use crate::auth::{AcsUser, require_access_key};
use crate::error::{ApiError, ApiResult};
use crate::store::{ParticipantRow, ThreadAccess, ThreadRow};
use crate::versions;

/// "approximately 28 KB" per message (service limits).
pub const MAX_MESSAGE_BYTES: usize = 28 * 1024;
/// Participants per thread (service limits).
pub const MAX_PARTICIPANTS: usize = 250;
/// Participants per create or add request (service limits).
pub const MAX_PARTICIPANT_BATCH: usize = 200;
/// "The total size of all metadata pairs can be up to 1KB" (spec).
pub const MAX_METADATA_BYTES: usize = 1024;

/// Every route of the emulator. Chat routes take a bearer user token, identity routes the
/// access-key signature, `/_emulator` routes nothing.
pub fn router(state: AppState) -> Router {
    let chat = Router::new()
        .route(
            "/chat/threads",
            post(threads::create_chat_thread).get(threads::list_chat_threads),
        )
        .route(
            "/chat/threads/{chat_thread_id}",
            get(threads::get_chat_thread_properties)
                .patch(threads::update_chat_thread_properties)
                .delete(threads::delete_chat_thread),
        )
        .route(
            "/chat/threads/{chat_thread_id}/messages",
            post(messages::send_chat_message).get(messages::list_chat_messages),
        )
        .route(
            "/chat/threads/{chat_thread_id}/messages/{chat_message_id}",
            get(messages::get_chat_message)
                .patch(messages::update_chat_message)
                .delete(messages::delete_chat_message),
        )
        .route(
            "/chat/threads/{chat_thread_id}/participants",
            get(participants::list_chat_participants),
        )
        // `:add` and `:remove` are literal segments; axum 0.8 reserves a leading `:` in route
        // syntax, so the segment is captured and dispatched on.
        .route(
            "/chat/threads/{chat_thread_id}/participants/{action}",
            post(participants::participants_action),
        )
        .route(
            "/chat/threads/{chat_thread_id}/readReceipts",
            post(read_receipts::send_chat_read_receipt).get(read_receipts::list_chat_read_receipts),
        )
        .route(
            "/chat/threads/{chat_thread_id}/typing",
            post(read_receipts::send_typing_notification),
        )
        .layer(supported_versions(
            versions::CHAT_VERSIONS.iter().map(|v| v.name),
        ));

    let identity = Router::new()
        .route("/identities", post(identity::create))
        .route(
            "/identities/{id}",
            get(identity::get).delete(identity::delete),
        )
        .route("/identities/{id}/{action}", post(identity::identity_action))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_access_key,
        ))
        .layer(supported_versions(
            versions::IDENTITY_VERSIONS.iter().copied(),
        ));

    let emulator = Router::new()
        .route("/_emulator/health", get(emulator::health))
        .route("/_emulator/ca.pem", get(emulator::ca_pem));

    Router::new()
        .merge(chat)
        .merge(identity)
        .merge(emulator)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

fn supported_versions(
    names: impl Iterator<Item = &'static str>,
) -> SetResponseHeaderLayer<HeaderValue> {
    let value = HeaderValue::from_str(&versions::supported_header(names))
        .unwrap_or_else(|_| HeaderValue::from_static(""));
    SetResponseHeaderLayer::overriding(
        axum::http::HeaderName::from_static("api-supported-versions"),
        value,
    )
}

async fn not_found() -> ApiError {
    ApiError::NotFound("The requested resource was not found.".to_owned())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// A JSON response with the service's content type.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// A JSON response with a `Location` header.
pub fn created_at(location: &str, body: String) -> Response {
    let mut response = (StatusCode::CREATED, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(LOCATION, value);
    }
    response
}

/// A thread id as it appears in a `Location` path: `:` escaped, `@` kept (recorded:
/// `/chat/threads/19%3AZT-RMB6…@thread.v2`).
pub fn thread_path_segment(thread_id: &str) -> String {
    thread_id.replace(':', "%3A")
}

/// The thread and the caller's participant row, or the service's 404/403.
pub async fn require_participant(
    state: &AppState,
    thread_id: &str,
    user: &AcsUser,
) -> ApiResult<(ThreadRow, ParticipantRow)> {
    crate::identifier::check_thread_id(thread_id)?;
    match state
        .store
        .thread_access(thread_id, &user.raw_id, false)
        .await?
    {
        ThreadAccess::Participant(thread, participant) => Ok((thread, participant)),
        ThreadAccess::NotParticipant(_) => Err(not_permitted()),
        ThreadAccess::NotFound => Err(thread_not_found()),
    }
}

/// The service's 404 for threads (recorded wording).
pub fn thread_not_found() -> ApiError {
    ApiError::NotFound("The specified thread id was not found.".to_owned())
}

/// The service's 403 for callers that may not act (recorded wording).
pub fn not_permitted() -> ApiError {
    ApiError::Forbidden(
        "The initiator doesn't have the permission to perform the requested operation.".to_owned(),
    )
}

/// Checks the 1 KB metadata limit (keys and values, UTF-8 bytes).
pub fn check_metadata_size<'a>(
    pairs: impl Iterator<Item = (&'a String, Option<&'a String>)>,
) -> ApiResult<()> {
    let size: usize = pairs.map(|(k, v)| k.len() + v.map_or(0, String::len)).sum();
    if size > MAX_METADATA_BYTES {
        return Err(ApiError::BadRequest {
            code: "MetadataTooLarge",
            message: format!(
                "The total size of metadata ({size} bytes) exceeds the limit of {MAX_METADATA_BYTES} bytes."
            ),
        });
    }
    Ok(())
}

/// A merge-patch map: a key with `null` removes it.
pub type MetadataPatch = BTreeMap<String, Option<String>>;

/// Deserializes a field that distinguishes "absent" (`None`) from `null` (`Some(None)`).
pub fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
