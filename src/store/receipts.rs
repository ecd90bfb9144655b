//! Read receipts: the latest per participant.

use rusqlite::params;

use super::{Error, Tx, View};

/// One participant's read receipt.
#[derive(Debug, Clone)]
pub struct ReadReceiptRow {
    pub user_id: String,
    pub message_id: i64,
    pub read_at: i64,
}

impl ReadReceiptRow {
    /// Reads `user_id, message_id, read_at`.
    pub(super) fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(ReadReceiptRow {
            user_id: row.get(0)?,
            message_id: row.get(1)?,
            read_at: row.get(2)?,
        })
    }
}

/// A page of receipts (`list_read_receipts_page`).
pub(super) const LIST_READ_RECEIPTS: &str = "SELECT user_id, message_id, read_at FROM read_receipts
     WHERE thread_id = ? ORDER BY rowid LIMIT ? OFFSET ?";

impl View<'_> {
    /// Receipts in the order participants first sent one, skipping `skip`, at most `limit`;
    /// and whether more remain.
    pub fn read_receipts_page(
        &self,
        thread_id: &str,
        skip: u32,
        limit: u32,
    ) -> Result<(Vec<ReadReceiptRow>, bool), Error> {
        let mut rows = self
            .conn
            .prepare_cached(LIST_READ_RECEIPTS)?
            .query_map(
                params![thread_id, i64::from(limit) + 1, i64::from(skip)],
                ReadReceiptRow::from_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        Ok((rows, more))
    }
}

impl Tx<'_> {
    /// Records that `user_id` read up to `message_id`. Only the latest receipt per participant
    /// is kept (the service lists one per sender); a receipt for an older message than the one
    /// already recorded does not move the reader back.
    pub fn upsert_read_receipt(
        &self,
        thread_id: &str,
        user_id: &str,
        message_id: i64,
        now: i64,
    ) -> Result<(), Error> {
        self.conn()
            .prepare_cached(
                "INSERT INTO read_receipts (thread_id, user_id, message_id, read_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT (thread_id, user_id) DO UPDATE
                 SET message_id = excluded.message_id, read_at = excluded.read_at
                 WHERE excluded.message_id >= read_receipts.message_id",
            )?
            .execute(params![thread_id, user_id, message_id, now])?;
        Ok(())
    }
}
