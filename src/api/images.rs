//! Image upload, view and delete (Chat 2024-03-15-preview; `ImagesApi` refuses other
//! versions): images that messages of the thread can attach. Wire → `chat` operations.

use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::extract::{AcsBytes, AcsPath, ImagesApi};
use super::{json_response, thread_path_segment};
use crate::auth::AcsUser;
use crate::chat::ImageUpload;
use crate::error::ApiResult;
use crate::state::AppState;

/// Largest image accepted. The spec states no limit; Teams caps inline images at tens of MB,
/// and 20 MB keeps the emulator's memory in check.
pub const MAX_IMAGE_BYTES: usize = 20 * 1024 * 1024;

/// ChatThread_UploadChatImage: POST /chat/threads/{chatThreadId}/images
///
/// 201 with `Location` (relative, as in the spec example) and `{id, attachmentType, name}`.
pub async fn upload_chat_image(
    State(state): State<AppState>,
    _: ImagesApi,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
    headers: HeaderMap,
    AcsBytes(body): AcsBytes,
) -> ApiResult<Response> {
    let upload = ImageUpload {
        data: Vec::from(body),
        name: headers
            .get("image-filename")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let image = state.chat.upload_image(&user, &thread_id, upload).await?;
    let mut result = json!({ "id": image.id, "attachmentType": "image" });
    if let Some(name) = &image.name {
        result["name"] = json!(name);
    }
    let mut response = json_response(StatusCode::CREATED, &result);
    let location = format!(
        "/chat/threads/{}/images/{}",
        thread_path_segment(&thread_id),
        image.id
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    Ok(response)
}

/// ChatThread_GetChatImage: GET /chat/threads/{chatThreadId}/images/{imageId}/view/{imageViewType}
pub async fn get_chat_image(
    State(state): State<AppState>,
    _: ImagesApi,
    user: AcsUser,
    AcsPath((thread_id, image_id, view)): AcsPath<(String, String, String)>,
) -> ApiResult<Response> {
    let image = state
        .chat
        .get_image(&user, &thread_id, &image_id, &view)
        .await?;
    let content_type =
        HeaderValue::from_str(&image.content_type).unwrap_or(HeaderValue::from_static("image/png"));
    Ok(([(CONTENT_TYPE, content_type)], image.data).into_response())
}

/// ChatThread_DeleteChatImage: DELETE /chat/threads/{chatThreadId}/images/{imageId}
pub async fn delete_chat_image(
    State(state): State<AppState>,
    _: ImagesApi,
    user: AcsUser,
    AcsPath((thread_id, image_id)): AcsPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .chat
        .delete_image(&user, &thread_id, &image_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
