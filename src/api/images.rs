//! Image upload, view and delete (Chat 2024-03-15-preview): images that messages of the thread
//! can attach. Other api-versions do not have these operations.

use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::extract::{AcsBytes, AcsPath, ChatApi};
use super::{json_response, require_participant, thread_path_segment};
use crate::app::AppState;
use crate::auth::AcsUser;
use crate::error::{ApiError, ApiResult};
use crate::store::ImageRow;
use crate::versions::ChatVersion;

/// Largest image accepted. The spec states no limit; Teams caps inline images at tens of MB,
/// and 20 MB keeps the emulator's memory in check.
pub const MAX_IMAGE_BYTES: usize = 20 * 1024 * 1024;

fn require_images(version: &ChatVersion) -> ApiResult<()> {
    if version.images {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "Image operations are not part of api-version {}; use 2024-03-15-preview.",
            version.name
        )))
    }
}

/// The image format of `data`, from its first bytes: the spec allows jpeg, png, gif, heic and
/// webp.
fn sniff(data: &[u8]) -> Option<&'static str> {
    match data {
        [0xFF, 0xD8, 0xFF, ..] => Some("image/jpeg"),
        [0x89, b'P', b'N', b'G', ..] => Some("image/png"),
        [b'G', b'I', b'F', b'8', ..] => Some("image/gif"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Some("image/webp"),
        [_, _, _, _, b'f', b't', b'y', b'p', brand @ ..]
            if [b"heic", b"heix", b"mif1", b"msf1"]
                .iter()
                .any(|b| brand.starts_with(*b)) =>
        {
            Some("image/heic")
        }
        _ => None,
    }
}

/// ChatThread_UploadChatImage: POST /chat/threads/{chatThreadId}/images
///
/// 201 with `Location` (relative, as in the spec example) and `{id, attachmentType, name}`.
pub async fn upload_chat_image(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
    headers: HeaderMap,
    AcsBytes(body): AcsBytes,
) -> ApiResult<Response> {
    require_images(version)?;
    require_participant(&state, &thread_id, &user).await?;
    let content_type = sniff(&body).ok_or_else(|| {
        ApiError::bad_request(
            "The body is not an image of an allowed format (jpeg, png, gif, heic, webp).",
        )
    })?;
    let name = headers
        .get("image-filename")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // The service's ids look like `0-eus-d2-fb42e272282ebb6ef76a3aedd1974433`.
    let id = format!("0-emu-d1-{}", uuid::Uuid::new_v4().simple());
    let image = ImageRow {
        id: id.clone(),
        name: name.clone(),
        content_type: content_type.to_owned(),
        data: body.to_vec(),
        created_at: state.clock.now_micros(),
    };
    state.store.insert_image(&thread_id, image).await?;
    let mut result = json!({ "id": id, "attachmentType": "image" });
    if let Some(name) = name {
        result["name"] = json!(name);
    }
    let mut response = json_response(StatusCode::CREATED, &result);
    let location = format!(
        "/chat/threads/{}/images/{id}",
        thread_path_segment(&thread_id)
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    Ok(response)
}

/// ChatThread_GetChatImage: GET /chat/threads/{chatThreadId}/images/{imageId}/view/{imageViewType}
///
/// `small` returns the original too: the emulator makes no thumbnails.
pub async fn get_chat_image(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    AcsPath((thread_id, image_id, view)): AcsPath<(String, String, String)>,
) -> ApiResult<Response> {
    require_images(version)?;
    require_participant(&state, &thread_id, &user).await?;
    if view != "original" && view != "small" {
        return Err(ApiError::bad_request(format!(
            "Image view '{view}' is not valid; use 'original' or 'small'."
        )));
    }
    let image = state
        .store
        .get_image(&thread_id, &image_id)
        .await?
        .ok_or_else(image_not_found)?;
    let content_type =
        HeaderValue::from_str(&image.content_type).unwrap_or(HeaderValue::from_static("image/png"));
    Ok(([(CONTENT_TYPE, content_type)], image.data).into_response())
}

/// ChatThread_DeleteChatImage: DELETE /chat/threads/{chatThreadId}/images/{imageId}
pub async fn delete_chat_image(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    AcsPath((thread_id, image_id)): AcsPath<(String, String)>,
) -> ApiResult<StatusCode> {
    require_images(version)?;
    require_participant(&state, &thread_id, &user).await?;
    if state.store.delete_image(&thread_id, &image_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(image_not_found())
    }
}

fn image_not_found() -> ApiError {
    ApiError::NotFound("The specified image was not found.".to_owned())
}

#[cfg(test)]
mod tests {
    use super::sniff;

    #[test]
    fn formats_are_recognised_by_their_magic_bytes() {
        assert_eq!(
            sniff(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A]),
            Some("image/png")
        );
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff(b"GIF89a"), Some("image/gif"));
        assert_eq!(sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"\x00\x00\x00\x18ftypheic\x00"), Some("image/heic"));
        assert_eq!(sniff(b"%PDF-1.7"), None);
        assert_eq!(sniff(b""), None);
    }
}
