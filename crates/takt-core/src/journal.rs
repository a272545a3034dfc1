//! The journal's hash chain: how an entry's hash is computed and how a chain is checked.
//!
//! Pure functions, shared by the SQLite store that writes the chain, `takt audit verify` that
//! walks it, and the simulation that checks it after every step.

use sha2::{Digest, Sha256};
use takt_protocol::{GENESIS_HASH, JournalEntry, Millis};

/// sha256 over the previous hash and the canonical JSON of the entry's fields (object keys
/// sorted at every depth, no whitespace), so the hash does not depend on the order fields were
/// written in or on serde_json's `preserve_order` feature being switched on by some dependency.
pub fn entry_hash(
    prev_hash: &str,
    seq: u64,
    at_ms: Millis,
    kind: &str,
    task_id: Option<&str>,
    payload: &serde_json::Value,
) -> String {
    let canonical = serde_json::json!({
        "seq": seq,
        "at_ms": at_ms,
        "kind": kind,
        "task_id": task_id,
        "payload": payload,
    });
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    let mut text = String::new();
    write_canonical(&canonical, &mut text);
    hasher.update(text.as_bytes());
    hex(&hasher.finalize())
}

/// Canonical JSON: keys sorted, no insignificant whitespace.
pub fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String((*key).clone()).to_string());
                out.push(':');
                if let Some(inner) = map.get(*key) {
                    write_canonical(inner, out);
                }
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Lowercase hex of a byte string.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// sha256 of bytes, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Builds the next entry of a chain whose head is `(head_seq, head_hash)`.
pub fn seal(
    head_seq: u64,
    head_hash: &str,
    at_ms: Millis,
    kind: String,
    task_id: Option<String>,
    payload: serde_json::Value,
) -> JournalEntry {
    let seq = head_seq + 1;
    let hash = entry_hash(head_hash, seq, at_ms, &kind, task_id.as_deref(), &payload);
    JournalEntry {
        seq,
        at_ms,
        kind,
        task_id,
        payload,
        prev_hash: head_hash.to_owned(),
        hash,
    }
}

/// The first place a chain stops being valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokenLink {
    /// A sequence number is missing or repeated: a row was deleted or inserted.
    #[error(
        "entry {found} follows entry {previous}: the sequence has a gap (a row was deleted or inserted)"
    )]
    Gap { previous: u64, found: u64 },
    /// An entry's `prev_hash` is not the previous entry's hash: a row before it changed.
    #[error(
        "entry {seq} does not link to the entry before it (prev_hash {recorded}, expected {expected})"
    )]
    Unlinked {
        seq: u64,
        recorded: String,
        expected: String,
    },
    /// An entry's own fields do not hash to its stored hash: the row itself was edited.
    #[error(
        "entry {seq} was modified after it was written (stored hash {recorded}, content hashes to {computed})"
    )]
    Modified {
        seq: u64,
        recorded: String,
        computed: String,
    },
}

impl BrokenLink {
    pub fn seq(&self) -> u64 {
        match self {
            BrokenLink::Gap { found, .. } => *found,
            BrokenLink::Unlinked { seq, .. } | BrokenLink::Modified { seq, .. } => *seq,
        }
    }
}

/// Incremental checker: feed entries in order; the first broken link is reported.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    seq: u64,
    hash: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        }
    }
}

impl ChainVerifier {
    pub fn push(&mut self, entry: &JournalEntry) -> Result<(), BrokenLink> {
        if entry.seq != self.seq + 1 {
            return Err(BrokenLink::Gap {
                previous: self.seq,
                found: entry.seq,
            });
        }
        if entry.prev_hash != self.hash {
            return Err(BrokenLink::Unlinked {
                seq: entry.seq,
                recorded: entry.prev_hash.clone(),
                expected: self.hash.clone(),
            });
        }
        let computed = entry_hash(
            &entry.prev_hash,
            entry.seq,
            entry.at_ms,
            &entry.kind,
            entry.task_id.as_deref(),
            &entry.payload,
        );
        if computed != entry.hash {
            return Err(BrokenLink::Modified {
                seq: entry.seq,
                recorded: entry.hash.clone(),
                computed,
            });
        }
        self.seq = entry.seq;
        self.hash = entry.hash.clone();
        Ok(())
    }

    /// The head of the chain checked so far: (seq, hash).
    pub fn head(&self) -> (u64, &str) {
        (self.seq, &self.hash)
    }
}

/// Checks a whole chain in memory.
pub fn verify_chain<'a>(
    entries: impl IntoIterator<Item = &'a JournalEntry>,
) -> Result<u64, BrokenLink> {
    let mut verifier = ChainVerifier::default();
    for entry in entries {
        verifier.push(entry)?;
    }
    Ok(verifier.head().0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<JournalEntry> {
        let mut out: Vec<JournalEntry> = Vec::new();
        for i in 0..n {
            let (seq, hash) = out
                .last()
                .map(|e| (e.seq, e.hash.clone()))
                .unwrap_or((0, GENESIS_HASH.to_owned()));
            out.push(seal(
                seq,
                &hash,
                1000 + i as i64,
                "k".into(),
                None,
                serde_json::json!({"i": i}),
            ));
        }
        out
    }

    #[test]
    fn a_sealed_chain_verifies() {
        assert_eq!(verify_chain(&chain(5)), Ok(5));
    }

    #[test]
    fn an_edited_payload_is_reported_at_its_row() {
        let mut entries = chain(5);
        entries[2].payload = serde_json::json!({"i": 99});
        assert!(matches!(
            verify_chain(&entries),
            Err(BrokenLink::Modified { seq: 3, .. })
        ));
    }

    #[test]
    fn a_deleted_row_is_a_gap() {
        let mut entries = chain(5);
        entries.remove(1);
        assert!(matches!(
            verify_chain(&entries),
            Err(BrokenLink::Gap {
                previous: 1,
                found: 3
            })
        ));
    }

    #[test]
    fn a_rehashed_row_breaks_the_next_link() {
        let mut entries = chain(5);
        let e = &entries[1];
        let forged = seal(
            e.seq - 1,
            &e.prev_hash,
            e.at_ms,
            e.kind.clone(),
            None,
            serde_json::json!({"forged": true}),
        );
        entries[1] = forged;
        assert!(matches!(
            verify_chain(&entries),
            Err(BrokenLink::Unlinked { seq: 3, .. })
        ));
    }

    #[test]
    fn key_order_does_not_change_the_hash() {
        let a: serde_json::Value = serde_json::from_str(r#"{"a":1,"b":2}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"b":2,"a":1}"#).unwrap();
        assert_eq!(
            entry_hash("x", 1, 1, "k", None, &a),
            entry_hash("x", 1, 1, "k", None, &b)
        );
    }
}
