//! The whole state as one document: export, import (replacing everything, in one
//! transaction), and reset. The document keeps every column, so export → reset → import →
//! export gives the same document.

use base64::Engine;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::connection::snapshot;
use super::{DbError, Error, Store};
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// What `clear` runs, children first.
const CLEAR_CHILDREN_FIRST: &[&str] = &[
    // Event subscriptions are configuration and stay; the deliveries of the events go with them.
    "DELETE FROM event_deliveries",
    "DELETE FROM events",
    "DELETE FROM images",
    "DELETE FROM read_receipts",
    "DELETE FROM messages",
    "DELETE FROM participants",
    "DELETE FROM idempotency",
    "DELETE FROM threads",
];

impl StateDocument {
    /// Reads and validates a state document file (`--import`, the `import` subcommand).
    pub fn read_file(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        let document: StateDocument = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not a state document: {e}", path.display()))?;
        document.validate().map_err(|e| {
            anyhow::anyhow!("{} is not a valid state document: {e}", path.display())
        })?;
        Ok(document)
    }

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
            if !crate::identifier::is_thread_id(&t.id) {
                return Err(format!("Value for ThreadId ({}) is not valid.", t.id));
            }
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
                if super::messages::MessageKind::from_name(&m.kind).is_none() {
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
    pub async fn export_state(&self) -> Result<StateDocument, Error> {
        // One read transaction: a consistent snapshot even while requests write.
        self.read_on_blocking_thread(|conn| snapshot(conn, export))
            .await
    }

    /// Identities and their token state, by id.
    pub async fn export_identities(&self) -> Result<Vec<IdentityState>, Error> {
        self.read_on_blocking_thread(export_identities).await
    }

    /// Every thread (or only `id`) with everything in it, in one read transaction.
    pub async fn export_threads(&self, only: Option<&str>) -> Result<Vec<ThreadState>, Error> {
        let only = only.map(str::to_owned);
        self.read_on_blocking_thread(move |conn| {
            snapshot(conn, |conn| export_threads(conn, only.as_deref()))
        })
        .await
    }

    /// Replaces the whole state with `document`, in one transaction: on any error nothing
    /// changes.
    pub async fn import_state(&self, document: StateDocument) -> Result<(), Error> {
        // The writer thread runs it, so no async worker waits on it.
        let imported = self
            .db
            .write(move |tx| {
                clear(tx, false)?;
                import(tx, &document).map_err(Error::of_import)
            })
            .await;
        self.identities.clear();
        imported
    }

    /// Deletes all state; with `keep_identities`, identities and their token state stay.
    pub async fn reset(&self, keep_identities: bool) -> Result<(), Error> {
        let reset = self
            .db
            .write(move |tx| clear(tx, keep_identities).map_err(Error::from))
            .await;
        self.identities.clear();
        reset
    }

    /// Runs a long read on a blocking thread, so that it holds no async worker.
    async fn read_on_blocking_thread<R: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<R, DbError> + Send + 'static,
    ) -> Result<R, Error> {
        let db = std::sync::Arc::clone(&self.db);
        Ok(tokio::task::spawn_blocking(move || db.read(work))
            .await
            .unwrap_or_else(|panic| Err(thread_failed(panic)))?)
    }
}

/// A panicked blocking task, as a store error (a 500).
fn thread_failed(panic: tokio::task::JoinError) -> DbError {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERNAL),
        Some(format!("the database task failed: {panic}")),
    )
}

fn clear(conn: &Connection, keep_identities: bool) -> Result<(), DbError> {
    for statement in CLEAR_CHILDREN_FIRST {
        conn.execute(statement, [])?;
    }
    if !keep_identities {
        conn.execute("DELETE FROM identities", [])?;
    }
    Ok(())
}

