//! GitHub Issues over REST (`tracker.kind: github`).
//!
//! Profile:
//! - Keys (`tracker.provider`): `repo` (`owner/name`, required); `token` (default env
//!   `GITHUB_TOKEN`, accepts `$VAR`; missing or empty → `missing_tracker_secret`); `api_url`
//!   (default `https://api.github.com`; https, or http to localhost; for GitHub Enterprise use
//!   `https://HOST/api/v3`); `state_labels` (map state name → label); `full_sync_every`.
//! - Requests carry `Authorization: Bearer <token>`, `Accept: application/vnd.github+json`,
//!   `X-GitHub-Api-Version: 2022-11-28` and `User-Agent: takt/<version>`.
//! - States: `open`, `closed`, plus every `state_labels` key: an open issue carrying that label
//!   is in that state (the first matching entry, in key order); other open issues are `open`.
//! - Listing: `GET /repos/{repo}/issues?state=open|closed|all&per_page=100&sort=updated&direction=asc`
//!   following `Link: rel="next"`; incremental polls add `since=<cursor>` and `state=all`, and are
//!   conditional (`If-None-Match`): an unchanged answer is a 304, which costs no rate limit.
//!   Pull requests (items with `pull_request`) are skipped.
//! - By id: `GET /repos/{repo}/issues/{n}` (conditional); 404, 410 and 301 (transferred) → omitted;
//!   a pull request → omitted; a malformed record → `tracker_response`.
//! - Identity: `id` = the issue number; `identifier` = `GH-<n>`; `url` = `html_url`;
//!   `assignee_id` = the assignee's login; `native_ref` = `{"number", "repo", "node_id",
//!   "author"}` with `author` the creator's login.
//! - Normalization: labels from `labels[].name`; priority from labels (`priority:1`..`4`,
//!   `p1`..`p4`, see [`crate::priority_from_labels`]); no blockers; `dispatchable` = true.
//! - Writes: `transition(id, "closed")` closes; `open` reopens and removes state labels; a
//!   `state_labels` state reopens, adds its label and removes the other state labels.
//! - Errors: see [`crate::http::check_status`] (401 → `tracker_status` 401, 403/429 rate limits →
//!   `tracker_rate_limited` with `Retry-After` / `x-ratelimit-reset`, a secondary rate limit with no
//!   delay → 60 s).

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderName};
use serde_json::{Value, json};
use takt_core::ports::{IssueComment, Tracker, TrackerError};
use takt_protocol::{Issue, normalize_label, normalize_state};
use takt_workflow::{Env, TrackerConfig};

use crate::comments;
use crate::http::{Answer, Http, check_base_url};
use crate::sync::{Delta, Listing, Source, SyncCache, checked_time, parse_time, server_time};

const KIND: &str = "github";
const PER_PAGE: u32 = 100;
const MAX_PAGES: usize = 10_000;

/// The GitHub Issues adapter.
#[derive(Debug)]
pub struct GithubTracker {
    http: Http,
    api: String,
    repo: String,
    state_labels: Vec<(String, String)>,
    cache: SyncCache,
}

