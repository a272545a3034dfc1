//! Removing workspaces (R-097, R-098, R-104 `before_remove`) and collecting orphans.
//!
//! Every removal re-runs the containment checks of [`crate::WorkspaceLayout::check_contained`]
//! right before deleting, so nothing outside the workspace root is ever touched, and a symlink
//! is only ever unlinked, never followed. Task branches are kept: they hold the work.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::WorkspaceError;
use crate::hooks::{self, HookContext, HookKind};
use crate::key::{is_valid_key, workspace_key};
use crate::manager::WorkspaceManager;
use crate::paths::absolute_normalized;

/// The directory under the workspace root where removed workspaces wait for the reaper:
/// renaming is instant, while deleting a checkout on a disk mounted with `discard` takes
/// seconds and slows every other file operation meanwhile.
pub const TRASH_DIR: &str = ".takt-trash";

/// What to remove: the workspace of an identifier, or a recorded workspace path (R-098
/// prefers the path recorded on the run; it is validated the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveTarget<'a> {
    Identifier(&'a str),
    Path(&'a Path),
}

impl<'a> From<&'a str> for RemoveTarget<'a> {
    fn from(identifier: &'a str) -> Self {
        RemoveTarget::Identifier(identifier)
    }
}

impl<'a> From<&'a Path> for RemoveTarget<'a> {
    fn from(path: &'a Path) -> Self {
        RemoveTarget::Path(path)
    }
}

impl<'a> From<&'a PathBuf> for RemoveTarget<'a> {
    fn from(path: &'a PathBuf) -> Self {
        RemoveTarget::Path(path)
    }
}

