//! Operator commands (approve, reject, answer, cancel, retry). They go through the daemon's
//! inbox so that the daemon stays the only journal writer; with no daemon running, this
//! process takes the state lock and applies them itself.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};
use takt_core::OperatorCommand;
use takt_protocol::TaskState;
use takt_store::StateLock;

use super::output::{self, outln};
use crate::clock::now_ms;
use crate::daemon::{Daemon, Mode, wake};
use crate::engine::load_state;
use crate::exit::Code;
use crate::project::Project;

const ANSWER_WAIT: Duration = Duration::from_secs(30);
const MERGE_WAIT: Duration = Duration::from_secs(120);

pub async fn send(workflow: Option<&Path>, command: OperatorCommand, json: bool) -> Result<Code> {
    let project = Project::locate(workflow)?;
    let store = project.store().await?;
    let kind = match &command {
        OperatorCommand::Approve { .. } => "approve",
        OperatorCommand::Reject { .. } => "reject",
        OperatorCommand::Cancel { .. } => "cancel",
        OperatorCommand::Answer { .. } => "answer",
        OperatorCommand::Retry { .. } => "retry",
    };
    if let OperatorCommand::Cancel { task, .. } = &command
        && let Some(code) = cancel_unstarted(&project, &store, task, json).await?
    {
        return Ok(code);
    }
    let id = store
        .enqueue_command(kind, serde_json::to_value(&command)?, now_ms())
        .await?;
    let daemon_running = StateLock::holder(&project.state_dir).is_some();
    if daemon_running {
        wake(&project.state_dir, "inbox").await;
    } else {
        let workflow = project.workflow.clone();
        let mut inline = Daemon::start(Project::from_workflow(workflow), Mode::Inline).await?;
        inline.settle_inbox().await?;
    }
    let result = wait_for_result(&store, id).await?;
    let ok = result.get("ok").and_then(serde_json::Value::as_bool) == Some(true);
    if !ok {
        let message = result
            .get("message")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("refused");
        if json {
            output::json(&result)?;
        } else {
            eprintln!("refused: {message}");
        }
        return Ok(Code::Refused);
    }
    // An approval is done when the merge is.
    let task_ref = command.task_ref().to_owned();
    let state = if matches!(command, OperatorCommand::Approve { .. }) {
        wait_while_merging(&store, &task_ref, daemon_running).await?
    } else {
        None
    };
    let after = load_state(&store).await?;
    let task = after.find(&task_ref).map(takt_core::Task::summary);
    if json {
        output::json(&serde_json::json!({"ok": true, "task": task}))?;
    } else if let Some(task) = task {
        let detail = match (state, &task.last_error) {
            (Some(TaskState::Done), _) => format!(
                "merged as {}",
                task.commit
                    .as_deref()
                    .map(|c| &c[..c.len().min(12)])
                    .unwrap_or("?")
            ),
            (_, Some(error)) if task.state == TaskState::AwaitingReview => {
                format!("merge failed: {error}")
            }
            _ => String::new(),
        };
        outln!("{} {kind}: now {} {detail}", task.identifier, task.state);
    }
    Ok(Code::Success)
}

/// A local issue the daemon has not picked up yet has no task to cancel: it is cancelled in
/// the tracker, so it never starts.
async fn cancel_unstarted(
    project: &Project,
    store: &takt_store::Store,
    task: &str,
    json: bool,
) -> Result<Option<Code>> {
    let state = load_state(store).await?;
    if state.find(task).is_some() {
        return Ok(None);
    }
    let Ok(tracker) = project.local_tracker(store) else {
        return Ok(None);
    };
    let Some(issue) = tracker.get(task).await? else {
        return Ok(None);
    };
    let cancelled = project.policy().on_cancel_state;
    let Some(cancelled) = cancelled else {
        return Ok(None);
    };
    if project.workflow.tracker.is_terminal(&issue.state) {
        eprintln!("refused: {} is already {}", issue.identifier, issue.state);
        return Ok(Some(Code::Refused));
    }
    let issue = tracker.set_state(&issue.id, &cancelled, now_ms()).await?;
    if json {
        output::json(&serde_json::json!({"ok": true, "issue": issue}))?;
    } else {
        outln!(
            "{} cancel: now cancelled (it had not started; the issue is {})",
            issue.identifier,
            issue.state
        );
    }
    Ok(Some(Code::Success))
}

async fn wait_for_result(store: &takt_store::Store, id: i64) -> Result<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + ANSWER_WAIT;
    loop {
        if let Some(item) = store.get_command(id).await?
            && let Some(result) = item.result
        {
            return Ok(result);
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "the daemon did not take the command within {} s; it stays queued and is \
                 applied when the daemon next runs",
                ANSWER_WAIT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn wait_while_merging(
    store: &takt_store::Store,
    task: &str,
    daemon_running: bool,
) -> Result<Option<TaskState>> {
    let deadline = tokio::time::Instant::now() + MERGE_WAIT;
    loop {
        let state = load_state(store).await?;
        let current = state.find(task).map(|task| task.state);
        if current != Some(TaskState::Merging) || !daemon_running {
            return Ok(current);
        }
        if tokio::time::Instant::now() > deadline {
            return Ok(current);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
