//! GitLab issues over REST v4 (`tracker.kind: gitlab`).
//!
//! Profile:
//! - Keys (`tracker.provider`): `project_path` (`group/project` or a numeric id, required);
//!   `token` (default env `GITLAB_TOKEN`, accepts `$VAR`; missing or empty →
//!   `missing_tracker_secret`); `base_url` (default `https://gitlab.com`; https, or http to
//!   localhost); `state_labels` (map state name → label); `full_sync_every`.
//! - Requests carry `Authorization: Bearer <token>` (personal, project, group or OAuth tokens) and
//!   `User-Agent: takt/<version>`.
//! - States: `opened`, `closed`, plus every `state_labels` key: an opened issue carrying that
//!   label is in that state (first matching entry in key order).
//! - Listing: `GET /api/v4/projects/{path}/issues?per_page=100&order_by=updated_at&sort=asc`
//!   (`state=opened|closed` when that covers the request), following `Link: rel="next"` (else
//!   `x-next-page`); incremental polls add `updated_after=<cursor>` and cover every state.
//! - By id: `GET .../issues?iids[]=..` in batches of 100; absent ids are omitted; a malformed
//!   record → `tracker_response`.
//! - Identity: `id` = the project-scoped `iid`; `identifier` = `GL-<iid>`; `url` = `web_url`;
//!   `assignee_id` = the (first) assignee's username; `native_ref` = `{"iid", "id", "project",
//!   "author"}` with `author` the creator's username.
//! - Normalization: labels from `labels`; priority from labels (`priority::1`, `p1`..`p4`, see
//!   [`crate::priority_from_labels`]); no blockers; `dispatchable` = true.
//! - Writes: `PUT .../issues/{iid}` with `state_event=close`, or `state_event=reopen` plus
//!   `add_labels` / `remove_labels` for the state labels.
//! - Errors: see [`crate::http::check_status`]; 429 → `tracker_rate_limited` with `Retry-After` or
//!   `RateLimit-Reset`.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use reqwest::header::AUTHORIZATION;
use serde_json::{Value, json};
use takt_core::ports::{IssueComment, Tracker, TrackerError};
use takt_protocol::{Issue, normalize_state};
use takt_workflow::{Env, TrackerConfig};

use crate::comments;
use crate::github::{kind_of, next_link};
use crate::http::{Answer, Http, check_base_url};
use crate::sync::{Delta, Listing, Source, SyncCache, checked_time, server_time};

const KIND: &str = "gitlab";
const PER_PAGE: usize = 100;
const MAX_PAGES: usize = 10_000;

/// The GitLab issues adapter.
#[derive(Debug)]
pub struct GitlabTracker {
    http: Http,
    /// `{base}/api/v4/projects/{encoded path}`.
    project_api: String,
    project: String,
    state_labels: Vec<(String, String)>,
    cache: SyncCache,
}

impl GitlabTracker {
    pub fn new(config: &TrackerConfig, env: &dyn Env) -> Result<GitlabTracker, TrackerError> {
        let project = crate::string(config, "project_path").ok_or_else(|| {
            TrackerError::InvalidConfig(
                "gitlab: `tracker.provider.project_path` (group/project) is required".to_owned(),
            )
        })?;
        let valid = project.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
        if !valid {
            return Err(TrackerError::InvalidConfig(format!(
                "gitlab: `tracker.provider.project_path` must be group/project, not `{project}`"
            )));
        }
        let base = check_base_url(
            &crate::string(config, "base_url").unwrap_or_else(|| "https://gitlab.com".to_owned()),
        )
        .map_err(|error| TrackerError::InvalidConfig(format!("gitlab: `base_url` {error}")))?;
        let token = takt_workflow::resolve_secret(
            crate::string(config, "token").as_deref(),
            Some("GITLAB_TOKEN"),
            env,
        )
        .ok_or_else(|| {
            TrackerError::MissingSecret(
                "gitlab: set `tracker.provider.token` or GITLAB_TOKEN".to_owned(),
            )
        })?;
        let http = Http::new(KIND, AUTHORIZATION, &format!("Bearer {token}"), &token, &[])?;
        Ok(GitlabTracker {
            http,
            project_api: format!("{base}/api/v4/projects/{}", project.replace('/', "%2F")),
            project,
            state_labels: crate::state_labels(config, KIND)?,
            cache: SyncCache::new(crate::full_sync_every(config, KIND)?),
        })
    }

