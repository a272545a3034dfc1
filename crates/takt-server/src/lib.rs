//! takt's HTTP API.
//!
//! Symphony's `/api/v1` endpoints with their exact shapes (`state`, `{issue_identifier}`,
//! `refresh`), takt's task, command, evidence, artifact and cost endpoints, a resumable
//! Server-Sent Events stream of journal entries, Prometheus metrics at `/metrics`, and webhook
//! triggers at `/hooks/github`, `/hooks/gitlab`, `/hooks/linear` and `/hooks/generic`; and a web
//! dashboard at `/` (server-rendered HTML, embedded assets).
//! `docs/api.md` describes every endpoint; `docs/openapi.json` is [`openapi_json`].
//!
//! The server knows the daemon only through the [`DaemonPort`] trait: it reads published
//! [`Snapshot`]s and the journal, and hands operator commands and new tasks to the daemon,
//! which stays the only writer of the journal.
//!
//! ```no_run
//! # async fn start(daemon: std::sync::Arc<dyn takt_server::DaemonPort>) -> Result<(), Box<dyn std::error::Error>> {
//! let addr: std::net::SocketAddr = "127.0.0.1:7070".parse()?;
//! takt_server::check_bind(addr, None)?;
//! let listener = tokio::net::TcpListener::bind(addr).await?;
//! let shutdown = async { let _ = tokio::signal::ctrl_c().await; };
//! takt_server::serve(listener, daemon, takt_server::ServerConfig::default(), shutdown).await?;
//! # Ok(()) }
//! ```
//!
//! Layout: [`port`] (the trait and its types), `server` ([`serve`], [`check_bind`]), `auth`
//! (bearer token, origin check), `routes` (one module per group of endpoints), `symphony`
//! (Symphony's shapes from takt's state), `extract` (reading requests), `sse` (the event
//! stream), `metrics`, `openapi` and `schemas` (the document), `error` (the envelope),
//! `webhook` (credential checks and payload parsing behind `routes::hooks`, one module per
//! sender), `web` (the HTML
//! dashboard, `docs/web.md`).

mod app;
mod auth;
mod error;
mod extract;
mod metrics;
mod openapi;
pub mod port;
mod routes;
mod schemas;
mod server;
mod sse;
mod symphony;
mod time;
mod web;
mod webhook;

pub use error::ServerError;
pub use openapi::openapi_json;
pub use port::{
    DaemonPort, GENERIC_SOURCE, GITHUB_SOURCE, GITLAB_SOURCE, LINEAR_SOURCE, NewTask, PortError,
    RefreshQueued, ScheduleStatus, Snapshot, WebhookDelivery, WebhookOutcome, WebhookTrigger,
};
pub use server::{ServerConfig, check_bind, serve};
