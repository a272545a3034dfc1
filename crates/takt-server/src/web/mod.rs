//! The web dashboard: server-rendered HTML pages over the same [`crate::DaemonPort`] the JSON
//! API reads and commands through, with vendored htmx and one small script that refreshes parts
//! of a page when the journal's event stream (`/api/v1/events`) reports a change. No build
//! step, no external fonts or CDNs; the assets are compiled into the binary.
//!
//! Layout: `html` (escaping), `layout` (the page shell, response headers, the viewer),
//! `assets`, `session` (login cookie and CSRF), `login`, `board`, `task` with `timeline`,
//! `evidence` and `diff`, `overview` with `chart`, and `forms` (review actions).
//! `docs/web.md` describes the pages and the security model.

mod assets;
mod board;
mod chart;
mod diff;
mod evidence;
mod forms;
pub mod html;
mod layout;
mod login;
mod overview;
pub mod session;
mod task;
mod timeline;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::app::App;

/// The dashboard's routes, merged into the API's router (behind the same auth middleware).
pub fn routes() -> Router<App> {
    Router::new()
        .route("/", get(board::page))
        .route("/ui/board", get(board::fragment))
        .route("/overview", get(overview::page))
        .route("/tasks/{id}", get(task::page))
        .route("/ui/tasks/{id}/{part}", get(task::fragment))
        .route("/tasks/{id}/approve", post(forms::approve))
        .route("/tasks/{id}/reject", post(forms::reject))
        .route("/tasks/{id}/answer", post(forms::answer))
        .route("/login", get(login::page).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/assets/{name}", get(assets::serve))
}

/// Paths anyone may reach: the login page (it checks the token itself) and the static assets
/// (nothing secret in them).
pub fn is_open_path(path: &str) -> bool {
    path == "/login" || path.starts_with("/assets/")
}

/// The dashboard's form posts: the only state changes a session cookie may make, because their
/// handlers check the CSRF field.
pub fn is_form_path(path: &str) -> bool {
    path == "/logout"
        || (path.starts_with("/tasks/")
            && ["/approve", "/reject", "/answer"]
                .iter()
                .any(|action| path.ends_with(action)))
}

/// Paths a browser shows as a page: an unauthorized request there is sent to `/login` rather
/// than answered with the JSON envelope.
pub fn is_page_path(path: &str) -> bool {
    path == "/" || path == "/overview" || path.starts_with("/tasks/") || path.starts_with("/ui/")
}

/// 303 to `/login`, remembering where the operator wanted to go.
pub fn login_redirect(uri: &Uri) -> Response {
    let wanted = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let next: String = form_urlencoded::byte_serialize(wanted.as_bytes()).collect();
    see_other(&format!("/login?next={next}"))
}

/// A 303 See Other to a local path: after a form post the browser GETs the result, so a reload
/// does not post again.
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Journal kinds after which a board or task page may look different. The event stream names
/// each event by its kind and `EventSource` only delivers named events to listeners of that
/// name, so the page's script listens for these (rendered into the page, so this list is the
/// one place to keep in step with `takt_core::Record`). Poll and housekeeping kinds are left
/// out: they arrive several times a second and change nothing a page shows.
pub const LIVE_KINDS: &[&str] = &[
    "task_queued",
    "issue_updated",
    "task_reopened",
    "run_dispatched",
    "run_launched",
    "run_phase_changed",
    "agent_event_recorded",
    "run_stop_requested",
    "run_finished",
    "retry_scheduled",
    "review_requested",
    "verification_started",
    "scheduled_task_created",
    "verdict_committed",
    "verified",
    "task_blocked",
    "answered",
    "approved",
    "rejected",
    "merge_started",
    "pull_request_opened",
    "publish_failed",
    "pull_request_closed",
    "checks_failed",
    "merged",
    "merge_conflicted",
    "merge_failed",
    "task_failed",
    "task_cancelled",
    "task_retried",
    "model_call_metered",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_paths_are_the_review_actions_and_logout_only() {
        assert!(is_form_path("/tasks/TAKT-1/approve"));
        assert!(is_form_path("/tasks/TAKT-1/answer"));
        assert!(is_form_path("/logout"));
        assert!(!is_form_path("/api/v1/tasks/TAKT-1/approve"));
        assert!(!is_form_path("/tasks/TAKT-1"));
        assert!(!is_open_path("/api/v1/state"));
        assert!(is_open_path("/assets/takt.css"));
    }

    #[test]
    fn the_login_redirect_keeps_the_wanted_page() {
        let uri: Uri = "/tasks/TAKT-1?x=1".parse().expect("uri");
        let response = login_redirect(&uri);
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            response.headers().get(header::LOCATION),
            Some(&HeaderValue::from_static(
                "/login?next=%2Ftasks%2FTAKT-1%3Fx%3D1"
            ))
        );
    }
}
