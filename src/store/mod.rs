//! All SQL of the emulator. `Store` wraps the SQLite pool; one file per table group. Functions
//! take plain values and return rows or outcomes; they know nothing of HTTP or api-versions.
//! Every write runs in one `BEGIN IMMEDIATE` transaction, so a request changes all it should or
//! nothing, and SQLite's busy timeout (not a failed lock upgrade) handles concurrent writers.

mod idempotency;
mod identities;
mod images;
mod messages;
mod participants;
mod receipts;
mod state;
mod threads;

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqlitePool, migrate::Migrator};

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

/// The embedded migrations (`migrations/`).
pub static MIGRATOR: Migrator = sqlx::migrate!();

/// Metadata maps (`map<string,string>` on the wire), kept sorted so exports are stable.
pub type Metadata = BTreeMap<String, String>;

/// Handle to the database; cheap to clone.
///
/// Writes go through `writer`, a pool of one connection: SQLite has one writer at a time, and
/// queueing writers on the pool (async, in order) is much cheaper than letting several
/// connections race for the lock and back off in SQLite's busy handler, which sleeps. Reads
/// use `pool` and, in WAL mode, run beside the writer.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    writer: SqlitePool,
    identities: std::sync::Arc<identities::IdentityCache>,
}

impl Store {
    /// Opens (creating if needed) `emulator.db` in `data_dir`, or a private in-memory database,
    /// and applies the migrations.
    pub async fn connect(data_dir: &Path, in_memory: bool) -> anyhow::Result<Self> {
        let (pool, writer) = if in_memory {
            // An in-memory database lives as long as one connection does; one connection also
            // avoids shared-cache table locks, which do not honour the busy timeout. Reads and
            // writes share it.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(SqliteConnectOptions::from_str("sqlite::memory:")?)
                .await?;
            (pool.clone(), pool)
        } else {
            std::fs::create_dir_all(data_dir)?;
            let options = SqliteConnectOptions::new()
                .filename(data_dir.join("emulator.db"))
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // NORMAL in WAL mode: a commit survives a crash of the process (the WAL is in the
                // OS cache); only a power loss can take the last commits. Fine for an emulator.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options.clone())
                .await?;
            let readers = SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            (readers, writer)
        };
        MIGRATOR.run(&writer).await?;
        Ok(Store {
            pool,
            writer,
            identities: Default::default(),
        })
    }

    /// Wraps an existing pool (tests); the caller applies migrations.
    pub fn from_pool(pool: SqlitePool) -> Self {
        Store {
            writer: pool.clone(),
            pool,
            identities: Default::default(),
        }
    }

    /// Closes the pool, waiting for connections to finish (clean shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    /// A trivial query, for health checks.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
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
