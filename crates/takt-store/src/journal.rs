//! The hash-chained, append-only journal.
//!
//! One writer (the holder of [`crate::StateLock`]) appends; everyone may read. Each append is a
//! single `BEGIN IMMEDIATE` transaction that reads the chain's head from the database — never
//! from memory — so even two writers by mistake would serialize and extend one chain rather than
//! fork it. Hashing is `takt_core::journal`'s; this module only stores and pages.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use takt_core::journal::{BrokenLink, ChainVerifier, seal};
use takt_protocol::{GENESIS_HASH, JournalEntry, Millis};

use crate::db::{Store, to_i64, to_u64};
use crate::error::StoreError;

/// An entry to append; the store assigns `seq`, `prev_hash` and `hash`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEntry {
    pub at_ms: Millis,
    /// The record's kind, e.g. `run_dispatched`; must not be blank.
    pub kind: String,
    pub task_id: Option<String>,
    pub payload: serde_json::Value,
}

/// The result of walking the whole journal.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainReport {
    /// Rows in the journal (all of them, including any after a break).
    pub entries: u64,
    /// The first place the chain is broken; `None` when it is intact.
    pub first_broken: Option<BrokenLink>,
}

impl ChainReport {
    /// True when every entry links to the one before it and hashes to its stored hash.
    pub fn is_intact(&self) -> bool {
        self.first_broken.is_none()
    }
}

/// Rows per page when walking the journal.
const PAGE: u32 = 1000;

/// A journal row as stored, before its payload is parsed.
struct RawEntry {
    seq: i64,
    at_ms: i64,
    kind: String,
    task_id: Option<String>,
    payload: String,
    prev_hash: String,
    hash: String,
}

impl RawEntry {
    fn from_row(row: &SqliteRow) -> Result<RawEntry, sqlx::Error> {
        Ok(RawEntry {
            seq: row.try_get("seq")?,
            at_ms: row.try_get("at_ms")?,
            kind: row.try_get("kind")?,
            task_id: row.try_get("task_id")?,
            payload: row.try_get("payload")?,
            prev_hash: row.try_get("prev_hash")?,
            hash: row.try_get("hash")?,
        })
    }

    /// Strict decoding for readers: a payload that is not JSON is corruption.
    fn decode(self, store: &Store) -> Result<JournalEntry, StoreError> {
        let payload = serde_json::from_str(&self.payload).map_err(|err| {
            store.corrupt(format!(
                "journal entry {} has a payload that is not JSON ({err})",
                self.seq
            ))
        })?;
        Ok(JournalEntry {
            seq: to_u64(store, "a journal seq", self.seq)?,
            at_ms: self.at_ms,
            kind: self.kind,
            task_id: self.task_id,
            payload,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }

    /// Lenient decoding for the verifier: whatever is in the row is hashed as found, so a
    /// damaged row shows up as a broken link instead of aborting the walk.
    fn decode_for_verify(self) -> JournalEntry {
        let payload =
            serde_json::from_str(&self.payload).unwrap_or(serde_json::Value::String(self.payload));
        JournalEntry {
            seq: u64::try_from(self.seq).unwrap_or(0),
            at_ms: self.at_ms,
            kind: self.kind,
            task_id: self.task_id,
            payload,
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

impl Store {
    /// Appends `entries` in order, atomically: all of them or none. Returns them sealed.
    ///
    /// Only the holder of the state lock should call this (DESIGN §8); correctness does not
    /// depend on it, because the head is read inside the write transaction.
    pub async fn append(&self, entries: Vec<NewEntry>) -> Result<Vec<JournalEntry>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(blank) = entries.iter().find(|e| e.kind.trim().is_empty()) {
            return Err(StoreError::Invalid(format!(
                "a journal entry needs a kind (got a blank kind at {} ms)",
                blank.at_ms
            )));
        }
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.sql(e))?;
        let head = sqlx::query("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.sql(e))?;
        let (mut seq, mut hash) = match head {
            Some(row) => {
                let seq: i64 = row.try_get("seq").map_err(|e| self.sql(e))?;
                let hash: String = row.try_get("hash").map_err(|e| self.sql(e))?;
                (to_u64(self, "the journal head's seq", seq)?, hash)
            }
            None => (0, GENESIS_HASH.to_owned()),
        };
        let mut sealed = Vec::with_capacity(entries.len());
        for entry in entries {
            let entry = seal(
                seq,
                &hash,
                entry.at_ms,
                entry.kind,
                entry.task_id,
                entry.payload,
            );
            let payload = serde_json::to_string(&entry.payload).map_err(|err| {
                StoreError::Invalid(format!("a journal payload cannot be encoded: {err}"))
            })?;
            sqlx::query(
                "INSERT INTO journal (seq, at_ms, kind, task_id, payload, prev_hash, hash)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(to_i64("journal seq", entry.seq)?)
            .bind(entry.at_ms)
            .bind(&entry.kind)
            .bind(&entry.task_id)
            .bind(payload)
            .bind(&entry.prev_hash)
            .bind(&entry.hash)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.sql(e))?;
            seq = entry.seq;
            hash.clone_from(&entry.hash);
            sealed.push(entry);
        }
        tx.commit().await.map_err(|e| self.sql(e))?;
        Ok(sealed)
    }

    /// The last entry's `(seq, hash)`, or `(0, GENESIS_HASH)` for an empty journal.
    pub async fn journal_head(&self) -> Result<(u64, String), StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.sql(e))?;
        match row {
            Some(row) => {
                let seq: i64 = row.try_get("seq").map_err(|e| self.sql(e))?;
                let hash: String = row.try_get("hash").map_err(|e| self.sql(e))?;
                Ok((to_u64(self, "the journal head's seq", seq)?, hash))
            }
            None => Ok((0, GENESIS_HASH.to_owned())),
        }
    }

    /// Up to `limit` entries with `seq > after_seq`, in order. Page with the last seq seen.
    pub async fn read_journal(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        self.read_raw(after_seq, limit)
            .await?
            .into_iter()
            .map(|raw| raw.decode(self))
            .collect()
    }

    /// Every entry about `task_id`, in order.
    pub async fn read_task_journal(&self, task_id: &str) -> Result<Vec<JournalEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at_ms, kind, task_id, payload, prev_hash, hash
             FROM journal WHERE task_id = ? ORDER BY seq",
        )
        .bind(task_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.sql(e))?;
        rows.iter()
            .map(|row| {
                RawEntry::from_row(row)
                    .map_err(|e| self.sql(e))
                    .and_then(|raw| raw.decode(self))
            })
            .collect()
    }

