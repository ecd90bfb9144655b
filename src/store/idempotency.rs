//! The `repeatability-request-id` record of thread creation: the first 201 body per caller and
//! id, so that a retried create returns the same thread instead of a second one.

use sqlx::SqliteConnection;

/// A repeatability id as scoped by the emulator: per calling identity.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub caller_id: String,
    pub request_id: String,
    /// Hash of the first request's body, kept for inspection (a repeat is replayed whatever
    /// its body).
    pub request_hash: String,
}

/// The stored first response body for this key, if any.
pub(super) async fn lookup(
    conn: &mut SqliteConnection,
    key: &IdempotencyKey,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT body FROM idempotency WHERE caller_id = ? AND request_id = ?")
        .bind(&key.caller_id)
        .bind(&key.request_id)
        .fetch_optional(&mut *conn)
        .await
}

/// Stores the first response for this key.
pub(super) async fn record(
    conn: &mut SqliteConnection,
    key: &IdempotencyKey,
    thread_id: &str,
    body: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO idempotency (caller_id, request_id, request_hash, thread_id, body, created_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&key.caller_id)
    .bind(&key.request_id)
    .bind(&key.request_hash)
    .bind(thread_id)
    .bind(body)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
