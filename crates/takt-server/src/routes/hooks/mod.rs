//! Webhooks: `POST /hooks/github`, `POST /hooks/gitlab` and `POST /hooks/linear` (an
//! authenticated delivery from the forge or the tracker triggers a poll now) and
//! `POST /hooks/generic` (a token-bearing sender creates a local task). One module per hook;
//! this one holds what they share: reading the request, answering, handing a delivery to the
//! daemon, and reporting refusals.
//!
//! Each hook exists only when its secret or token is configured (404 `not_found` otherwise),
//! authenticates the request itself (the API token's rules do not apply, see `auth`), and
//! hands the delivery to the daemon, which deduplicates it by (source, delivery id) durably.
//! Every refusal (credentials, staleness, replay, missing header, malformed or oversized body)
//! is reported to the daemon through [`DaemonPort::webhook_refused`] so it is journaled;
//! failures of the daemon itself (503, 504) are not refusals and are not reported.
//!
//! [`DaemonPort::webhook_refused`]: crate::port::DaemonPort::webhook_refused

pub mod generic;
pub mod github;
pub mod gitlab;
pub mod linear;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use takt_protocol::Issue;
use utoipa::ToSchema;

use crate::app::App;
use crate::error::ApiError;
use crate::port::{WebhookDelivery, WebhookOutcome};
use crate::schemas;
use crate::webhook::{HookError, Parsed};

pub const GITHUB_PATH: &str = "/hooks/github";
pub const GITLAB_PATH: &str = "/hooks/gitlab";
pub const LINEAR_PATH: &str = "/hooks/linear";
pub const GENERIC_PATH: &str = "/hooks/generic";
/// Largest body a hook reads. GitHub's, GitLab's and Linear's issue and pull request payloads
/// are tens of KiB; a generic task is a title and a description. More is refused before it is
/// buffered whole.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Whether `path` is a hook, which authenticates itself.
pub fn is_hook_path(path: &str) -> bool {
    [GITHUB_PATH, GITLAB_PATH, LINEAR_PATH, GENERIC_PATH].contains(&path)
}

/// A hook's answer to a delivery it accepted (or, for `ping` and ignored events, did not need
/// to pass on).
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct HookAnswer {
    /// Always true.
    pub ok: bool,
    /// False when the delivery went to the daemon (a replay is 409 `duplicate_delivery`
    /// instead); absent for `ping` and ignored events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
    /// True for GitHub's `ping`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pong: Option<bool>,
    /// The event (GitHub's `push`, GitLab's `Push Hook`, Linear's `Project`) or GitHub's event
    /// and action (`issues.assigned`) that takt does not act on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    /// The task the generic hook created.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<schemas::Issue>)]
    pub task: Option<Issue>,
}

impl HookAnswer {
    fn ok() -> HookAnswer {
        HookAnswer {
            ok: true,
            ..HookAnswer::default()
        }
    }
}

/// Why a hook request did not succeed.
enum Failure {
    /// The request was refused: journaled through the daemon, then answered.
    Refused(ApiError),
    /// The daemon could not take it (unavailable, timed out): answered only; the sender
    /// should retry, and the delivery id stays unused.
    Daemon(ApiError),
}

impl From<HookError> for Failure {
    fn from(error: HookError) -> Failure {
        let message = error.to_string();
        Failure::Refused(if error.is_credential() {
            ApiError::hook_unauthorized(message)
        } else {
            ApiError::invalid(message)
        })
    }
}

/// A header's text; a header that is present but not visible ASCII reads as empty, so it is
/// refused as malformed rather than treated as absent.
fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .map(|value| value.to_str().unwrap_or_default())
}

/// The body, or the refusal of one that is too large or could not be read.
fn read_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Failure> {
    body.map_err(|rejection| {
        let message = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            format!("the body is larger than {MAX_BODY_BYTES} bytes")
        } else {
            rejection.body_text()
        };
        Failure::Refused(ApiError::rejected(rejection.status(), message))
    })
}

/// Answers `result`, reporting a refusal to the daemon first so it is journaled before the
/// sender sees the answer.
async fn answer(
    app: &App,
    source: &str,
    claimed: Option<String>,
    result: Result<Response, Failure>,
) -> Response {
    match result {
        Ok(response) => response,
        Err(Failure::Daemon(error)) => error.into_response(),
        Err(Failure::Refused(error)) => {
            tracing::info!(source, delivery = ?claimed, reason = %error.message, "refused a webhook");
            let report = app
                .daemon
                .webhook_refused(source, claimed, error.message.clone());
            // The refusal stands whether or not the daemon could note it; a stuck daemon must
            // not hold the sender.
            if tokio::time::timeout(app.daemon_timeout, report)
                .await
                .is_err()
            {
                tracing::warn!(
                    source,
                    "the daemon did not journal a webhook refusal in time"
                );
            }
            error.into_response()
        }
    }
}

/// Hands an accepted delivery to the daemon. A delivery id the daemon has already accepted is
/// refused as a replay (409 `duplicate_delivery`).
async fn hand_over(app: &App, delivery: WebhookDelivery) -> Result<WebhookOutcome, Failure> {
    let source = delivery.source().to_owned();
    let id = delivery.delivery().to_owned();
    let outcome = app
        .ask(app.daemon.webhook(delivery))
        .await
        .map_err(Failure::Daemon)?;
    if outcome.duplicate {
        return Err(Failure::Refused(ApiError::duplicate_delivery(&source, &id)));
    }
    Ok(outcome)
}

/// Answers what a verified delivery of GitHub, GitLab or Linear asked for: `ping` at once with
/// 200, an ignored event with 202 without the daemon, a trigger with 202 once the daemon took
/// it.
async fn respond(app: &App, parsed: Parsed) -> Result<Response, Failure> {
    let answer = match parsed {
        Parsed::Ping => {
            let answer = HookAnswer {
                pong: Some(true),
                ..HookAnswer::ok()
            };
            return Ok((StatusCode::OK, Json(answer)).into_response());
        }
        Parsed::Ignored(what) => HookAnswer {
            ignored: Some(what),
            ..HookAnswer::ok()
        },
        Parsed::Trigger(trigger) => {
            let outcome = hand_over(app, WebhookDelivery::Trigger(trigger)).await?;
            HookAnswer {
                duplicate: Some(false),
                task: outcome.task,
                ..HookAnswer::ok()
            }
        }
    };
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}
