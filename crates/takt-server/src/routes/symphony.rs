//! Symphony's endpoints, with its exact shapes: `GET /api/v1/state`, `GET /api/v1/{issue}`,
//! `POST /api/v1/refresh` (R-135..R-137).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::App;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::PathParam;
use crate::symphony::{IssueView, StateView, issue_view, state_view};
use crate::time::{now_ms, rfc3339};

/// The orchestrator's runtime snapshot.
///
/// Running, retrying and blocked tasks, token totals, rate limits and polling. When the daemon
/// has no state to show, the answer is 503 with `generated_at` beside the error envelope, as
/// Symphony does.
#[utoipa::path(get, path = "/api/v1/state", tag = "symphony",
    responses(
        (status = 200, description = "The snapshot", body = StateView),
        (status = 503, description = "`snapshot_unavailable`", body = ErrorEnvelope),
    ))]
pub async fn get_state(State(app): State<App>) -> Response {
    let now = now_ms();
    match app.snapshot() {
        Ok(snapshot) => Json(state_view(&snapshot, now)).into_response(),
        Err(error) => {
            let mut body = serde_json::json!({"generated_at": rfc3339(now)});
            body["error"] = serde_json::json!({"code": error.code, "message": error.message});
            (error.status, Json(body)).into_response()
        }
    }
}

/// One issue's runtime details.
///
/// The identifier is matched case-insensitively (the issue id works too). Static routes such as
/// `/api/v1/tasks` take precedence, so an issue named like one of them is reached through
/// `/api/v1/tasks/{id}` instead.
#[utoipa::path(get, path = "/api/v1/{issue_identifier}", tag = "symphony",
    params(("issue_identifier" = String, Path, description = "e.g. `TAKT-12`")),
    responses(
        (status = 200, description = "The issue", body = IssueView),
        (status = 404, description = "`issue_not_found`", body = ErrorEnvelope),
        (status = 503, description = "`snapshot_unavailable`", body = ErrorEnvelope),
    ))]
pub async fn get_issue(
    State(app): State<App>,
    PathParam(identifier): PathParam,
) -> Result<Json<IssueView>, ApiError> {
    let snapshot = app.snapshot()?;
    let Some(task) = snapshot.state.find(&identifier) else {
        return Err(ApiError::issue_not_found(&identifier));
    };
    let journal = app.ask(app.daemon.task_journal(&task.id)).await?;
    Ok(Json(issue_view(task, &journal)))
}

/// `POST /api/v1/refresh`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshView {
    /// Always true: the request was accepted.
    pub queued: bool,
    /// True when it was folded into a poll already in flight or due.
    pub coalesced: bool,
    pub requested_at: String,
    /// Always `["poll", "reconcile"]`.
    pub operations: Vec<String>,
}

/// Polls the tracker and reconciles now.
///
/// The body may be empty or `{}` (it is ignored). Answers 202 once the request is queued.
#[utoipa::path(post, path = "/api/v1/refresh", tag = "symphony",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued", body = RefreshView),
        (status = 401, description = "`unauthorized`", body = ErrorEnvelope),
        (status = 503, description = "`orchestrator_unavailable`", body = ErrorEnvelope),
    ))]
pub async fn post_refresh(
    State(app): State<App>,
) -> Result<(StatusCode, Json<RefreshView>), ApiError> {
    let requested_at = rfc3339(now_ms());
    let queued = app.ask(app.daemon.refresh()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RefreshView {
            queued: true,
            coalesced: queued.coalesced,
            requested_at,
            operations: vec!["poll".to_owned(), "reconcile".to_owned()],
        }),
    ))
}