impl GithubTracker {
    pub fn new(config: &TrackerConfig, env: &dyn Env) -> Result<GithubTracker, TrackerError> {
        let repo = crate::string(config, "repo").ok_or_else(|| {
            TrackerError::InvalidConfig(
                "github: `tracker.provider.repo` (owner/name) is required".to_owned(),
            )
        })?;
        let valid_repo = repo.split_once('/').is_some_and(|(owner, name)| {
            let ok = |s: &str| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            };
            ok(owner) && ok(name)
        });
        if !valid_repo {
            return Err(TrackerError::InvalidConfig(format!(
                "github: `tracker.provider.repo` must be owner/name, not `{repo}`"
            )));
        }
        let api = check_base_url(
            &crate::string(config, "api_url")
                .unwrap_or_else(|| "https://api.github.com".to_owned()),
        )
        .map_err(|error| TrackerError::InvalidConfig(format!("github: `api_url` {error}")))?;
        let token = takt_workflow::resolve_secret(
            crate::string(config, "token").as_deref(),
            Some("GITHUB_TOKEN"),
            env,
        )
        .ok_or_else(|| {
            TrackerError::MissingSecret(
                "github: set `tracker.provider.token` or GITHUB_TOKEN".to_owned(),
            )
        })?;
        let http = Http::new(
            KIND,
            AUTHORIZATION,
            &format!("Bearer {token}"),
            &token,
            &[
                (ACCEPT, "application/vnd.github+json"),
                (
                    HeaderName::from_static("x-github-api-version"),
                    "2022-11-28",
                ),
            ],
        )?;
        Ok(GithubTracker {
            http,
            api,
            repo,
            state_labels: crate::state_labels(config, KIND)?,
            cache: SyncCache::new(crate::full_sync_every(config, KIND)?),
        })
    }

    fn issues_url(
        &self,
        state: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<String, TrackerError> {
        let mut url = reqwest::Url::parse(&format!("{}/repos/{}/issues", self.api, self.repo))
            .map_err(|error| TrackerError::InvalidConfig(format!("github: {error}")))?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("state", state)
                .append_pair("per_page", &PER_PAGE.to_string())
                .append_pair("sort", "updated")
                .append_pair("direction", "asc");
            if let Some(since) = since {
                query.append_pair("since", &since.to_rfc3339_opts(SecondsFormat::Secs, true));
            }
        }
        Ok(url.into())
    }

    /// Follows `Link: rel="next"` from `first`; keeps the provider's order.
    async fn list_pages(&self, first: String, conditional: bool) -> Result<Pages, TrackerError> {
        let mut issues = Vec::new();
        let mut next = Some(first);
        let mut started = None;
        let mut newest_seen: Option<DateTime<Utc>> = None;
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(TrackerError::Pagination(format!(
                    "github: more than {MAX_PAGES} pages"
                )));
            }
            let answer = self.http.send(Method::GET, &url, None, conditional).await?;
            if started.is_none() && !answer.not_modified {
                started = server_time(&answer.headers);
            }
            let items = page_items(&answer)?;
            for item in &items {
                let updated = item
                    .get("updated_at")
                    .and_then(Value::as_str)
                    .and_then(parse_time);
                newest_seen = newest_seen.max(updated);
                match self.normalize(item) {
                    Ok(Some(issue)) => issues.push(issue),
                    Ok(None) => {}
                    Err(reason) => {
                        tracing::warn!(provider = KIND, %reason, "dropping a malformed issue")
                    }
                }
            }
            next = next_link(&answer);
        }
        Ok(Pages {
            issues,
            started,
            newest_seen,
        })
    }

    /// An issue, `None` for a pull request, `Err` for a malformed record.
    fn normalize(&self, item: &Value) -> Result<Option<Issue>, String> {
        if item.get("pull_request").is_some_and(|pr| !pr.is_null()) {
            return Ok(None);
        }
        let number = item
            .get("number")
            .and_then(Value::as_u64)
            .ok_or("an issue without a number")?;
        let title = item
            .get("title")
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| format!("issue #{number} has no title"))?;
        let open = match item.get("state").and_then(Value::as_str) {
            Some("open") => true,
            Some("closed") => false,
            _ => return Err(format!("issue #{number} has no state open/closed")),
        };
        let labels = crate::normalize_labels(
            item.get("labels")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|label| match label {
                    Value::String(name) => Some(name.as_str()),
                    other => other.get("name").and_then(Value::as_str),
                }),
        );
        let state = state_of(open, &labels, &self.state_labels);
        let login = |key: &str| {
            item.get(key)
                .and_then(|user| user.get("login"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let author = login("user");
        let mut native = serde_json::Map::new();
        native.insert("number".to_owned(), json!(number));
        native.insert("repo".to_owned(), json!(self.repo));
        if let Some(node_id) = item.get("node_id").and_then(Value::as_str) {
            native.insert("node_id".to_owned(), json!(node_id));
        }
        if let Some(author) = &author {
            native.insert("author".to_owned(), json!(author));
        }
        Ok(Some(Issue {
            id: number.to_string(),
            identifier: format!("GH-{number}"),
            title: title.to_owned(),
            description: item.get("body").and_then(Value::as_str).map(str::to_owned),
            priority: crate::priority_from_labels(&labels),
            state,
            branch_name: None,
            url: item
                .get("html_url")
                .and_then(Value::as_str)
                .map(str::to_owned),
            assignee_id: login("assignee"),
            labels,
            blocked_by: Vec::new(),
            dispatchable: true,
            created_at: checked_time(item.get("created_at")),
            updated_at: checked_time(item.get("updated_at")),
            native_ref: Some(Value::Object(native)),
        }))
    }

    fn issue_url(&self, number: u64) -> String {
        format!("{}/repos/{}/issues/{number}", self.api, self.repo)
    }

    /// The open/closed filter that covers `states`, or `None` when none is a GitHub state.
    fn api_state(&self, states: &[String]) -> Option<&'static str> {
        let mut open_like: HashSet<String> = self
            .state_labels
            .iter()
            .map(|(state, _)| normalize_state(state))
            .collect();
        open_like.insert("open".to_owned());
        let wanted: Vec<String> = states.iter().map(|s| normalize_state(s)).collect();
        let open = wanted.iter().any(|s| open_like.contains(s));
        let closed = wanted.iter().any(|s| s == "closed");
        match (open, closed) {
            (true, true) => Some("all"),
            (true, false) => Some("open"),
            (false, true) => Some("closed"),
            (false, false) => None,
        }
    }
}

