use serde::{Deserialize, Serialize};

use crate::Millis;

/// The `prev_hash` of the first journal entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One row of the append-only journal. `hash` is sha256 over the previous entry's hash and the
/// canonical encoding of this entry's other fields, so editing, inserting or deleting a row
/// breaks the chain from that row on (`takt audit verify`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// 1-based, gap-free.
    pub seq: u64,
    pub at_ms: Millis,
    /// The record's kind, e.g. `run_dispatched`.
    pub kind: String,
    /// The task this entry is about, if any.
    pub task_id: Option<String>,
    pub payload: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}
