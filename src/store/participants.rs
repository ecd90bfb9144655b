//! Thread participants: adding (with the thread's size limit and a system message), listing in
//! joining order, and removing.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::messages::{MessageContent, NewMessage, ParticipantSnapshot, append_message};
use super::{DbError, Metadata, Store, metadata_to_text};

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
#[derive(Debug, Clone)]
pub struct ParticipantRow {
    pub user_id: String,
    pub display_name: Option<String>,
    pub share_history_time: i64,
    pub metadata: String,
}

impl ParticipantRow {
    /// Reads `user_id, display_name, share_history_time, metadata`.
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Self::from_columns(row, 0)
    }

    /// Reads the same four columns starting at column `first` (after another table's).
    pub(super) fn from_columns(row: &Row<'_>, first: usize) -> rusqlite::Result<Self> {
        Ok(ParticipantRow {
            user_id: row.get(first)?,
            display_name: row.get(first + 1)?,
            share_history_time: row.get(first + 2)?,
            metadata: row.get(first + 3)?,
        })
    }
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
pub(super) fn insert_participant(
    conn: &Connection,
    thread_id: &str,
    participant: &NewParticipant,
) -> Result<(), DbError> {
    let position: i64 = conn
        .prepare_cached(
            "UPDATE threads SET next_participant = next_participant + 1 WHERE id = ?
             RETURNING next_participant",
        )?
        .query_row([thread_id], |row| row.get(0))?;
    conn.prepare_cached(
        "INSERT INTO participants (thread_id, user_id, display_name, share_history_time, metadata, position)
         VALUES (?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        thread_id,
        participant.user_id,
        participant.display_name,
        participant.share_history_time,
        metadata_to_text(&participant.metadata),
        position,
    ])?;
    Ok(())
}

/// A page of participants (`list_participants_page`).
pub(super) const LIST_PARTICIPANTS: &str =
    "SELECT user_id, display_name, share_history_time, metadata
     FROM participants WHERE thread_id = ? ORDER BY position LIMIT ? OFFSET ?";

impl Store {
    /// The participant `user_id` of a thread, if present.
    pub async fn get_participant(
        &self,
        thread_id: &str,
        user_id: &str,
    ) -> Result<Option<ParticipantRow>, DbError> {
        self.db.read(|conn| {
            conn.prepare_cached(
                "SELECT user_id, display_name, share_history_time, metadata
                     FROM participants WHERE thread_id = ? AND user_id = ?",
            )?
            .query_row([thread_id, user_id], ParticipantRow::from_row)
            .optional()
        })
    }

    /// Participants in joining order, skipping `skip`, at most `limit`; and whether more remain.
    pub async fn list_participants_page(
        &self,
        thread_id: &str,
        skip: u32,
        limit: u32,
    ) -> Result<(Vec<ParticipantRow>, bool), DbError> {
        let mut rows = self.db.read(|conn| {
            conn.prepare_cached(LIST_PARTICIPANTS)?
                .query_map(
                    params![thread_id, i64::from(limit) + 1, i64::from(skip)],
                    ParticipantRow::from_row,
                )?
                .collect::<Result<Vec<_>, _>>()
        })?;
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
    ) -> Result<AddOutcome, DbError> {
        let (thread_id, initiator) = (thread_id.to_owned(), initiator.to_owned());
        let participants = participants.to_vec();
        self.db
            .write(move |tx| {
                let thread_id = thread_id.as_str();
                let mut fresh: Vec<&NewParticipant> = Vec::new();
                for p in &participants {
                    let present = tx
                        .prepare_cached(
                            "SELECT 1 FROM participants WHERE thread_id = ? AND user_id = ?",
                        )?
                        .exists([thread_id, p.user_id.as_str()])?;
                    if !present && !fresh.iter().any(|f| f.user_id == p.user_id) {
                        fresh.push(p);
                    }
                }
                if fresh.is_empty() {
                    return Ok(AddOutcome::Added);
                }
                let count: i64 = tx
                    .prepare_cached("SELECT COUNT(*) FROM participants WHERE thread_id = ?")?
                    .query_row([thread_id], |row| row.get(0))?;
                if usize::try_from(count).unwrap_or(usize::MAX) + fresh.len() > limit {
                    return Ok(AddOutcome::TooMany { limit });
                }
                for p in &fresh {
                    insert_participant(tx, thread_id, p)?;
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
                        initiator: Some(initiator),
                        ..MessageContent::default()
                    },
                    metadata: Metadata::new(),
                };
                append_message(tx, thread_id, &message, now)?;
                Ok(AddOutcome::Added)
            })
            .await
    }

    /// Removes a participant and appends a `participantRemoved` message; false if they were
    /// not in the thread.
    pub async fn remove_participant(
        &self,
        thread_id: &str,
        user_id: &str,
        initiator: &str,
        now: i64,
    ) -> Result<bool, DbError> {
        let (thread_id, user_id) = (thread_id.to_owned(), user_id.to_owned());
        let initiator = initiator.to_owned();
        self.db
            .write(move |tx| {
                let removed = tx
                    .prepare_cached(
                        "DELETE FROM participants WHERE thread_id = ? AND user_id = ?
                         RETURNING user_id, display_name, share_history_time, metadata",
                    )?
                    .query_row([&thread_id, &user_id], ParticipantRow::from_row)
                    .optional()?;
                let Some(removed) = removed else {
                    return Ok(false);
                };
                let message = NewMessage {
                    kind: "participantRemoved",
                    sender_id: None,
                    sender_display_name: None,
                    content: MessageContent {
                        participants: Some(vec![ParticipantSnapshot::from(&removed)]),
                        initiator: Some(initiator),
                        ..MessageContent::default()
                    },
                    metadata: Metadata::new(),
                };
                append_message(tx, &thread_id, &message, now)?;
                Ok(true)
            })
            .await
    }
}
