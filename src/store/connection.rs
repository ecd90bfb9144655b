//! The SQLite connections and how requests use them.
//!
//! - One writer connection behind an async mutex: SQLite has one writer at a time, and waiting
//!   tasks yield their thread instead of sleeping in SQLite's busy handler. Each write is one
//!   `BEGIN IMMEDIATE` transaction, committed before the caller answers.
//! - Reader connections in a small pool, used directly on the calling thread (WAL readers run
//!   beside the writer). A read is a few microseconds with cached statements, so handing it to
//!   another thread would cost more than it does.
//! - A checkpointer thread copies the write-ahead log into the database file. It runs the
//!   checkpoint's fsync off the request path; SQLite would otherwise do it inside whichever
//!   commit crosses the WAL size limit.
//!
//! Durability: WAL with `synchronous=NORMAL`. A commit is in the OS once it returns, so it
//! survives a crash of the emulator; only a power loss can take the last commits.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::DbError;

/// How long a connection waits for a lock another process holds (the offline subcommands
/// against a running emulator) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Distinct statements the emulator prepares; each connection keeps them all.
const STATEMENT_CACHE: usize = 128;
/// Reader connections kept for reuse; more are opened when more threads read at once.
const READERS_KEPT: usize = 8;
/// How often the checkpointer looks for new commits.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// WAL pages after which a commit checkpoints by itself: a backstop in case the checkpointer
/// thread falls behind (SQLite's default is 1000; the checkpointer normally keeps it far lower).
const WAL_BACKSTOP_PAGES: u32 = 20_000;

/// The connections of one database.
#[derive(Debug)]
pub(super) struct Database {
    writer: tokio::sync::Mutex<Connection>,
    /// `None` for an in-memory database, which exists only in the writer connection: reads use
    /// the writer then.
    readers: Option<ReaderPool>,
    checkpointer: Mutex<Option<Checkpointer>>,
    /// Commits so far; the checkpointer compares it with what it last saw.
    commits: Arc<AtomicU64>,
}

impl Database {
    /// Opens (creating if needed) the database file in WAL mode and applies the migrations.
    pub(super) fn open(path: &Path) -> anyhow::Result<Self> {
        let mut writer = Connection::open(path)?;
        // WAL is a property of the file; the other settings are per connection.
        writer.pragma_update(None, "journal_mode", "WAL")?;
        configure(&writer)?;
        super::migrations::apply(&mut writer)?;
        writer.pragma_update(None, "wal_autocheckpoint", WAL_BACKSTOP_PAGES)?;
        let commits = Arc::new(AtomicU64::new(0));
        let checkpointer = Checkpointer::start(path.to_owned(), Arc::clone(&commits))?;
        Ok(Database {
            writer: tokio::sync::Mutex::new(writer),
            readers: Some(ReaderPool {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
            }),
            checkpointer: Mutex::new(Some(checkpointer)),
            commits,
        })
    }

