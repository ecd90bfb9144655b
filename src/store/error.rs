//! `store::Error`: the one error the store returns. It says what went wrong in storage terms;
//! the HTTP layer decides what a client sees (`From<store::Error> for ApiError`). Nothing
//! outside `src/store/` names rusqlite.

/// What a store function fails with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A row the operation needs is gone: a query found nothing, or a foreign key has no
    /// parent. Happens when a concurrent delete or reset wins the race against a write.
    #[error("a row the operation needs does not exist")]
    Vanished,
    /// An imported document breaks a constraint its validation does not repeat (a thread
    /// listed twice, a NULL where a column needs a value): the document's fault.
    #[error("the document is not consistent: {0}")]
    Inconsistent(String),
    /// Any other SQLite failure: a fault of the emulator or its disk.
    #[error(transparent)]
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for Error {
    fn from(error: rusqlite::Error) -> Self {
        let vanished = matches!(error, rusqlite::Error::QueryReturnedNoRows)
            || matches!(
                &error,
                rusqlite::Error::SqliteFailure(e, _)
                    if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY
            );
        if vanished {
            Error::Vanished
        } else {
            Error::Sqlite(error)
        }
    }
}

impl Error {
    /// A constraint violation of an import, as `Inconsistent`; anything else as usual.
    pub(super) fn of_import(error: rusqlite::Error) -> Self {
        match &error {
            rusqlite::Error::SqliteFailure(failure, message)
                if failure.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Error::Inconsistent(
                    message
                        .clone()
                        .unwrap_or_else(|| "a constraint failed".to_owned()),
                )
            }
            _ => Error::from(error),
        }
    }
}
