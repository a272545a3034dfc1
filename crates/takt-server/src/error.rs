//! Errors: [`ServerError`] for whoever starts the server, [`ApiError`] for HTTP clients.
//!
//! Every error a client sees uses Symphony's envelope:
//! `{"error": {"code": "...", "message": "..."}}`, with a stable snake_case `code` to branch on
//! and a `message` for people.

use std::net::SocketAddr;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::port::PortError;

/// Why the server did not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// [`crate::check_bind`] or [`crate::serve`] was given an address other machines can reach
    /// and no token: anyone on the network could approve and cancel work. Not retryable: bind a
    /// loopback address or configure a token.
    #[error(
        "refusing to serve the API on {addr} without a token: that address is reachable from \
         other machines, and anyone there could approve, reject and cancel tasks; bind \
         127.0.0.1 (the default) or set a token"
    )]
    TokenRequired { addr: SocketAddr },
    /// The configured token is empty or whitespace, which would let `Authorization: Bearer `
    /// through. Not retryable: set a real token or none.
    #[error("the API token is blank; set a non-empty token or none")]
    BlankToken,
    /// A configured webhook secret (`github`, `gitlab`, `linear`) or token (`generic`) is
    /// empty or whitespace: anyone could sign a delivery or present the token. Not retryable:
    /// set a real secret or none (which turns the hook off).
    #[error("the {hook} webhook secret is blank; set a non-empty secret or none")]
    BlankWebhookSecret { hook: &'static str },
    /// The listener's own address could not be read (the socket is unusable).
    #[error("could not read the listener's address: {0}")]
    LocalAddr(#[source] std::io::Error),
    /// The HTTP server failed while serving.
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// The error envelope every failing request answers with.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// The inside of the envelope.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case code: `not_found`, `method_not_allowed`, `issue_not_found`,
    /// `task_not_found`, `not_verified`, `artifact_not_found`, `invalid_request`,
    /// `unauthorized`, `forbidden_origin`, `forbidden_csrf`, `refused`, `duplicate_delivery`, `snapshot_unavailable`,
    /// `orchestrator_unavailable`, `orchestrator_timeout`, `internal_error`.
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
}

/// An error answer: status, code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn not_found() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such endpoint; docs/api.md lists them",
        )
    }

    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this endpoint does not take that method; the Allow header lists the ones it takes",
        )
    }

    pub fn issue_not_found(identifier: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "issue_not_found",
            format!("no issue {identifier} is known to the orchestrator"),
        )
    }

    pub fn task_not_found(reference: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "task_not_found",
            format!("no task {reference}: GET /api/v1/tasks lists the known tasks"),
        )
    }

    pub fn not_verified(message: String) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_verified", message)
    }

    pub fn artifact_not_found(hash: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "artifact_not_found",
            format!("no artifact {hash} is stored"),
        )
    }

    /// A request axum could not even read (a malformed path, an oversized body): its status,
    /// in the envelope.
    pub fn rejected(status: StatusCode, message: String) -> ApiError {
        ApiError::new(status, "invalid_request", message)
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this request needs the API token: send `Authorization: Bearer <token>`",
        )
    }

    /// A webhook request without valid credentials: `message` says which (the signature, the
    /// hook token). 401 `unauthorized`, like the API token.
    pub fn hook_unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// A webhook delivery id the daemon has already accepted: a replay or a redelivery.
    pub fn duplicate_delivery(source: &str, delivery: &str) -> ApiError {
        ApiError::new(
            StatusCode::CONFLICT,
            "duplicate_delivery",
            format!(
                "the {source} delivery {delivery} was already accepted; it is not processed again"
            ),
        )
    }

    pub fn forbidden_origin() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            "a page from another origin may not change state here; configure an API token to \
             allow cross-origin clients",
        )
    }

    /// A dashboard form without this server's CSRF value: not made by one of its pages.
    pub fn forbidden_csrf() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden_csrf",
            "this form did not come from the dashboard (its CSRF field is missing or stale); \
             reload the page and try again",
        )
    }

    pub fn orchestrator_timeout(waited: std::time::Duration) -> ApiError {
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "orchestrator_timeout",
            format!(
                "the daemon did not answer within {} ms; a command may still be applied, so \
                 read the task before repeating it",
                waited.as_millis()
            ),
        )
    }

    pub fn snapshot_unavailable() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "snapshot_unavailable",
            "the orchestrator has not published its state (it is starting or stopped); retry \
             shortly",
        )
    }
}

impl From<PortError> for ApiError {
    fn from(error: PortError) -> ApiError {
        match error {
            PortError::Refused(message) => ApiError::new(StatusCode::CONFLICT, "refused", message),
            PortError::Invalid(message) => ApiError::invalid(message),
            PortError::Unavailable(message) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "orchestrator_unavailable",
                message,
            ),
            PortError::Internal(message) => {
                tracing::error!(error = %message, "the daemon failed to answer an API request");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
            }
        }
    }
}

impl ApiError {
    pub fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            error: ErrorBody {
                code: self.code.to_owned(),
                message: self.message.clone(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.envelope())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"takt\""),
            );
        }
        response
    }
}
