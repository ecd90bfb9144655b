//! Threads: creation (with its participants, system messages and repeatability record, in one
//! transaction), reads, listing for a user, property updates and soft deletion.

use rusqlite::{OptionalExtension, Row, params};

use super::messages::{MessageContent, NewMessage, ParticipantSnapshot, append_message};
use super::participants::{NewParticipant, ParticipantRow, insert_participant};
use super::{DbError, IdempotencyKey, Metadata, Store, merge_metadata, metadata_to_text};

/// One thread.
#[derive(Debug, Clone)]
pub struct ThreadRow {
    pub id: String,
    pub topic: String,
    pub created_at: i64,
    pub created_by: String,
    pub deleted_at: Option<i64>,
    pub metadata: String,
    pub retention_policy: Option<String>,
    pub last_message_at: i64,
}

impl ThreadRow {
    /// Reads the first eight columns, selected as in `thread_columns!`.
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(ThreadRow {
            id: row.get(0)?,
            topic: row.get(1)?,
            created_at: row.get(2)?,
            created_by: row.get(3)?,
            deleted_at: row.get(4)?,
            metadata: row.get(5)?,
            retention_policy: row.get(6)?,
            last_message_at: row.get(7)?,
        })
    }
}

/// A thread to create. `participants` are the requested ones; the creator is added too.
#[derive(Debug, Clone)]
pub struct NewThread {
    pub id: String,
    pub topic: String,
    pub creator: String,
    pub metadata: Metadata,
    /// Retention policy JSON, if one was requested.
    pub retention_policy: Option<String>,
    pub participants: Vec<NewParticipant>,
}

/// Result of a create.
#[derive(Debug)]
pub enum CreateOutcome {
    /// Created now.
    Created,
    /// The repeatability id was seen before: the first response body.
    Replayed { body: String },
}

/// What a user may do with a thread.
#[derive(Debug)]
pub enum ThreadAccess {
    /// No such thread (or deleted, for operations other than delete).
    NotFound,
    /// The thread exists but the user is not a participant.
    NotParticipant(ThreadRow),
    /// The user is a participant.
    Participant(ThreadRow, ParticipantRow),
}

/// Changes requested by `UpdateChatThreadRequest`.
#[derive(Debug, Default, Clone)]
pub struct ThreadUpdate {
    pub topic: Option<String>,
    pub metadata_patch: std::collections::BTreeMap<String, Option<String>>,
    /// `Some(json)` replaces the policy (the caller turns a `null` policy into `{"kind":"none"}`).
    pub retention_policy: Option<String>,
    pub initiator: String,
}

/// The columns `ThreadRow::from_row` reads, in order, of the `threads` table aliased `t`.
macro_rules! thread_columns {
    () => {
        "t.id, t.topic, t.created_at, t.created_by, t.deleted_at, t.metadata, t.retention_policy, \
         t.last_message_at"
    };
}

/// A thread and, if present, the participant row of one user (`thread_access`).
pub(super) const THREAD_ACCESS: &str = concat!(
    "SELECT ",
    thread_columns!(),
    ", p.user_id, p.display_name, p.share_history_time, p.metadata
     FROM threads t LEFT JOIN participants p ON p.thread_id = t.id AND p.user_id = ?2
     WHERE t.id = ?1"
);

/// A page of a user's threads (`list_threads_page`).
pub(super) const LIST_THREADS: &str = concat!(
    "SELECT ",
    thread_columns!(),
    " FROM threads t
         WHERE t.id IN (SELECT thread_id FROM participants WHERE user_id = ?1)
           AND t.last_message_at >= ?2
           AND (t.last_message_at < ?3 OR (t.last_message_at = ?3 AND t.id < ?4))
         ORDER BY t.last_message_at DESC, t.id DESC LIMIT ?5"
);

impl Store {
    /// Creates a thread with the creator and `participants`, and the service's two system
    /// messages: `participantAdded` (everyone, initiator = creator) and `topicUpdated`.
    /// With a repeatability key seen before, returns the first body instead.
    pub async fn create_thread(
        &self,
        thread: &NewThread,
        idempotency: Option<&IdempotencyKey>,
        response_body: &str,
        now: i64,
    ) -> Result<CreateOutcome, DbError> {
        let thread = thread.clone();
        let idempotency = idempotency.cloned();
        let response_body = response_body.to_owned();
        self.db
            .write(move |tx| {
                let idempotency = idempotency.as_ref();
                // A repeat is replayed even when its body differs: the SDK e2e test
                // `test_create_chat_thread_w_repeatability_request_id`, which passes against
                // the service, retries with a new `shareHistoryTime` and expects the same thread.
                if let Some(key) = idempotency
                    && let Some(body) = super::idempotency::lookup(tx, key)?
                {
                    return Ok(CreateOutcome::Replayed { body });
                }
                tx.prepare_cached(
                    "INSERT INTO threads (id, topic, created_at, created_by, metadata, retention_policy, last_message_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?3)",
                )?
                .execute(params![
                    thread.id,
                    thread.topic,
                    now,
                    thread.creator,
                    metadata_to_text(&thread.metadata),
                    thread.retention_policy,
                ])?;
                let mut everyone = Vec::with_capacity(thread.participants.len() + 1);
                if !thread
                    .participants
                    .iter()
                    .any(|p| p.user_id == thread.creator)
                {
                    everyone.push(NewParticipant::bare(&thread.creator));
                }
                everyone.extend(thread.participants.iter().cloned());
                for participant in &everyone {
                    insert_participant(tx, &thread.id, participant)?;
                }
                let added = NewMessage {
                    kind: "participantAdded",
                    sender_id: None,
                    sender_display_name: None,
                    content: MessageContent {
                        participants: Some(everyone.iter().map(ParticipantSnapshot::from).collect()),
                        initiator: Some(thread.creator.clone()),
                        ..MessageContent::default()
                    },
                    metadata: Metadata::new(),
                };
                append_message(tx, &thread.id, &added, now)?;
                let topic = topic_message(&thread.topic, &thread.creator);
                append_message(tx, &thread.id, &topic, now)?;
                if let Some(key) = idempotency {
                    super::idempotency::record(tx, key, &thread.id, &response_body, now)?;
                }
                Ok(CreateOutcome::Created)
            })
            .await
    }

