//! takt's task endpoints: list, create, show, the task's journal and its evidence.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use takt_protocol::{
    Issue, JournalEntry, RiskAssessment, TaskState, TaskSummary, VerificationReport,
};
use utoipa::ToSchema;

use crate::app::{App, find_task};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{Body, PathParam, json_body, operator, required_text};
use crate::port::NewTask;
use crate::schemas;

/// `GET /api/v1/tasks`' answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskList {
    /// Sorted by identifier, numerically within a prefix (`TAKT-9` before `TAKT-10`).
    #[schema(value_type = Vec<schemas::TaskSummary>)]
    pub tasks: Vec<TaskSummary>,
}

/// The tasks the orchestrator knows, optionally only those in some states.
///
/// `state` may repeat (`?state=queued&state=running`) or hold a comma-separated list. A task
/// created a moment ago appears once the daemon's poll has picked it up.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks",
    params(("state" = Option<Vec<schemas::TaskState>>, Query, explode = true,
        description = "Only tasks in these states")),
    responses(
        (status = 200, description = "The tasks", body = TaskList),
        (status = 400, description = "`invalid_request`: an unknown state or parameter",
            body = ErrorEnvelope),
        (status = 503, description = "`snapshot_unavailable`", body = ErrorEnvelope),
    ))]
pub async fn list_tasks(
    State(app): State<App>,
    RawQuery(query): RawQuery,
) -> Result<Json<TaskList>, ApiError> {
    let wanted = wanted_states(query.as_deref().unwrap_or(""))?;
    let snapshot = app.snapshot()?;
    let mut tasks: Vec<TaskSummary> = snapshot
        .state
        .tasks
        .values()
        .filter(|task| wanted.is_empty() || wanted.contains(&task.state))
        .map(takt_core::Task::summary)
        .collect();
    tasks.sort_by_cached_key(|task| natural_key(&task.identifier));
    Ok(Json(TaskList { tasks }))
}

/// The states a `?state=` query asks for; empty means all.
fn wanted_states(query: &str) -> Result<Vec<TaskState>, ApiError> {
    let mut wanted = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key != "state" {
            return Err(ApiError::invalid(format!(
                "unknown query parameter `{key}`; this endpoint takes `state`"
            )));
        }
        for name in value
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            let state = TaskState::ALL
                .into_iter()
                .find(|state| state.as_str().eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    let names: Vec<&str> = TaskState::ALL.iter().map(|s| s.as_str()).collect();
                    ApiError::invalid(format!(
                        "unknown state `{name}`; use one of: {}",
                        names.join(", ")
                    ))
                })?;
            wanted.push(state);
        }
    }
    Ok(wanted)
}

/// `TAKT-10` after `TAKT-9`.
pub fn natural_key(identifier: &str) -> (String, u64, String) {
    match identifier.rsplit_once('-') {
        Some((prefix, number)) => (
            prefix.to_ascii_lowercase(),
            number.parse().unwrap_or(u64::MAX),
            identifier.to_owned(),
        ),
        None => (identifier.to_ascii_lowercase(), 0, identifier.to_owned()),
    }
}

/// `POST /api/v1/tasks`' body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTaskRequest {
    /// Required, not blank.
    pub title: Option<String>,
    /// The description (Markdown); `description` is accepted as well.
    #[serde(default, alias = "description")]
    pub body: Option<String>,
    /// 0..=4, 1 most urgent; 0 or null sorts last.
    #[serde(default)]
    pub priority: Option<i64>,
    #[serde(default)]
    pub labels: Vec<String>,
    /// Identifiers or ids of the issues this one waits for.
    #[serde(default)]
    pub blocked_by: Vec<String>,
}

/// Creates a task (an issue in the local tracker).
///
/// The author is the `X-Takt-Operator` header (`api` without one). Answers 201 with the issue
/// and a `Location` of the new task; the daemon is asked to poll at once.
#[utoipa::path(post, path = "/api/v1/tasks", tag = "tasks",
    security(("bearer" = [])),
    params(("X-Takt-Operator" = Option<String>, Header, description = "The author")),
    request_body = CreateTaskRequest,
    responses(
        (status = 201, description = "Created", body = schemas::Issue),
        (status = 400, description = "`invalid_request`", body = ErrorEnvelope),
        (status = 401, description = "`unauthorized`", body = ErrorEnvelope),
        (status = 409, description = "`refused`: the tracker cannot create issues",
            body = ErrorEnvelope),
        (status = 503, description = "`orchestrator_unavailable`", body = ErrorEnvelope),
    ))]
