//! Linear over GraphQL (`tracker.kind: linear`): Symphony's Linear profile (R-058..R-066).
//!
//! Profile:
//! - Keys (`tracker.provider`, or the legacy flat `tracker.*` keys): `endpoint` (default
//!   `https://api.linear.app/graphql`; https, or http to localhost, else
//!   `invalid_linear_endpoint`); `api_key` (default env `LINEAR_API_KEY`, accepts `$VAR`;
//!   missing or empty → `missing_linear_api_token`); `project_slug` (required, the project's
//!   `slugId`, else `missing_linear_project_slug`); `assignee` (a user id or `me`, default env
//!   `LINEAR_ASSIGNEE`; `me` resolves through `viewer { id }`); `full_sync_every`.
//! - Requests: `POST {endpoint}` with `{query, variables}`, `Authorization: <api key>` (no
//!   `Bearer`), `Content-Type: application/json`; connect timeout 30 s.
//! - Candidates: `SymphonyLinearPoll` filtered by project slug and state names, `first: 50`,
//!   `relationFirst: 50`, cursor pagination in order; `hasNextPage` without `endCursor` →
//!   `linear_missing_end_cursor`. Incremental polls use `SymphonyLinearPollUpdated`: the same
//!   selection, filtered by project and `updatedAt: {gte: cursor}`, ordered by `updatedAt`.
//! - By id: `SymphonyLinearIssuesById` with `$ids: [ID!]!`, project-scoped, batches of 50,
//!   results in request order; a malformed node → `linear_unknown_payload`.
//! - Normalization: labels from `labels.nodes[].name`; `blocked_by` from inverse
//!   relations of type `blocks`; integer priority else null; unparsable timestamps → null;
//!   `native_ref` = `{"author": creator.name}` when Linear names a creator (a takt extension;
//!   Symphony's profile leaves it null), else null.
//! - Dispatchability: assigned to the configured assignee (when one is configured) and
//!   not (`Todo` with a blocker whose state is not terminal or unknown).
//! - Writes: `transition` looks the state up by name among the issue's team states and calls
//!   `issueUpdate`. `upsert_comment` pages through `issue(id:) { comments }`
//!   (`SymphonyLinearIssueComments`, `first: 50`, `orderBy: createdAt`) for the comment whose body
//!   holds the marker, then `commentUpdate(id:, input: {body})` or `commentCreate(input:
//!   {issueId, body})`; the Markdown body, HTML-comment marker included, is sent verbatim (the
//!   lookup relies on Linear returning the marker in `body` as written). A payload whose
//!   `success` is not `true` → `linear_unknown_payload`.
//! - Comments (answers): `comments_since` reads the same query filtered by `createdAt: {gte:
//!   since}`, every page, oldest first. The author is the user's `displayName` (unique in the
//!   workspace, the handle @-mentions use), else the user's `name`; a comment with no user (an
//!   integration's, a bot's, one synced from an external user) is by [`BOT_AUTHOR`]
//!   (`linear-bot`). The issue id is Linear's internal id, which the adapter keeps as `Issue.id`.
//!   An issue Linear does not know fails either call: its `Entity not found` error →
//!   `linear_graphql_errors`, a null `issue` → `tracker_not_found`.
//! - Error forms and their categories: `missing_linear_api_token` →
//!   `missing_tracker_secret`; `missing_linear_project_slug`, `invalid_linear_endpoint`,
//!   `invalid_linear_assignee` → `invalid_tracker_config`; `linear_api_request` →
//!   `tracker_request`; `linear_api_status` → `tracker_status` (the body whitespace-collapsed and
//!   cut to 1000 bytes); `linear_graphql_errors`, `linear_unknown_payload`,
//!   `missing_linear_viewer_identity` → `tracker_response`; `linear_missing_end_cursor` →
//!   `tracker_pagination`; HTTP 429 or a `RATELIMITED` GraphQL error → `tracker_rate_limited`
//!   (delay from `Retry-After` or `X-RateLimit-Requests-Reset`). The message starts with the form.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use reqwest::header::AUTHORIZATION;
use serde_json::{Value, json};
use takt_core::ports::{IssueComment, Tracker, TrackerError};
use takt_protocol::{BlockerRef, Issue, Millis, normalize_state};
use takt_workflow::{Env, TrackerConfig};
use tokio::sync::OnceCell;

