//! Messages, user and system ones, and the per-thread id and sequence counters.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::{DbError, Metadata, Store, merge_metadata, metadata_to_text};

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

/// A message to append.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// `text`, `html`, `topicUpdated`, `participantAdded` or `participantRemoved`.
    pub kind: &'static str,
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
    pub kind: String,
    pub sender_id: Option<String>,
    pub sender_display_name: Option<String>,
    pub content: String,
    pub metadata: String,
    pub created_at: i64,
    pub version: i64,
    pub edited_at: Option<i64>,
    pub deleted_at: Option<i64>,
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
    let content = serde_json::to_string(&message.content).unwrap_or_else(|_| "{}".to_owned());
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

impl Store {
    /// Appends a user message to a thread; returns its id.
    pub async fn send_message(
        &self,
        thread_id: &str,
        message: NewMessage,
        now: i64,
    ) -> Result<i64, DbError> {
        let thread_id = thread_id.to_owned();
        self.db
            .write(move |tx| append_message(tx, &thread_id, &message, now))
            .await
    }

    /// One message of a thread.
    pub async fn get_message(
        &self,
        thread_id: &str,
        id: i64,
    ) -> Result<Option<MessageRow>, DbError> {
        self.db.read(|conn| {
            conn.prepare_cached(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages WHERE thread_id = ? AND id = ?"
            ))?
            .query_row(params![thread_id, id], MessageRow::from_row)
            .optional()
        })
    }

    /// A page of messages, newest first: those created at or after both `visible_from` (the
    /// reader's history share time) and `start_time`, below `before_sequence` when continuing.
    pub async fn list_messages_page(
        &self,
        thread_id: &str,
        visible_from: i64,
        start_time: Option<i64>,
        before_sequence: Option<i64>,
        limit: u32,
    ) -> Result<MessagesPage, DbError> {
        let from = visible_from.max(start_time.unwrap_or(i64::MIN));
        let mut messages = self.db.read(|conn| {
            conn.prepare_cached(LIST_MESSAGES)?
                .query_map(
                    params![
                        thread_id,
                        from,
                        before_sequence.unwrap_or(i64::MAX),
                        i64::from(limit) + 1
                    ],
                    MessageRow::from_row,
                )?
                .collect::<Result<Vec<_>, _>>()
        })?;
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

    /// Edits a message's content and merges its metadata; sets `editedOn` and a new version.
    pub async fn update_message(
        &self,
        thread_id: &str,
        id: i64,
        content: Option<&str>,
        attachments: Option<&[StoredAttachment]>,
        metadata_patch: &std::collections::BTreeMap<String, Option<String>>,
        now: i64,
    ) -> Result<bool, DbError> {
        let thread_id = thread_id.to_owned();
        let content = content.map(str::to_owned);
        let attachments = attachments.map(<[StoredAttachment]>::to_vec);
        let metadata_patch = metadata_patch.clone();
        self.db
            .write(move |tx| {
                let Some((stored_content, stored_metadata, stored_version)) = tx
                    .prepare_cached(
                        "SELECT content, metadata, version FROM messages
                         WHERE thread_id = ? AND id = ? AND deleted_at IS NULL",
                    )?
                    .query_row(params![thread_id, id], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, i64>(2)?,
                        ))
                    })
                    .optional()?
                else {
                    return Ok(false);
                };
                let mut stored: MessageContent =
                    serde_json::from_str(&stored_content).unwrap_or_default();
                if let Some(text) = content {
                    stored.message = Some(text);
                }
                if let Some(attachments) = attachments {
                    stored.attachments = attachments;
                }
                let mut metadata = super::metadata_from_text(&stored_metadata);
                merge_metadata(&mut metadata, &metadata_patch);
                // The version is the edit time in milliseconds, kept strictly increasing.
                let version = (now / 1000).max(stored_version + 1);
                tx.prepare_cached(
                    "UPDATE messages SET content = ?, metadata = ?, edited_at = ?, version = ?
                     WHERE thread_id = ? AND id = ?",
                )?
                .execute(params![
                    serde_json::to_string(&stored).unwrap_or_else(|_| "{}".to_owned()),
                    metadata_to_text(&metadata),
                    now,
                    version,
                    thread_id,
                    id,
                ])?;
                Ok(true)
            })
            .await
    }

    /// Soft-deletes a message: it stays, with `deletedOn` set and its content emptied.
    /// Deleting an already deleted message changes nothing.
    pub async fn delete_message(&self, thread_id: &str, id: i64, now: i64) -> Result<(), DbError> {
        let thread_id = thread_id.to_owned();
        self.db
            .write(move |tx| {
                tx.prepare_cached(
                    "UPDATE messages SET deleted_at = ?1, content = '{\"message\":\"\"}', metadata = '{}',
                                         version = MAX(version + 1, ?1 / 1000)
                     WHERE thread_id = ?2 AND id = ?3 AND deleted_at IS NULL",
                )?
                .execute(params![now, thread_id, id])?;
                Ok(())
            })
            .await
    }
}
