//! `POST /hooks/gitlab`: a delivery carrying the GitLab webhook's secret token.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::{Failure, HookAnswer, answer, header_text, read_body, respond};
use crate::app::App;
use crate::auth::TokenDigest;
use crate::error::{ApiError, ErrorEnvelope};
use crate::port::GITLAB_SOURCE;
use crate::webhook::gitlab::{DELIVERY_HEADERS, EVENT_HEADER, TOKEN_HEADER, parse_gitlab};
use crate::webhook::{self, Parsed};

/// Receives a GitLab webhook delivery.
///
/// Checks `X-Gitlab-Token` against the hook's secret token (GitLab sends it verbatim; the
/// comparison takes constant time), requires a delivery id and `X-Gitlab-Event`, and reads the
/// JSON payload. `Issue Hook`, `Note Hook` (and their confidential variants), `Merge Request
/// Hook`, `Pipeline Hook` and `Job Hook` make the daemon poll and reconcile now; other events
/// answer 202 `ignored`. The delivery id is `Idempotency-Key` (GitLab 17.4 and later), else
/// `X-Gitlab-Event-UUID` with a digest of the body; a delivery the daemon already accepted is
/// 409 `duplicate_delivery`. Refusals are journaled. 404 when no secret token is configured.
#[utoipa::path(post, path = "/hooks/gitlab", tag = "webhooks", operation_id = "gitlab",
    params(
        ("X-Gitlab-Token" = String, Header, description = "The webhook's secret token, verbatim"),
        ("Idempotency-Key" = Option<String>, Header, description = "The delivery id, the same \
            on GitLab's retries (GitLab 17.4 and later); the replay key"),
        ("X-Gitlab-Event-UUID" = Option<String>, Header, description = "Without \
            `Idempotency-Key`: the event's UUID, which with a digest of the body is the \
            delivery id; one of the two is required"),
        ("X-Gitlab-Event" = String, Header, description = "`Issue Hook`, `Note Hook`, \
            `Merge Request Hook`, `Pipeline Hook`, `Job Hook`, ..."),
    ),
    request_body(content = Object, description = "GitLab's webhook payload for the event"),
    responses(
        (status = 202, description = "Triggered (`{ok, duplicate: false}`) or ignored \
            (`{ok, ignored}`)", body = HookAnswer),
        (status = 400, description = "`invalid_request`: a missing header or a payload that \
            is not a JSON object", body = ErrorEnvelope),
        (status = 401, description = "`unauthorized`: a missing or wrong secret token",
            body = ErrorEnvelope),
        (status = 404, description = "`not_found`: no GitLab webhook secret is configured",
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
    let Some(token) = app.gitlab_token.clone() else {
        return ApiError::not_found().into_response();
    };
    // The header as sent: the id proper needs the body, which may be what was refused.
    let claimed = DELIVERY_HEADERS
        .iter()
        .find_map(|name| header_text(&headers, name))
        .and_then(|value| webhook::claimed_delivery(Some(value)));
    let result = match classify(&token, &headers, body) {
        Ok(parsed) => respond(&app, parsed).await,
        Err(failure) => Err(failure),
    };
    answer(&app, GITLAB_SOURCE, claimed, result).await
}

/// What the request asks for, once it is shown to come from GitLab.
fn classify(
    token: &TokenDigest,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Parsed, Failure> {
    let body = read_body(body)?;
    webhook::gitlab::verify_token(token, header_text(headers, TOKEN_HEADER))?;
    let delivery = webhook::gitlab::delivery(|name| header_text(headers, name), &body)?;
    let event = webhook::event_name(header_text(headers, EVENT_HEADER), EVENT_HEADER)?;
    let payload = webhook::json_object(&event, &body)?;
    Ok(parse_gitlab(&event, &delivery, &payload))
}
