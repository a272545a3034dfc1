//! The router: every endpoint, the auth middleware, and the 404/405 answers in Symphony's
//! envelope. The webhooks under `/hooks/` check their own credentials (`hooks`).
//!
//! `/api/v1/{issue_identifier}` sits beside static routes such as `/api/v1/tasks`; the router
//! prefers static segments, so those are never read as an identifier (tested).

pub mod artifacts;
pub mod commands;
pub mod cost;
pub mod health;
pub mod hooks;
pub mod symphony;
pub mod tasks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};

use crate::app::App;
use crate::error::ApiError;
use crate::{auth, metrics, sse, web};

/// Builds the whole API over `app`.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/api/v1/state", get(symphony::get_state))
        .route("/api/v1/refresh", post(symphony::post_refresh))
        .route("/api/v1/health", get(health::health))
        .route("/api/v1/cost", get(cost::cost))
        .route("/api/v1/events", get(sse::events))
        .route(
            "/api/v1/tasks",
            get(tasks::list_tasks).post(tasks::create_task),
        )
        .route("/api/v1/tasks/{id}", get(tasks::get_task))
        .route("/api/v1/tasks/{id}/events", get(tasks::task_events))
        .route("/api/v1/tasks/{id}/evidence", get(tasks::task_evidence))
        .route("/api/v1/tasks/{id}/cancel", post(commands::cancel))
        .route("/api/v1/tasks/{id}/retry", post(commands::retry))
        .route("/api/v1/tasks/{id}/approve", post(commands::approve))
        .route("/api/v1/tasks/{id}/reject", post(commands::reject))
        .route("/api/v1/tasks/{id}/answer", post(commands::answer))
        .route("/api/v1/artifacts/{hash}", get(artifacts::get_artifact))
        .route("/api/v1/{issue_identifier}", get(symphony::get_issue))
        .route("/metrics", get(metrics::metrics))
        .route(
            hooks::GITHUB_PATH,
            post(hooks::github::receive).layer(DefaultBodyLimit::max(hooks::MAX_BODY_BYTES)),
        )
        .route(
            hooks::GITLAB_PATH,
            post(hooks::gitlab::receive).layer(DefaultBodyLimit::max(hooks::MAX_BODY_BYTES)),
        )
        .route(
            hooks::LINEAR_PATH,
            post(hooks::linear::receive).layer(DefaultBodyLimit::max(hooks::MAX_BODY_BYTES)),
        )
        .route(
            hooks::GENERIC_PATH,
            post(hooks::generic::receive).layer(DefaultBodyLimit::max(hooks::MAX_BODY_BYTES)),
        )
        .merge(web::routes())
        // After the routes: it applies to the routes that exist.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(from_fn_with_state(app.clone(), auth::authorize))
        .with_state(app)
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}
