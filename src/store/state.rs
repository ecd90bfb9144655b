//! The whole state as one document: export, import (replacing everything, in one
//! transaction), and reset. The document keeps every column, so export → reset → import →
//! export gives the same document.

use base64::Engine;
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, SqliteConnection};

use super::Store;
use crate::clock::serde_instant;

/// Tag of the document format; bumped when the shape changes incompatibly.
pub const STATE_FORMAT: &str = "acs-chat-emulator/state@1";

/// Everything the emulator knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateDocument {
    pub format: String,
    pub identities: Vec<IdentityState>,
    pub threads: Vec<ThreadState>,
    #[serde(default)]
    pub repeatability: Vec<RepeatabilityState>,
}

/// An identity and its token state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, FromRow)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentityState {
    pub id: String,
    #[serde(with = "serde_instant")]
    pub created_at: i64,
    #[serde(default, with = "serde_instant::option")]
    pub deleted_at: Option<i64>,
    #[serde(with = "serde_instant")]
    pub tokens_revoked_at: i64,
    #[serde(default, with = "serde_instant::option")]
    pub last_token_issued_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_id: Option<String>,
}

/// A thread with everything in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThreadState {
    pub id: String,
    pub topic: String,
    #[serde(with = "serde_instant")]
    pub created_at: i64,
    pub created_by: String,
    #[serde(default, with = "serde_instant::option")]
    pub deleted_at: Option<i64>,
    pub metadata: super::Metadata,
    pub retention_policy: Option<serde_json::Value>,
    #[serde(with = "serde_instant")]
    pub last_message_at: i64,
    pub last_sequence_id: i64,
    pub last_message_id: i64,
    pub next_participant: i64,
    pub participants: Vec<ParticipantState>,
    pub messages: Vec<MessageState>,
    pub read_receipts: Vec<ReadReceiptState>,
    /// Uploaded images (2024-03-15-preview); absent in documents from before they existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageState>,
}

/// An image uploaded to a thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageState {
    pub id: String,
    pub name: Option<String>,
    pub content_type: String,
    /// The image bytes, base64.
    pub data: String,
    #[serde(with = "serde_instant")]
    pub created_at: i64,
}

/// A participant of a thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParticipantState {
    pub user_id: String,
    pub display_name: Option<String>,
    #[serde(with = "serde_instant")]
    pub share_history_time: i64,
    pub metadata: super::Metadata,
    pub position: i64,
}

/// A message of a thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageState {
    pub id: i64,
    pub sequence_id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub sender_id: Option<String>,
    pub sender_display_name: Option<String>,
    pub content: super::MessageContent,
    pub metadata: super::Metadata,
    #[serde(with = "serde_instant")]
    pub created_at: i64,
    pub version: i64,
    #[serde(default, with = "serde_instant::option")]
    pub edited_at: Option<i64>,
    #[serde(default, with = "serde_instant::option")]
    pub deleted_at: Option<i64>,
}

/// A read receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadReceiptState {
    pub user_id: String,
    pub message_id: i64,
    #[serde(with = "serde_instant")]
    pub read_at: i64,
}

/// A remembered `repeatability-request-id` of thread creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, FromRow)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepeatabilityState {
    pub caller_id: String,
    pub request_id: String,
    pub request_hash: String,
    pub thread_id: String,
    pub body: String,
    #[serde(with = "serde_instant")]
    pub created_at: i64,
}

#[derive(FromRow)]
struct ThreadColumns {
    id: String,
    topic: String,
    created_at: i64,
    created_by: String,
    deleted_at: Option<i64>,
    metadata: String,
    retention_policy: Option<String>,
    last_message_at: i64,
    last_sequence_id: i64,
    last_message_id: i64,
    next_participant: i64,
}

#[derive(FromRow)]
struct ParticipantColumns {
    user_id: String,
    display_name: Option<String>,
    share_history_time: i64,
    metadata: String,
    position: i64,
}

#[derive(FromRow)]
struct ReceiptColumns {
    user_id: String,
    message_id: i64,
    read_at: i64,
}

/// What `clear` runs, children first.
const CLEAR_CHILDREN_FIRST: &[&str] = &[
    "DELETE FROM images",
    "DELETE FROM read_receipts",
    "DELETE FROM messages",
    "DELETE FROM participants",
    "DELETE FROM idempotency",
    "DELETE FROM threads",
];

/// Message types a document may contain.
const MESSAGE_TYPES: &[&str] = &[
    "text",
    "html",
    "topicUpdated",
    "participantAdded",
    "participantRemoved",
];

