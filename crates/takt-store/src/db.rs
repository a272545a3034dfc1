//! Opening the database: the state directory, the SQLite file, its connection settings and the
//! migrations. [`Store`] is the handle every other module adds methods to.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::error::StoreError;
use crate::migrate;

/// The database file's name inside the state directory.
pub const DB_FILE: &str = "takt.db";

/// How long a connection waits for another writer before giving up with [`StoreError::Busy`].
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections per handle. Writers serialize on SQLite's lock anyway; a few connections let
/// readers run beside a writer (WAL).
const MAX_CONNECTIONS: u32 = 4;

/// A handle on takt's state: the SQLite database `<state_dir>/takt.db` and the artifact store
/// `<state_dir>/artifacts/`. Cheap to clone (it wraps a connection pool).
///
/// Many processes may open the same state directory (the daemon, CLI commands, API handlers);
/// only the holder of [`crate::StateLock`] appends to the journal.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: SqlitePool,
    paths: Arc<Paths>,
}

#[derive(Debug)]
struct Paths {
    state_dir: PathBuf,
    db: PathBuf,
    artifacts: PathBuf,
}

impl Store {
    /// Opens (creating when missing) the state directory with mode 0700 and the database in it,
    /// in WAL mode with `synchronous=FULL` (a committed journal entry survives power loss),
    /// foreign keys on and a 5 s busy timeout, then brings the schema up to date.
    ///
    /// Fails with [`StoreError::NewerSchema`] when a newer takt wrote the database.
    pub async fn open(state_dir: &Path) -> Result<Store, StoreError> {
        create_private_dir(state_dir).await?;
        let db = state_dir.join(DB_FILE);
        // Two processes opening a fresh file at once can both try to switch it to WAL; SQLite
        // answers one of them SQLITE_BUSY at once (a lock upgrade the busy handler cannot wait
        // out). That loser simply tries again.
        let mut attempt: u64 = 0;
        let pool = loop {
            match connect_and_migrate(&db).await {
                Err(err) if err.is_retryable() && attempt < OPEN_RETRIES => {
                    attempt += 1;
                    tracing::debug!(db = %db.display(), attempt, error = %err, "database busy while opening; retrying");
                    tokio::time::sleep(Duration::from_millis(10 * attempt)).await;
                }
                other => break other?,
            }
        };
        tracing::debug!(db = %db.display(), "opened the takt database");
        Ok(Store {
            pool,
            paths: Arc::new(Paths {
                state_dir: state_dir.to_path_buf(),
                artifacts: state_dir.join("artifacts"),
                db,
            }),
        })
    }

    /// The state directory this store lives in.
    pub fn state_dir(&self) -> &Path {
        &self.paths.state_dir
    }

    /// The database file.
    pub fn db_path(&self) -> &Path {
        &self.paths.db
    }

    /// The root of the content-addressed artifact store.
    pub fn artifacts_dir(&self) -> &Path {
        &self.paths.artifacts
    }

    /// Closes every pooled connection (waiting for them to be returned). Other clones of this
    /// handle stop working.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Maps a sqlx error on this store's database.
    pub(crate) fn sql(&self, err: sqlx::Error) -> StoreError {
        StoreError::from_sqlx(&self.paths.db, err)
    }

    /// A row that cannot be decoded: the database was edited by hand or damaged.
    pub(crate) fn corrupt(&self, message: String) -> StoreError {
        StoreError::Corrupt {
            path: self.paths.db.clone(),
            message,
        }
    }
}

/// Retries of [`Store::open`] when the database is busy (about 2 s of waiting in all).
const OPEN_RETRIES: u64 = 20;

async fn connect_and_migrate(db: &Path) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::new()
        .filename(db)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .connect_with(options)
        .await
        .map_err(|err| match StoreError::from_sqlx(db, err) {
            StoreError::Database { path, message } => StoreError::Open { path, message },
            other => other,
        })?;
    if let Err(err) = migrate::run(&pool, db).await {
        pool.close().await;
        return Err(err);
    }
    Ok(pool)
}

/// Creates `dir` (and missing parents) with mode 0700; an existing directory is left as it is.
async fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = fs_err::tokio::DirBuilder::new();
    builder.recursive(true).mode(0o700);
    builder.create(dir).await?;
    Ok(())
}

/// Converts a stored INTEGER to the u64 the domain uses.
pub(crate) fn to_u64(store: &Store, what: &str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| store.corrupt(format!("{what} is negative ({value})")))
}

/// Converts a u64 to SQLite's INTEGER.
pub(crate) fn to_i64(what: &str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Invalid(format!("{what} {value} is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn open_creates_a_private_state_dir_and_the_db() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/.takt");
        let store = Store::open(&dir).await.unwrap();
        assert_eq!(store.db_path(), dir.join("takt.db"));
        assert!(store.db_path().exists());
        let mode = fs_err::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[tokio::test]
    async fn the_connection_settings_are_applied() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).await.unwrap();
        let mut conn = store.pool.acquire().await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(mode.to_lowercase(), "wal");
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(busy, 5000);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_first_opens_of_one_directory_all_succeed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("fresh");
        let (a, b, c) = tokio::join!(Store::open(&dir), Store::open(&dir), Store::open(&dir));
        for store in [a.unwrap(), b.unwrap(), c.unwrap()] {
            assert_eq!(store.journal_head().await.unwrap().0, 0);
        }
    }

    #[tokio::test]
    async fn a_writer_that_holds_the_lock_too_long_is_reported_as_busy_and_retryable() {
        use sqlx::ConnectOptions;
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).await.unwrap();
        let holder = store.pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        let mut impatient = SqliteConnectOptions::new()
            .filename(store.db_path())
            .busy_timeout(Duration::ZERO)
            .connect()
            .await
            .unwrap();
        let err = sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut impatient)
            .await
            .unwrap_err();
        let err = StoreError::from_sqlx(store.db_path(), err);
        assert!(matches!(err, StoreError::Busy { .. }), "{err:?}");
        assert!(err.is_retryable());
        assert!(err.to_string().contains("takt.db"), "{err}");
        drop(holder);
    }

    #[tokio::test]
    async fn a_file_that_is_not_sqlite_is_reported_as_corrupt() {
        let tmp = tempfile::tempdir().unwrap();
        fs_err::write(tmp.path().join("takt.db"), vec![b'x'; 4096]).unwrap();
        let err = Store::open(tmp.path()).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert!(err.to_string().contains("takt.db"), "{err}");
    }
}
