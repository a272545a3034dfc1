//! Content-addressed blobs (captured gate output, diffs, transcripts) under
//! `<state_dir>/artifacts/<first 2 hex digits>/<remaining 62>`, named by their sha256.
//!
//! Writes are atomic (a temp file in the same directory, fsync, rename, fsync the directory), so
//! a crash never leaves a half-written artifact under its final name. Reads check the hash, so a
//! damaged file is reported instead of served.

use std::path::PathBuf;

use takt_core::journal::sha256_hex;
use tokio::io::AsyncWriteExt;

use crate::db::Store;
use crate::error::StoreError;

/// Prefix of in-flight temp files; [`Store::verify_artifacts`] skips them.
const TEMP_PREFIX: &str = ".tmp-";

impl Store {
    /// Stores `bytes` and returns their sha256 (lowercase hex). Idempotent: storing the same
    /// bytes again is cheap, and rewrites the file if the copy on disk was damaged.
    pub async fn put_artifact(&self, bytes: &[u8]) -> Result<String, StoreError> {
        let hash = sha256_hex(bytes);
        let path = self.artifact_path(&hash)?;
        if let Ok(existing) = fs_err::tokio::read(&path).await
            && sha256_hex(&existing) == hash
        {
            return Ok(hash);
        }
        let dir = path
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| self.artifacts_dir().to_path_buf());
        let mut builder = fs_err::tokio::DirBuilder::new();
        builder.recursive(true).mode(0o700);
        builder.create(&dir).await?;

        let temp = dir.join(format!("{TEMP_PREFIX}{}", uuid::Uuid::now_v7()));
        let written = write_synced(&temp, bytes).await;
        if let Err(err) = written {
            let _ = fs_err::tokio::remove_file(&temp).await;
            return Err(err.into());
        }
        if let Err(err) = fs_err::tokio::rename(&temp, &path).await {
            let _ = fs_err::tokio::remove_file(&temp).await;
            return Err(err.into());
        }
        fs_err::tokio::File::open(&dir).await?.sync_all().await?;
        Ok(hash)
    }

    /// The bytes stored under `hash`, checked against it.
    ///
    /// [`StoreError::ArtifactMissing`] when there is none, [`StoreError::ArtifactCorrupt`] when
    /// the file's content no longer hashes to its name.
    pub async fn get_artifact(&self, hash: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.artifact_path(hash)?;
        let bytes = match fs_err::tokio::read(&path).await {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::ArtifactMissing {
                    hash: hash.to_owned(),
                    path,
                });
            }
            Err(err) => return Err(err.into()),
        };
        let actual = sha256_hex(&bytes);
        if actual != hash {
            return Err(StoreError::ArtifactCorrupt {
                hash: hash.to_owned(),
                path,
                actual,
            });
        }
        Ok(bytes)
    }

    /// Re-hashes every stored artifact and returns the names of those whose content does not
    /// match (damaged files, and files that are not artifacts at all), sorted.
    pub async fn verify_artifacts(&self) -> Result<Vec<String>, StoreError> {
        let root = self.artifacts_dir();
        let mut bad = Vec::new();
        let mut shards = match fs_err::tokio::read_dir(root).await {
            Ok(shards) => shards,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(bad),
            Err(err) => return Err(err.into()),
        };
        while let Some(shard) = shards.next_entry().await? {
            let shard_name = shard.file_name().to_string_lossy().into_owned();
            if !shard.file_type().await?.is_dir() {
                bad.push(shard_name);
                continue;
            }
            let mut files = fs_err::tokio::read_dir(shard.path()).await?;
            while let Some(file) = files.next_entry().await? {
                let file_name = file.file_name().to_string_lossy().into_owned();
                if file_name.starts_with(TEMP_PREFIX) {
                    continue;
                }
                let name = format!("{shard_name}{file_name}");
                if !file.file_type().await?.is_file() || !is_hash(&name) {
                    bad.push(name);
                    continue;
                }
                let bytes = fs_err::tokio::read(file.path()).await?;
                if sha256_hex(&bytes) != name {
                    tracing::warn!(artifact = %name, "artifact content does not match its hash");
                    bad.push(name);
                }
            }
        }
        bad.sort();
        Ok(bad)
    }

    /// Where the artifact `hash` lives; rejects anything that is not a sha256 hex digest, so a
    /// hash from outside can never name a path outside the store.
    pub fn artifact_path(&self, hash: &str) -> Result<PathBuf, StoreError> {
        if !is_hash(hash) {
            return Err(StoreError::Invalid(format!(
                "'{hash}' is not an artifact hash (64 lowercase hex digits)"
            )));
        }
        let (shard, rest) = hash.split_at(2);
        Ok(self.artifacts_dir().join(shard).join(rest))
    }
}

fn is_hash(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

async fn write_synced(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = fs_err::tokio::File::create(path).await?;
    file.write_all(bytes).await?;
    file.flush().await?;
    file.sync_all().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn artifacts_are_named_by_their_sha256() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).await.unwrap();
        let hash = store.put_artifact(b"hello").await.unwrap();
        assert_eq!(
            hash,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert!(
            tmp.path()
                .join("artifacts/2c/f24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
                .is_file()
        );
        assert_eq!(store.put_artifact(b"hello").await.unwrap(), hash);
        assert_eq!(store.get_artifact(&hash).await.unwrap(), b"hello");
    }

    #[tokio::test]
    async fn a_malformed_hash_never_reaches_the_file_system() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).await.unwrap();
        for bad in [
            "../../etc/passwd",
            "",
            "ABC",
            &"g".repeat(64),
            &"A".repeat(64),
        ] {
            let err = store.get_artifact(bad).await.unwrap_err();
            assert!(matches!(err, StoreError::Invalid(_)), "{bad}: {err:?}");
        }
    }

    #[tokio::test]
    async fn a_missing_artifact_is_reported_as_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).await.unwrap();
        let err = store.get_artifact(&"0".repeat(64)).await.unwrap_err();
        assert!(matches!(err, StoreError::ArtifactMissing { .. }), "{err:?}");
        assert!(store.verify_artifacts().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn putting_again_heals_a_damaged_copy() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).await.unwrap();
        let hash = store.put_artifact(b"payload").await.unwrap();
        let path = store.artifact_path(&hash).unwrap();
        fs_err::write(&path, b"damaged").unwrap();
        assert_eq!(store.verify_artifacts().await.unwrap(), vec![hash.clone()]);
        store.put_artifact(b"payload").await.unwrap();
        assert_eq!(store.get_artifact(&hash).await.unwrap(), b"payload");
        assert!(store.verify_artifacts().await.unwrap().is_empty());
    }
}
