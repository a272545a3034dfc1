//! [`WorkspaceManager`]: per-issue git worktrees made from a bare mirror of the source repo.
//!
//! This module holds the settings and value types, workspace creation and reuse
//! ([`WorkspaceManager::ensure`], R-100..R-102), hooks and committing. The mirror lives in
//! `mirror.rs`, merging into the source in `merge.rs`, removal and GC in `gc.rs`.
//!
//! Every workspace is a linked worktree of the mirror on the branch `<branch_prefix><key>`, so
//! creating one costs a checkout and no clone, and all task branches and attempt refs
//! (`refs/takt/runs/<run>/<attempt>`) live in the mirror where publishing can find them.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::Mutex;

use crate::error::WorkspaceError;
use crate::git::{Git, StatusEntry};
use crate::hooks::{self, HookContext, HookError, HookKind, Hooks};
use crate::key::{branch_name, workspace_key};
use crate::paths::{WorkspaceLayout, absolute_normalized, normalize};

/// Where the code comes from (`workspace.repo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoSource {
    /// A repository on this machine (the common case: `repo: .`). Enables local merging.
    Path(PathBuf),
    /// A URL git can clone (`https://...`, `git@host:...`, `ssh://...`).
    Url(String),
}

impl fmt::Display for RepoSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RepoSource::Path(path) => write!(f, "{}", path.display()),
            RepoSource::Url(url) => f.write_str(url),
        }
    }
}

/// Configuration of a [`WorkspaceManager`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceSettings {
    /// `workspace.root`: the directory holding one directory per issue.
    pub root: PathBuf,
    /// The bare mirror of the source, e.g. `<state>/mirror.git`. Must not be inside `root`.
    pub mirror_dir: PathBuf,
    pub source: RepoSource,
    /// The branch tasks start from and merge into; `None` means the source's HEAD branch.
    pub base_branch: Option<String>,
    /// Prefix of task branches, e.g. `takt/`.
    pub branch_prefix: String,
    pub hooks: Hooks,
    /// `hooks.timeout_ms`.
    pub hook_timeout: Duration,
    /// Overlay workspaces over shared golden trees (`None`: plain worktrees).
    pub overlay: Option<crate::overlay::OverlaySettings>,
}

/// The commit tasks start from: the tip of the base branch in the mirror after a sync.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaseRef {
    /// The base branch name, e.g. `main`.
    pub branch: String,
    /// The full commit sha of its tip.
    pub sha: String,
}

/// A prepared workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    /// `<root>/<key>`, absolute.
    pub path: PathBuf,
    /// The workspace key.
    pub key: String,
    /// The tracker identifier it was made for.
    pub identifier: String,
    /// The task branch, `<branch_prefix><key>` (made ref-safe).
    pub branch: String,
    /// The base commit given to [`WorkspaceManager::ensure`]; changes are measured against it.
    pub base_sha: String,
    /// The worktree's registration in the mirror (its git directory), found from the mirror's
    /// side: takt's own git commands use it explicitly, so a `.git` file the agent rewrote
    /// can point them nowhere else.
    pub git_dir: PathBuf,
    /// Whether this call created the workspace; `after_create` ran only then.
    pub created_now: bool,
}

/// See [`WorkspaceManager::build_layers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildLayers {
    pub dir: PathBuf,
    /// The workspace's own upper layer: every file in it differs from the golden commit (or
    /// is new); the rest are the golden tree's.
    pub upper: PathBuf,
    /// The commit whose files the workspace's untouched files are (with the frozen mtime):
    /// a build cache must be of this commit to be right for them.
    pub golden_commit: String,
}

/// A file in a worktree's registration directory in the mirror that marks a workspace whose
/// `after_create` has not finished yet. A workspace found with it (the daemon crashed during
/// the hook) is recreated, so the hook's work is never silently missing.
const CREATING_MARKER: &str = "takt-creating";

/// What is at a workspace path before [`WorkspaceManager::ensure`] acts.
#[derive(Debug, PartialEq, Eq)]
enum Existing {
    Missing,
    /// A usable worktree; the path is its registration directory in the mirror.
    Worktree(PathBuf),
    /// Something that is not a usable worktree of this mirror; the text says what.
    Stale(String),
}

/// Where git keeps a worktree's lock (and its reason) in the registration.
const LOCK_FILE: &str = "locked";
/// The lock reason of a worktree still being made: git's own while it checks out, takt's until
/// an overlay workspace is mounted.
const INITIALIZING: &str = "initializing";

