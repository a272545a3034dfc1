//! The port traits adapters implement. The core names what it needs; `takt-cli` wires the
//! concrete adapters (local tracker, command backend, ...) to them.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use takt_protocol::{AgentEvent, Issue, Millis};

/// Error categories of the tracker contract. The orchestrator only distinguishes success
/// from failure; the category is for operators.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackerError {
    /// `tracker.kind` names no adapter this build has. Not retryable: fix WORKFLOW.md.
    #[error("unsupported_tracker_kind: {0}")]
    UnsupportedKind(String),
    /// The adapter rejected its configuration. Not retryable: fix WORKFLOW.md.
    #[error("invalid_tracker_config: {0}")]
    InvalidConfig(String),
    /// A credential the adapter needs is missing or empty. Not retryable.
    #[error("missing_tracker_secret: {0}")]
    MissingSecret(String),
    /// The request could not be made or completed (IO, database, connection). Retryable.
    #[error("tracker_request: {0}")]
    Request(String),
    /// The provider answered with an error status. Retryable for 5xx.
    #[error("tracker_status: {status}: {message}")]
    Status { status: u16, message: String },
    /// The answer could not be understood, or a requested record was malformed.
    #[error("tracker_response: {0}")]
    Response(String),
    /// Paging broke off (a missing cursor). Retryable.
    #[error("tracker_pagination: {0}")]
    Pagination(String),
    /// The provider asked us to slow down. Retry after the given delay.
    #[error("tracker_rate_limited: retry after {retry_after_ms:?} ms")]
    RateLimited { retry_after_ms: Option<u64> },
    /// The issue does not exist in the tracker's scope.
    #[error("tracker_not_found: {0}")]
    NotFound(String),
}

impl TrackerError {
    /// The spec's category name.
    pub fn category(&self) -> &'static str {
        match self {
            TrackerError::UnsupportedKind(_) => "unsupported_tracker_kind",
            TrackerError::InvalidConfig(_) => "invalid_tracker_config",
            TrackerError::MissingSecret(_) => "missing_tracker_secret",
            TrackerError::Request(_) => "tracker_request",
            TrackerError::Status { .. } => "tracker_status",
            TrackerError::Response(_) => "tracker_response",
            TrackerError::Pagination(_) => "tracker_pagination",
            TrackerError::RateLimited { .. } => "tracker_rate_limited",
            TrackerError::NotFound(_) => "tracker_not_found",
        }
    }
}

/// A comment on a tracker issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueComment {
    /// The tracker's login of who wrote it.
    pub author: String,
    pub body: String,
    pub created_at_ms: Millis,
}

/// The tracker contract of R-049..R-057.
#[async_trait]
pub trait Tracker: Send + Sync {
    /// The `tracker.kind` this adapter implements.
    fn kind(&self) -> &'static str;

    /// Issues in any of `states` (compared case-insensitively), including non-dispatchable ones.
    /// An empty `states` returns `[]` without a request.
    async fn fetch_issues_by_states(&self, states: &[String]) -> Result<Vec<Issue>, TrackerError>;

    /// Current snapshots of the given ids; ids no longer visible are omitted, a malformed
    /// requested record fails the call.
    async fn fetch_issues_by_ids(&self, ids: &[String]) -> Result<Vec<Issue>, TrackerError>;

    /// Moves the issue to `state` (takt's write-back; trackers that do not support it return
    /// `Ok(())` and log).
    async fn transition(&self, issue_id: &str, state: &str) -> Result<(), TrackerError>;

    /// Comments written on the issue at or after `since_ms`, oldest first (how a person answers
    /// a blocked task from the tracker). Trackers without comments return none.
    async fn comments_since(
        &self,
        issue: &Issue,
        since_ms: Millis,
    ) -> Result<Vec<IssueComment>, TrackerError> {
        let _ = (issue, since_ms);
        Ok(Vec::new())
    }

    /// Whether [`Tracker::comments_since`] and [`Tracker::upsert_comment`] reach real comments
    /// (the agent's `issue_comment` tool is offered only then).
    fn has_comments(&self) -> bool {
        false
    }

    /// Writes takt's comment on the issue, editing the one it wrote before (found by `marker`,
    /// a hidden string in the body) instead of adding another. Trackers without comments (the
    /// local one: its journal is the record) do nothing.
    async fn upsert_comment(
        &self,
        issue: &Issue,
        marker: &str,
        body: &str,
    ) -> Result<(), TrackerError> {
        let _ = (issue, marker, body);
        Ok(())
    }
}

/// Errors of an agent backend.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The agent process could not be started (missing binary, bad command). Retryable with
    /// backoff: the next attempt may succeed after an operator fixes the environment.
    #[error("failed to spawn agent: {0}")]
    Spawn(String),
    /// The agent's protocol stream broke (bad JSON, closed pipe, unexpected exit). Retryable.
    #[error("agent protocol error: {0}")]
    Protocol(String),
    /// IO around the agent failed (writing the prompt file, reading output). Retryable.
    #[error("agent io error: {0}")]
    Io(String),
}

/// Where a confined process sees its workspace when not at the workspace's own path, and what
/// appears below it there. Build tools key their outputs by absolute path: a build cache is
/// only right for a workspace shown where the cache was built.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkspaceView {
    /// The workspace's path inside the sandbox.
    pub at: PathBuf,
    /// A frozen build cache shown under the workspace through an overlay.
    pub build_cache: Option<CacheOverlay>,
}

/// A read-only directory shown at `<workspace>/<dir>` through a kernel overlay: reads come
/// from `lower`, every write lands in `upper` (`work` is the overlay's scratch directory, on
/// the same file system). Only a root supervisor can mount it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CacheOverlay {
    /// One plain name below the workspace, such as `target`.
    pub dir: String,
    pub lower: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
}

