//! Message operations: send, list, get, update, delete. Wire DTOs → `chat` operations →
//! rendering.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::extract::{AcsJson, AcsPath, BaseUrl, ChatApi, PageQuery, decode_cursor, encode_cursor};
use super::{created, json_response, page_response, render, sync_next_link, thread_path_segment};
use crate::auth::AcsUser;
use crate::chat::{AttachmentRequest, MessageChange, MessageDraft, MetadataPatch};
use crate::error::ApiResult;
use crate::state::AppState;
use crate::store::{MessageRow, Metadata};
use crate::versions::ChatVersion;

/// `SendChatMessageRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendChatMessageRequest {
    pub content: Option<String>,
    pub sender_display_name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub metadata: Option<Metadata>,
    /// 2024-03-15-preview: images uploaded to the thread.
    pub attachments: Option<Vec<ChatAttachmentRequest>>,
}

/// `ChatAttachment` in a request: a reference to an image uploaded to the thread.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatAttachmentRequest {
    pub id: String,
    pub attachment_type: Option<String>,
    pub name: Option<String>,
}

/// `UpdateChatMessageRequest` (merge patch).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateChatMessageRequest {
    pub content: Option<String>,
    pub metadata: Option<MetadataPatch>,
    /// 2024-03-15-preview: replaces the message's attachments.
    pub attachments: Option<Vec<ChatAttachmentRequest>>,
}

/// Attachments for the chat layer: only versions with image upload take them; others ignore
/// the field, as the service ignores fields a version does not define.
fn attachments(
    version: &ChatVersion,
    requested: Option<Vec<ChatAttachmentRequest>>,
) -> Option<Vec<AttachmentRequest>> {
    requested.filter(|_| version.images).map(|list| {
        list.into_iter()
            .map(|a| AttachmentRequest {
                id: a.id,
                attachment_type: a.attachment_type,
                name: a.name,
            })
            .collect()
    })
}

/// ChatThread_SendChatMessage: POST /chat/threads/{chatThreadId}/messages
pub async fn send_chat_message(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    base: BaseUrl,
    AcsPath(thread_id): AcsPath<String>,
    AcsJson(request): AcsJson<SendChatMessageRequest>,
) -> ApiResult<Response> {
    let draft = MessageDraft {
        content: request.content,
        kind: request.kind,
        sender_display_name: request.sender_display_name,
        metadata: request
            .metadata
            .filter(|_| version.message_metadata)
            .unwrap_or_default(),
        attachments: attachments(version, request.attachments),
        priority: None,
    };
    send_and_answer(&state, &user, &base, &thread_id, draft).await
}

/// Sends a user message and answers 201 `{"id"}` with its `Location` (both surfaces).
pub(crate) async fn send_and_answer(
    state: &AppState,
    user: &AcsUser,
    base: &BaseUrl,
    thread_id: &str,
    draft: MessageDraft,
) -> ApiResult<Response> {
    let id = state.chat.send_message(user, thread_id, draft).await?;
    let location = format!(
        "{}/chat/threads/{}/messages/{id}",
        base.0,
        thread_path_segment(thread_id)
    );
    Ok(created(
        &location,
        json!({ "id": id.to_string() }).to_string(),
    ))
}

/// ChatThread_ListChatMessages: GET /chat/threads/{chatThreadId}/messages
///
/// Newest first (the spec example lists sequence ids 5, 4, 3, 2, 1), system messages and
/// deleted messages (with `deletedOn`) included.
pub async fn list_chat_messages(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    base: BaseUrl,
    AcsPath(thread_id): AcsPath<String>,
    page: PageQuery,
) -> ApiResult<Response> {
    let thread_url = format!(
        "{}/chat/threads/{}",
        base.0,
        thread_path_segment(&thread_id)
    );
    messages_page(&state, &user, &thread_id, &base, &page, version.name, |m| {
        render::message(m, version, &thread_url)
    })
    .await
}

/// A page of the messages the caller may see, newest first, rendered by `render`, with the
/// nextLink (shared by both surfaces).
pub async fn messages_page<T: serde::Serialize>(
    state: &AppState,
    user: &AcsUser,
    thread_id: &str,
    base: &BaseUrl,
    page: &PageQuery,
    version: &str,
    render: impl Fn(&MessageRow) -> T,
) -> ApiResult<Response> {
    let before = page
        .sync_state
        .as_deref()
        .map(decode_cursor::<i64>)
        .transpose()?;
    let result = state
        .chat
        .list_messages(user, thread_id, page.start_time, before, page.max_page_size)
        .await?;
    let value: Vec<T> = result.messages.iter().map(render).collect();
    let next = result.next_before_sequence.map(|before| {
        let path = format!("/chat/threads/{thread_id}/messages");
        // The service's message links always carry a startTime (the epoch when none was given).
        sync_next_link(
            base,
            &path,
            encode_cursor(&before),
            page,
            version,
            Some("1970-01-01T00:00:00Z"),
        )
    });
    Ok(page_response(value, next))
}

/// ChatThread_GetChatMessage: GET /chat/threads/{chatThreadId}/messages/{chatMessageId}
pub async fn get_chat_message(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    base: BaseUrl,
    AcsPath((thread_id, message_id)): AcsPath<(String, String)>,
) -> ApiResult<Response> {
    let message = state
        .chat
        .get_message(&user, &thread_id, &message_id)
        .await?;
    let thread_url = format!(
        "{}/chat/threads/{}",
        base.0,
        thread_path_segment(&thread_id)
    );
    Ok(json_response(
        StatusCode::OK,
        &render::message(&message, version, &thread_url),
    ))
}

/// ChatThread_UpdateChatMessage: PATCH /chat/threads/{chatThreadId}/messages/{chatMessageId}
pub async fn update_chat_message(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    AcsPath((thread_id, message_id)): AcsPath<(String, String)>,
    AcsJson(request): AcsJson<UpdateChatMessageRequest>,
) -> ApiResult<StatusCode> {
    let change = MessageChange {
        content: request.content,
        metadata: request
            .metadata
            .filter(|_| version.message_metadata)
            .unwrap_or_default(),
        attachments: attachments(version, request.attachments),
        priority: None,
    };
    state
        .chat
        .edit_message(&user, &thread_id, &message_id, change)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// ChatThread_DeleteChatMessage: DELETE /chat/threads/{chatThreadId}/messages/{chatMessageId}
pub async fn delete_chat_message(
    State(state): State<AppState>,
    ChatApi(_): ChatApi,
    user: AcsUser,
    AcsPath((thread_id, message_id)): AcsPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .chat
        .delete_message(&user, &thread_id, &message_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
