//! `takt status`: what the factory is doing, from the journal.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use takt_protocol::TaskState;
use takt_store::StateLock;

use super::output::{self, clip, outln, print_table, sanitize};
use super::task::summaries;
use crate::clock::now_ms;
use crate::engine::load_state;
use crate::exit::Code;
use crate::project::Project;

pub async fn run(workflow: Option<&Path>, json: bool) -> Result<Code> {
    let project = Project::locate(workflow)?;
    let store = project.store().await?;
    let state = load_state(&store).await?;
    let tasks = summaries(&project).await?;
    let daemon_pid = StateLock::holder(&project.state_dir);
    let now = now_ms();
    let mut counts: BTreeMap<&str, usize> =
        TaskState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for task in &tasks {
        *counts.entry(task.state.as_str()).or_default() += 1;
    }
    let of = |wanted: TaskState| tasks.iter().filter(move |task| task.state == wanted);
    let (today, month) = state.period_spend(now);
    let quota_paused_until = state.quota_paused_until.filter(|until| *until > now);
    let schedules: Vec<serde_json::Value> = crate::project::schedules_for(&project.workflow)
        .iter()
        .map(|schedule| {
            let seen = state.schedules.get(&schedule.name);
            serde_json::json!({
                "name": schedule.name,
                "cron": schedule.cron_text,
                "timezone": schedule.timezone,
                "last_fired_ms": seen.and_then(|s| s.last_fired_ms),
                "next_due_ms": schedule.next_after(seen.map_or(now, |s| s.owed_after().max(now))),
            })
        })
        .collect();
    if json {
        output::json(&serde_json::json!({
            "daemon": {"running": daemon_pid.is_some(), "pid": daemon_pid},
            "workflow": project.workflow.path,
            "max_concurrent_agents": project.workflow.agent.max_concurrent_agents,
            "counts": counts,
            "running": tasks.iter().filter(|t| matches!(t.state, TaskState::Running | TaskState::Verifying)).collect::<Vec<_>>(),
            "retrying": of(TaskState::RetryWait).collect::<Vec<_>>(),
            "blocked": of(TaskState::Blocked).collect::<Vec<_>>(),
            "awaiting_review": of(TaskState::AwaitingReview).collect::<Vec<_>>(),
            "rate_limits": state.rate_limits,
            "spend": {
                "today": {"tokens": today.tokens, "micros": today.micros},
                "month": {"tokens": month.tokens, "micros": month.micros},
            },
            "quota_paused_until_ms": quota_paused_until,
            "schedules": schedules,
            "totals": {
                "runs_started": state.totals.runs_started,
                "runs_finished": state.totals.runs_finished,
                "seconds_running": state.totals.run_ms / 1000,
                "input_tokens": state.totals.tokens.input_tokens,
                "output_tokens": state.totals.tokens.output_tokens,
                "total_tokens": state.totals.tokens.total_tokens,
                "metered": state.totals.metered,
                "model_calls": state.totals.model_calls,
                "model_calls_refused": state.totals.model_calls_refused,
            },
        }))?;
        return Ok(Code::Success);
    }
    match daemon_pid {
        Some(pid) => outln!("daemon: running (pid {pid})"),
        None => outln!("daemon: not running (start it with `takt run`)"),
    }
    let running: Vec<_> = state.running().collect();
    outln!(
        "agents: {}/{}   runs: {} started, {} finished   tokens: {} metered in {} model calls",
        running.len(),
        project.workflow.agent.max_concurrent_agents,
        state.totals.runs_started,
        state.totals.runs_finished,
        state.totals.metered.total_tokens,
        state.totals.model_calls
    );
    outln!(
        "spend:  today {} tokens ({}), this month {} tokens ({})",
        today.tokens,
        takt_core::budget::usd(today.micros),
        month.tokens,
        takt_core::budget::usd(month.micros)
    );
    if let Some(until) = quota_paused_until {
        outln!(
            "model:  the provider's quota window is closed; calls are held and dispatch waits, \
             resuming in {}s",
            (until - now).max(0) / 1000
        );
    }
    for schedule in &schedules {
        outln!(
            "schedule {}: `{}` ({}), next {}{}",
            schedule["name"].as_str().unwrap_or_default(),
            schedule["cron"].as_str().unwrap_or_default(),
            schedule["timezone"].as_str().unwrap_or_default(),
            schedule["next_due_ms"]
                .as_i64()
                .map_or_else(|| "never".to_owned(), output::when),
            schedule["last_fired_ms"]
                .as_i64()
                .map(|at| format!(", last fired for {}", output::when(at)))
                .unwrap_or_default()
        );
    }
    let line: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(state, n)| format!("{state} {n}"))
        .collect();
    outln!(
        "tasks:  {}",
        if line.is_empty() {
            "none".into()
        } else {
            line.join(", ")
        }
    );

    if !running.is_empty() {
        outln!("\nrunning");
        let rows: Vec<Vec<String>> = running
            .iter()
            .filter_map(|task| {
                let run = task.run.as_ref()?;
                Some(vec![
                    task.issue.identifier.clone(),
                    run.phase
                        .map(|p| format!("{p:?}"))
                        .unwrap_or_else(|| "starting".into()),
                    format!("{}s/{}", (now - run.started_at_ms) / 1000, run.turns),
                    format!(
                        "{} ({})",
                        run.spend.tokens,
                        takt_core::budget::usd(run.spend.micros)
                    ),
                    run.last_event.clone().unwrap_or_default(),
                    clip(&sanitize(run.last_message.as_deref().unwrap_or("")), 50),
                ])
            })
            .collect();
        print_table(
            &["ID", "STAGE", "AGE/TURN", "SPEND", "EVENT", "LAST MESSAGE"],
            &rows,
        );
    }
    let retrying: Vec<Vec<String>> = of(TaskState::RetryWait)
        .map(|task| {
            let due = task
                .retry_due_at_ms
                .map_or(0, |due| (due - now).max(0) / 1000);
            vec![
                task.identifier.clone(),
                format!("attempt={} in {due}s", task.attempt),
                clip(&sanitize(task.last_error.as_deref().unwrap_or("")), 70),
            ]
        })
        .collect();
    if !retrying.is_empty() {
        outln!("\nretrying");
        print_table(&["ID", "WHEN", "ERROR"], &retrying);
    }
    let blocked: Vec<Vec<String>> = of(TaskState::Blocked)
        .map(|task| {
            vec![
                task.identifier.clone(),
                clip(&sanitize(task.question.as_deref().unwrap_or("")), 80),
            ]
        })
        .collect();
    if !blocked.is_empty() {
        outln!("\nblocked (answer with `takt answer ID \"...\"`)");
        print_table(&["ID", "QUESTION"], &blocked);
    }
    let review: Vec<Vec<String>> = of(TaskState::AwaitingReview)
        .map(|task| {
            vec![
                task.identifier.clone(),
                task.branch.clone().unwrap_or_default(),
                clip(&sanitize(&task.title), 60),
            ]
        })
        .collect();
    if !review.is_empty() {
        outln!(
            "\nawaiting review (`takt review approve ID` / `takt review reject ID --comment ...`)"
        );
        print_table(&["ID", "BRANCH", "TITLE"], &review);
    }
    Ok(Code::Success)
}
