//! Repo mirrors, git worktrees, lifecycle hooks, path safety and cleanup (git via its CLI).
//!
//! The workspace stage of takt's line (DESIGN §1): each issue gets a directory
//! `<workspace.root>/<key>` that is a git worktree of a bare mirror of the
//! source repository, on the task branch `<branch_prefix><key>`.
//!
//! - [`WorkspaceManager`] is the entry point: [`sync_mirror`](WorkspaceManager::sync_mirror),
//!   [`ensure`](WorkspaceManager::ensure), [`run_hook`](WorkspaceManager::run_hook),
//!   [`commit_all`](WorkspaceManager::commit_all),
//!   [`merge_to_source`](WorkspaceManager::merge_to_source),
//!   [`remove`](WorkspaceManager::remove) and [`gc`](WorkspaceManager::gc).
//! - [`workspace_key`] and [`WorkspaceLayout`] implement the key and path-safety rules
//!   (R-099, R-105..R-107), including symlink-escape checks before every removal.
//! - [`hooks`] runs `after_create`/`before_run`/`after_run`/`before_remove` with a timeout that
//!   kills the hook's whole process group.
//! - [`git`] is the typed async wrapper around the `git` CLI every operation goes through.
//!
//! Module map: `git` (CLI wrapper), `key` (keys and branch names), `paths` (layout and
//! containment), `hooks`, `manager` (settings, ensure, commit), `mirror` (clone/fetch),
//! `merge` (the local forge), `gc` (removal and orphans), `error`.

pub mod error;
mod export;
mod gc;
pub mod git;
pub mod hooks;
pub mod key;
mod manager;
mod merge;
mod mirror;
mod mtime;
mod overlay;
pub mod paths;
mod process;

pub use error::WorkspaceError;
pub use gc::{RemoveTarget, TRASH_DIR};
pub use git::{Git, GitError};
pub use hooks::{
    HookContext, HookError, HookKind, HookLauncher, HookOutput, Hooks, run_hook, run_hook_with,
};
pub use key::{branch_name, workspace_key};
pub use manager::{
    BaseRef, BuildLayers, RepoSource, Workspace, WorkspaceManager, WorkspaceSettings,
};
pub use merge::MergeOutcome;
pub use mirror::MIRROR_REFSPEC;
pub use mtime::{FROZEN_MTIME_SECS, freeze_mtimes, set_mtime};
pub use overlay::{
    OverlaySettings, detach as unmount_overlay, mount_throwaway_overlay, overlays_work,
};
pub use paths::WorkspaceLayout;