impl WorkspaceManager {
    /// Removes a workspace: runs `before_remove` when the directory exists (a failure is logged
    /// and removal proceeds, R-104), then `git worktree remove --force`, falling back to
    /// deleting the directory, then `git worktree prune`. The task branch is kept. Removing a
    /// workspace that does not exist is `Ok`.
    pub async fn remove<'a>(
        &self,
        target: impl Into<RemoveTarget<'a>>,
    ) -> Result<(), WorkspaceError> {
        let (path, identifier, key) = match target.into() {
            RemoveTarget::Identifier(identifier) => (
                self.layout.path_for(identifier)?,
                identifier.to_owned(),
                workspace_key(identifier),
            ),
            RemoveTarget::Path(path) => {
                let path = self.layout.check_contained(&absolute_normalized(path)?)?;
                // R-104 IMPL: without an identifier, the hook gets the directory name.
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (path, name.clone(), name)
            }
        };
        let is_dir = match fs_err::tokio::symlink_metadata(&path).await {
            Ok(meta) => meta.is_dir(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.prune_locked().await;
                return Ok(());
            }
            Err(e) => {
                return Err(WorkspaceError::io(
                    "inspecting the workspace before removal",
                    e,
                ));
            }
        };
        if is_dir && let Some(script) = self.settings.hooks.script(HookKind::BeforeRemove) {
            let ctx = HookContext {
                workspace: path.clone(),
                identifier: identifier.clone(),
                key,
                view: None,
            };
            let launcher = self.hook_launcher();
            if let Err(error) = hooks::run_hook_with(
                HookKind::BeforeRemove,
                script,
                &ctx,
                self.settings.hook_timeout,
                launcher.as_deref(),
            )
            .await
            {
                tracing::warn!(identifier, path = %path.display(), error = %error, "before_remove failed; removing the workspace anyway");
            }
        }
        self.discard(&path).await?;
        tracing::info!(identifier, path = %path.display(), "workspace removed");
        Ok(())
    }

    /// Removes everything directly under the root whose name is a workspace key not in
    /// `live_keys` (workspaces of finished or forgotten tasks), running `before_remove` for
    /// each, then prunes the mirror's worktree list. Entries whose names are not workspace keys
    /// were not made by takt and are left alone (with a warning). The caller must include every
    /// task that is running or about to run in `live_keys`. Returns the removed paths; a failed
    /// removal is logged and the sweep goes on.
    pub async fn gc(&self, live_keys: &HashSet<String>) -> Result<Vec<PathBuf>, WorkspaceError> {
        let root = self.layout.root();
        // Golden trees no overlay uses any more, and leftovers of an unfinished reaper.
        if let Some(overlay) = &self.settings.overlay {
            for golden in crate::overlay::unused_goldens(overlay) {
                self.trash(&golden).await;
                let index = golden.with_extension("index");
                let _ = fs_err::tokio::remove_file(index).await;
            }
            for unfinished in crate::overlay::unfinished_goldens(overlay) {
                if unfinished.is_dir() {
                    self.trash(&unfinished).await;
                } else {
                    let _ = fs_err::tokio::remove_file(unfinished).await;
                }
            }
        }
        self.reap_trash();
        let mut entries = match fs_err::tokio::read_dir(root).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(WorkspaceError::io("listing the workspace root", e)),
        };
        let mut orphans = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| WorkspaceError::io("listing the workspace root", e))?
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if live_keys.contains(&name) || name == TRASH_DIR {
                continue;
            }
            if !is_valid_key(&name) {
                tracing::warn!(path = %entry.path().display(), "not a workspace key; GC leaves it alone");
                continue;
            }
            orphans.push(entry.path());
        }
        orphans.sort();
        let mut removed = Vec::new();
        for path in orphans {
            match self.remove(&path).await {
                Ok(()) => removed.push(path),
                Err(error) => {
                    tracing::warn!(path = %path.display(), error = %error, "could not remove an orphaned workspace")
                }
            }
        }
        self.prune_locked().await;
        Ok(removed)
    }

    /// Removes the worktree at `path` (already containment-checked) and its registration, with
    /// no hook: `git worktree remove --force --force`, falling back to deleting the directory.
    pub(crate) async fn discard(&self, path: &Path) -> Result<(), WorkspaceError> {
        // The hook may have replaced the directory (even with a symlink): check again.
        self.layout.check_contained(path)?;
        self.drop_overlay(path).await;
        let is_dir = fs_err::tokio::symlink_metadata(path)
            .await
            .map(|m| m.is_dir())
            .unwrap_or(false);
        if is_dir && self.move_to_trash(path).await {
            // The registration now points at nothing; prune drops it.
            self.prune_locked().await;
            self.reap_trash();
            return Ok(());
        }
        if is_dir
            && fs_err::tokio::metadata(&self.settings.mirror_dir)
                .await
                .is_ok()
        {
            let removed = self
                .git
                .cmd(&self.settings.mirror_dir)
                .hardened()
                .args(["worktree", "remove", "--force", "--force"])
                .arg(path)
                .run()
                .await;
            if let Err(error) = removed {
                tracing::debug!(path = %path.display(), error = %error, "git worktree remove failed; deleting the directory");
            }
        }
        self.delete_path(path).await?;
        self.prune_locked().await;
        Ok(())
    }

    /// Unmounts the overlay on `path`, if it is one, and sends its layers to the trash. It
    /// unmounts even with overlays switched off since: deleting through a mounted overlay would
    /// only write whiteouts, and its mount point could never be removed.
    async fn drop_overlay(&self, path: &Path) {
        crate::overlay::detach(path);
        let Some(overlay) = &self.settings.overlay else {
            return;
        };
        if let Some(key) = path.file_name().map(|n| n.to_string_lossy().into_owned()) {
            let task = overlay.task_dir(&key);
            if fs_err::tokio::metadata(&task).await.is_ok() {
                self.trash(&task).await;
            }
        }
    }

    /// Renames `path` into the trash, or deletes it in place when that fails.
    async fn trash(&self, path: &Path) {
        let trash = self.layout.root().join(TRASH_DIR);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let moved = fs_err::tokio::create_dir_all(&trash).await.is_ok()
            && fs_err::tokio::rename(path, trash.join(format!("{name}-{stamp}")))
                .await
                .is_ok();
        if !moved {
            let _ = fs_err::tokio::remove_dir_all(path).await;
        }
    }

    /// Renames the directory at `path` into the trash; `false` when it could not be (then it
    /// is deleted in place).
    async fn move_to_trash(&self, path: &Path) -> bool {
        let trash = self.layout.root().join(TRASH_DIR);
        if fs_err::tokio::create_dir_all(&trash).await.is_err() {
            return false;
        }
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dest = trash.join(format!("{name}-{stamp}"));
        match fs_err::tokio::rename(path, &dest).await {
            Ok(()) => true,
            Err(error) => {
                tracing::debug!(%error, "could not move the workspace into the trash; deleting it in place");
                false
            }
        }
    }

    /// Empties the trash on a background thread, one reaper at a time (outside a runtime,
    /// nothing happens until the next removal). Symlinks inside are unlinked, never followed.
    pub fn reap_trash(&self) {
        use std::sync::atomic::Ordering;
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.reaping.swap(true, Ordering::AcqRel) {
            return;
        }
        let trash = self.layout.root().join(TRASH_DIR);
        let reaping = self.reaping.clone();
        runtime.spawn_blocking(move || {
            loop {
                let entries: Vec<PathBuf> = match fs_err::read_dir(&trash) {
                    Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
                    Err(_) => Vec::new(),
                };
                if entries.is_empty() {
                    break;
                }
                for entry in entries {
                    let removed = match fs_err::symlink_metadata(&entry) {
                        Ok(meta) if meta.is_dir() => fs_err::remove_dir_all(&entry),
                        Ok(_) => fs_err::remove_file(&entry),
                        Err(error) => Err(error),
                    };
                    if let Err(error) = removed {
                        tracing::warn!(%error, "could not delete a removed workspace");
                        reaping.store(false, Ordering::Release);
                        return;
                    }
                }
            }
            reaping.store(false, Ordering::Release);
        });
    }

    /// Deletes whatever is at `path` after the containment check: a symlink or file is
    /// unlinked, a directory deleted recursively (symlinks inside are unlinked, not followed).
    pub(crate) async fn delete_path(&self, path: &Path) -> Result<(), WorkspaceError> {
        self.layout.check_contained(path)?;
        // Never delete through a mounted overlay: that would write whiteouts, not free space.
        self.drop_overlay(path).await;
        let meta = match fs_err::tokio::symlink_metadata(path).await {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(WorkspaceError::io(
                    "inspecting a workspace path before deleting it",
                    e,
                ));
            }
        };
        let result = if meta.is_dir() {
            fs_err::tokio::remove_dir_all(path).await
        } else {
            fs_err::tokio::remove_file(path).await
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(WorkspaceError::io("deleting the workspace directory", e)),
        }
    }

    /// `git worktree prune` under the mirror lock.
    async fn prune_locked(&self) {
        let _guard = self.mirror_lock.lock().await;
        self.prune_worktrees().await;
    }
}
