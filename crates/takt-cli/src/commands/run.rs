//! `takt run`: the daemon.

use std::path::Path;

use anyhow::Result;

use super::output;
use crate::daemon::{Daemon, Mode};
use crate::exit::Code;
use crate::project::Project;

pub async fn run(workflow: Option<&Path>, once: bool, json: bool) -> Result<Code> {
    let project = Project::locate(workflow)?;
    for warning in &project.workflow.warnings {
        tracing::warn!("{warning}");
    }
    tracing::info!(
        workflow = %project.workflow.path.display(),
        state = %project.state_dir.display(),
        "takt starting"
    );
    let daemon = Daemon::start(project, Mode::Daemon).await?;
    let summary = daemon.run(once, shutdown_signal()).await?;
    if once {
        if json {
            output::json(&summary.tasks)?;
        } else {
            for task in &summary.tasks {
                println!("{}  {}  {}", task.identifier, task.state, task.title);
            }
        }
    }
    Ok(Code::Success)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
