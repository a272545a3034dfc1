//! Agent backends behind one interface ([`takt_core::ports::AgentBackend`]).
//!
//! - [`command::CommandBackend`]: runs a shell command per turn (codemods, scripted fixes).
//! - [`codex`]: drives `codex app-server` (Codex CLI) over stdio JSON-RPC.
//! - [`claude`]: drives Claude Code headless with stream-json.
//! - [`builtin`]: takt's own agent loop with workspace-confined tools.
//! - [`mcp`]: takt's MCP server for the run's host-side tools (Claude Code spawns it in the sandbox).
//! - [`process`]: process-group supervision and the orphan sweep every local backend shares.

pub mod builtin;
pub mod claude;
pub mod codex;
pub mod command;
pub mod lines;
pub mod mcp;
pub mod paths;
pub mod process;

pub use command::CommandBackend;
