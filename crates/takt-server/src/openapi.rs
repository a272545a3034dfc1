//! The OpenAPI document, derived from the handlers and their types.
//!
//! `docs/openapi.json` is this document as committed; a test fails when they differ
//! (regenerate with `TAKT_UPDATE_OPENAPI=1 cargo test -p takt-server`).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{artifacts, commands, cost, health, hooks, symphony, tasks};
use crate::{error, metrics, schemas, sse};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "takt API",
        description = "Symphony's /api/v1 status endpoints, takt's task, evidence, review and \
            answer endpoints, a resumable SSE stream of journal events, and Prometheus metrics. \
            Requests that change state need `Authorization: Bearer <token>` when a token is \
            configured; reads need it too when the server listens beyond loopback. Errors use \
            the envelope `{\"error\": {\"code\", \"message\"}}`. The webhooks under \
            `/hooks/` authenticate with their own credentials (GitHub's and Linear's signatures, \
            GitLab's secret token, the generic hook token) instead of the API token.",
        license(name = "Apache-2.0"),
    ),
    paths(
        symphony::get_state,
        symphony::get_issue,
        symphony::post_refresh,
        tasks::list_tasks,
        tasks::create_task,
        tasks::get_task,
        tasks::task_events,
        tasks::task_evidence,
        commands::cancel,
        commands::retry,
        commands::approve,
        commands::reject,
        commands::answer,
        artifacts::get_artifact,
        cost::cost,
        health::health,
        sse::events,
        metrics::metrics,
        hooks::github::receive,
        hooks::gitlab::receive,
        hooks::linear::receive,
        hooks::generic::receive,
    ),
    components(schemas(
        error::ErrorEnvelope,
        schemas::TaskSummary,
        schemas::Issue,
        schemas::JournalEntry,
        schemas::VerificationReport,
        schemas::RiskAssessment,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "symphony", description = "Symphony's endpoints, with its exact field names"),
        (name = "tasks", description = "takt's tasks"),
        (name = "commands", description = "Operator commands on a task"),
        (name = "evidence", description = "Stored artifacts"),
        (name = "events", description = "The journal as Server-Sent Events"),
        (name = "meta", description = "Health, cost and metrics"),
        (name = "webhooks", description = "Triggers from GitHub, GitLab, Linear and other \
            systems"),
    ),
)]
struct ApiDoc;

/// Declares the bearer schemes the `security` of endpoints names: the API token (`bearer`)
/// and the generic webhook's token (`generic_webhook`).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            for name in ["bearer", "generic_webhook"] {
                components.add_security_scheme(
                    name,
                    SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
                );
            }
        }
    }
}

/// The OpenAPI 3.1 document of this API, pretty-printed, with a trailing newline.
pub fn openapi_json() -> String {
    let mut document = ApiDoc::openapi();
    // The version of the crate that serves it, not of whatever built the generator.
    document.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let mut json = document.to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}