    fn url(&self, pairs: &[(&str, String)]) -> Result<String, TrackerError> {
        let mut url = reqwest::Url::parse(&format!("{}/issues", self.project_api))
            .map_err(|error| TrackerError::InvalidConfig(format!("gitlab: {error}")))?;
        {
            let mut query = url.query_pairs_mut();
            for (key, value) in pairs {
                query.append_pair(key, value);
            }
        }
        Ok(url.into())
    }

    fn list_query(&self, state: Option<&str>) -> Vec<(&'static str, String)> {
        let mut pairs = vec![
            ("per_page", PER_PAGE.to_string()),
            ("order_by", "updated_at".to_owned()),
            ("sort", "asc".to_owned()),
        ];
        if let Some(state) = state {
            pairs.push(("state", state.to_owned()));
        }
        pairs
    }

    /// Follows `Link: rel="next"`, else `x-next-page`; keeps the provider's order. Malformed
    /// records are dropped (listing) or fail the call (`strict`, by id).
    async fn list_pages(
        &self,
        first: String,
        strict: bool,
    ) -> Result<(Vec<Issue>, Option<DateTime<Utc>>), TrackerError> {
        let mut issues = Vec::new();
        let mut next = Some(first);
        let mut started = None;
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(TrackerError::Pagination(format!(
                    "gitlab: more than {MAX_PAGES} pages"
                )));
            }
            let answer = self.http.send(Method::GET, &url, None, false).await?;
            if started.is_none() {
                started = server_time(&answer.headers);
            }
            let items = match answer.json(KIND)? {
                Value::Array(items) => items,
                other => {
                    return Err(TrackerError::Response(format!(
                        "gitlab: expected a list of issues, got {}",
                        kind_of(&other)
                    )));
                }
            };
            for item in &items {
                match self.normalize(item) {
                    Ok(issue) => issues.push(issue),
                    Err(reason) if strict => {
                        return Err(TrackerError::Response(format!(
                            "gitlab: a requested issue is malformed: {reason}"
                        )));
                    }
                    Err(reason) => {
                        tracing::warn!(provider = KIND, %reason, "dropping a malformed issue")
                    }
                }
            }
            next = next_page(&answer, &url)?;
        }
        Ok((issues, started))
    }

    fn normalize(&self, item: &Value) -> Result<Issue, String> {
        let iid = item
            .get("iid")
            .and_then(Value::as_u64)
            .ok_or("an issue without an iid")?;
        let title = item
            .get("title")
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| format!("issue #{iid} has no title"))?;
        let raw_state = item
            .get("state")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| format!("issue #{iid} has no state"))?;
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
        let state = if raw_state == "opened" {
            self.state_labels
                .iter()
                .find(|(_, label)| labels.contains(label))
                .map_or_else(|| raw_state.to_owned(), |(state, _)| state.clone())
        } else {
            raw_state.to_owned()
        };
        let username = |user: Option<&Value>| {
            user.and_then(|u| u.get("username"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let author = username(item.get("author"));
        let assignee = username(item.get("assignee")).or_else(|| {
            username(
                item.get("assignees")
                    .and_then(Value::as_array)
                    .and_then(|a| a.first()),
            )
        });
        let mut native = serde_json::Map::new();
        native.insert("iid".to_owned(), json!(iid));
        if let Some(id) = item.get("id").and_then(Value::as_u64) {
            native.insert("id".to_owned(), json!(id));
        }
        native.insert("project".to_owned(), json!(self.project));
        if let Some(author) = &author {
            native.insert("author".to_owned(), json!(author));
        }
        Ok(Issue {
            id: iid.to_string(),
            identifier: format!("GL-{iid}"),
            title: title.to_owned(),
            description: item
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
            priority: crate::priority_from_labels(&labels),
            state,
            branch_name: None,
            url: item
                .get("web_url")
                .and_then(Value::as_str)
                .map(str::to_owned),
            assignee_id: assignee,
            labels,
            blocked_by: Vec::new(),
            dispatchable: true,
            created_at: checked_time(item.get("created_at")),
            updated_at: checked_time(item.get("updated_at")),
            native_ref: Some(Value::Object(native)),
        })
    }

    /// The `state` filter that covers `states`: `Some(None)` for all, `None` when none is a
    /// GitLab state.
    fn api_state(&self, states: &[String]) -> Option<Option<&'static str>> {
        let mut open_like: HashSet<String> = self
            .state_labels
            .iter()
            .map(|(state, _)| normalize_state(state))
            .collect();
        open_like.insert("opened".to_owned());
        let wanted: Vec<String> = states.iter().map(|s| normalize_state(s)).collect();
        let open = wanted.iter().any(|s| open_like.contains(s));
        let closed = wanted.iter().any(|s| s == "closed");
        let other = wanted
            .iter()
            .any(|s| !open_like.contains(s) && s != "closed");
        match (open, closed, other) {
            (_, _, true) | (true, true, _) => Some(None),
            (true, false, false) => Some(Some("opened")),
            (false, true, false) => Some(Some("closed")),
            (false, false, false) => None,
        }
    }
}

