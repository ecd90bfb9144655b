//! Thread operations: create (idempotent on `repeatability-request-id`), list, get, update,
//! delete. Wire DTOs → `chat` operations → rendering.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::extract::{AcsJson, AcsPath, BaseUrl, ChatApi, PageQuery, decode_cursor, encode_cursor};
use super::render;
use super::{
    created, double_option, from_json_value, json_response, page_response, sync_next_link,
    thread_path_segment,
};
use crate::auth::AcsUser;
use crate::chat::{
    MetadataPatch, ParticipantRequest, RejectedParticipant, RetentionRequest, ThreadChange,
    ThreadDraft,
};
use crate::clock::parse_wire;
use crate::error::{ApiError, ApiResult, CommunicationError};
use crate::identifier::CommunicationIdentifierModel;
use crate::state::AppState;
use crate::store::{IdempotencyKey, Metadata, ThreadRow};
use crate::versions::ChatVersion;

/// `ChatParticipant` in a request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatParticipantRequest {
    pub communication_identifier: CommunicationIdentifierModel,
    pub display_name: Option<String>,
    pub share_history_time: Option<String>,
    pub metadata: Option<Metadata>,
}

impl ChatParticipantRequest {
    /// The participant for the chat layer, with what this version does not have dropped.
    pub fn into_request(self, version: &ChatVersion) -> ParticipantRequest {
        let share_history_time = match self.share_history_time.as_deref() {
            None => Ok(0),
            Some(text) => parse_wire(text).ok_or_else(|| {
                ApiError::bad_request(format!("Value for shareHistoryTime ({text}) is not valid."))
            }),
        };
        ParticipantRequest {
            id: self.communication_identifier.communication_user_raw_id(),
            display_name: self.display_name,
            share_history_time,
            metadata: self
                .metadata
                .filter(|_| version.thread_metadata)
                .unwrap_or_default(),
        }
    }
}

/// `CreateChatThreadRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateChatThreadRequest {
    pub topic: Option<String>,
    #[serde(default)]
    pub participants: Option<Vec<ChatParticipantRequest>>,
    pub metadata: Option<Metadata>,
    pub retention_policy: Option<Value>,
}

/// `UpdateChatThreadRequest` (merge patch).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateChatThreadRequest {
    pub topic: Option<String>,
    pub metadata: Option<MetadataPatch>,
    #[serde(default, deserialize_with = "double_option")]
    pub retention_policy: Option<Option<Value>>,
}

/// A `ChatRetentionPolicy` body as the chat layer takes it.
fn retention_request(policy: &Value, version: &ChatVersion) -> RetentionRequest {
    RetentionRequest {
        kind: policy
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        delete_thread_after_days: policy.get("deleteThreadAfterDays").and_then(Value::as_i64),
        none_allowed: version.retention_none,
    }
}

/// `invalidParticipants` entries: the status as a string code, as in the spec examples.
pub fn invalid_participants(rejected: &[RejectedParticipant]) -> Vec<CommunicationError> {
    rejected
        .iter()
        .map(|r| CommunicationError {
            code: r.status.to_string(),
            message: r.reason.to_owned(),
            target: Some(r.id.clone()),
        })
        .collect()
}