/// Creates, reuses, commits in, merges and removes workspaces. Share it behind an `Arc`;
/// operations that change the mirror's worktree list or refs are serialized internally.
#[derive(Debug)]
pub struct WorkspaceManager {
    pub(crate) settings: WorkspaceSettings,
    pub(crate) layout: WorkspaceLayout,
    pub(crate) git: Git,
    /// Serializes fetches and worktree additions/prunes on the mirror.
    pub(crate) mirror_lock: Mutex<()>,
    /// Serializes merges into the source.
    pub(crate) merge_lock: Mutex<()>,
    /// Serializes making golden trees: a task waits for the one being made in the background
    /// instead of making it a second time.
    pub(crate) golden_lock: Mutex<()>,
    /// Whether the source and the mirror have been checked once (they are re-checked only
    /// when a check or fetch fails, which resets this).
    pub(crate) validated: std::sync::atomic::AtomicBool,
    /// The base branch once resolved (configured, or the source's HEAD branch).
    pub(crate) base_branch_name: std::sync::OnceLock<String>,
    /// Whether a trash reaper is running.
    pub(crate) reaping: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Where hooks start (the agent sandbox), when set.
    pub(crate) hook_launcher: std::sync::RwLock<Option<std::sync::Arc<dyn hooks::HookLauncher>>>,
}

impl WorkspaceManager {
    /// A manager for `settings`. Paths are made absolute and normalized; nothing is created
    /// until it is needed.
    pub fn new(settings: WorkspaceSettings) -> Result<Self, WorkspaceError> {
        Self::with_git(settings, Git::new())
    }

    /// Like [`WorkspaceManager::new`] with a specific [`Git`] (another binary or timeout).
    pub fn with_git(mut settings: WorkspaceSettings, git: Git) -> Result<Self, WorkspaceError> {
        let layout = WorkspaceLayout::new(&settings.root)?;
        settings.root = layout.root().to_path_buf();
        settings.mirror_dir = absolute_normalized(&settings.mirror_dir)?;
        if let RepoSource::Path(path) = &settings.source {
            settings.source = RepoSource::Path(absolute_normalized(path)?);
        }
        if settings.mirror_dir.starts_with(layout.root()) {
            return Err(WorkspaceError::InvalidPath {
                path: settings.mirror_dir,
                reason: format!(
                    "the mirror must not be inside the workspace root {} (GC would treat it as an orphan); keep it in takt's state directory",
                    layout.root().display()
                ),
            });
        }
        if let RepoSource::Path(source) = &settings.source
            && source.starts_with(layout.root())
        {
            return Err(WorkspaceError::InvalidPath {
                path: layout.root().to_path_buf(),
                reason: format!(
                    "workspace.root must not contain workspace.repo {} (cleanup removes everything under the root that is not a live workspace); use a dedicated directory such as .takt/workspaces",
                    source.display()
                ),
            });
        }
        Ok(WorkspaceManager {
            settings,
            layout,
            git,
            mirror_lock: Mutex::new(()),
            merge_lock: Mutex::new(()),
            golden_lock: Mutex::new(()),
            validated: std::sync::atomic::AtomicBool::new(false),
            base_branch_name: std::sync::OnceLock::new(),
            reaping: std::sync::Arc::default(),
            hook_launcher: std::sync::RwLock::new(None),
        })
    }

    /// The settings, with paths made absolute.
    pub fn settings(&self) -> &WorkspaceSettings {
        &self.settings
    }

    /// The workspace root and its path rules.
    pub fn layout(&self) -> &WorkspaceLayout {
        &self.layout
    }

    /// The git tool this manager uses.
    pub fn git(&self) -> &Git {
        &self.git
    }

    /// For an overlay workspace: a directory of its own for layers shown over it in the
    /// sandbox (a build cache's upper layer), removed with the workspace, and the commit its
    /// golden tree holds. `None` for a worktree.
    pub fn build_layers(&self, ws: &Workspace) -> Option<BuildLayers> {
        let overlay = self.settings.overlay.as_ref()?;
        if !crate::overlay::is_mounted(&ws.path) {
            return None;
        }
        let task = overlay.task_dir(&ws.key);
        let golden_commit = fs_err::read_to_string(task.join("lower")).ok()?;
        Some(BuildLayers {
            dir: task.join("build"),
            upper: task.join("upper"),
            golden_commit: golden_commit.trim().to_owned(),
        })
    }

