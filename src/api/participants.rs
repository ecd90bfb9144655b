//! Participant operations: list (skip paging), `:add`, `:remove`. Wire DTOs → `chat`
//! operations → rendering.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{AcsJson, AcsPath, BaseUrl, ChatApi, PageQuery};
use super::threads::{ChatParticipantRequest, invalid_participants};
use super::{from_json_value, json_response, page_response, render, skip_next_link};
use crate::auth::AcsUser;
use crate::error::ApiResult;
use crate::identifier::CommunicationIdentifierModel;
use crate::state::AppState;
use crate::store::ParticipantSnapshot;

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
    let (rows, more) = state
        .chat
        .list_participants(&user, &thread_id, page.skip, page.max_page_size)
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
    let requested = from_json_value::<AddChatParticipantsRequest>(body).map(|request| {
        request
            .participants
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.into_request(version))
            .collect()
    });
    let rejected = state
        .chat
        .add_participants(&user, &thread_id, requested)
        .await?;
    let body = if rejected.is_empty() {
        json!({})
    } else {
        json!({ "invalidParticipants": invalid_participants(&rejected) })
    };
    Ok(json_response(StatusCode::CREATED, &body))
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
    let target = from_json_value::<CommunicationIdentifierModel>(body)
        .and_then(|identifier| identifier.communication_user_raw_id());
    state
        .chat
        .remove_participant(&user, &thread_id, target)
        .await?;
    Ok(super::no_content())
}