    /// A thread by id, deleted or not.
    pub async fn get_thread(&self, id: &str) -> Result<Option<ThreadRow>, DbError> {
        self.db.read(|conn| {
            conn.prepare_cached(concat!(
                "SELECT ",
                thread_columns!(),
                " FROM threads t WHERE t.id = ?"
            ))?
            .query_row([id], ThreadRow::from_row)
            .optional()
        })
    }

    /// Whether `user_id` may use thread `id`. Deleted threads count as not found unless
    /// `include_deleted` (deleting twice succeeds twice).
    pub async fn thread_access(
        &self,
        id: &str,
        user_id: &str,
        include_deleted: bool,
    ) -> Result<ThreadAccess, DbError> {
        let row = self.db.read(|conn| {
            conn.prepare_cached(THREAD_ACCESS)?
                .query_row([id, user_id], |row| {
                    let thread = ThreadRow::from_row(row)?;
                    // No participant row: the LEFT JOIN's columns are NULL.
                    let participant = match row.get_ref(8)? {
                        rusqlite::types::ValueRef::Null => None,
                        _ => Some(ParticipantRow::from_columns(row, 8)?),
                    };
                    Ok((thread, participant))
                })
                .optional()
        })?;
        Ok(match row {
            None => ThreadAccess::NotFound,
            Some((thread, _)) if thread.deleted_at.is_some() && !include_deleted => {
                ThreadAccess::NotFound
            }
            Some((thread, Some(participant))) => ThreadAccess::Participant(thread, participant),
            Some((thread, None)) => ThreadAccess::NotParticipant(thread),
        })
    }

    /// A page of the threads `user_id` takes part in, most recent activity first, with
    /// activity at or after `start_time`, continuing after `(last_message_at, id)`.
    pub async fn list_threads_page(
        &self,
        user_id: &str,
        start_time: Option<i64>,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> Result<(Vec<ThreadRow>, bool), DbError> {
        // Without a continuation the bound is above every (time, id): i64::MAX and a string
        // that sorts after every thread id.
        let (after_at, after_id) = after.unwrap_or((i64::MAX, "\u{10FFFF}".to_owned()));
        let mut rows = self.db.read(|conn| {
            conn.prepare_cached(LIST_THREADS)?
                .query_map(
                    params![
                        user_id,
                        start_time.unwrap_or(i64::MIN),
                        after_at,
                        after_id,
                        i64::from(limit) + 1
                    ],
                    ThreadRow::from_row,
                )?
                .collect::<Result<Vec<_>, _>>()
        })?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        Ok((rows, more))
    }

    /// Applies a thread update; a new topic also appends a `topicUpdated` system message.
    pub async fn update_thread(
        &self,
        id: &str,
        update: &ThreadUpdate,
        now: i64,
    ) -> Result<(), DbError> {
        let id = id.to_owned();
        let ThreadUpdate {
            topic,
            metadata_patch,
            retention_policy,
            initiator,
        } = update.clone();
        self.db
            .write(move |tx| {
                let id = id.as_str();
                let metadata_text: String = tx
                    .prepare_cached("SELECT metadata FROM threads WHERE id = ?")?
                    .query_row([id], |row| row.get(0))?;
                let mut metadata = super::metadata_from_text(&metadata_text);
                merge_metadata(&mut metadata, &metadata_patch);
                tx.prepare_cached(
                    "UPDATE threads SET topic = COALESCE(?, topic), metadata = ?,
                                        retention_policy = COALESCE(?, retention_policy)
                     WHERE id = ?",
                )?
                .execute(params![
                    topic,
                    metadata_to_text(&metadata),
                    retention_policy,
                    id
                ])?;
                if let Some(topic) = &topic {
                    append_message(tx, id, &topic_message(topic, &initiator), now)?;
                }
                Ok(())
            })
            .await
    }

    /// Soft-deletes a thread: it disappears from reads but stays listed with `deletedOn`.
    pub async fn delete_thread(&self, id: &str, now: i64) -> Result<(), DbError> {
        let id = id.to_owned();
        self.db
            .write(move |tx| {
                tx.prepare_cached(
                    "UPDATE threads SET deleted_at = COALESCE(deleted_at, ?) WHERE id = ?",
                )?
                .execute(params![now, id])?;
                Ok(())
            })
            .await
    }
}

fn topic_message(topic: &str, initiator: &str) -> NewMessage {
    NewMessage {
        kind: "topicUpdated",
        sender_id: None,
        sender_display_name: None,
        content: MessageContent {
            topic: Some(topic.to_owned()),
            initiator: Some(initiator.to_owned()),
            ..MessageContent::default()
        },
        metadata: Metadata::new(),
    }
}
