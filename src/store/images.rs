//! Images uploaded to threads (Chat 2024-03-15-preview).

use rusqlite::{OptionalExtension, params};

use super::{DbError, Store};

/// One stored image.
#[derive(Debug, Clone)]
pub struct ImageRow {
    pub id: String,
    pub name: Option<String>,
    pub content_type: String,
    pub data: Vec<u8>,
    pub created_at: i64,
}

impl ImageRow {
    /// Reads `id, name, content_type, data, created_at`.
    pub(super) fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(ImageRow {
            id: row.get(0)?,
            name: row.get(1)?,
            content_type: row.get(2)?,
            data: row.get(3)?,
            created_at: row.get(4)?,
        })
    }
}

impl Store {
    /// Stores an uploaded image.
    pub async fn insert_image(&self, thread_id: &str, image: ImageRow) -> Result<(), DbError> {
        let thread_id = thread_id.to_owned();
        self.db
            .write(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO images (thread_id, id, name, content_type, data, created_at)
                     VALUES (?, ?, ?, ?, ?, ?)",
                )?
                .execute(params![
                    thread_id,
                    image.id,
                    image.name,
                    image.content_type,
                    image.data,
                    image.created_at
                ])?;
                Ok(())
            })
            .await
    }

    /// An image of a thread.
    pub async fn get_image(&self, thread_id: &str, id: &str) -> Result<Option<ImageRow>, DbError> {
        self.db.read(|conn| {
            conn.prepare_cached(
                "SELECT id, name, content_type, data, created_at FROM images
                     WHERE thread_id = ? AND id = ?",
            )?
            .query_row([thread_id, id], ImageRow::from_row)
            .optional()
        })
    }

    /// Deletes an image; false if there was none.
    pub async fn delete_image(&self, thread_id: &str, id: &str) -> Result<bool, DbError> {
        let (thread_id, id) = (thread_id.to_owned(), id.to_owned());
        self.db
            .write(move |tx| {
                let deleted = tx
                    .prepare_cached("DELETE FROM images WHERE thread_id = ? AND id = ?")?
                    .execute([thread_id, id])?;
                Ok(deleted == 1)
            })
            .await
    }
}
