//! The fake GitLab: `/api/v4/projects/:id/...` of REST v4 (`:id` the URL-encoded path).

use std::path::Path;

use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::{
    Core, Failure, Incoming, Recorded, Reply, Server, Shared, World, decode, fake_sha, lock, serve,
};
use crate::settings::{ForgeKind, ForgeSettings, Secret};

#[derive(Debug, Clone)]
struct MergeRequest {
    iid: u64,
    title: String,
    description: String,
    source: String,
    target: String,
    state: String,
    merged_head: Option<String>,
    merge_commit_sha: Option<String>,
    squash: Option<bool>,
}

#[derive(Debug, Clone)]
struct Note {
    id: u64,
    iid: u64,
    discussion: String,
    author: String,
    body: String,
    created_at: String,
    resolved: bool,
    position: Option<(String, u64)>,
}

#[derive(Debug, Clone)]
struct Status {
    id: u64,
    sha: String,
    name: String,
    status: String,
    description: String,
    target_url: Option<String>,
    /// A pipeline job (with a trace) rather than an external status.
    job: Option<(u64, String)>,
}

struct Gitlab {
    core: Core,
    project: String,
    requests: Vec<MergeRequest>,
    /// (iid, username, approved_at)
    approvals: Vec<(u64, String, String)>,
    /// (iid, username, state) of reviewers.
    reviewers: Vec<(u64, String, String)>,
    notes: Vec<Note>,
    statuses: Vec<Status>,
    /// (number, body) of conversation comments (not review comments).
    conversation: Vec<(u64, String)>,
    /// (pipeline id, sha).
    pipelines: Vec<(u64, String)>,
    mergeable: bool,
}

/// A merge request as the fake holds it (for assertions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeMergeRequest {
    pub iid: u64,
    pub title: String,
    pub description: String,
    pub source_branch: String,
    pub target_branch: String,
    /// `opened`, `closed` or `merged`.
    pub state: String,
    /// The `squash` parameter the merge was asked with.
    pub squash: Option<bool>,
}

/// A fake GitLab serving `/api/v4/projects/<path>` on a local port.
pub struct GitlabFake {
    world: Shared<Gitlab>,
    server: Server,
}

impl GitlabFake {
    /// Starts the fake for the project `path` (`group/project`); `remote` is the bare
    /// repository pushes go to, `token` the only credential it accepts.
    pub async fn start(remote: &Path, path: &str, token: &str) -> GitlabFake {
        let world = Shared::new(std::sync::Mutex::new(Gitlab {
            core: Core::new(remote, token),
            project: path.to_owned(),
            requests: Vec::new(),
            approvals: Vec::new(),
            reviewers: Vec::new(),
            notes: Vec::new(),
            statuses: Vec::new(),
            conversation: Vec::new(),
            pipelines: Vec::new(),
            mergeable: true,
        }));
        let server = serve(world.clone()).await;
        GitlabFake { world, server }
    }

    /// The API root, `http://127.0.0.1:<port>/api/v4`.
    pub fn api_url(&self) -> String {
        format!("http://{}/api/v4", self.server.addr)
    }