pub async fn create_task(
    State(app): State<App>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let request: CreateTaskRequest = json_body(&body)?;
    let author = operator(&headers)?;
    let title = required_text(request.title, "title")?;
    check_priority(request.priority)?;
    let task = NewTask {
        title,
        body: request.body.filter(|body| !body.trim().is_empty()),
        priority: request.priority,
        labels: cleaned(request.labels),
        blocked_by: cleaned(request.blocked_by),
        author,
    };
    let issue: Issue = app.ask(app.daemon.create_task(task)).await?;
    let mut response = (StatusCode::CREATED, Json(&issue)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/tasks/{}", issue.identifier)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// A priority within 0..=4, or none.
pub fn check_priority(priority: Option<i64>) -> Result<(), ApiError> {
    match priority.filter(|p| !(0..=4).contains(p)) {
        Some(priority) => Err(ApiError::invalid(format!(
            "`priority` must be 0..=4 (1 most urgent), not {priority}"
        ))),
        None => Ok(()),
    }
}

/// Trimmed, blank entries dropped.
pub fn cleaned(values: Vec<String>) -> Vec<String> {
    values
        .into_iter()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
        .collect()
}

/// One task.
#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "Task id or identifier (case-insensitive)")),
    responses(
        (status = 200, description = "The task", body = schemas::TaskSummary),
        (status = 404, description = "`task_not_found`", body = ErrorEnvelope),
        (status = 503, description = "`snapshot_unavailable`", body = ErrorEnvelope),
    ))]
pub async fn get_task(
    State(app): State<App>,
    PathParam(reference): PathParam,
) -> Result<Json<TaskSummary>, ApiError> {
    let snapshot = app.snapshot()?;
    Ok(Json(find_task(&snapshot, &reference)?.summary()))
}

/// `GET /api/v1/tasks/{id}/events`' answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskEvents {
    pub task_id: String,
    pub identifier: String,
    /// Oldest first.
    #[schema(value_type = Vec<schemas::JournalEntry>)]
    pub events: Vec<JournalEntry>,
}

/// Every journal entry about one task, oldest first.
#[utoipa::path(get, path = "/api/v1/tasks/{id}/events", tag = "tasks",
    params(("id" = String, Path, description = "Task id or identifier")),
    responses(
        (status = 200, description = "The task's journal", body = TaskEvents),
        (status = 404, description = "`task_not_found`", body = ErrorEnvelope),
    ))]
pub async fn task_events(
    State(app): State<App>,
    PathParam(reference): PathParam,
) -> Result<Json<TaskEvents>, ApiError> {
    let snapshot = app.snapshot()?;
    let task = find_task(&snapshot, &reference)?;
    let events = app.ask(app.daemon.task_journal(&task.id)).await?;
    Ok(Json(TaskEvents {
        task_id: task.id.clone(),
        identifier: task.issue.identifier.clone(),
        events,
    }))
}

/// `GET /api/v1/tasks/{id}/evidence`' answer (as `takt evidence --json`, without the git
/// attestation note, which lives in the repository).
#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceView {
    /// The identifier.
    pub task: String,
    pub task_id: String,
    #[schema(value_type = schemas::TaskState)]
    pub state: TaskState,
    /// `passed`, `gates_failed`, `judge_vetoed`, `reviewers_blocked`, `verdict_mismatch`,
    /// `error`.
    pub outcome: Option<String>,
    /// The latest verification: gates with their evidence hashes, tamper and secret flags,
    /// the judge's and the reviewers' verdicts.
    #[schema(value_type = schemas::VerificationReport)]
    pub report: VerificationReport,
    #[schema(value_type = Option<schemas::RiskAssessment>)]
    pub risk: Option<RiskAssessment>,
    pub approvals: Vec<String>,
    pub approvals_required: u32,
}

/// What verification found about the task's latest change.
#[utoipa::path(get, path = "/api/v1/tasks/{id}/evidence", tag = "tasks",
    params(("id" = String, Path, description = "Task id or identifier")),
    responses(
        (status = 200, description = "The evidence", body = EvidenceView),
        (status = 404, description = "`task_not_found`, or `not_verified` when no change of the \
            task went through the gates yet", body = ErrorEnvelope),
    ))]
pub async fn task_evidence(
    State(app): State<App>,
    PathParam(reference): PathParam,
) -> Result<Json<EvidenceView>, ApiError> {
    let snapshot = app.snapshot()?;
    let task = find_task(&snapshot, &reference)?;
    let Some(report) = task.verification.as_deref() else {
        return Err(ApiError::not_verified(format!(
            "{} has not been verified yet (it is {}); evidence exists once its change went \
             through the gates",
            task.issue.identifier, task.state
        )));
    };
    Ok(Json(EvidenceView {
        task: task.issue.identifier.clone(),
        task_id: task.id.clone(),
        state: task.state,
        outcome: task
            .verify_outcome
            .map(|outcome| outcome.as_str().to_owned()),
        report: report.clone(),
        risk: task.risk.clone(),
        approvals: task.approvals.clone(),
        approvals_required: task.approvals_required,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_repeat_or_come_comma_separated() {
        assert_eq!(
            wanted_states("state=queued&state=Running,done"),
            Ok(vec![TaskState::Queued, TaskState::Running, TaskState::Done])
        );
        assert_eq!(wanted_states(""), Ok(vec![]));
        let unknown = wanted_states("state=sleeping").map_err(|error| error.message);
        assert!(unknown.is_err_and(|message| message.contains("retry_wait")));
        assert!(wanted_states("stat=done").is_err());
    }

    #[test]
    fn identifiers_sort_numerically() {
        let mut ids = vec!["TAKT-10", "TAKT-9", "OPS-1"];
        ids.sort_by_cached_key(|id| natural_key(id));
        assert_eq!(ids, ["OPS-1", "TAKT-9", "TAKT-10"]);
    }
}
