//! Read receipts (send, list) and typing notifications.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::extract::{AcsJson, AcsPath, BaseUrl, ChatApi, OptionalJson, PageQuery};
use super::{page_response, render, require_participant, skip_next_link};
use crate::app::AppState;
use crate::auth::AcsUser;
use crate::error::{ApiError, ApiResult};
use crate::identifier::parse_message_id;

/// `SendReadReceiptRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendReadReceiptRequest {
    pub chat_message_id: Option<String>,
}

/// `SendTypingNotificationRequest` (optional body; 2021-09-07 and later).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendTypingNotificationRequest {
    pub sender_display_name: Option<String>,
}

/// ChatThread_SendChatReadReceipt: POST /chat/threads/{chatThreadId}/readReceipts
///
/// 200 with an empty body. The message must exist in the thread.
pub async fn send_chat_read_receipt(
    State(state): State<AppState>,
    ChatApi(_): ChatApi,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
    AcsJson(request): AcsJson<SendReadReceiptRequest>,
) -> ApiResult<StatusCode> {
    let (_, me) = require_participant(&state, &thread_id, &user).await?;
    let raw = request
        .chat_message_id
        .ok_or_else(|| ApiError::bad_request("The chatMessageId field is required."))?;
    let id = parse_message_id(&raw)?;
    let visible = state
        .store
        .get_message(&thread_id, id)
        .await?
        .is_some_and(|m| m.created_at >= me.share_history_time);
    if !visible {
        return Err(ApiError::NotFound(
            "The specified message id was not found.".to_owned(),
        ));
    }
    state
        .store
        .upsert_read_receipt(&thread_id, &user.raw_id, id, state.clock.now_micros())
        .await?;
    Ok(StatusCode::OK)
}

/// ChatThread_ListChatReadReceipts: GET /chat/threads/{chatThreadId}/readReceipts
pub async fn list_chat_read_receipts(
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
        .list_read_receipts_page(&thread_id, page.skip, page.max_page_size)
        .await?;
    let value: Vec<Value> = rows.iter().map(render::read_receipt).collect();
    let next = more.then(|| {
        skip_next_link(
            &base,
            &format!("/chat/threads/{thread_id}/readReceipts"),
            &page,
            version.name,
        )
    });
    Ok(page_response(value, next))
}

/// ChatThread_SendTypingNotification: POST /chat/threads/{chatThreadId}/typing
///
/// 200 with an empty body. Typing events reach other clients only through real-time
/// notifications, which the emulator does not push yet, so nothing is stored.
pub async fn send_typing_notification(
    State(state): State<AppState>,
    ChatApi(_): ChatApi,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
    OptionalJson(_request): OptionalJson<SendTypingNotificationRequest>,
) -> ApiResult<StatusCode> {
    require_participant(&state, &thread_id, &user).await?;
    Ok(StatusCode::OK)
}
