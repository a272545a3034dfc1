//! Helpers shared by the integration tests.

use std::path::Path;

use serde_json::json;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, SqliteConnection};
use takt_store::{NewEntry, Store};

/// A store in a fresh temp directory (kept alive by the returned guard).
pub async fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    (dir, store)
}

/// A journal entry with a recognizable payload.
pub fn entry(n: i64, task: Option<&str>) -> NewEntry {
    NewEntry {
        at_ms: 1_000 + n,
        kind: "test_event".to_owned(),
        task_id: task.map(str::to_owned),
        payload: json!({"n": n, "detail": {"z": [1, 2, 3], "a": "text", "f": 0.5}}),
    }
}

/// A connection outside the store, for tampering with rows as an attacker with file access
/// would: the append-only triggers are dropped first.
pub async fn tamper_connection(state_dir: &Path) -> SqliteConnection {
    let mut conn = SqliteConnectOptions::new()
        .filename(state_dir.join("takt.db"))
        .connect()
        .await
        .unwrap();
    sqlx::raw_sql("DROP TRIGGER journal_no_update; DROP TRIGGER journal_no_delete;")
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}
