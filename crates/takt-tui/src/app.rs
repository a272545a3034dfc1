//! The interactive loop's state, kept apart from the terminal so it can be tested: what the
//! last fetch gave, when the source stopped answering, what a key does, and when the next
//! frame may be drawn.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::Frame;
use ratatui::style::{Color, Style};
use ratatui::widgets::{Block, Paragraph};
use takt_protocol::Millis;

use crate::model::{Dashboard, Unreachable};
use crate::throughput::Throughput;
use crate::view::render;

/// Frames are drawn at least this far apart; changes in between are coalesced into the next
/// frame, so a burst of events costs one redraw.
pub const MIN_RENDER_INTERVAL: Duration = Duration::from_millis(16);

/// What the dashboard knows between fetches.
#[derive(Debug, Default)]
pub struct App {
    /// The latest snapshot; after a failed fetch, the last good one marked unreachable.
    dashboard: Option<Dashboard>,
    throughput: Throughput,
}

impl App {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the result of one fetch at `now_ms`. A failure keeps the last good data and marks
    /// it unreachable since the first failure in a row; a success clears the mark.
    pub fn on_fetch(&mut self, result: Result<Dashboard, String>, now_ms: Millis) {
        match result {
            Ok(dashboard) => {
                self.throughput
                    .record(now_ms, dashboard.totals.metered.total_tokens);
                self.dashboard = Some(dashboard);
            }
            Err(error) => {
                let dashboard = self.dashboard.get_or_insert_with(Dashboard::default);
                let since_ms = dashboard
                    .unreachable
                    .as_ref()
                    .map_or(now_ms, |unreachable| unreachable.since_ms);
                dashboard.unreachable = Some(Unreachable { since_ms, error });
            }
        }
    }

    /// The snapshot drawn next, if any fetch has finished.
    pub fn dashboard(&self) -> Option<&Dashboard> {
        self.dashboard.as_ref()
    }

    pub fn throughput(&self) -> &Throughput {
        &self.throughput
    }

    /// Draws the dashboard, or a waiting line before the first fetch has finished.
    pub fn draw(&self, frame: &mut Frame, now_ms: Millis) {
        match &self.dashboard {
            Some(dashboard) => render(frame, dashboard, &self.throughput, now_ms),
            None => frame.render_widget(
                Paragraph::new("reading the factory's state…")
                    .style(Style::default().fg(Color::DarkGray))
                    .block(Block::bordered().title(" takt ")),
                frame.area(),
            ),
        }
    }
}

/// What a key press asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAction {
    /// `q`, Esc or Ctrl-C: leave the dashboard.
    Quit,
    /// `r`: fetch now instead of waiting for the next refresh.
    RefreshNow,
    /// Anything else.
    Ignore,
}

/// Maps a key event to what it asks for. Only presses count: some terminals also report
/// releases and repeats.
pub fn key_action(key: &KeyEvent) -> KeyAction {
    if key.kind != KeyEventKind::Press {
        return KeyAction::Ignore;
    }
    match key.code {
        KeyCode::Char('q' | 'Q') | KeyCode::Esc => KeyAction::Quit,
        // In raw mode Ctrl-C is a key, not a signal.
        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => KeyAction::Quit,
        KeyCode::Char('r' | 'R') => KeyAction::RefreshNow,
        _ => KeyAction::Ignore,
    }
}

/// Coalesces redraw requests into frames at least [`MIN_RENDER_INTERVAL`] apart.
#[derive(Debug, Default)]
pub struct RenderGate {
    last_rendered: Option<Instant>,
    pending: bool,
}

impl RenderGate {
    pub fn new() -> Self {
        Self::default()
    }

    /// Something changed: a frame is owed.
    pub fn request(&mut self) {
        self.pending = true;
    }

