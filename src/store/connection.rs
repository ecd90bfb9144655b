//! The SQLite connections and how requests use them.
//!
//! - One writer thread owning the one writer connection (SQLite has one writer at a time).
//!   Writes queue to it and it group-commits: everything queued when it starts a batch runs in
//!   one `BEGIN IMMEDIATE` transaction, each write in its own savepoint (a failing write undoes
//!   only itself), then one COMMIT. Each caller gets its answer after that COMMIT, never
//!   before. Under load one commit (the WAL page writes, the locks) serves many requests.
//! - Reader connections in a small pool, used directly on the calling thread (WAL readers run
//!   beside the writer). A read is a few microseconds with cached statements, so handing it to
//!   another thread would cost more than it does.
//! - A checkpointer thread copies the write-ahead log into the database file, with its fsync,
//!   off the writer thread. The log must also be restarted from its beginning now and then,
//!   or it grows without end; SQLite restarts it at the writer's next transaction, but only if
//!   every frame was copied (and synced) before that transaction began. Under a steady stream
//!   of writes the checkpointer is always a batch behind, so once the log passes
//!   `WAL_RESTART_PAGES` it copies again until a round is quick (at most four more) and then
//!   closes the `WalGate` for one last round: the writer waits between two batches for that
//!   round only (the fsync of what the quick round left), and its next transaction restarts
//!   the log. Before, the writer's own auto-checkpoint did this inside a commit, with the
//!   fsync of everything not yet copied: `perf trace` showed the writer blocked in fsync for
//!   18% of a create-thread run, 15-35 ms at a time (now 9 ms in a 6 s trace).
//!
//! Durability: WAL with `synchronous=NORMAL`. A commit is in the OS once it returns, so it
//! survives a crash of the emulator; only a power loss can take the last commits.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{DbError, Error};

/// How long a connection waits for a lock another process holds (the offline subcommands
/// against a running emulator) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Distinct statements the emulator prepares; each connection keeps them all.
const STATEMENT_CACHE: usize = 128;
/// Reader connections kept for reuse; more are opened when more threads read at once.
const READERS_KEPT: usize = 8;
/// How often the checkpointer looks for new commits.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(20);
/// WAL pages (4 KiB) after which the checkpointer has the log restarted (see the module
/// comment): about 16 MB.
const WAL_RESTART_PAGES: i64 = 4000;
/// A checkpoint round short enough that the next, with the writer held, should be as short.
const QUICK_CHECKPOINT: Duration = Duration::from_millis(2);
/// WAL pages after which the writer checkpoints by itself, inside a commit. Only a backstop
/// for a checkpointer that cannot keep up (a reader holding an old snapshot): four times the
/// usual restart point.
const WRITER_CHECKPOINT_PAGES: i64 = 4 * WAL_RESTART_PAGES;

/// Most writes one transaction takes: bounds how long the first of a batch waits.
const MAX_BATCH: usize = 64;

/// The connections of one database.
#[derive(Debug)]
pub(super) struct Database {
    /// Work for the writer thread.
    jobs: mpsc::Sender<Message>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Readers,
    checkpointer: Mutex<Option<Checkpointer>>,
}

