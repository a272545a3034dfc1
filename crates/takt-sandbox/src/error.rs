use std::path::PathBuf;

/// Why a confined process could not be prepared or started.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The requested mechanism does not work on this host (bubblewrap missing or failing,
    /// Landlock not enforced). Not retryable: choose another `sandbox.mode` or fix the host;
    /// `takt doctor` says which mechanisms work and why not.
    #[error("sandbox: {mechanism} is not usable here: {reason}")]
    Unavailable {
        mechanism: &'static str,
        reason: String,
    },
    /// The daemon runs as root and the unprivileged agent user could not be found or created.
    /// Not retryable until the user exists (`useradd --system takt-agent`).
    #[error("sandbox: cannot use the agent user `{user}`: {reason}")]
    AgentUser { user: String, reason: String },
    /// A file the sandbox needs could not be written or read. Retryable if the cause was
    /// transient (disk full).
    #[error("sandbox: {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The supervisor process could not be started (fork or exec failed: too many processes,
    /// out of memory, the helper binary gone). Retryable once the cause passes.
    #[error("sandbox: could not start the supervisor: {reason}")]
    Start { reason: String },
    /// A spec could not be encoded or decoded (a version mismatch between the daemon and the
    /// helper binary). Not retryable.
    #[error("sandbox: spec {}: {reason}", path.display())]
    Spec { path: PathBuf, reason: String },
}

impl SandboxError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        SandboxError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
