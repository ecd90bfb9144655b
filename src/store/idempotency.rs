//! The `repeatability-request-id` record of thread creation: the first 201 body per caller and
//! id, so that a retried create returns the same thread instead of a second one.

use rusqlite::{Connection, OptionalExtension, params};

use super::DbError;

/// A repeatability id as scoped by the emulator: per calling identity.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub caller_id: String,
    pub request_id: String,
    /// Hash of the first request's body, kept for inspection (a repeat is replayed whatever
    /// its body).
    pub request_hash: String,
}

/// The thread and the stored first response body for this key, if any.
pub(super) fn lookup(
    conn: &Connection,
    key: &IdempotencyKey,
) -> Result<Option<(String, String)>, DbError> {
    conn.prepare_cached(
        "SELECT thread_id, body FROM idempotency WHERE caller_id = ? AND request_id = ?",
    )?
    .query_row([&key.caller_id, &key.request_id], |row| {
        Ok((row.get(0)?, row.get(1)?))
    })
    .optional()
}

/// Stores the first response for this key.
pub(super) fn record(
    conn: &Connection,
    key: &IdempotencyKey,
    thread_id: &str,
    body: &str,
    now: i64,
) -> Result<(), DbError> {
    conn.prepare_cached(
        "INSERT INTO idempotency (caller_id, request_id, request_hash, thread_id, body, created_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        key.caller_id,
        key.request_id,
        key.request_hash,
        thread_id,
        body,
        now
    ])?;
    Ok(())
}
