//! The shell side of `publish.forge: github | gitlab`: what the core's `Publish`,
//! `CheckPullRequest` and forge `Merge` commands do, with the daemon's forge token (which no
//! agent sandbox ever receives).

use std::sync::Arc;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use takt_core::{FailedCheck, ForgeReview, ForgeReviewNote, ForgeVerdict, MergeResult, Task};
use takt_forge::{
    Approval, Attestation, CommitStatus, EvidenceSummary, Forge, ForgeError, ForgeSettings,
    MergeOutcome, PullRequestSpec, PullRequestState, StatusState,
};
use takt_protocol::{Millis, PullRequestRef};
use takt_workflow::Workflow;
use takt_workspace::WorkspaceManager;
use tracing::{info, warn};

/// Publishes verified changes to the configured forge.
#[derive(Clone)]
pub struct Publisher {
    forge: Arc<dyn Forge>,
    workspaces: Arc<WorkspaceManager>,
    base_branch: Option<String>,
    /// `github:` / `gitlab:`, prefixed to forge logins so they never collide with takt's
    /// operator names.
    login_prefix: &'static str,
}

impl Publisher {
    /// The publisher `publish.forge` asks for; `None` for `local`.
    pub fn from_workflow(
        workflow: &Workflow,
        workspaces: &Arc<WorkspaceManager>,
    ) -> Result<Option<Publisher>> {
        let publish = &workflow.publish;
        let Some(settings) = ForgeSettings::from_publish(publish)
            .with_context(|| format!("publish.forge in {}", workflow.path.display()))?
        else {
            return Ok(None);
        };
        let login_prefix = match settings.kind {
            takt_forge::ForgeKind::Github => "github:",
            takt_forge::ForgeKind::Gitlab => "gitlab:",
        };
        let forge = takt_forge::build(settings)
            .with_context(|| format!("publish.forge in {}", workflow.path.display()))?;
        Ok(Some(Publisher {
            forge,
            workspaces: workspaces.clone(),
            base_branch: publish
                .base_branch
                .clone()
                .or_else(|| workflow.workspace.base_branch.clone()),
            login_prefix,
        }))
    }

    /// The forge client, for the agents' host tools (read-only use there).
    pub fn forge(&self) -> Arc<dyn Forge> {
        self.forge.clone()
    }

    async fn base_branch(&self) -> Result<String, String> {
        match &self.base_branch {
            Some(branch) => Ok(branch.clone()),
            None => self
                .workspaces
                .sync_mirror()
                .await
                .map(|base| base.branch)
                .map_err(|error| error.to_string()),
        }
    }

    /// Pushes the task's branch at `commit`, opens or updates its pull request with the
    /// evidence, and sets takt's commit status.
    pub async fn publish(
        &self,
        task: &Task,
        branch: &str,
        commit: &str,
        previous: Option<&PullRequestRef>,
    ) -> Result<PullRequestRef, String> {
        let text = |error: ForgeError| error.to_string();
        let mirror = self.workspaces.settings().mirror_dir.clone();
        self.forge
            .push_branch(&mirror, commit, branch, previous.map(|pr| pr.head.as_str()))
            .await
            .map_err(text)?;
        // The evidence the body names goes along; without it the request still stands.
        if let Err(error) = self
            .forge
            .push_notes(&mirror, takt_verify::attest::NOTES_REF)
            .await
        {
            warn!(issue_identifier = %task.issue.identifier, %error, "the attestation notes were not pushed");
        }
        let base = self.base_branch().await?;
        let body = self.body(task, commit).await;
        let spec = PullRequestSpec {
            branch: branch.to_owned(),
            base,
            title: format!("{}: {}", task.issue.identifier, task.issue.title),
            body,
            draft: false,
        };
        let pull_request = self.forge.ensure_pull_request(&spec).await.map_err(text)?;
        let gates = task
            .verification
            .as_deref()
            .map(|report| report.gates.len())
            .unwrap_or(0);
        let status = CommitStatus {
            state: StatusState::Success,
            description: format!("takt: {gates} gate(s) passed on a clean checkout"),
            target_url: None,
        };
        self.forge.set_status(commit, &status).await.map_err(text)?;
        info!(
            issue_identifier = %task.issue.identifier,
            number = pull_request.number,
            created = pull_request.created,
            "pull request published"
        );
        Ok(PullRequestRef {
            number: pull_request.number,
            url: pull_request.url,
            head: commit.to_owned(),
        })
    }

    async fn body(&self, task: &Task, commit: &str) -> String {
        let Some(report) = task.verification.as_deref() else {
            return format!("{}\n\n{}", takt_forge::marker(&task.id), task.issue.title);
        };
        let risk = task.risk.clone().unwrap_or(takt_protocol::RiskAssessment {
            tier: takt_protocol::RiskTier::Review,
            rules: Vec::new(),
            approvals_required: task.approvals_required,
        });
        let note = self
            .workspaces
            .read_note(takt_verify::attest::NOTES_REF, commit)
            .await
            .ok()
            .flatten();
        let attestation = note.map(|note| Attestation {
            notes_ref: takt_verify::attest::NOTES_REF.to_owned(),
            commit: commit.to_owned(),
            statement_sha256: format!("{:x}", Sha256::digest(note.as_bytes())),
            url: None,
        });
        takt_forge::pull_request_body(&EvidenceSummary {
            task_id: &task.id,
            issue: task
                .issue
                .url
                .as_deref()
                .or(Some(task.issue.identifier.as_str())),
            summary: None,
            report,
            risk: &risk,
            attestation: attestation.as_ref(),
            evidence_url: None,
        })
    }