/// What a paged listing returned.
struct Pages {
    issues: Vec<Issue>,
    /// The provider's clock at the first page.
    started: Option<DateTime<Utc>>,
    /// The newest `updated_at` of any item, pull requests and malformed records included.
    newest_seen: Option<DateTime<Utc>>,
}

/// The takt state of an issue.
fn state_of(open: bool, labels: &[String], state_labels: &[(String, String)]) -> String {
    if !open {
        return "closed".to_owned();
    }
    state_labels
        .iter()
        .find(|(_, label)| labels.contains(label))
        .map_or_else(|| "open".to_owned(), |(state, _)| state.clone())
}

fn page_items(answer: &Answer) -> Result<Vec<Value>, TrackerError> {
    match answer.json(KIND)? {
        Value::Array(items) => Ok(items),
        other => Err(TrackerError::Response(format!(
            "github: expected a list of issues, got {}",
            kind_of(&other)
        ))),
    }
}

pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The `rel="next"` target of a `Link` header.
pub(crate) fn next_link(answer: &Answer) -> Option<String> {
    let link = answer.header("link")?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|param| param.trim().replace(' ', "") == "rel=\"next\"");
        is_next.then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

#[async_trait]
impl Source for GithubTracker {
    async fn list(&self, states: &[String]) -> Result<Listing, TrackerError> {
        let Some(api_state) = self.api_state(states) else {
            return Ok(Listing {
                issues: Vec::new(),
                server_time: None,
            });
        };
        let pages = self
            .list_pages(self.issues_url(api_state, None)?, false)
            .await?;
        Ok(Listing {
            issues: pages.issues,
            server_time: pages.started,
        })
    }

    async fn list_updated_since(&self, since: DateTime<Utc>) -> Result<Delta, TrackerError> {
        let pages = self
            .list_pages(self.issues_url("all", Some(since))?, true)
            .await?;
        Ok(Delta {
            issues: pages.issues,
            newest_seen: pages.newest_seen,
        })
    }
}

