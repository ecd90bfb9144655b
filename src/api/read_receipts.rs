//! Read receipts (send, list) and typing notifications. Wire DTOs → `chat` operations →
//! rendering.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::extract::{AcsJson, AcsPath, BaseUrl, ChatApi, OptionalJson, PageQuery};
use super::{page_response, render, skip_next_link};
use crate::auth::AcsUser;
use crate::error::ApiResult;
use crate::state::AppState;

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
    state
        .chat
        .send_read_receipt(&user, &thread_id, request.chat_message_id)
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
    let (rows, more) = state
        .chat
        .list_read_receipts(&user, &thread_id, page.skip, page.max_page_size)
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
/// 200 with an empty body.
pub async fn send_typing_notification(
    State(state): State<AppState>,
    ChatApi(_): ChatApi,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
    OptionalJson(request): OptionalJson<SendTypingNotificationRequest>,
) -> ApiResult<StatusCode> {
    state
        .chat
        .send_typing(&user, &thread_id, request.sender_display_name)
        .await?;
    Ok(StatusCode::OK)
}
