//! What every handler shares: the daemon port, the auth settings, the shutdown signal, and
//! access to the current snapshot and the daemon's answers.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use takt_core::Task;
use tokio::sync::watch;

use crate::auth::TokenDigest;
use crate::error::ApiError;
use crate::port::{DaemonPort, PortError, Snapshot};

/// The handlers' shared state. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub daemon: Arc<dyn DaemonPort>,
    /// The token's digest, when one is configured.
    pub token: Option<TokenDigest>,
    /// The server listens on an address other machines can reach: reads need the token too.
    pub reads_need_token: bool,
    pub keep_alive: Duration,
    /// How long a call into the daemon may take before the client gets 504.
    pub daemon_timeout: Duration,
    /// The GitHub webhook secret (HMAC key); `None`: `/hooks/github` does not exist.
    pub github_secret: Option<Arc<str>>,
    /// The GitLab webhook's secret token's digest; `None`: `/hooks/gitlab` does not exist.
    pub gitlab_token: Option<TokenDigest>,
    /// The Linear webhook's signing secret (HMAC key); `None`: `/hooks/linear` does not exist.
    pub linear_secret: Option<Arc<str>>,
    /// The generic webhook token's digest; `None`: `/hooks/generic` does not exist.
    pub generic_token: Option<TokenDigest>,
    /// Turns true when the server starts shutting down; event streams end on it, so a graceful
    /// shutdown does not wait for clients that never hang up.
    pub shutdown: watch::Receiver<bool>,
}

impl App {
    /// The daemon's latest snapshot, or 503 `snapshot_unavailable`.
    pub fn snapshot(&self) -> Result<Arc<Snapshot>, ApiError> {
        self.daemon
            .snapshot()
            .ok_or_else(ApiError::snapshot_unavailable)
    }

    /// Awaits a call into the daemon, for at most `daemon_timeout`: a stuck daemon loop must
    /// not hang API clients (R-131's timeout error mode).
    pub async fn ask<T>(
        &self,
        call: impl Future<Output = Result<T, PortError>>,
    ) -> Result<T, ApiError> {
        match tokio::time::timeout(self.daemon_timeout, call).await {
            Ok(answer) => answer.map_err(ApiError::from),
            Err(_) => Err(ApiError::orchestrator_timeout(self.daemon_timeout)),
        }
    }
}

/// Finds a task by id or, case-insensitively, by identifier (as the CLI does).
pub fn find_task<'a>(snapshot: &'a Snapshot, reference: &str) -> Result<&'a Task, ApiError> {
    snapshot
        .state
        .find(reference)
        .ok_or_else(|| ApiError::task_not_found(reference))
}
