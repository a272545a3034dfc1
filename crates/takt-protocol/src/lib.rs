//! takt's domain and wire types.
//!
//! This crate is the leaf of the workspace: every other crate speaks these types. It holds data
//! only (serde-serializable, no IO, no clock). The field names are the stable JSON interface
//! documented in `docs/json.md`.
//!
//! - [`Issue`]: the normalized tracker item, Symphony's field set exactly.
//! - [`TaskState`], [`RunOutcome`], [`RunPhase`], [`RetryKind`]: the lifecycle vocabulary.
//! - [`JournalEntry`]: one hash-chained row of the journal.
//! - [`FailureReport`]: what a failed task tells its operator.

mod issue;
mod journal;
mod task;

pub use issue::{BlockerRef, Issue, normalize_label, normalize_state};
pub use journal::{GENESIS_HASH, JournalEntry};
pub use task::{
    AttemptSummary, FailureReport, RetryKind, RunOutcome, RunPhase, TaskState, TaskSummary,
    TokenUsage,
};

/// Milliseconds since the Unix epoch. The core never reads a clock; every time it sees is one of
/// these, handed to it by the shell.
pub type Millis = i64;

mod agent_event;
pub use agent_event::{AgentEvent, OutputStream};
