//! The port: everything the HTTP API needs from the daemon, and nothing more.
//!
//! The server never touches the store, the tracker or the workers. It reads published
//! [`Snapshot`]s of the orchestrator's state, reads the journal and the artifact store through
//! [`DaemonPort`], and hands operator commands and new tasks to the daemon, which stays the only
//! writer of the journal. `takt-cli` implements the trait over the running daemon.

use std::sync::Arc;

use async_trait::async_trait;
use takt_core::{OperatorCommand, State};
use takt_protocol::{Issue, JournalEntry, Millis};
use tokio::sync::broadcast;

/// What the daemon publishes after each step: the orchestrator's state plus the few settings
/// the status surface shows beside it. Immutable; the daemon replaces it as a whole.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The orchestrator's state after the last journaled step.
    pub state: Arc<State>,
    /// `polling.interval_ms` as in force now (it can change on a WORKFLOW.md reload).
    pub poll_interval_ms: u64,
    /// When the daemon will next poll the tracker; `None` when no poll is scheduled (a one-shot
    /// run, or the daemon is stopping).
    pub next_poll_due_at_ms: Option<Millis>,
    /// A candidate poll is in flight right now (Symphony's `polling.checking`).
    pub poll_in_flight: bool,
    /// `agent.max_concurrent_agents` as in force now.
    pub max_concurrent_agents: u32,
}

/// A task submitted through `POST /api/v1/tasks`, already checked by the server: the title is
/// not blank, the priority is within 0..=4, labels are trimmed and non-empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTask {
    pub title: String,
    /// The issue's description (Markdown).
    pub body: Option<String>,
    /// 0..=4, 1 most urgent; 0 or none sorts last.
    pub priority: Option<i64>,
    pub labels: Vec<String>,
    /// Identifiers (case-insensitive) or ids of issues this one waits for.
    pub blocked_by: Vec<String>,
    /// Who asked (the `X-Takt-Operator` header, `api` without one): separation of duties keeps
    /// the author from being the only approver of the change.
    pub author: String,
}

/// What `POST /api/v1/refresh` came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RefreshQueued {
    /// True when the request was folded into a poll that was already in flight or due.
    pub coalesced: bool,
}

/// Why the daemon did not do what it was asked. Each variant maps to one HTTP status and error
/// code, so the daemon chooses the answer the client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The daemon looked at the request and declined it: the core refused an operator command
    /// (approving a task that is not awaiting review, approving twice, ...). The message says
    /// why, for a person. HTTP 409 `refused`; retrying unchanged will be refused again.
    #[error("refused: {0}")]
    Refused(String),
    /// The request names something that does not exist or breaks a rule the server cannot
    /// check itself (a `blocked_by` issue that is unknown). HTTP 400 `invalid_request`.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The daemon's loop is not running (starting, stopping, or it failed). HTTP 503
    /// `orchestrator_unavailable`; retry later.
    #[error("the orchestrator is unavailable: {0}")]
    Unavailable(String),
    /// Something inside the daemon failed (the journal or the artifact store could not be
    /// read). HTTP 500 `internal_error`; the message is logged and returned.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The daemon as the HTTP API sees it.
///
/// Reads come from [`DaemonPort::snapshot`] (cheap, never blocks on the daemon's loop) and from
/// the journal; every change goes through the daemon's loop, so the journal has one writer.
#[async_trait]
pub trait DaemonPort: Send + Sync + 'static {
    /// The latest published snapshot. Called on every read request, so it must be cheap: keep a
    /// `tokio::sync::watch::Receiver<Arc<Snapshot>>` and return `Some(rx.borrow().clone())`.
    /// `None` when there is no current state to show (the daemon has not published one yet, or
    /// its loop has stopped): reads answer 503 `snapshot_unavailable`.
    fn snapshot(&self) -> Option<Arc<Snapshot>>;

    /// A receiver of journal entries as they are committed, in `seq` order, each sent once
    /// after its transaction commits. Called once per event-stream connection, before the
    /// stream replays the journal, so nothing committed in between is lost. A receiver that
    /// lags is caught up from [`DaemonPort::journal_since`], so a small channel is fine.
    fn subscribe(&self) -> broadcast::Receiver<JournalEntry>;

    /// Asks for an immediate tracker poll and reconciliation (`Event::PollRequested`).
    /// Resolves once the request is queued, not when the poll is done.
    async fn refresh(&self) -> Result<RefreshQueued, PortError>;

    /// Applies an operator command (approve, reject, cancel, answer, retry) through the core.
    /// Resolves once the core has decided: `Ok` after the records are journaled and a snapshot
    /// showing them is published (the server answers with the task from it),
    /// [`PortError::Refused`] with the core's refusal otherwise. The server has already checked
    /// that the task exists in the current snapshot.
    async fn submit(&self, command: OperatorCommand) -> Result<(), PortError>;

    /// Creates an issue in the local tracker and asks for a poll so the daemon picks it up at
    /// once. Returns the issue as the tracker stored it (its identifier is new). A tracker
    /// that cannot create issues answers [`PortError::Refused`].
    async fn create_task(&self, task: NewTask) -> Result<Issue, PortError>;

    /// Journal entries with `seq > after_seq`, oldest first, at most `limit` of them; empty when
    /// there are none yet. Called to replay an event stream from its `Last-Event-ID`, page by
    /// page, and to fill a gap when a live receiver lagged.
    async fn journal_since(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<JournalEntry>, PortError>;

    /// Every journal entry about one task (by id, never by identifier), oldest first.
    async fn task_journal(&self, task_id: &str) -> Result<Vec<JournalEntry>, PortError>;

    /// The content-addressed artifact with this sha256 (lowercase hex, already validated):
    /// gate output, transcripts. `Ok(None)` when it is not stored.
    async fn artifact(&self, sha256: &str) -> Result<Option<Vec<u8>>, PortError>;
}
