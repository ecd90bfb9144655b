//! Messages: send, list and get (what the reader may see), edit and delete (the sender only).

use super::access::{own_message, participant, visible_message};
use super::events::{ChangeEvents, MessageFacts, others};
use super::limits::{MetadataPatch, check_content_size, check_metadata_size, merged_metadata};
use super::{Caller, Chat};
use crate::error::{ApiError, ApiResult};
use crate::store::{
    MessageContent, MessageEdit, MessageKind, MessageRow, MessagesPage, Metadata, NewMessage,
    StoredAttachment, View, metadata_from_text,
};

/// A message as a send request asks for it.
#[derive(Debug, Default)]
pub struct MessageDraft {
    pub content: Option<String>,
    /// `text` (the default) or `html`, in any case.
    pub kind: Option<String>,
    pub sender_display_name: Option<String>,
    /// Empty where the api-version has no message metadata.
    pub metadata: Metadata,
    /// `None` where the api-version cannot attach images.
    pub attachments: Option<Vec<AttachmentRequest>>,
    /// The 2020 preview's `Normal` or `High`; `None` on today's surface.
    pub priority: Option<Option<String>>,
}

/// A `ChatAttachment` in a request: a reference to an image uploaded to the thread.
#[derive(Debug, Clone)]
pub struct AttachmentRequest {
    pub id: String,
    pub attachment_type: Option<String>,
    pub name: Option<String>,
}

/// What an edit asks for (merge patch: absent fields stay as they are).
#[derive(Debug, Default)]
pub struct MessageChange {
    pub content: Option<String>,
    pub metadata: MetadataPatch,
    /// Replaces the attachments; `None` where the api-version cannot attach images.
    pub attachments: Option<Vec<AttachmentRequest>>,
    /// The 2020 preview's priority: checked, but fixed at send time.
    pub priority: Option<String>,
}

/// Only text and html can be sent; the other types are the service's system messages.
pub(crate) fn user_message_kind(kind: Option<&str>) -> ApiResult<MessageKind> {
    match kind.map(str::to_ascii_lowercase).as_deref() {
        None | Some("text") => Ok(MessageKind::Text),
        Some("html") => Ok(MessageKind::Html),
        Some(other) => Err(ApiError::bad_request(format!(
            "Message type '{other}' cannot be sent; use 'text' or 'html'."
        ))),
    }
}

/// `Normal` (the default) or `High`, in the 2020 preview spec's case.
fn priority(value: Option<&str>) -> ApiResult<String> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("normal") => Ok("Normal".to_owned()),
        Some("high") => Ok("High".to_owned()),
        Some(other) => Err(ApiError::bad_request(format!(
            "Priority '{other}' is not valid; use Normal or High."
        ))),
    }
}

