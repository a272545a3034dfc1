//! The fake GitHub: `/repos/{owner}/{repo}/...` of REST v3.

use std::path::Path;

use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::{
    Core, Failure, Incoming, Recorded, Reply, Server, Shared, World, fake_sha, lock, serve,
};
use crate::settings::{ForgeKind, ForgeSettings, Secret};

#[derive(Debug, Clone)]
struct Pull {
    number: u64,
    title: String,
    body: String,
    head: String,
    base: String,
    open: bool,
    draft: bool,
    merged: bool,
    merged_head: Option<String>,
    merge_commit_sha: Option<String>,
    merge_method: Option<String>,
}

#[derive(Debug, Clone)]
struct Review {
    id: u64,
    pr: u64,
    login: String,
    state: String,
    body: String,
    submitted_at: String,
    /// The pull request's head when the review was given.
    commit_id: String,
}

#[derive(Debug, Clone)]
struct Comment {
    id: u64,
    pr: u64,
    review_id: u64,
    login: String,
    body: String,
    path: String,
    line: u64,
    created_at: String,
}

#[derive(Debug, Clone)]
struct Status {
    id: u64,
    sha: String,
    context: String,
    state: String,
    description: String,
    target_url: Option<String>,
}

#[derive(Debug, Clone)]
struct CheckRun {
    id: u64,
    sha: String,
    name: String,
    conclusion: Option<String>,
    summary: String,
    log: Option<String>,
    app: String,
}

struct Github {
    core: Core,
    owner: String,
    repo: String,
    pulls: Vec<Pull>,
    reviews: Vec<Review>,
    comments: Vec<Comment>,
    statuses: Vec<Status>,
    /// (number, body) of conversation comments (not review comments).
    conversation: Vec<(u64, String)>,
    checks: Vec<CheckRun>,
    mergeable: bool,
}

/// A pull request as the fake holds it (for assertions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePull {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub head: String,
    pub base: String,
    pub open: bool,
    pub draft: bool,
    pub merged: bool,
    pub merge_method: Option<String>,
}

/// A fake GitHub serving `/repos/{owner}/{repo}` on a local port.
pub struct GithubFake {
    world: Shared<Github>,
    server: Server,
}

impl GithubFake {
    /// Starts the fake for `owner/repo`; `remote` is the bare repository pushes go to,
    /// `token` the only credential it accepts.
    pub async fn start(remote: &Path, repo: &str, token: &str) -> GithubFake {
        let (owner, name) = repo.split_once('/').expect("owner/name");
        let world = Shared::new(std::sync::Mutex::new(Github {
            core: Core::new(remote, token),
            owner: owner.to_owned(),
            repo: name.to_owned(),
            pulls: Vec::new(),
            reviews: Vec::new(),
            comments: Vec::new(),
            statuses: Vec::new(),
            conversation: Vec::new(),
            checks: Vec::new(),
            mergeable: true,
        }));
        let server = serve(world.clone()).await;
        GithubFake { world, server }
    }

