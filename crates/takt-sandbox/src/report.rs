//! What the supervisor observed about one confined process: the evidence a run carries.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::SandboxError;

/// A denied or limited action the sandbox could observe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// Killed by the memory limit (an OOM kill in the run's cgroup).
    Memory,
    /// The process-count limit refused a fork.
    Pids,
    /// Killed for exceeding the CPU-time limit (SIGXCPU).
    Cpu,
    /// Killed for writing past the file-size limit (SIGXFSZ).
    FileSize,
    /// Killed at the sandbox wall clock.
    WallClock,
    /// A connection to a host outside the allow-list was refused.
    Network,
}

impl ViolationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationKind::Memory => "memory",
            ViolationKind::Pids => "pids",
            ViolationKind::Cpu => "cpu",
            ViolationKind::FileSize => "file_size",
            ViolationKind::WallClock => "wall_clock",
            ViolationKind::Network => "network",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub kind: ViolationKind,
    pub detail: String,
}

/// One launch's containment evidence, written by the supervisor next to its spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainmentReport {
    /// `bwrap`, `landlock` or `none`.
    pub mechanism: String,
    /// The user the process ran as.
    pub user: String,
    /// `none`, `model` or `allowlist`.
    pub network: String,
    /// Each limit and how it was enforced, e.g. `memory 4096 MiB (cgroup v1)`.
    pub limits_applied: Vec<String>,
    /// Limits that were asked for but could not be applied here, and why.
    pub limits_missing: Vec<String>,
    /// Layers of confinement that were active (`namespaces`, `landlock (fully enforced)`,
    /// `seccomp`, `no_new_privs`).
    pub layers: Vec<String>,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
    pub violations: Vec<Violation>,
    /// Processes still alive after the main one exited, killed by the supervisor.
    pub leftovers_killed: u32,
    pub duration_ms: u64,
}

impl ContainmentReport {
    /// The report of a launch, if the supervisor wrote one.
    pub fn read(path: &Path) -> Result<Option<ContainmentReport>, SandboxError> {
        match fs_err::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|error| SandboxError::Spec {
                        path: path.to_path_buf(),
                        reason: error.to_string(),
                    })
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(SandboxError::io("reading", path, error)),
        }
    }
}
