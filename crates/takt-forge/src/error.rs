//! What can go wrong talking to a forge, and whether trying again helps.
//!
//! No variant ever carries the forge token: messages are built from the forge's own error
//! text, git's stderr (with the token redacted), and the request path.

use std::time::Duration;

/// A failed forge operation. Each variant says when it happens and whether a retry may help;
/// [`ForgeError::is_retryable`] and [`ForgeError::retry_after`] answer it for code.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// The settings cannot work (an empty token, a repository name without an owner, an API
    /// URL that does not parse). Not retryable: fix WORKFLOW.md or the environment.
    #[error("forge_config: {0}")]
    Config(String),
    /// The forge refused the credentials (401, or 403 that is not a rate limit): the token is
    /// wrong, expired, or lacks a scope. Not retryable until the token is fixed.
    #[error("forge_auth: {method} {path} answered {status}: {message}")]
    Auth {
        method: String,
        path: String,
        status: u16,
        message: String,
    },
    /// The repository, pull request, commit or job does not exist (or the token cannot see
    /// it: forges answer 404 for private resources). Not retryable.
    #[error("forge_not_found: {method} {path}: {message}")]
    NotFound {
        method: String,
        path: String,
        message: String,
    },
    /// The forge refused the change as it stands: the request is not mergeable, its head moved
    /// since it was verified, branch protection blocks it, or the branch was moved by someone
    /// else and takt will not overwrite it. Not retryable without a new round (new commit,
    /// new approvals).
    #[error("forge_conflict: {0}")]
    Conflict(String),
    /// The forge asked us to slow down (429, 403 with `Retry-After` or an exhausted
    /// `x-ratelimit-remaining`, GitHub's secondary rate limits). Retry after
    /// `retry_after_ms` (a default of a minute when the forge named no delay).
    #[error("forge_rate_limited: retry after {retry_after_ms} ms")]
    RateLimited { retry_after_ms: u64 },
    /// The forge answered with another error status. Retryable for 5xx (the forge is
    /// unwell); not for 4xx (the request is wrong, e.g. 422 validation).
    #[error("forge_status: {method} {path} answered {status}: {message}")]
    Status {
        method: String,
        path: String,
        status: u16,
        message: String,
    },
    /// The request could not be sent or its answer not received (DNS, connection, timeout).
    /// Retryable.
    #[error("forge_request: {0}")]
    Request(String),
    /// The forge answered 2xx with a body this client cannot read. Not retryable: the forge's
    /// API changed or this is not the forge it claims to be.
    #[error("forge_response: {0}")]
    Response(String),
    /// git failed pushing the branch (network, missing commit, remote hook). `stderr` has the
    /// token redacted. Retryable when it looks like a network problem.
    #[error("forge_git: `{command}` failed: {stderr}")]
    Git { command: String, stderr: String },
}

/// The wait used when a forge rate-limits without saying for how long.
pub const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

impl ForgeError {
    /// Whether trying the same operation again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            ForgeError::RateLimited { .. } | ForgeError::Request(_) => true,
            ForgeError::Status { status, .. } => *status >= 500,
            ForgeError::Git { stderr, .. } => {
                let lower = stderr.to_lowercase();
                [
                    "could not resolve host",
                    "failed to connect",
                    "couldn't connect",
                    "connection",
                    "timed out",
                    "early eof",
                    "the remote end hung up",
                    "did not finish within",
                    "http 5",
                    "error: 5",
                ]
                .iter()
                .any(|needle| lower.contains(needle))
            }
            ForgeError::Config(_)
            | ForgeError::Auth { .. }
            | ForgeError::NotFound { .. }
            | ForgeError::Conflict(_)
            | ForgeError::Response(_) => false,
        }
    }

    /// How long to wait before retrying a rate-limited request.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ForgeError::RateLimited { retry_after_ms } => {
                Some(Duration::from_millis(*retry_after_ms))
            }
            _ => None,
        }
    }
}