impl Database {
    /// Opens (creating if needed) the database file in WAL mode and applies the migrations.
    pub(super) fn open(path: &Path) -> anyhow::Result<Self> {
        let mut writer = Connection::open(path)?;
        // WAL is a property of the file; the other settings are per connection.
        writer.pragma_update(None, "journal_mode", "WAL")?;
        configure(&writer)?;
        super::migrations::apply(&mut writer)?;
        writer.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)?;
        let gate = Arc::new(WalGate::default());
        let checkpointer = Checkpointer::start(path.to_owned(), Arc::clone(&gate))?;
        let (jobs, writer_thread) = start_writer(Arc::new(Mutex::new(writer)), gate)?;
        Ok(Database {
            jobs,
            writer_thread: Mutex::new(Some(writer_thread)),
            readers: Readers::Pool(ReaderPool {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
            }),
            checkpointer: Mutex::new(Some(checkpointer)),
        })
    }

    /// A private in-memory database (migrated): one connection, gone when the emulator stops.
    pub(super) fn in_memory() -> anyhow::Result<Self> {
        let mut writer = Connection::open_in_memory()?;
        configure(&writer)?;
        super::migrations::apply(&mut writer)?;
        let writer = Arc::new(Mutex::new(writer));
        let (jobs, writer_thread) = start_writer(Arc::clone(&writer), Arc::default())?;
        Ok(Database {
            jobs,
            writer_thread: Mutex::new(Some(writer_thread)),
            readers: Readers::Writer(writer),
            checkpointer: Mutex::new(None),
        })
    }

    /// Runs `work` on a reader connection, on this thread. Reads are short (a few
    /// microseconds) and need no hand-off; long ones (exports) call this from a blocking
    /// thread.
    pub(super) fn read<R>(
        &self,
        work: impl FnOnce(&Connection) -> Result<R, DbError>,
    ) -> Result<R, DbError> {
        self.readers.with(work)
    }

    /// Runs `work` in the writer thread's next transaction; answers once that has committed.
    /// An error from `work` undoes what it wrote, and only that. The error type is the
    /// caller's, so that a rule checked inside the write (the chat layer's, e.g. "the sender
    /// is still a participant") refuses it and rolls back what it began, like a SQLite error.
    pub(super) async fn write<R, E>(
        &self,
        work: impl FnOnce(&Connection) -> Result<R, E> + Send + 'static,
    ) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Call {
            work: Some(work),
            outcome: None,
            reply,
        };
        self.jobs
            .send(Message::Write(Box::new(job)))
            .map_err(|_| fail(closed()))?;
        answer.await.unwrap_or_else(|_| Err(fail(closed())))
    }

    /// Stops the checkpointer and the writer thread, which checkpoints what is left (clean
    /// shutdown). Blocking.
    pub(super) fn close(&self) {
        let checkpointer = lock(&self.checkpointer).take();
        if let Some(checkpointer) = checkpointer {
            checkpointer.stop();
        }
        let writer_thread = lock(&self.writer_thread).take();
        if let Some(thread) = writer_thread {
            let _ = self.jobs.send(Message::Stop);
            let _ = thread.join();
        }
    }
}

/// What the writer thread is asked to do.
enum Message {
    Write(Box<dyn Job>),
    Stop,
}

/// A caller's work and where its answer goes.
trait Job: Send {
    /// Runs the work inside the batch transaction, in its own savepoint. Err when the
    /// savepoint failed: the batch must then be rolled back as a whole.
    fn run(&mut self, conn: &Connection) -> Result<(), DbError>;
    /// Sends the answer: the work's own, unless the batch failed to commit.
    fn finish(self: Box<Self>, committed: Result<(), &DbError>);
}

struct Call<R, E, F> {
    work: Option<F>,
    outcome: Option<Result<R, E>>,
    reply: tokio::sync::oneshot::Sender<Result<R, E>>,
}

impl<R, E, F> Job for Call<R, E, F>
where
    R: Send + 'static,
    E: From<Error> + Send + 'static,
    F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> Result<(), DbError> {
        if let Some(work) = self.work.take() {
            self.outcome = Some(in_savepoint(conn, work)?);
        }
        Ok(())
    }

    fn finish(self: Box<Self>, committed: Result<(), &DbError>) {
        let outcome = match (committed, self.outcome) {
            (Ok(()), Some(outcome)) => outcome,
            (Err(error), Some(Ok(_))) => Err(fail(copy_error(error))),
            (_, Some(Err(error))) => Err(error),
            (_, None) => Err(fail(closed())),
        };
        // The caller may have gone (a dropped request); its write stands, as on the service.
        let _ = self.reply.send(outcome);
    }
}

/// Runs `work`, turning a panic into an error so the writer thread survives it.
fn guarded<R, E: From<Error>>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> Result<R, E>,
) -> Result<R, E> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(conn)))
        .unwrap_or_else(|_| Err(fail(internal("a database task panicked"))))
}

/// Runs `work` in a savepoint of the open transaction: kept if it succeeds, undone if not.
/// The outer error means the savepoint itself failed, and the transaction can no longer be
/// trusted to hold only what succeeded.
fn in_savepoint<R, E: From<Error>>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> Result<R, E>,
) -> Result<Result<R, E>, DbError> {
    conn.prepare_cached("SAVEPOINT request")?.execute([])?;
    let outcome = guarded(conn, work);
    if outcome.is_err() {
        conn.prepare_cached("ROLLBACK TO request")?.execute([])?;
    }
    conn.prepare_cached("RELEASE request")?.execute([])?;
    Ok(outcome)
}

