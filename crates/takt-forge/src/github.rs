//! GitHub (REST v3, `2022-11-28`): pulls, commit statuses, check runs, reviews, review
//! comments, Actions job logs, merging.

use std::collections::BTreeMap;
use std::path::Path;

use async_trait::async_trait;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use takt_workspace::Git;

use crate::error::ForgeError;
use crate::git::{PushOutcome, PushTarget, push_branch, push_notes};
use crate::http::{AuthStyle, Http, encode_segment};
use crate::settings::{ForgeKind, ForgeSettings};
use crate::{
    Approval, CHECK_LOG_MAX, ChangeRequest, Check, CheckSource, CheckState, CommitStatus, Forge,
    MergeOutcome, PullRequest, PullRequestSpec, PullRequestState, ReviewComment, ReviewState,
    status_description,
};

pub(crate) struct Github {
    settings: ForgeSettings,
    http: Http,
    git: Git,
}

#[derive(Debug, Deserialize)]
struct User {
    login: String,
}

#[derive(Debug, Deserialize)]
struct Branch {
    #[serde(rename = "ref")]
    name: String,
    sha: String,
}

#[derive(Debug, Deserialize)]
struct Pull {
    number: u64,
    html_url: String,
    state: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: Option<String>,
    head: Branch,
    base: Branch,
    #[serde(default)]
    merged: Option<bool>,
    #[serde(default)]
    merged_at: Option<String>,
    #[serde(default)]
    merge_commit_sha: Option<String>,
    #[serde(default)]
    mergeable: Option<bool>,
}

impl Pull {
    fn is_merged(&self) -> bool {
        self.merged == Some(true) || self.merged_at.is_some()
    }
}

