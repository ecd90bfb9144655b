//! Images uploaded to threads (Chat 2024-03-15-preview).

use sqlx::FromRow;

use super::Store;

/// One stored image.
#[derive(Debug, Clone, FromRow)]
pub struct ImageRow {
    pub id: String,
    pub name: Option<String>,
    pub content_type: String,
    pub data: Vec<u8>,
    pub created_at: i64,
}

impl Store {
    /// Stores an uploaded image.
    pub async fn insert_image(&self, thread_id: &str, image: &ImageRow) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO images (thread_id, id, name, content_type, data, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(thread_id)
        .bind(&image.id)
        .bind(&image.name)
        .bind(&image.content_type)
        .bind(&image.data)
        .bind(image.created_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// An image of a thread.
    pub async fn get_image(
        &self,
        thread_id: &str,
        id: &str,
    ) -> Result<Option<ImageRow>, sqlx::Error> {
        sqlx::query_as::<_, ImageRow>(
            "SELECT id, name, content_type, data, created_at FROM images WHERE thread_id = ? AND id = ?",
        )
        .bind(thread_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
    }

    /// Deletes an image; false if there was none.
    pub async fn delete_image(&self, thread_id: &str, id: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM images WHERE thread_id = ? AND id = ?")
            .bind(thread_id)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
