//! Agent backends behind one interface ([`takt_core::ports::AgentBackend`]).
//!
//! - [`command::CommandBackend`]: runs a shell command per turn (codemods, scripted fixes).
//! - [`process`]: process-group supervision and the orphan sweep every local backend shares.

pub mod command;
pub mod lines;
pub mod process;

pub use command::CommandBackend;
