//! The embedded migrations (`migrations/`, append-only) and their bookkeeping.
//!
//! Applied migrations are recorded in `_sqlx_migrations`, the table (and SHA-384 checksums)
//! that sqlx's migrator used before the store moved to rusqlite: databases created by earlier
//! builds upgrade in place, and earlier builds still accept databases created by this one.

use rusqlite::{Connection, TransactionBehavior, params};
use sha2::{Digest, Sha384};

/// Version, description (sqlx's: the file name after the version, underscores as spaces) and
/// SQL of each file in `migrations/`, in order. A test checks the list against the directory.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/0001_init.sql")),
    (
        2,
        "images",
        include_str!("../../migrations/0002_images.sql"),
    ),
    (
        3,
        "identity custom id",
        include_str!("../../migrations/0003_identity_custom_id.sql"),
    ),
    (
        4,
        "events",
        include_str!("../../migrations/0004_events.sql"),
    ),
    (
        5,
        "event subscriptions",
        include_str!("../../migrations/0005_event_subscriptions.sql"),
    ),
];

/// Applies the migrations the database has not seen, in one transaction.
pub(super) fn apply(conn: &mut Connection) -> anyhow::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
             version BIGINT PRIMARY KEY,
             description TEXT NOT NULL,
             installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
             success BOOLEAN NOT NULL,
             checksum BLOB NOT NULL,
             execution_time BIGINT NOT NULL
         )",
    )?;
    for (version, description, sql) in MIGRATIONS {
        let applied: Option<Vec<u8>> = tx
            .query_row(
                "SELECT checksum FROM _sqlx_migrations WHERE version = ? AND success",
                [version],
                |row| row.get(0),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                other => Err(other),
            })?;
        let checksum = Sha384::digest(sql.as_bytes()).to_vec();
        match applied {
            Some(recorded) if recorded == checksum => {}
            Some(_) => anyhow::bail!(
                // An applied migration was edited: the schema may not be what the code expects.
                "migration {version} ({description}) differs from the one applied to this database"
            ),
            None => {
                let started = std::time::Instant::now();
                tx.execute_batch(sql)?;
                tx.execute(
                    "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
                     VALUES (?, ?, TRUE, ?, ?)",
                    params![
                        version,
                        description,
                        checksum,
                        i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX)
                    ],
                )?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    #[test]
    fn every_file_in_migrations_is_embedded_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("migrations/ exists")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        files.sort();
        let embedded: Vec<String> = MIGRATIONS
            .iter()
            .map(|(version, description, _)| {
                format!("{version:04}_{}.sql", description.replace(' ', "_"))
            })
            .collect();
        assert_eq!(
            files, embedded,
            "list each new migrations/ file in MIGRATIONS"
        );
        for ((_, _, sql), file) in MIGRATIONS.iter().zip(&files) {
            let on_disk = std::fs::read_to_string(dir.join(file)).expect("readable");
            assert_eq!(*sql, on_disk, "{file}");
        }
    }
}
