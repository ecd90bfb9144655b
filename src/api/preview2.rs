//! The 2020 preview surface, Chat api-version `2020-09-21-preview2`, as
//! azure-communication-chat 1.0.0b2 speaks it: `members` instead of participants, lower-case
//! `readreceipts`, 207 multi-status answers to create and add, 200 to both PATCHes, 201 to a
//! read receipt, identifiers as plain strings, messages with `priority`, string `content` and
//! `ThreadActivity/*` system messages in XML, and a top-level `{code, message}` error body.
//! The same store serves both surfaces: a thread made here is visible to today's SDKs and back.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{AcsJson, AcsPath, BaseUrl, ChatApi, OptionalJson, PageQuery};
use super::messages::{check_content_size, messages_page, require_sender, send_and_answer};
use super::threads::{ChatParticipantRequest, participants_from_request, threads_page};
use super::{
    MAX_PARTICIPANT_BATCH, MAX_PARTICIPANTS, Routes, ServedRoute, json_response,
    method_not_allowed, not_found, not_permitted, page_response, require_participant,
    thread_path_segment,
};
use crate::app::AppState;
use crate::auth::AcsUser;
use crate::clock::to_wire;
use crate::error::{ApiError, ApiResult};
use crate::identifier::{CommunicationIdentifierModel, check_thread_id, new_thread_id};
use crate::store::{
    MessageContent, MessageRow, Metadata, NewMessage, NewThread, ParticipantSnapshot, ThreadAccess,
    ThreadUpdate,
};
use crate::versions::ChatVersion;

/// The api-version this module serves.
pub const VERSION: &str = "2020-09-21-preview2";

/// Whether a request belongs to this surface: it says so with its api-version, or it names a
/// path only this surface has (so that a request without an api-version still gets the
/// api-version error of the route it meant).
pub fn wants(request: &Request) -> bool {
    let path = request.uri().path();
    let legacy_path = path
        .split('/')
        .nth(4)
        .is_some_and(|s| s == "members" || s == "readreceipts");
    legacy_path
        || request
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "api-version=2020-09-21-preview2"))
}

/// The router of this surface and what it serves.
pub fn routes(state: AppState) -> (Router, Vec<ServedRoute>) {
    let routes = Routes::new()
        .add(
            "/chat/threads",
            &[
                ("POST", "Chat_CreateChatThread"),
                ("GET", "Chat_ListChatThreads"),
            ],
            post(create_chat_thread).get(list_chat_threads),
        )
        .add(
            "/chat/threads/{chat_thread_id}",
            &[
                ("GET", "ChatThread_GetChatThreadProperties"),
                ("PATCH", "ChatThread_UpdateChatThreadProperties"),
                ("DELETE", "Chat_DeleteChatThread"),
            ],
            get(get_chat_thread)
                .patch(update_chat_thread)
                .delete(delete_chat_thread),
        )
        .add(
            "/chat/threads/{chat_thread_id}/messages",
            &[
                ("POST", "ChatThread_SendChatMessage"),
                ("GET", "ChatThread_ListChatMessages"),
            ],
            post(send_chat_message).get(list_chat_messages),
        )
        .add(
            "/chat/threads/{chat_thread_id}/messages/{chat_message_id}",
            &[
                ("GET", "ChatThread_GetChatMessage"),
                ("PATCH", "ChatThread_UpdateChatMessage"),
                ("DELETE", "ChatThread_DeleteChatMessage"),
            ],
            get(get_chat_message)
                .patch(update_chat_message)
                .delete(delete_chat_message),
        )
        .add(
            "/chat/threads/{chat_thread_id}/members",
            &[
                ("GET", "ChatThread_ListChatThreadMembers"),
                ("POST", "ChatThread_AddChatThreadMembers"),
            ],
            get(list_chat_thread_members).post(add_chat_thread_members),
        )
        .add(
            "/chat/threads/{chat_thread_id}/members/{chat_member_id}",
            &[("DELETE", "ChatThread_RemoveChatThreadMember")],
            delete(remove_chat_thread_member),
        )
        .add(
            "/chat/threads/{chat_thread_id}/readreceipts",
            &[
                ("GET", "ChatThread_ListChatReadReceiptsPreview2"),
                ("POST", "ChatThread_SendChatReadReceiptPreview2"),
            ],
            get(list_chat_read_receipts).post(send_chat_read_receipt),
        )
        .add(
            "/chat/threads/{chat_thread_id}/typing",
            &[("POST", "ChatThread_SendTypingNotification")],
            post(send_typing_notification),
        );
    let router = routes
        .router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    (router, routes.served)
}