    /// `<root>/<key>` for `identifier`, containment-checked.
    pub fn path_for(&self, identifier: &str) -> Result<PathBuf, WorkspaceError> {
        self.layout.path_for(identifier)
    }

    /// The task branch of `identifier`: `<branch_prefix><key>`.
    pub fn branch_for(&self, identifier: &str) -> String {
        branch_name(&self.settings.branch_prefix, &workspace_key(identifier))
    }

    /// The commit a finished attempt left on the task branch without the daemon hearing of it
    /// (a crash between `commit_all` and the journal): the branch head, when it carries the
    /// `Takt-Task: <identifier>` trailer and is not `known` (the task's last reported commit).
    /// `None` when the branch does not exist or its head is not such a commit.
    pub async fn unreported_commit(
        &self,
        identifier: &str,
        known: Option<&str>,
    ) -> Result<Option<String>, WorkspaceError> {
        let branch = format!("refs/heads/{}", self.branch_for(identifier));
        let out = self
            .git
            .cmd(&self.settings.mirror_dir)
            .args(["log", "-1", "--format=%H%x00%B", &branch, "--"])
            .output_allowing(&[0, 128])
            .await
            .map_err(|e| WorkspaceError::git(format!("reading the head of {branch}"), e))?;
        if !out.success() {
            return Ok(None);
        }
        let Some((sha, body)) = out.stdout.split_once('\0') else {
            return Ok(None);
        };
        let sha = sha.trim();
        let trailer = format!("Takt-Task: {identifier}");
        let ours = body.lines().any(|line| line.trim() == trailer);
        Ok((ours && Some(sha) != known).then(|| sha.to_owned()))
    }

