//! The scale runs: a database with one big thread (1k, 100k, 1M messages) beside many small
//! threads, loaded with the emulator's own `import` command from a generated state document
//! (the API would take far too long); then startup-to-healthy time, database size, RSS idle and
//! under load, and send/list cells in the big thread.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::acs::{self, Admin, Fixture, Seat};
use crate::http::Endpoint;
use crate::load::{self, CellResult, CellSpec, Op};
use crate::procfs;
use crate::server;

/// The emulator's default resource id: every imported identity must belong to it.
const RESOURCE_ID: &str = "a1b2c3d4-0000-4000-8000-00000000ac5e";
/// Users in the big thread, one per load connection (connections beyond reuse them).
const USERS: usize = 32;

/// How big a scale database is.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleSize {
    pub messages_in_thread: u64,
    pub other_threads: u64,
}

/// What one scale database measured.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleResult {
    pub size: ScaleSize,
    pub document_mb: f64,
    pub generate_s: f64,
    pub import_s: f64,
    pub db_mb: f64,
    /// Startup to healthy, each start (the first right after the import).
    pub startup_ms: Vec<f64>,
    pub idle_rss_mb: Option<f64>,
    /// Peak RSS over the whole run including the cells.
    pub peak_rss_mb: Option<f64>,
    pub cells: Vec<CellResult>,
}

/// Startup of a fresh and of an empty database.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmptyStartup {
    /// First start on a new data dir (creates the CA, the database and runs the migrations).
    pub first_start_ms: Vec<f64>,
    /// Restarts on the same, empty, data dir.
    pub restart_ms: Vec<f64>,
    pub idle_rss_mb: Option<f64>,
}