/// This surface's error body is the bare `Error` model, `{code, message}` (preview2 spec and
/// examples), not today's `{"error": {…}}`. Applied outermost on this surface's router, so
/// injected faults and throttling answer in this shape too.
pub async fn flatten_error(response: Response) -> Response {
    if !response.headers().contains_key("x-ms-error-response") {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let inner = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|mut v| v.get_mut("error").map(Value::take));
    let body = match inner {
        Some(inner) => inner.to_string(),
        None => String::from_utf8_lossy(&bytes).into_owned(),
    };
    let mut response = Response::from_parts(parts, axum::body::Body::from(body));
    response
        .headers_mut()
        .remove(axum::http::header::CONTENT_LENGTH);
    response
}

fn require_version(version: &ChatVersion) -> ApiResult<()> {
    if version.legacy {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "This operation exists only in api-version {VERSION}, not in {}.",
            version.name
        )))
    }
}

/// `ChatThreadMember` in a request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatThreadMember {
    pub id: String,
    pub display_name: Option<String>,
    pub share_history_time: Option<String>,
}

impl ChatThreadMember {
    fn into_participant(self) -> ChatParticipantRequest {
        ChatParticipantRequest {
            communication_identifier: CommunicationIdentifierModel::from_raw_id(&self.id),
            display_name: self.display_name,
            share_history_time: self.share_history_time,
            metadata: None,
        }
    }
}

/// `CreateChatThreadRequest` of the preview.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateChatThreadRequest {
    pub topic: Option<String>,
    #[serde(default)]
    pub members: Vec<ChatThreadMember>,
}

/// `AddChatThreadMembersRequest`.
#[derive(Debug, Deserialize)]
pub struct AddChatThreadMembersRequest {
    #[serde(default)]
    pub members: Vec<ChatThreadMember>,
}

/// `SendChatMessageRequest` of the preview.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendChatMessageRequest {
    pub content: Option<String>,
    pub priority: Option<String>,
    pub sender_display_name: Option<String>,
}

/// `UpdateChatMessageRequest` / `UpdateChatThreadRequest` of the preview (JSON, not merge-patch).
#[derive(Debug, Default, Deserialize)]
pub struct UpdateRequest {
    pub content: Option<String>,
    pub priority: Option<String>,
    pub topic: Option<String>,
}

/// `SendReadReceiptRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendReadReceiptRequest {
    pub chat_message_id: Option<String>,
}

/// One entry of a 207 `MultiStatusResponse`.
fn status_entry(id: &str, status: u16, kind: &str, message: Option<&str>) -> Value {
    let mut entry = json!({ "id": id, "statusCode": status, "type": kind });
    if let Some(message) = message {
        entry["message"] = json!(message);
    }
    entry
}

fn multi_status(entries: Vec<Value>) -> Response {
    json_response(
        StatusCode::MULTI_STATUS,
        &json!({ "multipleStatus": entries }),
    )
}

/// Members and their 207 entries: accepted ones 201, the rest with their status.
async fn members_from_request(
    state: &AppState,
    version: &ChatVersion,
    members: Vec<ChatThreadMember>,
) -> ApiResult<(Vec<crate::store::NewParticipant>, Vec<Value>)> {
    let order: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
    let requested = members
        .into_iter()
        .map(ChatThreadMember::into_participant)
        .collect();
    let (accepted, invalid) = participants_from_request(state, requested, version).await?;
    let entries = order
        .iter()
        .map(
            |id| match invalid.iter().find(|e| e.target.as_deref() == Some(id)) {
                Some(e) => status_entry(
                    id,
                    e.code.parse().unwrap_or(400),
                    "ThreadMember",
                    Some(&e.message),
                ),
                None => status_entry(id, 201, "ThreadMember", None),
            },
        )
        .collect();
    Ok((accepted, entries))
}

