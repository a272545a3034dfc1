//! The journal: persistence, the chain, tamper detection, concurrent writers.

use std::collections::BTreeSet;

use serde_json::json;
use takt_core::journal::entry_hash;
use takt_protocol::GENESIS_HASH;
use takt_store::{BrokenLink, Store};

use crate::support::{entry, tamper_connection, temp_store};

#[tokio::test]
async fn entries_head_and_reads_survive_reopen() {
    let (dir, store) = temp_store().await;
    let written = store
        .append(vec![
            entry(1, Some("t1")),
            entry(2, None),
            entry(3, Some("t1")),
        ])
        .await
        .unwrap();
    let head = store.journal_head().await.unwrap();
    store.close().await;

    let store = Store::open(dir.path()).await.unwrap();
    assert_eq!(store.journal_head().await.unwrap(), head);
    assert_eq!(head, (3, written[2].hash.clone()));
    assert_eq!(store.read_journal(0, 100).await.unwrap(), written);
    assert_eq!(
        store.read_task_journal("t1").await.unwrap(),
        vec![written[0].clone(), written[2].clone()]
    );
    assert!(store.read_task_journal("nobody").await.unwrap().is_empty());

    // Appending after reopen continues the same chain.
    let next = store.append(vec![entry(4, None)]).await.unwrap();
    assert_eq!(next[0].seq, 4);
    assert_eq!(next[0].prev_hash, written[2].hash);
    let report = store.verify_journal().await.unwrap();
    assert_eq!(report.entries, 4);
    assert!(report.is_intact(), "{report:?}");
}