/// Checks requested attachments against the thread's uploaded images. ACS threads can attach
/// only uploaded images (`file` attachments exist only in Teams interop, which the emulator
/// does not have).
fn attachments(
    view: &View<'_>,
    thread_id: &str,
    requested: Vec<AttachmentRequest>,
) -> ApiResult<Vec<StoredAttachment>> {
    let mut stored = Vec::with_capacity(requested.len());
    for a in requested {
        let kind = a.attachment_type.as_deref().unwrap_or("image");
        if kind != "image" {
            return Err(ApiError::bad_request(format!(
                "Attachment type '{kind}' is not supported here; attach images uploaded to the thread."
            )));
        }
        let image = view.image(thread_id, &a.id)?.ok_or_else(|| {
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
    Ok(stored)
}

impl Chat {
    /// Sends a user message; returns its id. The sender must be a participant when the
    /// message is written.
    pub async fn send_message(
        &self,
        caller: &Caller,
        thread_id: &str,
        draft: MessageDraft,
    ) -> ApiResult<i64> {
        let (caller, thread_id, now) = (caller.clone(), thread_id.to_owned(), self.now());
        self.write(move |tx, resource| {
            participant(tx, &thread_id, &caller)?;
            let content = draft
                .content
                .ok_or_else(|| ApiError::bad_request("The content field is required."))?;
            check_content_size(&content)?;
            let kind = user_message_kind(draft.kind.as_deref())?;
            let priority = draft.priority.map(|p| priority(p.as_deref())).transpose()?;
            check_metadata_size(&draft.metadata)?;
            let attachments = match draft.attachments {
                Some(requested) => attachments(tx, &thread_id, requested)?,
                None => Vec::new(),
            };
            let message = NewMessage {
                kind,
                sender_id: Some(caller.id.clone()),
                sender_display_name: draft.sender_display_name,
                content: MessageContent {
                    message: Some(content),
                    attachments,
                    priority,
                    ..MessageContent::default()
                },
                metadata: draft.metadata,
            };
            let id = tx.append_message(&thread_id, &message, now)?;
            let participants = tx.participants(&thread_id)?;
            let facts = MessageFacts {
                id,
                kind,
                sender: &caller.id,
                sender_display_name: message.sender_display_name.as_deref(),
                created_at: now,
                // A new message's version is its id.
                version: id,
                body: message.content.message.as_deref().unwrap_or_default(),
                metadata: &message.metadata,
            };
            ChangeEvents::new(tx, &resource.arm_id, &thread_id, now)
                .message_received(&facts, &others(&participants, &caller.id))?;
            Ok(id)
        })
        .await
    }

    /// A page of the messages the caller may see (from their history share time on), newest
    /// first, system and deleted messages included, at or after `start_time`, below
    /// `before_sequence` when continuing.
    pub async fn list_messages(
        &self,
        caller: &Caller,
        thread_id: &str,
        start_time: Option<i64>,
        before_sequence: Option<i64>,
        limit: u32,
    ) -> ApiResult<MessagesPage> {
        self.store.read(|view| {
            let (_, me) = participant(&view, thread_id, caller)?;
            Ok(view.messages_page(
                thread_id,
                me.share_history_time,
                start_time,
                before_sequence,
                limit,
            )?)
        })
    }

    /// One message the caller may see.
    pub async fn get_message(
        &self,
        caller: &Caller,
        thread_id: &str,
        message_id: &str,
    ) -> ApiResult<MessageRow> {
        self.store.read(|view| {
            let (_, me) = participant(&view, thread_id, caller)?;
            visible_message(&view, thread_id, &me, message_id)
        })
    }

    /// Edits a message of the caller's (not a deleted one): content within the size limit,
    /// metadata merged within its limit, attachments replaced.
    pub async fn edit_message(
        &self,
        caller: &Caller,
        thread_id: &str,
        message_id: &str,
        change: MessageChange,
    ) -> ApiResult<()> {
        let (caller, thread_id, message_id) =
            (caller.clone(), thread_id.to_owned(), message_id.to_owned());
        let now = self.now();
        self.write(move |tx, resource| {
            let message = own_message(tx, &thread_id, &caller, &message_id, true)?;
            if let Some(content) = &change.content {
                check_content_size(content)?;
            }
            if change.priority.is_some() {
                priority(change.priority.as_deref())?;
            }
            let stored_metadata = metadata_from_text(&message.metadata);
            let metadata = if change.metadata.is_empty() {
                None
            } else {
                Some(merged_metadata(stored_metadata.clone(), &change.metadata)?)
            };
            let attachments = change
                .attachments
                .map(|requested| attachments(tx, &thread_id, requested))
                .transpose()?;
            let mut content = message.content();
            if let Some(text) = change.content {
                content.message = Some(text);
            }
            if let Some(attachments) = attachments {
                content.attachments = attachments;
            }
            let edit = MessageEdit {
                content: Some(content),
                metadata,
            };
            let version = tx.edit_message(&thread_id, &message, &edit, now)?;
            let participants = tx.participants(&thread_id)?;
            let facts = MessageFacts {
                id: message.id,
                kind: message.kind,
                sender: &caller.id,
                sender_display_name: message.sender_display_name.as_deref(),
                created_at: message.created_at,
                version,
                body: edit
                    .content
                    .as_ref()
                    .and_then(|c| c.message.as_deref())
                    .unwrap_or_default(),
                metadata: edit.metadata.as_ref().unwrap_or(&stored_metadata),
            };
            ChangeEvents::new(tx, &resource.arm_id, &thread_id, now)
                .message_edited(&facts, &others(&participants, &caller.id))
        })
        .await
    }

    /// Deletes a message of the caller's (soft: it stays with `deletedOn`, emptied).
    pub async fn delete_message(
        &self,
        caller: &Caller,
        thread_id: &str,
        message_id: &str,
    ) -> ApiResult<()> {
        let (caller, thread_id, message_id) =
            (caller.clone(), thread_id.to_owned(), message_id.to_owned());
        let now = self.now();
        self.write(move |tx, resource| {
            let message = own_message(tx, &thread_id, &caller, &message_id, false)?;
            // Deleting a deleted message changes nothing, and emits nothing.
            let Some(version) = tx.delete_message(&thread_id, message.id, now)? else {
                return Ok(());
            };
            let participants = tx.participants(&thread_id)?;
            let metadata = Metadata::new();
            let facts = MessageFacts {
                id: message.id,
                kind: message.kind,
                sender: &caller.id,
                sender_display_name: message.sender_display_name.as_deref(),
                created_at: message.created_at,
                version,
                body: "",
                metadata: &metadata,
            };
            ChangeEvents::new(tx, &resource.arm_id, &thread_id, now)
                .message_deleted(&facts, &others(&participants, &caller.id))
        })
        .await
    }
}
