//! Webhooks: `POST /hooks/github` (a signed GitHub delivery triggers a poll now) and
//! `POST /hooks/generic` (a token-bearing sender creates a local task).
//!
//! Each hook exists only when its secret or token is configured (404 `not_found` otherwise),
//! authenticates the request itself (the API token's rules do not apply, see `auth`), and
//! hands the delivery to the daemon, which deduplicates it by (source, delivery id) durably.
//! Every refusal (credentials, replay, missing header, malformed or oversized body) is
//! reported to the daemon through [`DaemonPort::webhook_refused`] so it is journaled; failures
//! of the daemon itself (503, 504) are not refusals and are not reported.
//!
//! [`DaemonPort::webhook_refused`]: crate::port::DaemonPort::webhook_refused

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use takt_protocol::Issue;
use utoipa::ToSchema;

use crate::app::App;
use crate::auth::bearer;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{json_body, required_text};
use crate::port::{GENERIC_SOURCE, GITHUB_SOURCE, NewTask, WebhookDelivery};
use crate::routes::tasks::{check_priority, cleaned};
use crate::schemas;
use crate::webhook::{
    self, DELIVERY_HEADER, EVENT_HEADER, GENERIC_DELIVERY_HEADERS, GithubDelivery, HookError,
    SIGNATURE_HEADER,
};

pub const GITHUB_PATH: &str = "/hooks/github";
pub const GENERIC_PATH: &str = "/hooks/generic";
/// Largest body a hook reads. GitHub's issue and pull request payloads are tens of KiB; a
/// generic task is a title and a description. More is refused before it is buffered whole.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The author of tasks created through the generic hook (separation of duties then keeps
/// whoever approves from being the hook).
pub const GENERIC_AUTHOR: &str = "webhook:generic";

/// Whether `path` is a hook, which authenticates itself.
pub fn is_hook_path(path: &str) -> bool {
    path == GITHUB_PATH || path == GENERIC_PATH
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
    /// The event (`push`) or event and action (`issues.assigned`) that takt does not act on.
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
        Failure::Refused(match error {
            HookError::MissingSignature
            | HookError::MalformedSignature
            | HookError::BadSignature => ApiError::hook_unauthorized(message),
            HookError::MissingHeader(_) | HookError::BadHeader(_) | HookError::Malformed { .. } => {
                ApiError::invalid(message)
            }
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

/// Receives a GitHub webhook delivery.
///
/// Checks `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with the hook's secret), requires
/// `X-GitHub-Delivery` and `X-GitHub-Event`, and reads the JSON payload (the hook's content
/// type may be `application/json` or `application/x-www-form-urlencoded`). `issues`
/// (opened, reopened, edited, labeled, unlabeled, closed), `issue_comment` (created),
/// `pull_request` (opened, synchronize, closed, reopened) and `check_suite` (completed) make
/// the daemon poll and reconcile now; `ping` answers 200 `pong`; other events and actions
/// answer 202 `ignored`. The delivery id is the replay key: a delivery the daemon already
/// accepted is 409 `duplicate_delivery`. Refusals are journaled. 404 when no secret is
/// configured.
#[utoipa::path(post, path = "/hooks/github", tag = "webhooks",
    params(
        ("X-Hub-Signature-256" = String, Header, description = "`sha256=<hex HMAC-SHA256 of the body>`"),
        ("X-GitHub-Delivery" = String, Header, description = "The delivery id (GUID), the replay key"),
        ("X-GitHub-Event" = String, Header, description = "`issues`, `issue_comment`, `pull_request`, `check_suite`, `ping`, ..."),
    ),
    request_body(content = Object, description = "GitHub's webhook payload for the event"),
    responses(
        (status = 200, description = "`ping`: `{ok, pong: true}`", body = HookAnswer),
        (status = 202, description = "Triggered (`{ok, duplicate: false}`) or ignored \
            (`{ok, ignored}`)", body = HookAnswer),
        (status = 400, description = "`invalid_request`: a missing header or a malformed \
            payload", body = ErrorEnvelope),
        (status = 401, description = "`unauthorized`: a missing or wrong signature",
            body = ErrorEnvelope),
        (status = 404, description = "`not_found`: no GitHub webhook secret is configured",
            body = ErrorEnvelope),
        (status = 409, description = "`duplicate_delivery`: this delivery id was already \
            accepted", body = ErrorEnvelope),
        (status = 413, description = "`invalid_request`: the body is over 1 MiB",
            body = ErrorEnvelope),
        (status = 503, description = "`orchestrator_unavailable`", body = ErrorEnvelope),
    ))]
pub async fn github(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(secret) = app.github_secret.clone() else {
        return ApiError::not_found().into_response();
    };
    let claimed = webhook::claimed_delivery(header_text(&headers, DELIVERY_HEADER));
    let result = github_delivery(&app, &secret, &headers, body).await;
    answer(&app, GITHUB_SOURCE, claimed, result).await
}

async fn github_delivery(
    app: &App,
    secret: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Failure> {
    let body = read_body(body)?;
    // Authenticity first: nothing else about an unsigned request is worth reading.
    webhook::verify_signature(secret, &body, header_text(headers, SIGNATURE_HEADER))?;
    let delivery = webhook::delivery_id(header_text(headers, DELIVERY_HEADER), DELIVERY_HEADER)?;
    let event = header_text(headers, EVENT_HEADER)
        .map(str::trim)
        .filter(|event| !event.is_empty())
        .ok_or(HookError::MissingHeader(EVENT_HEADER))?;
    let payload = webhook::json_payload(header_text(headers, header::CONTENT_TYPE.as_str()), &body);
    let trigger = match webhook::parse_github(event, &delivery, &payload)? {
        GithubDelivery::Ping => {
            let answer = HookAnswer {
                pong: Some(true),
                ..HookAnswer::ok()
            };
            return Ok((StatusCode::OK, Json(answer)).into_response());
        }
        GithubDelivery::Ignored(what) => {
            let answer = HookAnswer {
                ignored: Some(what),
                ..HookAnswer::ok()
            };
            return Ok((StatusCode::ACCEPTED, Json(answer)).into_response());
        }
        GithubDelivery::Trigger(trigger) => trigger,
    };
    let outcome = app
        .ask(app.daemon.webhook(WebhookDelivery::Trigger(trigger)))
        .await
        .map_err(Failure::Daemon)?;
    if outcome.duplicate {
        return Err(Failure::Refused(ApiError::duplicate_delivery(
            GITHUB_SOURCE,
            &delivery,
        )));
    }
    let answer = HookAnswer {
        duplicate: Some(false),
        task: outcome.task,
        ..HookAnswer::ok()
    };
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

/// `POST /hooks/generic`'s body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenericHookRequest {
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
}

/// Creates a local task from another system's webhook.
///
/// Needs `Authorization: Bearer <generic webhook token>` (not the API token) and a delivery id
/// in `Idempotency-Key` or `X-Delivery-Id`: a delivery id the daemon already accepted is 409
/// `duplicate_delivery` and creates nothing, so a sender may retry safely. Answers 201 with the
/// task; the daemon polls at once. Refusals are journaled. 404 when no token is configured.
#[utoipa::path(post, path = "/hooks/generic", tag = "webhooks",
    security(("generic_webhook" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "The delivery id (or \
            `X-Delivery-Id`); required"),
    ),
    request_body = GenericHookRequest,
    responses(
        (status = 201, description = "Created: `{ok, duplicate: false, task}`", body = HookAnswer),
        (status = 400, description = "`invalid_request`: no delivery id, or an invalid body",
            body = ErrorEnvelope),
        (status = 401, description = "`unauthorized`: a missing or wrong hook token",
            body = ErrorEnvelope),
        (status = 404, description = "`not_found`: no generic webhook token is configured",
            body = ErrorEnvelope),
        (status = 409, description = "`duplicate_delivery`: this delivery id was already \
            accepted; `refused`: the tracker cannot create issues", body = ErrorEnvelope),
        (status = 413, description = "`invalid_request`: the body is over 1 MiB",
            body = ErrorEnvelope),
        (status = 503, description = "`orchestrator_unavailable`", body = ErrorEnvelope),
    ))]