impl StateDocument {
    /// Checks what the schema cannot: the format tag, unique ids, and per-thread counters that
    /// are ahead of the rows they count (so new messages get fresh ids and sequence numbers).
    pub fn validate(&self) -> Result<(), String> {
        if self.format != STATE_FORMAT {
            return Err(format!(
                "format must be \"{STATE_FORMAT}\", not \"{}\"",
                self.format
            ));
        }
        let mut identities = std::collections::HashSet::new();
        for i in &self.identities {
            if !i.id.starts_with("8:acs:") || !identities.insert(i.id.as_str()) {
                return Err(format!("identity {} is malformed or listed twice", i.id));
            }
        }
        let mut threads = std::collections::HashSet::new();
        for t in &self.threads {
            crate::identifier::check_thread_id(&t.id).map_err(|e| e.to_string())?;
            if !threads.insert(t.id.as_str()) {
                return Err(format!("thread {} is listed twice", t.id));
            }
            let mut users = std::collections::HashSet::new();
            let mut positions = std::collections::HashSet::new();
            for p in &t.participants {
                if !users.insert(p.user_id.as_str())
                    || !positions.insert(p.position)
                    || p.position > t.next_participant
                {
                    return Err(format!(
                        "thread {}: participant {} is listed twice or its position is past nextParticipant",
                        t.id, p.user_id
                    ));
                }
            }
            let mut ids = std::collections::HashSet::new();
            let mut sequences = std::collections::HashSet::new();
            for m in &t.messages {
                if !ids.insert(m.id) || !sequences.insert(m.sequence_id) {
                    return Err(format!(
                        "thread {}: message {} or sequence {} is listed twice",
                        t.id, m.id, m.sequence_id
                    ));
                }
                if m.id > t.last_message_id || m.sequence_id > t.last_sequence_id {
                    return Err(format!(
                        "thread {}: message {} is past lastMessageId/lastSequenceId",
                        t.id, m.id
                    ));
                }
                if !MESSAGE_TYPES.contains(&m.kind.as_str()) {
                    return Err(format!(
                        "thread {}: message {} has unknown type {}",
                        t.id, m.id, m.kind
                    ));
                }
            }
            let mut images = std::collections::HashSet::new();
            for i in &t.images {
                if !images.insert(i.id.as_str())
                    || base64::engine::general_purpose::STANDARD
                        .decode(&i.data)
                        .is_err()
                {
                    return Err(format!(
                        "thread {}: image {} is listed twice or its data is not base64",
                        t.id, i.id
                    ));
                }
            }
            let mut readers = std::collections::HashSet::new();
            for r in &t.read_receipts {
                if !readers.insert(r.user_id.as_str()) {
                    return Err(format!(
                        "thread {}: two read receipts for {}",
                        t.id, r.user_id
                    ));
                }
            }
        }
        for r in &self.repeatability {
            if !threads.contains(r.thread_id.as_str()) {
                return Err(format!(
                    "repeatability record {} names unknown thread {}",
                    r.request_id, r.thread_id
                ));
            }
        }
        Ok(())
    }
}

impl Store {
    /// The whole state, in a stable order (ids, sequence ids, joining order).
    pub async fn export_state(&self) -> Result<StateDocument, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        // One read transaction: a consistent snapshot even while requests write.
        sqlx::query("BEGIN").execute(&mut *conn).await?;
        let result = export(&mut conn).await;
        sqlx::query("COMMIT").execute(&mut *conn).await?;
        result
    }

    /// Identities and their token state, by id.
    pub async fn export_identities(&self) -> Result<Vec<IdentityState>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        export_identities(&mut conn).await
    }

    /// Every thread (or only `id`) with everything in it, in one read transaction.
    pub async fn export_threads(
        &self,
        only: Option<&str>,
    ) -> Result<Vec<ThreadState>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("BEGIN").execute(&mut *conn).await?;
        let result = export_threads(&mut conn, only).await;
        sqlx::query("COMMIT").execute(&mut *conn).await?;
        result
    }

    /// Replaces the whole state with `document`, in one transaction: on any error nothing
    /// changes.
    pub async fn import_state(&self, document: &StateDocument) -> Result<(), sqlx::Error> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        clear(&mut tx, false).await?;
        import(&mut tx, document).await?;
        tx.commit().await?;
        self.identities.clear();
        Ok(())
    }

    /// Deletes all state; with `keep_identities`, identities and their token state stay.
    pub async fn reset(&self, keep_identities: bool) -> Result<(), sqlx::Error> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        clear(&mut tx, keep_identities).await?;
        tx.commit().await?;
        self.identities.clear();
        Ok(())
    }
}

