//! `takt run`: the daemon.

use std::path::Path;

use anyhow::Result;

use super::output::{self, outln};
use crate::daemon::{Daemon, Mode};
use crate::exit::Code;
use crate::project::Project;

pub async fn run(workflow: Option<&Path>, once: bool, json: bool) -> Result<Code> {
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
    let daemon = Daemon::start(project, Mode::Daemon).await?;
    let summary = daemon.run(once, shutdown).await?;
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