/// Chat_CreateChatThread (preview2): POST /chat/threads → 207 `{multipleStatus}` + `Location`.
///
/// The SDK takes the thread id from the entry with `"type": "Thread"` and needs its
/// `statusCode` to be 201 (recorded service answers list the members first, the thread last).
async fn create_chat_thread(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    base: BaseUrl,
    AcsJson(request): AcsJson<CreateChatThreadRequest>,
) -> ApiResult<Response> {
    require_version(version)?;
    user.scope.require_thread_admin()?;
    let topic = request
        .topic
        .ok_or_else(|| ApiError::bad_request("The topic field is required."))?;
    if request.members.len() > MAX_PARTICIPANT_BATCH {
        return Err(ApiError::bad_request(format!(
            "A thread can be created with at most {MAX_PARTICIPANT_BATCH} members."
        )));
    }
    let (participants, mut entries) =
        members_from_request(&state, version, request.members).await?;
    let thread = NewThread {
        id: new_thread_id(),
        topic,
        creator: user.raw_id.clone(),
        metadata: Metadata::new(),
        retention_policy: None,
        participants,
    };
    state
        .store
        .create_thread(&thread, None, "", state.clock.now_micros())
        .await?;
    entries.push(status_entry(&thread.id, 201, "Thread", None));
    let mut response = multi_status(entries);
    let location = format!(
        "{}/chat/threads/{}",
        base.0,
        thread_path_segment(&thread.id)
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        response
            .headers_mut()
            .insert(axum::http::header::LOCATION, value);
    }
    Ok(response)
}

/// Chat_ListChatThreads (preview2): items `{id, topic, isDeleted, lastMessageReceivedOn}`.
async fn list_chat_threads(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    base: BaseUrl,
    page: PageQuery,
) -> ApiResult<Response> {
    require_version(version)?;
    threads_page(&state, &user, &base, &page, VERSION, |t| {
        json!({
            "id": t.id,
            "topic": t.topic,
            "isDeleted": t.deleted_at.is_some(),
            "lastMessageReceivedOn": to_wire(t.last_message_at),
        })
    })
    .await
}

fn member(p: &ParticipantSnapshot) -> Value {
    let mut out = json!({ "id": p.id, "shareHistoryTime": to_wire(p.share_history_time) });
    if let Some(name) = &p.display_name {
        out["displayName"] = json!(name);
    }
    out
}

async fn all_members(state: &AppState, thread_id: &str) -> ApiResult<Vec<Value>> {
    let (rows, _) = state
        .store
        .list_participants_page(thread_id, 0, MAX_PARTICIPANTS as u32)
        .await?;
    Ok(rows
        .iter()
        .map(|p| member(&ParticipantSnapshot::from(p)))
        .collect())
}

