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
                "next_due_ms": schedule.next_due(seen, now),
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

/// `takt status --remote URL`: the dashboard of a daemon read through its HTTP API.
pub async fn remote(url: &str, watch: bool, json: bool, interval_ms: u64) -> Result<Code> {
    let daemon =
        super::remote::RemoteDaemon::new(url, std::env::var(super::remote::TOKEN_ENV).ok())?;
    if watch {
        require_terminal("takt status --remote URL --json")?;
        let shutdown = crate::commands::run::shutdown_signal()?;
        let fetch = || async {
            daemon
                .dashboard()
                .await
                .map_err(|error| format!("{error:#}"))
        };
        takt_tui::run(
            fetch,
            std::time::Duration::from_millis(interval_ms),
            shutdown,
        )
        .await?;
        return Ok(Code::Success);
    }
    if !json {
        anyhow::bail!(
            "`takt status --remote URL` needs --watch (the live dashboard) or --json (one \
             snapshot of it)"
        );
    }
    output::json(&daemon.dashboard().await?)?;
    Ok(Code::Success)
}

fn require_terminal(alternative: &str) -> Result<()> {
    use std::io::IsTerminal;
    if !(std::io::stdout().is_terminal() && std::io::stdin().is_terminal()) {
        anyhow::bail!(
            "`takt status --watch` draws a live dashboard and needs a terminal; for scripts use \
             `{alternative}`"
        );
    }
    Ok(())
}

/// `takt status --watch`: the terminal dashboard over this state directory, re-read every
/// `interval_ms`.
pub async fn watch(workflow: Option<&Path>, interval_ms: u64) -> Result<Code> {
    require_terminal("takt status --json")?;
    let project = Project::locate(workflow)?;
    let shutdown = crate::commands::run::shutdown_signal()?;
    let fetch = || async {
        dashboard(&project)
            .await
            .map_err(|error| format!("{error:#}"))
    };
    takt_tui::run(
        fetch,
        std::time::Duration::from_millis(interval_ms),
        shutdown,
    )
    .await?;
    Ok(Code::Success)
}

/// One dashboard snapshot from the journal and the local tracker.
pub async fn dashboard(project: &Project) -> Result<takt_tui::Dashboard> {
    let store = project.store().await?;
    let state = load_state(&store).await?;
    let tasks = summaries(project).await?;
    let now = now_ms();
    let (today, month) = state.period_spend(now);
    let policy = project.policy();
    let live_runs = state
        .running()
        .filter_map(|task| {
            let run = task.run.as_ref()?;
            Some(takt_tui::LiveRun {
                task_id: task.id.clone(),
                run_id: run.run_id.clone(),
                started_at_ms: run.started_at_ms,
                turns: run.turns,
                session_id: run.session_id.clone(),
                last_event: run.last_event.clone(),
                last_event_at_ms: run.last_event_at_ms,
                last_message: run.last_message.clone(),
                tokens: run.tokens,
                spend_micros: run.spend.micros,
            })
        })
        .collect();
    let schedules = crate::project::schedules_for(&project.workflow)
        .iter()
        .map(|schedule| {
            let seen = state.schedules.get(&schedule.name);
            takt_tui::ScheduleRow {
                name: schedule.name.clone(),
                cron: schedule.cron_text.clone(),
                timezone: Some(schedule.timezone.clone()),
                next_due_ms: schedule.next_due(seen, now),
                last_fired_ms: seen.and_then(|s| s.last_fired_ms),
            }
        })
        .collect();
    let daemon = match StateLock::holder(&project.state_dir) {
        Some(pid) => takt_tui::DaemonStatus::Running { pid: Some(pid) },
        None => takt_tui::DaemonStatus::NotRunning,
    };
    Ok(takt_tui::Dashboard {
        generated_at_ms: now,
        daemon,
        source: project.state_dir.display().to_string(),
        dashboard_url: fs_err::read_to_string(
            project.state_dir.join(crate::commands::run::API_ADDR_FILE),
        )
        .ok()
        .map(|addr| format!("http://{}/", addr.trim())),
        max_agents: project.workflow.agent.max_concurrent_agents,
        tasks,
        live_runs,
        totals: takt_tui::Totals {
            runs_started: state.totals.runs_started,
            runs_finished: state.totals.runs_finished,
            seconds_running: u64::try_from(state.totals.run_ms / 1000).unwrap_or(0),
            metered: state.totals.metered,
            model_calls: state.totals.model_calls,
            model_calls_refused: state.totals.model_calls_refused,
        },
        spend_today: takt_tui::Spend {
            tokens: today.tokens,
            micros: today.micros,
        },
        spend_month: takt_tui::Spend {
            tokens: month.tokens,
            micros: month.micros,
        },
        rate_limits: state.rate_limits.clone(),
        next_poll_at_ms: state.last_poll_at_ms.map(|at| {
            at.saturating_add(i64::try_from(policy.poll_interval_ms).unwrap_or(i64::MAX))
        }),
        quota_paused_until_ms: state.quota_paused_until.filter(|until| *until > now),
        schedules,
        unreachable: None,
    })
}