    /// How long to wait before drawing the owed frame; `None` when none is owed.
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        if !self.pending {
            return None;
        }
        Some(self.last_rendered.map_or(Duration::ZERO, |last| {
            (last + MIN_RENDER_INTERVAL).saturating_duration_since(now)
        }))
    }

    /// A frame was drawn at `now`; everything requested before it is in it.
    pub fn rendered(&mut self, now: Instant) {
        self.pending = false;
        self.last_rendered = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use crossterm::event::KeyEventState;

    use super::*;
    use crate::model::DaemonStatus;

    const T0: Millis = 1_800_000_000_000;

    fn snapshot(total_tokens: u64) -> Dashboard {
        let mut dashboard = Dashboard {
            daemon: DaemonStatus::Running { pid: Some(7) },
            generated_at_ms: T0,
            ..Dashboard::default()
        };
        dashboard.totals.metered.total_tokens = total_tokens;
        dashboard
    }

    #[test]
    fn failures_keep_the_last_data_and_say_since_when() {
        let mut app = App::new();
        app.on_fetch(Ok(snapshot(100)), T0);
        app.on_fetch(Err("connection refused".into()), T0 + 1_000);
        app.on_fetch(Err("timed out".into()), T0 + 2_000);
        let dashboard = app.dashboard();
        assert_eq!(dashboard.map(|d| d.totals.metered.total_tokens), Some(100));
        assert_eq!(
            dashboard.and_then(|d| d.unreachable.clone()),
            Some(Unreachable {
                since_ms: T0 + 1_000,
                error: "timed out".into()
            })
        );
        app.on_fetch(Ok(snapshot(200)), T0 + 3_000);
        assert_eq!(app.dashboard().and_then(|d| d.unreachable.clone()), None);
    }

    #[test]
    fn a_failure_before_any_data_is_still_shown() {
        let mut app = App::new();
        assert!(app.dashboard().is_none());
        app.on_fetch(Err("no such state directory".into()), T0);
        assert_eq!(
            app.dashboard()
                .and_then(|d| d.unreachable.as_ref())
                .map(|u| u.since_ms),
            Some(T0)
        );
    }

    #[test]
    fn fetches_feed_the_throughput_tracker() {
        let mut app = App::new();
        app.on_fetch(Ok(snapshot(0)), T0);
        app.on_fetch(Ok(snapshot(3_000)), T0 + 1_000);
        assert_eq!(app.throughput().tps(), 3_000.0);
        // A failed fetch is no reading: the rate is not pulled down to zero by it.
        app.on_fetch(Err("down".into()), T0 + 2_000);
        assert_eq!(app.throughput().tps(), 3_000.0);
    }

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent {
            code,
            modifiers,
            kind: KeyEventKind::Press,
            state: KeyEventState::NONE,
        }
    }

    #[test]
    fn keys() {
        let none = KeyModifiers::NONE;
        assert_eq!(
            key_action(&press(KeyCode::Char('q'), none)),
            KeyAction::Quit
        );
        assert_eq!(key_action(&press(KeyCode::Esc, none)), KeyAction::Quit);
        assert_eq!(
            key_action(&press(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            KeyAction::Quit
        );
        assert_eq!(
            key_action(&press(KeyCode::Char('c'), none)),
            KeyAction::Ignore
        );
        assert_eq!(
            key_action(&press(KeyCode::Char('r'), none)),
            KeyAction::RefreshNow
        );
        let release = KeyEvent {
            kind: KeyEventKind::Release,
            ..press(KeyCode::Char('q'), none)
        };
        assert_eq!(key_action(&release), KeyAction::Ignore);
    }

    #[test]
    fn renders_are_coalesced_sixteen_milliseconds_apart() {
        let start = Instant::now();
        let mut gate = RenderGate::new();
        assert_eq!(gate.wait(start), None);
        gate.request();
        assert_eq!(gate.wait(start), Some(Duration::ZERO));
        gate.rendered(start);
        assert_eq!(gate.wait(start), None);
        // Three changes 5 ms after a frame: one frame, 11 ms later.
        let soon = start + Duration::from_millis(5);
        gate.request();
        gate.request();
        gate.request();
        assert_eq!(gate.wait(soon), Some(Duration::from_millis(11)));
        // Late requests are drawn at once.
        assert_eq!(
            gate.wait(start + Duration::from_millis(40)),
            Some(Duration::ZERO)
        );
    }
}
