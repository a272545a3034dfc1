//! A small key/value table for daemon metadata (the last poll time, the last reconciled seq).

use crate::db::Store;
use crate::error::StoreError;

impl Store {
    /// The value stored under `key`, if any.
    pub async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.sql(e))
    }

    /// Stores `value` under `key`, replacing any previous value.
    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES (?, ?)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(|e| self.sql(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn meta_values_are_replaced_and_survive_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).await.unwrap();
        assert_eq!(store.get_meta("last_poll_ms").await.unwrap(), None);
        store.set_meta("last_poll_ms", "1").await.unwrap();
        store.set_meta("last_poll_ms", "2").await.unwrap();
        store.close().await;
        let store = Store::open(tmp.path()).await.unwrap();
        assert_eq!(
            store.get_meta("last_poll_ms").await.unwrap().as_deref(),
            Some("2")
        );
    }
}