    /// Creates the workspace of `identifier` from `base`, or reuses the existing one.
    ///
    /// A valid worktree at the path is reused untouched (`created_now = false`, R-102). A file
    /// or symlink at the path, or a directory that is not a worktree of the mirror (left by a
    /// crash), is removed and replaced. A new worktree checks out the task branch, which is
    /// created at `base.sha` or, when an earlier attempt left it, reused as it is (moved
    /// forward to `base.sha` only if it has no commits of its own). `after_create` runs only for
    /// a new workspace; when it fails the workspace is removed again, so the next attempt
    /// re-runs it.
    pub async fn ensure(
        &self,
        identifier: &str,
        base: &BaseRef,
    ) -> Result<Workspace, WorkspaceError> {
        let key = workspace_key(identifier);
        let path = self.layout.path_for(identifier)?;
        let branch = branch_name(&self.settings.branch_prefix, &key);
        self.check_ref_name(&format!("refs/heads/{branch}"), "workspace.branch_prefix")
            .await?;
        fs_err::tokio::create_dir_all(self.layout.root())
            .await
            .map_err(|e| WorkspaceError::io("creating the workspace root", e))?;

        let guard = self.mirror_lock.lock().await;
        // Re-check under the lock: the path may have changed while we waited.
        self.layout.check_contained(&path)?;
        let workspace = |created_now, git_dir| Workspace {
            path: path.clone(),
            key: key.clone(),
            identifier: identifier.to_owned(),
            branch: branch.clone(),
            base_sha: base.sha.clone(),
            git_dir,
            created_now,
        };
        // An overlay whose mount is gone (a reboot) comes back before anything looks at the
        // directory: unmounted, it is an empty mount point that would pass for a checkout
        // with every file deleted once its `.git` file were repaired.
        let mut unmountable = None;
        if let Some(overlay) = &self.settings.overlay {
            match crate::overlay::remount(overlay, &key, &path) {
                Ok(true) => {
                    tracing::info!(identifier, path = %path.display(), "overlay workspace mounted again");
                }
                Ok(false) => {}
                Err(reason) => unmountable = Some(reason),
            }
        }
        let existing = match unmountable {
            Some(reason) => Existing::Stale(format!(
                "an overlay workspace that cannot be mounted again ({reason}); its uncommitted \
                 edits are lost, its commits are on the task branch"
            )),
            None => self.inspect(&path).await?,
        };
        match existing {
            Existing::Worktree(admin) => {
                tracing::debug!(identifier, path = %path.display(), "reusing workspace");
                return Ok(workspace(false, admin));
            }
            Existing::Missing => {}
            Existing::Stale(what) => {
                tracing::warn!(identifier, path = %path.display(), what = %what, "replacing something that is not a usable workspace");
                // A registration left locked (creation cut short) would survive the prune
                // and refuse the new worktree at its path.
                if let Some(admin) = self.registration_of(&path).await {
                    let _ = fs_err::tokio::remove_file(admin.join(LOCK_FILE)).await;
                }
                self.delete_path(&path).await?;
            }
        }
        // A fresh task branch starts at the base: an overlay of the base's golden tree.
        let overlay = match &self.settings.overlay {
            Some(overlay) if !self.branch_exists(&branch).await? => Some(overlay),
            _ => None,
        };
        self.add_worktree(&path, &branch, &base.sha, overlay.is_some())
            .await?;
        if let Some(overlay) = overlay {
            let admin =
                self.registration_of(&path)
                    .await
                    .ok_or_else(|| WorkspaceError::InvalidPath {
                        path: path.clone(),
                        reason: "git created the worktree but it is not registered in the mirror"
                            .into(),
                    })?;
            let attached = async {
                let golden = {
                    let _making = self.golden_lock.lock().await;
                    crate::overlay::ensure_golden(
                        overlay,
                        &self.git,
                        &self.settings.mirror_dir,
                        &base.sha,
                    )
                    .await?
                };
                crate::overlay::attach(overlay, &key, &path, &admin, &base.sha, &golden).await
            };
            let attached = attached.await;
            // Locked as initializing until now (`add_worktree`): a daemon killed before the
            // mount left an empty directory that must not pass for the checkout.
            fs_err::tokio::remove_file(admin.join(LOCK_FILE))
                .await
                .map_err(|e| WorkspaceError::io("unlocking the new workspace", e))?;
            if let Err(error) = attached {
                // The task still gets a workspace: a plain checkout, said so in the log.
                tracing::warn!(identifier, path = %path.display(), %error, "the overlay workspace failed; this workspace is a git worktree");
                // Under the mirror lock: `discard` would wait for it forever.
                self.delete_path(&path).await?;
                self.add_worktree(&path, &branch, &base.sha, false).await?;
            }
        }
        let Existing::Worktree(admin) = self.inspect(&path).await? else {
            return Err(WorkspaceError::InvalidPath {
                path: path.clone(),
                reason: format!(
                    "git created the worktree but it is not registered in the mirror {}",
                    self.settings.mirror_dir.display()
                ),
            });
        };
        let has_hook = self.settings.hooks.script(HookKind::AfterCreate).is_some();
        let marker = if has_hook {
            Some(self.mark_creating(&admin, identifier).await?)
        } else {
            None
        };
        drop(guard);
        tracing::info!(identifier, path = %path.display(), branch = %branch, base = %base.sha, "workspace created");

        let created = workspace(true, admin);
        if let Err(error) = self.run_hook(HookKind::AfterCreate, &created).await {
            // R-102 IMPL: remove the partial workspace so the next attempt re-runs the hook.
            if let Err(cleanup) = self.discard(&path).await {
                tracing::warn!(identifier, path = %path.display(), error = %cleanup, "could not remove the workspace after after_create failed");
            }
            return Err(error.into());
        }
        if let Some(marker) = marker {
            fs_err::tokio::remove_file(&marker)
                .await
                .map_err(|e| WorkspaceError::io("marking the workspace as complete", e))?;
        }
        Ok(created)
    }

    /// Runs the configured hook `kind` in `ws` with the configured timeout; `Ok` when no hook
    /// is configured. Whether a failure matters is the caller's decision (see
    /// [`HookKind::is_fatal`]); it is logged here either way.
    pub async fn run_hook(&self, kind: HookKind, ws: &Workspace) -> Result<(), HookError> {
        self.run_hook_in_view(kind, ws, None).await
    }

    /// [`WorkspaceManager::run_hook`] for a hook that, run in the agent's sandbox, sees the
    /// workspace where the agent does (`view`, see [`HookContext::view`]).
    pub async fn run_hook_in_view(
        &self,
        kind: HookKind,
        ws: &Workspace,
        view: Option<&takt_core::ports::WorkspaceView>,
    ) -> Result<(), HookError> {
        let Some(script) = self.settings.hooks.script(kind) else {
            return Ok(());
        };
        let ctx = HookContext {
            workspace: ws.path.clone(),
            identifier: ws.identifier.clone(),
            key: ws.key.clone(),
            view: view.cloned(),
        };
        let launcher = self.hook_launcher();
        hooks::run_hook_with(
            kind,
            script,
            &ctx,
            self.settings.hook_timeout,
            launcher.as_deref(),
        )
        .await
        .map(|_| ())
    }