fn export(conn: &Connection) -> Result<StateDocument, DbError> {
    let identities = export_identities(conn)?;
    let threads = export_threads(conn, None)?;
    let repeatability = conn
        .prepare(
            "SELECT caller_id, request_id, request_hash, thread_id, body, created_at
             FROM idempotency ORDER BY caller_id, request_id",
        )?
        .query_map([], |row| {
            Ok(RepeatabilityState {
                caller_id: row.get(0)?,
                request_id: row.get(1)?,
                request_hash: row.get(2)?,
                thread_id: row.get(3)?,
                body: row.get(4)?,
                created_at: row.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(StateDocument {
        format: STATE_FORMAT.to_owned(),
        identities,
        threads,
        repeatability,
    })
}

fn export_identities(conn: &Connection) -> Result<Vec<IdentityState>, DbError> {
    conn.prepare(concat!(
        "SELECT ",
        super::identities::identity_columns!(),
        " FROM identities ORDER BY id"
    ))?
    .query_map([], |row| {
        let i = super::IdentityRow::from_row(row)?;
        Ok(IdentityState {
            id: i.id,
            created_at: i.created_at,
            deleted_at: i.deleted_at,
            tokens_revoked_at: i.tokens_revoked_at,
            last_token_issued_at: i.last_token_issued_at,
            custom_id: i.custom_id,
        })
    })?
    .collect()
}

/// Every thread, or only `only`, with everything in it.
fn export_threads(conn: &Connection, only: Option<&str>) -> Result<Vec<ThreadState>, DbError> {
    const COLUMNS: &str = "SELECT id, topic, created_at, created_by, deleted_at, metadata,
        retention_policy, last_message_at, last_sequence_id, last_message_id, next_participant
        FROM threads";
    let mut statement;
    let mut rows = match only {
        Some(id) => {
            statement = conn.prepare(&[COLUMNS, " WHERE id = ?"].concat())?;
            statement.query([id])?
        }
        None => {
            statement = conn.prepare(&[COLUMNS, " ORDER BY id"].concat())?;
            statement.query([])?
        }
    };
    let mut threads = Vec::new();
    while let Some(row) = rows.next()? {
        let metadata: String = row.get(5)?;
        let retention_policy: Option<String> = row.get(6)?;
        let id: String = row.get(0)?;
        threads.push(ThreadState {
            participants: participants_of(conn, &id)?,
            messages: messages_of(conn, &id)?,
            read_receipts: read_receipts_of(conn, &id)?,
            images: images_of(conn, &id)?,
            metadata: super::metadata_from_text(&metadata),
            retention_policy: retention_policy
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok()),
            id,
            topic: row.get(1)?,
            created_at: row.get(2)?,
            created_by: row.get(3)?,
            deleted_at: row.get(4)?,
            last_message_at: row.get(7)?,
            last_sequence_id: row.get(8)?,
            last_message_id: row.get(9)?,
            next_participant: row.get(10)?,
        });
    }
    Ok(threads)
}

fn participants_of(conn: &Connection, thread_id: &str) -> Result<Vec<ParticipantState>, DbError> {
    conn.prepare_cached(
        "SELECT user_id, display_name, share_history_time, metadata, position
         FROM participants WHERE thread_id = ? ORDER BY position",
    )?
    .query_map([thread_id], |row| {
        Ok(ParticipantState {
            user_id: row.get(0)?,
            display_name: row.get(1)?,
            share_history_time: row.get(2)?,
            metadata: super::metadata_from_text(&row.get::<_, String>(3)?),
            position: row.get(4)?,
        })
    })?
    .collect()
}

fn messages_of(conn: &Connection, thread_id: &str) -> Result<Vec<MessageState>, DbError> {
    conn.prepare_cached(concat!(
        "SELECT ",
        super::messages::message_columns!(),
        " FROM messages WHERE thread_id = ? ORDER BY sequence_id"
    ))?
    .query_map([thread_id], |row| {
        let m = super::MessageRow::from_row(row)?;
        Ok(MessageState {
            content: m.content(),
            metadata: super::metadata_from_text(&m.metadata),
            id: m.id,
            sequence_id: m.sequence_id,
            kind: m.kind.as_str().to_owned(),
            sender_id: m.sender_id,
            sender_display_name: m.sender_display_name,
            created_at: m.created_at,
            version: m.version,
            edited_at: m.edited_at,
            deleted_at: m.deleted_at,
        })
    })?
    .collect()
}

fn read_receipts_of(conn: &Connection, thread_id: &str) -> Result<Vec<ReadReceiptState>, DbError> {
    conn.prepare_cached(
        "SELECT user_id, message_id, read_at FROM read_receipts WHERE thread_id = ? ORDER BY rowid",
    )?
    .query_map([thread_id], |row| {
        let r = super::ReadReceiptRow::from_row(row)?;
        Ok(ReadReceiptState {
            user_id: r.user_id,
            message_id: r.message_id,
            read_at: r.read_at,
        })
    })?
    .collect()
}

fn images_of(conn: &Connection, thread_id: &str) -> Result<Vec<ImageState>, DbError> {
    conn.prepare_cached(
        "SELECT id, name, content_type, data, created_at FROM images WHERE thread_id = ? ORDER BY id",
    )?
    .query_map([thread_id], |row| {
        let i = super::ImageRow::from_row(row)?;
        Ok(ImageState {
            id: i.id,
            name: i.name,
            content_type: i.content_type,
            data: base64::engine::general_purpose::STANDARD.encode(&i.data),
            created_at: i.created_at,
        })
    })?
    .collect()
}

fn import(conn: &Connection, document: &StateDocument) -> Result<(), DbError> {
    let mut identity = conn.prepare(
        "INSERT INTO identities (id, created_at, deleted_at, tokens_revoked_at, last_token_issued_at, custom_id)
         VALUES (?, ?, ?, ?, ?, ?)",
    )?;
    for i in &document.identities {
        identity.execute(params![
            i.id,
            i.created_at,
            i.deleted_at,
            i.tokens_revoked_at,
            i.last_token_issued_at,
            i.custom_id
        ])?;
    }
    let mut thread = conn.prepare(
        "INSERT INTO threads (id, topic, created_at, created_by, deleted_at, metadata, retention_policy,
                              last_message_at, last_sequence_id, last_message_id, next_participant)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?;
    let mut participant = conn.prepare(
        "INSERT INTO participants (thread_id, user_id, display_name, share_history_time, metadata, position)
         VALUES (?, ?, ?, ?, ?, ?)",
    )?;
    let mut message = conn.prepare(
        "INSERT INTO messages (thread_id, id, sequence_id, type, sender_id, sender_display_name, content,
                               metadata, created_at, version, edited_at, deleted_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?;
    let mut image = conn.prepare(
        "INSERT INTO images (thread_id, id, name, content_type, data, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    )?;
    let mut receipt = conn.prepare(
        "INSERT INTO read_receipts (thread_id, user_id, message_id, read_at) VALUES (?, ?, ?, ?)",
    )?;
    for t in &document.threads {
        thread.execute(params![
            t.id,
            t.topic,
            t.created_at,
            t.created_by,
            t.deleted_at,
            super::metadata_to_text(&t.metadata),
            t.retention_policy.as_ref().map(|p| p.to_string()),
            t.last_message_at,
            t.last_sequence_id,
            t.last_message_id,
            t.next_participant
        ])?;
        for p in &t.participants {
            participant.execute(params![
                t.id,
                p.user_id,
                p.display_name,
                p.share_history_time,
                super::metadata_to_text(&p.metadata),
                p.position
            ])?;
        }
        for m in &t.messages {
            message.execute(params![
                t.id,
                m.id,
                m.sequence_id,
                m.kind,
                m.sender_id,
                m.sender_display_name,
                serde_json::to_string(&m.content).unwrap_or_else(|_| "{}".to_owned()),
                super::metadata_to_text(&m.metadata),
                m.created_at,
                m.version,
                m.edited_at,
                m.deleted_at
            ])?;
        }
        for i in &t.images {
            // Validated by `StateDocument::validate`, so the base64 decodes.
            let data = base64::engine::general_purpose::STANDARD
                .decode(&i.data)
                .unwrap_or_default();
            image.execute(params![
                t.id,
                i.id,
                i.name,
                i.content_type,
                data,
                i.created_at
            ])?;
        }
        for r in &t.read_receipts {
            receipt.execute(params![t.id, r.user_id, r.message_id, r.read_at])?;
        }
    }
    let mut repeatability = conn.prepare(
        "INSERT INTO idempotency (caller_id, request_id, request_hash, thread_id, body, created_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )?;
    for r in &document.repeatability {
        repeatability.execute(params![
            r.caller_id,
            r.request_id,
            r.request_hash,
            r.thread_id,
            r.body,
            r.created_at
        ])?;
    }
    Ok(())
}

impl Store {
    /// Whether there are no identities and no threads (a first start).
    pub async fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.db.read(|conn| {
            conn.query_row(
                "SELECT NOT EXISTS (SELECT 1 FROM identities) AND NOT EXISTS (SELECT 1 FROM threads)",
                [],
                |row| row.get(0),
            )
        })?)
    }
}