#[tokio::test]
async fn reads_page_by_seq() {
    let (_dir, store) = temp_store().await;
    store
        .append((1..=10).map(|n| entry(n, None)).collect())
        .await
        .unwrap();
    let page = store.read_journal(3, 4).await.unwrap();
    let seqs: Vec<u64> = page.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![4, 5, 6, 7]);
    assert!(store.read_journal(10, 5).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_written_chain_verifies_and_starts_at_genesis() {
    let (_dir, store) = temp_store().await;
    for n in 0..5 {
        store
            .append(vec![entry(n * 2, None), entry(n * 2 + 1, Some("t"))])
            .await
            .unwrap();
    }
    let all = store.read_journal(0, 100).await.unwrap();
    assert_eq!(all[0].prev_hash, GENESIS_HASH);
    assert_eq!(takt_core::journal::verify_chain(&all), Ok(10));
    let report = store.verify_journal().await.unwrap();
    assert_eq!(report.entries, 10);
    assert_eq!(report.first_broken, None);
}

async fn store_with_five() -> (tempfile::TempDir, Store) {
    let (dir, store) = temp_store().await;
    store
        .append((1..=5).map(|n| entry(n, Some("t"))).collect())
        .await
        .unwrap();
    (dir, store)
}

#[tokio::test]
async fn a_changed_payload_is_detected_at_its_row() {
    let (dir, store) = store_with_five().await;
    let mut raw = tamper_connection(dir.path()).await;
    sqlx::query("UPDATE journal SET payload = '{\"n\":999}' WHERE seq = 3")
        .execute(&mut raw)
        .await
        .unwrap();
    let report = store.verify_journal().await.unwrap();
    assert_eq!(report.entries, 5);
    assert!(
        matches!(
            report.first_broken,
            Some(BrokenLink::Modified { seq: 3, .. })
        ),
        "{report:?}"
    );
}

#[tokio::test]
async fn a_payload_that_is_no_longer_json_is_detected_not_fatal() {
    let (dir, store) = store_with_five().await;
    let mut raw = tamper_connection(dir.path()).await;
    sqlx::query("UPDATE journal SET payload = 'not json' WHERE seq = 2")
        .execute(&mut raw)
        .await
        .unwrap();
    let report = store.verify_journal().await.unwrap();
    assert!(
        matches!(
            report.first_broken,
            Some(BrokenLink::Modified { seq: 2, .. })
        ),
        "{report:?}"
    );
    // Readers refuse the damaged row instead of inventing a payload.
    let err = store.read_journal(0, 10).await.unwrap_err();
    assert!(
        matches!(err, takt_store::StoreError::Corrupt { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_deleted_row_is_detected_as_a_gap() {
    let (dir, store) = store_with_five().await;
    let mut raw = tamper_connection(dir.path()).await;
    sqlx::query("DELETE FROM journal WHERE seq = 3")
        .execute(&mut raw)
        .await
        .unwrap();
    let report = store.verify_journal().await.unwrap();
    assert_eq!(report.entries, 4);
    assert_eq!(
        report.first_broken,
        Some(BrokenLink::Gap {
            previous: 2,
            found: 4
        })
    );
}

#[tokio::test]
async fn an_inserted_row_is_detected_at_the_row_after_it() {
    let (dir, store) = store_with_five().await;
    let all = store.read_journal(0, 10).await.unwrap();
    let mut raw = tamper_connection(dir.path()).await;
    // Make room after seq 2, then insert a well-formed forged entry there: it links to seq 2
    // and hashes correctly, but the original third entry no longer links to it.
    sqlx::query("UPDATE journal SET seq = seq + 100 WHERE seq >= 3")
        .execute(&mut raw)
        .await
        .unwrap();
    sqlx::query("UPDATE journal SET seq = seq - 99 WHERE seq > 100")
        .execute(&mut raw)
        .await
        .unwrap();
    let payload = json!({"forged": true});
    let hash = entry_hash(&all[1].hash, 3, 5_000, "forged", None, &payload);
    sqlx::query(
        "INSERT INTO journal (seq, at_ms, kind, task_id, payload, prev_hash, hash)
         VALUES (3, 5000, 'forged', NULL, ?, ?, ?)",
    )
    .bind(payload.to_string())
    .bind(&all[1].hash)
    .bind(hash)
    .execute(&mut raw)
    .await
    .unwrap();
    let report = store.verify_journal().await.unwrap();
    assert_eq!(report.entries, 6);
    assert!(
        matches!(
            report.first_broken,
            Some(BrokenLink::Unlinked { seq: 4, .. })
        ),
        "{report:?}"
    );
}

#[tokio::test]
async fn a_rewritten_hash_is_detected_at_its_row() {
    let (dir, store) = store_with_five().await;
    let mut raw = tamper_connection(dir.path()).await;
    sqlx::query("UPDATE journal SET hash = ? WHERE seq = 4")
        .bind("f".repeat(64))
        .execute(&mut raw)
        .await
        .unwrap();
    let report = store.verify_journal().await.unwrap();
    assert!(
        matches!(
            report.first_broken,
            Some(BrokenLink::Modified { seq: 4, .. })
        ),
        "{report:?}"
    );
}

#[tokio::test]
async fn an_edit_with_a_recomputed_hash_breaks_the_next_link() {
    let (dir, store) = store_with_five().await;
    let all = store.read_journal(0, 10).await.unwrap();
    let mut raw = tamper_connection(dir.path()).await;
    let target = &all[2];
    let payload = json!({"n": -1});
    let hash = entry_hash(
        &target.prev_hash,
        target.seq,
        target.at_ms,
        &target.kind,
        target.task_id.as_deref(),
        &payload,
    );
    sqlx::query("UPDATE journal SET payload = ?, hash = ? WHERE seq = 3")
        .bind(payload.to_string())
        .bind(hash)
        .execute(&mut raw)
        .await
        .unwrap();
    let report = store.verify_journal().await.unwrap();
    assert!(
        matches!(
            report.first_broken,
            Some(BrokenLink::Unlinked { seq: 4, .. })
        ),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_from_two_handles_extend_one_chain() {
    let (dir, first) = temp_store().await;
    // A second pool on the same file: as far as SQLite is concerned, another process.
    let second = Store::open(dir.path()).await.unwrap();
    let mut tasks = Vec::new();
    for worker in 0..6_i64 {
        let store = if worker % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for round in 0..15_i64 {
                let batch = (0..(round % 3 + 1))
                    .map(|i| entry(worker * 1_000 + round * 10 + i, Some("shared")))
                    .collect();
                let written = store.append(batch).await.unwrap();
                seqs.extend(written.iter().map(|e| e.seq));
            }
            seqs
        }));
    }
    let mut all_seqs = Vec::new();
    for task in tasks {
        all_seqs.extend(task.await.unwrap());
    }
    let unique: BTreeSet<u64> = all_seqs.iter().copied().collect();
    assert_eq!(unique.len(), all_seqs.len(), "a seq was handed out twice");
    let expected = all_seqs.len() as u64;
    assert_eq!(unique, (1..=expected).collect::<BTreeSet<u64>>());
    let report = second.verify_journal().await.unwrap();
    assert_eq!(report.entries, expected);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(first.journal_head().await.unwrap().0, expected);
}
