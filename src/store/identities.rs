//! Identities and their token state.

use sqlx::FromRow;

use super::Store;

/// One identity.
#[derive(Debug, Clone, FromRow)]
pub struct IdentityRow {
    pub id: String,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
    /// Tokens whose issue time is at or before this instant are refused.
    pub tokens_revoked_at: i64,
    pub last_token_issued_at: Option<i64>,
    /// The caller's own id for the identity (2025-06-30), unique.
    pub custom_id: Option<String>,
}

impl Store {
    /// Creates an identity.
    pub async fn insert_identity(&self, id: &str, now: i64) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO identities (id, created_at) VALUES (?, ?)")
            .bind(id)
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// The identity with this `customId`, or a new one (`id`) carrying it: one transaction, so
    /// two concurrent creates with the same customId get the same identity. Returns the id and
    /// whether it was created now.
    pub async fn insert_identity_with_custom_id(
        &self,
        id: &str,
        custom_id: &str,
        now: i64,
    ) -> Result<(String, bool), sqlx::Error> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT id FROM identities WHERE custom_id = ? AND deleted_at IS NULL",
        )
        .bind(custom_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(existing) = existing {
            return Ok((existing, false));
        }
        // A deleted identity releases its customId.
        sqlx::query("UPDATE identities SET custom_id = NULL WHERE custom_id = ?")
            .bind(custom_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO identities (id, created_at, custom_id) VALUES (?, ?, ?)")
            .bind(id)
            .bind(now)
            .bind(custom_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((id.to_owned(), true))
    }

    /// The identity with this id, deleted or not.
    pub async fn get_identity(&self, id: &str) -> Result<Option<IdentityRow>, sqlx::Error> {
        sqlx::query_as::<_, IdentityRow>(
            "SELECT id, created_at, deleted_at, tokens_revoked_at, last_token_issued_at, custom_id
             FROM identities WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
    }

    /// Notes that a token was issued at `at`; false if the identity is unknown or deleted.
    pub async fn record_token_issued(&self, id: &str, at: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE identities SET last_token_issued_at = ? WHERE id = ? AND deleted_at IS NULL",
        )
        .bind(at)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Refuses every token issued until `now`; false if the identity is unknown or deleted.
    pub async fn revoke_tokens(&self, id: &str, now: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE identities SET tokens_revoked_at = MAX(tokens_revoked_at, ?)
             WHERE id = ? AND deleted_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks the identity deleted (its tokens are refused from now on); false if unknown.
    /// Deleting twice succeeds twice.
    pub async fn delete_identity(&self, id: &str, now: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE identities SET deleted_at = COALESCE(deleted_at, ?),
                                   tokens_revoked_at = MAX(tokens_revoked_at, ?)
             WHERE id = ?",
        )
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use sqlx::SqlitePool;

    use super::*;

    #[sqlx::test(migrator = "crate::store::MIGRATOR")]
    async fn revoke_and_delete_change_token_state(pool: SqlitePool) -> Result<(), sqlx::Error> {
        let store = Store::from_pool(pool);
        store.insert_identity("8:acs:r_u", 10).await?;
        assert!(store.record_token_issued("8:acs:r_u", 20).await?);
        assert!(store.revoke_tokens("8:acs:r_u", 30).await?);
        let row = store.get_identity("8:acs:r_u").await?.expect("inserted");
        assert_eq!(
            (row.tokens_revoked_at, row.last_token_issued_at),
            (30, Some(20))
        );
        assert!(store.delete_identity("8:acs:r_u", 40).await?);
        assert!(
            store.delete_identity("8:acs:r_u", 50).await?,
            "second delete also succeeds"
        );
        let row = store
            .get_identity("8:acs:r_u")
            .await?
            .expect("kept as deleted");
        assert_eq!((row.deleted_at, row.tokens_revoked_at), (Some(40), 50));
        assert!(
            !store.revoke_tokens("8:acs:r_u", 60).await?,
            "a deleted identity has no tokens"
        );
        assert!(!store.revoke_tokens("8:acs:nobody", 60).await?);
        Ok(())
    }
}
