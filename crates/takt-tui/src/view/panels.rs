//! The tables below the header: running runs, the backoff queue, blocked tasks, changes awaiting
//! review and schedules. Every string that came from an agent or a tracker goes through
//! [`sanitize`] here, at the last moment before it is drawn.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use takt_protocol::{Millis, RiskTier, RunPhase, TaskState, TaskSummary};

use super::titled_block;
use crate::format::{compact, duration, seconds_since, seconds_until, short_id, utc_clock};
use crate::model::Dashboard;
use crate::sanitize::sanitize;

const ID_WIDTH: u16 = 10;

pub(super) fn render_running(frame: &mut Frame, area: Rect, dashboard: &Dashboard, now_ms: Millis) {
    let header = Row::new([
        "ID", "STAGE", "PID", "AGE/TURN", "TOKENS", "SESSION", "EVENT",
    ])
    .style(Style::default().add_modifier(Modifier::BOLD));
    let rows: Vec<Row> = dashboard
        .active_tasks()
        .map(|task| running_row(dashboard, task, now_ms))
        .collect();
    let block = titled_block(&format!("running ({})", rows.len()));
    if rows.is_empty() {
        let idle = Line::styled("no agent is running", Style::default().fg(Color::DarkGray));
        frame.render_widget(Paragraph::new(idle).block(block), area);
        return;
    }
    let widths = [
        Constraint::Length(ID_WIDTH),
        // `initializing_session`, the longest stage.
        Constraint::Length(20),
        Constraint::Length(7),
        Constraint::Length(11),
        Constraint::Length(7),
        Constraint::Length(11),
        Constraint::Fill(1),
    ];
    let table = Table::new(rows, widths).header(header).block(block);
    frame.render_widget(table, area);
}

fn running_row<'a>(dashboard: &Dashboard, task: &TaskSummary, now_ms: Millis) -> Row<'a> {
    let run = dashboard.live_run(&task.id);
    let stage = match (task.run_phase, task.state) {
        (Some(phase), _) => phase_name(phase),
        (None, TaskState::Running) => "starting",
        (None, state) => state.as_str(),
    };
    let stage_style = match task.state {
        TaskState::Verifying => Style::default().fg(Color::Magenta),
        _ => Style::default().fg(Color::Cyan),
    };
    let pid = task
        .pid
        .map_or_else(|| "-".to_owned(), |pid| pid.to_string());
    let (age_turn, tokens, session, event) = match run {
        Some(run) => {
            let event = match (run.last_event.as_deref(), run.last_message.as_deref()) {
                (Some(event), Some(message)) => {
                    format!("{}: {}", sanitize(event), sanitize(message))
                }
                (Some(only), None) | (None, Some(only)) => sanitize(only),
                (None, None) => String::new(),
            };
            (
                format!(
                    "{} / {}",
                    duration(seconds_since(run.started_at_ms, now_ms)),
                    run.turns
                ),
                compact(run.tokens.total_tokens),
                run.session_id
                    .as_deref()
                    .map_or_else(|| "-".to_owned(), |id| short_id(&sanitize(id))),
                event,
            )
        }
        // Verification runs no agent session: the age is the time in this state.
        None => (
            format!(
                "{} / -",
                duration(seconds_since(task.updated_at_ms, now_ms))
            ),
            compact(task.metered_usage.total_tokens),
            "-".to_owned(),
            match task.state {
                TaskState::Verifying => format!("verification round {}", task.verify_rounds),
                _ => String::new(),
            },
        ),
    };
    Row::new([
        Cell::from(sanitize(&task.identifier)),
        Cell::from(Span::styled(stage, stage_style)),
        Cell::from(pid),
        Cell::from(age_turn),
        Cell::from(tokens),
        Cell::from(session),
        Cell::from(event),
    ])
}

/// The snake_case name the JSON and the logs use for a phase.
fn phase_name(phase: RunPhase) -> &'static str {
    match phase {
        RunPhase::PreparingWorkspace => "preparing_workspace",
        RunPhase::BuildingPrompt => "building_prompt",
        RunPhase::LaunchingAgent => "launching_agent",
        RunPhase::InitializingSession => "initializing_session",
        RunPhase::StreamingTurn => "streaming_turn",
        RunPhase::Verifying => "verifying",
        RunPhase::Finishing => "finishing",
    }
}