use crate::http::{Answer, Http, check_base_url, retry_after_ms};
use crate::sync::{Delta, Listing, Source, SyncCache, checked_time, server_time};

const KIND: &str = "linear";
/// Page size and relation page size, and the by-id batch size.
pub const PAGE_SIZE: usize = 50;
const MAX_PAGES: usize = 10_000;

const FIELDS: &str = "id identifier title description priority state { name } branchName url \
assignee { id } creator { name } labels { nodes { name } } \
inverseRelations(first: $relationFirst) { nodes { type issue { id identifier state { name } } } } \
createdAt updatedAt";

fn poll_query() -> String {
    format!(
        "query SymphonyLinearPoll($projectSlug: String!, $stateNames: [String!]!, $first: Int!, \
         $relationFirst: Int!, $after: String) {{ issues(filter: {{project: {{slugId: {{eq: \
         $projectSlug}}}}, state: {{name: {{in: $stateNames}}}}}}, first: $first, after: $after) \
         {{ nodes {{ {FIELDS} }} pageInfo {{ hasNextPage endCursor }} }} }}"
    )
}

fn updated_query() -> String {
    format!(
        "query SymphonyLinearPollUpdated($projectSlug: String!, $updatedSince: \
         DateTimeOrDuration!, $first: Int!, $relationFirst: Int!, $after: String) {{ \
         issues(filter: {{project: {{slugId: {{eq: $projectSlug}}}}, updatedAt: {{gte: \
         $updatedSince}}}}, orderBy: updatedAt, first: $first, after: $after) {{ nodes {{ \
         {FIELDS} }} pageInfo {{ hasNextPage endCursor }} }} }}"
    )
}

fn by_id_query() -> String {
    format!(
        "query SymphonyLinearIssuesById($ids: [ID!]!, $projectSlug: String!, $first: Int!, \
         $relationFirst: Int!) {{ issues(filter: {{id: {{in: $ids}}, project: {{slugId: {{eq: \
         $projectSlug}}}}}}, first: $first) {{ nodes {{ {FIELDS} }} pageInfo {{ hasNextPage \
         endCursor }} }} }}"
    )
}

const VIEWER_QUERY: &str = "query SymphonyLinearViewer { viewer { id } }";
const TEAM_STATES_QUERY: &str = "query SymphonyLinearIssueTeamStates($id: String!) { issue(id: \
$id) { id team { states { nodes { id name } } } } }";
const UPDATE_STATE_MUTATION: &str = "mutation SymphonyLinearUpdateState($id: String!, \
$stateId: String!) { issueUpdate(id: $id, input: {stateId: $stateId}) { success } }";
/// One page of an issue's comments in creation order; `$filter` is a `CommentFilter`, left out
/// (not sent as null) to read every comment.
const COMMENTS_QUERY: &str = "query SymphonyLinearIssueComments($id: String!, $first: Int!, \
$after: String, $filter: CommentFilter) { issue(id: $id) { comments(first: $first, after: \
$after, orderBy: createdAt, filter: $filter) { nodes { id body createdAt user { name displayName \
} } pageInfo { hasNextPage endCursor } } } }";
const CREATE_COMMENT_MUTATION: &str = "mutation SymphonyLinearCreateComment($issueId: String!, \
$body: String!) { commentCreate(input: {issueId: $issueId, body: $body}) { success comment { id \
} } }";
const UPDATE_COMMENT_MUTATION: &str = "mutation SymphonyLinearUpdateComment($id: String!, \
$body: String!) { commentUpdate(id: $id, input: {body: $body}) { success comment { id } } }";
/// The author of a comment Linear attributes to no user: an integration's, a bot's, or one
/// synced from an external user.
pub const BOT_AUTHOR: &str = "linear-bot";

/// How the configured assignee is known.
#[derive(Debug, Clone)]
enum Assignee {
    None,
    Me,
    Id(String),
}

/// The Linear adapter.
#[derive(Debug)]
pub struct LinearTracker {
    http: Http,
    endpoint: String,
    project_slug: String,
    assignee: Assignee,
    resolved_assignee: OnceCell<Option<String>>,
    terminal: HashSet<String>,
    cache: SyncCache,
}

