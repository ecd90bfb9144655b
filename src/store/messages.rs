//! Messages, user and system ones, and the per-thread id and sequence counters.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::{DbError, Error, Metadata, Tx, View, metadata_to_text};

/// A participant as recorded inside a `participantAdded`/`participantRemoved` system message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantSnapshot {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default)]
    pub share_history_time: i64,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

/// An attachment of a message: an image uploaded to the thread (2024-03-15-preview).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StoredAttachment {
    pub id: String,
    pub attachment_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The stored content of a message (the `content` column, JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MessageContent {
    /// Text of a `text`/`html` message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// New topic of a `topicUpdated` message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Added or removed participants of a `participantAdded`/`participantRemoved` message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participants: Option<Vec<ParticipantSnapshot>>,
    /// Who caused a system message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator: Option<String>,
    /// Attached images of a `text`/`html` message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<StoredAttachment>,
    /// `Normal` or `High`: only the 2020 preview sends and shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
}

/// What a message is: a user's text or html, or one of the service's system messages. Stored
/// (and sent in `type`) as the service spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Text,
    Html,
    TopicUpdated,
    ParticipantAdded,
    ParticipantRemoved,
}

impl MessageKind {
    /// Every kind, in the order of the spec's `ChatMessageType`.
    pub const ALL: [MessageKind; 5] = [
        MessageKind::Text,
        MessageKind::Html,
        MessageKind::TopicUpdated,
        MessageKind::ParticipantAdded,
        MessageKind::ParticipantRemoved,
    ];

    /// The service's name (`ChatMessageType`).
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Text => "text",
            MessageKind::Html => "html",
            MessageKind::TopicUpdated => "topicUpdated",
            MessageKind::ParticipantAdded => "participantAdded",
            MessageKind::ParticipantRemoved => "participantRemoved",
        }
    }

    /// The kind the service calls `name`, exactly.
    pub fn from_name(name: &str) -> Option<Self> {
        MessageKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether users send this kind (the others are system messages).
    pub fn is_user_message(self) -> bool {
        matches!(self, MessageKind::Text | MessageKind::Html)
    }
}

impl rusqlite::types::ToSql for MessageKind {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for MessageKind {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let name = value.as_str()?;
        MessageKind::from_name(name).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(format!("unknown message type {name}").into())
        })
    }
}

/// A message to append.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub kind: MessageKind,
    pub sender_id: Option<String>,
    pub sender_display_name: Option<String>,
    pub content: MessageContent,
    pub metadata: Metadata,
}

/// One stored message.
#[derive(Debug, Clone)]
pub struct MessageRow {
    pub id: i64,
    pub sequence_id: i64,
    pub kind: MessageKind,
    pub sender_id: Option<String>,
    pub sender_display_name: Option<String>,
    pub content: String,
    pub metadata: String,
    pub created_at: i64,
    pub version: i64,
    pub edited_at: Option<i64>,
    pub deleted_at: Option<i64>,
}

impl NewMessage {
    /// A system message: no sender, no metadata.
    pub fn system(kind: MessageKind, content: MessageContent) -> Self {
        NewMessage {
            kind,
            sender_id: None,
            sender_display_name: None,
            content,
            metadata: Metadata::new(),
        }
    }
}

impl MessageContent {
    /// The `content` column's JSON.
    pub(super) fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

impl MessageRow {
    /// The decoded content; a damaged column reads as empty content.
    pub fn content(&self) -> MessageContent {
        serde_json::from_str(&self.content).unwrap_or_default()
    }

    /// Reads a row selected with `message_columns!`.
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(MessageRow {
            id: row.get(0)?,
            sequence_id: row.get(1)?,
            kind: row.get(2)?,
            sender_id: row.get(3)?,
            sender_display_name: row.get(4)?,
            content: row.get(5)?,
            metadata: row.get(6)?,
            created_at: row.get(7)?,
            version: row.get(8)?,
            edited_at: row.get(9)?,
            deleted_at: row.get(10)?,
        })
    }
}

/// One page of messages, newest first.
#[derive(Debug)]
pub struct MessagesPage {
    pub messages: Vec<MessageRow>,
    /// Sequence id to continue below, when more messages remain.
    pub next_before_sequence: Option<i64>,
}

/// The columns `MessageRow::from_row` reads, in order.
macro_rules! message_columns {
    () => {
        "id, sequence_id, type, sender_id, sender_display_name, content, metadata, created_at, \
         version, edited_at, deleted_at"
    };
}
pub(super) use message_columns;

