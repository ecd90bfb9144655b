//! All SQL of the emulator. `Store` owns the SQLite connections; one file per table group.
//! Functions take plain values and return rows or outcomes; they know nothing of HTTP or
//! api-versions. Every write runs in one `BEGIN IMMEDIATE` transaction, so a request changes
//! all it should or nothing.
//!
//! Why rusqlite and not sqlx (the design's first choice): sqlx runs each SQLite connection on
//! its own thread and hands every statement and every row across a channel. Measured with the
//! benchmark (bench/README.md), those hand-offs were about 60% of the emulator's CPU and put
//! it at 2-4% of a bare axum server. Here a request runs its SQL directly on the task's thread
//! with cached prepared statements: a read is a few microseconds, with no hand-off at all.

mod connection;
mod idempotency;
mod identities;
mod images;
mod messages;
mod migrations;
mod participants;
mod receipts;
mod state;
mod threads;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

pub use idempotency::IdempotencyKey;
pub use identities::IdentityRow;
pub use images::ImageRow;
pub use messages::{
    MessageContent, MessageRow, MessagesPage, NewMessage, ParticipantSnapshot, StoredAttachment,
};
pub use participants::{AddOutcome, NewParticipant, ParticipantRow};
pub use receipts::ReadReceiptRow;
pub use state::{
    IdentityState, ImageState, MessageState, ParticipantState, ReadReceiptState,
    RepeatabilityState, STATE_FORMAT, StateDocument, ThreadState,
};
pub use threads::{CreateOutcome, NewThread, ThreadAccess, ThreadRow, ThreadUpdate};

/// What every store function fails with: a SQLite error. `QueryReturnedNoRows` and foreign-key
/// violations mean a row vanished under a concurrent delete or reset (the HTTP layer answers
/// 404 for them).
pub type DbError = rusqlite::Error;

/// Metadata maps (`map<string,string>` on the wire), kept sorted so exports are stable.
pub type Metadata = BTreeMap<String, String>;

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: Arc<connection::Database>,
    identities: Arc<identities::IdentityCache>,
}

impl Store {
    /// Opens (creating if needed) `emulator.db` in `data_dir`, or a private in-memory database,
    /// and applies the migrations.
    pub async fn connect(data_dir: &Path, in_memory: bool) -> anyhow::Result<Self> {
        let db = if in_memory {
            connection::Database::in_memory()?
        } else {
            std::fs::create_dir_all(data_dir)?;
            connection::Database::open(&data_dir.join("emulator.db"))?
        };
        Ok(Store {
            db: Arc::new(db),
            identities: Default::default(),
        })
    }

    /// Checkpoints the write-ahead log into the database file and stops the background
    /// checkpointer (clean shutdown). Every acknowledged write was committed before; this only
    /// leaves a tidy file behind.
    pub async fn close(&self) {
        let db = Arc::clone(&self.db);
        let _ = tokio::task::spawn_blocking(move || db.close()).await;
    }

    /// A trivial query, for health checks.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.db
            .read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())))
    }
}

/// Serialises a metadata map for a TEXT column.
pub(crate) fn metadata_to_text(metadata: &Metadata) -> String {
    serde_json::to_string(metadata).unwrap_or_else(|_| "{}".to_owned())
}

/// Reads a metadata TEXT column; a damaged value reads as empty rather than failing the request.
pub fn metadata_from_text(text: &str) -> Metadata {
    serde_json::from_str(text).unwrap_or_default()
}

/// Applies a JSON merge patch (RFC 7396) of string values: `null` removes a key.
pub fn merge_metadata(current: &mut Metadata, patch: &BTreeMap<String, Option<String>>) {
    for (key, value) in patch {
        match value {
            Some(v) => {
                current.insert(key.clone(), v.clone());
            }
            None => {
                current.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How often SQLite compiled the cached statement `sql` again since it was first prepared.
    fn reprepares(store: &Store, sql: &str) -> i32 {
        store
            .db
            .read(|conn| {
                Ok(conn
                    .prepare_cached(sql)?
                    .get_status(rusqlite::StatementStatus::RePrepare))
            })
            .expect("statement")
    }

    #[tokio::test]
    async fn paged_queries_and_the_thread_check_are_not_recompiled_at_each_use()
    -> anyhow::Result<()> {
        let store = Store::connect(Path::new("unused"), true).await?;
        let (thread, user) = ("19:t@thread.v2", "8:acs:r_u");
        let new_thread = NewThread {
            id: thread.to_owned(),
            topic: "t".to_owned(),
            creator: user.to_owned(),
            metadata: Metadata::new(),
            retention_policy: None,
            participants: vec![NewParticipant::bare("8:acs:r_v")],
        };
        store.create_thread(&new_thread, None, "{}", 1).await?;
        store.upsert_read_receipt(thread, user, 1, 2).await?;
        // Different page sizes and offsets, as different clients ask for them.
        for (limit, skip) in [(1, 0), (2, 1), (50, 0), (1, 1)] {
            store
                .list_messages_page(thread, 0, None, None, limit)
                .await?;
            store.list_participants_page(thread, skip, limit).await?;
            store.list_read_receipts_page(thread, skip, limit).await?;
            store.list_threads_page(user, None, None, limit).await?;
            // Callers and non-callers, as every chat request checks.
            store.thread_access(thread, user, false).await?;
            store.thread_access(thread, "8:acs:r_w", limit > 1).await?;
        }
        for sql in [
            messages::LIST_MESSAGES,
            participants::LIST_PARTICIPANTS,
            receipts::LIST_READ_RECEIPTS,
            threads::LIST_THREADS,
            threads::THREAD_ACCESS,
        ] {
            assert_eq!(reprepares(&store, sql), 0, "{sql}");
        }
        store.close().await;
        Ok(())
    }
}