/// ChatThread_GetChatThread (preview2): `{id, topic, createdOn, createdBy, members}`.
async fn get_chat_thread(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
) -> ApiResult<Response> {
    require_version(version)?;
    let (thread, _) = require_participant(&state, &thread_id, &user).await?;
    let body = json!({
        "id": thread.id,
        "topic": thread.topic,
        "createdOn": to_wire(thread.created_at),
        "createdBy": thread.created_by,
        "members": all_members(&state, &thread_id).await?,
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// ChatThread_UpdateChatThread (preview2): PATCH `{topic}` → 200, empty.
async fn update_chat_thread(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
    OptionalJson(request): OptionalJson<UpdateRequest>,
) -> ApiResult<StatusCode> {
    require_version(version)?;
    require_participant(&state, &thread_id, &user).await?;
    user.scope.require_thread_admin()?;
    let update = ThreadUpdate {
        topic: request.topic,
        initiator: user.raw_id.clone(),
        ..ThreadUpdate::default()
    };
    state
        .store
        .update_thread(&thread_id, &update, state.clock.now_micros())
        .await?;
    Ok(StatusCode::OK)
}

/// Chat_DeleteChatThread (preview2): 204, twice too.
async fn delete_chat_thread(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
) -> ApiResult<StatusCode> {
    require_version(version)?;
    check_thread_id(&thread_id)?;
    match state
        .store
        .thread_access(&thread_id, &user.raw_id, true)
        .await?
    {
        ThreadAccess::NotFound => {}
        ThreadAccess::NotParticipant(_) => return Err(not_permitted()),
        ThreadAccess::Participant(..) => {
            user.scope.require_thread_admin()?;
            state
                .store
                .delete_thread(&thread_id, state.clock.now_micros())
                .await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `Normal` (the default) or `High`, in the spec's case.
fn priority(value: Option<&str>) -> ApiResult<String> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("normal") => Ok("Normal".to_owned()),
        Some("high") => Ok("High".to_owned()),
        Some(other) => Err(ApiError::bad_request(format!(
            "Priority '{other}' is not valid; use Normal or High."
        ))),
    }
}

/// ChatThread_SendChatMessage (preview2): 201 `{id}` + `Location`.
async fn send_chat_message(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    base: BaseUrl,
    AcsPath(thread_id): AcsPath<String>,
    AcsJson(request): AcsJson<SendChatMessageRequest>,
) -> ApiResult<Response> {
    require_version(version)?;
    require_participant(&state, &thread_id, &user).await?;
    let content = request
        .content
        .ok_or_else(|| ApiError::bad_request("The content field is required."))?;
    check_content_size(&content)?;
    let message = NewMessage {
        kind: "text",
        sender_id: Some(user.raw_id.clone()),
        sender_display_name: request.sender_display_name,
        content: MessageContent {
            message: Some(content),
            priority: Some(priority(request.priority.as_deref())?),
            ..MessageContent::default()
        },
        metadata: Metadata::new(),
    };
    send_and_answer(&state, &base, &thread_id, message).await
}

/// Escapes text for the XML content of system messages.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `ChatMessage` of the preview. System messages carry the thread id as `senderId` and XML
/// content, as recorded from the service in 2020.
fn render_message(m: &MessageRow, thread_id: &str) -> Value {
    let stored = m.content();
    let initiator = xml(stored.initiator.as_deref().unwrap_or_default());
    let members_xml = |tag: &str| {
        let targets: String = stored
            .participants
            .iter()
            .flatten()
            .map(|p| {
                let id = xml(&p.id);
                format!(
                    "<target>{id}</target><detailedtargetinfo><id>{id}</id></detailedtargetinfo>"
                )
            })
            .collect();
        format!(
            "<{tag}><eventtime>{0}</eventtime><initiator>{initiator}</initiator><rosterVersion>{0}</rosterVersion>{targets}</{tag}>",
            m.id
        )
    };
    let (kind, content) = match m.kind.as_str() {
        "topicUpdated" => (
            "ThreadActivity/TopicUpdate",
            format!(
                "<topicupdate><eventtime>{}</eventtime><initiator>{initiator}</initiator><value>{}</value></topicupdate>",
                m.id,
                xml(stored.topic.as_deref().unwrap_or_default())
            ),
        ),
        "participantAdded" => ("ThreadActivity/AddMember", members_xml("addmember")),
        "participantRemoved" => ("ThreadActivity/DeleteMember", members_xml("deletemember")),
        _ => ("Text", stored.message.clone().unwrap_or_default()),
    };
    let mut out = json!({
        "id": m.id.to_string(),
        "type": kind,
        "priority": stored.priority.as_deref().unwrap_or("Normal"),
        "version": m.version.to_string(),
        "content": content,
        "createdOn": to_wire(m.created_at),
        "senderId": m.sender_id.as_deref().unwrap_or(thread_id),
    });
    if m.sender_id.is_some() {
        out["senderDisplayName"] = json!(m.sender_display_name.clone().unwrap_or_default());
    }
    if let Some(deleted) = m.deleted_at {
        out["deletedOn"] = json!(to_wire(deleted));
    }
    if let Some(edited) = m.edited_at {
        out["editedOn"] = json!(to_wire(edited));
    }
    out
}

/// ChatThread_ListChatMessages (preview2): newest first.
async fn list_chat_messages(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    base: BaseUrl,
    AcsPath(thread_id): AcsPath<String>,
    page: PageQuery,
) -> ApiResult<Response> {
    require_version(version)?;
    let (_, me) = require_participant(&state, &thread_id, &user).await?;
    messages_page(&state, &thread_id, &me, &base, &page, VERSION, |m| {
        render_message(m, &thread_id)
    })
    .await
}

/// A message the caller may see (a member, the message created after their history share time).
async fn visible_message(
    state: &AppState,
    thread_id: &str,
    user: &AcsUser,
    message_id: &str,
) -> ApiResult<MessageRow> {
    let (_, me) = require_participant(state, thread_id, user).await?;
    super::messages::visible_message(state, thread_id, &me, message_id).await
}

/// ChatThread_GetChatMessage (preview2).
async fn get_chat_message(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    AcsPath((thread_id, message_id)): AcsPath<(String, String)>,
) -> ApiResult<Response> {
    require_version(version)?;
    let message = visible_message(&state, &thread_id, &user, &message_id).await?;
    Ok(json_response(
        StatusCode::OK,
        &render_message(&message, &thread_id),
    ))
}

/// ChatThread_UpdateChatMessage (preview2): PATCH `{content}` → 200, empty.
async fn update_chat_message(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    AcsPath((thread_id, message_id)): AcsPath<(String, String)>,
    OptionalJson(request): OptionalJson<UpdateRequest>,
) -> ApiResult<StatusCode> {
    require_version(version)?;
    let message = visible_message(&state, &thread_id, &user, &message_id).await?;
    if message.deleted_at.is_some() {
        return Err(ApiError::NotFound(
            "The specified message id was not found.".to_owned(),
        ));
    }
    require_sender(&message, &user)?;
    if let Some(content) = &request.content {
        check_content_size(content)?;
    }
    if request.priority.is_some() {
        // The priority is fixed at send time in the emulator; the SDK never sends one here.
        priority(request.priority.as_deref())?;
    }
    let now = state.clock.now_micros();
    state
        .store
        .update_message(
            &thread_id,
            message.id,
            request.content.as_deref(),
            None,
            &Default::default(),
            now,
        )
        .await?;
    Ok(StatusCode::OK)
}

/// ChatThread_DeleteChatMessage (preview2): 204.
async fn delete_chat_message(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    AcsPath((thread_id, message_id)): AcsPath<(String, String)>,
) -> ApiResult<StatusCode> {
    require_version(version)?;
    let message = visible_message(&state, &thread_id, &user, &message_id).await?;
    require_sender(&message, &user)?;
    state
        .store
        .delete_message(&thread_id, message.id, state.clock.now_micros())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// ChatThread_ListChatThreadMembers: every member (the 2020 SDK sends no paging parameters).
async fn list_chat_thread_members(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
) -> ApiResult<Response> {
    require_version(version)?;
    require_participant(&state, &thread_id, &user).await?;
    Ok(page_response(all_members(&state, &thread_id).await?, None))
}

/// ChatThread_AddChatThreadMembers: 207 with one `ThreadMember` entry per requested member.
async fn add_chat_thread_members(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
    AcsJson(request): AcsJson<AddChatThreadMembersRequest>,
) -> ApiResult<Response> {
    require_version(version)?;
    require_participant(&state, &thread_id, &user).await?;
    user.scope.require_participant_admin()?;
    if request.members.is_empty() || request.members.len() > MAX_PARTICIPANT_BATCH {
        return Err(ApiError::bad_request(format!(
            "Add between 1 and {MAX_PARTICIPANT_BATCH} members."
        )));
    }
    let (participants, entries) = members_from_request(&state, version, request.members).await?;
    super::participants::add_to_thread(&state, &thread_id, &participants, &user).await?;
    Ok(multi_status(entries))
}

/// ChatThread_RemoveChatThreadMember: DELETE …/members/{chatMemberId} → 204.
async fn remove_chat_thread_member(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    AcsPath((thread_id, member_id)): AcsPath<(String, String)>,
) -> ApiResult<StatusCode> {
    require_version(version)?;
    require_participant(&state, &thread_id, &user).await?;
    user.scope.require_participant_admin()?;
    crate::identifier::classify_user_id(&member_id, &state.config.resource_id)?;
    state
        .store
        .remove_participant(
            &thread_id,
            &member_id,
            &user.raw_id,
            state.clock.now_micros(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// ChatThread_ListChatReadReceipts (preview2): `{senderId, chatMessageId, readOn}`, latest per
/// member.
async fn list_chat_read_receipts(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
) -> ApiResult<Response> {
    require_version(version)?;
    require_participant(&state, &thread_id, &user).await?;
    let (rows, _) = state
        .store
        .list_read_receipts_page(&thread_id, 0, MAX_PARTICIPANTS as u32)
        .await?;
    let value = rows
        .iter()
        .map(|r| json!({ "senderId": r.user_id, "chatMessageId": r.message_id.to_string(), "readOn": to_wire(r.read_at) }))
        .collect();
    Ok(page_response(value, None))
}

/// ChatThread_SendChatReadReceipt (preview2): 201, empty.
async fn send_chat_read_receipt(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
    AcsJson(request): AcsJson<SendReadReceiptRequest>,
) -> ApiResult<StatusCode> {
    require_version(version)?;
    let raw = request
        .chat_message_id
        .ok_or_else(|| ApiError::bad_request("The chatMessageId field is required."))?;
    let message = visible_message(&state, &thread_id, &user, &raw).await?;
    state
        .store
        .upsert_read_receipt(
            &thread_id,
            &user.raw_id,
            message.id,
            state.clock.now_micros(),
        )
        .await?;
    Ok(StatusCode::CREATED)
}

/// ChatThread_SendTypingNotification (preview2): no body → 200.
async fn send_typing_notification(
    State(state): State<AppState>,
    ChatApi(version): ChatApi,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
) -> ApiResult<StatusCode> {
    require_version(version)?;
    require_participant(&state, &thread_id, &user).await?;
    Ok(StatusCode::OK)
}