/// Starts the writer thread; it owns `writer` until `Message::Stop`.
fn start_writer(
    writer: Arc<Mutex<Connection>>,
    gate: Arc<WalGate>,
) -> anyhow::Result<(mpsc::Sender<Message>, std::thread::JoinHandle<()>)> {
    let (jobs, queue) = mpsc::channel::<Message>();
    let thread = std::thread::Builder::new()
        .name("sqlite-writer".to_owned())
        .spawn(move || {
            run_writer(&writer, &queue, &gate);
            let writer = lock(&writer);
            if let Err(error) = writer.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            {
                tracing::warn!(%error, "final checkpoint failed (the WAL is kept and replayed at the next start)");
            }
        })?;
    Ok((jobs, thread))
}

/// The writer thread's loop: take what is queued (up to `MAX_BATCH`), run it in one
/// transaction, commit, answer; until `Stop` or every sender is gone.
fn run_writer(writer: &Mutex<Connection>, queue: &mpsc::Receiver<Message>, gate: &WalGate) {
    let mut stopping = false;
    while !stopping {
        let Ok(first) = queue.recv() else {
            return;
        };
        let mut writes: Vec<Box<dyn Job>> = Vec::new();
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Write(job) => writes.push(job),
                Message::Stop => stopping = true,
            }
            if !stopping && writes.len() < MAX_BATCH {
                next = queue.try_recv().ok();
            }
        }
        if writes.is_empty() {
            continue;
        }
        let committed = {
            let writer = lock(writer);
            gate.enter();
            let committed = in_transaction(&writer, "BEGIN IMMEDIATE", |conn| {
                for job in &mut writes {
                    job.run(conn)?;
                }
                Ok(())
            });
            gate.leave(committed.is_ok());
            committed
        };
        for job in writes {
            job.finish(committed.as_ref().map(|_| ()));
        }
    }
}

/// Locks `mutex`. A panic while it was held cannot leave what these mutexes guard half-changed
/// (connections, handles, flags, cached rows), so a poisoned lock is used as it is.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The error of a call that cannot run: the database is closed (shutting down).
/// A SQLite error as the caller's error type.
fn fail<E: From<Error>>(error: DbError) -> E {
    E::from(Error::from(error))
}

fn closed() -> DbError {
    internal("the database is closed")
}

fn internal(message: &str) -> DbError {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERNAL),
        Some(message.to_owned()),
    )
}

/// The same error for another caller of a failed batch (rusqlite errors are not Clone).
fn copy_error(error: &DbError) -> DbError {
    match error {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
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

/// Has the long WAL restarted (see the module comment). Each round copies what the writer
/// added during the one before; once a round is quick (or after a few, on a busy disk), the
/// writer is held for one more, as short.
fn catch_up_and_restart(conn: &Connection, gate: &WalGate) {
    for _ in 0..4 {
        let started = std::time::Instant::now();
        checkpoint(conn);
        if started.elapsed() < QUICK_CHECKPOINT {
            break;
        }
    }
    gate.closed(|| checkpoint(conn));
}

/// One PASSIVE checkpoint (it never waits for the writer or readers; what it cannot copy now
/// it copies next time); returns the length of the WAL in pages, 0 after a failure.
fn checkpoint(conn: &Connection) -> i64 {
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1)) {
        Ok(wal_pages) => wal_pages,
        Err(error) => {
            tracing::warn!(%error, "WAL checkpoint failed; retrying later");
            0
        }
    }
}

/// Per-connection settings.
fn configure(conn: &Connection) -> Result<(), DbError> {
    // NORMAL in WAL mode: see the module comment.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Each write in a batch runs in a savepoint, whose undo journal SQLite keeps in a temp
    // file by default: `perf` showed 15% of the writer's time writing it (create thread).
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Plans that do not depend on the values bound. Without this SQLite looks at bound values
    // while planning (a `LIMIT ?`, a `col = ?` it estimates) and marks the statement to be
    // planned again when they are rebound; rusqlite clears the bindings of every statement it
    // returns to its cache, so such a statement was compiled anew at each use: `perf` showed
    // 9% of a list-messages request in `sqlite3Reprepare`, and a join in the thread check
    // 30% of a get-thread request. Our queries are index lookups and range scans whose best
    // plan does not change with the values. (Test: `store::tests`.)
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// Where reads run.
#[derive(Debug)]
enum Readers {
    /// Connections of their own (a database file in WAL mode).
    Pool(ReaderPool),
    /// The writer's connection, shared with the writer thread: an in-memory database exists
    /// only in that one connection.
    Writer(Arc<Mutex<Connection>>),
}

impl Readers {
    fn with<R>(&self, work: impl FnOnce(&Connection) -> Result<R, DbError>) -> Result<R, DbError> {
        match self {
            Readers::Pool(pool) => pool.with(work),
            Readers::Writer(writer) => work(&lock(writer)),
        }
    }
}

/// Read-only connections to the database file, reused.
#[derive(Debug)]
struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReaderPool {
    fn with<R>(&self, work: impl FnOnce(&Connection) -> Result<R, DbError>) -> Result<R, DbError> {
        let taken = lock(&self.idle).pop();
        let conn = match taken {
            Some(conn) => conn,
            None => self.open()?,
        };
        let result = work(&conn);
        let mut idle = lock(&self.idle);
        if idle.len() < READERS_KEPT {
            idle.push(conn);
        }
        result
    }

    fn open(&self) -> Result<Connection, DbError> {
        // Opened read-write but refusing writes (`query_only`). A SQLITE_OPEN_READ_ONLY pool
        // showed 30% of its CPU in sqlite3Reprepare in round 2 of bench/README.md; the likely
        // cause was found later (plans tied to bound values: QPSG in `configure`), and with
        // QPSG a read-only connection does not re-prepare a simple lookup. Not re-measured.
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&conn)?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }
}