async fn clear(conn: &mut SqliteConnection, keep_identities: bool) -> Result<(), sqlx::Error> {
    for statement in CLEAR_CHILDREN_FIRST {
        sqlx::query(*statement).execute(&mut *conn).await?;
    }
    if !keep_identities {
        sqlx::query("DELETE FROM identities")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

const THREAD_COLUMNS_SQL: &str =
    "SELECT id, topic, created_at, created_by, deleted_at, metadata, retention_policy,
        last_message_at, last_sequence_id, last_message_id, next_participant FROM threads";

async fn export(conn: &mut SqliteConnection) -> Result<StateDocument, sqlx::Error> {
    let identities = export_identities(&mut *conn).await?;
    let threads = export_threads(&mut *conn, None).await?;
    let repeatability = sqlx::query_as::<_, RepeatabilityState>(
        "SELECT caller_id, request_id, request_hash, thread_id, body, created_at
         FROM idempotency ORDER BY caller_id, request_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(StateDocument {
        format: STATE_FORMAT.to_owned(),
        identities,
        threads,
        repeatability,
    })
}

async fn export_identities(conn: &mut SqliteConnection) -> Result<Vec<IdentityState>, sqlx::Error> {
    sqlx::query_as::<_, IdentityState>(
        "SELECT id, created_at, deleted_at, tokens_revoked_at, last_token_issued_at, custom_id FROM identities ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await
}

/// Every thread, or only `only`, with everything in it.
async fn export_threads(
    conn: &mut SqliteConnection,
    only: Option<&str>,
) -> Result<Vec<ThreadState>, sqlx::Error> {
    let rows = match only {
        Some(id) => {
            let mut query = sqlx::QueryBuilder::new(THREAD_COLUMNS_SQL);
            query.push(" WHERE id = ").push_bind(id);
            query
                .build_query_as::<ThreadColumns>()
                .fetch_all(&mut *conn)
                .await?
        }
        None => {
            let mut query = sqlx::QueryBuilder::new(THREAD_COLUMNS_SQL);
            query.push(" ORDER BY id");
            query
                .build_query_as::<ThreadColumns>()
                .fetch_all(&mut *conn)
                .await?
        }
    };
    let mut threads = Vec::with_capacity(rows.len());
    for t in rows {
        threads.push(thread_state(&mut *conn, t).await?);
    }
    Ok(threads)
}

/// One thread's participants, messages, receipts and images.
async fn thread_state(
    conn: &mut SqliteConnection,
    t: ThreadColumns,
) -> Result<ThreadState, sqlx::Error> {
    let participants = sqlx::query_as::<_, ParticipantColumns>(
        "SELECT user_id, display_name, share_history_time, metadata, position
         FROM participants WHERE thread_id = ? ORDER BY position",
    )
    .bind(&t.id)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|p| ParticipantState {
        user_id: p.user_id,
        display_name: p.display_name,
        share_history_time: p.share_history_time,
        metadata: super::metadata_from_text(&p.metadata),
        position: p.position,
    })
    .collect();
    let messages = sqlx::query_as::<_, super::MessageRow>(
        "SELECT id, sequence_id, type, sender_id, sender_display_name, content, metadata,
                created_at, version, edited_at, deleted_at
         FROM messages WHERE thread_id = ? ORDER BY sequence_id",
    )
    .bind(&t.id)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|m| MessageState {
        content: m.content(),
        metadata: super::metadata_from_text(&m.metadata),
        id: m.id,
        sequence_id: m.sequence_id,
        kind: m.kind,
        sender_id: m.sender_id,
        sender_display_name: m.sender_display_name,
        created_at: m.created_at,
        version: m.version,
        edited_at: m.edited_at,
        deleted_at: m.deleted_at,
    })
    .collect();
    let read_receipts = sqlx::query_as::<_, ReceiptColumns>(
        "SELECT user_id, message_id, read_at FROM read_receipts WHERE thread_id = ? ORDER BY rowid",
    )
    .bind(&t.id)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| ReadReceiptState {
        user_id: r.user_id,
        message_id: r.message_id,
        read_at: r.read_at,
    })
    .collect();
    let images = sqlx::query_as::<_, super::ImageRow>(
        "SELECT id, name, content_type, data, created_at FROM images WHERE thread_id = ? ORDER BY id",
    )
    .bind(&t.id)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|i| ImageState {
        id: i.id,
        name: i.name,
        content_type: i.content_type,
        data: base64::engine::general_purpose::STANDARD.encode(&i.data),
        created_at: i.created_at,
    })
    .collect();
    Ok(ThreadState {
        images,
        metadata: super::metadata_from_text(&t.metadata),
        retention_policy: t
            .retention_policy
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok()),
        id: t.id,
        topic: t.topic,
        created_at: t.created_at,
        created_by: t.created_by,
        deleted_at: t.deleted_at,
        last_message_at: t.last_message_at,
        last_sequence_id: t.last_sequence_id,
        last_message_id: t.last_message_id,
        next_participant: t.next_participant,
        participants,
        messages,
        read_receipts,
    })
}

