//! Why verification could not reach a verdict. None of these says anything about the change:
//! the task is retried, never failed or passed, because of them.

/// Verification broke before it could judge the change.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A git operation on the mirror failed (checkout, diff, note). Retrying may help when the
    /// cause is transient (a lock, a full disk that was cleaned).
    #[error("{0}")]
    Workspace(#[from] takt_workspace::WorkspaceError),
    /// The gate's command could not be started in the sandbox (missing `sh`, a sandbox that no
    /// longer starts). Retrying helps only once the host is fixed; `takt doctor` says what.
    #[error("gate {gate} could not start: {reason}")]
    Launch { gate: String, reason: String },
    /// Reading or writing takt's own verification files failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// Storing an output as evidence failed (the store is unavailable or full).
    #[error("storing evidence failed: {0}")]
    Evidence(String),
}

impl VerifyError {
    pub(crate) fn io(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> VerifyError + use<> {
        let path = path.to_path_buf();
        move |source| VerifyError::Io {
            action,
            path,
            source,
        }
    }
}
