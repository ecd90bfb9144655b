//! Thread operations: create (idempotent on `repeatability-request-id`), list, get, update,
//! delete.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::extract::{AcsJson, AcsPath, BaseUrl, ChatApi, PageQuery, decode_cursor, encode_cursor};
use super::render;
use super::{
    MAX_PARTICIPANT_BATCH, MetadataPatch, check_metadata_size, created_at, double_option,
    json_response, not_permitted, page_response, require_participant, sync_next_link,
    thread_path_segment,
};
use crate::app::AppState;
use crate::auth::AcsUser;
use crate::clock::parse_wire;
use crate::error::{ApiError, ApiResult, CommunicationError};
use crate::identifier::{
    CommunicationIdentifierModel, UserIdKind, check_thread_id, classify_user_id, new_thread_id,
};
use crate::store::{
    CreateOutcome, IdempotencyKey, Metadata, NewParticipant, NewThread, ThreadAccess, ThreadRow,
    ThreadUpdate,
};
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

/// Chat_CreateChatThread: POST /chat/threads
pub async fn create_chat_thread(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    base: BaseUrl,
    headers: HeaderMap,
    AcsJson(body): AcsJson<Value>,
) -> ApiResult<Response> {
    user.scope.require_thread_admin()?;
    // Hash of the canonical JSON (serde_json maps are sorted), recorded with the repeatability
    // id for inspection.
    let request_hash = format!("{:x}", Sha256::digest(body.to_string().as_bytes()));
    let request: CreateChatThreadRequest = serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid: {e}.")))?;
    let topic = request
        .topic
        .ok_or_else(|| ApiError::bad_request("The topic field is required."))?;
    let requested = request.participants.unwrap_or_default();
    if requested.len() > MAX_PARTICIPANT_BATCH {
        return Err(ApiError::bad_request(format!(
            "A thread can be created with at most {MAX_PARTICIPANT_BATCH} participants."
        )));
    }
    let (participants, invalid) = participants_from_request(&state, requested, version).await?;

    // Metadata and retention policy exist from 2025-03-15; older versions do not have the
    // fields, and the service ignores fields a version does not define.
    let (metadata, retention_policy) = if version.thread_metadata {
        let metadata = request.metadata.unwrap_or_default();
        check_metadata_size(metadata.iter().map(|(k, v)| (k, Some(v))))?;
        let policy = match request.retention_policy {
            None | Some(Value::Null) => None,
            Some(policy) => Some(validate_retention_policy(policy)?),
        };
        (metadata, policy)
    } else {
        (Metadata::new(), None)
    };

    let now = state.clock.now_micros();
    let thread = NewThread {
        id: new_thread_id(),
        topic,
        creator: user.raw_id.clone(),
        metadata,
        retention_policy,
        participants,
    };
    let row = ThreadRow {
        id: thread.id.clone(),
        topic: thread.topic.clone(),
        created_at: now,
        created_by: thread.creator.clone(),
        deleted_at: None,
        metadata: serde_json::to_string(&thread.metadata).unwrap_or_else(|_| "{}".to_owned()),
        retention_policy: thread.retention_policy.clone(),
        last_message_at: now,
    };
    let mut result = json!({ "chatThread": render::thread_properties(&row, version) });
    if !invalid.is_empty() {
        result["invalidParticipants"] = json!(invalid);
    }
    let response_body = result.to_string();

    let idempotency = headers
        .get("repeatability-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(|request_id| IdempotencyKey {
            caller_id: user.raw_id.clone(),
            request_id: request_id.to_owned(),
            request_hash,
        });
    let body = match state
        .store
        .create_thread(&thread, idempotency.as_ref(), &response_body, now)
        .await?
    {
        CreateOutcome::Created => response_body,
        CreateOutcome::Replayed { body } => body,
    };
    // The replayed body names the first thread; the Location must too.
    let thread_id = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["chatThread"]["id"].as_str().map(str::to_owned))
        .unwrap_or(thread.id);
    let location = format!(
        "{}/chat/threads/{}",
        base.0,
        thread_path_segment(&thread_id)
    );
    Ok(created_at(&location, body))
}