pub async fn generic(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(token) = app.generic_token.clone() else {
        return ApiError::not_found().into_response();
    };
    let delivery = generic_delivery_id(&headers);
    let claimed = delivery.as_ref().ok().cloned();
    let result = async {
        if !bearer(&headers).is_some_and(|presented| token.matches(presented)) {
            return Err(Failure::Refused(ApiError::hook_unauthorized(
                "this hook needs its token: send `Authorization: Bearer <generic webhook token>`",
            )));
        }
        let body = read_body(body)?;
        let delivery = delivery?;
        generic_task(&app, delivery, &body).await
    }
    .await;
    answer(&app, GENERIC_SOURCE, claimed, result).await
}

/// The first delivery id header present, checked.
fn generic_delivery_id(headers: &HeaderMap) -> Result<String, HookError> {
    let [preferred, alternative] = GENERIC_DELIVERY_HEADERS;
    match (
        header_text(headers, preferred),
        header_text(headers, alternative),
    ) {
        (Some(value), _) => webhook::delivery_id(Some(value), preferred),
        (None, Some(value)) => webhook::delivery_id(Some(value), alternative),
        (None, None) => Err(HookError::MissingHeader(
            "idempotency-key (or x-delivery-id)",
        )),
    }
}

async fn generic_task(app: &App, delivery: String, body: &Bytes) -> Result<Response, Failure> {
    let request: GenericHookRequest = json_body(body).map_err(Failure::Refused)?;
    let title = required_text(request.title, "title").map_err(Failure::Refused)?;
    check_priority(request.priority).map_err(Failure::Refused)?;
    let task = NewTask {
        title,
        body: request.body.filter(|body| !body.trim().is_empty()),
        priority: request.priority,
        labels: cleaned(request.labels),
        blocked_by: Vec::new(),
        author: GENERIC_AUTHOR.to_owned(),
    };
    let delivery_id = delivery.clone();
    let outcome = app
        .ask(app.daemon.webhook(WebhookDelivery::Task {
            delivery,
            source: GENERIC_SOURCE.to_owned(),
            task,
        }))
        .await
        .map_err(Failure::Daemon)?;
    if outcome.duplicate {
        return Err(Failure::Refused(ApiError::duplicate_delivery(
            GENERIC_SOURCE,
            &delivery_id,
        )));
    }
    // A daemon that created the task says which; without it the delivery was still accepted.
    let status = if outcome.task.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    let answer = HookAnswer {
        duplicate: Some(false),
        task: outcome.task,
        ..HookAnswer::ok()
    };
    Ok((status, Json(answer)).into_response())
}