    /// The API root, `http://127.0.0.1:<port>`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// Client settings pointing at this fake, pushing to its bare repository.
    pub fn settings(&self, token: &str) -> ForgeSettings {
        let world = lock(&self.world);
        let mut settings = ForgeSettings::new(
            ForgeKind::Github,
            format!("{}/{}", world.owner, world.repo),
            Secret::new(token),
        );
        settings.api_url = self.api_url();
        settings.remote_url = Some(world.core.remote.display().to_string());
        settings
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.world).core.requests.clone()
    }

    /// Pull requests, oldest first.
    pub fn pulls(&self) -> Vec<FakePull> {
        lock(&self.world)
            .pulls
            .iter()
            .map(|p| FakePull {
                number: p.number,
                title: p.title.clone(),
                body: p.body.clone(),
                head: p.head.clone(),
                base: p.base.clone(),
                open: p.open,
                draft: p.draft,
                merged: p.merged,
                merge_method: p.merge_method.clone(),
            })
            .collect()
    }

    /// The conversation comments on pull request `number`, oldest first.
    pub fn conversation(&self, number: u64) -> Vec<String> {
        lock(&self.world)
            .conversation
            .iter()
            .filter(|(n, _)| *n == number)
            .map(|(_, body)| body.clone())
            .collect()
    }

    /// Every status posted for `sha`: (context, state, description), oldest first.
    pub fn statuses(&self, sha: &str) -> Vec<(String, String, String)> {
        lock(&self.world)
            .statuses
            .iter()
            .filter(|s| s.sha == sha)
            .map(|s| (s.context.clone(), s.state.clone(), s.description.clone()))
            .collect()
    }

    /// The next request gets this status, headers and body instead of its answer.
    pub fn fail_next(&self, status: u16, headers: &[(&str, &str)], body: &str) {
        lock(&self.world).core.failures.push_back(Failure {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.to_owned(),
        });
    }

    /// Listings serve at most `n` items per page (to exercise pagination).
    pub fn set_page_size(&self, n: usize) {
        lock(&self.world).core.page_size = n;
    }

    /// Whether pull requests can be merged (`false`: merging answers 405).
    pub fn set_mergeable(&self, mergeable: bool) {
        lock(&self.world).mergeable = mergeable;
    }

    fn review(&self, pr: u64, login: &str, state: &str, body: &str) -> u64 {
        let mut world = lock(&self.world);
        let id = world.core.id();
        let submitted_at = world.core.now();
        let commit_id = world
            .pulls
            .iter()
            .find(|pull| pull.number == pr)
            .map(|pull| world.head_sha(pull))
            .unwrap_or_default();
        world.reviews.push(Review {
            id,
            pr,
            login: login.to_owned(),
            state: state.to_owned(),
            body: body.to_owned(),
            submitted_at,
            commit_id,
        });
        id
    }

    /// `login` approves pull request `pr`; returns the review id.
    pub fn approve(&self, pr: u64, login: &str) -> u64 {
        self.review(pr, login, "APPROVED", "")
    }

    /// `login` leaves a comment-only review.
    pub fn comment(&self, pr: u64, login: &str, body: &str) -> u64 {
        self.review(pr, login, "COMMENTED", body)
    }

    /// `login` requests changes with `body` and inline comments `(path, line, text)`.
    pub fn request_changes(
        &self,
        pr: u64,
        login: &str,
        body: &str,
        inline: &[(&str, u64, &str)],
    ) -> u64 {
        let review_id = self.review(pr, login, "CHANGES_REQUESTED", body);
        let mut world = lock(&self.world);
        for (path, line, text) in inline {
            let id = world.core.id();
            let created_at = world.core.now();
            world.comments.push(Comment {
                id,
                pr,
                review_id,
                login: login.to_owned(),
                body: (*text).to_owned(),
                path: (*path).to_owned(),
                line: *line,
                created_at,
            });
        }
        review_id
    }

    /// A maintainer dismisses review `review_id` (its state becomes `DISMISSED`).
    pub fn dismiss(&self, review_id: u64) {
        let mut world = lock(&self.world);
        for review in world.reviews.iter_mut().filter(|r| r.id == review_id) {
            review.state = "DISMISSED".to_owned();
        }
    }

    /// A GitHub Actions check run on `sha`: `conclusion` `None` while it runs, else
    /// `success`, `failure`, ...; `log` is its job log. Returns the check run (= job) id.
    pub fn add_check(&self, sha: &str, name: &str, conclusion: Option<&str>, log: &str) -> u64 {
        let mut world = lock(&self.world);
        let id = world.core.id();
        world.checks.push(CheckRun {
            id,
            sha: sha.to_owned(),
            name: name.to_owned(),
            conclusion: conclusion.map(str::to_owned),
            summary: format!("{name}: {}", conclusion.unwrap_or("in progress")),
            log: Some(log.to_owned()),
            app: "github-actions".to_owned(),
        });
        id
    }

    /// A check run of another GitHub App (`app` its slug): no job log, only its output
    /// `summary`. Returns the check run id.
    pub fn add_app_check(
        &self,
        sha: &str,
        name: &str,
        app: &str,
        conclusion: Option<&str>,
        summary: &str,
    ) -> u64 {
        let mut world = lock(&self.world);
        let id = world.core.id();
        world.checks.push(CheckRun {
            id,
            sha: sha.to_owned(),
            name: name.to_owned(),
            conclusion: conclusion.map(str::to_owned),
            summary: summary.to_owned(),
            log: None,
            app: app.to_owned(),
        });
        id
    }

    /// A commit status of another integration on `sha`.
    pub fn add_status(&self, sha: &str, context: &str, state: &str, description: &str) {
        let mut world = lock(&self.world);
        let id = world.core.id();
        world.statuses.push(Status {
            id,
            sha: sha.to_owned(),
            context: context.to_owned(),
            state: state.to_owned(),
            description: description.to_owned(),
            target_url: None,
        });
    }
}

fn not_found() -> Reply {
    Reply::json(
        404,
        json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
    )
}