/// Turns requested participants into store participants. A malformed identifier fails the
/// whole request (400, as recorded); users that cannot be added are reported in
/// `invalidParticipants` with the HTTP status as a string, as in the spec examples: another
/// resource's users → "403 Permissions check failed", unknown or deleted identities → "404 Not found".
pub async fn participants_from_request(
    state: &AppState,
    requested: Vec<ChatParticipantRequest>,
    version: &ChatVersion,
) -> ApiResult<(Vec<NewParticipant>, Vec<CommunicationError>)> {
    let mut accepted = Vec::with_capacity(requested.len());
    let mut invalid = Vec::new();
    for p in requested {
        let raw_id = p.communication_identifier.communication_user_raw_id()?;
        let share_history_time = match p.share_history_time.as_deref() {
            None => 0,
            Some(text) => parse_wire(text).ok_or_else(|| {
                ApiError::bad_request(format!("Value for shareHistoryTime ({text}) is not valid."))
            })?,
        };
        let metadata = if version.thread_metadata {
            p.metadata.unwrap_or_default()
        } else {
            Metadata::new()
        };
        check_metadata_size(metadata.iter().map(|(k, v)| (k, Some(v))))?;
        let reject = |code: &str, message: &str| CommunicationError {
            code: code.to_owned(),
            message: message.to_owned(),
            target: Some(raw_id.clone()),
        };
        match classify_user_id(&raw_id, &state.config.resource_id)? {
            UserIdKind::OtherResource => {
                invalid.push(reject("403", "Permissions check failed"));
                continue;
            }
            UserIdKind::OwnResource if state.config.auth == crate::config::AuthMode::Strict => {
                let known = state
                    .store
                    .get_identity(&raw_id)
                    .await?
                    .is_some_and(|i| i.deleted_at.is_none());
                if !known {
                    invalid.push(reject("404", "Not found"));
                    continue;
                }
            }
            UserIdKind::OwnResource => {}
        }
        accepted.push(NewParticipant {
            user_id: raw_id,
            display_name: p.display_name,
            share_history_time,
            metadata,
        });
    }
    Ok((accepted, invalid))
}

/// Checks a `ChatRetentionPolicy` and returns it as stored JSON. `threadCreationDate` needs
/// `deleteThreadAfterDays` in the documented range of 30 to 90 days.
fn validate_retention_policy(policy: Value) -> ApiResult<String> {
    let kind = policy
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match kind {
        "none" => Ok(json!({"kind": "none"}).to_string()),
        "threadCreationDate" => {
            let days = policy.get("deleteThreadAfterDays").and_then(Value::as_i64);
            match days {
                Some(days @ 30..=90) => Ok(
                    json!({"kind": "threadCreationDate", "deleteThreadAfterDays": days})
                        .to_string(),
                ),
                _ => Err(ApiError::bad_request(
                    "deleteThreadAfterDays must be a whole number of days from 30 to 90.",
                )),
            }
        }
        other => Err(ApiError::bad_request(format!(
            "Retention policy kind '{other}' is not valid; use 'threadCreationDate' or 'none'."
        ))),
    }
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
        .store
        .list_threads_page(
            &user.raw_id,
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
    let (thread, _) = require_participant(&state, &thread_id, &user).await?;
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
    let (thread, _) = require_participant(&state, &thread_id, &user).await?;
    user.scope.require_thread_admin()?;
    let mut update = ThreadUpdate {
        topic: request.topic,
        initiator: user.raw_id.clone(),
        ..ThreadUpdate::default()
    };
    if version.thread_metadata {
        if let Some(patch) = request.metadata {
            let mut merged: BTreeMap<String, Option<String>> =
                crate::store::metadata_from_text(&thread.metadata)
                    .into_iter()
                    .map(|(k, v)| (k, Some(v)))
                    .collect();
            merged.extend(patch.clone());
            check_metadata_size(
                merged
                    .iter()
                    .filter(|(_, v)| v.is_some())
                    .map(|(k, v)| (k, v.as_ref())),
            )?;
            update.metadata_patch = patch;
        }
        update.retention_policy = match request.retention_policy {
            None => None,
            // Recorded: PATCH `{"retentionPolicy": null}` then GET shows `{"kind":"none"}`.
            Some(None) => Some(json!({"kind": "none"}).to_string()),
            Some(Some(policy)) => Some(validate_retention_policy(policy)?),
        };
    }
    state
        .store
        .update_thread(&thread_id, &update, state.clock.now_micros())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Chat_DeleteChatThread: DELETE /chat/threads/{chatThreadId}
///
/// Deleting is idempotent: a deleted (or never existing, well-formed) thread answers 204 again,
/// as the SDK e2e tests expect when their teardown deletes a thread the test already deleted.
pub async fn delete_chat_thread(
    State(state): State<AppState>,
    ChatApi(_): ChatApi,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
) -> ApiResult<Response> {
    check_thread_id(&thread_id)?;
    user.scope.require_thread_admin()?;
    match state
        .store
        .thread_access(&thread_id, &user.raw_id, true)
        .await?
    {
        ThreadAccess::NotFound => {}
        ThreadAccess::NotParticipant(_) => return Err(not_permitted()),
        ThreadAccess::Participant(..) => {
            state
                .store
                .delete_thread(&thread_id, state.clock.now_micros())
                .await?
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
