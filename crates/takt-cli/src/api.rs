//! The daemon's side of the HTTP API: the [`DaemonPort`] the server reads and commands through.
//! Reads come from a snapshot the daemon publishes after its steps and from the store;
//! commands go into the daemon loop (the only journal writer) and are answered once journaled.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use takt_core::OperatorCommand;
use takt_protocol::{Issue, JournalEntry};
use takt_server::{
    DaemonPort, NewTask, PortError, RefreshQueued, Snapshot, WebhookDelivery, WebhookOutcome,
};
use takt_store::{LocalTracker, NewIssue, Store, StoreError};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::clock::now_ms;

/// What the server asks of the daemon loop.
pub enum ApiRequest {
    /// Apply an operator command; the reply is the core's refusal, if any.
    Operator(OperatorCommand, oneshot::Sender<Result<(), String>>),
    /// Poll now; the reply says whether a poll was already under way.
    Refresh(oneshot::Sender<RefreshQueued>),
    /// An authenticated webhook delivery: used once, then acted on.
    Webhook(
        WebhookDelivery,
        oneshot::Sender<Result<WebhookOutcome, PortError>>,
    ),
    /// A webhook request refused before it counted: journaled only.
    WebhookRefused {
        source: String,
        delivery: Option<String>,
        reason: String,
    },
}

/// The daemon's ends of the API's channels.
pub struct ApiChannels {
    pub snapshots: watch::Sender<Option<Arc<Snapshot>>>,
    pub requests: mpsc::UnboundedReceiver<ApiRequest>,
}

/// The API server task and the signal that stops it.
pub struct RunningServer {
    pub task: tokio::task::JoinHandle<Result<(), takt_server::ServerError>>,
    pub stop: oneshot::Sender<()>,
}

/// The server's end.
pub struct ApiPort {
    snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
    entries: broadcast::Sender<JournalEntry>,
    requests: mpsc::UnboundedSender<ApiRequest>,
    store: Store,
    tracker: LocalTracker,
    /// The repository mirror, where task commits live: the dashboard's diffs come from it.
    mirror: PathBuf,
}

/// Longest diff handed to the dashboard; a bigger one is cut (the page says so).
const MAX_DIFF_BYTES: usize = 1 << 20;
/// How long `git diff` may take before the page goes without the diff.
const DIFF_TIMEOUT: Duration = Duration::from_secs(10);

/// A connected pair: the port for the server, the channels for the daemon. `entries` is the
/// engine's journal broadcast.
pub fn connect(
    store: Store,
    tracker: LocalTracker,
    entries: broadcast::Sender<JournalEntry>,
    mirror: PathBuf,
) -> (ApiPort, ApiChannels) {
    let (snapshots_tx, snapshots_rx) = watch::channel(None);
    let (requests_tx, requests_rx) = mpsc::unbounded_channel();
    (
        ApiPort {
            snapshots: snapshots_rx,
            entries,
            requests: requests_tx,
            store,
            tracker,
            mirror,
        },
        ApiChannels {
            snapshots: snapshots_tx,
            requests: requests_rx,
        },
    )
}

fn internal(error: StoreError) -> PortError {
    PortError::Internal(error.to_string())
}

fn gone() -> PortError {
    PortError::Unavailable("the daemon is shutting down".into())
}

/// A revision as verification reports it: a full or abbreviated hex object name, so it can never
/// be read by git as an option.
fn is_object_name(revision: &str) -> bool {
    (4..=64).contains(&revision.len()) && revision.bytes().all(|byte| byte.is_ascii_hexdigit())
}

#[async_trait]
impl DaemonPort for ApiPort {
    async fn diff(&self, task_id: &str) -> Result<Option<String>, PortError> {
        let Some(snapshot) = self.snapshot() else {
            return Ok(None);
        };
        let Some(report) = snapshot
            .state
            .tasks
            .get(task_id)
            .and_then(|task| task.verification.as_deref())
        else {
            return Ok(None);
        };
        if !is_object_name(&report.base) || !is_object_name(&report.commit) {
            return Ok(None);
        }
        let range = format!("{}..{}", report.base, report.commit);
        let run = tokio::process::Command::new("git")
            .arg("-C")
            .arg(&self.mirror)
            .args(["diff", "--no-color", "--no-ext-diff", &range, "--"])
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(DIFF_TIMEOUT, run)
            .await
            .map_err(|_| PortError::Internal(format!("git diff {range} took over 10 s")))?
            .map_err(|error| PortError::Internal(format!("git diff {range}: {error}")))?;
        if !output.status.success() {
            // The commits may be gone from the mirror (cleaned up); the page lists the files.
            return Ok(None);
        }
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        if text.len() > MAX_DIFF_BYTES {
            let mut cut = MAX_DIFF_BYTES;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        Ok(Some(text))
    }

    fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.snapshots.borrow().clone()
    }

    fn subscribe(&self) -> broadcast::Receiver<JournalEntry> {
        self.entries.subscribe()
    }

    async fn refresh(&self) -> Result<RefreshQueued, PortError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(ApiRequest::Refresh(reply))
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())
    }

    async fn submit(&self, command: OperatorCommand) -> Result<(), PortError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(ApiRequest::Operator(command, reply))
            .map_err(|_| gone())?;
        answer
            .await
            .map_err(|_| gone())?
            .map_err(PortError::Refused)
    }

    async fn create_task(&self, task: NewTask) -> Result<Issue, PortError> {
        let issue = self
            .tracker
            .create_issue(
                NewIssue {
                    title: task.title,
                    description: task.body,
                    priority: task.priority,
                    labels: task.labels,
                    blocked_by: task.blocked_by,
                    state: None,
                    author: Some(task.author),
                },
                now_ms(),
            )
            .await
            .map_err(|error| match error {
                StoreError::Invalid(message) => PortError::Invalid(message),
                other => internal(other),
            })?;
        // Dispatch now rather than at the next poll; whether a poll was already under way
        // does not matter here.
        let (reply, _) = oneshot::channel();
        let _ = self.requests.send(ApiRequest::Refresh(reply));
        Ok(issue)
    }

    async fn webhook(&self, delivery: WebhookDelivery) -> Result<WebhookOutcome, PortError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(ApiRequest::Webhook(delivery, reply))
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    async fn webhook_refused(&self, source: &str, delivery: Option<String>, reason: String) {
        let _ = self.requests.send(ApiRequest::WebhookRefused {
            source: source.to_owned(),
            delivery,
            reason,
        });
    }

    async fn journal_since(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<JournalEntry>, PortError> {
        self.store
            .read_journal(after_seq, limit)
            .await
            .map_err(internal)
    }

    async fn task_journal(&self, task_id: &str) -> Result<Vec<JournalEntry>, PortError> {
        self.store
            .read_task_journal(task_id)
            .await
            .map_err(internal)
    }

    async fn artifact(&self, sha256: &str) -> Result<Option<Vec<u8>>, PortError> {
        match self.store.get_artifact(sha256).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(StoreError::ArtifactMissing { .. }) => Ok(None),
            Err(StoreError::Invalid(message)) => Err(PortError::Invalid(message)),
            Err(other) => Err(internal(other)),
        }
    }
}
