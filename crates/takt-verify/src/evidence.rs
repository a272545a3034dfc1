//! Where gate output goes: content-addressed storage owned by the daemon (the verifier only
//! hands bytes over and keeps the hash).

use takt_core::ports::BoxFuture;

/// Stores bytes and names them by their sha256 (hex).
pub trait EvidenceStore: Send + Sync {
    fn put(&self, bytes: Vec<u8>) -> BoxFuture<'_, Result<String, String>>;
    /// The bytes stored under `hash`, `None` when nothing is.
    fn get<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Option<Vec<u8>>>;
}

/// Keeps evidence in memory: for tests and for `takt verify --dry-run`-style callers that do
/// not persist.
#[derive(Debug, Default)]
pub struct MemoryEvidence {
    stored: std::sync::Mutex<std::collections::BTreeMap<String, Vec<u8>>>,
}

impl EvidenceStore for MemoryEvidence {
    fn put(&self, bytes: Vec<u8>) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            let hash = sha256_hex(&bytes);
            self.stored
                .lock()
                .map_err(|_| "the evidence map is poisoned".to_owned())?
                .insert(hash.clone(), bytes);
            Ok(hash)
        })
    }

    fn get<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move { self.stored.lock().ok()?.get(hash).cloned() })
    }
}

/// sha256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