#[derive(Debug, Deserialize)]
struct Review {
    id: u64,
    user: Option<User>,
    state: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    submitted_at: Option<String>,
    /// The head the review was given on.
    #[serde(default)]
    commit_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Comment {
    id: u64,
    user: Option<User>,
    #[serde(default)]
    body: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    line: Option<u64>,
    #[serde(default)]
    original_line: Option<u64>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    pull_request_review_id: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct App {
    #[serde(default)]
    slug: String,
}

#[derive(Debug, Default, Deserialize)]
struct Output {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CheckRun {
    id: u64,
    name: String,
    status: String,
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    details_url: Option<String>,
    #[serde(default)]
    output: Option<Output>,
    #[serde(default)]
    app: Option<App>,
}

#[derive(Debug, Deserialize)]
struct Status {
    id: u64,
    context: String,
    state: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    target_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Combined {
    #[serde(default)]
    statuses: Vec<Status>,
}

#[derive(Debug, Deserialize)]
struct Merged {
    #[serde(default)]
    sha: Option<String>,
}

impl Github {
    pub(crate) fn new(settings: ForgeSettings) -> Result<Github, ForgeError> {
        let http = Http::new(
            &settings.api_url,
            settings.token.clone(),
            AuthStyle::Bearer,
            vec![
                (
                    reqwest::header::ACCEPT,
                    HeaderValue::from_static("application/vnd.github+json"),
                ),
                (
                    HeaderName::from_static("x-github-api-version"),
                    HeaderValue::from_static("2022-11-28"),
                ),
            ],
            true,
        )?;
        Ok(Github {
            settings,
            http,
            git: Git::new(),
        })
    }

    /// `repos/{owner}/{name}/<rest>`.
    fn path(&self, rest: &str) -> String {
        let (owner, name) = self.settings.repo.split_once('/').unwrap_or_default();
        format!(
            "repos/{}/{}/{rest}",
            encode_segment(owner),
            encode_segment(name)
        )
    }

    async fn find_open(&self, spec: &PullRequestSpec) -> Result<Option<Pull>, ForgeError> {
        let head = format!("{}:{}", self.settings.owner(), spec.branch);
        let pulls: Vec<Pull> = self
            .http
            .get_all(
                &self.path("pulls"),
                &[("state", "open"), ("head", &head), ("base", &spec.base)],
            )
            .await?;
        Ok(pulls
            .into_iter()
            .find(|p| p.state == "open" && p.head.name == spec.branch && p.base.name == spec.base))
    }

    async fn pull(&self, number: u64) -> Result<Pull, ForgeError> {
        self.http
            .get_json(&self.path(&format!("pulls/{number}")), &[])
            .await
    }

    async fn checks(&self, sha: &str) -> Result<Vec<Check>, ForgeError> {
        let runs: Vec<CheckRun> = self
            .http
            .get_all_in(
                &self.path(&format!("commits/{sha}/check-runs")),
                &[("filter", "latest")],
                Some("check_runs"),
            )
            .await?;
        let mut checks: Vec<Check> = runs
            .into_iter()
            .filter(|run| run.name != self.settings.status_context)
            .map(|run| {
                let state = if run.status != "completed" {
                    CheckState::Pending
                } else {
                    match run.conclusion.as_deref() {
                        Some("success") => CheckState::Success,
                        Some("failure") => CheckState::Failure,
                        Some("cancelled" | "timed_out") => CheckState::Cancelled,
                        Some("neutral" | "skipped") => CheckState::Neutral,
                        _ => CheckState::Error,
                    }
                };
                let actions = run.app.as_ref().is_some_and(|a| a.slug == "github-actions");
                let summary = run.output.map(|o| {
                    [o.title, o.summary, o.text]
                        .into_iter()
                        .flatten()
                        .filter(|t| !t.trim().is_empty())
                        .collect::<Vec<_>>()
                        .join("\n\n")
                });
                Check {
                    name: run.name,
                    state,
                    source: CheckSource::GithubCheckRun { actions },
                    id: run.id,
                    url: run.html_url.or(run.details_url),
                    summary: summary.filter(|s| !s.is_empty()),
                }
            })
            .collect();
        let combined: Combined = self
            .http
            .get_json(
                &self.path(&format!("commits/{sha}/status")),
                &[("per_page", "100")],
            )
            .await?;
        checks.extend(
            combined
                .statuses
                .into_iter()
                .filter(|s| s.context != self.settings.status_context)
                .map(|s| Check {
                    name: s.context,
                    state: match s.state.as_str() {
                        "success" => CheckState::Success,
                        "failure" => CheckState::Failure,
                        "pending" => CheckState::Pending,
                        _ => CheckState::Error,
                    },
                    source: CheckSource::GithubStatus,
                    id: s.id,
                    url: s.target_url,
                    summary: s.description,
                }),
        );
        Ok(checks)
    }
}

/// Bodies compare equal when they differ only in line endings and trailing whitespace
/// (GitHub stores what it is sent, but people's edits come back with `\r\n`).
pub(crate) fn same_text(a: &str, b: &str) -> bool {
    a.replace("\r\n", "\n").trim_end() == b.replace("\r\n", "\n").trim_end()
}

#[async_trait]
impl Forge for Github {
    fn kind(&self) -> &'static str {
        "github"
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
            kind: ForgeKind::Github,
            remote: &remote,
            token: &self.settings.token,
        };
        push_branch(&self.git, git_dir, &target, commit, branch, lease).await
    }

    async fn push_notes(&self, git_dir: &Path, notes_ref: &str) -> Result<PushOutcome, ForgeError> {
        let remote = self.settings.push_url();
        let target = PushTarget {
            kind: ForgeKind::Github,
            remote: &remote,
            token: &self.settings.token,
        };
        push_notes(&self.git, git_dir, &target, notes_ref).await
    }

    async fn ensure_pull_request(&self, spec: &PullRequestSpec) -> Result<PullRequest, ForgeError> {
        let (pull, created) = match self.find_open(spec).await? {
            Some(pull) => (pull, false),
            None => {
                let url = self.http.url(&self.path("pulls"), &[])?;
                let body = json!({
                    "title": spec.title,
                    "head": spec.branch,
                    "base": spec.base,
                    "body": spec.body,
                    "draft": spec.draft,
                    "maintainer_can_modify": false,
                });
                let reply = self
                    .http
                    .send_raw(Method::POST, url.clone(), Some(&body), None)
                    .await?;
                if reply.status.is_success() {
                    (reply.json::<Pull>("pulls")?, true)
                } else if reply.status == StatusCode::UNPROCESSABLE_ENTITY
                    && self.http.message(&reply).contains("already exists")
                {
                    // Opened concurrently (or by a run whose answer was lost): use it.
                    match self.find_open(spec).await? {
                        Some(pull) => (pull, false),
                        None => return Err(self.http.classify(&Method::POST, &url, &reply)),
                    }
                } else {
                    return Err(self.http.classify(&Method::POST, &url, &reply));
                }
            }
        };
        let mut pull = pull;
        let mut updated = false;
        if !created
            && (pull.title != spec.title
                || !same_text(pull.body.as_deref().unwrap_or(""), &spec.body))
        {
            pull = self
                .http
                .send_json(
                    Method::PATCH,
                    &self.path(&format!("pulls/{}", pull.number)),
                    &json!({ "title": spec.title, "body": spec.body }),
                )
                .await?;
            updated = true;
        }
        Ok(PullRequest {
            number: pull.number,
            url: pull.html_url,
            head_sha: pull.head.sha,
            created,
            updated,
        })
    }

    async fn set_status(&self, sha: &str, status: &CommitStatus) -> Result<(), ForgeError> {
        let description = status_description(&status.description);
        let context = &self.settings.status_context;
        let combined: Combined = self
            .http
            .get_json(
                &self.path(&format!("commits/{sha}/status")),
                &[("per_page", "100")],
            )
            .await?;
        let current = combined.statuses.iter().find(|s| &s.context == context);
        if let Some(current) = current
            && current.state == status.state.as_str()
            && current.description.as_deref().unwrap_or("") == description
            && current.target_url == status.target_url
        {
            return Ok(());
        }
        let mut body = json!({
            "state": status.state.as_str(),
            "description": description,
            "context": context,
        });
        if let Some(target) = &status.target_url {
            body["target_url"] = Value::String(target.clone());
        }
        let _: Value = self
            .http
            .send_json(Method::POST, &self.path(&format!("statuses/{sha}")), &body)
            .await?;
        Ok(())
    }

    async fn review_state(&self, number: u64) -> Result<ReviewState, ForgeError> {
        let pull = self.pull(number).await?;
        let reviews: Vec<Review> = self
            .http
            .get_all(&self.path(&format!("pulls/{number}/reviews")), &[])
            .await?;
        let comments: Vec<Comment> = self
            .http
            .get_all(&self.path(&format!("pulls/{number}/comments")), &[])
            .await?;
        let comments: Vec<ReviewComment> = comments
            .into_iter()
            .map(|c| ReviewComment {
                id: c.id,
                author: c.user.map(|u| u.login).unwrap_or_default(),
                body: c.body,
                path: c.path,
                line: c.line.or(c.original_line),
                created_at: c.created_at,
                review_id: c.pull_request_review_id,
            })
            .collect();
        // The latest decisive review per person wins; a comment-only review decides nothing,
        // and a dismissed review is withdrawn.
        let mut latest: BTreeMap<String, &Review> = BTreeMap::new();
        let mut ordered: Vec<&Review> = reviews.iter().collect();
        ordered.sort_by(|a, b| (&a.submitted_at, a.id).cmp(&(&b.submitted_at, b.id)));
        for review in ordered {
            let Some(user) = &review.user else { continue };
            if matches!(
                review.state.as_str(),
                "APPROVED" | "CHANGES_REQUESTED" | "DISMISSED"
            ) {
                latest.insert(user.login.clone(), review);
            }
        }
        let approvals: Vec<Approval> = latest
            .iter()
            .filter(|(_, r)| r.state == "APPROVED")
            .map(|(login, r)| Approval {
                login: login.clone(),
                commit: r.commit_id.clone(),
                approved_at: r.submitted_at.clone(),
            })
            .collect();
        let changes_requested = latest
            .iter()
            .filter(|(_, r)| r.state == "CHANGES_REQUESTED")
            .map(|(login, r)| ChangeRequest {
                author: login.clone(),
                body: r.body.clone().unwrap_or_default(),
                review_id: Some(r.id),
                submitted_at: r.submitted_at.clone(),
                comments: comments
                    .iter()
                    .filter(|c| c.review_id == Some(r.id))
                    .cloned()
                    .collect(),
            })
            .collect();
        let state = if pull.is_merged() {
            PullRequestState::Merged
        } else if pull.state == "open" {
            PullRequestState::Open
        } else {
            PullRequestState::Closed
        };
        let checks = self.checks(&pull.head.sha).await?;
        Ok(ReviewState {
            number,
            state,
            head_sha: pull.head.sha,
            mergeable: pull.mergeable,
            approvals,
            changes_requested,
            comments,
            checks,
        })
    }

    async fn check_log(&self, check: &Check) -> Result<String, ForgeError> {
        let fallback = || check.summary.clone().unwrap_or_default();
        if check.source != (CheckSource::GithubCheckRun { actions: true }) {
            return Ok(fallback());
        }
        let url = self
            .http
            .url(&self.path(&format!("actions/jobs/{}/logs", check.id)), &[])?;
        let reply = self
            .http
            .send_raw(Method::GET, url.clone(), None, Some(CHECK_LOG_MAX))
            .await?;
        if reply.status.is_success() {
            Ok(reply.text)
        } else if matches!(reply.status.as_u16(), 404 | 410) {
            // Logs expired or the run is not an Actions job after all.
            Ok(fallback())
        } else {
            Err(self.http.classify(&Method::GET, &url, &reply))
        }
    }

    async fn close_pull_request(&self, number: u64, comment: &str) -> Result<(), ForgeError> {
        let pull = match self.pull(number).await {
            Ok(pull) => pull,
            Err(ForgeError::NotFound { .. }) => return Ok(()),
            Err(error) => return Err(error),
        };
        if pull.state != "open" {
            return Ok(());
        }
        let _: Value = self
            .http
            .send_json(
                Method::PATCH,
                &self.path(&format!("pulls/{number}")),
                &json!({"state": "closed"}),
            )
            .await?;
        // A pull request's conversation is its issue's comments.
        if let Err(error) = self
            .http
            .send_json::<Value>(
                Method::POST,
                &self.path(&format!("issues/{number}/comments")),
                &json!({"body": comment}),
            )
            .await
        {
            tracing::warn!(number, %error, "closed the pull request, but could not comment on it");
        }
        Ok(())
    }

    async fn merge(&self, number: u64, expected_sha: &str) -> Result<MergeOutcome, ForgeError> {
        let pull = self.pull(number).await?;
        if pull.is_merged() {
            return Ok(MergeOutcome::AlreadyMerged {
                sha: pull.merge_commit_sha,
            });
        }
        if pull.state != "open" {
            return Err(ForgeError::Conflict(format!(
                "pull request #{number} is closed"
            )));
        }
        if pull.head.sha != expected_sha {
            return Err(ForgeError::Conflict(format!(
                "pull request #{number}'s head is {}, not the verified {expected_sha}",
                pull.head.sha
            )));
        }
        let url = self
            .http
            .url(&self.path(&format!("pulls/{number}/merge")), &[])?;
        let body = json!({
            "sha": expected_sha,
            "merge_method": self.settings.merge_method.as_str(),
        });
        let reply = self
            .http
            .send_raw(Method::PUT, url.clone(), Some(&body), None)
            .await?;
        if reply.status.is_success() {
            let merged: Merged = reply.json("merge")?;
            return Ok(MergeOutcome::Merged { sha: merged.sha });
        }
        if matches!(reply.status.as_u16(), 405 | 409 | 422) {
            // Merged by someone else in between?
            let again = self.pull(number).await?;
            if again.is_merged() {
                return Ok(MergeOutcome::AlreadyMerged {
                    sha: again.merge_commit_sha,
                });
            }
            return Err(ForgeError::Conflict(format!(
                "GitHub refused to merge #{number} ({}): {}",
                reply.status.as_u16(),
                self.http.message(&reply)
            )));
        }
        Err(self.http.classify(&Method::PUT, &url, &reply))
    }
}
