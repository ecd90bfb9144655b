//! Message operations: send, list, get, update (sender only), delete (sender only).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::extract::{AcsJson, AcsPath, BaseUrl, ChatApi, PageQuery, decode_cursor, encode_cursor};
use super::{
    MAX_MESSAGE_BYTES, MetadataPatch, check_metadata_size, created_at, json_response,
    page_response, render, require_participant, sync_next_link, thread_path_segment,
};
use crate::app::AppState;
use crate::auth::AcsUser;
use crate::error::{ApiError, ApiResult};
use crate::identifier::parse_message_id;
use crate::store::{
    MessageContent, MessageRow, Metadata, NewMessage, ParticipantRow, StoredAttachment,
};
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

/// Checks requested attachments against the thread's uploaded images. Only versions with image
/// upload take attachments; others ignore the field, as the service ignores fields a version
/// does not define. ACS threads can attach only uploaded images (`file` attachments exist only in
/// Teams interop, which the emulator does not have).
async fn attachments_from_request(
    state: &AppState,
    version: &ChatVersion,
    thread_id: &str,
    requested: Option<Vec<ChatAttachmentRequest>>,
) -> ApiResult<Option<Vec<StoredAttachment>>> {
    let Some(requested) = requested.filter(|_| version.images) else {
        return Ok(None);
    };
    let mut stored = Vec::with_capacity(requested.len());
    for a in requested {
        let kind = a.attachment_type.as_deref().unwrap_or("image");
        if kind != "image" {
            return Err(ApiError::bad_request(format!(
                "Attachment type '{kind}' is not supported here; attach images uploaded to the thread."
            )));
        }
        let image = state
            .store
            .get_image(thread_id, &a.id)
            .await?
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Attachment {} is not an image uploaded to this thread.",
                    a.id
                ))
            })?;
        stored.push(StoredAttachment {
            id: a.id,
            attachment_type: "image".to_owned(),
            name: a.name.or(image.name),
        });
    }
    Ok(Some(stored))
}

/// The "approximately 28 KB" message limit, in UTF-8 bytes.
pub(crate) fn check_content_size(content: &str) -> ApiResult<()> {
    if content.len() > MAX_MESSAGE_BYTES {
        return Err(ApiError::BadRequest {
            code: "BadRequest",
            message: format!(
                "The message content is {} bytes; the limit is {MAX_MESSAGE_BYTES} bytes.",
                content.len()
            ),
        });
    }
    Ok(())
}

fn message_not_found() -> ApiError {
    ApiError::NotFound("The specified message id was not found.".to_owned())
}

/// A message the participant may see: it exists and was created at or after their history
/// share time.
pub(crate) async fn visible_message(
    state: &AppState,
    thread_id: &str,
    me: &ParticipantRow,
    message_id: &str,
) -> ApiResult<MessageRow> {
    let id = parse_message_id(message_id)?;
    state
        .store
        .get_message(thread_id, id)
        .await?
        .filter(|m| m.created_at >= me.share_history_time)
        .ok_or_else(message_not_found)
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
    require_participant(&state, &thread_id, &user).await?;
    let content = request
        .content
        .ok_or_else(|| ApiError::bad_request("The content field is required."))?;
    check_content_size(&content)?;
    // Only text and html can be sent; the other types are the service's system messages.
    let kind = match request
        .kind
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("text") => "text",
        Some("html") => "html",
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Message type '{other}' cannot be sent; use 'text' or 'html'."
            )));
        }
    };
    let metadata = if version.message_metadata {
        request.metadata.unwrap_or_default()
    } else {
        Metadata::new()
    };
    check_metadata_size(metadata.iter().map(|(k, v)| (k, Some(v))))?;
    let attachments = attachments_from_request(&state, version, &thread_id, request.attachments)
        .await?
        .unwrap_or_default();
    let message = NewMessage {
        kind,
        sender_id: Some(user.raw_id.clone()),
        sender_display_name: request.sender_display_name,
        content: MessageContent {
            message: Some(content),
            attachments,
            ..MessageContent::default()
        },
        metadata,
    };
    send_and_answer(&state, &base, &thread_id, message).await
}

