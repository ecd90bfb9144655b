//! Thread participants: adding (with the thread's size limit and a system message), listing in
//! joining order, and removing.

use sqlx::{FromRow, SqliteConnection};

use super::messages::{MessageContent, NewMessage, ParticipantSnapshot, append_message};
use super::{Metadata, Store, metadata_to_text};

/// A participant to add.
#[derive(Debug, Clone)]
pub struct NewParticipant {
    pub user_id: String,
    pub display_name: Option<String>,
    /// Messages created before this instant are hidden from the participant; 0 shares all
    /// history (the service reports an unset share time as `1970-01-01T00:00:00Z`).
    pub share_history_time: i64,
    pub metadata: Metadata,
}

impl NewParticipant {
    /// A participant with only an id (the creator, when the request does not list them).
    pub fn bare(user_id: &str) -> Self {
        NewParticipant {
            user_id: user_id.to_owned(),
            display_name: None,
            share_history_time: 0,
            metadata: Metadata::new(),
        }
    }
}

impl From<&NewParticipant> for ParticipantSnapshot {
    fn from(p: &NewParticipant) -> Self {
        ParticipantSnapshot {
            id: p.user_id.clone(),
            display_name: p.display_name.clone(),
            share_history_time: p.share_history_time,
            metadata: p.metadata.clone(),
        }
    }
}

/// One participant of a thread.
#[derive(Debug, Clone, FromRow)]
pub struct ParticipantRow {
    pub user_id: String,
    pub display_name: Option<String>,
    pub share_history_time: i64,
    pub metadata: String,
}

impl From<&ParticipantRow> for ParticipantSnapshot {
    fn from(p: &ParticipantRow) -> Self {
        ParticipantSnapshot {
            id: p.user_id.clone(),
            display_name: p.display_name.clone(),
            share_history_time: p.share_history_time,
            metadata: super::metadata_from_text(&p.metadata),
        }
    }
}

/// Result of adding participants.
#[derive(Debug, PartialEq, Eq)]
pub enum AddOutcome {
    /// Added (those already present were left unchanged).
    Added,
    /// The thread would exceed its participant limit; nothing was added.
    TooMany { limit: usize },
}

/// Inserts one participant inside the caller's transaction, at the end of the joining order.
pub(super) async fn insert_participant(
    conn: &mut SqliteConnection,
    thread_id: &str,
    participant: &NewParticipant,
) -> Result<(), sqlx::Error> {
    let (position,): (i64,) = sqlx::query_as(
        "UPDATE threads SET next_participant = next_participant + 1 WHERE id = ? RETURNING next_participant",
    )
    .bind(thread_id)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO participants (thread_id, user_id, display_name, share_history_time, metadata, position)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(thread_id)
    .bind(&participant.user_id)
    .bind(&participant.display_name)
    .bind(participant.share_history_time)
    .bind(metadata_to_text(&participant.metadata))
    .bind(position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// The participant `user_id` of a thread, if present.
    pub async fn get_participant(
        &self,
        thread_id: &str,
        user_id: &str,
    ) -> Result<Option<ParticipantRow>, sqlx::Error> {
        sqlx::query_as::<_, ParticipantRow>(
            "SELECT user_id, display_name, share_history_time, metadata
             FROM participants WHERE thread_id = ? AND user_id = ?",
        )
        .bind(thread_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
    }

    /// Participants in joining order, skipping `skip`, at most `limit`; and whether more remain.
    pub async fn list_participants_page(
        &self,
        thread_id: &str,
        skip: u32,
        limit: u32,
    ) -> Result<(Vec<ParticipantRow>, bool), sqlx::Error> {
        let mut rows = sqlx::query_as::<_, ParticipantRow>(
            "SELECT user_id, display_name, share_history_time, metadata
             FROM participants WHERE thread_id = ? ORDER BY position LIMIT ? OFFSET ?",
        )
        .bind(thread_id)
        .bind(i64::from(limit) + 1)
        .bind(i64::from(skip))
        .fetch_all(&self.pool)
        .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        Ok((rows, more))
    }

    /// Adds participants not yet in the thread and appends a `participantAdded` message naming
    /// them (none when all were present: "If participants already exist, no change occurs").
    pub async fn add_participants(
        &self,
        thread_id: &str,
        participants: &[NewParticipant],
        initiator: &str,
        limit: usize,
        now: i64,
    ) -> Result<AddOutcome, sqlx::Error> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut fresh: Vec<&NewParticipant> = Vec::new();
        for p in participants {
            let present: Option<(i64,)> =
                sqlx::query_as("SELECT 1 FROM participants WHERE thread_id = ? AND user_id = ?")
                    .bind(thread_id)
                    .bind(&p.user_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if present.is_none() && !fresh.iter().any(|f| f.user_id == p.user_id) {
                fresh.push(p);
            }
        }
        if fresh.is_empty() {
            return Ok(AddOutcome::Added);
        }
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM participants WHERE thread_id = ?")
                .bind(thread_id)
                .fetch_one(&mut *tx)
                .await?;
        if count as usize + fresh.len() > limit {
            return Ok(AddOutcome::TooMany { limit });
        }
        for p in &fresh {
            insert_participant(&mut tx, thread_id, p).await?;
        }
        let message = NewMessage {
            kind: "participantAdded",
            sender_id: None,
            sender_display_name: None,
            content: MessageContent {
                participants: Some(
                    fresh
                        .iter()
                        .map(|p| ParticipantSnapshot::from(*p))
                        .collect(),
                ),
                initiator: Some(initiator.to_owned()),
                ..MessageContent::default()
            },
            metadata: Metadata::new(),
        };
        append_message(&mut tx, thread_id, &message, now).await?;
        tx.commit().await?;
        Ok(AddOutcome::Added)
    }

    /// Removes a participant and appends a `participantRemoved` message; false if they were
    /// not in the thread.
    pub async fn remove_participant(
        &self,
        thread_id: &str,
        user_id: &str,
        initiator: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let removed = sqlx::query_as::<_, ParticipantRow>(
            "DELETE FROM participants WHERE thread_id = ? AND user_id = ?
             RETURNING user_id, display_name, share_history_time, metadata",
        )
        .bind(thread_id)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(removed) = removed else {
            return Ok(false);
        };
        let message = NewMessage {
            kind: "participantRemoved",
            sender_id: None,
            sender_display_name: None,
            content: MessageContent {
                participants: Some(vec![ParticipantSnapshot::from(&removed)]),
                initiator: Some(initiator.to_owned()),
                ..MessageContent::default()
            },
            metadata: Metadata::new(),
        };
        append_message(&mut tx, thread_id, &message, now).await?;
        tx.commit().await?;
        Ok(true)
    }
}