/// The next page: `Link: rel="next"`, else `x-next-page` applied to `url`.
fn next_page(answer: &Answer, url: &str) -> Result<Option<String>, TrackerError> {
    if let Some(next) = next_link(answer) {
        return Ok(Some(next));
    }
    let Some(page) = answer
        .header("x-next-page")
        .map(str::trim)
        .filter(|p| !p.is_empty())
    else {
        return Ok(None);
    };
    if page.parse::<u64>().is_err() {
        return Err(TrackerError::Pagination(format!(
            "gitlab: x-next-page is not a page number: `{page}`"
        )));
    }
    let mut parsed = reqwest::Url::parse(url)
        .map_err(|error| TrackerError::Pagination(format!("gitlab: {error}")))?;
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(key, _)| key != "page")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    parsed
        .query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair("page", page);
    Ok(Some(parsed.into()))
}

#[async_trait]
impl Source for GitlabTracker {
    async fn list(&self, states: &[String]) -> Result<Listing, TrackerError> {
        let Some(api_state) = self.api_state(states) else {
            return Ok(Listing {
                issues: Vec::new(),
                server_time: None,
            });
        };
        let url = self.url(&self.list_query(api_state))?;
        let (issues, server_time) = self.list_pages(url, false).await?;
        Ok(Listing {
            issues,
            server_time,
        })
    }

    async fn list_updated_since(&self, since: DateTime<Utc>) -> Result<Delta, TrackerError> {
        let mut query = self.list_query(None);
        query.push((
            "updated_after",
            since.to_rfc3339_opts(SecondsFormat::Millis, true),
        ));
        let (issues, _) = self.list_pages(self.url(&query)?, false).await?;
        Ok(Delta {
            issues,
            newest_seen: None,
        })
    }
}

