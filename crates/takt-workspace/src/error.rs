//! [`WorkspaceError`]: everything that can go wrong preparing, committing, merging or removing
//! a workspace. Each variant says what failed, where, and how to fix it.

use std::io;
use std::path::PathBuf;

use crate::git::GitError;
use crate::hooks::HookError;

/// A workspace operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// A git command failed while doing `action`. See [`GitError::is_retryable`].
    #[error("{action}: {source}")]
    Git {
        action: String,
        #[source]
        source: GitError,
    },
    /// A file system operation failed (the `fs-err` source names the path). Retrying helps only
    /// if the cause was transient (disk full, permissions fixed).
    #[error("{action}: {source}")]
    Io {
        action: String,
        #[source]
        source: io::Error,
    },
    /// A hook that is fatal at this point (`after_create`) failed or timed out. The partial
    /// workspace was removed, so the next attempt re-runs the hook. Fix the hook script.
    #[error(transparent)]
    Hook(#[from] HookError),
    /// A workspace path violates the containment rules: not absolute, not directly
    /// under the root, the root itself, or not named by a key. Not retryable.
    #[error("refusing to use {path} as a workspace: {reason}")]
    InvalidPath { path: PathBuf, reason: String },
    /// A path under the workspace root is a symlink that resolves outside the root (or to the
    /// root itself). takt never follows it; remove the link by hand after checking who made it.
    #[error(
        "refusing to use {path}: it is a symlink to {target}, which resolves to {resolved}, outside the workspace root {root}; remove the symlink"
    )]
    SymlinkEscape {
        path: PathBuf,
        target: String,
        resolved: String,
        root: PathBuf,
    },
    /// `workspace.repo` points at a path that does not exist. Not retryable: fix the config.
    #[error("workspace.repo {path} does not exist: point workspace.repo at a git repository")]
    SourceMissing { path: PathBuf },
    /// `workspace.repo` exists but is not a git repository. Not retryable.
    #[error(
        "workspace.repo {path} is not a git repository: run `git init` there or point workspace.repo at a repository"
    )]
    SourceNotRepository { path: PathBuf },
    /// `workspace.repo` is a directory inside a repository rather than its top level.
    #[error(
        "workspace.repo {path} is inside the git repository at {toplevel}, not its top level: point workspace.repo at {toplevel}"
    )]
    SourceNotTopLevel { path: PathBuf, toplevel: PathBuf },
    /// The source repository has no commits, so there is nothing to branch from.
    #[error(
        "workspace.repo {source_repo} has no commits yet: make an initial commit there (for example `git commit --allow-empty -m init`)"
    )]
    SourceEmpty { source_repo: String },
    /// The source's HEAD is detached and no base branch is configured.
    #[error(
        "cannot tell the base branch of workspace.repo {source_repo}: its HEAD is not on a branch; set workspace.base_branch"
    )]
    NoDefaultBranch { source_repo: String },
    /// The configured (or default) base branch does not exist in the source.
    #[error(
        "base branch `{branch}` does not exist in workspace.repo {source_repo} (branches: {}); set workspace.base_branch to an existing branch",
        if available.is_empty() { "none".to_owned() } else { available.join(", ") }
    )]
    BaseBranchMissing {
        branch: String,
        source_repo: String,
        available: Vec<String>,
    },
    /// A branch or ref name built from the configuration is not valid for git.
    #[error("`{name}` is not a valid git ref name: {hint}")]
    InvalidRefName { name: String, hint: String },
    /// The mirror directory exists but is not a bare repository takt can use.
    #[error(
        "the mirror {path} exists but is not a usable bare git repository ({detail}); move it away or delete it and takt will re-create it"
    )]
    MirrorInvalid { path: PathBuf, detail: String },
    /// Merging into the source needs the source on this machine (`RepoSource::Path`).
    #[error(
        "cannot merge into {source_repo}: local merging needs workspace.repo to be a local path; publish through a forge instead"
    )]
    MergeUnsupported { source_repo: String },
    /// The base branch is checked out in the source with uncommitted changes to tracked files;
    /// takt will not merge over them. Commit or stash them, then retry.
    #[error(
        "cannot merge into `{branch}`: it is checked out at {worktree} with uncommitted changes ({}); commit or stash them and retry",
        files.join(", ")
    )]
    SourceDirty {
        branch: String,
        worktree: PathBuf,
        files: Vec<String>,
    },
    /// The base branch moved while takt was merging (someone committed). Nothing was changed;
    /// retrying merges against the new head.
    #[error(
        "`{branch}` in {source_repo} moved from {expected} to {found} while merging; nothing was changed, retry"
    )]
    SourceMoved {
        branch: String,
        source_repo: String,
        expected: String,
        found: String,
    },
    /// A commit given to takt does not exist in the mirror.
    #[error(
        "commit `{commit}` does not exist in the mirror {mirror}: was it committed in a takt workspace?"
    )]
    UnknownCommit { commit: String, mirror: PathBuf },
}

impl WorkspaceError {
    /// Wraps a [`GitError`] with what takt was doing.
    pub fn git(action: impl Into<String>, source: GitError) -> Self {
        WorkspaceError::Git {
            action: action.into(),
            source,
        }
    }

    /// Wraps an IO error with what takt was doing.
    pub fn io(action: impl Into<String>, source: io::Error) -> Self {
        WorkspaceError::Io {
            action: action.into(),
            source,
        }
    }

    /// Whether trying the same operation again later may succeed without anyone changing the
    /// configuration or the repository.
    pub fn is_retryable(&self) -> bool {
        match self {
            WorkspaceError::Git { source, .. } => source.is_retryable(),
            WorkspaceError::Io { .. } | WorkspaceError::SourceMoved { .. } => true,
            WorkspaceError::Hook(error) => error.is_retryable(),
            _ => false,
        }
    }
}