    /// Client settings pointing at this fake, pushing to its bare repository.
    pub fn settings(&self, token: &str) -> ForgeSettings {
        let world = lock(&self.world);
        let mut settings =
            ForgeSettings::new(ForgeKind::Gitlab, world.project.clone(), Secret::new(token));
        settings.api_url = self.api_url();
        settings.remote_url = Some(world.core.remote.display().to_string());
        settings
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.world).core.requests.clone()
    }

    pub fn merge_requests(&self) -> Vec<FakeMergeRequest> {
        lock(&self.world)
            .requests
            .iter()
            .map(|mr| FakeMergeRequest {
                iid: mr.iid,
                title: mr.title.clone(),
                description: mr.description.clone(),
                source_branch: mr.source.clone(),
                target_branch: mr.target.clone(),
                state: mr.state.clone(),
                squash: mr.squash,
            })
            .collect()
    }

    /// The notes posted on merge request `iid` outside reviews, oldest first.
    pub fn conversation(&self, iid: u64) -> Vec<String> {
        lock(&self.world)
            .conversation
            .iter()
            .filter(|(i, _)| *i == iid)
            .map(|(_, body)| body.clone())
            .collect()
    }

    /// Every external status posted for `sha`: (name, status, description), oldest first.
    pub fn statuses(&self, sha: &str) -> Vec<(String, String, String)> {
        lock(&self.world)
            .statuses
            .iter()
            .filter(|s| s.sha == sha && s.job.is_none())
            .map(|s| (s.name.clone(), s.status.clone(), s.description.clone()))
            .collect()
    }

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

    pub fn set_page_size(&self, n: usize) {
        lock(&self.world).core.page_size = n;
    }

    /// Whether merge requests can be merged (`false`: merging answers 405).
    pub fn set_mergeable(&self, mergeable: bool) {
        lock(&self.world).mergeable = mergeable;
    }

    fn set_reviewer(world: &mut Gitlab, iid: u64, username: &str, state: &str) {
        world
            .reviewers
            .retain(|(i, u, _)| !(*i == iid && u == username));
        world
            .reviewers
            .push((iid, username.to_owned(), state.to_owned()));
    }

    /// `username` approves merge request `iid`.
    pub fn approve(&self, iid: u64, username: &str) {
        let mut world = lock(&self.world);
        if !world
            .approvals
            .iter()
            .any(|(i, u, _)| *i == iid && u == username)
        {
            let at = world.core.now();
            world.approvals.push((iid, username.to_owned(), at));
        }
        Self::set_reviewer(&mut world, iid, username, "approved");
    }

    /// `username` withdraws an approval.
    pub fn unapprove(&self, iid: u64, username: &str) {
        let mut world = lock(&self.world);
        world
            .approvals
            .retain(|(i, u, _)| !(*i == iid && u == username));
        Self::set_reviewer(&mut world, iid, username, "unapproved");
    }

    /// `username` requests changes: a general note with `body` and inline notes
    /// `(path, line, text)`, each its own unresolved discussion.
    pub fn request_changes(
        &self,
        iid: u64,
        username: &str,
        body: &str,
        inline: &[(&str, u64, &str)],
    ) {
        let mut world = lock(&self.world);
        world
            .approvals
            .retain(|(i, u, _)| !(*i == iid && u == username));
        Self::set_reviewer(&mut world, iid, username, "requested_changes");
        let general = (!body.is_empty()).then(|| (None, body.to_owned()));
        let notes = general.into_iter().chain(
            inline
                .iter()
                .map(|(path, line, text)| (Some(((*path).to_owned(), *line)), (*text).to_owned())),
        );
        for (position, text) in notes {
            let id = world.core.id();
            let created_at = world.core.now();
            world.notes.push(Note {
                id,
                iid,
                discussion: format!("{id:040x}"),
                author: username.to_owned(),
                body: text,
                created_at,
                resolved: false,
                position,
            });
        }
    }

    /// A job named `name` in the pipeline of `sha` (created on first use): `status`
    /// `running`, `success`, `failed`, ...; `log` its trace. Returns the job id.
    pub fn add_check(&self, sha: &str, name: &str, status: &str, log: &str) -> u64 {
        let mut world = lock(&self.world);
        let pipeline = match world.pipelines.iter().find(|(_, s)| s == sha) {
            Some((id, _)) => *id,
            None => {
                let id = world.core.id();
                world.pipelines.push((id, sha.to_owned()));
                id
            }
        };
        let id = world.core.id();
        world.statuses.push(Status {
            id,
            sha: sha.to_owned(),
            name: name.to_owned(),
            status: status.to_owned(),
            description: String::new(),
            target_url: None,
            job: Some((pipeline, log.to_owned())),
        });
        id
    }
}

fn not_found(what: &str) -> Reply {
    Reply::json(404, json!({"message": format!("404 {what} Not Found")}))
}

impl Gitlab {
    fn web(&self) -> String {
        format!("https://gitlab.example.com/{}", self.project)
    }