/// Everything a backend needs to start a session for one run.
#[derive(Debug, Clone)]
pub struct SessionContext {
    pub task_id: String,
    pub identifier: String,
    pub run_id: String,
    pub attempt: u32,
    /// The agent's working directory; validated to lie under the workspace root.
    pub workspace: PathBuf,
    /// A directory outside the workspace for the run's private files (logs, pid marks,
    /// sandbox specs and reports). Only its `agent/` subdirectory (prompts, per-run agent
    /// configuration such as `CODEX_HOME`) is visible to a sandboxed agent.
    pub run_dir: PathBuf,
    /// How the session reaches a model, for backends that use one.
    pub model: Option<ModelAccess>,
    /// The git metadata the workspace points into (a worktree's shared mirror), from the
    /// daemon's own records: the sandbox shows it read-only so git works inside.
    pub git_dir: Option<PathBuf>,
    /// Tools the daemon runs for this run's agent on the host (reading its issue, commenting
    /// on it, reading its pull request's checks); `None` when the run has none.
    pub host_tools: Option<Arc<dyn HostTools>>,
    /// Where the sandbox shows the workspace to the agent when not at `workspace` (a fixed
    /// path a warm build cache was made at); `None`: at `workspace`.
    pub view: Option<WorkspaceView>,
}

impl SessionContext {
    /// The path the agent knows its workspace by: what it is told, and what the paths it
    /// reports start with.
    pub fn agent_workspace(&self) -> &std::path::Path {
        self.view.as_ref().map_or(&self.workspace, |view| &view.at)
    }
}

/// One tool the daemon runs on an agent's behalf, outside the sandbox, with the daemon's
/// credentials (Symphony's host-side tool pattern, R-124). Each is scoped to the run's own task:
/// the agent never holds a tracker or forge token and cannot name another issue.
#[derive(Debug, Clone, PartialEq)]
pub struct HostToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    /// JSON Schema of the arguments object.
    pub input_schema: serde_json::Value,
}

/// What a host tool call produced: text for the model. A failure (bad arguments, a provider
/// error, a refused request) is `is_error` and tells the model what went wrong; it never ends
/// the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostToolOutput {
    pub text: String,
    pub is_error: bool,
}

impl HostToolOutput {
    pub fn ok(text: impl Into<String>) -> HostToolOutput {
        HostToolOutput {
            text: text.into(),
            is_error: false,
        }
    }

    pub fn error(text: impl Into<String>) -> HostToolOutput {
        HostToolOutput {
            text: text.into(),
            is_error: true,
        }
    }
}

/// The host-side tools of one run. Every backend reaches the same object: the built-in loop
/// calls it directly, Codex through dynamic tools, Claude Code through takt's MCP server.
#[async_trait]
pub trait HostTools: Send + Sync + std::fmt::Debug {
    /// The tools this run has (which depend on the tracker and the forge).
    fn specs(&self) -> Vec<HostToolSpec>;

    /// Runs `name` with `arguments` (a JSON object). An unknown name is an error output.
    async fn call(&self, name: &str, arguments: serde_json::Value) -> HostToolOutput;
}

/// How an agent reaches a model: the daemon's model endpoint and the run's own token. Agents
/// never see a provider key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelAccess {
    /// OpenAI-style base URL ending in `/v1` (Responses, Chat Completions).
    pub openai_base_url: String,
    /// Anthropic-style base URL without `/v1` (clients append `/v1/messages`).
    pub anthropic_base_url: String,
    /// The credential the agent presents (as its API key): valid for this run only.
    pub token: String,
    /// The model name to ask for, when the workflow sets one.
    pub model: Option<String>,
}

/// One turn's input: the full rendered prompt on turn 1, continuation guidance after.
#[derive(Debug, Clone)]
pub struct TurnInput {
    pub turn: u32,
    pub prompt: String,
}

/// How a turn ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnResult {
    /// The turn completed; `finished` is true when the agent says it is done with the task
    /// (a command backend always is: a command has no conversation to continue).
    Completed { finished: bool },
    /// The turn failed with an error message.
    Failed { error: String },
    /// The agent needs an answer before it can go on.
    InputRequired { question: String },
}

/// A boxed future, so the port traits stay object-safe without naming a runtime.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Where a session reports its normalized events, and asks a person when its policy cannot
/// decide.
pub trait AgentEventSink: Send + Sync {
    fn emit(&self, event: AgentEvent);

    /// Puts the task in `blocked` with `question` and waits for a person's answer, which is
    /// delivered into this same live session. `None` means nobody will answer in this session
    /// (the run is being stopped, or the shell does not wait): the backend should end the turn
    /// with [`TurnResult::InputRequired`] so the answer reaches the next run's prompt instead.
    fn ask(&self, question: String) -> BoxFuture<'_, Option<String>> {
        self.emit(AgentEvent::InputRequired { question });
        Box::pin(std::future::ready(None))
    }
}

/// An agent backend: codex, claude, builtin, command.
#[async_trait]
pub trait AgentBackend: Send + Sync {
    /// The `agent.backend` name.
    fn name(&self) -> &'static str;

    async fn start_session(
        &self,
        context: SessionContext,
    ) -> Result<Box<dyn AgentSession>, AgentError>;
}

/// A live session. Dropping it must stop the agent and everything it started.
#[async_trait]
pub trait AgentSession: Send {
    /// The process id of the agent, when there is one.
    fn pid(&self) -> Option<u32>;

    async fn run_turn(
        &mut self,
        input: TurnInput,
        events: &dyn AgentEventSink,
    ) -> Result<TurnResult, AgentError>;

    /// Stops the agent: politely, then by killing its process group.
    async fn stop(&mut self);
}