    /// Commits everything in `ws` (`git add -A`) as `takt <takt@localhost>` with `message`,
    /// a blank line and the trailer `Takt-Task: <identifier>`.
    ///
    /// Returns the sha of the workspace's HEAD when the workspace holds a change: a new commit,
    /// or commits the agent made itself on top of the base ([`WorkspaceManager::changed_since`]).
    /// Returns `None` when nothing changed (no empty commits). With `attempt_ref`
    /// (`refs/takt/runs/<run>/<attempt>`) the ref is pointed at the returned commit, so the
    /// attempt's result survives whatever later happens to the branch.
    pub async fn commit_all(
        &self,
        ws: &Workspace,
        message: &str,
        identifier: &str,
        attempt_ref: Option<&str>,
    ) -> Result<Option<String>, WorkspaceError> {
        if let Some(name) = attempt_ref {
            if !name.starts_with("refs/takt/") {
                return Err(WorkspaceError::InvalidRefName {
                    name: name.to_owned(),
                    hint:
                        "attempt refs must live under refs/takt/ (refs/takt/runs/<run>/<attempt>)"
                            .into(),
                });
            }
            self.check_ref_name(name, "the attempt ref").await?;
        }
        let where_ = ws.path.display();
        self.ws_cmd(ws)
            .hardened()
            .args(["add", "-A"])
            .run()
            .await
            .map_err(|e| WorkspaceError::git(format!("staging changes in {where_}"), e))?;
        let staged = !self
            .ws_cmd(ws)
            .hardened()
            .args(["diff", "--cached", "--quiet"])
            .output_allowing(&[0, 1])
            .await
            .map_err(|e| {
                WorkspaceError::git(format!("checking for staged changes in {where_}"), e)
            })?
            .success();
        if staged {
            let full_message = commit_message(message, identifier);
            self.ws_cmd(ws)
                .hardened()
                .takt_identity()
                .args([
                    "commit",
                    "--quiet",
                    "--no-verify",
                    "--cleanup=whitespace",
                    "-m",
                    &full_message,
                ])
                .run()
                .await
                .map_err(|e| WorkspaceError::git(format!("committing in {where_}"), e))?;
        } else if !self.changed_since(ws, &ws.base_sha).await? {
            tracing::debug!(identifier, path = %where_, "nothing to commit");
            return Ok(None);
        }
        let head = self.head(ws).await?;
        if let Some(name) = attempt_ref {
            self.ws_cmd(ws)
                .args(["update-ref", "-m", "takt: attempt result", name, &head])
                .run()
                .await
                .map_err(|e| WorkspaceError::git(format!("pointing {name} at {head}"), e))?;
        }
        tracing::info!(identifier, path = %where_, commit = %head, new_commit = staged, "workspace changes committed");
        Ok(Some(head))
    }

    /// Whether the workspace's HEAD has commits that `base_sha` does not contain (the agent or
    /// an earlier [`WorkspaceManager::commit_all`] committed on top of the base). A HEAD that is
    /// the base or behind it is unchanged. Uncommitted files are not considered; see
    /// [`WorkspaceManager::dirty_files`].
    pub async fn changed_since(
        &self,
        ws: &Workspace,
        base_sha: &str,
    ) -> Result<bool, WorkspaceError> {
        let head = self.head(ws).await?;
        if head == base_sha {
            return Ok(false);
        }
        let contained = self
            .git
            .is_ancestor(&self.settings.mirror_dir, &head, base_sha)
            .await
            .map_err(|e| {
                WorkspaceError::git(
                    format!(
                        "comparing HEAD of {} with the base {base_sha}",
                        ws.path.display()
                    ),
                    e,
                )
            })?;
        Ok(!contained)
    }

    /// Uncommitted changes in the workspace, untracked files included (ignored files not).
    pub async fn dirty_files(&self, ws: &Workspace) -> Result<Vec<StatusEntry>, WorkspaceError> {
        Git::status_with(self.ws_cmd(ws).hardened(), true)
            .await
            .map_err(|e| {
                WorkspaceError::git(format!("reading the status of {}", ws.path.display()), e)
            })
    }

