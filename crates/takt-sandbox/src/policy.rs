//! What a workflow asks of the sandbox (`sandbox:` in WORKFLOW.md), as plain data.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `sandbox.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// bubblewrap when it works here, else Landlock; refuses to run unconfined.
    Auto,
    Bwrap,
    Landlock,
    /// Explicitly unconfined; every run's evidence says so.
    None,
}

/// The mechanism actually used, after [`crate::probe::HostReport::resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    /// bubblewrap namespaces, plus Landlock and seccomp inside.
    Bwrap,
    /// Landlock, seccomp, rlimits, no_new_privs and a new session, without namespaces.
    Landlock,
    /// Nothing: the process runs as the daemon's user with the filtered environment only.
    Unconfined,
}

impl Mechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Bwrap => "bwrap",
            Mechanism::Landlock => "landlock",
            Mechanism::Unconfined => "none",
        }
    }
}

/// `sandbox.network`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// No network at all, not even the model.
    None,
    /// Only the daemon's model endpoint, reached through a relay.
    Model,
    /// The model endpoint, and these hosts (`*.suffix` allowed) through a filtering proxy.
    Allowlist(Vec<String>),
}

impl Network {
    pub fn as_str(&self) -> &'static str {
        match self {
            Network::None => "none",
            Network::Model => "model",
            Network::Allowlist(_) => "allowlist",
        }
    }
}

/// Resource limits; `None` leaves the host's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub memory_mb: Option<u64>,
    pub pids: Option<u64>,
    pub cpu_seconds: Option<u64>,
    pub file_size_mb: Option<u64>,
    pub open_files: Option<u64>,
    pub wall_clock_ms: Option<u64>,
}

/// The whole sandbox policy of a workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    pub network: Network,
    /// Names of daemon environment variables passed in (values read at launch).
    pub env: Vec<String>,
    pub limits: Limits,
    /// Extra directories visible read-only / read-write.
    pub read_only: Vec<PathBuf>,
    pub read_write: Vec<PathBuf>,
    /// The user agents run as when the daemon is root.
    pub user: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            mode: Mode::Auto,
            network: Network::Model,
            env: ["PATH", "LANG", "TERM"].map(String::from).to_vec(),
            limits: Limits {
                memory_mb: Some(4096),
                pids: Some(512),
                cpu_seconds: None,
                file_size_mb: Some(8192),
                open_files: Some(4096),
                wall_clock_ms: None,
            },
            read_only: Vec::new(),
            read_write: Vec::new(),
            user: crate::user::DEFAULT_AGENT_USER.to_owned(),
        }
    }
}
