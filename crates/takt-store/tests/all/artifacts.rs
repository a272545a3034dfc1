//! Content-addressed artifacts: round trip and corruption detection.

use takt_core::journal::sha256_hex;
use takt_store::{Store, StoreError};

use crate::support::temp_store;

#[tokio::test]
async fn an_artifact_round_trips_across_reopen() {
    let (dir, store) = temp_store().await;
    let bytes: Vec<u8> = (0..=255_u8).cycle().take(100_000).collect();
    let hash = store.put_artifact(&bytes).await.unwrap();
    assert_eq!(hash, sha256_hex(&bytes));
    assert_eq!(
        store.put_artifact(&bytes).await.unwrap(),
        hash,
        "idempotent"
    );
    let empty = store.put_artifact(b"").await.unwrap();
    store.close().await;

    let store = Store::open(dir.path()).await.unwrap();
    assert_eq!(store.get_artifact(&hash).await.unwrap(), bytes);
    assert_eq!(store.get_artifact(&empty).await.unwrap(), b"");
    assert!(store.verify_artifacts().await.unwrap().is_empty());
    // No temp files are left behind.
    let shard = dir.path().join("artifacts").join(&hash[..2]);
    let names: Vec<String> = fs_err::read_dir(shard)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![hash[2..].to_owned()]);
}

#[tokio::test]
async fn a_flipped_byte_is_detected_on_read_and_by_verify() {
    let (dir, store) = temp_store().await;
    let good = store.put_artifact(b"keep me").await.unwrap();
    let hash = store.put_artifact(b"gate output: 12 passed").await.unwrap();
    let path = dir
        .path()
        .join("artifacts")
        .join(&hash[..2])
        .join(&hash[2..]);
    let mut bytes = fs_err::read(&path).unwrap();
    bytes[3] ^= 0x01;
    fs_err::write(&path, &bytes).unwrap();

    let err = store.get_artifact(&hash).await.unwrap_err();
    match &err {
        StoreError::ArtifactCorrupt {
            hash: named,
            actual,
            ..
        } => {
            assert_eq!(named, &hash);
            assert_eq!(actual, &sha256_hex(&bytes));
        }
        other => panic!("expected ArtifactCorrupt, got {other:?}"),
    }
    assert!(err.to_string().contains(&hash), "{err}");
    assert_eq!(store.verify_artifacts().await.unwrap(), vec![hash]);
    assert_eq!(store.get_artifact(&good).await.unwrap(), b"keep me");
}
