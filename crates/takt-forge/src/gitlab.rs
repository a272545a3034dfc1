//! GitLab (REST v4): merge requests, approvals, reviewers, discussions, commit statuses,
//! pipeline jobs and their traces, merging.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use takt_workspace::Git;

use crate::error::ForgeError;
use crate::git::{PushOutcome, PushTarget, push_branch, push_notes};
use crate::github::same_text;
use crate::http::{AuthStyle, Http, encode_segment};
use crate::settings::{ForgeKind, ForgeSettings, MergeMethod};
use crate::{
    Approval, CHECK_LOG_MAX, ChangeRequest, Check, CheckSource, CheckState, CommitStatus, Forge,
    MergeOutcome, PullRequest, PullRequestSpec, PullRequestState, ReviewComment, ReviewState,
    StatusState, status_description,
};

/// The title prefix GitLab uses for drafts.
const DRAFT_PREFIX: &str = "Draft: ";

pub(crate) struct Gitlab {
    settings: ForgeSettings,
    http: Http,
    git: Git,
}

#[derive(Debug, Deserialize)]
struct User {
    username: String,
}

#[derive(Debug, Deserialize)]
struct Pipeline {
    id: u64,
}

#[derive(Debug, Deserialize)]
struct MergeRequest {
    iid: u64,
    web_url: String,
    state: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    sha: Option<String>,
    source_branch: String,
    target_branch: String,
    #[serde(default)]
    merge_commit_sha: Option<String>,
    #[serde(default)]
    squash_commit_sha: Option<String>,
    #[serde(default)]
    detailed_merge_status: Option<String>,
    #[serde(default)]
    merge_status: Option<String>,
    #[serde(default)]
    head_pipeline: Option<Pipeline>,
}

impl MergeRequest {
    fn merged_sha(&self) -> Option<String> {
        self.merge_commit_sha
            .clone()
            .or_else(|| self.squash_commit_sha.clone())
    }

    fn mergeable(&self) -> Option<bool> {
        match self.detailed_merge_status.as_deref() {
            Some("mergeable") => Some(true),
            Some("checking" | "unchecked" | "preparing" | "approvals_syncing") => None,
            Some(_) => Some(false),
            None => match self.merge_status.as_deref() {
                Some("can_be_merged") => Some(true),
                Some("cannot_be_merged" | "cannot_be_merged_recheck") => Some(false),
                _ => None,
            },
        }
    }
}

#[derive(Debug, Deserialize)]
struct Approver {
    user: User,
    /// GitLab 17.x and later.
    #[serde(default)]
    approved_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Approvals {
    #[serde(default)]
    approved_by: Vec<Approver>,
}

#[derive(Debug, Deserialize)]
struct Reviewer {
    user: User,
    #[serde(default)]
    state: String,
}

#[derive(Debug, Deserialize)]
struct Position {
    #[serde(default)]
    new_path: Option<String>,
    #[serde(default)]
    new_line: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Note {
    id: u64,
    #[serde(default)]
    body: String,
    author: User,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    system: bool,
    #[serde(default)]
    resolved: bool,
    #[serde(default)]
    position: Option<Position>,
}

#[derive(Debug, Deserialize)]
struct Discussion {
    #[serde(default)]
    notes: Vec<Note>,
}

#[derive(Debug, Deserialize)]
struct Job {
    id: u64,
    name: String,
    status: String,
    #[serde(default)]
    web_url: Option<String>,
    #[serde(default)]
    allow_failure: bool,
    #[serde(default)]
    failure_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Status {
    id: u64,
    name: String,
    status: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    target_url: Option<String>,
    #[serde(default)]
    allow_failure: bool,
}

fn job_state(status: &str, allow_failure: bool) -> CheckState {
    match status {
        "success" => CheckState::Success,
        "failed" if allow_failure => CheckState::Neutral,
        "failed" => CheckState::Failure,
        "canceled" | "canceling" => CheckState::Cancelled,
        "skipped" | "manual" => CheckState::Neutral,
        _ => CheckState::Pending,
    }
}

impl Gitlab {
    pub(crate) fn new(settings: ForgeSettings) -> Result<Gitlab, ForgeError> {
        let http = Http::new(
            &settings.api_url,
            settings.token.clone(),
            AuthStyle::PrivateToken,
            Vec::new(),
            false,
        )?;
        Ok(Gitlab {
            settings,
            http,
            git: Git::new(),
        })
    }

