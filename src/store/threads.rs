//! Threads: creation (with its participants and system messages), the repeatability record,
//! reads, listing for a user, property updates and soft deletion.

use rusqlite::{OptionalExtension, Row, params};

use super::messages::{
    MessageContent, MessageKind, NewMessage, ParticipantSnapshot, append_message,
};
use super::participants::{NewParticipant, ParticipantRow, insert_participant};
use super::{Error, IdempotencyKey, Metadata, Tx, View, metadata_to_text};

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

/// Changes of a thread's properties, already merged and checked by the chat layer.
#[derive(Debug, Default, Clone)]
pub struct ThreadUpdate {
    pub topic: Option<String>,
    /// The whole new metadata map (the merge patch applied), when it changes.
    pub metadata: Option<Metadata>,
    /// `Some(json)` replaces the policy.
    pub retention_policy: Option<String>,
    /// Who changed it (the `topicUpdated` system message names them).
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

impl View<'_> {
    /// A thread, deleted or not, and the participant row of `user_id` if they are one.
    pub fn thread_and_participant(
        &self,
        id: &str,
        user_id: &str,
    ) -> Result<Option<(ThreadRow, Option<ParticipantRow>)>, Error> {
        Ok(self
            .conn
            .prepare_cached(THREAD_ACCESS)?
            .query_row([id, user_id], |row| {
                let thread = ThreadRow::from_row(row)?;
                // No participant row: the LEFT JOIN's columns are NULL.
                let participant = match row.get_ref(8)? {
                    rusqlite::types::ValueRef::Null => None,
                    _ => Some(ParticipantRow::from_columns(row, 8)?),
                };
                Ok((thread, participant))
            })
            .optional()?)
    }

    /// A page of the threads `user_id` takes part in, most recent activity first, with
    /// activity at or after `start_time`, continuing after `(last_message_at, id)`; and
    /// whether more remain.
    pub fn threads_page(
        &self,
        user_id: &str,
        start_time: Option<i64>,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> Result<(Vec<ThreadRow>, bool), Error> {
        // Without a continuation the bound is above every (time, id): i64::MAX and a string
        // that sorts after every thread id.
        let (after_at, after_id) = after.unwrap_or((i64::MAX, "\u{10FFFF}".to_owned()));
        let mut rows = self
            .conn
            .prepare_cached(LIST_THREADS)?
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
            .collect::<Result<Vec<_>, _>>()?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        Ok((rows, more))
    }

    /// The thread and first response body recorded for this repeatability key, if any.
    pub fn repeated_create(&self, key: &IdempotencyKey) -> Result<Option<(String, String)>, Error> {
        Ok(super::idempotency::lookup(self.conn, key)?)
    }
}

impl Tx<'_> {
    /// Creates a thread with the creator and its participants, and the service's two system
    /// messages: `participantAdded` (everyone, initiator = creator) and `topicUpdated`.
    /// Returns everyone it added, the creator first unless the request listed them.
    pub fn create_thread(
        &self,
        thread: &NewThread,
        now: i64,
    ) -> Result<Vec<ParticipantSnapshot>, Error> {
        let tx = self.conn();
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
        let snapshots: Vec<ParticipantSnapshot> =
            everyone.iter().map(ParticipantSnapshot::from).collect();
        let added = NewMessage::system(
            MessageKind::ParticipantAdded,
            MessageContent {
                participants: Some(snapshots.clone()),
                initiator: Some(thread.creator.clone()),
                ..MessageContent::default()
            },
        );
        append_message(tx, &thread.id, &added, now)?;
        append_message(
            tx,
            &thread.id,
            &topic_message(&thread.topic, &thread.creator),
            now,
        )?;
        Ok(snapshots)
    }

    /// Records the first response body of a create under its repeatability key.
    pub fn record_create(
        &self,
        key: &IdempotencyKey,
        thread_id: &str,
        body: &str,
        now: i64,
    ) -> Result<(), Error> {
        Ok(super::idempotency::record(
            self.conn(),
            key,
            thread_id,
            body,
            now,
        )?)
    }

    /// Applies a thread update; a new topic also appends a `topicUpdated` system message.
    pub fn update_thread(&self, id: &str, update: &ThreadUpdate, now: i64) -> Result<(), Error> {
        let tx = self.conn();
        tx.prepare_cached(
            "UPDATE threads SET topic = COALESCE(?, topic), metadata = COALESCE(?, metadata),
                                retention_policy = COALESCE(?, retention_policy)
             WHERE id = ?",
        )?
        .execute(params![
            update.topic,
            update.metadata.as_ref().map(metadata_to_text),
            update.retention_policy,
            id
        ])?;
        if let Some(topic) = &update.topic {
            append_message(tx, id, &topic_message(topic, &update.initiator), now)?;
        }
        Ok(())
    }

    /// Soft-deletes a thread: it disappears from reads but stays listed with `deletedOn`.
    pub fn delete_thread(&self, id: &str, now: i64) -> Result<(), Error> {
        self.conn()
            .prepare_cached("UPDATE threads SET deleted_at = COALESCE(deleted_at, ?) WHERE id = ?")?
            .execute(params![now, id])?;
        Ok(())
    }
}

fn topic_message(topic: &str, initiator: &str) -> NewMessage {
    NewMessage::system(
        MessageKind::TopicUpdated,
        MessageContent {
            topic: Some(topic.to_owned()),
            initiator: Some(initiator.to_owned()),
            ..MessageContent::default()
        },
    )
}