fn validation(message: &str) -> Reply {
    Reply::json(
        422,
        json!({
            "message": "Validation Failed",
            "errors": [{"resource": "PullRequest", "code": "custom", "message": message}],
            "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
        }),
    )
}

impl Github {
    fn base_url(&self) -> String {
        format!("https://github.com/{}/{}", self.owner, self.repo)
    }

    fn head_sha(&self, pull: &Pull) -> String {
        pull.merged_head
            .clone()
            .or_else(|| self.core.head(&pull.head))
            .unwrap_or_default()
    }

    fn pull_json(&self, pull: &Pull, detail: bool) -> Value {
        let head_sha = self.head_sha(pull);
        let mut value = json!({
            "url": format!("https://api.github.com/repos/{}/{}/pulls/{}", self.owner, self.repo, pull.number),
            "id": pull.number + 500_000,
            "number": pull.number,
            "html_url": format!("{}/pull/{}", self.base_url(), pull.number),
            "state": if pull.open { "open" } else { "closed" },
            "title": pull.title,
            "body": pull.body,
            "draft": pull.draft,
            "user": {"login": "takt-bot"},
            "head": {"label": format!("{}:{}", self.owner, pull.head), "ref": pull.head, "sha": head_sha},
            "base": {"label": format!("{}:{}", self.owner, pull.base), "ref": pull.base, "sha": self.core.head(&pull.base).unwrap_or_default()},
            "merged_at": if pull.merged { Value::String("2026-01-01T12:00:00Z".to_owned()) } else { Value::Null },
            "merge_commit_sha": pull.merge_commit_sha,
        });
        if detail {
            value["merged"] = Value::Bool(pull.merged);
            value["mergeable"] = if pull.merged {
                Value::Null
            } else {
                Value::Bool(self.mergeable)
            };
            value["mergeable_state"] =
                Value::String(if self.mergeable { "clean" } else { "dirty" }.to_owned());
        }
        value
    }

    fn listing(&self, items: Vec<Value>, request: &Incoming) -> Reply {
        self.listing_in(items, request, None)
    }

    /// A page of `items`, as an array or under `key` of an object with `total_count`, with a
    /// `Link: <...>; rel="next"` header when more follow.
    fn listing_in(&self, items: Vec<Value>, request: &Incoming, key: Option<&str>) -> Reply {
        let total = items.len();
        let page = self.core.page(items, &request.query);
        let body = match key {
            None => Value::Array(page.items),
            Some(key) => json!({"total_count": total, key: page.items}),
        };
        let mut reply = Reply::json(200, body);
        if let Some(next) = page.next {
            let mut query: Vec<(String, String)> = request
                .query
                .iter()
                .filter(|(k, _)| k.as_str() != "page")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            query.push(("page".to_owned(), next.to_string()));
            let mut url = reqwest::Url::parse("http://fake/").expect("a URL");
            url.query_pairs_mut().extend_pairs(query);
            let link = format!(
                "<{}?{}>; rel=\"next\"",
                request.path,
                url.query().unwrap_or_default()
            );
            reply = reply.header("link", link);
        }
        reply
    }

    fn latest_statuses(&self, sha: &str) -> Vec<&Status> {
        let mut latest: Vec<&Status> = Vec::new();
        for status in self.statuses.iter().rev().filter(|s| s.sha == sha) {
            if !latest.iter().any(|s| s.context == status.context) {
                latest.push(status);
            }
        }
        latest
    }

    fn status_json(status: &Status) -> Value {
        json!({
            "id": status.id,
            "context": status.context,
            "state": status.state,
            "description": status.description,
            "target_url": status.target_url,
            "creator": {"login": "someone"},
        })
    }

    fn resolve(&self, reference: &str) -> String {
        self.core
            .head(reference)
            .unwrap_or_else(|| reference.to_owned())
    }

