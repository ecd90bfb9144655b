//! The exclusive lock on a data dir: one file-backed emulator per `emulator.db`. Two processes
//! on one database would each trust their own caches and checks (a token revoked through one
//! was still accepted by the other), so the second one refuses to start. Opens and locks one
//! file; nothing else.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Name of the lock file inside the data dir.
pub const LOCK_FILE: &str = "emulator.lock";

/// A held lock; released when dropped (or when the process ends, however it ends: the OS
/// drops advisory locks with the last descriptor, so a killed emulator leaves no stale lock).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock on `data_dir` (creating the dir and the file if needed) and writes this
    /// process's pid and start time into the file; fails, naming the holder, if another
    /// process has it.
    pub fn acquire(data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating the data dir {}", data_dir.display()))?;
        let path: PathBuf = data_dir.join(LOCK_FILE);
        // No truncate on open: the holder's pid is in the file until we hold the lock.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.split_whitespace().collect::<Vec<_>>().join(" ");
                anyhow::bail!(
                    "the data dir {} is in use by another emulator ({}); stop it, or give this \
                     one another --data-dir (or --in-memory)",
                    data_dir.display(),
                    if holder.is_empty() {
                        "holder unknown"
                    } else {
                        &holder
                    }
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
        let started = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        writeln!(file, "pid {} started {started}", std::process::id())?;
        file.flush()?;
        Ok(DataDirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_data_dir_is_refused_and_names_the_holder() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = DataDirLock::acquire(dir.path()).expect("first lock");
        let second = DataDirLock::acquire(dir.path()).expect_err("second lock");
        let message = format!("{second:#}");
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        drop(first);
        DataDirLock::acquire(dir.path()).expect("free again once the first is dropped");
    }
}