impl LinearTracker {
    pub fn new(config: &TrackerConfig, env: &dyn Env) -> Result<LinearTracker, TrackerError> {
        let endpoint = check_base_url(
            &crate::string(config, "endpoint")
                .unwrap_or_else(|| "https://api.linear.app/graphql".to_owned()),
        )
        .map_err(|error| {
            TrackerError::InvalidConfig(format!("invalid_linear_endpoint: {error}"))
        })?;
        let api_key = takt_workflow::resolve_secret(
            crate::string(config, "api_key").as_deref(),
            Some("LINEAR_API_KEY"),
            env,
        )
        .ok_or_else(|| {
            TrackerError::MissingSecret(
                "missing_linear_api_token: set `tracker.api_key` or LINEAR_API_KEY".to_owned(),
            )
        })?;
        let project_slug = crate::string(config, "project_slug").ok_or_else(|| {
            TrackerError::InvalidConfig(
                "missing_linear_project_slug: `tracker.project_slug` is required".to_owned(),
            )
        })?;
        let assignee = match config.provider.get("assignee") {
            Some(value) if !value.is_string() && !value.is_null() => {
                return Err(TrackerError::InvalidConfig(
                    "invalid_linear_assignee: `tracker.assignee` must be a user id or `me`"
                        .to_owned(),
                ));
            }
            _ => match takt_workflow::resolve_secret(
                crate::string(config, "assignee").as_deref(),
                Some("LINEAR_ASSIGNEE"),
                env,
            )
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
            {
                None => Assignee::None,
                Some(value) if value.eq_ignore_ascii_case("me") => Assignee::Me,
                Some(value) if value.chars().any(char::is_whitespace) => {
                    return Err(TrackerError::InvalidConfig(format!(
                        "invalid_linear_assignee: `{value}` is not a user id or `me`"
                    )));
                }
                Some(value) => Assignee::Id(value),
            },
        };
        let http = Http::new(KIND, AUTHORIZATION, &api_key, &api_key, &[])?;
        Ok(LinearTracker {
            http,
            endpoint,
            project_slug,
            assignee,
            resolved_assignee: OnceCell::new(),
            terminal: config
                .terminal_states
                .iter()
                .map(|s| normalize_state(s))
                .collect(),
            cache: SyncCache::new(crate::full_sync_every(config, KIND)?),
        })
    }

    /// One GraphQL call: the `data` object, or the error form that fits.
    async fn graphql(
        &self,
        query: &str,
        variables: Value,
    ) -> Result<(Value, Answer), TrackerError> {
        let body = json!({"query": query, "variables": variables});
        let answer = self
            .http
            .exchange(Method::POST, &self.endpoint, Some(&body), false)
            .await
            .map_err(|error| match error {
                TrackerError::Request(reason) => {
                    TrackerError::Request(format!("linear_api_request: {reason}"))
                }
                other => other,
            })?;
        let parsed: Option<Value> = serde_json::from_slice(&answer.body).ok();
        let errors = parsed
            .as_ref()
            .and_then(|v| v.get("errors"))
            .and_then(Value::as_array)
            .filter(|errors| !errors.is_empty());
        let rate_limited = errors.is_some_and(|errors| {
            errors.iter().any(|error| {
                error
                    .pointer("/extensions/code")
                    .and_then(Value::as_str)
                    .is_some_and(|code| code.eq_ignore_ascii_case("RATELIMITED"))
            })
        });
        if answer.status == 429 || rate_limited {
            let retry_after_ms = retry_after_ms(&answer.headers, Utc::now());
            if let Some(ms) = retry_after_ms {
                self.http.hold_off(ms);
            }
            tracing::warn!(provider = KIND, ?retry_after_ms, "linear rate limited");
            return Err(TrackerError::RateLimited { retry_after_ms });
        }
        if answer.status != 200 {
            let summary = self.http.summary(&answer.body);
            tracing::warn!(provider = KIND, status = answer.status, body = %summary, "linear_api_status");
            let reason = match answer.status {
                401 => "the API key was rejected: ",
                403 => "the API key lacks access: ",
                _ => "",
            };
            return Err(TrackerError::Status {
                status: answer.status,
                message: format!("linear_api_status: {reason}{summary}"),
            });
        }
        if let Some(errors) = errors {
            let messages: Vec<String> = errors
                .iter()
                .map(|error| {
                    error
                        .get("message")
                        .and_then(Value::as_str)
                        .map_or_else(|| error.to_string(), str::to_owned)
                })
                .collect();
            let text = self.http.scrub_text(&messages.join("; "));
            tracing::warn!(provider = KIND, errors = %text, "linear_graphql_errors");
            return Err(TrackerError::Response(format!(
                "linear_graphql_errors: {text}"
            )));
        }
        match parsed.and_then(|mut v| v.get_mut("data").map(Value::take)) {
            Some(data) if data.is_object() => Ok((data, answer)),
            _ => Err(TrackerError::Response(
                "linear_unknown_payload: the answer has no `data` object".to_owned(),
            )),
        }
    }

