//! The store's one error type, and how database errors map onto it.
//!
//! Every message names the database (`sqlite /path` or `postgres host:port/db`, never a
//! password) and says what an operator can do about it.

/// What went wrong with the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The disk under the database is full (SQLite `SQLITE_FULL`, PostgreSQL `53100`). The
    /// write was one transaction and was rolled back: nothing of it is stored.
    #[error(
        "the database's disk is full ({target}): free space; nothing of this write was stored \
         (each trace is written in one transaction), and reads keep working"
    )]
    DiskFull {
        /// The database, as [`crate::Store::describe`] names it.
        target: String,
    },
    /// The database server cannot be reached, or the database file is locked for longer
    /// than the busy timeout.
    #[error(
        "the database {target} is unavailable: {reason}; check that it runs and is reachable, \
         the store reconnects on the next call"
    )]
    Unavailable {
        /// The database, without password.
        target: String,
        /// What failed (connection refused, closed, timed out, locked).
        reason: String,
    },
    /// The database was written by a newer ashiato: its schema is newer than this binary.
    #[error(
        "the database {target} has schema version {found}, but this ashiato knows versions up \
         to {known} only: a newer release wrote it; run that release (the database was not \
         changed)"
    )]
    SchemaTooNew {
        /// The database.
        target: String,
        /// The schema version in the database.
        found: i64,
        /// The newest version this binary knows.
        known: i64,
    },
    /// A record or argument broke a bound; nothing was sent to the database.
    #[error("refused before storing anything: {0}")]
    Invalid(String),
    /// A record with this key is stored already (a replayed report, a claim id or list
    /// version taken); nothing was changed.
    #[error("{what} is stored already in {target}: nothing was changed")]
    Duplicate {
        /// The database.
        target: String,
        /// What collided, as the database said it.
        what: String,
    },
    /// The database could not be opened or created.
    #[error("cannot open the database {target}: {reason}")]
    Open {
        /// The database (file or server).
        target: String,
        /// Why.
        reason: String,
    },
    /// The database holds what no version of the store writes: a damaged file or rows
    /// changed by hand.
    #[error(
        "the database {target} is corrupt: {detail}; restore it from a backup \
         (docs/operations.md, \"Backups\")"
    )]
    Corrupt {
        /// The database.
        target: String,
        /// What was found.
        detail: String,
    },
    /// Any other database error.
    #[error("database error on {target}")]
    Database {
        /// The database.
        target: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
}

// SQLite primary result codes (https://www.sqlite.org/rescode.html); sqlx reports the
// extended code, whose low byte is the primary one.
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_CORRUPT: i64 = 11;
const SQLITE_FULL: i64 = 13;
const SQLITE_NOTADB: i64 = 26;
// Extended codes: a PRIMARY KEY or UNIQUE constraint failed.
const SQLITE_CONSTRAINT_PRIMARYKEY: i64 = 1555;
const SQLITE_CONSTRAINT_UNIQUE: i64 = 2067;

impl StoreError {
    /// Classifies a driver error for the database `target`.
    pub(crate) fn from_sqlx(target: &str, e: sqlx::Error) -> StoreError {
        let target = target.to_string();
        let unavailable = |reason: String| StoreError::Unavailable {
            target: target.clone(),
            reason,
        };
        match &e {
            sqlx::Error::Io(io) => return unavailable(format!("connection failed: {io}")),
            sqlx::Error::Tls(t) => return unavailable(format!("TLS failed: {t}")),
            sqlx::Error::PoolTimedOut => {
                return unavailable("no connection within the acquire timeout".into());
            }
            sqlx::Error::PoolClosed => return unavailable("the store was closed".into()),
            sqlx::Error::WorkerCrashed => {
                return unavailable("the SQLite worker thread stopped".into());
            }
            sqlx::Error::Protocol(p) => return unavailable(format!("protocol error: {p}")),
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                // Many SQLSTATEs are digits only, so the driver decides, not the code's look.
                let sqlite = db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some();
                if let (true, Ok(ext)) = (sqlite, code.parse::<i64>()) {
                    // SQLite: numeric extended result codes.
                    if ext == SQLITE_CONSTRAINT_PRIMARYKEY || ext == SQLITE_CONSTRAINT_UNIQUE {
                        return StoreError::Duplicate {
                            target,
                            what: db.message().into(),
                        };
                    }
                    match ext & 0xff {
                        SQLITE_FULL => return StoreError::DiskFull { target },
                        SQLITE_CORRUPT | SQLITE_NOTADB => {
                            return StoreError::Corrupt {
                                target,
                                detail: db.message().into(),
                            };
                        }
                        SQLITE_BUSY | SQLITE_LOCKED => {
                            return unavailable(format!(
                                "the file stayed locked by another writer: {}",
                                db.message()
                            ));
                        }
                        _ => {}
                    }
                } else {
                    // PostgreSQL SQLSTATEs (appendix A of its manual).
                    match code.as_str() {
                        "53100" => return StoreError::DiskFull { target },
                        "23505" => {
                            return StoreError::Duplicate {
                                target,
                                what: db.message().into(),
                            };
                        }
                        "57P01" | "57P02" | "57P03" | "53300" => {
                            return unavailable(db.message().into());
                        }
                        c if c.starts_with("08") => return unavailable(db.message().into()),
                        "XX001" | "XX002" => {
                            return StoreError::Corrupt {
                                target,
                                detail: db.message().into(),
                            };
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        StoreError::Database { target, source: e }
    }
}
