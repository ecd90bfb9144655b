//! Threads: creation (with its participants, system messages and repeatability record, in one
//! transaction), reads, listing for a user, property updates and soft deletion.

use sqlx::FromRow;

use super::messages::{MessageContent, NewMessage, ParticipantSnapshot, append_message};
use super::participants::{NewParticipant, ParticipantRow, insert_participant};
use super::{IdempotencyKey, Metadata, Store, merge_metadata, metadata_to_text};

/// One thread.
#[derive(Debug, Clone, FromRow)]
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

/// A thread joined with the caller's participant row, if any.
#[derive(FromRow)]
struct AccessRow {
    #[sqlx(flatten)]
    thread: ThreadRow,
    p_user_id: Option<String>,
    p_display_name: Option<String>,
    p_share_history_time: Option<i64>,
    p_metadata: Option<String>,
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
#[derive(Debug, Default)]
pub struct ThreadUpdate {
    pub topic: Option<String>,
    pub metadata_patch: std::collections::BTreeMap<String, Option<String>>,
    /// `Some(json)` replaces the policy (the caller turns a `null` policy into `{"kind":"none"}`).
    pub retention_policy: Option<String>,
    pub initiator: String,
}

const THREAD_COLUMNS: &str =
    "id, topic, created_at, created_by, deleted_at, metadata, retention_policy, last_message_at";

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
    ) -> Result<CreateOutcome, sqlx::Error> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        // A repeat is replayed even when its body differs: the SDK e2e test
        // `test_create_chat_thread_w_repeatability_request_id`, which passes against the service,
        // retries with a new `shareHistoryTime` and expects the same thread back.
        if let Some(key) = idempotency
            && let Some(body) = super::idempotency::lookup(&mut tx, key).await?
        {
            return Ok(CreateOutcome::Replayed { body });
        }
        sqlx::query(
            "INSERT INTO threads (id, topic, created_at, created_by, metadata, retention_policy, last_message_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&thread.id)
        .bind(&thread.topic)
        .bind(now)
        .bind(&thread.creator)
        .bind(metadata_to_text(&thread.metadata))
        .bind(&thread.retention_policy)
        .bind(now)
        .execute(&mut *tx)
        .await?;
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
            insert_participant(&mut tx, &thread.id, participant).await?;
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
        append_message(&mut tx, &thread.id, &added, now).await?;
        let topic = topic_message(&thread.topic, &thread.creator);
        append_message(&mut tx, &thread.id, &topic, now).await?;
        if let Some(key) = idempotency {
            super::idempotency::record(&mut tx, key, &thread.id, response_body, now).await?;
        }
        tx.commit().await?;
        Ok(CreateOutcome::Created)
    }

    /// A thread by id, deleted or not.
    pub async fn get_thread(&self, id: &str) -> Result<Option<ThreadRow>, sqlx::Error> {
        let mut query = sqlx::QueryBuilder::new("SELECT ");
        query
            .push(THREAD_COLUMNS)
            .push(" FROM threads WHERE id = ")
            .push_bind(id);
        query.build_query_as().fetch_optional(&self.pool).await
    }

    /// Whether `user_id` may use thread `id`. Deleted threads count as not found unless
    /// `include_deleted` (deleting twice succeeds twice).
    pub async fn thread_access(
        &self,
        id: &str,
        user_id: &str,
        include_deleted: bool,
    ) -> Result<ThreadAccess, sqlx::Error> {
        // One query for both: each statement is a round trip to sqlx's SQLite thread, which
        // costs more than the query itself (see BENCHMARKS.md).
        let row = sqlx::query_as::<_, AccessRow>(
            "SELECT t.id, t.topic, t.created_at, t.created_by, t.deleted_at, t.metadata,
                    t.retention_policy, t.last_message_at,
                    p.user_id AS p_user_id, p.display_name AS p_display_name,
                    p.share_history_time AS p_share_history_time, p.metadata AS p_metadata
             FROM threads t LEFT JOIN participants p ON p.thread_id = t.id AND p.user_id = ?
             WHERE t.id = ?",
        )
        .bind(user_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(ThreadAccess::NotFound);
        };
        if row.thread.deleted_at.is_some() && !include_deleted {
            return Ok(ThreadAccess::NotFound);
        }
        Ok(match row.p_user_id {
            Some(user_id) => ThreadAccess::Participant(
                row.thread,
                ParticipantRow {
                    user_id,
                    display_name: row.p_display_name,
                    share_history_time: row.p_share_history_time.unwrap_or(0),
                    metadata: row.p_metadata.unwrap_or_else(|| "{}".to_owned()),
                },
            ),
            None => ThreadAccess::NotParticipant(row.thread),
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
    ) -> Result<(Vec<ThreadRow>, bool), sqlx::Error> {
        let mut query = sqlx::QueryBuilder::new(
            "SELECT t.id, t.topic, t.created_at, t.created_by, t.deleted_at, t.metadata,
                    t.retention_policy, t.last_message_at
             FROM threads t JOIN participants p ON p.thread_id = t.id WHERE p.user_id = ",
        );
        query.push_bind(user_id);
        if let Some(start) = start_time {
            query.push(" AND t.last_message_at >= ").push_bind(start);
        }
        if let Some((at, id)) = after {
            query.push(" AND (t.last_message_at < ").push_bind(at);
            query.push(" OR (t.last_message_at = ").push_bind(at);
            query.push(" AND t.id < ").push_bind(id).push("))");
        }
        query
            .push(" ORDER BY t.last_message_at DESC, t.id DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let mut rows: Vec<ThreadRow> = query.build_query_as().fetch_all(&self.pool).await?;
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
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let (metadata_text,): (String,) =
            sqlx::query_as("SELECT metadata FROM threads WHERE id = ?")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        let mut metadata = super::metadata_from_text(&metadata_text);
        merge_metadata(&mut metadata, &update.metadata_patch);
        sqlx::query(
            "UPDATE threads SET topic = COALESCE(?, topic), metadata = ?,
                                retention_policy = COALESCE(?, retention_policy)
             WHERE id = ?",
        )
        .bind(&update.topic)
        .bind(metadata_to_text(&metadata))
        .bind(&update.retention_policy)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if let Some(topic) = &update.topic {
            append_message(&mut tx, id, &topic_message(topic, &update.initiator), now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Soft-deletes a thread: it disappears from reads but stays listed with `deletedOn`.
    pub async fn delete_thread(&self, id: &str, now: i64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE threads SET deleted_at = COALESCE(deleted_at, ?) WHERE id = ?")
            .bind(now)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
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
