//! Versioned schema migrations: embedded SQL files applied in order, each in its own
//! `BEGIN IMMEDIATE` transaction, so two processes opening a fresh state directory at once
//! cannot both apply the same step.
//!
//! The schema version lives in SQLite's `PRAGMA user_version` (inside the transaction, so a
//! migration and its version bump commit together); `schema_migrations` records when each step
//! ran. `PRAGMA application_id` marks the file as takt's, so a foreign SQLite file is refused
//! instead of being written into. A database whose version is higher than this build knows is
//! refused with [`StoreError::NewerSchema`].

use std::path::Path;

use sqlx::{AssertSqlSafe, SqlitePool};

use crate::error::StoreError;

/// `PRAGMA application_id` of a takt database: "takt" in ASCII.
pub(crate) const APPLICATION_ID: i64 = 0x7461_6b74;

/// One schema step.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Versions are 1, 2, 3... with no gaps; append, never edit.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "issue_author",
        sql: include_str!("../migrations/0002_issue_author.sql"),
    },
];

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Brings the database at `db` up to [`latest_version`].
pub(crate) async fn run(pool: &SqlitePool, db: &Path) -> Result<(), StoreError> {
    let sql = |err| StoreError::from_sqlx(db, err);
    for migration in MIGRATIONS {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(sql)?;
        let app_id: i64 = sqlx::query_scalar("PRAGMA application_id")
            .fetch_one(&mut *tx)
            .await
            .map_err(sql)?;
        if app_id != 0 && app_id != APPLICATION_ID {
            return Err(StoreError::Corrupt {
                path: db.to_path_buf(),
                message: format!(
                    "it is a SQLite database of another application (application_id {app_id})"
                ),
            });
        }
        let current: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await
            .map_err(sql)?;
        if current > latest_version() {
            return Err(StoreError::NewerSchema {
                path: db.to_path_buf(),
                found: current,
                supported: latest_version(),
            });
        }
        if current >= migration.version {
            continue;
        }
        if current == 0 && app_id == 0 {
            let tables: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'",
            )
            .fetch_one(&mut *tx)
            .await
            .map_err(sql)?;
            if tables > 0 {
                return Err(StoreError::Corrupt {
                    path: db.to_path_buf(),
                    message: "it already holds tables but is not marked as a takt database"
                        .to_owned(),
                });
            }
        }
        apply(&mut tx, migration).await.map_err(|err| {
            let message = match StoreError::from_sqlx(db, err) {
                StoreError::Database { message, .. }
                | StoreError::Busy { message, .. }
                | StoreError::Corrupt { message, .. }
                | StoreError::Open { message, .. } => message,
                other => other.to_string(),
            };
            StoreError::Migration {
                path: db.to_path_buf(),
                version: migration.version,
                message,
            }
        })?;
        tx.commit().await.map_err(sql)?;
        tracing::info!(
            db = %db.display(),
            version = migration.version,
            name = migration.name,
            "applied a schema migration"
        );
    }
    Ok(())
}

async fn apply(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    migration: &Migration,
) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(migration.sql).execute(&mut **tx).await?;
    // PRAGMAs take no bound parameters; both values are integers from this file.
    sqlx::raw_sql(AssertSqlSafe(format!(
        "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {};",
        migration.version
    )))
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version       INTEGER PRIMARY KEY,
             name          TEXT    NOT NULL,
             applied_at_ms INTEGER NOT NULL
         )",
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)")
        .bind(migration.version)
        .bind(migration.name)
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn versions_are_consecutive_from_one() {
        for (i, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, i as i64 + 1, "{}", migration.name);
        }
    }

    #[tokio::test]
    async fn reopening_is_a_no_op_and_records_each_step_once() {
        let tmp = tempfile::tempdir().unwrap();
        Store::open(tmp.path()).await.unwrap().close().await;
        let store = Store::open(tmp.path()).await.unwrap();
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM schema_migrations")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(rows, latest_version());
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(version, latest_version());
    }

    #[tokio::test]
    async fn a_database_from_a_newer_takt_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).await.unwrap();
        sqlx::query("PRAGMA user_version = 99")
            .execute(&store.pool)
            .await
            .unwrap();
        store.close().await;
        let err = Store::open(tmp.path()).await.unwrap_err();
        match &err {
            StoreError::NewerSchema {
                found, supported, ..
            } => {
                assert_eq!(*found, 99);
                assert_eq!(*supported, latest_version());
            }
            other => panic!("expected NewerSchema, got {other:?}"),
        }
        assert!(err.to_string().contains("newer takt"), "{err}");
        assert!(!err.is_retryable());
    }

    #[tokio::test]
    async fn a_foreign_sqlite_database_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).await.unwrap();
        sqlx::query("PRAGMA application_id = 42")
            .execute(&store.pool)
            .await
            .unwrap();
        store.close().await;
        let err = Store::open(tmp.path()).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    }
}