    fn head_sha(&self, mr: &MergeRequest) -> Option<String> {
        mr.merged_head
            .clone()
            .or_else(|| self.core.head(&mr.source))
    }

    fn mr_json(&self, mr: &MergeRequest, detail: bool) -> Value {
        let sha = self.head_sha(mr);
        let detailed = if mr.state != "opened" {
            "not_open"
        } else if self.mergeable {
            "mergeable"
        } else {
            "conflict"
        };
        let mut value = json!({
            "id": mr.iid + 90_000,
            "iid": mr.iid,
            "project_id": 1,
            "title": mr.title,
            "description": mr.description,
            "state": mr.state,
            "source_branch": mr.source,
            "target_branch": mr.target,
            "sha": sha,
            "draft": mr.title.starts_with("Draft: "),
            "web_url": format!("{}/-/merge_requests/{}", self.web(), mr.iid),
            "merge_commit_sha": mr.merge_commit_sha,
            "squash_commit_sha": Value::Null,
            "detailed_merge_status": detailed,
            "merge_status": if self.mergeable { "can_be_merged" } else { "cannot_be_merged" },
            "author": {"username": "takt-bot"},
        });
        if detail {
            let pipeline = sha
                .as_ref()
                .and_then(|sha| self.pipelines.iter().rev().find(|(_, s)| s == sha));
            value["head_pipeline"] = match pipeline {
                Some((id, sha)) => json!({"id": id, "sha": sha, "status": "running"}),
                None => Value::Null,
            };
        }
        value
    }

    fn listing(&self, items: Vec<Value>, request: &Incoming) -> Reply {
        let page = self.core.page(items, &request.query);
        let mut reply = Reply::json(200, Value::Array(page.items));
        reply = reply.header(
            "x-next-page",
            page.next.map(|n| n.to_string()).unwrap_or_default(),
        );
        reply
    }

    fn latest_statuses(&self, sha: &str) -> Vec<&Status> {
        let mut latest: Vec<&Status> = Vec::new();
        for status in self.statuses.iter().rev().filter(|s| s.sha == sha) {
            if !latest.iter().any(|s| s.name == status.name) {
                latest.push(status);
            }
        }
        latest.reverse();
        latest
    }

    fn status_json(status: &Status) -> Value {
        json!({
            "id": status.id,
            "sha": status.sha,
            "ref": Value::Null,
            "status": status.status,
            "name": status.name,
            "description": status.description,
            "target_url": status.target_url,
            "allow_failure": false,
            "author": {"username": "someone"},
        })
    }