    /// Pages through `query` in order. `strict`: a malformed node fails the call.
    async fn paged(
        &self,
        query: &str,
        variables: Value,
        strict: bool,
    ) -> Result<(Vec<Issue>, Option<DateTime<Utc>>), TrackerError> {
        let assignee = self.assignee_id().await?;
        let pageable = query.contains("$after");
        let mut issues = Vec::new();
        let mut after: Option<String> = None;
        let mut started = None;
        for _ in 0..MAX_PAGES {
            let mut variables = variables.clone();
            variables["first"] = json!(PAGE_SIZE);
            variables["relationFirst"] = json!(PAGE_SIZE);
            if pageable {
                variables["after"] = json!(after);
            }
            let (data, answer) = self.graphql(query, variables).await?;
            if started.is_none() {
                started = server_time(&answer.headers);
            }
            let connection = data.get("issues").ok_or_else(|| {
                TrackerError::Response("linear_unknown_payload: no `issues` in the answer".into())
            })?;
            let nodes = connection
                .get("nodes")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    TrackerError::Response(
                        "linear_unknown_payload: `issues.nodes` is not a list".into(),
                    )
                })?;
            for node in nodes {
                match self.normalize(node, assignee.as_deref()) {
                    Ok(issue) => issues.push(issue),
                    Err(reason) if strict => {
                        return Err(TrackerError::Response(format!(
                            "linear_unknown_payload: {reason}"
                        )));
                    }
                    Err(reason) => {
                        tracing::warn!(provider = KIND, %reason, "dropping a malformed issue")
                    }
                }
            }
            // The by-id query takes no cursor: a batch is never larger than a page.
            match next_cursor(connection)? {
                Some(cursor) if pageable => after = Some(cursor),
                _ => return Ok((issues, started)),
            }
        }
        Err(TrackerError::Pagination(format!(
            "linear: more than {MAX_PAGES} pages"
        )))
    }

    /// One page of the issue's comments matching `filter` (a `CommentFilter`), oldest first:
    /// the nodes and the cursor of the next page, `None` after the last.
    async fn comment_page(
        &self,
        issue_id: &str,
        filter: Option<&Value>,
        after: Option<&str>,
    ) -> Result<(Vec<Value>, Option<String>), TrackerError> {
        let mut variables = json!({"id": issue_id, "first": PAGE_SIZE, "after": after});
        // Left out rather than null: an absent filter reads every comment.
        if let Some(filter) = filter {
            variables["filter"] = filter.clone();
        }
        let (mut data, _) = self.graphql(COMMENTS_QUERY, variables).await?;
        let connection = data
            .get_mut("issue")
            .filter(|issue| !issue.is_null())
            .ok_or_else(|| TrackerError::NotFound(format!("linear: no issue `{issue_id}`")))?
            .get_mut("comments")
            .ok_or_else(|| {
                TrackerError::Response("linear_unknown_payload: no `issue.comments`".into())
            })?;
        let next = next_cursor(connection)?;
        match connection.get_mut("nodes").map(Value::take) {
            Some(Value::Array(nodes)) => Ok((nodes, next)),
            _ => Err(TrackerError::Response(
                "linear_unknown_payload: `comments.nodes` is not a list".into(),
            )),
        }
    }

    /// The issue's comments matching `filter`, oldest first, page after page; stops after the
    /// page for which `enough` holds (the comment looked for is on it).
    async fn comment_nodes(
        &self,
        issue_id: &str,
        filter: Option<Value>,
        enough: impl Fn(&[Value]) -> bool + Send + Sync,
    ) -> Result<Vec<Value>, TrackerError> {
        let mut nodes = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let (page, next) = self
                .comment_page(issue_id, filter.as_ref(), after.as_deref())
                .await?;
            let stop = enough(&page);
            nodes.extend(page);
            match next {
                Some(cursor) if !stop => after = Some(cursor),
                _ => return Ok(nodes),
            }
        }
        Err(TrackerError::Pagination(format!(
            "linear: more than {MAX_PAGES} pages of comments"
        )))
    }

    /// Runs a mutation whose payload, `field`, reports `success`: anything but `true` is an
    /// answer takt cannot rely on.
    async fn mutate(
        &self,
        mutation: &str,
        variables: Value,
        field: &str,
    ) -> Result<(), TrackerError> {
        let (data, _) = self.graphql(mutation, variables).await?;
        match data
            .get(field)
            .and_then(|payload| payload.get("success"))
            .and_then(Value::as_bool)
        {
            Some(true) => Ok(()),
            _ => Err(TrackerError::Response(format!(
                "linear_unknown_payload: {field} did not succeed"
            ))),
        }
    }

    /// The assignee issues must have to be dispatchable; `me` is asked once.
    async fn assignee_id(&self) -> Result<Option<String>, TrackerError> {
        match &self.assignee {
            Assignee::None => Ok(None),
            Assignee::Id(id) => Ok(Some(id.clone())),
            Assignee::Me => self
                .resolved_assignee
                .get_or_try_init(|| async {
                    let (data, _) = self.graphql(VIEWER_QUERY, json!({})).await?;
                    data.pointer("/viewer/id")
                        .and_then(Value::as_str)
                        .filter(|id| !id.is_empty())
                        .map(|id| Some(id.to_owned()))
                        .ok_or_else(|| {
                            TrackerError::Response(
                                "missing_linear_viewer_identity: `viewer { id }` is empty".into(),
                            )
                        })
                })
                .await
                .cloned(),
        }
    }

    fn normalize(&self, node: &Value, assignee: Option<&str>) -> Result<Issue, String> {
        let text = |key: &str| {
            node.get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned)
        };
        let id = text("id").ok_or("a node without an id")?;
        let identifier =
            text("identifier").ok_or_else(|| format!("node {id} has no identifier"))?;
        let title = text("title").ok_or_else(|| format!("{identifier} has no title"))?;
        let state = node
            .pointer("/state/name")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| format!("{identifier} has no state"))?
            .to_owned();
        let labels = crate::normalize_labels(
            node.pointer("/labels/nodes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|label| label.get("name").and_then(Value::as_str)),
        );
        let blocked_by = node
            .pointer("/inverseRelations/nodes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|relation| {
                relation
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("blocks"))
            })
            .map(|relation| {
                let field = |pointer: &str| {
                    relation
                        .pointer(pointer)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                BlockerRef {
                    id: field("/issue/id"),
                    identifier: field("/issue/identifier"),
                    state: field("/issue/state/name"),
                }
            })
            .collect();
        let native_ref = node
            .pointer("/creator/name")
            .and_then(Value::as_str)
            .filter(|name| !name.trim().is_empty())
            .map(|name| json!({"author": name}));
        let mut issue = Issue {
            id,
            identifier,
            title,
            description: text("description"),
            priority: node.get("priority").and_then(Value::as_i64),
            state,
            branch_name: text("branchName"),
            url: text("url"),
            assignee_id: node
                .pointer("/assignee/id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            labels,
            blocked_by,
            dispatchable: false,
            created_at: checked_time(node.get("createdAt")),
            updated_at: checked_time(node.get("updatedAt")),
            native_ref,
        };
        issue.dispatchable = self.dispatchable(&issue, assignee);
        Ok(issue)
    }

    ///
    fn dispatchable(&self, issue: &Issue, assignee: Option<&str>) -> bool {
        let assigned = match assignee {
            None => true,
            Some(wanted) => issue.assignee_id.as_deref() == Some(wanted),
        };
        let blocked = normalize_state(&issue.state) == "todo"
            && issue.blocked_by.iter().any(|blocker| {
                blocker
                    .state
                    .as_deref()
                    .is_none_or(|state| !self.terminal.contains(&normalize_state(state)))
            });
        assigned && !blocked
    }
}