/// Stores a user message and answers 201 `{"id"}` with its `Location` (both surfaces).
pub(crate) async fn send_and_answer(
    state: &AppState,
    base: &BaseUrl,
    thread_id: &str,
    message: NewMessage,
) -> ApiResult<Response> {
    let id = state
        .store
        .send_message(thread_id, message, state.clock.now_micros())
        .await?;
    let location = format!(
        "{}/chat/threads/{}/messages/{id}",
        base.0,
        thread_path_segment(thread_id)
    );
    Ok(created_at(
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
    let (_, me) = require_participant(&state, &thread_id, &user).await?;
    let thread_url = format!(
        "{}/chat/threads/{}",
        base.0,
        thread_path_segment(&thread_id)
    );
    messages_page(&state, &thread_id, &me, &base, &page, version.name, |m| {
        render::message(m, version, &thread_url)
    })
    .await
}

/// A page of a thread's messages that `me` may see, newest first, rendered by `render`, with
/// the nextLink (shared by both surfaces).
pub async fn messages_page<T: serde::Serialize>(
    state: &AppState,
    thread_id: &str,
    me: &ParticipantRow,
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
        .store
        .list_messages_page(
            thread_id,
            me.share_history_time,
            page.start_time,
            before,
            page.max_page_size,
        )
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
    let (_, me) = require_participant(&state, &thread_id, &user).await?;
    let message = visible_message(&state, &thread_id, &me, &message_id).await?;
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

pub(crate) fn require_sender(message: &MessageRow, user: &AcsUser) -> ApiResult<()> {
    // "Only the sender may update or delete their message; others get an error" (docs).
    if message.sender_id.as_deref() == Some(user.raw_id.as_str()) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "Only the sender of a message can update or delete it.".to_owned(),
        ))
    }
}

/// ChatThread_UpdateChatMessage: PATCH /chat/threads/{chatThreadId}/messages/{chatMessageId}
pub async fn update_chat_message(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    AcsPath((thread_id, message_id)): AcsPath<(String, String)>,
    AcsJson(request): AcsJson<UpdateChatMessageRequest>,
) -> ApiResult<StatusCode> {
    let (_, me) = require_participant(&state, &thread_id, &user).await?;
    let message = visible_message(&state, &thread_id, &me, &message_id).await?;
    if message.deleted_at.is_some() {
        return Err(message_not_found());
    }
    require_sender(&message, &user)?;
    if let Some(content) = &request.content {
        check_content_size(content)?;
    }
    let patch = if version.message_metadata {
        request.metadata.unwrap_or_default()
    } else {
        MetadataPatch::new()
    };
    let mut merged = crate::store::metadata_from_text(&message.metadata);
    crate::store::merge_metadata(&mut merged, &patch);
    check_metadata_size(merged.iter().map(|(k, v)| (k, Some(v))))?;
    let attachments =
        attachments_from_request(&state, version, &thread_id, request.attachments).await?;
    let updated = state
        .store
        .update_message(
            &thread_id,
            message.id,
            request.content.as_deref(),
            attachments.as_deref(),
            &patch,
            state.clock.now_micros(),
        )
        .await?;
    if !updated {
        return Err(message_not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// ChatThread_DeleteChatMessage: DELETE /chat/threads/{chatThreadId}/messages/{chatMessageId}
pub async fn delete_chat_message(
    State(state): State<AppState>,
    ChatApi(_): ChatApi,
    user: AcsUser,
    AcsPath((thread_id, message_id)): AcsPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let (_, me) = require_participant(&state, &thread_id, &user).await?;
    let message = visible_message(&state, &thread_id, &me, &message_id).await?;
    require_sender(&message, &user)?;
    state
        .store
        .delete_message(&thread_id, message.id, state.clock.now_micros())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