/// Chat_CreateChatThread: POST /chat/threads
pub async fn create_chat_thread(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    base: BaseUrl,
    headers: HeaderMap,
    AcsJson(body): AcsJson<Value>,
) -> ApiResult<Response> {
    // Hash of the canonical JSON (serde_json maps are sorted), recorded with the repeatability
    // id for inspection.
    let request_hash = format!("{:x}", Sha256::digest(body.to_string().as_bytes()));
    let draft = from_json_value::<CreateChatThreadRequest>(body).map(|request| ThreadDraft {
        topic: request.topic,
        participants: request
            .participants
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.into_request(version))
            .collect(),
        // Metadata and retention policy exist from 2024-03-15-preview; the service ignores
        // fields a version does not define.
        metadata: request
            .metadata
            .filter(|_| version.thread_metadata)
            .unwrap_or_default(),
        retention_policy: request
            .retention_policy
            .filter(|p| version.thread_metadata && !p.is_null())
            .map(|p| retention_request(&p, version)),
    });
    let repeatability = headers
        .get("repeatability-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(|request_id| IdempotencyKey {
            caller_id: user.id.clone(),
            request_id: request_id.to_owned(),
            request_hash,
        });
    let created_thread = state
        .chat
        .create_thread(&user, draft, repeatability, move |thread, rejected| {
            let mut result = json!({ "chatThread": render::thread_properties(thread, version) });
            if !rejected.is_empty() {
                result["invalidParticipants"] = json!(invalid_participants(rejected));
            }
            result.to_string()
        })
        .await?;
    let location = format!(
        "{}/chat/threads/{}",
        base.0,
        thread_path_segment(&created_thread.thread_id)
    );
    Ok(created(&location, created_thread.body))
}

#[derive(serde::Serialize, Deserialize)]
struct ThreadCursor {
    at: i64,
    id: String,
}

/// Chat_ListChatThreads: GET /chat/threads
pub async fn list_chat_threads(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    base: BaseUrl,
    page: PageQuery,
) -> ApiResult<Response> {
    threads_page(
        &state,
        &user,
        &base,
        &page,
        version.name,
        render::thread_item,
    )
    .await
}

/// A page of the caller's threads, rendered by `render`, with the nextLink (shared by both
/// surfaces).
pub async fn threads_page(
    state: &AppState,
    user: &AcsUser,
    base: &BaseUrl,
    page: &PageQuery,
    version: &str,
    render: impl Fn(&ThreadRow) -> Value,
) -> ApiResult<Response> {
    let after = page
        .sync_state
        .as_deref()
        .map(decode_cursor::<ThreadCursor>)
        .transpose()?;
    let (rows, more) = state
        .chat
        .list_threads(
            user,
            page.start_time,
            after.map(|c| (c.at, c.id)),
            page.max_page_size,
        )
        .await?;
    let value = rows.iter().map(render).collect();
    let next = rows.last().filter(|_| more).map(|last| {
        let cursor = ThreadCursor {
            at: last.last_message_at,
            id: last.id.clone(),
        };
        sync_next_link(
            base,
            "/chat/threads",
            encode_cursor(&cursor),
            page,
            version,
            None,
        )
    });
    Ok(page_response(value, next))
}

/// ChatThread_GetChatThreadProperties: GET /chat/threads/{chatThreadId}
pub async fn get_chat_thread_properties(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
) -> ApiResult<Response> {
    let thread = state.chat.get_thread(&user, &thread_id).await?;
    Ok(json_response(
        StatusCode::OK,
        &render::thread_properties(&thread, version),
    ))
}

/// ChatThread_UpdateChatThreadProperties: PATCH /chat/threads/{chatThreadId}
pub async fn update_chat_thread_properties(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
    AcsJson(request): AcsJson<UpdateChatThreadRequest>,
) -> ApiResult<StatusCode> {
    let change = if version.thread_metadata {
        ThreadChange {
            topic: request.topic,
            metadata: request.metadata,
            retention_policy: request
                .retention_policy
                .map(|policy| policy.map(|p| retention_request(&p, version))),
        }
    } else {
        ThreadChange {
            topic: request.topic,
            ..ThreadChange::default()
        }
    };
    state.chat.update_thread(&user, &thread_id, change).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Chat_DeleteChatThread: DELETE /chat/threads/{chatThreadId}
///
/// Deleting is idempotent: a deleted (or never existing, well-formed) thread answers 204 again.
pub async fn delete_chat_thread(
    State(state): State<AppState>,
    ChatApi(_): ChatApi,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
) -> ApiResult<StatusCode> {
    state.chat.delete_thread(&user, &thread_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