#[async_trait]
impl Source for LinearTracker {
    async fn list(&self, states: &[String]) -> Result<Listing, TrackerError> {
        let (issues, server_time) = self
            .paged(
                &poll_query(),
                json!({"projectSlug": self.project_slug, "stateNames": states}),
                false,
            )
            .await?;
        Ok(Listing {
            issues,
            server_time,
        })
    }

    async fn list_updated_since(&self, since: DateTime<Utc>) -> Result<Delta, TrackerError> {
        let (issues, _) = self
            .paged(
                &updated_query(),
                json!({
                    "projectSlug": self.project_slug,
                    "updatedSince": since.to_rfc3339_opts(SecondsFormat::Millis, true),
                }),
                false,
            )
            .await?;
        Ok(Delta {
            issues,
            newest_seen: None,
        })
    }

    fn refresh_derived(&self, issue: &mut Issue, changed: &HashMap<String, String>) {
        let mut touched = false;
        for blocker in &mut issue.blocked_by {
            if let Some(state) = blocker.id.as_ref().and_then(|id| changed.get(id)) {
                blocker.state = Some(state.clone());
                touched = true;
            }
        }
        if touched {
            let assignee = match &self.assignee {
                Assignee::None => None,
                Assignee::Id(id) => Some(id.clone()),
                Assignee::Me => self.resolved_assignee.get().cloned().flatten(),
            };
            issue.dispatchable = self.dispatchable(issue, assignee.as_deref());
        }
    }
}

