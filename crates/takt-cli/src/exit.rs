//! Exit codes (documented in `docs/cli.md`; scripts rely on them).

use takt_workflow::WorkflowError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Everything worked.
    Success = 0,
    /// Something failed at run time (IO, git, the database); the message says what.
    Failure = 1,
    /// The command line or WORKFLOW.md is invalid; fix the input and run again.
    Config = 2,
    /// `takt audit verify` found a broken journal chain or a corrupt artifact.
    Tampered = 3,
    /// The daemon refused an operator command (e.g. approving a task that is not awaiting
    /// review); nothing changed.
    Refused = 4,
    /// `takt doctor` found a problem that stops takt from working.
    Unhealthy = 5,
}

impl From<Code> for std::process::ExitCode {
    fn from(code: Code) -> Self {
        std::process::ExitCode::from(code as u8)
    }
}

/// Maps an error to its exit code: configuration problems are 2, everything else 1.
pub fn classify(error: &anyhow::Error) -> Code {
    if error
        .chain()
        .any(|cause| cause.downcast_ref::<WorkflowError>().is_some())
    {
        Code::Config
    } else {
        Code::Failure
    }
}
