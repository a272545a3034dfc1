//! The operator inbox: commands that CLI and API processes leave for the daemon.
//!
//! Only the daemon writes the journal (DESIGN §8), so a `takt task cancel` run from another
//! process does not touch the journal itself: it enqueues a command, the daemon picks it up,
//! journals its effect, and completes the command with a result the caller can poll for.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::db::Store;
use crate::error::StoreError;

/// One command in the inbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxItem {
    pub id: i64,
    pub kind: String,
    pub payload: serde_json::Value,
    pub created_at_ms: i64,
    /// When the daemon completed it; `None` while pending.
    pub done_at_ms: Option<i64>,
    /// What the daemon answered; `None` while pending.
    pub result: Option<serde_json::Value>,
}

impl Store {
    /// Leaves a command for the daemon; returns its id.
    pub async fn enqueue_command(
        &self,
        kind: &str,
        payload: serde_json::Value,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        if kind.trim().is_empty() {
            return Err(StoreError::Invalid("a command needs a kind".to_owned()));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO inbox (kind, payload, created_at_ms) VALUES (?, ?, ?) RETURNING id",
        )
        .bind(kind)
        .bind(payload.to_string())
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.sql(e))?;
        Ok(id)
    }

    /// Commands not yet completed, oldest first.
    pub async fn pending_commands(&self) -> Result<Vec<InboxItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, payload, created_at_ms, done_at_ms, result
             FROM inbox WHERE done_at_ms IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.sql(e))?;
        rows.iter().map(|row| self.inbox_item(row)).collect()
    }

    /// Marks a command done with the daemon's answer. Completing an already completed command
    /// is a no-op that keeps the first result (the daemon may repeat itself after a crash);
    /// an unknown id is [`StoreError::NotFound`].
    pub async fn complete_command(
        &self,
        id: i64,
        result: serde_json::Value,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE inbox SET done_at_ms = ?, result = ? WHERE id = ? AND done_at_ms IS NULL",
        )
        .bind(now_ms)
        .bind(result.to_string())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| self.sql(e))?;
        if done.rows_affected() == 0 && self.get_command(id).await?.is_none() {
            return Err(StoreError::NotFound(format!("inbox command {id}")));
        }
        Ok(())
    }

    /// One command, pending or done.
    pub async fn get_command(&self, id: i64) -> Result<Option<InboxItem>, StoreError> {
        let row = sqlx::query(
            "SELECT id, kind, payload, created_at_ms, done_at_ms, result FROM inbox WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.sql(e))?;
        row.map(|row| self.inbox_item(&row)).transpose()
    }

    fn inbox_item(&self, row: &SqliteRow) -> Result<InboxItem, StoreError> {
        let id: i64 = row.try_get("id").map_err(|e| self.sql(e))?;
        let payload: String = row.try_get("payload").map_err(|e| self.sql(e))?;
        let result: Option<String> = row.try_get("result").map_err(|e| self.sql(e))?;
        let parse = |text: &str, what: &str| {
            serde_json::from_str(text).map_err(|err| {
                self.corrupt(format!(
                    "inbox command {id} has a {what} that is not JSON ({err})"
                ))
            })
        };
        Ok(InboxItem {
            id,
            kind: row.try_get("kind").map_err(|e| self.sql(e))?,
            payload: parse(&payload, "payload")?,
            created_at_ms: row.try_get("created_at_ms").map_err(|e| self.sql(e))?,
            done_at_ms: row.try_get("done_at_ms").map_err(|e| self.sql(e))?,
            result: result.map(|text| parse(&text, "result")).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn an_unknown_command_cannot_be_completed() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).await.unwrap();
        let err = store
            .complete_command(42, json!(null), 1)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
        assert!(store.get_command(42).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn completing_twice_keeps_the_first_result() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).await.unwrap();
        let id = store.enqueue_command("cancel", json!({}), 1).await.unwrap();
        store.complete_command(id, json!("first"), 2).await.unwrap();
        store
            .complete_command(id, json!("second"), 3)
            .await
            .unwrap();
        let item = store.get_command(id).await.unwrap().unwrap();
        assert_eq!(item.result, Some(json!("first")));
        assert_eq!(item.done_at_ms, Some(2));
    }
}
