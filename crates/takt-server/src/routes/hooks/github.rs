//! `POST /hooks/github`: a delivery signed with the GitHub webhook secret.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::{Failure, HookAnswer, answer, header_text, read_body, respond};
use crate::app::App;
use crate::error::{ApiError, ErrorEnvelope};
use crate::port::GITHUB_SOURCE;
use crate::webhook::github::{
    DELIVERY_HEADER, EVENT_HEADER, SIGNATURE, json_payload, parse_github,
};
use crate::webhook::{self, Parsed};

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
#[utoipa::path(post, path = "/hooks/github", tag = "webhooks", operation_id = "github",
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
pub async fn receive(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(secret) = app.github_secret.clone() else {
        return ApiError::not_found().into_response();
    };
    let claimed = webhook::claimed_delivery(header_text(&headers, DELIVERY_HEADER));
    let result = match classify(&secret, &headers, body) {
        Ok(parsed) => respond(&app, parsed).await,
        Err(failure) => Err(failure),
    };
    answer(&app, GITHUB_SOURCE, claimed, result).await
}

/// What the request asks for, once it is shown to come from GitHub.
fn classify(
    secret: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Parsed, Failure> {
    let body = read_body(body)?;
    // Authenticity first: nothing else about an unsigned request is worth reading.
    webhook::verify_hmac(
        &SIGNATURE,
        secret,
        &body,
        header_text(headers, SIGNATURE.header),
    )?;
    let delivery = webhook::delivery_id(header_text(headers, DELIVERY_HEADER), DELIVERY_HEADER)?;
    let event = webhook::event_name(header_text(headers, EVENT_HEADER), EVENT_HEADER)?;
    let payload = json_payload(header_text(headers, header::CONTENT_TYPE.as_str()), &body);
    Ok(parse_github(&event, &delivery, &payload)?)
}
