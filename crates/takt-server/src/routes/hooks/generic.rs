//! `POST /hooks/generic`: a sender holding the generic webhook token creates a local task.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Failure, HookAnswer, answer, hand_over, header_text, read_body};
use crate::app::App;
use crate::auth::bearer;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{json_body, required_text};
use crate::port::{GENERIC_SOURCE, NewTask, WebhookDelivery};
use crate::routes::tasks::{check_priority, cleaned};
use crate::webhook::{self, GENERIC_DELIVERY_HEADERS};

/// The author of tasks created through the generic hook (separation of duties then keeps
/// whoever approves from being the hook).
pub const GENERIC_AUTHOR: &str = "webhook:generic";

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
#[utoipa::path(post, path = "/hooks/generic", tag = "webhooks", operation_id = "generic",
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
pub async fn receive(
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
fn generic_delivery_id(headers: &HeaderMap) -> Result<String, webhook::HookError> {
    webhook::first_delivery_id(
        |name| header_text(headers, name),
        &GENERIC_DELIVERY_HEADERS,
        "idempotency-key (or x-delivery-id)",
    )
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
    let outcome = hand_over(
        app,
        WebhookDelivery::Task {
            delivery,
            source: GENERIC_SOURCE.to_owned(),
            task,
        },
    )
    .await?;
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
