//! Event Grid subscriptions and the delivery state of each (event, subscription) pair. The
//! dispatcher (`src/eventgrid/`) matches committed events against subscriptions, queues their
//! deliveries here and records each attempt, so delivery resumes where it stopped after a
//! restart. The rules (filters, retry schedule) are the dispatcher's; this file only stores.

use rusqlite::{OptionalExtension, Row, params};

use super::{Error, Tx, View};

/// One stored subscription.
#[derive(Debug, Clone)]
pub struct EventSubscriptionRow {
    pub name: String,
    /// The validated ARM properties (JSON), as the dispatcher wrote them.
    pub definition: String,
    /// Every event up to this sequence number has been matched against its filter.
    pub position: i64,
}

impl EventSubscriptionRow {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(EventSubscriptionRow {
            name: row.get(0)?,
            definition: row.get(1)?,
            position: row.get(2)?,
        })
    }
}

/// A delivery that is due, with its event.
#[derive(Debug, Clone)]
pub struct DueDeliveryRow {
    pub sequence: i64,
    /// Attempts made before this one (`aeg-delivery-count`).
    pub attempt_count: u32,
    /// When the event was matched: the start of its time to live.
    pub queued_at: i64,
    /// The event in the Event Grid schema (JSON).
    pub envelope: String,
}

/// The state of one delivery, for the event log.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub sequence: i64,
    pub subscription: String,
    /// `pending`, `retrying`, `delivered` or `deadLettered`.
    pub state: String,
    /// JSON array of `{"at", "status" | "error"}`.
    pub attempts: String,
}

/// The outcome of one attempt, for every delivery of its batch.
#[derive(Debug, Clone)]
pub struct DeliveryAttempt {
    /// `{"at", "status" | "error"}` (JSON).
    pub attempt: String,
    /// The state after it: `delivered`, `retrying` or `deadLettered`.
    pub state: &'static str,
    /// When the next attempt is due (only read while `retrying`).
    pub next_attempt_at: i64,
}

/// Every subscription, by name.
const LIST_SUBSCRIPTIONS: &str = "SELECT name, definition, position
     FROM event_subscriptions ORDER BY name";

/// One subscription.
const GET_SUBSCRIPTION: &str = "SELECT name, definition, position
     FROM event_subscriptions WHERE name = ?";

/// The due deliveries of one subscription, oldest event first.
pub(super) const DUE_DELIVERIES: &str = concat!(
    "SELECT d.sequence, d.attempt_count, d.queued_at, e.envelope, o.envelope",
    " FROM event_deliveries d JOIN events e ON e.sequence = d.sequence",
    " LEFT JOIN events o ON o.sequence = e.origin",
    " WHERE d.subscription = ? AND d.state IN ('pending', 'retrying') AND d.next_attempt_at <= ?",
    " ORDER BY d.sequence LIMIT ?"
);