    pub(crate) async fn head(&self, ws: &Workspace) -> Result<String, WorkspaceError> {
        // The registration directory is a git directory of its own (HEAD, commondir).
        self.git
            .rev_parse(&ws.git_dir, "HEAD")
            .await
            .map_err(|e| WorkspaceError::git(format!("reading HEAD of {}", ws.path.display()), e))?
            .ok_or_else(|| WorkspaceError::InvalidPath {
                path: ws.path.clone(),
                reason: "its HEAD names no commit; it is not a usable workspace".into(),
            })
    }

    pub(crate) async fn check_ref_name(
        &self,
        name: &str,
        what: &str,
    ) -> Result<(), WorkspaceError> {
        let valid = self
            .git
            .is_valid_ref_name("/", name)
            .await
            .map_err(|e| WorkspaceError::git(format!("checking the ref name {name}"), e))?;
        if valid {
            Ok(())
        } else {
            Err(WorkspaceError::InvalidRefName {
                name: name.to_owned(),
                hint: format!("check {what} (see `git help check-ref-format`)"),
            })
        }
    }

    /// Writes [`CREATING_MARKER`] into the registration `admin` of the worktree just added.
    async fn mark_creating(
        &self,
        admin: &Path,
        identifier: &str,
    ) -> Result<PathBuf, WorkspaceError> {
        let marker = admin.join(CREATING_MARKER);
        fs_err::tokio::write(&marker, identifier)
            .await
            .map_err(|e| WorkspaceError::io("marking the workspace as being created", e))?;
        Ok(marker)
    }

    /// Makes the golden tree of `sha` now (the base just moved there), so the next task that
    /// starts from it gets its workspace in milliseconds instead of paying for the checkout.
    /// Does nothing without overlay workspaces.
    pub async fn prepare_golden(&self, sha: &str) -> Result<(), WorkspaceError> {
        let Some(overlay) = &self.settings.overlay else {
            return Ok(());
        };
        let _making = self.golden_lock.lock().await;
        crate::overlay::ensure_golden(overlay, &self.git, &self.settings.mirror_dir, sha)
            .await
            .map(drop)
    }

    /// The golden tree of `sha`, when overlay workspaces are on and it has been made: the
    /// base's files, read-only.
    pub fn golden_tree(&self, sha: &str) -> Option<PathBuf> {
        let golden = self.settings.overlay.as_ref()?.golden(sha);
        golden.is_dir().then_some(golden)
    }

