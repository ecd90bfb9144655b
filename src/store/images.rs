//! Images uploaded to threads (Chat 2024-03-15-preview).

use rusqlite::{OptionalExtension, params};

use super::{Error, Tx, View};

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

impl View<'_> {
    /// An image of a thread.
    pub fn image(&self, thread_id: &str, id: &str) -> Result<Option<ImageRow>, Error> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id, name, content_type, data, created_at FROM images
                 WHERE thread_id = ? AND id = ?",
            )?
            .query_row([thread_id, id], ImageRow::from_row)
            .optional()?)
    }
}

impl Tx<'_> {
    /// Stores an uploaded image.
    pub fn insert_image(&self, thread_id: &str, image: &ImageRow) -> Result<(), Error> {
        self.conn()
            .prepare_cached(
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
    }

    /// Deletes an image; false if the thread has no such image.
    pub fn delete_image(&self, thread_id: &str, id: &str) -> Result<bool, Error> {
        Ok(self
            .conn()
            .prepare_cached("DELETE FROM images WHERE thread_id = ? AND id = ?")?
            .execute([thread_id, id])?
            == 1)
    }
}