    /// `projects/<url-encoded path>/<rest>`.
    fn path(&self, rest: &str) -> String {
        format!("projects/{}/{rest}", encode_segment(&self.settings.repo))
    }

    async fn find_open(&self, spec: &PullRequestSpec) -> Result<Option<MergeRequest>, ForgeError> {
        let requests: Vec<MergeRequest> = self
            .http
            .get_all(
                &self.path("merge_requests"),
                &[
                    ("state", "opened"),
                    ("source_branch", &spec.branch),
                    ("target_branch", &spec.base),
                ],
            )
            .await?;
        Ok(requests.into_iter().find(|mr| {
            mr.state == "opened" && mr.source_branch == spec.branch && mr.target_branch == spec.base
        }))
    }

    async fn merge_request(&self, iid: u64) -> Result<MergeRequest, ForgeError> {
        self.http
            .get_json(&self.path(&format!("merge_requests/{iid}")), &[])
            .await
    }

    async fn checks(&self, mr: &MergeRequest, sha: &str) -> Result<Vec<Check>, ForgeError> {
        let mut checks = Vec::new();
        let mut job_ids = BTreeSet::new();
        if let Some(pipeline) = &mr.head_pipeline {
            let jobs: Vec<Job> = self
                .http
                .get_all(&self.path(&format!("pipelines/{}/jobs", pipeline.id)), &[])
                .await?;
            for job in jobs {
                job_ids.insert(job.id);
                checks.push(Check {
                    state: job_state(&job.status, job.allow_failure),
                    name: job.name,
                    source: CheckSource::GitlabJob,
                    id: job.id,
                    url: job.web_url,
                    summary: job.failure_reason,
                });
            }
        }
        // The commit's statuses: external ones (and, when there is no head pipeline, jobs).
        let statuses: Vec<Status> = self
            .http
            .get_all(
                &self.path(&format!("repository/commits/{sha}/statuses")),
                &[],
            )
            .await?;
        for status in statuses {
            if status.name == self.settings.status_context || job_ids.contains(&status.id) {
                continue;
            }
            checks.push(Check {
                state: job_state(&status.status, status.allow_failure),
                name: status.name,
                source: CheckSource::GitlabStatus,
                id: status.id,
                url: status.target_url,
                summary: status.description,
            });
        }
        Ok(checks)
    }
}

#[async_trait]
impl Forge for Gitlab {
    fn kind(&self) -> &'static str {
        "gitlab"
    }

    async fn push_branch(
        &self,
        git_dir: &Path,
        commit: &str,
        branch: &str,
        lease: Option<&str>,
    ) -> Result<PushOutcome, ForgeError> {
        let remote = self.settings.push_url();
        let target = PushTarget {
            kind: ForgeKind::Gitlab,
            remote: &remote,
            token: &self.settings.token,
        };
        push_branch(&self.git, git_dir, &target, commit, branch, lease).await
    }

    async fn push_notes(&self, git_dir: &Path, notes_ref: &str) -> Result<PushOutcome, ForgeError> {
        let remote = self.settings.push_url();
        let target = PushTarget {
            kind: ForgeKind::Gitlab,
            remote: &remote,
            token: &self.settings.token,
        };
        push_notes(&self.git, git_dir, &target, notes_ref).await
    }

