//! Publishing accepted changes to a forge (`publish.forge: github | gitlab`).
//!
//! One [`Forge`] per configured repository does the publish stage's side effects, each of them
//! idempotent so a daemon that crashed between "did it" and "journaled it" can simply run the
//! step again:
//!
//! - [`Forge::push_branch`] pushes the task's commit from the daemon's mirror with the
//!   daemon's token (environment-only git config; see [`git`](crate::git) module docs), and
//!   never overwrites a branch someone else moved;
//! - [`Forge::ensure_pull_request`] finds the open request for the branch or opens one, and
//!   brings its title and body (see [`pull_request_body`]) up to date;
//! - [`Forge::set_status`] reports takt's gate result as a commit status under one context;
//! - [`Forge::review_state`] reads approvals, requested changes, review comments and the
//!   forge's own checks, so the core can merge, wait, or send the task back to the agent;
//! - [`Forge::check_log`] fetches the tail of a failed check's log (feedback for the agent);
//! - [`Forge::merge`] merges only the head that was verified.
//!
//! [`github_notice`] and [`gitlab_notice`] read webhook deliveries, so a review or a finished
//! check can trigger [`Forge::review_state`] at once.
//!
//! The `fake` feature adds in-process GitHub and GitLab servers ([`fake`]) that follow the
//! documented request and response shapes, for tests.

mod body;
mod error;
mod git;
mod github;
mod gitlab;
mod http;
mod settings;
mod webhook;

#[cfg(feature = "fake")]
pub mod fake;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

pub use body::{
    Attestation, EvidenceSummary, TASK_MARKER_PREFIX, marker, pull_request_body, task_marker,
};
pub use error::{DEFAULT_RATE_LIMIT_WAIT, ForgeError};
pub use git::PushOutcome;
pub use settings::{
    DEFAULT_STATUS_CONTEXT, ForgeKind, ForgeSettings, MergeMethod, Secret, web_root,
};
pub use webhook::{ForgeNotice, NoticeKind, github_notice, gitlab_notice};

/// The longest description a commit status takes (GitHub's limit; GitLab's is larger).
pub const STATUS_DESCRIPTION_MAX: usize = 140;
/// The most bytes of a check's log [`Forge::check_log`] returns (the tail, where failures are).
pub const CHECK_LOG_MAX: usize = 64 * 1024;

/// The pull/merge request takt wants for a branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestSpec {
    /// The head branch (without `refs/heads/`).
    pub branch: String,
    /// The branch it merges into.
    pub base: String,
    pub title: String,
    /// Markdown; see [`pull_request_body`].
    pub body: String,
    /// Open it as a draft (only when creating; an existing request keeps its draft state).
    pub draft: bool,
}

/// An open pull/merge request for a branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// GitHub's pull request number / GitLab's merge request `iid`.
    pub number: u64,
    /// The request's web page.
    pub url: String,
    /// The head commit the forge sees.
    pub head_sha: String,
    /// `true` when this call opened it.
    pub created: bool,
    /// `true` when this call changed its title or body.
    pub updated: bool,
}

/// The state of a commit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusState {
    Pending,
    Success,
    Failure,
    /// takt could not verify (an infrastructure problem, not a red gate).
    Error,
}

impl StatusState {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusState::Pending => "pending",
            StatusState::Success => "success",
            StatusState::Failure => "failure",
            StatusState::Error => "error",
        }
    }
}

/// A commit status takt sets under its context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    pub state: StatusState,
    /// Cut to [`STATUS_DESCRIPTION_MAX`] characters when sent.
    pub description: String,
    /// Where the evidence is (takt's API or dashboard).
    pub target_url: Option<String>,
}

/// Whether the request is still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullRequestState {
    Open,
    /// Closed without merging.
    Closed,
    Merged,
}

/// One comment of a review: inline (with a path and line) or a general discussion note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewComment {
    /// The forge's id; ids grow over time, so "comments after id N" is a stable cursor.
    pub id: u64,
    pub author: String,
    pub body: String,
    pub path: Option<String>,
    pub line: Option<u64>,
    /// RFC 3339, as the forge gave it.
    pub created_at: Option<String>,
    /// The review it belongs to (GitHub), when known.
    pub review_id: Option<u64>,
}