/// Appends a message inside the caller's transaction and returns its id. Ids are epoch
/// milliseconds, strictly increasing per thread (bumped past the last id when two messages fall
/// in the same millisecond); sequence ids count every message, system ones included.
pub(super) fn append_message(
    conn: &Connection,
    thread_id: &str,
    message: &NewMessage,
    now: i64,
) -> Result<i64, DbError> {
    // Claim the next sequence number and id in the same statement that records them.
    let (sequence, id): (i64, i64) = conn
        .prepare_cached(
            "UPDATE threads SET last_sequence_id = last_sequence_id + 1,
                                last_message_id = MAX(?, last_message_id + 1),
                                last_message_at = ?
             WHERE id = ? RETURNING last_sequence_id, last_message_id",
        )?
        .query_row(params![now / 1000, now, thread_id], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    let content = message.content.to_text();
    conn.prepare_cached(
        "INSERT INTO messages (thread_id, id, sequence_id, type, sender_id, sender_display_name,
                               content, metadata, created_at, version)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        thread_id,
        id,
        sequence,
        message.kind,
        message.sender_id,
        message.sender_display_name,
        content,
        metadata_to_text(&message.metadata),
        now,
        id,
    ])?;
    Ok(id)
}

/// A page of messages (`list_messages_page`).
pub(super) const LIST_MESSAGES: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE thread_id = ?1 AND created_at >= ?2 AND sequence_id < ?3
         ORDER BY sequence_id DESC LIMIT ?4"
);

impl View<'_> {
    /// One message of a thread, deleted or not.
    pub fn message(&self, thread_id: &str, id: i64) -> Result<Option<MessageRow>, Error> {
        Ok(self
            .conn
            .prepare_cached(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages WHERE thread_id = ? AND id = ?"
            ))?
            .query_row(params![thread_id, id], MessageRow::from_row)
            .optional()?)
    }

    /// A page of messages, newest first: those created at or after both `visible_from` (the
    /// reader's history share time) and `start_time`, below `before_sequence` when continuing.
    pub fn messages_page(
        &self,
        thread_id: &str,
        visible_from: i64,
        start_time: Option<i64>,
        before_sequence: Option<i64>,
        limit: u32,
    ) -> Result<MessagesPage, Error> {
        let from = visible_from.max(start_time.unwrap_or(i64::MIN));
        let mut messages = self
            .conn
            .prepare_cached(LIST_MESSAGES)?
            .query_map(
                params![
                    thread_id,
                    from,
                    before_sequence.unwrap_or(i64::MAX),
                    i64::from(limit) + 1
                ],
                MessageRow::from_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        let next_before_sequence = if messages.len() > limit as usize {
            messages.truncate(limit as usize);
            messages.last().map(|m| m.sequence_id)
        } else {
            None
        };
        Ok(MessagesPage {
            messages,
            next_before_sequence,
        })
    }
}

/// A change of a message's content, already merged and checked by the chat layer.
#[derive(Debug, Clone, Default)]
pub struct MessageEdit {
    /// The new content (text and attachments), when it changes.
    pub content: Option<MessageContent>,
    /// The whole new metadata map (the merge patch applied).
    pub metadata: Option<Metadata>,
}

impl Tx<'_> {
    /// Appends a message to a thread; returns its id.
    pub fn append_message(
        &self,
        thread_id: &str,
        message: &NewMessage,
        now: i64,
    ) -> Result<i64, Error> {
        Ok(append_message(self.conn(), thread_id, message, now)?)
    }

    /// Edits a message: sets `editedOn` and a new version, which it returns. The version is
    /// the edit time in milliseconds, kept strictly increasing.
    pub fn edit_message(
        &self,
        thread_id: &str,
        message: &MessageRow,
        edit: &MessageEdit,
        now: i64,
    ) -> Result<i64, Error> {
        let version = (now / 1000).max(message.version + 1);
        self.conn()
            .prepare_cached(
                "UPDATE messages SET content = COALESCE(?, content), metadata = COALESCE(?, metadata),
                                     edited_at = ?, version = ?
                 WHERE thread_id = ? AND id = ?",
            )?
            .execute(params![
                edit.content.as_ref().map(MessageContent::to_text),
                edit.metadata.as_ref().map(metadata_to_text),
                now,
                version,
                thread_id,
                message.id,
            ])?;
        Ok(version)
    }

    /// Soft-deletes a message: it stays, with `deletedOn` set and its content emptied.
    /// Returns its new version; `None` (nothing changes) if it was deleted already.
    pub fn delete_message(&self, thread_id: &str, id: i64, now: i64) -> Result<Option<i64>, Error> {
        Ok(self
            .conn()
            .prepare_cached(
                "UPDATE messages SET deleted_at = ?1, content = '{\"message\":\"\"}', metadata = '{}',
                                     version = MAX(version + 1, ?1 / 1000)
                 WHERE thread_id = ?2 AND id = ?3 AND deleted_at IS NULL
                 RETURNING version",
            )?
            .query_row(params![now, thread_id, id], |row| row.get(0))
            .optional()?)
    }
}