/// `T-3  attempt=2 in 42s (failure) error=…`, soonest first.
pub(super) fn render_backoff(frame: &mut Frame, area: Rect, dashboard: &Dashboard, now_ms: Millis) {
    let mut retrying: Vec<&TaskSummary> = dashboard.tasks_in(TaskState::RetryWait).collect();
    retrying.sort_by_key(|task| task.retry_due_at_ms.unwrap_or(Millis::MAX));
    let lines: Vec<Line> = retrying
        .iter()
        .map(|task| {
            let when = match task.retry_due_at_ms {
                Some(due) => format!("in {}s", seconds_until(due, now_ms)),
                None => "when due".to_owned(),
            };
            let kind = task
                .retry_kind
                .map(|kind| format!(" ({})", kind.as_str()))
                .unwrap_or_default();
            let error = task
                .last_error
                .as_deref()
                .map(|error| format!(" error={}", sanitize(error)))
                .unwrap_or_default();
            Line::from(vec![
                id_span(task),
                Span::raw(format!("attempt={} {when}{kind}", task.attempt)),
                Span::styled(error, Style::default().fg(Color::Red)),
            ])
        })
        .collect();
    render_lines(
        frame,
        area,
        &format!("backoff queue ({})", lines.len()),
        lines,
    );
}

/// Blocked tasks and the question each waits on.
pub(super) fn render_blocked(frame: &mut Frame, area: Rect, dashboard: &Dashboard) {
    let lines: Vec<Line> = dashboard
        .tasks_in(TaskState::Blocked)
        .map(|task| {
            let question = task
                .question
                .as_deref()
                .map(sanitize)
                .filter(|question| !question.is_empty())
                .unwrap_or_else(|| "(no question recorded)".to_owned());
            Line::from(vec![id_span(task), Span::raw(question)])
        })
        .collect();
    render_lines(
        frame,
        area,
        &format!("blocked ({}) · takt answer ID \"…\"", lines.len()),
        lines,
    );
}

/// Changes waiting for people: the risk tier and approvals so far out of those required.
pub(super) fn render_reviews(frame: &mut Frame, area: Rect, dashboard: &Dashboard) {
    let lines: Vec<Line> = dashboard
        .tasks_in(TaskState::AwaitingReview)
        .map(|task| {
            let tier = task
                .risk
                .as_ref()
                .map_or(RiskTier::Review, |risk| risk.tier);
            let tier_style = match tier {
                RiskTier::HardStop => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
                RiskTier::Review => Style::default().fg(Color::Yellow),
                RiskTier::AutoShip => Style::default().fg(Color::Green),
            };
            Line::from(vec![
                id_span(task),
                Span::styled(format!("{:<9}", tier.as_str()), tier_style),
                Span::raw(format!(
                    " approvals {}/{}  ",
                    task.approvals.len(),
                    task.approvals_required
                )),
                Span::raw(sanitize(&task.title)),
            ])
        })
        .collect();
    render_lines(
        frame,
        area,
        &format!("awaiting review ({}) · takt review approve ID", lines.len()),
        lines,
    );
}

/// Each schedule's next occurrence and the one it last fired for.
pub(super) fn render_schedules(
    frame: &mut Frame,
    area: Rect,
    dashboard: &Dashboard,
    now_ms: Millis,
) {
    let lines: Vec<Line> = dashboard
        .schedules
        .iter()
        .map(|schedule| {
            let next = schedule.next_due_ms.map_or_else(
                || "never".to_owned(),
                |due| format!("in {}", duration(seconds_until(due, now_ms))),
            );
            let last = schedule
                .last_fired_ms
                .map(|at| format!(" · last {}", utc_clock(at)))
                .unwrap_or_default();
            let timezone = schedule
                .timezone
                .as_deref()
                .map(|zone| format!(" {}", sanitize(zone)))
                .unwrap_or_default();
            Line::from(vec![
                Span::styled(
                    format!("{} ", sanitize(&schedule.name)),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
                Span::styled(
                    format!("`{}`{timezone} ", sanitize(&schedule.cron)),
                    Style::default().fg(Color::DarkGray),
                ),
                Span::raw(format!("next {next}{last}")),
            ])
        })
        .collect();
    render_lines(frame, area, &format!("schedules ({})", lines.len()), lines);
}

/// The identifier column of the side panels.
fn id_span(task: &TaskSummary) -> Span<'static> {
    Span::styled(
        format!(
            "{:<width$} ",
            sanitize(&task.identifier),
            width = usize::from(ID_WIDTH) - 1
        ),
        Style::default().add_modifier(Modifier::BOLD),
    )
}

/// A section: its rule and one line per row (none when empty; the title's count says 0).
fn render_lines(frame: &mut Frame, area: Rect, title: &str, lines: Vec<Line<'static>>) {
    frame.render_widget(Paragraph::new(lines).block(titled_block(title)), area);
}