#[async_trait]
impl Tracker for GithubTracker {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn fetch_issues_by_states(&self, states: &[String]) -> Result<Vec<Issue>, TrackerError> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        self.cache.fetch(self, states).await
    }

    async fn fetch_issues_by_ids(&self, ids: &[String]) -> Result<Vec<Issue>, TrackerError> {
        let mut seen = HashSet::new();
        let mut issues = Vec::new();
        for id in ids {
            let Ok(number) = id.trim().trim_start_matches("GH-").parse::<u64>() else {
                continue;
            };
            if !seen.insert(number) {
                continue;
            }
            let answer = match self
                .http
                .send(Method::GET, &self.issue_url(number), None, true)
                .await
            {
                Ok(answer) => answer,
                Err(TrackerError::Status {
                    status: 301 | 404 | 410,
                    ..
                }) => continue,
                Err(error) => return Err(error),
            };
            let item = answer.json(KIND)?;
            match self.normalize(&item) {
                Ok(Some(issue)) => issues.push(issue),
                Ok(None) => {}
                Err(reason) => {
                    return Err(TrackerError::Response(format!(
                        "github: requested issue {id} is malformed: {reason}"
                    )));
                }
            }
        }
        Ok(issues)
    }

    /// `GET /repos/{repo}/issues/{n}/comments?since=` (every page; `since` is GitHub's
    /// updated-since filter, so creation times are checked here).
    async fn comments_since(
        &self,
        issue: &Issue,
        since_ms: takt_protocol::Millis,
    ) -> Result<Vec<IssueComment>, TrackerError> {
        let number = issue_number(&issue.id)?;
        let since = DateTime::<Utc>::from_timestamp_millis(since_ms)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut next = Some(format!(
            "{}/comments?per_page=100&since={since}",
            self.issue_url(number)
        ));
        let mut comments = Vec::new();
        while let Some(url) = next.take() {
            let answer = self.http.send(Method::GET, &url, None, false).await?;
            for item in answer.json(KIND)?.as_array().into_iter().flatten() {
                // GitHub stamps whole seconds.
                let comment = comments::parse(item, "/user/login")
                    .filter(|c| c.created_at_ms >= since_ms - since_ms.rem_euclid(1000));
                comments.extend(comment);
            }
            next = next_link(&answer);
        }
        comments.sort_by_key(|comment| comment.created_at_ms);
        Ok(comments)
    }

    fn has_comments(&self) -> bool {
        true
    }

    /// `GET /repos/{repo}/issues/{n}/comments` (every page) to find takt's comment by its
    /// marker, then `PATCH /repos/{repo}/issues/comments/{id}` or
    /// `POST /repos/{repo}/issues/{n}/comments`.
    async fn upsert_comment(
        &self,
        issue: &Issue,
        marker: &str,
        body: &str,
    ) -> Result<(), TrackerError> {
        let number = issue_number(&issue.id)?;
        let comments = format!("{}/comments", self.issue_url(number));
        let mut next = Some(format!("{comments}?per_page=100"));
        let mut existing = None;
        while let (Some(url), None) = (next.take(), existing) {
            let answer = self.http.send(Method::GET, &url, None, false).await?;
            existing = comments::marked_id(&answer.json(KIND)?, marker);
            next = next_link(&answer);
        }
        let payload = json!({ "body": body });
        match existing {
            Some(id) => {
                let url = format!("{}/repos/{}/issues/comments/{id}", self.api, self.repo);
                self.http
                    .send(Method::PATCH, &url, Some(&payload), false)
                    .await?;
            }
            None => {
                self.http
                    .send(Method::POST, &comments, Some(&payload), false)
                    .await?;
            }
        }
        Ok(())
    }

    async fn transition(&self, issue_id: &str, state: &str) -> Result<(), TrackerError> {
        let number = issue_number(issue_id)?;
        let wanted = normalize_state(state);
        let target = self
            .state_labels
            .iter()
            .find(|(name, _)| normalize_state(name) == wanted)
            .map(|(_, label)| label.clone());
        if target.is_none() && wanted != "open" && wanted != "closed" {
            return Err(TrackerError::InvalidConfig(format!(
                "github: state `{state}` is neither open, closed nor a `state_labels` key"
            )));
        }
        let url = self.issue_url(number);
        let body = if wanted == "closed" {
            json!({"state": "closed"})
        } else {
            let current = match self.http.send(Method::GET, &url, None, true).await {
                Ok(answer) => answer.json(KIND)?,
                Err(TrackerError::Status { status: 404, .. }) => {
                    return Err(TrackerError::NotFound(format!(
                        "github: no issue #{number}"
                    )));
                }
                Err(error) => return Err(error),
            };
            let state_label_set: HashSet<&str> =
                self.state_labels.iter().map(|(_, l)| l.as_str()).collect();
            let mut labels: Vec<String> = current
                .get("labels")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|label| label.get("name").and_then(Value::as_str))
                .filter(|name| !state_label_set.contains(normalize_label(name).as_str()))
                .map(str::to_owned)
                .collect();
            if let Some(label) = target {
                labels.push(label);
            }
            json!({"state": "open", "labels": labels})
        };
        match self
            .http
            .send(Method::PATCH, &url, Some(&body), false)
            .await
        {
            Ok(_) => Ok(()),
            Err(TrackerError::Status { status: 404, .. }) => Err(TrackerError::NotFound(format!(
                "github: no issue #{number}"
            ))),
            Err(error) => Err(error),
        }
    }
}

/// The issue number behind a `GitHub` issue's id.
fn issue_number(id: &str) -> Result<u64, TrackerError> {
    id.trim()
        .trim_start_matches("GH-")
        .parse()
        .map_err(|_| TrackerError::NotFound(format!("github: no issue `{id}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_labels_win_over_open() {
        let map = vec![("In Progress".to_owned(), "status:doing".to_owned())];
        assert_eq!(
            state_of(true, &["status:doing".to_owned()], &map),
            "In Progress"
        );
        assert_eq!(state_of(true, &[], &map), "open");
        assert_eq!(
            state_of(false, &["status:doing".to_owned()], &map),
            "closed"
        );
    }
}