    /// A private in-memory database (migrated): one connection, gone when the emulator stops.
    pub(super) fn in_memory() -> anyhow::Result<Self> {
        let mut writer = Connection::open_in_memory()?;
        configure(&writer)?;
        super::migrations::apply(&mut writer)?;
        Ok(Database {
            writer: tokio::sync::Mutex::new(writer),
            readers: None,
            checkpointer: Mutex::new(None),
            commits: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Runs `work` on a reader connection, on this thread.
    pub(super) async fn read<R>(
        &self,
        work: impl FnOnce(&Connection) -> Result<R, DbError>,
    ) -> Result<R, DbError> {
        match &self.readers {
            Some(pool) => pool.with(work),
            None => work(&*self.writer.lock().await),
        }
    }

    /// Runs `work` in one `BEGIN IMMEDIATE` transaction and commits it if `work` succeeds; an
    /// error rolls everything back.
    pub(super) async fn write<R>(
        &self,
        work: impl FnOnce(&Connection) -> Result<R, DbError>,
    ) -> Result<R, DbError> {
        let writer = self.writer.lock().await;
        self.transact(&writer, work)
    }

    /// `read` for a blocking thread (`spawn_blocking`): long reads such as an export.
    pub(super) fn read_blocking<R>(
        &self,
        work: impl FnOnce(&Connection) -> Result<R, DbError>,
    ) -> Result<R, DbError> {
        match &self.readers {
            Some(pool) => pool.with(work),
            None => work(&self.writer.blocking_lock()),
        }
    }

    /// `write` for a blocking thread (`spawn_blocking`): long writes such as an import.
    pub(super) fn write_blocking<R>(
        &self,
        work: impl FnOnce(&Connection) -> Result<R, DbError>,
    ) -> Result<R, DbError> {
        let writer = self.writer.blocking_lock();
        self.transact(&writer, work)
    }

    fn transact<R>(
        &self,
        writer: &Connection,
        work: impl FnOnce(&Connection) -> Result<R, DbError>,
    ) -> Result<R, DbError> {
        // BEGIN IMMEDIATE takes the write lock up front: a transaction that reads and then
        // writes never fails to upgrade its lock.
        let result = in_transaction(writer, "BEGIN IMMEDIATE", work)?;
        self.commits.fetch_add(1, Ordering::Relaxed);
        Ok(result)
    }

    /// Stops the checkpointer and checkpoints what is left (clean shutdown). Blocking.
    pub(super) fn close(&self) {
        let checkpointer = self
            .checkpointer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(checkpointer) = checkpointer {
            checkpointer.stop();
            let writer = self.writer.blocking_lock();
            if let Err(error) = writer.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            {
                tracing::warn!(%error, "final checkpoint failed (the WAL is kept and replayed at the next start)");
            }
        }
    }
}

/// Runs `work` between `begin` and COMMIT, or ROLLBACK if it fails. The three statements are
/// cached like any other: rusqlite's `Transaction` parses them again each time, which showed in
/// `perf` at a few percent of a request.
fn in_transaction<R>(
    conn: &Connection,
    begin: &'static str,
    work: impl FnOnce(&Connection) -> Result<R, DbError>,
) -> Result<R, DbError> {
    conn.prepare_cached(begin)?.execute([])?;
    match work(conn) {
        Ok(result) => {
            if let Err(error) = conn
                .prepare_cached("COMMIT")
                .and_then(|mut c| c.execute([]))
            {
                // A failed COMMIT may leave the transaction open; end it so the connection
                // stays usable.
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                return Err(error);
            }
            Ok(result)
        }
        Err(error) => {
            conn.prepare_cached("ROLLBACK")?.execute([])?;
            Err(error)
        }
    }
}

/// Runs `work` in one read transaction: every statement in it sees the same snapshot.
pub(super) fn snapshot<R>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> Result<R, DbError>,
) -> Result<R, DbError> {
    in_transaction(conn, "BEGIN", work)
}

/// Per-connection settings.
fn configure(conn: &Connection) -> Result<(), DbError> {
    // NORMAL in WAL mode: see the module comment.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// Read-only connections to the database file, reused.
#[derive(Debug)]
struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReaderPool {
    fn with<R>(&self, work: impl FnOnce(&Connection) -> Result<R, DbError>) -> Result<R, DbError> {
        let taken = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match taken {
            Some(conn) => conn,
            None => self.open()?,
        };
        let result = work(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < READERS_KEPT {
            idle.push(conn);
        }
        result
    }

    fn open(&self) -> Result<Connection, DbError> {
        // Opened read-write but refusing writes: a connection opened SQLITE_OPEN_READ_ONLY
        // maps the WAL index read-only, and SQLite then re-prepares every statement at each
        // read transaction (seen in `perf`: 30% of the CPU in sqlite3Reprepare).
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&conn)?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }
}

/// The thread that checkpoints the WAL after commits.
#[derive(Debug)]
struct Checkpointer {
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    fn start(path: PathBuf, commits: Arc<AtomicU64>) -> anyhow::Result<Self> {
        let conn = Connection::open(&path)?;
        configure(&conn)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".to_owned())
            .spawn(move || {
                let mut seen = commits.load(Ordering::Relaxed);
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    let now = commits.load(Ordering::Relaxed);
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    // PASSIVE never waits for the writer or readers; what it cannot copy now
                    // it copies next time.
                    if let Err(error) =
                        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(%error, "WAL checkpoint failed; retrying later");
                    }
                }
            })?;
        Ok(Checkpointer { stop, thread })
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}
