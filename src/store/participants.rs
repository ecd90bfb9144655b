//! Thread participants: adding (with the thread's size limit and a system message), listing in
//! joining order, and removing.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::messages::{
    MessageContent, MessageKind, NewMessage, ParticipantSnapshot, append_message,
};
use super::{DbError, Error, Metadata, Tx, View, metadata_to_text};

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

/// Every participant of a thread (`participants`).
pub(super) const ALL_PARTICIPANTS: &str =
    "SELECT user_id, display_name, share_history_time, metadata
     FROM participants WHERE thread_id = ? ORDER BY position";

/// A page of participants (`participants_page`).
pub(super) const LIST_PARTICIPANTS: &str =
    "SELECT user_id, display_name, share_history_time, metadata
     FROM participants WHERE thread_id = ? ORDER BY position LIMIT ? OFFSET ?";

impl View<'_> {
    /// Whether `user_id` is a participant of the thread.
    pub fn is_participant(&self, thread_id: &str, user_id: &str) -> Result<bool, Error> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM participants WHERE thread_id = ? AND user_id = ?")?
            .exists([thread_id, user_id])?)
    }

    /// How many participants the thread has.
    pub fn participant_count(&self, thread_id: &str) -> Result<usize, Error> {
        let count: i64 = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM participants WHERE thread_id = ?")?
            .query_row([thread_id], |row| row.get(0))?;
        Ok(usize::try_from(count).unwrap_or(usize::MAX))
    }

    /// Every participant of the thread, in joining order (a thread has at most a few hundred).
    pub fn participants(&self, thread_id: &str) -> Result<Vec<ParticipantRow>, Error> {
        Ok(self
            .conn
            .prepare_cached(ALL_PARTICIPANTS)?
            .query_map([thread_id], ParticipantRow::from_row)?
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// Participants in joining order, skipping `skip`, at most `limit`; and whether more remain.
    pub fn participants_page(
        &self,
        thread_id: &str,
        skip: u32,
        limit: u32,
    ) -> Result<(Vec<ParticipantRow>, bool), Error> {
        let mut rows = self
            .conn
            .prepare_cached(LIST_PARTICIPANTS)?
            .query_map(
                params![thread_id, i64::from(limit) + 1, i64::from(skip)],
                ParticipantRow::from_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        Ok((rows, more))
    }
}

impl Tx<'_> {
    /// Adds participants (none of them in the thread yet) at the end of the joining order and
    /// appends a `participantAdded` message naming them.
    pub fn add_participants(
        &self,
        thread_id: &str,
        participants: &[NewParticipant],
        initiator: &str,
        now: i64,
    ) -> Result<(), Error> {
        for p in participants {
            insert_participant(self.conn(), thread_id, p)?;
        }
        let message = NewMessage::system(
            MessageKind::ParticipantAdded,
            MessageContent {
                participants: Some(participants.iter().map(ParticipantSnapshot::from).collect()),
                initiator: Some(initiator.to_owned()),
                ..MessageContent::default()
            },
        );
        append_message(self.conn(), thread_id, &message, now)?;
        Ok(())
    }

    /// Removes a participant and appends a `participantRemoved` message; returns who was
    /// removed, `None` if they were not in the thread.
    pub fn remove_participant(
        &self,
        thread_id: &str,
        user_id: &str,
        initiator: &str,
        now: i64,
    ) -> Result<Option<ParticipantRow>, Error> {
        let removed = self
            .conn()
            .prepare_cached(
                "DELETE FROM participants WHERE thread_id = ? AND user_id = ?
                 RETURNING user_id, display_name, share_history_time, metadata",
            )?
            .query_row([thread_id, user_id], ParticipantRow::from_row)
            .optional()?;
        let Some(removed) = removed else {
            return Ok(None);
        };
        let message = NewMessage::system(
            MessageKind::ParticipantRemoved,
            MessageContent {
                participants: Some(vec![ParticipantSnapshot::from(&removed)]),
                initiator: Some(initiator.to_owned()),
                ..MessageContent::default()
            },
        );
        append_message(self.conn(), thread_id, &message, now)?;
        Ok(Some(removed))
    }
}
