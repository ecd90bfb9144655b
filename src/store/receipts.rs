//! Read receipts: the latest per participant.

use sqlx::FromRow;

use super::Store;

/// One participant's read receipt.
#[derive(Debug, Clone, FromRow)]
pub struct ReadReceiptRow {
    pub user_id: String,
    pub message_id: i64,
    pub read_at: i64,
}

impl Store {
    /// Records that `user_id` read up to `message_id`. Only the latest receipt per participant
    /// is kept (the service lists one per sender); a receipt for an older message than the one
    /// already recorded does not move the reader back.
    pub async fn upsert_read_receipt(
        &self,
        thread_id: &str,
        user_id: &str,
        message_id: i64,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO read_receipts (thread_id, user_id, message_id, read_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (thread_id, user_id) DO UPDATE
             SET message_id = excluded.message_id, read_at = excluded.read_at
             WHERE excluded.message_id >= read_receipts.message_id",
        )
        .bind(thread_id)
        .bind(user_id)
        .bind(message_id)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Receipts in the order participants first sent one, skipping `skip`, at most `limit`;
    /// and whether more remain.
    pub async fn list_read_receipts_page(
        &self,
        thread_id: &str,
        skip: u32,
        limit: u32,
    ) -> Result<(Vec<ReadReceiptRow>, bool), sqlx::Error> {
        let mut rows = sqlx::query_as::<_, ReadReceiptRow>(
            "SELECT user_id, message_id, read_at FROM read_receipts WHERE thread_id = ?
             ORDER BY rowid LIMIT ? OFFSET ?",
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
}
