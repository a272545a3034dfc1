//! Errors of the Claude Code backend and how they map onto [`AgentError`].

use takt_core::ports::AgentError;

/// What can go wrong around a Claude Code process. Turn outcomes Claude itself reports (an
/// API error, a refused tool, a timeout, an exit mid-turn) are not errors: they end the turn
/// with `TurnResult::Failed`.
#[derive(Debug, thiserror::Error)]
pub enum ClaudeError {
    /// The session has no model access (`SessionContext::model` is `None`), so Claude would
    /// have no endpoint and no run token. Raised by `start_session`. Not retryable: the daemon
    /// must hand the session a model endpoint.
    #[error(
        "the claude backend needs model access (an Anthropic base URL and the run token), but the session has none"
    )]
    NoModelAccess,
    /// `claude.command` is empty. Raised by `start_session`. Not retryable: fix WORKFLOW.md.
    #[error("claude.command is empty: set it in WORKFLOW.md (default `claude`)")]
    EmptyCommand,
    /// `bypassPermissions` was asked for while takt runs as root, which Claude Code refuses
    /// unless `IS_SANDBOX=1` is set. Raised by `start_session`. Not retryable: choose another
    /// permission mode, run takt unprivileged, or set `IS_SANDBOX=1` where takt runs.
    #[error(
        "claude.permission_mode bypassPermissions is refused by Claude Code when running as root; use acceptEdits (the default), run takt as an unprivileged user, or set IS_SANDBOX=1 for takt if it already runs inside a sandbox"
    )]
    BypassAsRoot,
    /// The process could not be started (missing `sh`, bad working directory) or its run
    /// directory could not be prepared. Retryable with backoff.
    #[error("could not start Claude Code (`{command}`): {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    /// Reading Claude's output or writing its input failed for a reason other than the
    /// process ending. Retryable.
    #[error("talking to Claude Code failed: {0}")]
    Io(#[from] std::io::Error),
    /// Claude printed a line longer than the limit (a broken or hostile process); the process
    /// group was killed. Retryable (a new session starts a new process).
    #[error("Claude Code printed a line longer than {limit} bytes; the process was killed")]
    LineTooLong { limit: usize },
    /// A turn was asked of a session whose process has already ended (killed after a timeout,
    /// exited, or stopped). Retryable with a new session.
    #[error("the Claude Code session has ended: {0}")]
    Ended(String),
}

impl From<ClaudeError> for AgentError {
    fn from(error: ClaudeError) -> Self {
        match error {
            ClaudeError::NoModelAccess
            | ClaudeError::EmptyCommand
            | ClaudeError::BypassAsRoot
            | ClaudeError::Spawn { .. } => AgentError::Spawn(error.to_string()),
            ClaudeError::Io(_) => AgentError::Io(error.to_string()),
            ClaudeError::LineTooLong { .. } | ClaudeError::Ended(_) => {
                AgentError::Protocol(error.to_string())
            }
        }
    }
}
