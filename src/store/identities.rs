//! Identities and their token state.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{OptionalExtension, params};

use super::{Error, Store, View};

/// Most identities the cache holds before it starts over.
const CACHE_CAPACITY: usize = 10_000;

/// Read-through cache of identity rows: every chat request checks its caller's identity, and a
/// map lookup is cheaper still than a cached query. Every identity write goes through `Store`,
/// which invalidates after it commits; the generation counter keeps a read that raced a write
/// from caching what it read before the write. (The offline `import`/`reset` subcommands write
/// the file directly: they are for a stopped emulator, the HTTP API for a running one.)
#[derive(Debug, Default)]
pub(super) struct IdentityCache {
    rows: Mutex<HashMap<String, IdentityRow>>,
    generation: AtomicU64,
}

impl IdentityCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, IdentityRow>> {
        super::connection::lock(&self.rows)
    }

    fn get(&self, id: &str) -> Option<IdentityRow> {
        self.lock().get(id).cloned()
    }

    fn insert_if_current(&self, generation: u64, row: IdentityRow) {
        let mut rows = self.lock();
        if self.generation.load(Ordering::SeqCst) == generation {
            if rows.len() >= CACHE_CAPACITY {
                rows.clear();
            }
            rows.insert(row.id.clone(), row);
        }
    }

    /// Forgets one identity (after a write to it has committed).
    pub(super) fn invalidate(&self, id: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.lock().remove(id);
    }

    /// Forgets everything (after a reset, an import, or a write to several rows).
    pub(super) fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.lock().clear();
    }
}

/// One identity.
#[derive(Debug, Clone)]
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

/// The columns `IdentityRow::from_row` reads, in order.
macro_rules! identity_columns {
    () => {
        "id, created_at, deleted_at, tokens_revoked_at, last_token_issued_at, custom_id"
    };
}
pub(super) use identity_columns;

impl IdentityRow {
    /// Reads the columns of `identity_columns!`.
    pub(super) fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(IdentityRow {
            id: row.get(0)?,
            created_at: row.get(1)?,
            deleted_at: row.get(2)?,
            tokens_revoked_at: row.get(3)?,
            last_token_issued_at: row.get(4)?,
            custom_id: row.get(5)?,
        })
    }
}

impl View<'_> {
    /// The identity with this id, deleted or not, as this connection sees it (no cache: for
    /// checks inside a write).
    pub fn identity(&self, id: &str) -> Result<Option<IdentityRow>, Error> {
        Ok(self
            .conn
            .prepare_cached(concat!(
                "SELECT ",
                identity_columns!(),
                " FROM identities WHERE id = ?"
            ))?
            .query_row([id], IdentityRow::from_row)
            .optional()?)
    }
}

impl Store {
    /// Creates an identity.
    pub async fn insert_identity(&self, id: &str, now: i64) -> Result<(), Error> {
        let id = id.to_owned();
        self.db
            .write(move |tx| {
                tx.prepare_cached("INSERT INTO identities (id, created_at) VALUES (?, ?)")?
                    .execute(params![id, now])?;
                Ok(())
            })
            .await
    }

    /// The identity with this `customId`, or a new one (`id`) carrying it: one transaction, so
    /// two concurrent creates with the same customId get the same identity. Returns the id and
    /// whether it was created now.
    pub async fn insert_identity_with_custom_id(
        &self,
        id: &str,
        custom_id: &str,
        now: i64,
    ) -> Result<(String, bool), Error> {
        let (id, custom_id) = (id.to_owned(), custom_id.to_owned());
        let outcome = self
            .db
            .write(move |tx| -> Result<_, Error> {
                let existing: Option<String> = tx
                    .prepare_cached(
                        "SELECT id FROM identities WHERE custom_id = ? AND deleted_at IS NULL",
                    )?
                    .query_row([&custom_id], |row| row.get(0))
                    .optional()?;
                if let Some(existing) = existing {
                    return Ok((existing, false));
                }
                // A deleted identity releases its customId.
                tx.prepare_cached("UPDATE identities SET custom_id = NULL WHERE custom_id = ?")?
                    .execute([&custom_id])?;
                tx.prepare_cached(
                    "INSERT INTO identities (id, created_at, custom_id) VALUES (?, ?, ?)",
                )?
                .execute(params![id, now, custom_id])?;
                Ok((id, true))
            })
            .await?;
        if outcome.1 {
            // The release above may have changed another row.
            self.identities.clear();
        }
        Ok(outcome)
    }

    /// The identity with this id, deleted or not.
    pub async fn get_identity(&self, id: &str) -> Result<Option<IdentityRow>, Error> {
        if let Some(row) = self.identities.get(id) {
            return Ok(Some(row));
        }
        let generation = self.identities.generation.load(Ordering::SeqCst);
        let row = self.read(|view| view.identity(id))?;
        if let Some(row) = &row {
            self.identities.insert_if_current(generation, row.clone());
        }
        Ok(row)
    }

    /// Runs one identity UPDATE and forgets the cached row; true if a row changed.
    async fn update_identity(&self, id: &str, sql: &'static str, at: i64) -> Result<bool, Error> {
        let owned_id = id.to_owned();
        let changed = self
            .db
            .write(move |tx| {
                Ok::<_, Error>(tx.prepare_cached(sql)?.execute(params![at, owned_id])?)
            })
            .await;
        self.identities.invalidate(id);
        Ok(changed? == 1)
    }

    /// Notes that a token was issued at `at`; false if the identity is unknown or deleted.
    pub async fn record_token_issued(&self, id: &str, at: i64) -> Result<bool, Error> {
        self.update_identity(
            id,
            "UPDATE identities SET last_token_issued_at = ?1 WHERE id = ?2 AND deleted_at IS NULL",
            at,
        )
        .await
    }

    /// Refuses every token issued until `now`; false if the identity is unknown or deleted.
    pub async fn revoke_tokens(&self, id: &str, now: i64) -> Result<bool, Error> {
        self.update_identity(
            id,
            "UPDATE identities SET tokens_revoked_at = MAX(tokens_revoked_at, ?1)
             WHERE id = ?2 AND deleted_at IS NULL",
            now,
        )
        .await
    }

    /// Marks the identity deleted (its tokens are refused from now on); false if unknown.
    /// Deleting twice succeeds twice.
    pub async fn delete_identity(&self, id: &str, now: i64) -> Result<bool, Error> {
        self.update_identity(
            id,
            "UPDATE identities SET deleted_at = COALESCE(deleted_at, ?1),
                                   tokens_revoked_at = MAX(tokens_revoked_at, ?1)
             WHERE id = ?2",
            now,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn revoke_and_delete_change_token_state() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Store::connect(dir.path(), false).await?;
        store.insert_identity("8:acs:r_u", 10).await?;
        // Cached before the writes: the writes must invalidate it.
        assert_eq!(
            store
                .get_identity("8:acs:r_u")
                .await?
                .map(|r| r.tokens_revoked_at),
            Some(0)
        );
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