impl View<'_> {
    /// Every subscription, by name.
    pub fn list_event_subscriptions(&self) -> Result<Vec<EventSubscriptionRow>, Error> {
        Ok(self
            .conn
            .prepare_cached(LIST_SUBSCRIPTIONS)?
            .query_map([], EventSubscriptionRow::from_row)?
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// One subscription.
    pub fn get_event_subscription(
        &self,
        name: &str,
    ) -> Result<Option<EventSubscriptionRow>, Error> {
        Ok(self
            .conn
            .prepare_cached(GET_SUBSCRIPTION)?
            .query_row([name], EventSubscriptionRow::from_row)
            .optional()?)
    }

    /// Up to `limit` deliveries of `subscription` due at `now`, oldest event first.
    pub fn due_deliveries(
        &self,
        subscription: &str,
        now: i64,
        limit: u32,
    ) -> Result<Vec<DueDeliveryRow>, Error> {
        Ok(self
            .conn
            .prepare_cached(DUE_DELIVERIES)?
            .query_map(params![subscription, now, i64::from(limit)], |row| {
                Ok(DueDeliveryRow {
                    sequence: row.get(0)?,
                    attempt_count: row.get(1)?,
                    queued_at: row.get(2)?,
                    envelope: super::events::complete_envelope(row.get(3)?, row.get(4)?),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// When the next undelivered event of `subscription` is due, if it has one.
    pub fn next_delivery_due(&self, subscription: &str) -> Result<Option<i64>, Error> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT MIN(next_attempt_at) FROM event_deliveries
                 WHERE subscription = ? AND state IN ('pending', 'retrying')",
            )?
            .query_row([subscription], |row| row.get(0))?)
    }

    /// The deliveries of the events `low..=high`, by event and subscription.
    pub fn deliveries_between(&self, low: i64, high: i64) -> Result<Vec<DeliveryRow>, Error> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT sequence, subscription, state, attempts FROM event_deliveries
                 WHERE sequence BETWEEN ? AND ? ORDER BY sequence, subscription",
            )?
            .query_map(params![low, high], |row| {
                Ok(DeliveryRow {
                    sequence: row.get(0)?,
                    subscription: row.get(1)?,
                    state: row.get(2)?,
                    attempts: row.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?)
    }
}

impl Tx<'_> {
    /// Creates or replaces a subscription; true when it was created. A new one starts after
    /// the newest committed event; a replaced one keeps its position and pending deliveries.
    pub fn upsert_event_subscription(
        &self,
        name: &str,
        definition: &str,
        origin: &str,
        now: i64,
    ) -> Result<bool, Error> {
        let replaced = self
            .conn()
            .prepare_cached(
                "UPDATE event_subscriptions SET definition = ?, origin = ?, updated_at = ?
                 WHERE name = ?",
            )?
            .execute(params![definition, origin, now, name])?;
        if replaced > 0 {
            return Ok(false);
        }
        let position = self.last_event_sequence()?;
        self.conn()
            .prepare_cached(
                "INSERT INTO event_subscriptions
                     (name, definition, origin, created_at, updated_at, position)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![name, definition, origin, now, now, position])?;
        Ok(true)
    }

    /// Deletes a subscription and its deliveries; true when there was one.
    pub fn delete_event_subscription(&self, name: &str) -> Result<bool, Error> {
        self.conn()
            .prepare_cached("DELETE FROM event_deliveries WHERE subscription = ?")?
            .execute([name])?;
        Ok(self
            .conn()
            .prepare_cached("DELETE FROM event_subscriptions WHERE name = ?")?
            .execute([name])?
            > 0)
    }

    /// Queues deliveries of `sequences` to `subscription`, due at `now`, and moves its
    /// position to `position`, unless someone else moved it since `from` (then nothing).
    pub fn queue_deliveries(
        &self,
        subscription: &str,
        from: i64,
        position: i64,
        sequences: &[i64],
        now: i64,
    ) -> Result<(), Error> {
        let moved = self
            .conn()
            .prepare_cached(
                "UPDATE event_subscriptions SET position = ? WHERE name = ? AND position = ?",
            )?
            .execute(params![position, subscription, from])?;
        if moved == 0 {
            return Ok(());
        }
        let mut insert = self.conn().prepare_cached(
            "INSERT OR IGNORE INTO event_deliveries
                 (subscription, sequence, state, queued_at, next_attempt_at)
             VALUES (?, ?, 'pending', ?, ?)",
        )?;
        for sequence in sequences {
            insert.execute(params![subscription, sequence, now, now])?;
        }
        Ok(())
    }

    /// Records one attempt for every delivery of its batch.
    pub fn record_delivery_attempt(
        &self,
        subscription: &str,
        sequences: &[i64],
        attempt: &DeliveryAttempt,
    ) -> Result<(), Error> {
        let mut update = self.conn().prepare_cached(
            "UPDATE event_deliveries
             SET state = ?, attempt_count = attempt_count + 1, next_attempt_at = ?,
                 attempts = json_insert(attempts, '$[#]', json(?))
             WHERE subscription = ? AND sequence = ?",
        )?;
        for sequence in sequences {
            update.execute(params![
                attempt.state,
                attempt.next_attempt_at,
                attempt.attempt,
                subscription,
                sequence
            ])?;
        }
        Ok(())
    }

    /// Marks deliveries dead-lettered without an attempt (their time to live ran out).
    pub fn expire_deliveries(&self, subscription: &str, sequences: &[i64]) -> Result<(), Error> {
        let mut update = self.conn().prepare_cached(
            "UPDATE event_deliveries SET state = 'deadLettered'
             WHERE subscription = ? AND sequence = ?",
        )?;
        for sequence in sequences {
            update.execute(params![subscription, sequence])?;
        }
        Ok(())
    }

    /// Deletes the `--event-webhook` subscriptions not named in `keep` (flags of an earlier run).
    pub fn delete_flag_subscriptions_except(&self, keep: &[String]) -> Result<(), Error> {
        let stale: Vec<String> = self
            .conn()
            .prepare_cached("SELECT name FROM event_subscriptions WHERE origin = 'flag'")?
            .query_map([], |row| row.get(0))?
            .collect::<Result<Vec<String>, _>>()?
            .into_iter()
            .filter(|name| !keep.contains(name))
            .collect();
        for name in stale {
            self.delete_event_subscription(&name)?;
        }
        Ok(())
    }
}
