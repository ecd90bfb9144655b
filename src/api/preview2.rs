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

use super::extract::{
    AcsJson, AcsPath, BaseUrl, OptionalJson, PageQuery, Preview2Api, api_version_of,
};
use super::messages::{messages_page, send_and_answer};
use super::threads::{ChatParticipantRequest, threads_page};
use super::{
    Routes, ServedRoute, json_response, method_not_allowed, not_found, page_response,
    thread_path_segment,
};
use crate::auth::AcsUser;
use crate::chat::{
    MAX_PARTICIPANTS, MessageChange, MessageDraft, RejectedParticipant, ThreadChange, ThreadDraft,
};
use crate::clock::to_wire;
use crate::error::{ApiResult, CommunicationError};
use crate::identifier::CommunicationIdentifierModel;
use crate::state::AppState;
use crate::store::{MessageKind, MessageRow, Metadata, ParticipantSnapshot};
use crate::versions::{self, PREVIEW2};

/// Whether a request belongs to this surface, decided once, before routing: its api-version
/// (read as the extractors read it: the parameter's name in any case) is this surface's, or it
/// names a path only this surface has (so that a request without an api-version still gets the
/// api-version error of the route it meant).
pub fn wants(request: &Request) -> bool {
    let legacy_path = request
        .uri()
        .path()
        .split('/')
        .nth(4)
        .is_some_and(|s| s == "members" || s == "readreceipts");
    legacy_path
        || api_version_of(request.uri())
            .and_then(|name| versions::chat_version(&name))
            .is_some_and(|v| v.legacy)
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
/// injected faults and throttling answer in this shape too; it rewrites from the error value
/// `ApiError` leaves on its response, never by parsing a body.
pub async fn flatten_error(mut response: Response) -> Response {
    let Some(error) = response.extensions_mut().remove::<CommunicationError>() else {
        return response;
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let body = json!({ "code": error.code, "message": error.message });
    Response::from_parts(parts, axum::body::Body::from(body.to_string()))
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

/// The members for the chat layer, in request order.
fn member_requests(
    members: Vec<ChatThreadMember>,
) -> (Vec<String>, Vec<crate::chat::ParticipantRequest>) {
    let order = members.iter().map(|m| m.id.clone()).collect();
    let requested = members
        .into_iter()
        .map(|m| m.into_participant().into_request(preview2_version()))
        .collect();
    (order, requested)
}

/// One 207 entry per requested member: 201, or the status it was refused with.
fn member_entries(order: &[String], rejected: &[RejectedParticipant]) -> Vec<Value> {
    order
        .iter()
        .map(|id| match rejected.iter().find(|r| r.id == *id) {
            Some(r) => status_entry(id, r.status, "ThreadMember", Some(r.reason)),
            None => status_entry(id, 201, "ThreadMember", None),
        })
        .collect()
}

/// This surface's version row.
fn preview2_version() -> &'static versions::ChatVersion {
    versions::chat_version(PREVIEW2).unwrap_or(&versions::CHAT_VERSIONS[0])
}

/// Chat_CreateChatThread (preview2): POST /chat/threads → 207 `{multipleStatus}` + `Location`.
///
/// The SDK takes the thread id from the entry with `"type": "Thread"` and needs its
/// `statusCode` to be 201 (recorded service answers list the members first, the thread last).
async fn create_chat_thread(
    State(state): State<AppState>,
    _: Preview2Api,
    user: AcsUser,
    base: BaseUrl,
    AcsJson(request): AcsJson<CreateChatThreadRequest>,
) -> ApiResult<Response> {
    let (order, participants) = member_requests(request.members);
    let draft = ThreadDraft {
        topic: request.topic,
        participants,
        metadata: Metadata::new(),
        retention_policy: None,
    };
    let created = state
        .chat
        .create_thread(&user, Ok(draft), None, |_, _| String::new())
        .await?;
    let mut entries = member_entries(&order, &created.rejected);
    entries.push(status_entry(&created.thread_id, 201, "Thread", None));
    let mut response = multi_status(entries);
    let location = format!(
        "{}/chat/threads/{}",
        base.0,
        thread_path_segment(&created.thread_id)
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
    _: Preview2Api,
    user: AcsUser,
    base: BaseUrl,
    page: PageQuery,
) -> ApiResult<Response> {
    threads_page(&state, &user, &base, &page, PREVIEW2, |t| {
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

/// Every member (a thread has at most `MAX_PARTICIPANTS`; the 2020 SDK sends no paging
/// parameters).
async fn all_members(state: &AppState, user: &AcsUser, thread_id: &str) -> ApiResult<Vec<Value>> {
    let (rows, _) = state
        .chat
        .list_participants(user, thread_id, 0, MAX_PARTICIPANTS as u32)
        .await?;
    Ok(rows
        .iter()
        .map(|p| member(&ParticipantSnapshot::from(p)))
        .collect())
}

/// ChatThread_GetChatThread (preview2): `{id, topic, createdOn, createdBy, members}`.
async fn get_chat_thread(
    State(state): State<AppState>,
    _: Preview2Api,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
) -> ApiResult<Response> {
    let thread = state.chat.get_thread(&user, &thread_id).await?;
    let body = json!({
        "id": thread.id,
        "topic": thread.topic,
        "createdOn": to_wire(thread.created_at),
        "createdBy": thread.created_by,
        "members": all_members(&state, &user, &thread_id).await?,
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// ChatThread_UpdateChatThread (preview2): PATCH `{topic}` → 200, empty.
async fn update_chat_thread(
    State(state): State<AppState>,
    _: Preview2Api,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
    OptionalJson(request): OptionalJson<UpdateRequest>,
) -> ApiResult<StatusCode> {
    let change = ThreadChange {
        topic: request.topic,
        ..ThreadChange::default()
    };
    state.chat.update_thread(&user, &thread_id, change).await?;
    Ok(StatusCode::OK)
}

/// Chat_DeleteChatThread (preview2): 204, twice too.
async fn delete_chat_thread(
    State(state): State<AppState>,
    _: Preview2Api,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
) -> ApiResult<StatusCode> {
    state.chat.delete_thread(&user, &thread_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// ChatThread_SendChatMessage (preview2): 201 `{id}` + `Location`.
async fn send_chat_message(
    State(state): State<AppState>,
    _: Preview2Api,
    user: AcsUser,
    base: BaseUrl,
    AcsPath(thread_id): AcsPath<String>,
    AcsJson(request): AcsJson<SendChatMessageRequest>,
) -> ApiResult<Response> {
    let draft = MessageDraft {
        content: request.content,
        sender_display_name: request.sender_display_name,
        priority: Some(request.priority),
        ..MessageDraft::default()
    };
    send_and_answer(&state, &user, &base, &thread_id, draft).await
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
    let (kind, content) = match m.kind {
        MessageKind::TopicUpdated => (
            "ThreadActivity/TopicUpdate",
            format!(
                "<topicupdate><eventtime>{}</eventtime><initiator>{initiator}</initiator><value>{}</value></topicupdate>",
                m.id,
                xml(stored.topic.as_deref().unwrap_or_default())
            ),
        ),
        MessageKind::ParticipantAdded => ("ThreadActivity/AddMember", members_xml("addmember")),
        MessageKind::ParticipantRemoved => {
            ("ThreadActivity/DeleteMember", members_xml("deletemember"))
        }
        MessageKind::Text | MessageKind::Html => {
            ("Text", stored.message.clone().unwrap_or_default())
        }
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
    _: Preview2Api,
    user: AcsUser,
    base: BaseUrl,
    AcsPath(thread_id): AcsPath<String>,
    page: PageQuery,
) -> ApiResult<Response> {
    messages_page(&state, &user, &thread_id, &base, &page, PREVIEW2, |m| {
        render_message(m, &thread_id)
    })
    .await
}

/// ChatThread_GetChatMessage (preview2).
async fn get_chat_message(
    State(state): State<AppState>,
    _: Preview2Api,
    user: AcsUser,
    AcsPath((thread_id, message_id)): AcsPath<(String, String)>,
) -> ApiResult<Response> {
    let message = state
        .chat
        .get_message(&user, &thread_id, &message_id)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &render_message(&message, &thread_id),
    ))
}

/// ChatThread_UpdateChatMessage (preview2): PATCH `{content}` → 200, empty. The priority is
/// fixed at send time (the SDK never sends one here); a given one is still checked.
async fn update_chat_message(
    State(state): State<AppState>,
    _: Preview2Api,
    user: AcsUser,
    AcsPath((thread_id, message_id)): AcsPath<(String, String)>,
    OptionalJson(request): OptionalJson<UpdateRequest>,
) -> ApiResult<StatusCode> {
    let change = MessageChange {
        content: request.content,
        priority: request.priority,
        ..MessageChange::default()
    };
    state
        .chat
        .edit_message(&user, &thread_id, &message_id, change)
        .await?;
    Ok(StatusCode::OK)
}

/// ChatThread_DeleteChatMessage (preview2): 204.
async fn delete_chat_message(
    State(state): State<AppState>,
    _: Preview2Api,
    user: AcsUser,
    AcsPath((thread_id, message_id)): AcsPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .chat
        .delete_message(&user, &thread_id, &message_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// ChatThread_ListChatThreadMembers: every member.
async fn list_chat_thread_members(
    State(state): State<AppState>,
    _: Preview2Api,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
) -> ApiResult<Response> {
    Ok(page_response(
        all_members(&state, &user, &thread_id).await?,
        None,
    ))
}

/// ChatThread_AddChatThreadMembers: 207 with one `ThreadMember` entry per requested member.
async fn add_chat_thread_members(
    State(state): State<AppState>,
    _: Preview2Api,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
    AcsJson(request): AcsJson<AddChatThreadMembersRequest>,
) -> ApiResult<Response> {
    let (order, requested) = member_requests(request.members);
    let rejected = state
        .chat
        .add_participants(&user, &thread_id, Ok(requested))
        .await?;
    Ok(multi_status(member_entries(&order, &rejected)))
}

/// ChatThread_RemoveChatThreadMember: DELETE …/members/{chatMemberId} → 204.
async fn remove_chat_thread_member(
    State(state): State<AppState>,
    _: Preview2Api,
    user: AcsUser,
    AcsPath((thread_id, member_id)): AcsPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .chat
        .remove_participant(&user, &thread_id, Ok(member_id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// ChatThread_ListChatReadReceipts (preview2): `{senderId, chatMessageId, readOn}`, latest per
/// member.
async fn list_chat_read_receipts(
    State(state): State<AppState>,
    _: Preview2Api,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
) -> ApiResult<Response> {
    let (rows, _) = state
        .chat
        .list_read_receipts(&user, &thread_id, 0, MAX_PARTICIPANTS as u32)
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
    _: Preview2Api,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
    AcsJson(request): AcsJson<SendReadReceiptRequest>,
) -> ApiResult<StatusCode> {
    state
        .chat
        .send_read_receipt(&user, &thread_id, request.chat_message_id)
        .await?;
    Ok(StatusCode::CREATED)
}

/// ChatThread_SendTypingNotification (preview2): no body → 200.
async fn send_typing_notification(
    State(state): State<AppState>,
    _: Preview2Api,
    user: AcsUser,
    AcsPath(thread_id): AcsPath<String>,
) -> ApiResult<StatusCode> {
    state.chat.send_typing(&user, &thread_id, None).await?;
    Ok(StatusCode::OK)
}
