//! Messages, user and system ones, and the per-thread id and sequence counters.

use serde::{Deserialize, Serialize};
use sqlx::{FromRow, SqliteConnection};

use super::{Metadata, Store, merge_metadata, metadata_to_text};

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
#[derive(Debug, Clone, FromRow)]
pub struct MessageRow {
    pub id: i64,
    pub sequence_id: i64,
    #[sqlx(rename = "type")]
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
}

/// One page of messages, newest first.
#[derive(Debug)]
pub struct MessagesPage {
    pub messages: Vec<MessageRow>,
    /// Sequence id to continue below, when more messages remain.
    pub next_before_sequence: Option<i64>,
}

const MESSAGE_COLUMNS: &str = "id, sequence_id, type, sender_id, sender_display_name, content, \
     metadata, created_at, version, edited_at, deleted_at";

/// Appends a message inside the caller's transaction and returns its id. Ids are epoch
/// milliseconds, strictly increasing per thread (bumped past the last id when two messages fall
/// in the same millisecond); sequence ids count every message, system ones included.
pub(super) async fn append_message(
    conn: &mut SqliteConnection,
    thread_id: &str,
    message: &NewMessage,
    now: i64,
) -> Result<i64, sqlx::Error> {
    // Claim the next sequence number and id in the same statement that records them (one round
    // trip fewer than read-then-write; the transaction makes it atomic either way).
    let (sequence, id): (i64, i64) = sqlx::query_as(
        "UPDATE threads SET last_sequence_id = last_sequence_id + 1,
                            last_message_id = MAX(?, last_message_id + 1),
                            last_message_at = ?
         WHERE id = ? RETURNING last_sequence_id, last_message_id",
    )
    .bind(now / 1000)
    .bind(now)
    .bind(thread_id)
    .fetch_one(&mut *conn)
    .await?;
    let content = serde_json::to_string(&message.content).unwrap_or_else(|_| "{}".to_owned());
    sqlx::query(
        "INSERT INTO messages (thread_id, id, sequence_id, type, sender_id, sender_display_name,
                               content, metadata, created_at, version)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(thread_id)
    .bind(id)
    .bind(sequence)
    .bind(message.kind)
    .bind(&message.sender_id)
    .bind(&message.sender_display_name)
    .bind(content)
    .bind(metadata_to_text(&message.metadata))
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

impl Store {
    /// Appends a user message to a thread; returns its id.
    pub async fn send_message(
        &self,
        thread_id: &str,
        message: &NewMessage,
        now: i64,
    ) -> Result<i64, sqlx::Error> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let id = append_message(&mut tx, thread_id, message, now).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// One message of a thread.
    pub async fn get_message(
        &self,
        thread_id: &str,
        id: i64,
    ) -> Result<Option<MessageRow>, sqlx::Error> {
        sqlx::query_as::<_, MessageRow>(
            "SELECT id, sequence_id, type, sender_id, sender_display_name, content, metadata,
                    created_at, version, edited_at, deleted_at
             FROM messages WHERE thread_id = ? AND id = ?",
        )
        .bind(thread_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
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
    ) -> Result<MessagesPage, sqlx::Error> {
        let mut query = sqlx::QueryBuilder::new("SELECT ");
        query.push(MESSAGE_COLUMNS);
        query
            .push(" FROM messages WHERE thread_id = ")
            .push_bind(thread_id);
        query
            .push(" AND created_at >= ")
            .push_bind(visible_from.max(start_time.unwrap_or(i64::MIN)));
        if let Some(before) = before_sequence {
            query.push(" AND sequence_id < ").push_bind(before);
        }
        query
            .push(" ORDER BY sequence_id DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let mut messages: Vec<MessageRow> = query.build_query_as().fetch_all(&self.pool).await?;
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
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let Some(row) = sqlx::query_as::<_, (String, String, i64)>(
            "SELECT content, metadata, version FROM messages WHERE thread_id = ? AND id = ? AND deleted_at IS NULL",
        )
        .bind(thread_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(false);
        };
        let mut stored: MessageContent = serde_json::from_str(&row.0).unwrap_or_default();
        if let Some(text) = content {
            stored.message = Some(text.to_owned());
        }
        if let Some(attachments) = attachments {
            stored.attachments = attachments.to_vec();
        }
        let mut metadata = super::metadata_from_text(&row.1);
        merge_metadata(&mut metadata, metadata_patch);
        // The version is the edit time in milliseconds, kept strictly increasing.
        let version = (now / 1000).max(row.2 + 1);
        sqlx::query(
            "UPDATE messages SET content = ?, metadata = ?, edited_at = ?, version = ?
             WHERE thread_id = ? AND id = ?",
        )
        .bind(serde_json::to_string(&stored).unwrap_or_else(|_| "{}".to_owned()))
        .bind(metadata_to_text(&metadata))
        .bind(now)
        .bind(version)
        .bind(thread_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Soft-deletes a message: it stays, with `deletedOn` set and its content emptied.
    /// Deleting an already deleted message changes nothing.
    pub async fn delete_message(
        &self,
        thread_id: &str,
        id: i64,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE messages SET deleted_at = ?, content = '{\"message\":\"\"}', metadata = '{}',
                                 version = MAX(version + 1, ? / 1000)
             WHERE thread_id = ? AND id = ? AND deleted_at IS NULL",
        )
        .bind(now)
        .bind(now)
        .bind(thread_id)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}
