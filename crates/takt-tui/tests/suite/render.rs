//! Whole frames at 120x30, snapshotted.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use takt_protocol::TaskState;
use takt_tui::{App, DaemonStatus, Dashboard, Throughput, render};

use super::fixtures::{NOW, busy_factory, busy_throughput, empty_factory, task};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WIDTH: u16 = 120;
const HEIGHT: u16 = 30;

/// Draws one frame of `dashboard` at [`NOW`] and returns the screen.
fn draw(
    dashboard: &Dashboard,
    throughput: &Throughput,
) -> Result<TestBackend, Box<dyn std::error::Error>> {
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT))?;
    terminal.draw(|frame| render(frame, dashboard, throughput, NOW))?;
    Ok(terminal.backend().clone())
}

/// Snapshots live in `tests/snapshots/`, named without the module path.
fn assert_screen(name: &str, screen: &TestBackend) {
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!(name, screen);
    });
}

/// The text of one screen row.
fn row_text(buffer: &Buffer, y: u16) -> String {
    (0..buffer.area.width)
        .map(|x| buffer[(x, y)].symbol())
        .collect()
}

/// The row holding `needle`, and the column it starts at.
fn find(buffer: &Buffer, needle: &str) -> Option<(u16, u16)> {
    (0..buffer.area.height).find_map(|y| {
        let text = row_text(buffer, y);
        let byte = text.find(needle)?;
        let column = text[..byte].chars().count();
        Some((u16::try_from(column).ok()?, y))
    })
}

#[test]
fn empty_factory_polling_now() -> TestResult {
    let screen = draw(&empty_factory(), &Throughput::new())?;
    assert_screen("empty_factory", &screen);
    assert!(find(screen.buffer(), "checking now…").is_some());
    Ok(())
}

#[test]
fn busy_factory_with_every_section() -> TestResult {
    let screen = draw(&busy_factory(), &busy_throughput())?;
    assert_screen("busy_factory", &screen);
    let buffer = screen.buffer();
    // The three things an operator scans for, in the words R-133 uses.
    assert!(find(buffer, "attempt=2 in 43s (failure) error=agent exited").is_some());
    assert!(
        find(
            buffer,
            "T-105     hard_stop approvals 1/2  Rotate the signing keys"
        )
        .is_some()
    );
    assert!(find(buffer, "Agents 1/4").is_some());
    assert!(find(buffer, "400 tps").is_some());
    // Finished tasks are not on the dashboard.
    assert!(find(buffer, "T-106").is_none());
    Ok(())
}

#[test]
fn unreachable_source_keeps_the_last_data_under_the_offline_marker() -> TestResult {
    let mut app = App::new();
    let last_good = Dashboard {
        generated_at_ms: NOW - 30_000,
        ..busy_factory()
    };
    app.on_fetch(Ok(last_good), NOW - 30_000);
    app.on_fetch(
        Err("GET http://10.0.0.5:4680/api/v1/state: connection refused".into()),
        NOW - 25_000,
    );
    app.on_fetch(
        Err("GET http://10.0.0.5:4680/api/v1/state: timed out".into()),
        NOW - 5_000,
    );
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT))?;
    terminal.draw(|frame| app.draw(frame, NOW))?;
    let screen = terminal.backend();
    assert_screen("offline_unreachable", screen);

    let buffer = screen.buffer();
    let Some((x, y)) = find(buffer, "OFFLINE since 07:59:35 UTC (25s ago)") else {
        return Err("no offline marker in the header".into());
    };
    assert_eq!(buffer[(x, y)].bg, Color::Red);
    // The last data is still there.
    assert!(find(buffer, "T-101").is_some());
    Ok(())
}

#[test]
fn daemon_not_running_is_offline() -> TestResult {
    let mut dashboard = empty_factory();
    dashboard.daemon = DaemonStatus::NotRunning;
    dashboard.next_poll_at_ms = None;
    dashboard.tasks = vec![task(7, TaskState::Blocked, "Waiting on a person")];
    let screen = draw(&dashboard, &Throughput::new())?;
    assert_screen("offline_daemon_not_running", &screen);
    assert!(find(screen.buffer(), "OFFLINE: daemon not running").is_some());
    Ok(())
}

#[test]
fn hostile_text_is_stripped_before_it_reaches_the_terminal() -> TestResult {
    let mut dashboard = busy_factory();
    for task in &mut dashboard.tasks {
        match task.state {
            TaskState::AwaitingReview => {
                task.title = "\u{1b}]0;pwned\u{7}Rotate \u{1b}[31mthe\u{1b}[0m keys\r\nNOW\u{8}\u{8}\u{8} please\u{7}".into();
                task.identifier = "T-\u{1b}[5m105".into();
            }
            TaskState::RetryWait => {
                task.last_error = Some(
                    "\u{1b}]8;;http://evil.example\u{1b}\\click here\u{1b}]8;;\u{1b}\\ to fix\u{9b}2J".into(),
                );
            }
            TaskState::Blocked => {
                task.question = Some("line one\nline two\u{1b}[1A\u{1b}[2Kerased?".into());
            }
            _ => {}
        }
    }
    if let Some(run) = dashboard.live_runs.first_mut() {
        run.last_message =
            Some("\u{1b}[2J\u{1b}[Hcleared\u{7f} the screen\u{202e}sdrawkcab".into());
        run.last_event = Some("notifi\u{7}cation".into());
    }
    let screen = draw(&dashboard, &busy_throughput())?;
    assert_screen("hostile_text", &screen);

    let buffer = screen.buffer();
    let control_cells = buffer
        .content()
        .iter()
        .filter(|cell| {
            cell.symbol()
                .chars()
                .any(|c| c.is_control() || c == '\u{202e}')
        })
        .count();
    assert_eq!(control_cells, 0, "control characters reached the screen");
    assert!(find(buffer, "Rotate the keys NOW please").is_some());
    assert!(find(buffer, "error=click here to fix").is_some());
    assert!(find(buffer, "line one line twoerased?").is_some());
    assert!(find(buffer, "notification: cleared the screensdrawkcab").is_some());
    Ok(())
}

#[test]
fn a_short_narrow_terminal_keeps_every_section() -> TestResult {
    let mut dashboard = busy_factory();
    for n in 0..6 {
        let mut retry = task(200 + n, TaskState::RetryWait, "Retry me");
        retry.attempt = n + 1;
        retry.retry_due_at_ms = Some(NOW + i64::from(n) * 10_000);
        dashboard.tasks.push(retry);
    }
    let mut terminal = Terminal::new(TestBackend::new(100, 20))?;
    terminal.draw(|frame| render(frame, &dashboard, &busy_throughput(), NOW))?;
    let screen = terminal.backend();
    assert_screen("short_narrow_terminal", screen);
    let buffer = screen.buffer();
    // Both runs stay, and every section keeps at least its rule.
    assert!(find(buffer, "T-101").is_some() && find(buffer, "T-102").is_some());
    for section in [
        "backoff queue (7)",
        "blocked (1)",
        "awaiting review (1)",
        "schedules (1)",
    ] {
        assert!(find(buffer, section).is_some(), "{section} is missing");
    }
    Ok(())
}

#[test]
fn a_tiny_terminal_does_not_panic() -> TestResult {
    for (width, height) in [(1, 1), (20, 5), (40, 12)] {
        let mut terminal = Terminal::new(TestBackend::new(width, height))?;
        terminal.draw(|frame| render(frame, &busy_factory(), &busy_throughput(), NOW))?;
    }
    Ok(())
}
