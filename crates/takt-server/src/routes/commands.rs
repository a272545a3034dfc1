//! Operator commands on one task: cancel, retry, approve, reject, answer.
//!
//! Each is checked here (the task exists, required text is there), handed to the daemon as a
//! [`takt_core::OperatorCommand`], and answered with the task as the daemon's next snapshot
//! shows it. The core's refusals come back as 409 `refused` with its message.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use takt_core::OperatorCommand;
use takt_protocol::TaskSummary;
use utoipa::ToSchema;

use crate::app::{App, find_task};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{Body, PathParam, json_body, operator, required_text};
use crate::schemas;

/// A command's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandDone {
    /// Always true (failures answer with the error envelope).
    pub ok: bool,
    /// The task after the command.
    #[schema(value_type = schemas::TaskSummary)]
    pub task: TaskSummary,
}

/// The body of `cancel` and `retry`: nothing (an empty body or `{}`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoFields {}

/// `approve`'s body (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    pub comment: Option<String>,
}

/// `reject`'s body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    /// Required, not blank: the agent's next round reads it as feedback.
    pub comment: Option<String>,
}

/// `answer`'s body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    /// Required, not blank.
    pub text: Option<String>,
}

/// Cancels a task: its live run is stopped and it is not dispatched again.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/cancel", tag = "commands",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Task id or identifier"),
        ("X-Takt-Operator" = Option<String>, Header, description = "Who acts (default `api`)")),
    request_body(content = Option<NoFields>, description = "Empty or `{}`"),
    responses(
        (status = 200, description = "Done", body = CommandDone),
        (status = 401, description = "`unauthorized`", body = ErrorEnvelope),
        (status = 404, description = "`task_not_found`", body = ErrorEnvelope),
        (status = 409, description = "`refused`, with the reason", body = ErrorEnvelope),
    ))]
pub async fn cancel(
    State(app): State<App>,
    PathParam(reference): PathParam,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<CommandDone>, ApiError> {
    let NoFields {} = json_body(&body)?;
    let by = operator(&headers)?;
    run(&app, &reference, |task| OperatorCommand::Cancel {
        task,
        by,
    })
    .await
}

/// Retries a failed, cancelled or rejected task.
///
/// The task is queued again with a fresh attempt count.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/retry", tag = "commands",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Task id or identifier"),
        ("X-Takt-Operator" = Option<String>, Header, description = "Who acts (default `api`)")),
    request_body(content = Option<NoFields>, description = "Empty or `{}`"),
    responses(
        (status = 200, description = "Done", body = CommandDone),
        (status = 401, description = "`unauthorized`", body = ErrorEnvelope),
        (status = 404, description = "`task_not_found`", body = ErrorEnvelope),
        (status = 409, description = "`refused`, with the reason", body = ErrorEnvelope),
    ))]
pub async fn retry(
    State(app): State<App>,
    PathParam(reference): PathParam,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<CommandDone>, ApiError> {
    let NoFields {} = json_body(&body)?;
    let by = operator(&headers)?;
    run(&app, &reference, |task| OperatorCommand::Retry { task, by }).await
}

/// Approves a task awaiting review.
///
/// Changes that need several approvals need them from distinct operators; the task merges
/// once it has enough.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/approve", tag = "commands",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Task id or identifier"),
        ("X-Takt-Operator" = Option<String>, Header, description = "Who approves (default `api`)")),
    request_body(content = Option<ApproveRequest>, description = "Optional comment"),
    responses(
        (status = 200, description = "Approved", body = CommandDone),
        (status = 400, description = "`invalid_request`", body = ErrorEnvelope),
        (status = 401, description = "`unauthorized`", body = ErrorEnvelope),
        (status = 404, description = "`task_not_found`", body = ErrorEnvelope),
        (status = 409, description = "`refused`: not awaiting review, approved twice by one \
            person, ...", body = ErrorEnvelope),
    ))]
pub async fn approve(
    State(app): State<App>,
    PathParam(reference): PathParam,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<CommandDone>, ApiError> {
    let request: ApproveRequest = json_body(&body)?;
    let by = operator(&headers)?;
    let comment = request
        .comment
        .map(|comment| comment.trim().to_owned())
        .filter(|comment| !comment.is_empty());
    run(&app, &reference, |task| OperatorCommand::Approve {
        task,
        by,
        comment,
    })
    .await
}

/// Rejects a task awaiting review; the comment goes back to the agent as feedback.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/reject", tag = "commands",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Task id or identifier"),
        ("X-Takt-Operator" = Option<String>, Header, description = "Who rejects (default `api`)")),
    request_body = RejectRequest,
    responses(
        (status = 200, description = "Rejected", body = CommandDone),
        (status = 400, description = "`invalid_request`: no comment", body = ErrorEnvelope),
        (status = 401, description = "`unauthorized`", body = ErrorEnvelope),
        (status = 404, description = "`task_not_found`", body = ErrorEnvelope),
        (status = 409, description = "`refused`", body = ErrorEnvelope),
    ))]
pub async fn reject(
    State(app): State<App>,
    PathParam(reference): PathParam,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<CommandDone>, ApiError> {
    let request: RejectRequest = json_body(&body)?;
    let comment = required_text(request.comment, "comment")?;
    let by = operator(&headers)?;
    run(&app, &reference, |task| OperatorCommand::Reject {
        task,
        by,
        comment,
    })
    .await
}

/// Answers a blocked task's question.
///
/// A live session receives the answer in place; otherwise the next run's prompt carries it.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/answer", tag = "commands",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Task id or identifier"),
        ("X-Takt-Operator" = Option<String>, Header, description = "Who answers (default `api`)")),
    request_body = AnswerRequest,
    responses(
        (status = 200, description = "Answered", body = CommandDone),
        (status = 400, description = "`invalid_request`: no text", body = ErrorEnvelope),
        (status = 401, description = "`unauthorized`", body = ErrorEnvelope),
        (status = 404, description = "`task_not_found`", body = ErrorEnvelope),
        (status = 409, description = "`refused`: the task is not blocked", body = ErrorEnvelope),
    ))]
pub async fn answer(
    State(app): State<App>,
    PathParam(reference): PathParam,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<CommandDone>, ApiError> {
    let request: AnswerRequest = json_body(&body)?;
    let text = required_text(request.text, "text")?;
    let by = operator(&headers)?;
    run(&app, &reference, |task| OperatorCommand::Answer {
        task,
        by,
        text,
    })
    .await
}

/// Resolves the task, submits the command built for its id, and answers with the task as the
/// snapshot shows it afterwards.
async fn run(
    app: &App,
    reference: &str,
    command: impl FnOnce(String) -> OperatorCommand,
) -> Result<Json<CommandDone>, ApiError> {
    let task = submit_command(app, reference, command).await?;
    Ok(Json(CommandDone { ok: true, task }))
}

/// The path every operator command takes, from the JSON API and the dashboard's forms alike:
/// resolve the task, submit the command built for its id, return the task afterwards.
pub async fn submit_command(
    app: &App,
    reference: &str,
    command: impl FnOnce(String) -> OperatorCommand,
) -> Result<TaskSummary, ApiError> {
    let task_id = find_task(&*app.snapshot()?, reference)?.id.clone();
    app.ask(app.daemon.submit(command(task_id.clone()))).await?;
    let snapshot = app.snapshot()?;
    Ok(find_task(&snapshot, &task_id)?.summary())
}
