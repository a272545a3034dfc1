//! `takt run`: the daemon.

use std::path::Path;

use anyhow::{Context, Result};

use super::output::{self, outln};
use crate::daemon::{Daemon, Mode};
use crate::exit::Code;
use crate::project::Project;

pub async fn run(
    workflow: Option<&Path>,
    once: bool,
    port: Option<u16>,
    json: bool,
) -> Result<Code> {
    let shutdown = shutdown_signal()?;
    let project = Project::locate(workflow)?;
    for warning in &project.workflow.warnings {
        tracing::warn!("{warning}");
    }
    tracing::info!(
        workflow = %project.workflow.path.display(),
        state = %project.state_dir.display(),
        "takt starting"
    );
    let server = project.workflow.server.clone();
    let state_dir = project.state_dir.clone();
    let mut daemon = Daemon::start(project, Mode::Daemon).await?;
    // the CLI's port wins over `server.port`.
    if let Some(port) = port.or(server.port) {
        let token = secret("token", server.token.as_ref())?;
        let github = secret(
            "github_webhook_secret",
            server.github_webhook_secret.as_ref(),
        )?;
        let gitlab = secret(
            "gitlab_webhook_secret",
            server.gitlab_webhook_secret.as_ref(),
        )?;
        let linear = secret(
            "linear_webhook_secret",
            server.linear_webhook_secret.as_ref(),
        )?;
        let generic = secret("webhook_token", server.webhook_token.as_ref())?;
        let listener = bind_api(&server.host, port, token.as_deref()).await?;
        let addr = listener.local_addr()?;
        fs_err::write(state_dir.join(API_ADDR_FILE), format!("{addr}\n"))?;
        tracing::info!(%addr, "HTTP API listening on http://{addr}/api/v1/state");
        let mut config = takt_server::ServerConfig::with_token(token);
        config.github_webhook_secret = github;
        config.gitlab_webhook_secret = gitlab;
        config.linear_webhook_secret = linear;
        config.generic_webhook_token = generic;
        daemon.serve_api(listener, config)?;
    }
    let summary = daemon.run(once, shutdown).await?;
    let _ = fs_err::remove_file(state_dir.join(API_ADDR_FILE));
    if once {
        if json {
            output::json(&summary.tasks)?;
        } else {
            for task in &summary.tasks {
                outln!(
                    "{}  {}  {}",
                    task.identifier,
                    task.state,
                    output::sanitize(&task.title)
                );
            }
        }
    }
    Ok(Code::Success)
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, so a signal
/// that arrives while the daemon is still starting is not lost (nor fatal).
pub fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

/// Where a running daemon's API address is written (`.takt/api.addr`).
pub const API_ADDR_FILE: &str = "api.addr";

/// Binds the API's listener, refusing a non-loopback address without a token before anything
/// listens.
async fn bind_api(host: &str, port: u16, token: Option<&str>) -> Result<tokio::net::TcpListener> {
    let ip: std::net::IpAddr = host.parse().with_context(|| {
        format!("server.host {host:?} is not an IP address; write one such as 127.0.0.1")
    })?;
    let addr = std::net::SocketAddr::new(ip, port);
    takt_server::check_bind(addr, token)
        .with_context(|| format!("the HTTP API cannot listen on {addr}"))?;
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the HTTP API to {addr}"))
}

/// A `server` secret's value; a secret WORKFLOW.md names but the environment lacks stops the
/// daemon rather than serving without it.
fn secret(key: &str, secret: Option<&takt_workflow::SecretRef>) -> Result<Option<String>> {
    match secret {
        None => Ok(None),
        Some(takt_workflow::SecretRef {
            value: Some(value), ..
        }) => Ok(Some(value.clone())),
        Some(takt_workflow::SecretRef { var, value: None }) => anyhow::bail!(
            "server.{key} names ${var}, which is not set: export {var} before `takt run`, or \
             remove `server.{key}`"
        ),
    }
}
