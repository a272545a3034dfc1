//! Drawing one [`Dashboard`] into one frame. Pure: the frame is a function of the snapshot, the
//! throughput tracker and the time passed in, so tests render it to ratatui's `TestBackend`.
//!
//! Layout, top to bottom: the header (with the TPS sparkline on its right), the running table,
//! the backoff queue, the blocked tasks, the changes awaiting review, the schedules, and a
//! footer with the keys (or, when the source stopped answering, since when). Each section below
//! the header is a titled rule with its count; an empty one is just its rule.

mod header;
mod panels;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline};
use takt_protocol::{Millis, TaskState};

use crate::format::{clip, seconds_since, utc_clock};
use crate::model::{DaemonStatus, Dashboard};
use crate::sanitize::sanitize;
use crate::throughput::{HISTORY_COLUMNS, Throughput};

/// The header's height: four lines of figures inside a border.
const HEADER_HEIGHT: u16 = 6;
/// The running table keeps at least its rule, its column names and two rows.
const RUNNING_MIN_HEIGHT: u16 = 4;

/// Draws the whole dashboard into `frame`.
pub fn render(frame: &mut Frame, dashboard: &Dashboard, throughput: &Throughput, now_ms: Millis) {
    let area = frame.area();
    let wanted = [
        dashboard.tasks_in(TaskState::RetryWait).count(),
        dashboard.tasks_in(TaskState::Blocked).count(),
        dashboard.tasks_in(TaskState::AwaitingReview).count(),
        dashboard.schedules.len(),
    ];
    // The running table comes first: it keeps a line per run (the rule and the column names
    // above them) before the sections below share what is left.
    let running_rows = u16::try_from(dashboard.active_tasks().count()).unwrap_or(u16::MAX);
    let running_height = running_rows.saturating_add(2).max(RUNNING_MIN_HEIGHT);
    let spare = area
        .height
        .saturating_sub(HEADER_HEIGHT + 1)
        .saturating_sub(running_height);
    let [backoff_rows, blocked_rows, review_rows, schedule_rows] = share_rows(wanted, spare);
    let [header, running, backoff, blocked, review, schedules, footer] = Layout::vertical([
        Constraint::Length(HEADER_HEIGHT),
        Constraint::Min(RUNNING_MIN_HEIGHT),
        Constraint::Length(backoff_rows),
        Constraint::Length(blocked_rows),
        Constraint::Length(review_rows),
        Constraint::Length(schedule_rows),
        Constraint::Length(1),
    ])
    .areas(area);

    // The sparkline's box is exactly its 24 columns wide, plus the border.
    let [figures, sparkline] = Layout::horizontal([
        Constraint::Min(0),
        Constraint::Length(HISTORY_COLUMNS as u16 + 2),
    ])
    .areas(header);
    header::render(frame, figures, dashboard, throughput, now_ms);
    render_sparkline(frame, sparkline, throughput, now_ms);

    panels::render_running(frame, running, dashboard, now_ms);
    panels::render_backoff(frame, backoff, dashboard, now_ms);
    panels::render_blocked(frame, blocked, dashboard);
    panels::render_reviews(frame, review, dashboard);
    panels::render_schedules(frame, schedules, dashboard, now_ms);

    render_footer(frame, footer, dashboard, now_ms);
}

/// Heights of the sections below the running table, each its rule plus one line per row,
/// within `spare` lines. Every section keeps its rule; then rows are dealt out one at a time
/// in turn, so on a short terminal each list shows its first rows rather than one list
/// pushing the others off the screen.
fn share_rows<const N: usize>(wanted: [usize; N], spare: u16) -> [u16; N] {
    let mut heights = [0u16; N];
    let mut left = spare;
    for height in &mut heights {
        if left == 0 {
            return heights;
        }
        *height = 1;
        left -= 1;
    }
    let mut dealt = true;
    while left > 0 && dealt {
        dealt = false;
        for (height, wanted) in heights.iter_mut().zip(wanted) {
            if left > 0 && usize::from(*height) <= wanted {
                *height += 1;
                left -= 1;
                dealt = true;
            }
        }
    }
    heights
}

/// A section: a rule across the top, titled in bold with its name.
fn titled_block(title: &str) -> Block<'static> {
    Block::new().borders(Borders::TOP).title(Span::styled(
        format!(" {title} "),
        Style::default().add_modifier(Modifier::BOLD),
    ))
}

fn render_sparkline(frame: &mut Frame, area: Rect, throughput: &Throughput, now_ms: Millis) {
    let history = throughput.history(now_ms);
    let sparkline = Sparkline::default()
        .block(Block::bordered().title(" tps, 10 min "))
        .data(history)
        .style(Style::default().fg(Color::Cyan));
    frame.render_widget(sparkline, area);
}

/// The offline marker, or `None` while the daemon runs and the source answers.
fn offline_marker(dashboard: &Dashboard, now_ms: Millis) -> Option<String> {
    if let Some(unreachable) = &dashboard.unreachable {
        return Some(format!(
            "OFFLINE since {} ({} ago)",
            utc_clock(unreachable.since_ms),
            crate::format::duration(seconds_since(unreachable.since_ms, now_ms))
        ));
    }
    match dashboard.daemon {
        DaemonStatus::Running { .. } => None,
        DaemonStatus::NotRunning => Some("OFFLINE: daemon not running".into()),
    }
}

fn render_footer(frame: &mut Frame, area: Rect, dashboard: &Dashboard, now_ms: Millis) {
    let keys = Span::styled(
        "q quit · r refresh now",
        Style::default().fg(Color::DarkGray),
    );
    let line = match &dashboard.unreachable {
        Some(unreachable) => Line::from(vec![
            Span::styled(
                format!(
                    "{}: {} · {}",
                    offline_marker(dashboard, now_ms).unwrap_or_default(),
                    clip(&sanitize(&unreachable.error), 60),
                    // A source that never answered has no data to show.
                    match dashboard.generated_at_ms {
                        0 => "no data yet".to_owned(),
                        at => format!("showing data from {}", utc_clock(at)),
                    }
                ),
                Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
            ),
            Span::raw("   "),
            keys,
        ]),
        None => Line::from(keys),
    };
    frame.render_widget(Paragraph::new(line), area);
}

#[cfg(test)]
mod tests {
    use super::share_rows;

    #[test]
    fn sections_get_what_they_want_when_there_is_room() {
        assert_eq!(share_rows([2, 0, 1, 3], 20), [3, 1, 2, 4]);
    }

    #[test]
    fn short_terminals_deal_rows_in_turn() {
        // 4 rules, then 5 rows: one each, then the first that still wants more.
        assert_eq!(share_rows([10, 10, 1, 10], 9), [3, 2, 2, 2]);
        // Not even room for every rule.
        assert_eq!(share_rows([1, 1, 1, 1], 2), [1, 1, 0, 0]);
    }
}
