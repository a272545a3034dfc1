//! `POST /hooks/linear`: a delivery signed with the Linear webhook's signing secret.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::{Failure, HookAnswer, answer, header_text, read_body, respond};
use crate::app::App;
use crate::error::{ApiError, ErrorEnvelope};
use crate::port::LINEAR_SOURCE;
use crate::time::now_ms;
use crate::webhook::linear::{DELIVERY_HEADER, EVENT_HEADER, SIGNATURE, check_fresh, parse_linear};
use crate::webhook::{self, Parsed};

/// Receives a Linear webhook delivery.
///
/// Checks `Linear-Signature` (hex HMAC-SHA256 of the raw body with the webhook's signing
/// secret), then the signed `webhookTimestamp`: a delivery sent more than 60 s before (or
/// after) this server's clock is refused as a possible replay. Requires `Linear-Delivery`.
/// `Issue`, `Comment` and `IssueLabel` changes (the body's `type`, else `Linear-Event`) make
/// the daemon poll and reconcile now; other types answer 202 `ignored`. The delivery id is the
/// replay key within the minute: a delivery the daemon already accepted is 409
/// `duplicate_delivery`. Refusals are journaled. 404 when no signing secret is configured.
#[utoipa::path(post, path = "/hooks/linear", tag = "webhooks", operation_id = "linear",
    params(
        ("Linear-Signature" = String, Header, description = "`<hex HMAC-SHA256 of the body>`"),
        ("Linear-Delivery" = String, Header, description = "The delivery id (UUID), the \
            replay key"),
        ("Linear-Event" = Option<String>, Header, description = "The entity type (`Issue`, \
            `Comment`, `IssueLabel`, ...); the body's `type` wins"),
    ),
    request_body(content = Object, description = "Linear's webhook payload, with \
        `webhookTimestamp` (Unix ms)"),
    responses(
        (status = 202, description = "Triggered (`{ok, duplicate: false}`) or ignored \
            (`{ok, ignored}`)", body = HookAnswer),
        (status = 400, description = "`invalid_request`: a missing header, a payload that is \
            not a JSON object, or no `webhookTimestamp`", body = ErrorEnvelope),
        (status = 401, description = "`unauthorized`: a missing or wrong signature, or a \
            `webhookTimestamp` more than 60 s off", body = ErrorEnvelope),
        (status = 404, description = "`not_found`: no Linear webhook secret is configured",
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
    let Some(secret) = app.linear_secret.clone() else {
        return ApiError::not_found().into_response();
    };
    let claimed = webhook::claimed_delivery(header_text(&headers, DELIVERY_HEADER));
    let result = match classify(&secret, &headers, body) {
        Ok(parsed) => respond(&app, parsed).await,
        Err(failure) => Err(failure),
    };
    answer(&app, LINEAR_SOURCE, claimed, result).await
}

/// What the request asks for, once it is shown to come from Linear, lately.
fn classify(
    secret: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Parsed, Failure> {
    let body = read_body(body)?;
    webhook::verify_hmac(
        &SIGNATURE,
        secret,
        &body,
        header_text(headers, SIGNATURE.header),
    )?;
    let payload = webhook::json_object("Linear", &body)?;
    check_fresh(&payload, now_ms())?;
    let delivery = webhook::delivery_id(header_text(headers, DELIVERY_HEADER), DELIVERY_HEADER)?;
    let event = webhook::linear::event(&payload, header_text(headers, EVENT_HEADER))?;
    Ok(parse_linear(&event, &delivery, &payload))
}
