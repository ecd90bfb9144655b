//! All SQL of the emulator. `Store` owns the SQLite connections; one file per table group.
//! Functions take plain values and return rows or outcomes; they know nothing of HTTP,
//! api-versions or chat rules. Every write runs in one `BEGIN IMMEDIATE` transaction, so a
//! request changes all it should or nothing.
//!
//! The chat layer (`src/chat/`) composes its operations from the typed reads of `View` and
//! the writes of `Tx`, inside `Store::read` and `Store::write` closures: a rule that guards a
//! write (the caller is still a participant, the thread still exists, a limit) is checked in
//! the same transaction as the write, and an `Err` from the closure undoes all of it.
//!
//! Why rusqlite and not sqlx (the design's first choice): sqlx runs each SQLite connection on
//! its own thread and hands every statement and every row across a channel. Measured with the
//! benchmark (bench/README.md), those hand-offs were about 60% of the emulator's CPU and put
//! it at 2-4% of a bare axum server. Here a request runs its SQL directly on the task's thread
//! with cached prepared statements: a read is a few microseconds, with no hand-off at all.

mod connection;
mod error;
mod event_subscriptions;
mod events;
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

use rusqlite::Connection;

pub use error::Error;
pub use event_subscriptions::{DeliveryAttempt, DueDeliveryRow};
pub use events::{EventFilter, EventRow, NewEvent};
pub use idempotency::IdempotencyKey;
pub use identities::IdentityRow;
pub use images::ImageRow;
pub use messages::{
    MessageContent, MessageEdit, MessageKind, MessageRow, MessagesPage, NewMessage,
    ParticipantSnapshot, StoredAttachment,
};
pub use participants::{NewParticipant, ParticipantRow};
pub use receipts::ReadReceiptRow;
pub use state::{
    IdentityState, MessageState, ParticipantState, STATE_FORMAT, StateDocument, ThreadState,
};
pub use threads::{NewThread, ThreadRow, ThreadUpdate};

/// What the SQL inside the store fails with; callers see `Error`.
type DbError = rusqlite::Error;

/// A reader's view of the database, for the chat layer's closures: typed queries, no SQL
/// outside the store. Statements in one closure may see different commits (use a write for
/// checks that must hold when something is written).
#[derive(Clone, Copy)]
pub struct View<'c> {
    conn: &'c Connection,
}

/// The writer's transaction, for the chat layer's closures: the reads of `View` (they see
/// what this transaction wrote so far) and the writes.
pub struct Tx<'c> {
    view: View<'c>,
}

impl<'c> std::ops::Deref for Tx<'c> {
    type Target = View<'c>;

    fn deref(&self) -> &View<'c> {
        &self.view
    }
}

impl<'c> Tx<'c> {
    fn conn(&self) -> &'c Connection {
        self.view.conn
    }
}

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
    pub async fn ping(&self) -> Result<(), Error> {
        Ok(self
            .db
            .read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())))?)
    }

    /// Runs `work` on a reader connection, on this thread (reads take microseconds).
    pub(crate) fn read<R, E: From<Error>>(
        &self,
        work: impl FnOnce(View<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        self.db
            .read(|conn| Ok(work(View { conn })))
            .map_err(|e| E::from(Error::from(e)))?
    }

    /// Runs `work` in the writer's next transaction and answers after its COMMIT. An `Err`
    /// from `work`, a rule's refusal included, undoes everything `work` wrote.
    pub(crate) async fn write<R, E>(
        &self,
        work: impl FnOnce(&Tx<'_>) -> Result<R, E> + Send + 'static,
    ) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        self.db
            .write(move |conn| {
                work(&Tx {
                    view: View { conn },
                })
            })
            .await
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
        store
            .write(move |tx| {
                tx.create_thread(&new_thread, 1)?;
                tx.upsert_read_receipt(thread, user, 1, 2)
            })
            .await?;
        // Different page sizes and offsets, as different clients ask for them.
        for (limit, skip) in [(1, 0), (2, 1), (50, 0), (1, 1)] {
            store.read(|view| -> Result<(), Error> {
                view.messages_page(thread, 0, None, None, limit)?;
                view.participants_page(thread, skip, limit)?;
                view.read_receipts_page(thread, skip, limit)?;
                view.threads_page(user, None, None, limit)?;
                // Callers and non-callers, as every chat request checks.
                view.thread_and_participant(thread, user)?;
                view.thread_and_participant(thread, "8:acs:r_w")?;
                Ok(())
            })?;
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