#[async_trait]
impl Tracker for LinearTracker {
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
        let ids: Vec<&String> = ids.iter().filter(|id| seen.insert(id.as_str())).collect();
        let mut found: HashMap<String, Issue> = HashMap::new();
        for batch in ids.chunks(PAGE_SIZE) {
            let (issues, _) = self
                .paged(
                    &by_id_query(),
                    json!({"ids": batch, "projectSlug": self.project_slug}),
                    true,
                )
                .await?;
            found.extend(issues.into_iter().map(|issue| (issue.id.clone(), issue)));
        }
        Ok(ids
            .iter()
            .filter_map(|id| found.remove(id.as_str()))
            .collect())
    }

    async fn transition(&self, issue_id: &str, state: &str) -> Result<(), TrackerError> {
        let (data, _) = self
            .graphql(TEAM_STATES_QUERY, json!({"id": issue_id}))
            .await?;
        let issue = data
            .get("issue")
            .filter(|i| !i.is_null())
            .ok_or_else(|| TrackerError::NotFound(format!("linear: no issue `{issue_id}`")))?;
        let wanted = normalize_state(state);
        let state_id = issue
            .pointer("/team/states/nodes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|node| {
                node.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|name| normalize_state(name) == wanted)
            })
            .and_then(|node| node.get("id").and_then(Value::as_str))
            .ok_or_else(|| {
                TrackerError::InvalidConfig(format!(
                    "linear: the issue's team has no state named `{state}`"
                ))
            })?;
        self.mutate(
            UPDATE_STATE_MUTATION,
            json!({"id": issue_id, "stateId": state_id}),
            "issueUpdate",
        )
        .await
    }

    /// `SymphonyLinearIssueComments` filtered by `createdAt: {gte: since}`, every page in
    /// creation order; authors as `comment_author` names them.
    async fn comments_since(
        &self,
        issue: &Issue,
        since_ms: Millis,
    ) -> Result<Vec<IssueComment>, TrackerError> {
        let since = DateTime::<Utc>::from_timestamp_millis(since_ms)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        let filter = json!({"createdAt": {"gte": since}});
        let nodes = self
            .comment_nodes(&issue.id, Some(filter), |_| false)
            .await?;
        // The filter is Linear's; checking again costs nothing and keeps the promise if a
        // server rounds differently.
        let mut comments: Vec<IssueComment> = nodes
            .iter()
            .filter_map(parse_comment)
            .filter(|comment| comment.created_at_ms >= since_ms)
            .collect();
        comments.sort_by_key(|comment| comment.created_at_ms);
        Ok(comments)
    }

    fn has_comments(&self) -> bool {
        true
    }

    /// `SymphonyLinearIssueComments` (every page, until the marker is found), then
    /// `commentUpdate(id, input: {body})` or `commentCreate(input: {issueId, body})`. The body is
    /// sent verbatim; finding it again relies on Linear returning the HTML-comment marker in
    /// `body` as written.
    async fn upsert_comment(
        &self,
        issue: &Issue,
        marker: &str,
        body: &str,
    ) -> Result<(), TrackerError> {
        let nodes = self
            .comment_nodes(&issue.id, None, |page| {
                marked_comment_id(page, marker).is_some()
            })
            .await?;
        match marked_comment_id(&nodes, marker) {
            Some(id) => {
                self.mutate(
                    UPDATE_COMMENT_MUTATION,
                    json!({"id": id, "body": body}),
                    "commentUpdate",
                )
                .await
            }
            None => {
                self.mutate(
                    CREATE_COMMENT_MUTATION,
                    json!({"issueId": issue.id, "body": body}),
                    "commentCreate",
                )
                .await
            }
        }
    }
}