    async fn ensure_pull_request(&self, spec: &PullRequestSpec) -> Result<PullRequest, ForgeError> {
        let (mr, created) = match self.find_open(spec).await? {
            Some(mr) => (mr, false),
            None => {
                let title = if spec.draft {
                    format!("{DRAFT_PREFIX}{}", spec.title)
                } else {
                    spec.title.clone()
                };
                let url = self.http.url(&self.path("merge_requests"), &[])?;
                let body = json!({
                    "source_branch": spec.branch,
                    "target_branch": spec.base,
                    "title": title,
                    "description": spec.body,
                    "remove_source_branch": true,
                });
                let reply = self
                    .http
                    .send_raw(Method::POST, url.clone(), Some(&body), None)
                    .await?;
                if reply.status.is_success() {
                    (reply.json::<MergeRequest>("merge_requests")?, true)
                } else if reply.status == StatusCode::CONFLICT
                    || self.http.message(&reply).contains("already exists")
                {
                    match self.find_open(spec).await? {
                        Some(mr) => (mr, false),
                        None => return Err(self.http.classify(&Method::POST, &url, &reply)),
                    }
                } else {
                    return Err(self.http.classify(&Method::POST, &url, &reply));
                }
            }
        };
        let mut mr = mr;
        let mut updated = false;
        let draft = mr.title.starts_with(DRAFT_PREFIX);
        let bare_title = mr.title.strip_prefix(DRAFT_PREFIX).unwrap_or(&mr.title);
        if !created
            && (bare_title != spec.title
                || !same_text(mr.description.as_deref().unwrap_or(""), &spec.body))
        {
            let title = if draft {
                format!("{DRAFT_PREFIX}{}", spec.title)
            } else {
                spec.title.clone()
            };
            mr = self
                .http
                .send_json(
                    Method::PUT,
                    &self.path(&format!("merge_requests/{}", mr.iid)),
                    &json!({ "title": title, "description": spec.body }),
                )
                .await?;
            updated = true;
        }
        let head_sha = match mr.sha.clone() {
            Some(sha) => sha,
            None => self.merge_request(mr.iid).await?.sha.unwrap_or_default(),
        };
        Ok(PullRequest {
            number: mr.iid,
            url: mr.web_url,
            head_sha,
            created,
            updated,
        })
    }

    async fn set_status(&self, sha: &str, status: &CommitStatus) -> Result<(), ForgeError> {
        let description = status_description(&status.description);
        let context = &self.settings.status_context;
        let state = match status.state {
            StatusState::Pending => "pending",
            StatusState::Success => "success",
            StatusState::Failure | StatusState::Error => "failed",
        };
        let current: Vec<Status> = self
            .http
            .get_all(
                &self.path(&format!("repository/commits/{sha}/statuses")),
                &[("name", context)],
            )
            .await?;
        if let Some(current) = current.iter().find(|s| &s.name == context)
            && current.status == state
            && current.description.as_deref().unwrap_or("") == description
            && current.target_url == status.target_url
        {
            return Ok(());
        }
        let mut body = json!({
            "state": state,
            "name": context,
            "description": description,
        });
        if let Some(target) = &status.target_url {
            body["target_url"] = Value::String(target.clone());
        }
        let url = self.http.url(&self.path(&format!("statuses/{sha}")), &[])?;
        let reply = self
            .http
            .send_raw(Method::POST, url.clone(), Some(&body), None)
            .await?;
        if reply.status.is_success() {
            return Ok(());
        }
        // GitLab refuses a transition to the state the status is already in; that is the
        // state we want.
        if reply.status == StatusCode::BAD_REQUEST
            && self
                .http
                .message(&reply)
                .contains("Cannot transition status")
        {
            return Ok(());
        }
        Err(self.http.classify(&Method::POST, &url, &reply))
    }

    async fn review_state(&self, number: u64) -> Result<ReviewState, ForgeError> {
        let mr = self.merge_request(number).await?;
        let approvals: Approvals = self
            .http
            .get_json(
                &self.path(&format!("merge_requests/{number}/approvals")),
                &[],
            )
            .await?;
        let reviewers: Vec<Reviewer> = match self
            .http
            .get_all(
                &self.path(&format!("merge_requests/{number}/reviewers")),
                &[],
            )
            .await
        {
            Ok(reviewers) => reviewers,
            // Before GitLab 16 there is no reviewer state.
            Err(ForgeError::NotFound { .. }) => Vec::new(),
            Err(error) => return Err(error),
        };
        let discussions: Vec<Discussion> = self
            .http
            .get_all(
                &self.path(&format!("merge_requests/{number}/discussions")),
                &[],
            )
            .await?;
        let mut comments: Vec<ReviewComment> = discussions
            .into_iter()
            .flat_map(|d| d.notes)
            .filter(|n| !n.system && !n.resolved)
            .map(|n| {
                let (path, line) = n
                    .position
                    .map(|p| (p.new_path, p.new_line))
                    .unwrap_or((None, None));
                ReviewComment {
                    id: n.id,
                    author: n.author.username,
                    body: n.body,
                    path,
                    line,
                    created_at: n.created_at,
                    review_id: None,
                }
            })
            .collect();
        comments.sort_by_key(|c| c.id);
        let approvals: Vec<Approval> = approvals
            .approved_by
            .into_iter()
            .map(|a| (a.user.username, a.approved_at))
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .map(|(login, approved_at)| Approval {
                login,
                commit: None,
                approved_at,
            })
            .collect();
        let changes_requested = reviewers
            .into_iter()
            .filter(|r| r.state == "requested_changes")
            .map(|r| ChangeRequest {
                comments: comments
                    .iter()
                    .filter(|c| c.author == r.user.username)
                    .cloned()
                    .collect(),
                author: r.user.username,
                body: String::new(),
                review_id: None,
                submitted_at: None,
            })
            .collect();
        let head_sha = mr.sha.clone().unwrap_or_default();
        let state = match mr.state.as_str() {
            "merged" => PullRequestState::Merged,
            "opened" | "locked" => PullRequestState::Open,
            _ => PullRequestState::Closed,
        };
        let checks = if head_sha.is_empty() {
            Vec::new()
        } else {
            self.checks(&mr, &head_sha).await?
        };
        Ok(ReviewState {
            number,
            state,
            mergeable: mr.mergeable(),
            head_sha,
            approvals,
            changes_requested,
            comments,
            checks,
        })
    }

