//! The files passed between the daemon, the supervisor and the inner stage.
//!
//! Specs travel as files, never as arguments: argv is world-readable in `/proc`, and the
//! environment they carry includes the run's model token.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::SandboxError;
use crate::policy::{Limits, Mechanism, Network};
use crate::user::AgentUser;
use takt_core::ports::WorkspaceView;

/// Bumped whenever the layout changes, so a helper from another build refuses clearly.
pub const SPEC_VERSION: u32 = 1;

/// What the supervisor needs: everything about one confined process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSpec {
    pub version: u32,
    pub mechanism: Mechanism,
    /// The binary that runs the inner stage (the daemon's own executable, or the small
    /// [`crate::INNER_BINARY`] beside it), bound into the sandbox.
    pub helper: PathBuf,
    /// The bubblewrap binary (the supervisor runs with an empty environment, so no PATH).
    pub bwrap: Option<PathBuf>,
    pub program: String,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// The complete environment of the confined process.
    pub env: Vec<(String, String)>,
    /// Visible read-write at the same path (the workspace, the run's agent directory, extras).
    pub writable: Vec<PathBuf>,
    /// Those of `writable` an earlier launch of this daemon already gave to the agent user
    /// whole (the same directory, not one made anew at the path): walked again only when their
    /// top is not the agent user's.
    #[serde(default)]
    pub handed_over: Vec<PathBuf>,
    /// Visible read-only at the same path (git metadata, toolchains, extras).
    pub readable: Vec<PathBuf>,
    /// The private HOME inside the sandbox (a tmpfs with bubblewrap, a run directory with
    /// Landlock).
    pub home: PathBuf,
    pub network: Network,
    /// The daemon's model endpoint; with bubblewrap a relay listens on the same port inside.
    pub model: Option<SocketAddr>,
    pub limits: Limits,
    /// Set when the daemon is root: the supervisor drops to this user.
    pub agent_user: Option<AgentUser>,
    /// The launch's private directory (spec, inner spec, sockets, report).
    pub launch_dir: PathBuf,
    /// A unique name for this launch's cgroups.
    pub launch_id: String,
    /// The workspace shown at another path than its own (bubblewrap only).
    #[serde(default)]
    pub view: Option<PlacedView>,
}

/// A [`WorkspaceView`] with the host path of the workspace it shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacedView {
    pub workspace: PathBuf,
    #[serde(flatten)]
    pub view: WorkspaceView,
}

impl ExecSpec {
    pub fn report_path(&self) -> PathBuf {
        self.launch_dir.join("report.json")
    }
}

/// A loopback TCP port inside the sandbox forwarded to a unix socket outside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relay {
    pub port: u16,
    pub socket: PathBuf,
}

/// What the inner stage needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InnerSpec {
    pub version: u32,
    pub program: String,
    pub args: Vec<String>,
    /// Paths the process may write (Landlock); everything else it sees is read-only.
    pub writable: Vec<PathBuf>,
    /// With Landlock alone, the only paths it may read (`None`: everything it can see, which
    /// bubblewrap already restricted).
    pub readable: Option<Vec<PathBuf>>,
    /// With Landlock alone, the only TCP ports it may connect to (`None`: no TCP rule, the
    /// network namespace already isolates).
    pub connect_ports: Option<Vec<u16>>,
    /// Deny UDP and raw IP sockets (Landlock alone: DNS and UDP would otherwise reach out).
    pub deny_datagram: bool,
    pub relays: Vec<Relay>,
    /// Limits left to rlimits (those a cgroup enforces are removed).
    pub limits: Limits,
    /// Fail rather than run without Landlock (it is the only filesystem boundary without
    /// bubblewrap).
    pub require_landlock: bool,
    /// Where to record the applied layers for the supervisor's report.
    pub io_dir: Option<PathBuf>,
}

/// A spec that carries [`SPEC_VERSION`].
pub(crate) trait Versioned {
    fn version(&self) -> u32;
}

impl Versioned for ExecSpec {
    fn version(&self) -> u32 {
        self.version
    }
}

impl Versioned for InnerSpec {
    fn version(&self) -> u32 {
        self.version
    }
}

/// Reads a helper stage's spec; the error is the line the stage prints before exiting 125.
pub(crate) fn load<T: Versioned + for<'de> Deserialize<'de>>(path: &Path) -> Result<T, String> {
    let spec: T = read_json(path).map_err(|error| format!("takt sandbox: {error}"))?;
    if spec.version() != SPEC_VERSION {
        return Err(format!(
            "takt sandbox: spec version {} is not {SPEC_VERSION}: the helper binary is from another build",
            spec.version()
        ));
    }
    Ok(spec)
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), SandboxError> {
    use fs_err::os::unix::fs::OpenOptionsExt;
    use std::io::Write;
    let bytes = serde_json::to_vec(value).map_err(|error| SandboxError::Spec {
        path: path.to_path_buf(),
        reason: error.to_string(),
    })?;
    let mut file = fs_err::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| SandboxError::io("writing", path, error))?;
    file.write_all(&bytes)
        .map_err(|error| SandboxError::io("writing", path, error))
}

pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, SandboxError> {
    let bytes = fs_err::read(path).map_err(|error| SandboxError::io("reading", path, error))?;
    serde_json::from_slice(&bytes).map_err(|error| SandboxError::Spec {
        path: path.to_path_buf(),
        reason: error.to_string(),
    })
}
