//! `takt task add|list|show`.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use takt_protocol::{TaskState, TaskSummary};
use takt_store::NewIssue;

use super::output::{self, clip, outln, print_table, unseen};
use crate::args::{TaskAddArgs, TaskListArgs};
use crate::clock::now_ms;
use crate::daemon::wake;
use crate::engine::load_state;
use crate::exit::Code;
use crate::project::Project;

pub async fn add(workflow: Option<&Path>, args: TaskAddArgs, json: bool) -> Result<Code> {
    let project = Project::locate(workflow)?;
    let store = project.store().await?;
    let tracker = project.local_tracker(&store)?;
    let description = match (&args.body, &args.body_file) {
        (Some(body), _) => Some(body.clone()),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the task body from stdin")?;
            Some(text)
        }
        (None, Some(path)) => {
            Some(fs_err::read_to_string(path).context("reading the task body file")?)
        }
        (None, None) => None,
    };
    let issue = tracker
        .create_issue(
            NewIssue {
                title: args.title,
                description,
                priority: args.priority,
                labels: args.labels,
                blocked_by: args.blocked_by,
                state: None,
                author: Some(super::operator()),
            },
            now_ms(),
        )
        .await?;
    // A running daemon dispatches at once instead of at its next poll.
    wake(&project.state_dir, "poll").await;
    if json {
        output::json(&issue)?;
    } else {
        outln!(
            "Added {}: {}",
            issue.identifier,
            output::sanitize(&issue.title)
        );
    }
    Ok(Code::Success)
}

/// Every task the daemon knows, plus local issues it has not picked up yet.
pub async fn summaries(project: &Project) -> Result<Vec<TaskSummary>> {
    let store = project.store().await?;
    let state = load_state(&store).await?;
    let mut rows: Vec<TaskSummary> = state.tasks.values().map(takt_core::Task::summary).collect();
    if let Ok(tracker) = project.local_tracker(&store) {
        for issue in tracker.list(None).await? {
            if !state.tasks.contains_key(&issue.id) {
                let closed = project.workflow.tracker.is_terminal(&issue.state);
                rows.push(unseen(issue, closed));
            }
        }
    }
    rows.sort_by_key(|row| natural_key(&row.identifier));
    Ok(rows)
}

/// `TAKT-10` after `TAKT-9`.
fn natural_key(identifier: &str) -> (String, u64) {
    match identifier.rsplit_once('-') {
        Some((prefix, number)) => (prefix.to_owned(), number.parse().unwrap_or(u64::MAX)),
        None => (identifier.to_owned(), 0),
    }
}

pub async fn list(workflow: Option<&Path>, args: &TaskListArgs, json: bool) -> Result<Code> {
    let project = Project::locate(workflow)?;
    let wanted: Vec<TaskState> = args
        .states
        .iter()
        .map(|name| parse_state(name))
        .collect::<Result<_>>()?;
    let rows: Vec<TaskSummary> = summaries(&project)
        .await?
        .into_iter()
        .filter(|row| wanted.is_empty() || wanted.contains(&row.state))
        .collect();
    if json {
        output::json(&rows)?;
        return Ok(Code::Success);
    }
    if rows.is_empty() {
        outln!("No tasks. Add one with `takt task add --title \"...\"`.");
        return Ok(Code::Success);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            vec![
                row.identifier.clone(),
                row.state.to_string(),
                row.tracker_state.clone(),
                row.attempt.to_string(),
                clip(&output::sanitize(&row.title), 50),
                clip(
                    &output::sanitize(row.last_error.as_deref().unwrap_or("")),
                    60,
                ),
            ]
        })
        .collect();
    print_table(
        &["ID", "STATE", "TRACKER", "ATTEMPTS", "TITLE", "LAST ERROR"],
        &table,
    );
    Ok(Code::Success)
}

fn parse_state(name: &str) -> Result<TaskState> {
    TaskState::ALL
        .into_iter()
        .find(|state| state.as_str() == name.trim().to_lowercase())
        .with_context(|| {
            let names: Vec<&str> = TaskState::ALL.iter().map(|state| state.as_str()).collect();
            format!("unknown state `{name}`; use one of: {}", names.join(", "))
        })
}

