//! Finding and reading the workflow file.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::env::normalize;
use crate::error::WorkflowError;
use crate::workflow::{MAX_FILE_BYTES, hex_sha256};

/// The file name looked for in the working directory.
pub const WORKFLOW_FILE_NAME: &str = "WORKFLOW.md";

/// What identifies one version of the file: modification time, size and content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub modified: Option<SystemTime>,
    pub len: u64,
    pub sha256: String,
}

/// Selects the workflow file: the explicit path if given (relative to `cwd`; a
/// directory means its `WORKFLOW.md`), else `cwd/WORKFLOW.md`. The result is absolute and must
/// be an existing file, else `missing_workflow_file`.
pub fn discover(explicit: Option<&Path>, cwd: &Path) -> Result<PathBuf, WorkflowError> {
    let mut path = normalize(&cwd.join(explicit.unwrap_or(Path::new(WORKFLOW_FILE_NAME))));
    if explicit.is_some() && fs_err::metadata(&path).is_ok_and(|m| m.is_dir()) {
        path.push(WORKFLOW_FILE_NAME);
    }
    match fs_err::metadata(&path) {
        Ok(meta) if meta.is_file() => Ok(path),
        Ok(_) => Err(WorkflowError::MissingWorkflowFile {
            path,
            reason: "it is not a regular file".to_owned(),
            fix: fix_for(explicit),
        }),
        Err(err) => Err(WorkflowError::MissingWorkflowFile {
            reason: reason(&err),
            path,
            fix: fix_for(explicit),
        }),
    }
}

fn fix_for(explicit: Option<&Path>) -> String {
    if explicit.is_some() {
        "check the path, or create the file (for example with `takt init`)".to_owned()
    } else {
        format!(
            "run takt in a directory with a {WORKFLOW_FILE_NAME}, pass its path, or create one with `takt init`"
        )
    }
}

/// Reads the file (at most [`MAX_FILE_BYTES`] + 1 bytes) and its stamp.
pub(crate) fn read(path: &Path) -> io::Result<(Vec<u8>, Stamp)> {
    let file = fs_err::File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "is a directory",
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    let stamp = Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        sha256: hex_sha256(&bytes),
    };
    Ok((bytes, stamp))
}

fn reason(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::NotFound => "the file does not exist".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        io::ErrorKind::IsADirectory => "it is a directory".to_owned(),
        kind => kind.to_string(),
    }
}

/// The `missing_workflow_file` error for an IO failure on `path`.
pub(crate) fn missing(path: &Path, err: &io::Error) -> WorkflowError {
    WorkflowError::MissingWorkflowFile {
        path: path.to_path_buf(),
        reason: reason(err),
        fix: "create it (for example with `takt init`) or pass the path of an existing WORKFLOW.md"
            .to_owned(),
    }
}
