//! What a gate is: a named shell command with a timeout, run on a clean checkout.

use std::collections::BTreeMap;
use std::path::PathBuf;

use takt_protocol::GateSource;

/// How fast a kind of gate usually is; gates run fastest first so a cheap failure stops a long
/// run early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Speed {
    /// Formatting and lint checks: seconds.
    Check,
    /// Compilation and type checks.
    Build,
    /// Test suites.
    Test,
}

/// One gate to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateSpec {
    pub name: String,
    /// A shell command (`sh -c`), run in the checkout's root.
    pub run: String,
    pub timeout_ms: u64,
    /// A failing required gate blocks the change; an optional one is only reported.
    pub required: bool,
    /// Extra environment for the command (on top of the sandbox's allow-list).
    pub env: BTreeMap<String, String>,
    pub source: GateSource,
    /// Hidden gates: a directory outside the repository copied into the gate checkout only.
    pub hidden_files: Option<PathBuf>,
    /// JUnit XML reports the command writes, relative to the checkout root.
    pub junit: Vec<String>,
    pub speed: Speed,
}

/// Default timeout of a gate: ten minutes.
pub const DEFAULT_GATE_TIMEOUT_MS: u64 = 600_000;