    fn route(&mut self, request: &Incoming, rest: &[&str]) -> Reply {
        let method = request.method.as_str();
        match (method, rest) {
            ("GET", ["merge_requests"]) => {
                let q = &request.query;
                let items = self
                    .requests
                    .iter()
                    .filter(|mr| q.get("state").is_none_or(|s| s == "all" || *s == mr.state))
                    .filter(|mr| q.get("source_branch").is_none_or(|b| *b == mr.source))
                    .filter(|mr| q.get("target_branch").is_none_or(|b| *b == mr.target))
                    .map(|mr| self.mr_json(mr, false))
                    .collect();
                self.listing(items, request)
            }
            ("POST", ["merge_requests"]) => {
                let field = |name: &str| {
                    request
                        .body
                        .get(name)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                let (Some(source), Some(target), Some(title)) = (
                    field("source_branch"),
                    field("target_branch"),
                    field("title"),
                ) else {
                    return Reply::json(
                        400,
                        json!({"error": "source_branch, target_branch, title are missing"}),
                    );
                };
                if self.core.head(&source).is_none() {
                    return Reply::json(422, json!({"message": ["Source branch does not exist"]}));
                }
                if let Some(existing) = self
                    .requests
                    .iter()
                    .find(|mr| mr.state == "opened" && mr.source == source && mr.target == target)
                {
                    return Reply::json(
                        409,
                        json!({"message": [format!("Another open merge request already exists for this source branch: !{}", existing.iid)]}),
                    );
                }
                let mr = MergeRequest {
                    iid: self.requests.len() as u64 + 1,
                    title,
                    description: field("description").unwrap_or_default(),
                    source,
                    target,
                    state: "opened".to_owned(),
                    merged_head: None,
                    merge_commit_sha: None,
                    squash: None,
                };
                let value = self.mr_json(&mr, true);
                self.requests.push(mr);
                Reply::json(201, value)
            }
            (_, ["merge_requests", iid, tail @ ..]) => {
                let Some(index) = iid
                    .parse::<u64>()
                    .ok()
                    .and_then(|n| self.requests.iter().position(|mr| mr.iid == n))
                else {
                    return not_found("Merge Request");
                };
                self.route_mr(request, index, tail)
            }
            ("POST", ["statuses", sha]) => {
                let Some(state) = request.body.get("state").and_then(Value::as_str) else {
                    return Reply::json(400, json!({"error": "state is missing"}));
                };
                if !matches!(
                    state,
                    "pending" | "running" | "success" | "failed" | "canceled" | "skipped"
                ) {
                    return Reply::json(400, json!({"error": "state does not have a valid value"}));
                }
                let name = request
                    .body
                    .get("name")
                    .or_else(|| request.body.get("context"))
                    .and_then(Value::as_str)
                    .unwrap_or("default")
                    .to_owned();
                if let Some(current) = self
                    .latest_statuses(sha)
                    .into_iter()
                    .find(|s| s.name == name && s.job.is_none())
                    && current.status == state
                {
                    let event = match state {
                        "pending" => "enqueue",
                        "running" => "run",
                        "success" => "succeed",
                        "failed" => "drop",
                        other => other,
                    };
                    return Reply::json(
                        400,
                        json!({"message": format!("Cannot transition status via :{event} from :{state}")}),
                    );
                }
                let id = self.core.id();
                let status = Status {
                    id,
                    sha: (*sha).to_owned(),
                    name,
                    status: state.to_owned(),
                    description: request
                        .body
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    target_url: request
                        .body
                        .get("target_url")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    job: None,
                };
                let value = Self::status_json(&status);
                self.statuses.push(status);
                Reply::json(201, value)
            }
            ("GET", ["repository", "commits", sha, "statuses"]) => {
                let name = request.query.get("name").cloned();
                let items = self
                    .latest_statuses(sha)
                    .into_iter()
                    .filter(|s| name.as_ref().is_none_or(|n| *n == s.name))
                    .map(Self::status_json)
                    .collect();
                self.listing(items, request)
            }
            ("GET", ["pipelines", id, "jobs"]) => {
                let Some((pipeline, _)) = self.pipelines.iter().find(|(p, _)| p.to_string() == *id)
                else {
                    return not_found("Pipeline");
                };
                let pipeline = *pipeline;
                let items = self
                    .statuses
                    .iter()
                    .filter(|s| s.job.as_ref().is_some_and(|(p, _)| *p == pipeline))
                    .map(|s| {
                        json!({
                            "id": s.id,
                            "name": s.name,
                            "status": s.status,
                            "stage": "test",
                            "allow_failure": false,
                            "web_url": format!("{}/-/jobs/{}", self.web(), s.id),
                            "pipeline": {"id": pipeline, "sha": s.sha},
                            "failure_reason": if s.status == "failed" { Value::String("script_failure".to_owned()) } else { Value::Null },
                        })
                    })
                    .collect();
                self.listing(items, request)
            }
            ("GET", ["jobs", id, "trace"]) => self
                .statuses
                .iter()
                .find(|s| s.id.to_string() == *id)
                .and_then(|s| s.job.as_ref().map(|(_, log)| log.clone()))
                .map_or_else(|| not_found("Job"), |log| Reply::text(200, log)),
            _ => not_found("Endpoint"),
        }
    }

    fn route_mr(&mut self, request: &Incoming, index: usize, tail: &[&str]) -> Reply {
        let method = request.method.as_str();
        let iid = self.requests[index].iid;
        match (method, tail) {
            ("GET", []) => Reply::json(200, self.mr_json(&self.requests[index], true)),
            ("PUT", []) => {
                let mr = &mut self.requests[index];
                if let Some(title) = request.body.get("title").and_then(Value::as_str) {
                    mr.title = title.to_owned();
                }
                if let Some(description) = request.body.get("description").and_then(Value::as_str) {
                    mr.description = description.to_owned();
                }
                match request.body.get("state_event").and_then(Value::as_str) {
                    Some("close") if mr.state == "opened" => mr.state = "closed".to_owned(),
                    Some("reopen") if mr.state == "closed" => mr.state = "opened".to_owned(),
                    _ => {}
                }
                Reply::json(200, self.mr_json(&self.requests[index], true))
            }
            ("POST", ["notes"]) => {
                let body = request
                    .body
                    .get("body")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                self.conversation.push((iid, body.to_owned()));
                let id = self.core.id();
                Reply::json(201, json!({"id": id, "body": body}))
            }
            ("GET", ["approvals"]) => {
                let approved_by: Vec<Value> = self
                    .approvals
                    .iter()
                    .filter(|(i, _, _)| *i == iid)
                    .map(
                        |(_, u, at)| json!({"user": {"username": u, "name": u}, "approved_at": at}),
                    )
                    .collect();
                Reply::json(
                    200,
                    json!({"iid": iid, "approved": !approved_by.is_empty(), "approvals_required": 0, "approvals_left": 0, "approved_by": approved_by}),
                )
            }
            ("GET", ["reviewers"]) => {
                let items = self
                    .reviewers
                    .iter()
                    .filter(|(i, _, _)| *i == iid)
                    .map(|(_, u, s)| json!({"user": {"username": u}, "state": s}))
                    .collect();
                self.listing(items, request)
            }
            ("GET", ["discussions"]) => {
                let items = self
                    .notes
                    .iter()
                    .filter(|n| n.iid == iid)
                    .map(|n| {
                        let position = n.position.as_ref().map_or(Value::Null, |(path, line)| {
                            json!({"position_type": "text", "new_path": path, "new_line": line, "old_path": path, "old_line": Value::Null})
                        });
                        json!({
                            "id": n.discussion,
                            "individual_note": n.position.is_none(),
                            "notes": [{
                                "id": n.id,
                                "type": if n.position.is_some() { "DiffNote" } else { "DiscussionNote" },
                                "body": n.body,
                                "author": {"username": n.author},
                                "created_at": n.created_at,
                                "system": false,
                                "resolvable": true,
                                "resolved": n.resolved,
                                "position": position,
                            }],
                        })
                    })
                    .collect();
                self.listing(items, request)
            }
            ("PUT", ["merge"]) => {
                let mr = &self.requests[index];
                if mr.state != "opened" || !self.mergeable {
                    return Reply::json(405, json!({"message": "405 Method Not Allowed"}));
                }
                let head = self.head_sha(mr).unwrap_or_default();
                if let Some(sha) = request.body.get("sha").and_then(Value::as_str)
                    && sha != head
                {
                    return Reply::json(
                        409,
                        json!({"message": format!("SHA does not match HEAD of source branch: {head}")}),
                    );
                }
                let merged = fake_sha(self.core.id());
                let mr = &mut self.requests[index];
                mr.state = "merged".to_owned();
                mr.merged_head = Some(head);
                mr.merge_commit_sha = Some(merged);
                mr.squash = request.body.get("squash").and_then(Value::as_bool);
                Reply::json(200, self.mr_json(&self.requests[index], true))
            }
            _ => not_found("Endpoint"),
        }
    }
}

impl World for Gitlab {
    fn core(&mut self) -> &mut Core {
        &mut self.core
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get("private-token")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == self.core.token)
    }

    fn unauthorized() -> Reply {
        Reply::json(401, json!({"message": "401 Unauthorized"}))
    }

    fn handle(&mut self, request: &Incoming) -> Reply {
        let Some(rest) = request.path.strip_prefix("/api/v4/projects/") else {
            return not_found("Endpoint");
        };
        let (id, rest) = rest.split_once('/').unwrap_or((rest, ""));
        if decode(id) != self.project && id != "1" {
            return not_found("Project");
        }
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        self.route(request, &segments)
    }
}
