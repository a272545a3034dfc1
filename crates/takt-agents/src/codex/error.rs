//! The Codex backend's errors, named after Symphony's normalized categories.

use takt_core::ports::AgentError;

/// What can go wrong while driving `codex app-server`.
///
/// Session start (`start_session`) returns these as [`AgentError`]s. Once a turn has started,
/// `run_turn` reports them as [`takt_core::ports::TurnResult::Failed`] with the error's text, so
/// the journal shows the category as the message's prefix.
#[derive(Debug, thiserror::Error)]
pub enum CodexError {
    /// The backend is not usable as configured: no model access in the session context, an
    /// empty command, or a workspace that does not exist. Not retryable until an operator
    /// fixes the configuration.
    #[error("codex_not_configured: {0}")]
    Config(String),
    /// The command could not be started at all (no shell, no permission). Retryable with
    /// backoff: the next attempt may succeed after an operator fixes the environment.
    #[error("codex_not_found: could not start `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// Preparing the run directory (`CODEX_HOME`, `config.toml`) failed. Retryable.
    #[error("codex_io: {0}")]
    Io(String),
    /// A synchronous request (`initialize`, `thread/start`, `turn/start`) got no answer within
    /// `read_timeout`. The app-server is stopped. Retryable.
    #[error("response_timeout: no answer to `{method}` within {timeout_ms} ms")]
    ResponseTimeout { method: String, timeout_ms: u128 },
    /// The app-server answered a request with a JSON-RPC error. Retryable (a bad policy value
    /// in WORKFLOW.md fails the same way every time, and the message says so).
    #[error("response_error: `{method}` failed: {message} (code {code})")]
    ResponseError {
        method: String,
        code: i64,
        message: String,
    },
    /// The app-server exited or closed its stdout (R-113 `port_exit`); the message carries the
    /// exit status and the last lines of its stderr. Retryable.
    #[error("port_exit: {0}")]
    Exited(String),
    /// The app-server broke the protocol: a line longer than the limit, or a response that does
    /// not have the documented shape. The app-server is stopped. Retryable.
    #[error("protocol_error: {0}")]
    Protocol(String),
    /// A turn produced no output for `turn_timeout`; it was interrupted and the
    /// app-server stopped. Retryable.
    #[error("turn_timeout: no output from the app-server for {timeout_ms} ms")]
    TurnTimeout { timeout_ms: u128 },
}

impl CodexError {
    /// The category name, as used in logs and as the message prefix.
    pub fn category(&self) -> &'static str {
        match self {
            CodexError::Config(_) => "codex_not_configured",
            CodexError::Spawn { .. } => "codex_not_found",
            CodexError::Io(_) => "codex_io",
            CodexError::ResponseTimeout { .. } => "response_timeout",
            CodexError::ResponseError { .. } => "response_error",
            CodexError::Exited(_) => "port_exit",
            CodexError::Protocol(_) => "protocol_error",
            CodexError::TurnTimeout { .. } => "turn_timeout",
        }
    }
}

impl From<CodexError> for AgentError {
    fn from(error: CodexError) -> Self {
        match error {
            CodexError::Config(_) | CodexError::Spawn { .. } => {
                AgentError::Spawn(error.to_string())
            }
            CodexError::Io(_) => AgentError::Io(error.to_string()),
            _ => AgentError::Protocol(error.to_string()),
        }
    }
}