/// The cursor of the page after `connection`'s, `None` on the last page.
fn next_cursor(connection: &Value) -> Result<Option<String>, TrackerError> {
    let page_info = connection
        .get("pageInfo")
        .ok_or_else(|| TrackerError::Response("linear_unknown_payload: no `pageInfo`".into()))?;
    let has_next = page_info
        .get("hasNextPage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !has_next {
        return Ok(None);
    }
    page_info
        .get("endCursor")
        .and_then(Value::as_str)
        .filter(|cursor| !cursor.is_empty())
        .map(|cursor| Some(cursor.to_owned()))
        .ok_or_else(|| {
            TrackerError::Pagination(
                "linear_missing_end_cursor: hasNextPage without endCursor".to_owned(),
            )
        })
}

/// A comment node as an [`IssueComment`]; `None` (logged) without a body or a readable
/// `createdAt`, since a comment takt cannot place in time cannot answer anything.
fn parse_comment(node: &Value) -> Option<IssueComment> {
    let body = node.get("body").and_then(Value::as_str);
    let created_at = node
        .get("createdAt")
        .and_then(Value::as_str)
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok());
    let (Some(body), Some(created_at)) = (body, created_at) else {
        tracing::warn!(provider = KIND, id = ?node.get("id"), "dropping a malformed comment");
        return None;
    };
    Some(IssueComment {
        author: comment_author(node),
        body: body.to_owned(),
        created_at_ms: created_at.timestamp_millis(),
    })
}

/// Who wrote a comment, as a handle like GitHub's login: the user's `displayName`, which
/// Linear keeps unique within the workspace (and @-mentions use), else the user's `name` (the
/// full name); [`BOT_AUTHOR`] when Linear names no user.
fn comment_author(node: &Value) -> String {
    let field = |key: &str| {
        node.pointer(&format!("/user/{key}"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|value| !value.is_empty())
    };
    field("displayName")
        .or_else(|| field("name"))
        .unwrap_or(BOT_AUTHOR)
        .to_owned()
}

/// The id of the first comment among `nodes` whose body holds `marker`. A blank marker matches
/// nothing: every body holds it, and editing a person's comment would destroy it.
fn marked_comment_id<'a>(nodes: &'a [Value], marker: &str) -> Option<&'a str> {
    if marker.is_empty() {
        return None;
    }
    nodes
        .iter()
        .find(|node| {
            node.get("body")
                .and_then(Value::as_str)
                .is_some_and(|body| body.contains(marker))
        })
        .and_then(|node| node.get("id").and_then(Value::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_authors_are_handles_then_names_then_the_bot() {
        let author = |user: Value| comment_author(&json!({"user": user}));
        assert_eq!(
            author(json!({"name": "Grace Hopper", "displayName": "grace"})),
            "grace"
        );
        assert_eq!(
            author(json!({"name": "Grace Hopper", "displayName": " "})),
            "Grace Hopper"
        );
        assert_eq!(author(Value::Null), BOT_AUTHOR);
        assert_eq!(comment_author(&json!({"body": "x"})), BOT_AUTHOR);
    }

    #[test]
    fn a_blank_marker_finds_no_comment() {
        let nodes = [json!({"id": "c1", "body": "a person's words"})];
        assert_eq!(marked_comment_id(&nodes, ""), None);
        assert_eq!(marked_comment_id(&nodes, "person"), Some("c1"));
    }

    #[test]
    fn comments_without_a_time_are_dropped() {
        assert!(parse_comment(&json!({"id": "c", "body": "b", "createdAt": "soon"})).is_none());
        let parsed = parse_comment(
            &json!({"id": "c", "body": "b", "createdAt": "2025-06-15T00:00:00.250Z"}),
        );
        assert_eq!(parsed.map(|c| c.created_at_ms), Some(1_749_945_600_250));
    }
}
