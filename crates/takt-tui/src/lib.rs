//! takt's terminal dashboard, `takt status --watch`.
//!
//! The CLI fills a [`Dashboard`] (from the state directory today, from the HTTP API later) and
//! either hands a fetch function to [`run`], the interactive loop, or draws one frame itself
//! with [`render`]. The parts:
//!
//! - [`model`]: [`Dashboard`] and the rows it carries; plain data, serde-serializable.
//! - [`throughput`]: [`Throughput`], tokens per second over a rolling 5 s window and the
//!   10-minute history behind the sparkline.
//! - [`sanitize()`]: strips escape sequences and control characters from text agents and
//!   trackers wrote, before it reaches the terminal.
//! - [`render`]: the frame, pure (no clock, no IO), snapshot-tested on ratatui's `TestBackend`.
//! - [`App`], [`RenderGate`], [`key_action`]: the loop's state and decisions, testable without
//!   a terminal.
//! - [`run`]: the thin interactive shell around them (alternate screen, keys, timers), which
//!   restores the terminal on every exit path.
//!
//! `docs/tui.md` describes what the screen shows.

mod app;
mod format;
pub mod model;
mod sanitize;
mod terminal;
pub mod throughput;
mod view;

pub use app::{App, KeyAction, MIN_RENDER_INTERVAL, RenderGate, key_action};
pub use model::{DaemonStatus, Dashboard, LiveRun, ScheduleRow, Spend, Totals, Unreachable};
pub use sanitize::sanitize;
pub use terminal::{TuiError, run};
pub use throughput::Throughput;
pub use view::render;
