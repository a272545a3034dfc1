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
    /// The workflow's cron schedules and where each stands.
    pub schedules: Vec<ScheduleStatus>,
}

/// One `schedules:` entry as the daemon sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleStatus {
    pub name: String,
    /// The cron expression as written.
    pub cron: String,
    pub timezone: String,
    /// The next occurrence it owes (`None`: the expression has no future occurrence).
    pub next_due_at_ms: Option<Millis>,
    pub last_fired_at_ms: Option<Millis>,
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

/// The `source` of deliveries to `POST /hooks/github`.
pub const GITHUB_SOURCE: &str = "github";
/// The `source` of deliveries to `POST /hooks/gitlab`.
pub const GITLAB_SOURCE: &str = "gitlab";
/// The `source` of deliveries to `POST /hooks/linear`.
pub const LINEAR_SOURCE: &str = "linear";
/// The `source` of deliveries to `POST /hooks/generic`.
pub const GENERIC_SOURCE: &str = "generic";

/// A verified GitHub, GitLab or Linear delivery reduced to what the daemon needs to decide
/// whether to look at the tracker now: which event, on which repository and issue or pull
/// (merge) request. The daemon
/// does not act on the payload itself (it is a hint, not the truth); it polls and reconciles,
/// so a missed or reordered delivery cannot leave it with a wrong picture.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WebhookTrigger {
    /// [`GITHUB_SOURCE`], [`GITLAB_SOURCE`] or [`LINEAR_SOURCE`].
    pub source: String,
    /// The sender's id of the delivery, the same on a redelivery: `X-GitHub-Delivery`,
    /// GitLab's `Idempotency-Key` (or `X-Gitlab-Event-UUID` with a digest of the body),
    /// `Linear-Delivery`. The replay and deduplication key together with `source`.
    pub delivery: String,
    /// The event: GitHub's `X-GitHub-Event` (`issues`, `issue_comment`, `pull_request`,
    /// `check_suite`), GitLab's `X-Gitlab-Event` (`Issue Hook`, `Note Hook`, ...), Linear's
    /// entity type (`Issue`, `Comment`, `IssueLabel`).
    pub event: String,
    /// What happened: GitHub's `action` (`opened`, `synchronize`, ...), GitLab's
    /// `object_attributes.action` or a pipeline's or job's status, Linear's `action`
    /// (`create`, `update`, `remove`).
    pub action: Option<String>,
    /// `owner/name`: GitHub's `repository.full_name`, GitLab's
    /// `project.path_with_namespace`; none for Linear.
    pub repository: Option<String>,
    /// The issue's or pull request's number (GitLab: iid); for `check_suite` and GitLab
    /// pipelines, the pull (merge) request they ran for, if any.
    pub number: Option<u64>,
    /// The issue's or pull request's title.
    pub title: Option<String>,
}

/// A webhook delivery the server accepted (authenticated and well-formed), for the daemon to
/// deduplicate and act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookDelivery {
    /// From GitHub, GitLab or Linear: something changed on the tracker or the forge; poll and
    /// reconcile now instead of at the next interval, so the dispatch decision follows at once.
    Trigger(WebhookTrigger),
    /// From `POST /hooks/generic`: create this local task (as [`DaemonPort::create_task`]
    /// does) and poll at once.
    Task {
        /// The `Idempotency-Key` (or `X-Delivery-Id`) header.
        delivery: String,
        /// Always [`GENERIC_SOURCE`].
        source: String,
        task: NewTask,
    },
}

impl WebhookDelivery {
    /// `github`, `gitlab`, `linear` or `generic`.
    pub fn source(&self) -> &str {
        match self {
            WebhookDelivery::Trigger(trigger) => &trigger.source,
            WebhookDelivery::Task { source, .. } => source,
        }
    }

    /// The delivery id: with [`WebhookDelivery::source`], the deduplication key.
    pub fn delivery(&self) -> &str {
        match self {
            WebhookDelivery::Trigger(trigger) => &trigger.delivery,
            WebhookDelivery::Task { delivery, .. } => delivery,
        }
    }
}

/// What the daemon did with a [`WebhookDelivery`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebhookOutcome {
    /// The daemon had already accepted a delivery with this (source, delivery id) and did
    /// nothing: a replay or a redelivery. The server answers 409 `duplicate_delivery` and
    /// reports the refusal through [`DaemonPort::webhook_refused`].
    pub duplicate: bool,
    /// The task a [`WebhookDelivery::Task`] created; `None` for a trigger and a duplicate.
    pub task: Option<Issue>,
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

    /// Acts on an authenticated, well-formed webhook delivery: a trigger asks for a
    /// poll and reconciliation now (as [`DaemonPort::refresh`]), a generic one creates a task
    /// (as [`DaemonPort::create_task`]).
    ///
    /// The daemon owns deduplication by ([`WebhookDelivery::source`],
    /// [`WebhookDelivery::delivery`]): it records the key durably (in the journal, in the same
    /// transaction as what the delivery caused), so a replay is recognized after a restart
    /// too, and answers `duplicate: true` without acting for a key it has seen. The server
    /// keeps no memory of deliveries. Record a key only for a delivery that was acted on: when
    /// this call fails ([`PortError::Unavailable`], ...), a redelivery of the same id must be
    /// processed.
    async fn webhook(&self, delivery: WebhookDelivery) -> Result<WebhookOutcome, PortError>;

    /// A webhook request the server refused: a missing or wrong signature or token, a replayed
    /// delivery id, a missing header, a malformed or oversized body. `source` is
    /// [`GITHUB_SOURCE`], [`GITLAB_SOURCE`], [`LINEAR_SOURCE`] or [`GENERIC_SOURCE`];
    /// `delivery` the delivery id the request claimed,
    /// if it had a plausible one (unauthenticated, so possibly forged); `reason` says why, for
    /// a person. The daemon journals it so an operator can see probing and misconfigured
    /// senders; it must not fail the request, so it returns nothing. The server waits for it
    /// (at most its daemon timeout) before answering.
    async fn webhook_refused(&self, source: &str, delivery: Option<String>, reason: String);

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

    /// The unified diff of the task's latest verified change against its base, for the
    /// dashboard's task page. `Ok(None)` when there is none to show (no change yet, or the
    /// daemon cannot produce it): the page lists the changed files from the verification
    /// report instead. The default answers `None`, so ports that do not serve the dashboard
    /// need nothing.
    async fn diff(&self, task_id: &str) -> Result<Option<String>, PortError> {
        let _ = task_id;
        Ok(None)
    }

    /// The content-addressed artifact with this sha256 (lowercase hex, already validated):
    /// gate output, transcripts. `Ok(None)` when it is not stored.
    async fn artifact(&self, sha256: &str) -> Result<Option<Vec<u8>>, PortError>;
}
