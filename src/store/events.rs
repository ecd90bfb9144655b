//! The outbox of committed chat events: rows appended by a change's own write closure (so they
//! commit or roll back with it), read in `sequence` order by the dispatchers and the event log.

use rusqlite::{Row, params};

use super::{Error, Tx, View};

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// `Microsoft.Communication.<suffix>`.
    pub event_type: String,
    pub thread_id: String,
    /// The recipient of a user-level event.
    pub recipient: Option<String>,
    pub created_at: i64,
    /// The event in the Event Grid schema (JSON); with an `origin`, a JSON object merged over
    /// the origin's envelope (objects key by key, anything else replaced) when read.
    pub envelope: String,
    /// The sequence number of the event whose envelope this one completes.
    pub origin: Option<i64>,
}

/// One committed event, as the dispatchers read it.
#[derive(Debug, Clone)]
pub struct EventRow {
    /// Increasing in commit order; never reused.
    pub sequence: i64,
    pub event_type: String,
    /// The event in the Event Grid schema (JSON).
    pub envelope: String,
}

impl EventRow {
    /// Reads `sequence, type, envelope, origin envelope` (`EVENT_COLUMNS`), completing the
    /// envelope of an event stored as a patch of its origin's.
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(EventRow {
            sequence: row.get(0)?,
            event_type: row.get(1)?,
            envelope: complete_envelope(row.get(2)?, row.get(3)?),
        })
    }
}

/// An event's envelope as delivered: its own row's, or (for a user-level event) its row's
/// difference merged over the envelope of its origin. Every reader of events goes through this.
pub(super) fn complete_envelope(own: String, origin: Option<String>) -> String {
    match origin {
        None => own,
        Some(origin) => merged(&origin, &own),
    }
}

/// `patch` merged over `base` (both JSON objects): objects key by key, other values replaced.
fn merged(base: &str, patch: &str) -> String {
    fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
        match (base, patch) {
            (serde_json::Value::Object(base), serde_json::Value::Object(patch)) => {
                for (key, value) in patch {
                    merge(base.entry(key).or_insert(serde_json::Value::Null), value);
                }
            }
            (base, patch) => *base = patch,
        }
    }
    match (
        serde_json::from_str::<serde_json::Value>(base),
        serde_json::from_str::<serde_json::Value>(patch),
    ) {
        (Ok(mut base), Ok(patch)) => {
            merge(&mut base, patch);
            base.to_string()
        }
        // Both were written by the chat layer as JSON; a damaged row reads as its own text.
        _ => patch.to_owned(),
    }
}

/// What `EventRow::from_row` reads, of `events e` and its origin `o`.
macro_rules! event_columns {
    () => {
        "SELECT e.sequence, e.type, e.envelope, o.envelope
         FROM events e LEFT JOIN events o ON o.sequence = e.origin "
    };
}

/// Which events a log page shows.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub event_type: Option<String>,
    pub thread_id: Option<String>,
    /// Only events after this sequence number.
    pub since: Option<i64>,
}

/// The committed events after a sequence number, oldest first (`events_after`).
pub(super) const EVENTS_AFTER: &str = concat!(
    event_columns!(),
    "WHERE e.sequence > ? ORDER BY e.sequence LIMIT ?"
);

/// A page of the event log, newest first (`events_page`).
pub(super) const EVENTS_PAGE: &str = concat!(
    event_columns!(),
    "WHERE (?1 IS NULL OR e.type = ?1) AND (?2 IS NULL OR e.thread_id = ?2)
       AND e.sequence > ?3 AND e.sequence < ?4
     ORDER BY e.sequence DESC LIMIT ?5"
);

impl View<'_> {
    /// Up to `limit` events committed after `after`, in commit order.
    pub fn events_after(&self, after: i64, limit: u32) -> Result<Vec<EventRow>, Error> {
        Ok(self
            .conn
            .prepare_cached(EVENTS_AFTER)?
            .query_map(params![after, i64::from(limit)], EventRow::from_row)?
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// A page of the events `filter` selects, newest first, below `before` when continuing;
    /// and whether more remain.
    pub fn events_page(
        &self,
        filter: &EventFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<EventRow>, bool), Error> {
        let mut rows = self
            .conn
            .prepare_cached(EVENTS_PAGE)?
            .query_map(
                params![
                    filter.event_type,
                    filter.thread_id,
                    filter.since.unwrap_or(0),
                    before.unwrap_or(i64::MAX),
                    i64::from(limit) + 1
                ],
                EventRow::from_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        Ok((rows, more))
    }

    /// The sequence number of the newest committed event (0 when there is none).
    pub fn last_event_sequence(&self) -> Result<i64, Error> {
        Ok(self
            .conn
            .prepare_cached("SELECT COALESCE(MAX(sequence), 0) FROM events")?
            .query_row([], |row| row.get(0))?)
    }
}

impl Tx<'_> {
    /// Appends an event to the outbox; returns its sequence number.
    pub fn append_event(&self, event: &NewEvent) -> Result<i64, Error> {
        Ok(self
            .conn()
            .prepare_cached(
                "INSERT INTO events (type, thread_id, recipient, created_at, envelope, origin)
                 VALUES (?, ?, ?, ?, ?, ?) RETURNING sequence",
            )?
            .query_row(
                params![
                    event.event_type,
                    event.thread_id,
                    event.recipient,
                    event.created_at,
                    event.envelope,
                    event.origin
                ],
                |row| row.get(0),
            )?)
    }
}
