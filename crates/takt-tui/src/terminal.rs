//! The interactive part: the alternate screen, the key stream and the fetch/draw loop. Kept
//! thin; the decisions live in [`crate::app`].
//!
//! The terminal is restored on every way out: a normal return, an error (the guard's `Drop`),
//! and a panic (a panic hook restores it before the message is printed, so the message lands on
//! the normal screen and the shell is left usable).

use std::future::Future;
use std::io::{Stdout, stdout};
use std::pin::pin;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossterm::cursor::{Hide, Show};
use crossterm::event::{Event, EventStream};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use futures_util::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use takt_protocol::Millis;

use crate::app::{App, KeyAction, RenderGate, key_action};
use crate::model::Dashboard;

/// Why the dashboard stopped other than by the user's choice.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    /// Entering, drawing to or leaving the terminal failed (not a terminal, closed, ...).
    #[error("the terminal: {0}")]
    Terminal(#[source] std::io::Error),
    /// Reading keys failed.
    #[error("reading keys: {0}")]
    Input(#[source] std::io::Error),
}

/// How often the screen is redrawn when nothing else happens, so countdowns and ages move.
const TICK: Duration = Duration::from_secs(1);
/// The least time a fetch gets before it counts as failed; slower refreshes allow longer.
const MIN_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the dashboard until `q`, Esc or Ctrl-C is pressed or `shutdown` resolves.
///
/// `fetch` is called at once and then every `refresh` (or at once on `r`); one fetch runs at
/// a time, and keys and redraws go on while it does. A fetch that fails, or gives no answer
/// within `refresh` (at least 10 s), keeps the last data on screen under the offline marker.
/// The terminal is restored before this returns, however it returns, and also when the
/// returned future is dropped.
pub async fn run<F, Fut>(
    mut fetch: F,
    refresh: Duration,
    shutdown: impl Future<Output = ()>,
) -> Result<(), TuiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Dashboard, String>>,
{
    let mut session = TerminalSession::enter()?;
    let mut app = App::new();
    let mut gate = RenderGate::new();
    let mut keys = EventStream::new();
    let mut shutdown = pin!(shutdown);
    let mut in_flight = None;
    let mut next_fetch = Instant::now();
    let fetch_timeout = refresh.max(MIN_FETCH_TIMEOUT);
    let mut tick = tokio::time::interval(TICK);
    // After a stall, one redraw is enough: countdowns are recomputed from the clock anyway.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    gate.request();
    loop {
        if in_flight.is_none() && Instant::now() >= next_fetch {
            in_flight = Some(Box::pin(tokio::time::timeout(fetch_timeout, fetch())));
            next_fetch = Instant::now() + refresh;
        }
        let render_wait = gate.wait(Instant::now());
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            event = keys.next() => match event {
                Some(Ok(Event::Key(key))) => match key_action(&key) {
                    KeyAction::Quit => break,
                    KeyAction::RefreshNow => next_fetch = Instant::now(),
                    KeyAction::Ignore => {}
                },
                Some(Ok(Event::Resize(..))) => gate.request(),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(TuiError::Input(error)),
                // The terminal went away: nothing left to show to.
                None => break,
            },
            result = finish(&mut in_flight) => {
                in_flight = None;
                let result = result.unwrap_or_else(|_| {
                    Err(format!("no answer within {}s", fetch_timeout.as_secs()))
                });
                app.on_fetch(result, unix_now_ms());
                gate.request();
            }
            () = tokio::time::sleep_until(next_fetch.into()), if in_flight.is_none() => {}
            () = tokio::time::sleep(render_wait.unwrap_or_default()), if render_wait.is_some() => {
                session
                    .terminal
                    .draw(|frame| app.draw(frame, unix_now_ms()))
                    .map_err(TuiError::Terminal)?;
                gate.rendered(Instant::now());
            }
            _ = tick.tick() => gate.request(),
        }
    }
    session.leave()
}

/// Waits for the fetch in flight; never resolves when there is none.
async fn finish<Fut: Future + Unpin>(in_flight: &mut Option<Fut>) -> Fut::Output {
    match in_flight {
        Some(fetch) => fetch.await,
        None => std::future::pending().await,
    }
}

fn unix_now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            Millis::try_from(since.as_millis()).unwrap_or(Millis::MAX)
        })
}

/// Whether the terminal is in raw mode on the alternate screen, so restoring happens once
/// whichever of the guard and the panic hook gets there first.
static TERMINAL_TAKEN: AtomicBool = AtomicBool::new(false);

/// The terminal in raw mode on the alternate screen; dropping it restores the terminal.
struct TerminalSession {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalSession {
    fn enter() -> Result<Self, TuiError> {
        install_panic_hook();
        TERMINAL_TAKEN.store(true, Ordering::SeqCst);
        // From here any early return restores through `restore_terminal`, as `Self` does not
        // exist yet to be dropped.
        let entered = enable_raw_mode()
            .and_then(|()| execute!(stdout(), EnterAlternateScreen, Hide))
            .and_then(|()| Terminal::new(CrosstermBackend::new(stdout())));
        match entered {
            Ok(terminal) => Ok(Self { terminal }),
            Err(error) => {
                restore_terminal();
                Err(TuiError::Terminal(error))
            }
        }
    }

    /// Restores the terminal and reports whether that worked (dropping ignores errors).
    fn leave(self) -> Result<(), TuiError> {
        // Leaving is done here rather than in `Drop` so its error can be returned; `Drop`
        // then finds nothing left to do.
        let result = leave_terminal();
        drop(self);
        result.map_err(TuiError::Terminal)
    }
}

impl Drop for TerminalSession {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Leaves raw mode and the alternate screen if this crate entered them; best effort.
fn restore_terminal() {
    let _ = leave_terminal();
}

fn leave_terminal() -> std::io::Result<()> {
    if !TERMINAL_TAKEN.swap(false, Ordering::SeqCst) {
        return Ok(());
    }
    // Both steps are attempted even if the first fails: a half-restored terminal is worse.
    let raw = disable_raw_mode();
    let screen = execute!(stdout(), LeaveAlternateScreen, Show);
    raw.and(screen)
}

/// Restores the terminal before the previous panic hook prints, once per process.
fn install_panic_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
    });
}