    async fn check_log(&self, check: &Check) -> Result<String, ForgeError> {
        let fallback = || check.summary.clone().unwrap_or_default();
        if check.source != CheckSource::GitlabJob {
            return Ok(fallback());
        }
        let url = self
            .http
            .url(&self.path(&format!("jobs/{}/trace", check.id)), &[])?;
        let reply = self
            .http
            .send_raw(Method::GET, url.clone(), None, Some(CHECK_LOG_MAX))
            .await?;
        if reply.status.is_success() {
            Ok(reply.text)
        } else if reply.status == StatusCode::NOT_FOUND {
            Ok(fallback())
        } else {
            Err(self.http.classify(&Method::GET, &url, &reply))
        }
    }

    async fn close_pull_request(&self, number: u64, comment: &str) -> Result<(), ForgeError> {
        let mr = match self.merge_request(number).await {
            Ok(mr) => mr,
            Err(ForgeError::NotFound { .. }) => return Ok(()),
            Err(error) => return Err(error),
        };
        if mr.state != "opened" {
            return Ok(());
        }
        let _: Value = self
            .http
            .send_json(
                Method::PUT,
                &self.path(&format!("merge_requests/{number}")),
                &json!({"state_event": "close"}),
            )
            .await?;
        if let Err(error) = self
            .http
            .send_json::<Value>(
                Method::POST,
                &self.path(&format!("merge_requests/{number}/notes")),
                &json!({"body": comment}),
            )
            .await
        {
            tracing::warn!(number, %error, "closed the merge request, but could not comment on it");
        }
        Ok(())
    }

    async fn merge(&self, number: u64, expected_sha: &str) -> Result<MergeOutcome, ForgeError> {
        let mr = self.merge_request(number).await?;
        if mr.state == "merged" {
            return Ok(MergeOutcome::AlreadyMerged {
                sha: mr.merged_sha(),
            });
        }
        if mr.state != "opened" {
            return Err(ForgeError::Conflict(format!(
                "merge request !{number} is {}",
                mr.state
            )));
        }
        if mr.sha.as_deref() != Some(expected_sha) {
            return Err(ForgeError::Conflict(format!(
                "merge request !{number}'s head is {}, not the verified {expected_sha}",
                mr.sha.as_deref().unwrap_or("unknown")
            )));
        }
        let url = self
            .http
            .url(&self.path(&format!("merge_requests/{number}/merge")), &[])?;
        let body = json!({
            "sha": expected_sha,
            "squash": self.settings.merge_method == MergeMethod::Squash,
            "should_remove_source_branch": true,
        });
        let reply = self
            .http
            .send_raw(Method::PUT, url.clone(), Some(&body), None)
            .await?;
        if reply.status.is_success() {
            let merged: MergeRequest = reply.json("merge")?;
            return Ok(MergeOutcome::Merged {
                sha: merged.merged_sha(),
            });
        }
        if matches!(reply.status.as_u16(), 405 | 406 | 409 | 422) {
            let again = self.merge_request(number).await?;
            if again.state == "merged" {
                return Ok(MergeOutcome::AlreadyMerged {
                    sha: again.merged_sha(),
                });
            }
            return Err(ForgeError::Conflict(format!(
                "GitLab refused to merge !{number} ({}): {}",
                reply.status.as_u16(),
                self.http.message(&reply)
            )));
        }
        Err(self.http.classify(&Method::PUT, &url, &reply))
    }
}