async fn import(conn: &mut SqliteConnection, document: &StateDocument) -> Result<(), sqlx::Error> {
    for i in &document.identities {
        sqlx::query(
            "INSERT INTO identities (id, created_at, deleted_at, tokens_revoked_at, last_token_issued_at, custom_id)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&i.id)
        .bind(i.created_at)
        .bind(i.deleted_at)
        .bind(i.tokens_revoked_at)
        .bind(i.last_token_issued_at)
        .bind(&i.custom_id)
        .execute(&mut *conn)
        .await?;
    }
    for t in &document.threads {
        sqlx::query(
            "INSERT INTO threads (id, topic, created_at, created_by, deleted_at, metadata, retention_policy,
                                  last_message_at, last_sequence_id, last_message_id, next_participant)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&t.id)
        .bind(&t.topic)
        .bind(t.created_at)
        .bind(&t.created_by)
        .bind(t.deleted_at)
        .bind(super::metadata_to_text(&t.metadata))
        .bind(t.retention_policy.as_ref().map(|p| p.to_string()))
        .bind(t.last_message_at)
        .bind(t.last_sequence_id)
        .bind(t.last_message_id)
        .bind(t.next_participant)
        .execute(&mut *conn)
        .await?;
        for p in &t.participants {
            sqlx::query(
                "INSERT INTO participants (thread_id, user_id, display_name, share_history_time, metadata, position)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&t.id)
            .bind(&p.user_id)
            .bind(&p.display_name)
            .bind(p.share_history_time)
            .bind(super::metadata_to_text(&p.metadata))
            .bind(p.position)
            .execute(&mut *conn)
            .await?;
        }
        for m in &t.messages {
            sqlx::query(
                "INSERT INTO messages (thread_id, id, sequence_id, type, sender_id, sender_display_name, content,
                                       metadata, created_at, version, edited_at, deleted_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&t.id)
            .bind(m.id)
            .bind(m.sequence_id)
            .bind(&m.kind)
            .bind(&m.sender_id)
            .bind(&m.sender_display_name)
            .bind(serde_json::to_string(&m.content).unwrap_or_else(|_| "{}".to_owned()))
            .bind(super::metadata_to_text(&m.metadata))
            .bind(m.created_at)
            .bind(m.version)
            .bind(m.edited_at)
            .bind(m.deleted_at)
            .execute(&mut *conn)
            .await?;
        }
        for i in &t.images {
            // Validated by `StateDocument::validate`, so the base64 decodes.
            let data = base64::engine::general_purpose::STANDARD
                .decode(&i.data)
                .unwrap_or_default();
            sqlx::query(
                "INSERT INTO images (thread_id, id, name, content_type, data, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&t.id)
            .bind(&i.id)
            .bind(&i.name)
            .bind(&i.content_type)
            .bind(data)
            .bind(i.created_at)
            .execute(&mut *conn)
            .await?;
        }
        for r in &t.read_receipts {
            sqlx::query("INSERT INTO read_receipts (thread_id, user_id, message_id, read_at) VALUES (?, ?, ?, ?)")
                .bind(&t.id)
                .bind(&r.user_id)
                .bind(r.message_id)
                .bind(r.read_at)
                .execute(&mut *conn)
                .await?;
        }
    }
    for r in &document.repeatability {
        sqlx::query(
            "INSERT INTO idempotency (caller_id, request_id, request_hash, thread_id, body, created_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&r.caller_id)
        .bind(&r.request_id)
        .bind(&r.request_hash)
        .bind(&r.thread_id)
        .bind(&r.body)
        .bind(r.created_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Whether there are no identities and no threads (a first start).
    pub async fn is_empty(&self) -> Result<bool, sqlx::Error> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM identities) + (SELECT COUNT(*) FROM threads)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(count == 0)
    }
}