    /// Walks the whole journal page by page and checks every link of the chain; reports the
    /// first broken one (edited, inserted, deleted or re-hashed rows).
    ///
    /// A deleted *tail* (the newest rows) leaves a valid shorter chain; detecting that needs
    /// the head recorded elsewhere (an attestation, a backup).
    pub async fn verify_journal(&self) -> Result<ChainReport, StoreError> {
        let mut verifier = ChainVerifier::default();
        let mut first_broken = None;
        let mut entries = 0_u64;
        let mut after = 0_u64;
        loop {
            let page = self.read_raw(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = to_u64(self, "a journal seq", last.seq)?;
            for raw in page {
                entries += 1;
                if first_broken.is_none()
                    && let Err(broken) = verifier.push(&raw.decode_for_verify())
                {
                    first_broken = Some(broken);
                }
            }
        }
        Ok(ChainReport {
            entries,
            first_broken,
        })
    }

    async fn read_raw(&self, after_seq: u64, limit: u32) -> Result<Vec<RawEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at_ms, kind, task_id, payload, prev_hash, hash
             FROM journal WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(to_i64("after_seq", after_seq)?)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.sql(e))?;
        rows.iter()
            .map(|row| RawEntry::from_row(row).map_err(|e| self.sql(e)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(at_ms: i64, task: Option<&str>) -> NewEntry {
        NewEntry {
            at_ms,
            kind: "test".into(),
            task_id: task.map(str::to_owned),
            payload: json!({"at": at_ms, "nested": {"b": [1, 2.5, null], "a": "x"}}),
        }
    }

    #[tokio::test]
    async fn an_empty_journal_has_the_genesis_head() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).await.unwrap();
        assert_eq!(
            store.journal_head().await.unwrap(),
            (0, GENESIS_HASH.to_owned())
        );
        assert!(store.append(vec![]).await.unwrap().is_empty());
        let report = store.verify_journal().await.unwrap();
        assert_eq!(report.entries, 0);
        assert!(report.is_intact());
    }

    #[tokio::test]
    async fn appended_entries_chain_onto_each_other() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).await.unwrap();
        let first = store.append(vec![entry(1, None)]).await.unwrap();
        let more = store
            .append(vec![entry(2, Some("t1")), entry(3, Some("t2"))])
            .await
            .unwrap();
        assert_eq!(first[0].seq, 1);
        assert_eq!(first[0].prev_hash, GENESIS_HASH);
        assert_eq!(more[0].prev_hash, first[0].hash);
        assert_eq!(more[1].prev_hash, more[0].hash);
        assert_eq!(
            store.journal_head().await.unwrap(),
            (3, more[1].hash.clone())
        );
        let all = store.read_journal(0, 10).await.unwrap();
        assert_eq!(all, [first, more].concat());
        assert_eq!(
            store.read_journal(1, 1).await.unwrap(),
            vec![all[1].clone()]
        );
        assert_eq!(
            store.read_task_journal("t2").await.unwrap(),
            vec![all[2].clone()]
        );
    }

    #[tokio::test]
    async fn a_blank_kind_is_rejected_and_nothing_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).await.unwrap();
        let mut bad = entry(2, None);
        bad.kind = " ".into();
        let err = store.append(vec![entry(1, None), bad]).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
        assert_eq!(store.journal_head().await.unwrap().0, 0);
    }

    #[tokio::test]
    async fn the_database_refuses_updates_and_deletes() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).await.unwrap();
        store.append(vec![entry(1, None)]).await.unwrap();
        let update = sqlx::query("UPDATE journal SET kind = 'x'")
            .execute(&store.pool)
            .await;
        assert!(update.is_err());
        let delete = sqlx::query("DELETE FROM journal")
            .execute(&store.pool)
            .await;
        assert!(delete.is_err());
    }

    #[tokio::test]
    async fn verify_pages_through_more_than_one_page() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).await.unwrap();
        let batch: Vec<NewEntry> = (0..(PAGE as i64 * 2 + 7)).map(|i| entry(i, None)).collect();
        store.append(batch).await.unwrap();
        let report = store.verify_journal().await.unwrap();
        assert_eq!(report.entries, u64::from(PAGE) * 2 + 7);
        assert!(report.is_intact());
    }
}