#[async_trait]
impl Tracker for GitlabTracker {
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
        let iids: Vec<u64> = ids
            .iter()
            .filter_map(|id| id.trim().trim_start_matches("GL-").parse::<u64>().ok())
            .filter(|iid| seen.insert(*iid))
            .collect();
        let mut issues = Vec::new();
        for chunk in iids.chunks(PER_PAGE) {
            let mut query = vec![("per_page", PER_PAGE.to_string())];
            query.extend(chunk.iter().map(|iid| ("iids[]", iid.to_string())));
            let (found, _) = self.list_pages(self.url(&query)?, true).await?;
            issues.extend(found);
        }
        Ok(issues)
    }

    /// `GET /projects/:id/issues/:iid/notes?sort=asc&order_by=created_at` (every page); system
    /// notes (label changes, ...) are not comments.
    async fn comments_since(
        &self,
        issue: &Issue,
        since_ms: takt_protocol::Millis,
    ) -> Result<Vec<IssueComment>, TrackerError> {
        let iid = issue_iid(&issue.id)?;
        let notes = format!("{}/issues/{iid}/notes", self.project_api);
        let mut next = Some(format!("{notes}?per_page=100&sort=asc&order_by=created_at"));
        let mut comments = Vec::new();
        while let Some(url) = next.take() {
            let answer = self.http.send(Method::GET, &url, None, false).await?;
            for note in answer.json(KIND)?.as_array().into_iter().flatten() {
                // System notes (label changes, ...) are not comments.
                if note.get("system").and_then(Value::as_bool) == Some(true) {
                    continue;
                }
                let comment = comments::parse(note, "/author/username")
                    .filter(|c| c.created_at_ms >= since_ms);
                comments.extend(comment);
            }
            next = next_page(&answer, &url)?;
        }
        Ok(comments)
    }

    fn has_comments(&self) -> bool {
        true
    }

    /// `GET /projects/:id/issues/:iid/notes` (every page) to find takt's note by its marker,
    /// then `PUT .../notes/:note_id` or `POST .../notes`.
    async fn upsert_comment(
        &self,
        issue: &Issue,
        marker: &str,
        body: &str,
    ) -> Result<(), TrackerError> {
        let iid = issue_iid(&issue.id)?;
        let notes = format!("{}/issues/{iid}/notes", self.project_api);
        let mut next = Some(format!("{notes}?per_page=100&sort=asc"));
        let mut existing = None;
        while let (Some(url), None) = (next.take(), existing) {
            let answer = self.http.send(Method::GET, &url, None, false).await?;
            existing = comments::marked_id(&answer.json(KIND)?, marker);
            next = next_page(&answer, &url)?;
        }
        let payload = json!({ "body": body });
        match existing {
            Some(id) => {
                let url = format!("{notes}/{id}");
                self.http
                    .send(Method::PUT, &url, Some(&payload), false)
                    .await?;
            }
            None => {
                self.http
                    .send(Method::POST, &notes, Some(&payload), false)
                    .await?;
            }
        }
        Ok(())
    }

    async fn transition(&self, issue_id: &str, state: &str) -> Result<(), TrackerError> {
        let iid = issue_iid(issue_id)?;
        let wanted = normalize_state(state);
        let target = self
            .state_labels
            .iter()
            .find(|(name, _)| normalize_state(name) == wanted)
            .map(|(_, label)| label.clone());
        let body = if wanted == "closed" {
            json!({"state_event": "close"})
        } else if wanted == "opened" || wanted == "open" || target.is_some() {
            let remove: Vec<&str> = self
                .state_labels
                .iter()
                .map(|(_, label)| label.as_str())
                .filter(|label| Some(*label) != target.as_deref())
                .collect();
            let mut body = json!({"state_event": "reopen", "remove_labels": remove.join(",")});
            if let Some(label) = &target {
                body["add_labels"] = json!(label);
            }
            body
        } else {
            return Err(TrackerError::InvalidConfig(format!(
                "gitlab: state `{state}` is neither opened, closed nor a `state_labels` key"
            )));
        };
        let url = format!("{}/issues/{iid}", self.project_api);
        match self.http.send(Method::PUT, &url, Some(&body), false).await {
            Ok(_) => Ok(()),
            Err(TrackerError::Status { status: 404, .. }) => {
                Err(TrackerError::NotFound(format!("gitlab: no issue #{iid}")))
            }
            Err(error) => Err(error),
        }
    }
}

/// The iid behind a `GitLab` issue's id.
fn issue_iid(id: &str) -> Result<u64, TrackerError> {
    id.trim()
        .trim_start_matches("GL-")
        .parse()
        .map_err(|_| TrackerError::NotFound(format!("gitlab: no issue `{id}`")))
}
