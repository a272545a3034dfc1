//! Hot reload: the caller polls [`WorkflowWatcher::check`] about once a second;
//! a change of the file's stamp (mtime, size, SHA-256 of the content) triggers a reload, and a
//! failed reload keeps the last good workflow.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::env::{Env, absolute};
use crate::error::WorkflowError;
use crate::file::{Stamp, missing, read};
use crate::workflow::{Workflow, from_bytes};

/// What one [`WorkflowWatcher::check`] found.
#[derive(Debug, Clone)]
pub enum ReloadOutcome {
    /// Nothing new: same stamp, same content, or a problem already reported.
    Unchanged,
    /// A new valid workflow is current; it governs future dispatch, retries, hooks and launches
    /// . Also returned when a valid file comes back after a reported problem.
    Reloaded(Arc<Workflow>),
    /// The file changed but does not load; the last good workflow stays current.
    /// Reported once per distinct bad content.
    Invalid(WorkflowError),
    /// The file vanished or became unreadable; the last good workflow stays current. Reported
    /// once until the file is back.
    Missing(WorkflowError),
}

/// Keeps the current workflow and reloads it when the file changes.
pub struct WorkflowWatcher {
    path: PathBuf,
    env: Box<dyn Env + Send + Sync>,
    current: Arc<Workflow>,
    stamp: Option<Stamp>,
    problem: Option<WorkflowError>,
    bad_content: Option<String>,
}

impl std::fmt::Debug for WorkflowWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowWatcher")
            .field("path", &self.path)
            .field("fingerprint", &self.current.fingerprint)
            .field("problem", &self.problem)
            .finish_non_exhaustive()
    }
}

impl WorkflowWatcher {
    /// Loads the workflow; the first load must succeed.
    pub fn new(
        path: impl AsRef<Path>,
        env: Box<dyn Env + Send + Sync>,
    ) -> Result<Self, WorkflowError> {
        let path = absolute(path.as_ref());
        let (bytes, stamp) = read(&path).map_err(|e| missing(&path, &e))?;
        let workflow = from_bytes(&bytes, &path, env.as_ref())?;
        Ok(Self {
            path,
            env,
            current: Arc::new(workflow),
            stamp: Some(stamp),
            problem: None,
            bad_content: None,
        })
    }

    /// The last good workflow.
    pub fn current(&self) -> Arc<Workflow> {
        Arc::clone(&self.current)
    }

    /// The watched file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The problem with the file right now, if any (the last reported `Invalid` or `Missing`),
    /// for status surfaces; `None` once a good file loads again.
    pub fn problem(&self) -> Option<&WorkflowError> {
        self.problem.as_ref()
    }

    /// Looks at the file once and reloads it if it changed.
    pub fn check(&mut self) -> ReloadOutcome {
        let (bytes, stamp) = match read(&self.path) {
            Ok(read) => read,
            Err(err) => {
                if matches!(
                    self.problem,
                    Some(WorkflowError::MissingWorkflowFile { .. })
                ) {
                    return ReloadOutcome::Unchanged;
                }
                let err = missing(&self.path, &err);
                self.stamp = None;
                self.bad_content = None;
                self.problem = Some(err.clone());
                return ReloadOutcome::Missing(err);
            }
        };
        if self.stamp.as_ref() == Some(&stamp) {
            return ReloadOutcome::Unchanged;
        }
        let sha = stamp.sha256.clone();
        self.stamp = Some(stamp);
        match from_bytes(&bytes, &self.path, self.env.as_ref()) {
            Ok(workflow) => {
                let recovered = self.problem.take().is_some();
                self.bad_content = None;
                if !recovered && workflow.fingerprint == self.current.fingerprint {
                    return ReloadOutcome::Unchanged;
                }
                self.current = Arc::new(workflow);
                ReloadOutcome::Reloaded(Arc::clone(&self.current))
            }
            Err(err) => {
                if self.bad_content.as_deref() == Some(sha.as_str()) {
                    return ReloadOutcome::Unchanged;
                }
                self.bad_content = Some(sha);
                self.problem = Some(err.clone());
                ReloadOutcome::Invalid(err)
            }
        }
    }
}