    /// Reads the pull request: reviews (change requests submitted before the head was
    /// published count for an earlier commit), checks, and the logs of the red ones.
    pub async fn check(
        &self,
        number: u64,
        published_at_ms: Option<Millis>,
    ) -> Result<ForgeReview, String> {
        let state = self
            .forge
            .review_state(number)
            .await
            .map_err(|error| error.to_string())?;
        let head = state.head_sha.clone();
        // The core counts a note only on the head it is about; an empty commit marks one
        // given before takt's latest push.
        let on = |current: bool| Some(if current { head.clone() } else { String::new() });
        let mut reviews: Vec<ForgeReviewNote> = state
            .approvals
            .iter()
            .map(|approval| ForgeReviewNote {
                by: format!("{}{}", self.login_prefix, approval.login),
                verdict: ForgeVerdict::Approved,
                body: String::new(),
                commit: on(approval_is_current(approval, &head, published_at_ms)),
            })
            .collect();
        for request in &state.changes_requested {
            // A person's objection whose time is unknown still counts.
            let current =
                given_since(request.submitted_at.as_deref(), published_at_ms).unwrap_or(true);
            let mut body = request.body.trim().to_owned();
            for comment in &request.comments {
                body.push_str(&format!("\n- {}", comment.located()));
            }
            reviews.push(ForgeReviewNote {
                by: format!("{}{}", self.login_prefix, request.author),
                verdict: ForgeVerdict::ChangesRequested,
                body,
                commit: on(current),
            });
        }
        let mut checks_failed = Vec::new();
        for check in state.failed_checks() {
            let log = match self.forge.check_log(check).await {
                Ok(log) => log,
                Err(error) => format!("(its log could not be read: {error})"),
            };
            checks_failed.push(FailedCheck {
                name: check.name.clone(),
                log,
            });
        }
        Ok(ForgeReview {
            head,
            merged: state.state == PullRequestState::Merged,
            closed: state.state == PullRequestState::Closed,
            reviews,
            checks_pending: u32::try_from(
                state
                    .checks
                    .iter()
                    .filter(|check| check.state == takt_forge::CheckState::Pending)
                    .count(),
            )
            .unwrap_or(u32::MAX),
            checks_failed,
        })
    }

    /// Closes a cancelled task's pull request with `comment`.
    pub async fn close(&self, number: u64, comment: &str) -> Result<(), String> {
        self.forge
            .close_pull_request(number, comment)
            .await
            .map_err(|error| error.to_string())
    }

    /// Merges the pull request on the forge while its head is still `commit`.
    pub async fn merge(&self, number: u64, commit: &str) -> MergeResult {
        match self.forge.merge(number, commit).await {
            Ok(MergeOutcome::Merged { sha } | MergeOutcome::AlreadyMerged { sha }) => {
                MergeResult::Merged {
                    sha: sha.unwrap_or_else(|| commit.to_owned()),
                }
            }
            Err(ForgeError::Conflict(details)) => MergeResult::Conflict { details },
            Err(error) => MergeResult::Failed {
                error: error.to_string(),
            },
        }
    }
}

/// Whether `at` (RFC 3339) is at or after takt's latest push; `None` when either is unknown.
fn given_since(at: Option<&str>, published_at_ms: Option<Millis>) -> Option<bool> {
    let at = chrono::DateTime::parse_from_rfc3339(at?)
        .ok()?
        .timestamp_millis();
    Some(at >= published_at_ms?)
}

/// Whether an approval is of the pull request's current head: the commit it names (GitHub),
/// else it was given after takt's latest push (GitLab's `approved_at`). An approval that says
/// neither does not count: merging a change nobody approved is worse than waiting.
fn approval_is_current(approval: &Approval, head: &str, published_at_ms: Option<Millis>) -> bool {
    match &approval.commit {
        Some(commit) => commit == head,
        None => given_since(approval.approved_at.as_deref(), published_at_ms).unwrap_or(false),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn approval(commit: Option<&str>, at: Option<&str>) -> Approval {
        Approval {
            login: "ada".into(),
            commit: commit.map(str::to_owned),
            approved_at: at.map(str::to_owned),
        }
    }

    #[test]
    fn only_approvals_of_the_current_head_count() {
        let pushed = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .timestamp_millis();
        let published = Some(pushed);
        // GitHub names the commit: the time does not matter.
        assert!(approval_is_current(
            &approval(Some("b2"), Some("2026-01-01T00:00:00Z")),
            "b2",
            published
        ));
        assert!(!approval_is_current(
            &approval(Some("a1"), Some("2026-11-23T00:00:00Z")),
            "b2",
            published
        ));
        // GitLab gives the time only.
        assert!(approval_is_current(
            &approval(None, Some("2026-11-22T10:00:00.000Z")),
            "b2",
            published
        ));
        assert!(!approval_is_current(
            &approval(None, Some("2026-11-22T09:59:59.999Z")),
            "b2",
            published
        ));
        // Nothing to tell: not counted.
        assert!(!approval_is_current(&approval(None, None), "b2", published));
        assert!(!approval_is_current(
            &approval(None, Some("2026-11-22T11:00:00Z")),
            "b2",
            None
        ));
        assert!(!approval_is_current(
            &approval(None, Some("not a time")),
            "b2",
            published
        ));
    }
}