impl ReviewComment {
    /// `path:line: text`, `path: text` or the text alone: one line of feedback.
    pub fn located(&self) -> String {
        let text = self.body.trim();
        match (&self.path, self.line) {
            (Some(path), Some(line)) => format!("{path}:{line}: {text}"),
            (Some(path), None) => format!("{path}: {text}"),
            _ => text.to_owned(),
        }
    }
}

/// A reviewer whose latest review asks for changes, with what they said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRequest {
    pub author: String,
    /// The review's body (GitHub) or empty (GitLab keeps the words in discussion notes).
    pub body: String,
    /// The review's id (GitHub) or `None` (GitLab's reviewer state has none).
    pub review_id: Option<u64>,
    pub submitted_at: Option<String>,
    /// Inline comments of that review (GitHub) / unresolved discussion notes of that
    /// reviewer (GitLab).
    pub comments: Vec<ReviewComment>,
}

/// How a forge check stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckState {
    /// Queued, running, or waiting (GitLab `created`/`pending`/`running`/`manual`).
    Pending,
    Success,
    Failure,
    /// Cancelled or timed out.
    Cancelled,
    /// Skipped or neutral: counts as neither green nor red.
    Neutral,
    /// The check itself broke (GitHub status `error`, `action_required`, `stale`).
    Error,
}

impl CheckState {
    /// Whether the check is red: failed, cancelled, or broken.
    pub fn is_failed(self) -> bool {
        matches!(
            self,
            CheckState::Failure | CheckState::Cancelled | CheckState::Error
        )
    }
}

/// Where a check came from; decides how its log is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckSource {
    /// A GitHub check run; `actions`: run by GitHub Actions (its log is the job's log).
    GithubCheckRun { actions: bool },
    /// A GitHub commit status of another context.
    GithubStatus,
    /// A job of the GitLab merge request's head pipeline.
    GitlabJob,
    /// A GitLab external commit status of another name.
    GitlabStatus,
}

/// One check on the request's head commit, other than takt's own status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub state: CheckState,
    pub source: CheckSource,
    /// The check run / job / status id.
    pub id: u64,
    /// Its web page, when the forge gave one.
    pub url: Option<String>,
    /// What the forge says about it without a log (a check run's output, a status's
    /// description).
    pub summary: Option<String>,
}

/// One person's standing approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub login: String,
    /// The head commit approved (GitHub's review `commit_id`); `None` where the forge does not
    /// say (GitLab).
    pub commit: Option<String>,
    /// RFC 3339: when it was given (GitHub `submitted_at`, GitLab `approved_at`), when the
    /// forge says.
    pub approved_at: Option<String>,
}

/// Everything takt reads back about a request: reviews and checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewState {
    pub number: u64,
    pub state: PullRequestState,
    pub head_sha: String,
    /// `Some(false)` when the forge says it cannot be merged (conflicts, branch protection);
    /// `None` while the forge is still computing it.
    pub mergeable: Option<bool>,
    /// Distinct people whose latest review approves (dismissed approvals do not count),
    /// sorted by login. Each says what it approved, so an approval of an earlier push is not
    /// mistaken for one of the current head.
    pub approvals: Vec<Approval>,
    /// People whose latest review requests changes.
    pub changes_requested: Vec<ChangeRequest>,
    /// Every review comment on the request, oldest first (filter with
    /// [`ReviewState::comments_after`]).
    pub comments: Vec<ReviewComment>,
    /// The forge's checks on `head_sha`, takt's own status context excluded.
    pub checks: Vec<Check>,
}

impl ReviewState {
    /// Checks that are red.
    pub fn failed_checks(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| c.state.is_failed()).collect()
    }

    /// Whether every check has finished and none is red (no checks counts as green).
    pub fn checks_green(&self) -> bool {
        self.checks
            .iter()
            .all(|c| matches!(c.state, CheckState::Success | CheckState::Neutral))
    }

    /// Whether some check is still running.
    pub fn checks_pending(&self) -> bool {
        self.checks.iter().any(|c| c.state == CheckState::Pending)
    }

    /// Review comments newer than the comment `id` (a cursor the caller keeps between rounds).
    pub fn comments_after(&self, id: u64) -> Vec<&ReviewComment> {
        self.comments.iter().filter(|c| c.id > id).collect()
    }
}

