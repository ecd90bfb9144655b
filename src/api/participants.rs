//! Participant operations: list (skip paging), `:add`, `:remove`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{AcsJson, AcsPath, BaseUrl, ChatApi, PageQuery};
use super::threads::{ChatParticipantRequest, participants_from_request};
use super::{
    MAX_PARTICIPANT_BATCH, MAX_PARTICIPANTS, json_response, page_response, render,
    require_participant, skip_next_link,
};
use crate::app::AppState;
use crate::auth::AcsUser;
use crate::error::{ApiError, ApiResult};
use crate::identifier::CommunicationIdentifierModel;
use crate::store::{AddOutcome, ParticipantSnapshot};

/// `AddChatParticipantsRequest`.
#[derive(Debug, Deserialize)]
pub struct AddChatParticipantsRequest {
    pub participants: Option<Vec<ChatParticipantRequest>>,
}

/// ChatThread_ListChatParticipants: GET /chat/threads/{chatThreadId}/participants
pub async fn list_chat_participants(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    base: BaseUrl,
    AcsPath(thread_id): AcsPath<String>,
    page: PageQuery,
) -> ApiResult<Response> {
    require_participant(&state, &thread_id, &user).await?;
    let (rows, more) = state
        .store
        .list_participants_page(&thread_id, page.skip, page.max_page_size)
        .await?;
    let snapshots: Vec<ParticipantSnapshot> = rows.iter().map(ParticipantSnapshot::from).collect();
    let value: Vec<_> = snapshots
        .iter()
        .map(|p| render::participant(p, version))
        .collect();
    let next = more.then(|| {
        skip_next_link(
            &base,
            &format!("/chat/threads/{thread_id}/participants"),
            &page,
            version.name,
        )
    });
    Ok(page_response(value, next))
}

/// POST /chat/threads/{chatThreadId}/participants/{action}: dispatches the literal `:add` and
/// `:remove` segments.
pub async fn participants_action(
    state: State<AppState>,
    version: ChatApi,
    user: AcsUser,
    AcsPath((thread_id, action)): AcsPath<(String, String)>,
    body: AcsJson<Value>,
) -> ApiResult<Response> {
    match action.as_str() {
        ":add" => add_chat_participants(state, version, user, thread_id, body).await,
        ":remove" => remove_chat_participant(state, user, thread_id, body).await,
        _ => Err(super::no_route(
            "POST",
            &format!("/chat/threads/{thread_id}/participants/{action}"),
        )),
    }
}

fn from_value<T: serde::de::DeserializeOwned>(value: Value) -> ApiResult<T> {
    serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid: {e}.")))
}

/// ChatThread_AddChatParticipants: POST /chat/threads/{chatThreadId}/participants/:add
///
/// 201 with `{}`, or with `invalidParticipants` for users that could not be added.
async fn add_chat_participants(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    thread_id: String,
    AcsJson(body): AcsJson<Value>,
) -> ApiResult<Response> {
    require_participant(&state, &thread_id, &user).await?;
    user.scope.require_participant_admin()?;
    let request: AddChatParticipantsRequest = from_value(body)?;
    let requested = request.participants.unwrap_or_default();
    if requested.is_empty() {
        return Err(ApiError::bad_request(
            "At least one participant is required.",
        ));
    }
    if requested.len() > MAX_PARTICIPANT_BATCH {
        return Err(ApiError::bad_request(format!(
            "At most {MAX_PARTICIPANT_BATCH} participants can be added in one request."
        )));
    }
    let (participants, invalid) = participants_from_request(&state, requested, version).await?;
    add_to_thread(&state, &thread_id, &participants, &user).await?;
    let body = if invalid.is_empty() {
        json!({})
    } else {
        json!({ "invalidParticipants": invalid })
    };
    Ok(json_response(StatusCode::CREATED, &body))
}

/// Adds participants (both surfaces): at most `MAX_PARTICIPANTS` per thread, else a 400 and
/// nothing added.
pub async fn add_to_thread(
    state: &AppState,
    thread_id: &str,
    participants: &[crate::store::NewParticipant],
    user: &AcsUser,
) -> ApiResult<()> {
    if participants.is_empty() {
        return Ok(());
    }
    let now = state.clock.now_micros();
    let outcome = state
        .store
        .add_participants(thread_id, participants, &user.raw_id, MAX_PARTICIPANTS, now)
        .await?;
    match outcome {
        AddOutcome::Added => Ok(()),
        AddOutcome::TooMany { limit } => Err(ApiError::bad_request(format!(
            "A thread can have at most {limit} participants."
        ))),
    }
}

/// ChatThread_RemoveChatParticipant: POST /chat/threads/{chatThreadId}/participants/:remove
///
/// The body is a bare `CommunicationIdentifierModel`. Removing someone who is not (or no longer)
/// a participant changes nothing and still answers 204.
async fn remove_chat_participant(
    State(state): State<AppState>,
    user: AcsUser,
    thread_id: String,
    AcsJson(body): AcsJson<Value>,
) -> ApiResult<Response> {
    require_participant(&state, &thread_id, &user).await?;
    user.scope.require_participant_admin()?;
    let identifier: CommunicationIdentifierModel = from_value(body)?;
    let raw_id = identifier.communication_user_raw_id()?;
    crate::identifier::classify_user_id(&raw_id, &state.config.resource_id)?;
    state
        .store
        .remove_participant(&thread_id, &raw_id, &user.raw_id, state.clock.now_micros())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