fn micros_to_wire(micros: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What the generated document contains that the cells need.
pub struct Generated {
    pub users: Vec<String>,
    pub big_thread: String,
    pub newest_message: String,
}

/// Writes a state document (format `acs-chat-emulator/state@1`) with [`USERS`] identities, one
/// thread holding `size.messages_in_thread` text messages with all of them as participants,
/// and `size.other_threads` two-person threads with one message each.
pub fn generate(path: &Path, size: ScaleSize) -> anyhow::Result<Generated> {
    let file = std::fs::File::create(path)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let now = now_ms();
    // Everything lies in the past, so the emulator's next ids (epoch ms) are above them.
    let base_ms = now - size.messages_in_thread as i64 - 3_600_000;
    let epoch = micros_to_wire(0);
    let users: Vec<String> = (0..USERS)
        .map(|i| format!("8:acs:{RESOURCE_ID}_00000000-0000-4000-8000-{i:012x}"))
        .collect();
    write!(
        w,
        r#"{{"format":"acs-chat-emulator/state@1","identities":["#
    )?;
    for (i, u) in users.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let created = micros_to_wire(base_ms * 1000);
        write!(
            w,
            r#"{sep}{{"id":"{u}","createdAt":"{created}","deletedAt":null,"tokensRevokedAt":"{epoch}","lastTokenIssuedAt":null}}"#
        )?;
    }
    write!(w, r#"],"threads":["#)?;
    let big_thread = "19:00000000000000000000000000b16b16@thread.v2".to_owned();
    // The big thread.
    {
        let n = size.messages_in_thread as i64;
        let created = micros_to_wire(base_ms * 1000);
        let last_at = micros_to_wire((base_ms + n) * 1000);
        write!(
            w,
            r#"{{"id":"{big_thread}","topic":"the big thread","createdAt":"{created}","createdBy":"{}","deletedAt":null,"metadata":{{}},"retentionPolicy":null,"lastMessageAt":"{last_at}","lastSequenceId":{n},"lastMessageId":{},"nextParticipant":{USERS},"participants":["#,
            users[0],
            base_ms + n
        )?;
        for (i, u) in users.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            write!(
                w,
                r#"{sep}{{"userId":"{u}","displayName":"User {i}","shareHistoryTime":"{epoch}","metadata":{{}},"position":{}}}"#,
                i + 1
            )?;
        }
        write!(w, r#"],"messages":["#)?;
        for seq in 1..=n {
            let sep = if seq == 1 { "" } else { "," };
            let id = base_ms + seq;
            let at = micros_to_wire(id * 1000);
            let sender = &users[(seq as usize) % USERS];
            write!(
                w,
                r#"{sep}{{"id":{id},"sequenceId":{seq},"type":"text","senderId":"{sender}","senderDisplayName":"User {}","content":{{"message":"{}"}},"metadata":{{}},"createdAt":"{at}","version":{id},"editedAt":null,"deletedAt":null}}"#,
                (seq as usize) % USERS,
                acs::message_text(seq as u64)
            )?;
        }
        write!(w, r#"],"readReceipts":[]}}"#)?;
    }
    for t in 0..size.other_threads {
        let a = &users[(t as usize) % USERS];
        let b = &users[(t as usize + 1) % USERS];
        let id = base_ms;
        let at = micros_to_wire(id * 1000);
        write!(
            w,
            r#",{{"id":"19:{t:032x}@thread.v2","topic":"thread {t}","createdAt":"{at}","createdBy":"{a}","deletedAt":null,"metadata":{{}},"retentionPolicy":null,"lastMessageAt":"{at}","lastSequenceId":1,"lastMessageId":{id},"nextParticipant":2,"participants":[{{"userId":"{a}","displayName":"A","shareHistoryTime":"{epoch}","metadata":{{}},"position":1}},{{"userId":"{b}","displayName":"B","shareHistoryTime":"{epoch}","metadata":{{}},"position":2}}],"messages":[{{"id":{id},"sequenceId":1,"type":"text","senderId":"{a}","senderDisplayName":"A","content":{{"message":"{}"}},"metadata":{{}},"createdAt":"{at}","version":{id},"editedAt":null,"deletedAt":null}}],"readReceipts":[]}}"#,
            acs::message_text(t)
        )?;
    }
    write!(w, r#"],"repeatability":[]}}"#)?;
    w.flush()?;
    Ok(Generated {
        users,
        big_thread,
        newest_message: (base_ms + size.messages_in_thread as i64).to_string(),
    })
}

/// Runs `emulator import FILE --data-dir DIR`.
async fn import(emulator: &Path, file: &Path, data_dir: &Path) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let output = tokio::process::Command::new(emulator)
        .arg("import")
        .arg(file)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .await?;
    if !output.status.success() {
        bail!(
            "import failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(started.elapsed())
}

/// Startup to healthy on empty databases: `starts` first starts (new data dirs) and as many
/// restarts of one of them; idle RSS after the last.
pub async fn empty_startup(
    emulator: &Path,
    work: &Path,
    starts: usize,
) -> anyhow::Result<EmptyStartup> {
    let mut first = Vec::new();
    let mut restart = Vec::new();
    let mut idle = None;
    for i in 0..starts {
        let dir = work.join(format!("empty-{i}"));
        let emu = server::start_emulator(emulator, &dir, None).await?;
        first.push(ms(emu.startup_to_healthy));
        emu.server.stop(Duration::from_secs(15)).await?;
    }
    let dir = work.join("empty-0");
    for i in 0..starts {
        let emu = server::start_emulator(emulator, &dir, None).await?;
        restart.push(ms(emu.startup_to_healthy));
        if i + 1 == starts {
            tokio::time::sleep(Duration::from_millis(500)).await;
            idle = procfs::rss_bytes(emu.server.pid).map(mb);
        }
        emu.server.stop(Duration::from_secs(15)).await?;
    }
    Ok(EmptyStartup {
        first_start_ms: first,
        restart_ms: restart,
        idle_rss_mb: idle,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1024.0 / 1024.0
}

/// Options of one scale database.
pub struct ScaleRun<'a> {
    pub emulator: &'a Path,
    pub work: &'a Path,
    pub size: ScaleSize,
    pub starts: usize,
    pub conns: &'a [usize],
    pub warmup: Duration,
    pub duration: Duration,
    pub ticks: f64,
}

/// Generates, imports, starts (`starts` times), measures, and runs send/list cells.
pub async fn run(opts: ScaleRun<'_>) -> anyhow::Result<ScaleResult> {
    let size = opts.size;
    let dir: PathBuf = opts.work.join(format!(
        "scale-{}-{}",
        size.messages_in_thread, size.other_threads
    ));
    std::fs::create_dir_all(&dir)?;
    let doc = dir.join("state.json");
    let data = dir.join("data");
    let t = Instant::now();
    let generated = generate(&doc, size)?;
    let generate_s = t.elapsed().as_secs_f64();
    let document_mb = mb(std::fs::metadata(&doc)?.len());
    eprintln!("  generated {document_mb:.0} MB in {generate_s:.1} s; importing…");
    let import_s = import(opts.emulator, &doc, &data).await?.as_secs_f64();
    std::fs::remove_file(&doc).ok();
    let db_mb = mb(procfs::files_size(&data, "emulator.db"));
    eprintln!("  imported in {import_s:.1} s; database {db_mb:.0} MB");
    let mut startup_ms = Vec::new();
    for _ in 1..opts.starts.max(1) {
        let emu = server::start_emulator(opts.emulator, &data, None).await?;
        startup_ms.push(ms(emu.startup_to_healthy));
        emu.server.stop(Duration::from_secs(30)).await?;
    }
    let emu = server::start_emulator(opts.emulator, &data, None).await?;
    startup_ms.push(ms(emu.startup_to_healthy));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = emu.server.pid;
    let idle_rss_mb = procfs::rss_bytes(pid).map(mb);
    let result = async {
        let endpoint = Endpoint::https(emu.https, &emu.ca_pem)?;
        let mut admin = Admin::connect(&endpoint, &emu.access_key).await?;
        let mut seats = Vec::new();
        for (i, user) in generated.users.iter().enumerate() {
            let token = admin
                .issue_token(user)
                .await
                .context("issuing a token to an imported identity")?;
            seats.push(Seat {
                token,
                thread: generated.big_thread.clone(),
                thread_enc: acs::encode(&generated.big_thread),
                message: generated.newest_message.clone(),
                peer: generated.users[(i + 1) % generated.users.len()].clone(),
            });
        }
        let fixture = Fixture {
            seats: Arc::new(seats),
            addable: Arc::new(Vec::new()),
        };
        let mut cells = Vec::new();
        for op in [Op::ListMessages, Op::SendMessage] {
            for &conns in opts.conns {
                let spec = CellSpec {
                    op,
                    conns,
                    warmup: opts.warmup,
                    duration: opts.duration,
                    rate: None,
                };
                let cell = load::run_cell(&endpoint, &fixture, spec, Some(pid), opts.ticks).await?;
                eprintln!(
                    "    {:<20} c={conns:<3} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}",
                    op.name(),
                    cell.rps,
                    cell.p50_ms,
                    cell.p99_ms,
                    cell.errors
                );
                cells.push(cell);
            }
        }
        anyhow::Ok(cells)
    }
    .await;
    // Each cell resets VmHWM at its start; the run's peak is the largest of theirs and the last.
    let last_peak = procfs::peak_rss_bytes(pid).map(mb);
    emu.server.stop(Duration::from_secs(30)).await?;
    let cells = result?;
    let peak_rss_mb = cells
        .iter()
        .filter_map(|c| c.peak_rss_mb)
        .chain(last_peak)
        .chain(idle_rss_mb)
        .reduce(f64::max);
    std::fs::remove_dir_all(&dir).ok();
    Ok(ScaleResult {
        size,
        document_mb,
        generate_s,
        import_s,
        db_mb,
        startup_ms,
        idle_rss_mb,
        peak_rss_mb,
        cells,
    })
}