/// How a merge went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    /// Merged now; the merge (or squash) commit when the forge said.
    Merged { sha: Option<String> },
    /// It had been merged before (a re-run after a crash, or a person merged it).
    AlreadyMerged { sha: Option<String> },
}

/// A forge: GitHub or GitLab. Every method is idempotent.
#[async_trait]
pub trait Forge: Send + Sync {
    /// `github` or `gitlab`.
    fn kind(&self) -> &'static str;

    /// Pushes `commit` (present in the repository at `git_dir`, the daemon's mirror) to
    /// `refs/heads/<branch>` on the remote with the daemon's credentials. Already there: Ok.
    /// `lease` is the sha takt pushed last time, if any: a branch at `lease` may be moved
    /// (even non-fast-forward); a branch anywhere else is someone else's and is
    /// [`ForgeError::Conflict`] unless the push is a fast-forward and no lease was given.
    async fn push_branch(
        &self,
        git_dir: &Path,
        commit: &str,
        branch: &str,
        lease: Option<&str>,
    ) -> Result<PushOutcome, ForgeError>;

    /// Pushes the attestation notes (`refs/notes/<notes_ref>` in the mirror at `git_dir`) to
    /// the remote with the daemon's credentials, fast-forward only, so the evidence a request's
    /// body names can be fetched from the forge. No notes yet: `AlreadyThere`. A remote notes
    /// ref that someone else moved: [`ForgeError::Conflict`].
    async fn push_notes(&self, git_dir: &Path, notes_ref: &str) -> Result<PushOutcome, ForgeError>;

    /// Finds the open request from `spec.branch` into `spec.base`, or opens one; updates its
    /// title and body when they differ.
    async fn ensure_pull_request(&self, spec: &PullRequestSpec) -> Result<PullRequest, ForgeError>;

    /// Sets takt's commit status (the configured context) on `sha`. Setting the same state
    /// and description again is a no-op on GitLab and a harmless replacement on GitHub.
    async fn set_status(&self, sha: &str, status: &CommitStatus) -> Result<(), ForgeError>;

    /// Reads the request's reviews, comments and checks.
    async fn review_state(&self, number: u64) -> Result<ReviewState, ForgeError>;

    /// The tail (at most [`CHECK_LOG_MAX`] bytes) of a check's log, or its summary when the
    /// forge keeps no log for it.
    async fn check_log(&self, check: &Check) -> Result<String, ForgeError>;

    /// Merges the request with the configured method, only while its head is `expected_sha`.
    /// Head moved, not mergeable, or blocked: [`ForgeError::Conflict`].
    async fn merge(&self, number: u64, expected_sha: &str) -> Result<MergeOutcome, ForgeError>;

    /// Closes the open request and then leaves `comment` on it. A request that is already
    /// closed, merged or gone is left alone (Ok). The comment is best effort: once the request
    /// is closed, a comment that cannot be posted is logged, not an error.
    async fn close_pull_request(&self, number: u64, comment: &str) -> Result<(), ForgeError>;
}

/// The client for `settings.kind`, after validating the settings.
pub fn build(settings: ForgeSettings) -> Result<Arc<dyn Forge>, ForgeError> {
    let settings = settings.validated()?;
    Ok(match settings.kind {
        ForgeKind::Github => Arc::new(github::Github::new(settings)?),
        ForgeKind::Gitlab => Arc::new(gitlab::Gitlab::new(settings)?),
    })
}

/// `description` cut to [`STATUS_DESCRIPTION_MAX`] characters (with an ellipsis when cut).
pub(crate) fn status_description(description: &str) -> String {
    let description = description.trim();
    if description.chars().count() <= STATUS_DESCRIPTION_MAX {
        return description.to_owned();
    }
    let mut cut: String = description
        .chars()
        .take(STATUS_DESCRIPTION_MAX - 1)
        .collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_descriptions_are_cut_to_140_characters() {
        let long = "é".repeat(200);
        let cut = status_description(&long);
        assert_eq!(cut.chars().count(), STATUS_DESCRIPTION_MAX);
        assert!(cut.ends_with('…'));
        assert_eq!(status_description(" short "), "short");
    }
}