    fn route(&mut self, request: &Incoming, rest: &[&str]) -> Reply {
        let method = request.method.as_str();
        match (method, rest) {
            ("GET", ["pulls"]) => {
                let head = request.query.get("head").cloned();
                let base = request.query.get("base").cloned();
                let state = request
                    .query
                    .get("state")
                    .cloned()
                    .unwrap_or("open".to_owned());
                let items = self
                    .pulls
                    .iter()
                    .filter(|p| match state.as_str() {
                        "open" => p.open,
                        "closed" => !p.open,
                        _ => true,
                    })
                    .filter(|p| {
                        head.as_ref()
                            .is_none_or(|h| *h == format!("{}:{}", self.owner, p.head))
                    })
                    .filter(|p| base.as_ref().is_none_or(|b| *b == p.base))
                    .map(|p| self.pull_json(p, false))
                    .collect();
                self.listing(items, request)
            }
            ("POST", ["pulls"]) => {
                let field = |name: &str| {
                    request
                        .body
                        .get(name)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                let (Some(title), Some(head), Some(base)) =
                    (field("title"), field("head"), field("base"))
                else {
                    return validation("title, head and base are required");
                };
                let head = head
                    .strip_prefix(&format!("{}:", self.owner))
                    .map(str::to_owned)
                    .unwrap_or(head);
                if self.core.head(&head).is_none() {
                    return Reply::json(
                        422,
                        json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "field": "head", "code": "invalid"}]}),
                    );
                }
                if self
                    .pulls
                    .iter()
                    .any(|p| p.open && p.head == head && p.base == base)
                {
                    return validation(&format!(
                        "A pull request already exists for {}:{head}.",
                        self.owner
                    ));
                }
                let number = self.pulls.len() as u64 + 1;
                let pull = Pull {
                    number,
                    title,
                    body: field("body").unwrap_or_default(),
                    head,
                    base,
                    open: true,
                    draft: request
                        .body
                        .get("draft")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    merged: false,
                    merged_head: None,
                    merge_commit_sha: None,
                    merge_method: None,
                };
                let value = self.pull_json(&pull, true);
                self.pulls.push(pull);
                Reply::json(201, value)
            }
            (_, ["pulls", number, tail @ ..]) => {
                let Some(index) = number
                    .parse::<u64>()
                    .ok()
                    .and_then(|n| self.pulls.iter().position(|p| p.number == n))
                else {
                    return not_found();
                };
                self.route_pull(request, index, tail)
            }
            ("POST", ["issues", number, "comments"]) => {
                let Some(number) = number
                    .parse::<u64>()
                    .ok()
                    .filter(|n| self.pulls.iter().any(|p| p.number == *n))
                else {
                    return not_found();
                };
                let body = request
                    .body
                    .get("body")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                self.conversation.push((number, body.to_owned()));
                let id = self.core.id();
                Reply::json(201, json!({"id": id, "body": body}))
            }
            ("POST", ["statuses", sha]) => {
                let Some(state) = request.body.get("state").and_then(Value::as_str) else {
                    return Reply::json(422, json!({"message": "Validation Failed"}));
                };
                if !matches!(state, "pending" | "success" | "failure" | "error") {
                    return Reply::json(422, json!({"message": "Validation Failed"}));
                }
                let description = request
                    .body
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if description.chars().count() > 140 {
                    return Reply::json(
                        422,
                        json!({"message": "Validation Failed", "errors": [{"field": "description", "code": "custom", "message": "description is too long (maximum is 140 characters)"}]}),
                    );
                }
                let id = self.core.id();
                let status = Status {
                    id,
                    sha: (*sha).to_owned(),
                    context: request
                        .body
                        .get("context")
                        .and_then(Value::as_str)
                        .unwrap_or("default")
                        .to_owned(),
                    state: state.to_owned(),
                    description,
                    target_url: request
                        .body
                        .get("target_url")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                };
                let value = Self::status_json(&status);
                self.statuses.push(status);
                Reply::json(201, value)
            }
            ("GET", ["commits", reference, "status"]) => {
                let sha = self.resolve(reference);
                let latest = self.latest_statuses(&sha);
                let state = if latest
                    .iter()
                    .any(|s| s.state == "failure" || s.state == "error")
                {
                    "failure"
                } else if latest.is_empty() || latest.iter().any(|s| s.state == "pending") {
                    "pending"
                } else {
                    "success"
                };
                let statuses: Vec<Value> = latest.iter().map(|s| Self::status_json(s)).collect();
                Reply::json(
                    200,
                    json!({"state": state, "sha": sha, "total_count": statuses.len(), "statuses": statuses}),
                )
            }
            ("GET", ["commits", reference, "check-runs"]) => {
                let sha = self.resolve(reference);
                let runs: Vec<Value> = self
                    .checks
                    .iter()
                    .filter(|c| c.sha == sha)
                    .map(|c| {
                        json!({
                            "id": c.id,
                            "head_sha": c.sha,
                            "name": c.name,
                            "status": if c.conclusion.is_some() { "completed" } else { "in_progress" },
                            "conclusion": c.conclusion,
                            "html_url": format!("{}/actions/runs/1/job/{}", self.base_url(), c.id),
                            "details_url": format!("{}/actions/runs/1/job/{}", self.base_url(), c.id),
                            "output": {"title": c.name, "summary": c.summary, "text": Value::Null},
                            "app": {"slug": c.app},
                        })
                    })
                    .collect();
                self.listing_in(runs, request, Some("check_runs"))
            }
            ("GET", ["actions", "jobs", id, "logs"]) => {
                match self
                    .checks
                    .iter()
                    .find(|c| c.id.to_string() == *id && c.log.is_some())
                {
                    // GitHub answers with a redirect to a short-lived download URL.
                    Some(check) => {
                        Reply::text(302, "").header("location", format!("/_fake/logs/{}", check.id))
                    }
                    None => not_found(),
                }
            }
            _ => not_found(),
        }
    }

    fn route_pull(&mut self, request: &Incoming, index: usize, tail: &[&str]) -> Reply {
        let method = request.method.as_str();
        let number = self.pulls[index].number;
        match (method, tail) {
            ("GET", []) => Reply::json(200, self.pull_json(&self.pulls[index], true)),
            ("PATCH", []) => {
                if let Some(title) = request.body.get("title").and_then(Value::as_str) {
                    self.pulls[index].title = title.to_owned();
                }
                if let Some(body) = request.body.get("body").and_then(Value::as_str) {
                    self.pulls[index].body = body.to_owned();
                }
                if let Some(state) = request.body.get("state").and_then(Value::as_str) {
                    self.pulls[index].open = state == "open";
                }
                Reply::json(200, self.pull_json(&self.pulls[index], true))
            }
            ("GET", ["reviews"]) => {
                let items = self
                    .reviews
                    .iter()
                    .filter(|r| r.pr == number)
                    .map(|r| {
                        json!({
                            "id": r.id,
                            "user": {"login": r.login},
                            "body": r.body,
                            "state": r.state,
                            "submitted_at": r.submitted_at,
                            "commit_id": r.commit_id,
                        })
                    })
                    .collect();
                self.listing(items, request)
            }
            ("GET", ["comments"]) => {
                let items = self
                    .comments
                    .iter()
                    .filter(|c| c.pr == number)
                    .map(|c| {
                        json!({
                            "id": c.id,
                            "pull_request_review_id": c.review_id,
                            "user": {"login": c.login},
                            "body": c.body,
                            "path": c.path,
                            "line": c.line,
                            "original_line": c.line,
                            "side": "RIGHT",
                            "created_at": c.created_at,
                        })
                    })
                    .collect();
                self.listing(items, request)
            }
            ("PUT", ["merge"]) => {
                let pull = &self.pulls[index];
                if pull.merged || !pull.open || !self.mergeable {
                    return Reply::json(405, json!({"message": "Pull Request is not mergeable"}));
                }
                let head = self.head_sha(pull);
                if let Some(sha) = request.body.get("sha").and_then(Value::as_str)
                    && sha != head
                {
                    return Reply::json(
                        409,
                        json!({"message": "Head branch was modified. Review and try the merge again."}),
                    );
                }
                let method = request
                    .body
                    .get("merge_method")
                    .and_then(Value::as_str)
                    .unwrap_or("merge")
                    .to_owned();
                let merged_sha = fake_sha(self.core.id());
                let pull = &mut self.pulls[index];
                pull.merged = true;
                pull.open = false;
                pull.merged_head = Some(head);
                pull.merge_commit_sha = Some(merged_sha.clone());
                pull.merge_method = Some(method);
                Reply::json(
                    200,
                    json!({"sha": merged_sha, "merged": true, "message": "Pull Request successfully merged"}),
                )
            }
            _ => not_found(),
        }
    }
}

impl World for Github {
    fn core(&mut self) -> &mut Core {
        &mut self.core
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
            return false;
        };
        // git over HTTPS authenticates with Basic `x-access-token:<token>`.
        let basic = crate::git::base64(format!("x-access-token:{}", self.core.token).as_bytes());
        value == format!("Bearer {}", self.core.token)
            || value == format!("token {}", self.core.token)
            || value == format!("Basic {basic}")
    }

    fn unauthorized() -> Reply {
        Reply::json(
            401,
            json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
        )
    }

    fn handle(&mut self, request: &Incoming) -> Reply {
        let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
        match segments.as_slice() {
            ["_fake", "logs", id] => self
                .checks
                .iter()
                .find(|c| c.id.to_string() == *id)
                .and_then(|c| c.log.clone())
                .map_or_else(not_found, |log| Reply::text(200, log)),
            ["repos", owner, repo, rest @ ..] if *owner == self.owner && *repo == self.repo => {
                let rest = rest.to_vec();
                self.route(request, &rest)
            }
            _ => not_found(),
        }
    }
}