/// What the writer thread and the checkpointer share: the commit count, and a gate the
/// checkpointer closes to run one checkpoint while no write transaction is open.
#[derive(Debug, Default)]
struct WalGate {
    commits: AtomicU64,
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    /// The writer is inside a transaction.
    writing: bool,
    /// The checkpointer wants (or has) the writer held between transactions.
    closed: bool,
}

impl WalGate {
    fn state(&self) -> MutexGuard<'_, GateState> {
        lock(&self.state)
    }

    /// The writer, before a transaction: waits while the gate is closed.
    fn enter(&self) {
        let mut state = self.state();
        while state.closed {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.writing = true;
    }

    /// The writer, after the transaction committed or rolled back.
    fn leave(&self, committed: bool) {
        if committed {
            self.commits.fetch_add(1, Ordering::Relaxed);
        }
        let mut state = self.state();
        state.writing = false;
        if state.closed {
            self.changed.notify_all();
        }
    }

    /// The checkpointer: runs `work` once the writer is between transactions, holding it there.
    fn closed<R>(&self, work: impl FnOnce() -> R) -> R {
        let mut state = self.state();
        state.closed = true;
        while state.writing {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        drop(state);
        let result = work();
        self.state().closed = false;
        self.changed.notify_all();
        result
    }
}

/// The thread that checkpoints the WAL after commits and has it restarted when it is long.
#[derive(Debug)]
struct Checkpointer {
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    fn start(path: PathBuf, gate: Arc<WalGate>) -> anyhow::Result<Self> {
        let conn = Connection::open(&path)?;
        configure(&conn)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".to_owned())
            .spawn(move || {
                let mut seen = gate.commits.load(Ordering::Relaxed);
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    let now = gate.commits.load(Ordering::Relaxed);
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    if checkpoint(&conn) >= WAL_RESTART_PAGES {
                        catch_up_and_restart(&conn, &gate);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn count(db: &Database) -> i64 {
        db.readers
            .with(|conn| conn.query_row("SELECT COUNT(*) FROM identities", [], |r| r.get(0)))
            .expect("count")
    }

    #[tokio::test]
    async fn a_failing_write_undoes_only_itself_in_a_shared_batch() -> anyhow::Result<()> {
        use futures_util::FutureExt;
        let dir = tempfile::tempdir()?;
        let db = Database::open(&dir.path().join("t.db"))?;
        // Hold the writer thread in a first write until all 60 others are queued: it then
        // takes them as one batch (MAX_BATCH is 64), so they share one transaction.
        let (release, held) = mpsc::channel::<()>();
        let mut blocker = Box::pin(db.write(move |_| {
            let _ = held.recv();
            Ok::<_, Error>(())
        }));
        assert!((&mut blocker).now_or_never().is_none(), "queued, held");
        // Every third inserts and then fails.
        let mut writes: Vec<_> = (0..60)
            .map(|n| {
                Box::pin(db.write(move |conn| -> Result<_, Error> {
                    conn.execute(
                        "INSERT INTO identities (id, created_at) VALUES (?, 0)",
                        [format!("8:acs:r_{n}")],
                    )?;
                    if n % 3 == 0 {
                        return Err(Error::Vanished);
                    }
                    Ok(n)
                }))
            })
            .collect();
        for write in &mut writes {
            assert!(
                write.now_or_never().is_none(),
                "queued behind the held write"
            );
        }
        release.send(())?;
        blocker.await?;
        let outcomes = futures_util::future::join_all(writes).await;
        for (n, outcome) in outcomes.into_iter().enumerate() {
            assert_eq!(outcome.is_ok(), n % 3 != 0, "write {n}");
        }
        assert_eq!(count(&db), 40, "the 20 failed writes left nothing behind");
        db.close();
        Ok(())
    }

    #[tokio::test]
    async fn a_panicking_write_is_an_error_and_the_writer_goes_on() -> anyhow::Result<()> {
        let db = Database::in_memory()?;
        let panicked = db
            .write(|conn| -> Result<(), Error> {
                conn.execute(
                    "INSERT INTO identities (id, created_at) VALUES ('8:acs:r_a', 0)",
                    [],
                )?;
                panic!("a bug in a store function")
            })
            .await;
        assert!(panicked.is_err());
        db.write(|conn| {
            Ok::<_, Error>(conn.execute(
                "INSERT INTO identities (id, created_at) VALUES ('8:acs:r_b', 0)",
                [],
            )?)
        })
        .await?;
        assert_eq!(
            count(&db),
            1,
            "the panicked write was undone, the next one kept"
        );
        Ok(())
    }

    #[tokio::test]
    async fn writes_after_close_fail_instead_of_hanging() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = Database::open(&dir.path().join("t.db"))?;
        db.close();
        let late = db
            .write(|conn| Ok::<_, Error>(conn.execute("SELECT 1", [])?))
            .await;
        assert!(late.is_err());
        Ok(())
    }

    /// How often the WAL was reset, read from its header without touching the database: the
    /// "checkpoint sequence number" (bytes 12-15, big-endian) that SQLite increments at each
    /// restart of the log (sqlite.org/fileformat.html, "WAL File Format").
    fn wal_resets(wal: &Path) -> u32 {
        let mut header = [0u8; 16];
        match std::fs::File::open(wal).and_then(|mut f| {
            use std::io::Read;
            f.read_exact(&mut header)
        }) {
            Ok(()) => u32::from_be_bytes([header[12], header[13], header[14], header[15]]),
            Err(_) => 0,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_restarts_under_a_steady_stream_of_writes() -> anyhow::Result<()> {
        // Four writers that never pause, about 3 WAL pages per write: the writer thread always
        // has a batch queued, so the checkpointer never catches up by itself. They write until
        // the log has been reset while they write; the verdict is whether that happened before
        // the log reached the writer's own backstop (WRITER_CHECKPOINT_PAGES), which would
        // reset it without the checkpointer's restart. How long it takes depends on the
        // machine; what it shows does not (before, a fixed number of writes and a bound on
        // the log's size at the end failed on a loaded machine, when the end fell late in a
        // cycle).
        let dir = tempfile::tempdir()?;
        let db = Arc::new(Database::open(&dir.path().join("t.db"))?);
        let wal = dir.path().join("t.db-wal");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
                tokio::spawn(async move {
                    let mut n = 0_u64;
                    while !stop.load(Ordering::Relaxed) {
                        db.write(move |conn| {
                            Ok::<_, Error>(conn.execute(
                                "INSERT INTO identities (id, created_at) VALUES (?, 0)",
                                [format!("{w}_{n}_{}", "x".repeat(10_000))],
                            )?)
                        })
                        .await?;
                        n += 1;
                    }
                    Ok::<_, Error>(())
                })
            })
            .collect();
        // A frame is a page plus its 24-byte header; the log file never shrinks, so its size
        // is the most the log ever held. The restart that counts comes after the log has grown
        // past the checkpointer's threshold under the steady writes (an early one, while the
        // writers start, proves nothing).
        let frame_bytes = |pages: i64| pages as u64 * (4096 + 24);
        let (long, backstop_bytes) = (
            frame_bytes(WAL_RESTART_PAGES),
            frame_bytes(WRITER_CHECKPOINT_PAGES),
        );
        let mut resets_when_long = None;
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        let outcome = loop {
            let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
            let resets = wal_resets(&wal);
            match resets_when_long {
                None if size >= long => resets_when_long = Some(resets),
                Some(seen) if resets != seen => break Ok(size),
                _ => {}
            }
            if size >= backstop_bytes {
                break Err(format!("the WAL reached {size} bytes without a restart"));
            }
            // Only catches a hang; a slow machine just takes longer.
            if std::time::Instant::now() > deadline {
                break Err("no restart within 5 minutes".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.await??;
        }
        let size = outcome.map_err(anyhow::Error::msg)?;
        assert!(
            size < backstop_bytes,
            "restarted only by the writer's backstop: the log reached {size} bytes"
        );
        db.close();
        Ok(())
    }
}