/// `takt task events ID`: the task's journal entries, oldest first.
pub async fn events(workflow: Option<&Path>, id: &str, json: bool) -> Result<Code> {
    let project = Project::locate(workflow)?;
    let Some(task) = summaries(&project)
        .await?
        .into_iter()
        .find(|row| row.id == id || row.identifier.eq_ignore_ascii_case(id))
    else {
        anyhow::bail!("no task {id}: `takt task list` shows the known tasks");
    };
    let store = project.store().await?;
    let entries = store.read_task_journal(&task.id).await?;
    if json {
        output::json(&entries)?;
        return Ok(Code::Success);
    }
    for entry in &entries {
        let detail = match entry.payload.get("event") {
            Some(event) => event.to_string(),
            None => String::new(),
        };
        outln!(
            "{:>6}  {}  {:<22} {}",
            entry.seq,
            chrono::DateTime::from_timestamp_millis(entry.at_ms)
                .map(|at| at.format("%H:%M:%S%.3f").to_string())
                .unwrap_or_default(),
            entry.kind,
            clip(&output::sanitize(&detail), 160)
        );
    }
    Ok(Code::Success)
}

pub async fn show(workflow: Option<&Path>, id: &str, json: bool) -> Result<Code> {
    let project = Project::locate(workflow)?;
    let rows = summaries(&project).await?;
    let Some(task) = rows
        .into_iter()
        .find(|row| row.id == id || row.identifier.eq_ignore_ascii_case(id))
    else {
        anyhow::bail!("no task {id}: `takt task list` shows the known tasks");
    };
    if json {
        output::json(&task)?;
        return Ok(Code::Success);
    }
    outln!("{}  {}", task.identifier, output::sanitize(&task.title));
    outln!(
        "  state:      {} (tracker: {})",
        task.state,
        task.tracker_state
    );
    outln!("  attempts:   {}", task.attempt);
    if let Some(priority) = task.priority {
        outln!("  priority:   {priority}");
    }
    if !task.labels.is_empty() {
        outln!("  labels:     {}", task.labels.join(", "));
    }
    for (label, value) in [
        ("workspace", &task.workspace_path),
        ("branch", &task.branch),
        ("commit", &task.commit),
        ("question", &task.question),
        ("feedback", &task.feedback),
        ("last error", &task.last_error),
    ] {
        if let Some(value) = value {
            outln!("  {:<11} {}", format!("{label}:"), output::sanitize(value));
        }
    }
    if let Some(due) = task.retry_due_at_ms {
        outln!("  next retry: {}", output::when(due));
    }
    if let Some(description) = &task.issue.description {
        let lines: Vec<String> = description.trim().lines().map(output::sanitize).collect();
        outln!("\n  {}", lines.join("\n  "));
    }
    if !task.attempts.is_empty() {
        outln!("\n  runs:");
        for run in &task.attempts {
            outln!(
                "    {}  {}  turns={}  {}{}",
                run.run_id,
                run.outcome,
                run.turns,
                run.commit
                    .as_deref()
                    .map(|c| &c[..c.len().min(12)])
                    .unwrap_or("-"),
                run.error
                    .as_deref()
                    .map(|e| format!("  {}", output::sanitize(e)))
                    .unwrap_or_default()
            );
        }
    }
    if let Some(outcome) = &task.verify_outcome {
        outln!(
            "\n  verification: round {}, {outcome} (`takt evidence {}` shows the gates)",
            task.verify_rounds,
            task.identifier
        );
    }
    if let Some(risk) = &task.risk {
        let rules: Vec<&str> = risk.rules.iter().map(|rule| rule.rule.as_str()).collect();
        outln!(
            "  risk:       {} ({}); approvals {}/{}{}",
            risk.tier,
            rules.join(", "),
            task.approvals.len(),
            task.approvals_required,
            if task.approvals.is_empty() {
                String::new()
            } else {
                format!(" by {}", task.approvals.join(", "))
            }
        );
    }
    if let Some(report) = &task.failure {
        outln!("\n  FAILED: {}", output::sanitize(&report.reason));
        if let Some(verification) = &report.verification {
            for gate in verification.gates.iter().filter(|g| !g.status.is_green()) {
                outln!(
                    "    gate {} {:?}: {}",
                    gate.gate,
                    gate.status,
                    gate.new_failures.join(", ")
                );
            }
        }
        outln!(
            "  spent: {} tokens, ${:.4}",
            report.tokens,
            report.spend_micros as f64 / 1_000_000.0
        );
        outln!("  next: {}", report.suggested_action);
    }
    Ok(Code::Success)
}