    /// Decides whether `path` holds a usable worktree of the mirror, using the file system only
    /// (a transient git failure must never make a workspace look stale and get deleted).
    async fn inspect(&self, path: &Path) -> Result<Existing, WorkspaceError> {
        let meta = match fs_err::tokio::symlink_metadata(path).await {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Existing::Missing),
            Err(e) => return Err(WorkspaceError::io("inspecting the workspace path", e)),
        };
        if meta.file_type().is_symlink() {
            return Ok(Existing::Stale("a symlink".into()));
        }
        if !meta.is_dir() {
            return Ok(Existing::Stale("a file that is not a directory".into()));
        }
        // The registration whose back-pointer names this directory: the agent may have
        // rewritten `.git`, never the mirror (read-only in its sandbox).
        let Some(admin_real) = self.registration_of(path).await else {
            return Ok(Existing::Stale(
                "a directory no worktree of the mirror is registered at".into(),
            ));
        };
        self.repair_dot_git(path, &admin_real).await?;
        if let Ok(lock) = fs_err::tokio::read_to_string(admin_real.join(LOCK_FILE)).await
            && lock.trim() == INITIALIZING
        {
            return Ok(Existing::Stale(
                "a worktree whose creation was interrupted".into(),
            ));
        }
        if fs_err::tokio::metadata(admin_real.join("HEAD"))
            .await
            .is_err()
        {
            return Ok(Existing::Stale(
                "a worktree whose registration has no HEAD".into(),
            ));
        }
        if fs_err::tokio::symlink_metadata(admin_real.join(CREATING_MARKER))
            .await
            .is_ok()
        {
            return Ok(Existing::Stale(
                "a workspace whose after_create hook never finished (the daemon stopped during it)"
                    .into(),
            ));
        }
        Ok(Existing::Worktree(admin_real))
    }

    /// Starts hooks through `launcher` from now on (`None`: directly).
    pub fn set_hook_launcher(&self, launcher: Option<std::sync::Arc<dyn hooks::HookLauncher>>) {
        if let Ok(mut slot) = self.hook_launcher.write() {
            *slot = launcher;
        }
    }

    pub(crate) fn hook_launcher(&self) -> Option<std::sync::Arc<dyn hooks::HookLauncher>> {
        self.hook_launcher.read().ok().and_then(|slot| slot.clone())
    }

    /// Whether the task branch already exists in the mirror (an earlier attempt's work).
    async fn branch_exists(&self, branch: &str) -> Result<bool, WorkspaceError> {
        let branch_ref = format!("refs/heads/{branch}");
        self.git
            .rev_parse(&self.settings.mirror_dir, &branch_ref)
            .await
            .map(|tip| tip.is_some())
            .map_err(|e| WorkspaceError::git(format!("looking up {branch_ref} in the mirror"), e))
    }

    /// The mirror's registration directory of the worktree at `path`, if any.
    pub(crate) async fn registration_of(&self, path: &Path) -> Option<PathBuf> {
        let worktrees = self.settings.mirror_dir.join("worktrees");
        let expected = normalize(&path.join(".git"));
        let mut entries = fs_err::tokio::read_dir(&worktrees).await.ok()?;
        while let Ok(Some(entry)) = entries.next_entry().await {
            let admin = entry.path();
            let Ok(back) = fs_err::tokio::read_to_string(admin.join("gitdir")).await else {
                continue;
            };
            if normalize(Path::new(back.trim())) == expected {
                return fs_err::tokio::canonicalize(&admin).await.ok();
            }
        }
        None
    }

    /// Puts back the `.git` file of the worktree at `path` if it no longer points at its
    /// registration (git inside the sandbox then keeps working, and nothing else is used).
    async fn repair_dot_git(&self, path: &Path, admin: &Path) -> Result<(), WorkspaceError> {
        let dot_git = path.join(".git");
        let wanted = format!("gitdir: {}\n", admin.display());
        let intact = match fs_err::tokio::symlink_metadata(&dot_git).await {
            Ok(meta) if meta.is_file() => fs_err::tokio::read_to_string(&dot_git)
                .await
                .is_ok_and(|text| text.trim() == wanted.trim()),
            _ => false,
        };
        if intact {
            return Ok(());
        }
        tracing::warn!(path = %path.display(), "the workspace's .git was changed; restoring it");
        match fs_err::tokio::symlink_metadata(&dot_git).await {
            Ok(meta) if meta.is_dir() => fs_err::tokio::remove_dir_all(&dot_git).await,
            Ok(_) => fs_err::tokio::remove_file(&dot_git).await,
            Err(_) => Ok(()),
        }
        .map_err(|e| WorkspaceError::io("removing a replaced .git", e))?;
        fs_err::tokio::write(&dot_git, wanted)
            .await
            .map_err(|e| WorkspaceError::io("restoring the workspace's .git file", e))
    }

    /// A git command on the workspace `ws` with its git directory given explicitly: no
    /// discovery, so neither a rewritten `.git` nor the workspace's owner (the sandbox's agent
    /// user) changes which repository it acts on.
    pub(crate) fn ws_cmd(&self, ws: &Workspace) -> crate::git::GitCommand {
        self.git
            .cmd(&ws.path)
            .env("GIT_DIR", &ws.git_dir)
            .env("GIT_WORK_TREE", &ws.path)
    }

    /// `git worktree add` under the mirror lock: checks out the existing task branch, or creates
    /// it at `base_sha`. Cleans up after a failed add.
    async fn add_worktree(
        &self,
        path: &Path,
        branch: &str,
        base_sha: &str,
        no_checkout: bool,
    ) -> Result<(), WorkspaceError> {
        let mirror = &self.settings.mirror_dir;
        self.prune_worktrees().await;
        let branch_ref = format!("refs/heads/{branch}");
        let existing = self.git.rev_parse(mirror, &branch_ref).await.map_err(|e| {
            WorkspaceError::git(format!("looking up {branch_ref} in the mirror"), e)
        })?;
        let path_arg = path.as_os_str();
        let command = self
            .git
            .cmd(mirror)
            .hardened()
            .args(["worktree", "add", "--quiet"]);
        // Without a checkout the directory stays empty until its overlay is mounted: locked
        // as initializing until then, so a crash in between leaves it stale, not reusable.
        let command = if no_checkout {
            command.args(["--no-checkout", "--lock", "--reason", INITIALIZING])
        } else {
            command
        };
        let command = match &existing {
            Some(tip) => {
                // Reuse the branch an earlier attempt left. Move it forward only when that
                // loses nothing (it has no commits the new base lacks).
                if tip != base_sha
                    && self
                        .git
                        .is_ancestor(mirror, tip, base_sha)
                        .await
                        .unwrap_or(false)
                {
                    self.git
                        .run(
                            mirror,
                            [
                                "update-ref",
                                "-m",
                                "takt: advance to base",
                                &branch_ref,
                                base_sha,
                                tip,
                            ],
                        )
                        .await
                        .map_err(|e| {
                            WorkspaceError::git(format!("advancing {branch} to the base"), e)
                        })?;
                }
                tracing::info!(branch, "reusing the existing task branch");
                command.arg(path_arg).arg(branch)
            }
            None => command.args(["-b", branch]).arg(path_arg).arg(base_sha),
        };
        if let Err(error) = command.run().await {
            if let Err(cleanup) = self.delete_path(path).await {
                tracing::warn!(path = %path.display(), error = %cleanup, "could not clean up after a failed worktree add");
            }
            self.prune_worktrees().await;
            return Err(WorkspaceError::git(
                format!(
                    "creating the workspace {} on branch {branch}",
                    path.display()
                ),
                error,
            ));
        }
        Ok(())
    }

    /// `git worktree prune` in the mirror; failures are logged (a missing mirror has nothing to
    /// prune).
    pub(crate) async fn prune_worktrees(&self) {
        if fs_err::tokio::metadata(&self.settings.mirror_dir)
            .await
            .is_err()
        {
            return;
        }
        if let Err(error) = self
            .git
            .run(&self.settings.mirror_dir, ["worktree", "prune"])
            .await
        {
            tracing::warn!(error = %error, "git worktree prune failed");
        }
    }
}

