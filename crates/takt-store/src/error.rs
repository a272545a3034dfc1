//! The store's error types: what went wrong, on which file, whether retrying can help, and what
//! the operator should do.

use std::path::{Path, PathBuf};

/// An error from [`crate::Store`] or [`crate::LocalTracker`].
///
/// Each variant says when it happens and whether retrying helps; [`StoreError::is_retryable`]
/// answers the second question in code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The state directory or the database file could not be created or opened (permissions, a
    /// missing parent, a read-only file system). Not retryable until the cause is fixed.
    #[error(
        "cannot open the takt database {path}: {message}; check that the directory exists and is \
         writable by this user"
    )]
    Open { path: PathBuf, message: String },

    /// Another process (or connection) held the database's write lock for longer than the busy
    /// timeout, or every pooled connection stayed in use. Retryable: the lock holder finishes.
    #[error(
        "the takt database {path} is busy ({message}); another process held its write lock too \
         long — retry, and if this persists look for a stuck takt process"
    )]
    Busy { path: PathBuf, message: String },

    /// The database file is damaged, is not SQLite, belongs to another application, or a stored
    /// row cannot be decoded. Not retryable.
    #[error(
        "the takt database {path} is corrupt or is not a takt database ({message}); restore it \
         from a backup, or move it aside to start with an empty state"
    )]
    Corrupt { path: PathBuf, message: String },

    /// The database was written by a newer takt (its schema version is higher than this build
    /// knows). Not retryable: upgrade takt.
    #[error(
        "the takt database {path} has schema version {found}, but this takt only knows versions \
         up to {supported}: it was written by a newer takt; upgrade takt, or use another state \
         directory"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    /// A schema migration failed; the database stays at the version before it. Not retryable
    /// unless the cause (disk full, a lock) was transient.
    #[error(
        "migrating the takt database {path} to schema version {version} failed: {message}; the \
         database was left at the previous version"
    )]
    Migration {
        path: PathBuf,
        version: i64,
        message: String,
    },

    /// Any other database failure (disk full, I/O error, constraint violation). Usually not
    /// retryable; the message carries SQLite's own explanation.
    #[error("database error on {path}: {message}")]
    Database { path: PathBuf, message: String },

    /// A file operation outside the database failed (artifacts, the state directory). The
    /// error names the file. Retryable only if the cause was transient.
    #[error(transparent)]
    Io(#[from] std::io::Error),

    /// The caller passed something the store rejects: a blank title, a priority outside 0..=4,
    /// an unknown blocker, a malformed hash. Not retryable: fix the input.
    #[error("{0}")]
    Invalid(String),

    /// The named record (an issue, an inbox command) does not exist. Not retryable.
    #[error("{0} not found")]
    NotFound(String),

    /// No artifact with this hash is stored. Not retryable.
    #[error("artifact {hash} is missing: there is no file at {path}")]
    ArtifactMissing { hash: String, path: PathBuf },

    /// The artifact's bytes no longer hash to its name: the file was modified or damaged on
    /// disk. Not retryable.
    #[error(
        "artifact {hash} at {path} is corrupt: its content hashes to {actual}; restore it from a \
         backup, or delete it and re-run the step that produced it"
    )]
    ArtifactCorrupt {
        hash: String,
        path: PathBuf,
        actual: String,
    },
}

impl StoreError {
    /// True when trying the same operation again later can succeed without anyone fixing
    /// anything (a busy database).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Busy { .. })
    }

    /// Maps a sqlx error on the database at `path` to the variant that says what to do.
    pub(crate) fn from_sqlx(path: &Path, err: sqlx::Error) -> StoreError {
        let path = path.to_path_buf();
        match err {
            sqlx::Error::Database(db) => {
                let code = db
                    .code()
                    .and_then(|code| code.parse::<i32>().ok())
                    .unwrap_or(0);
                let message = format!("{} (sqlite code {code})", db.message());
                // The primary result code is the low byte of the extended code.
                match code & 0xff {
                    SQLITE_BUSY | SQLITE_LOCKED => StoreError::Busy { path, message },
                    SQLITE_CORRUPT | SQLITE_NOTADB => StoreError::Corrupt { path, message },
                    SQLITE_CANTOPEN | SQLITE_PERM => StoreError::Open { path, message },
                    _ => StoreError::Database { path, message },
                }
            }
            sqlx::Error::PoolTimedOut => StoreError::Busy {
                path,
                message: "timed out waiting for a free database connection".to_owned(),
            },
            sqlx::Error::Io(source) => StoreError::Database {
                path,
                message: format!("I/O error: {source}"),
            },
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => StoreError::Corrupt {
                path,
                message: err.to_string(),
            },
            other => StoreError::Database {
                path,
                message: other.to_string(),
            },
        }
    }
}

const SQLITE_PERM: i32 = 3;
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_CORRUPT: i32 = 11;
const SQLITE_CANTOPEN: i32 = 14;
const SQLITE_NOTADB: i32 = 26;

/// Why the state lock could not be taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another live process holds the lock on this state directory. `pid` is the holder's
    /// process id when it could be read from the lock file. Retryable once that process exits.
    #[error("another takt daemon{} is using {}; stop it first", pid_text(*.pid), .state_dir.display())]
    Held {
        pid: Option<u32>,
        state_dir: PathBuf,
    },
    /// The lock file could not be created, opened or locked (permissions, a read-only file
    /// system). The error names the file. Not retryable until the cause is fixed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn pid_text(pid: Option<u32>) -> String {
    pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_names_the_pid_and_the_directory() {
        let err = LockError::Held {
            pid: Some(123),
            state_dir: PathBuf::from("/x/.takt"),
        };
        assert_eq!(
            err.to_string(),
            "another takt daemon (pid 123) is using /x/.takt; stop it first"
        );
        let err = LockError::Held {
            pid: None,
            state_dir: PathBuf::from("/x/.takt"),
        };
        assert_eq!(
            err.to_string(),
            "another takt daemon is using /x/.takt; stop it first"
        );
    }

    #[test]
    fn only_busy_is_retryable() {
        let path = PathBuf::from("/x/takt.db");
        assert!(
            StoreError::Busy {
                path: path.clone(),
                message: String::new()
            }
            .is_retryable()
        );
        assert!(
            !StoreError::NewerSchema {
                path,
                found: 9,
                supported: 1
            }
            .is_retryable()
        );
    }
}
