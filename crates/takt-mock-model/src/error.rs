//! Errors of the mock model server.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything that can go wrong while loading scenarios or running the server.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    /// A scenario file (or an in-memory scenario) is not valid. `path` names the file, or is
    /// `<inline>` for scenarios built in code.
    #[error("scenario {}: {message}", path.display())]
    Scenario {
        /// The file that holds the scenario.
        path: PathBuf,
        /// What is wrong with it, including the line and column when the parser knows them.
        message: String,
    },
    /// Two scenarios have the same name.
    #[error("duplicate scenario name `{name}` (in {} and {})", first.display(), second.display())]
    DuplicateScenario {
        /// The name used twice.
        name: String,
        /// Where it was first defined.
        first: PathBuf,
        /// Where it was defined again.
        second: PathBuf,
    },
    /// Reading a scenario directory or file, or writing the request log, failed. The message of
    /// `source` already names the path (it comes from `fs-err`).
    #[error("{source}")]
    Io {
        /// The path being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Binding the listening socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address we tried to bind.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed while running.
    #[error("mock model server failed: {0}")]
    Serve(#[source] std::io::Error),
}

impl MockError {
    pub(crate) fn scenario(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        MockError::Scenario {
            path: path.into(),
            message: message.into(),
        }
    }
}