/// `message` (or a default), a blank line and the `Takt-Task` trailer.
fn commit_message(message: &str, identifier: &str) -> String {
    let identifier: String = identifier
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let identifier = identifier.trim();
    let subject = message.trim();
    let subject = if subject.is_empty() {
        format!("takt: changes for {identifier}")
    } else {
        subject.to_owned()
    };
    format!("{subject}\n\nTakt-Task: {identifier}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_message_has_the_trailer_after_a_blank_line() {
        assert_eq!(
            commit_message("fix it\n", "ABC-1"),
            "fix it\n\nTakt-Task: ABC-1\n"
        );
        assert_eq!(
            commit_message("  ", "A\nB"),
            "takt: changes for A B\n\nTakt-Task: A B\n"
        );
    }

    fn settings(root: &str, mirror: &str, source: &str) -> WorkspaceSettings {
        WorkspaceSettings {
            root: PathBuf::from(root),
            mirror_dir: PathBuf::from(mirror),
            source: RepoSource::Path(PathBuf::from(source)),
            base_branch: None,
            branch_prefix: "takt/".into(),
            hooks: Hooks::default(),
            hook_timeout: Duration::from_secs(1),
            overlay: None,
        }
    }

    #[test]
    fn roots_that_cleanup_could_hurt_are_rejected() {
        // The mirror inside the root would be collected as an orphan.
        let err =
            WorkspaceManager::new(settings("/tmp/w", "/tmp/w/mirror.git", "/src")).unwrap_err();
        assert!(
            err.to_string().contains("mirror must not be inside"),
            "{err}"
        );
        // So would the source repository.
        let err = WorkspaceManager::new(settings("/srv", "/state/m.git", "/srv/repo")).unwrap_err();
        assert!(
            err.to_string().contains("must not contain workspace.repo"),
            "{err}"
        );
        let err =
            WorkspaceManager::new(settings("/srv/repo", "/state/m.git", "/srv/repo")).unwrap_err();
        assert!(matches!(err, WorkspaceError::InvalidPath { .. }), "{err}");
        // The usual layout: the root inside the repository, the mirror in the state directory.
        let ok = WorkspaceManager::new(settings(
            "/srv/repo/.takt/workspaces",
            "/srv/repo/.takt/state/mirror.git",
            "/srv/repo",
        ));
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn relative_paths_are_made_absolute() {
        let manager = WorkspaceManager::new(settings("ws/./a/..", "m.git", ".")).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(manager.settings().root, cwd.join("ws"));
        assert_eq!(manager.settings().mirror_dir, cwd.join("m.git"));
        assert_eq!(manager.settings().source, RepoSource::Path(cwd));
    }
}
