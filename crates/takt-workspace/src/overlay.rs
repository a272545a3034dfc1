//! Overlay workspaces: a read-only *golden* tree per base commit, shared by every task that
//! starts from it, and a kernel overlay per task on top. Mounting takes milliseconds at any
//! repository size, where checking out a large tree takes seconds; deleting one is removing a
//! small upper directory.
//!
//! The task's git metadata stays where it is for worktrees: a registration in the mirror, which
//! the sandbox shows read-only. Only the worktree's `.git` file lives in the overlay's upper
//! layer, so takt's own commits (`GIT_DIR` given explicitly) work unchanged.
//!
//! Layout under the overlay directory: `golden/<sha>/` (the tree, no `.git`),
//! `golden/<sha>.index` (its git index, stat data fresh), `tasks/<key>/{upper,work,lower}`.
//! Overlays need root here (a mount in the host's namespace, so the workspace stays browsable
//! like a worktree and survives the daemon); elsewhere workspaces are plain worktrees.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::error::WorkspaceError;
use crate::git::Git;

/// Where overlays live and who owns their files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlaySettings {
    /// `<state>/overlay`.
    pub dir: PathBuf,
    /// The user and group agents run as: golden trees and upper layers belong to them, so the
    /// agent can write without a copy-up of ownership.
    pub owner: Option<(u32, u32)>,
}

impl OverlaySettings {
    pub(crate) fn golden(&self, sha: &str) -> PathBuf {
        self.dir.join("golden").join(sha)
    }

    fn golden_index(&self, sha: &str) -> PathBuf {
        self.dir.join("golden").join(format!("{sha}.index"))
    }

    pub(crate) fn task_dir(&self, key: &str) -> PathBuf {
        self.dir.join("tasks").join(key)
    }
}

fn io(action: &'static str) -> impl Fn(std::io::Error) -> WorkspaceError {
    move |error| WorkspaceError::io(action, error)
}

/// Whether `path` is a mount point (from this process's mount table).
pub(crate) fn is_mounted(path: &Path) -> bool {
    let Ok(table) = fs_err::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = path.to_string_lossy();
    table.lines().any(|line| {
        line.split_whitespace()
            .nth(4)
            .is_some_and(|mount_point| unescape(mount_point) == wanted)
    })
}

/// mountinfo escapes spaces, tabs, newlines and backslashes as octal.
fn unescape(text: &str) -> String {
    text.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Whether this process can mount overlays (root, and the kernel has them): probed once by
/// really mounting one in `scratch`.
pub fn overlays_work(scratch: &Path) -> Result<(), String> {
    // Per process: `takt doctor` may probe while the daemon does.
    let base = scratch.join(format!(".overlay-probe-{}", std::process::id()));
    let _ = fs_err::remove_dir_all(&base);
    let dirs = ["lower", "upper", "work", "merged"].map(|d| base.join(d));
    for dir in &dirs {
        fs_err::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let result = mount_overlay(&dirs[0], &dirs[1], &dirs[2], &dirs[3]).map(|()| {
        let _ = umount2(&dirs[3], MntFlags::MNT_DETACH);
    });
    let _ = fs_err::remove_dir_all(&base);
    result.map_err(|error| error.to_string())
}

/// Mounts a kernel overlay of `lower` (read-only) and `upper` (where every write goes; `work`
/// is overlayfs' scratch on the same filesystem) on `at`. Root only here.
pub(crate) fn mount_overlay(
    lower: &Path,
    upper: &Path,
    work: &Path,
    at: &Path,
) -> Result<(), nix::Error> {
    mount_with(lower, upper, work, at, "")
}

/// [`mount_overlay`] for an upper layer that is thrown away when unmounted and never mounted
/// again (the verifier's warm build caches): `volatile` skips every sync to the upper
/// filesystem, which a build's many small writes would otherwise pay for.
pub fn mount_throwaway_overlay(
    lower: &Path,
    upper: &Path,
    work: &Path,
    at: &Path,
) -> Result<(), nix::Error> {
    mount_with(lower, upper, work, at, ",volatile")
}

fn mount_with(
    lower: &Path,
    upper: &Path,
    work: &Path,
    at: &Path,
    extra: &str,
) -> Result<(), nix::Error> {
    let options = format!(
        "lowerdir={},upperdir={},workdir={}{extra}",
        lower.display(),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        at,
        Some("overlay"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
}

/// The golden tree of `sha`, made once: `read-tree` and `checkout-index` into a temporary
/// directory renamed into place, handed to the owner, its index refreshed so a workspace's
/// first `git status` finds nothing to re-read.
pub(crate) async fn ensure_golden(
    settings: &OverlaySettings,
    git: &Git,
    mirror: &Path,
    sha: &str,
) -> Result<PathBuf, WorkspaceError> {
    let golden = settings.golden(sha);
    if fs_err::tokio::metadata(&golden).await.is_ok() {
        return Ok(golden);
    }
    let parent = settings.dir.join("golden");
    fs_err::tokio::create_dir_all(&parent)
        .await
        .map_err(io("creating the golden trees directory"))?;
    let tmp = parent.join(format!(".tmp-{sha}-{}", std::process::id()));
    let tmp_index = parent.join(format!(".tmp-{sha}-{}.index", std::process::id()));
    let _ = fs_err::tokio::remove_dir_all(&tmp).await;
    fs_err::tokio::create_dir_all(&tmp)
        .await
        .map_err(io("creating a golden tree"))?;
    let with_index = |command: crate::git::GitCommand| {
        command
            .env("GIT_INDEX_FILE", &tmp_index)
            .env("GIT_DIR", mirror)
            .env("GIT_WORK_TREE", &tmp)
    };
    with_index(git.cmd(&tmp).hardened())
        .args(["read-tree", sha])
        .run()
        .await
        .map_err(|e| WorkspaceError::git(format!("reading the tree of {sha}"), e))?;
    with_index(git.cmd(&tmp).hardened())
        .args(["checkout-index", "--all", "--force"])
        .run()
        .await
        .map_err(|e| WorkspaceError::git(format!("checking out the golden tree of {sha}"), e))?;
    if let Some((uid, gid)) = settings.owner {
        chown_tree(&tmp, uid, gid);
    }
    // The base's files at the time warm build caches of the same commit are made with, so
    // that their outputs are fresh for every workspace on this tree.
    let frozen = tmp.clone();
    tokio::task::spawn_blocking(move || crate::mtime::freeze_mtimes(&frozen))
        .await
        .map_err(|error| {
            WorkspaceError::io(
                "setting a golden tree's file times",
                std::io::Error::other(error),
            )
        })?
        .map_err(io("setting a golden tree's file times"))?;
    // After the chown and the times: the index's stat data must match what workspaces will
    // see.
    let _ = with_index(git.cmd(&tmp).hardened())
        .args(["update-index", "--refresh", "-q"])
        .output_allowing(&[0, 1])
        .await;
    match fs_err::tokio::rename(&tmp, &golden).await {
        Ok(()) => {
            fs_err::tokio::rename(&tmp_index, settings.golden_index(sha))
                .await
                .map_err(io("storing a golden tree's index"))?;
        }
        // Another task made the same golden tree meanwhile.
        Err(_) if fs_err::tokio::metadata(&golden).await.is_ok() => {
            let _ = fs_err::tokio::remove_dir_all(&tmp).await;
            let _ = fs_err::tokio::remove_file(&tmp_index).await;
        }
        Err(error) => return Err(WorkspaceError::io("storing a golden tree", error)),
    }
    tracing::info!(sha, golden = %golden.display(), "golden tree ready");
    Ok(golden)
}

/// Turns the fresh `--no-checkout` worktree at `path` into an overlay of the golden tree of
/// `sha`: its `.git` file moves into the upper layer, the overlay is mounted on `path`, and the
/// registration `admin` gets the golden index.
pub(crate) async fn attach(
    settings: &OverlaySettings,
    key: &str,
    path: &Path,
    admin: &Path,
    sha: &str,
    golden: &Path,
) -> Result<(), WorkspaceError> {
    let task = settings.task_dir(key);
    let _ = fs_err::tokio::remove_dir_all(&task).await;
    let (upper, work) = (task.join("upper"), task.join("work"));
    for dir in [&upper, &work] {
        fs_err::tokio::create_dir_all(dir)
            .await
            .map_err(io("creating an overlay layer"))?;
    }
    fs_err::tokio::rename(path.join(".git"), upper.join(".git"))
        .await
        .map_err(io("moving the worktree's .git into its overlay"))?;
    fs_err::tokio::write(task.join("lower"), sha)
        .await
        .map_err(io("recording an overlay's golden tree"))?;
    if let Some((uid, gid)) = settings.owner {
        chown_tree(&upper, uid, gid);
    }
    mount_overlay(golden, &upper, &work, path).map_err(|error| WorkspaceError::InvalidPath {
        path: path.to_path_buf(),
        reason: format!("mounting the workspace's overlay failed: {error}"),
    })?;
    fs_err::tokio::copy(settings.golden_index(sha), admin.join("index"))
        .await
        .map_err(io("seeding the workspace's index"))?;
    Ok(())
}

/// Mounts the task overlay of `key` on `path` again when its layers exist but it is not
/// mounted (after a reboot): `Ok(true)` when it did, `Ok(false)` when there is nothing to
/// mount or it already is, `Err` (why) when the layers exist but cannot be mounted.
pub(crate) fn remount(settings: &OverlaySettings, key: &str, path: &Path) -> Result<bool, String> {
    let task = settings.task_dir(key);
    let Ok(sha) = fs_err::read_to_string(task.join("lower")) else {
        return Ok(false);
    };
    if is_mounted(path) {
        return Ok(false);
    }
    let golden = settings.golden(sha.trim());
    if fs_err::metadata(&golden).is_err() {
        return Err(format!("its golden tree {} is gone", golden.display()));
    }
    fs_err::create_dir_all(path).map_err(|error| error.to_string())?;
    mount_overlay(&golden, &task.join("upper"), &task.join("work"), path)
        .map(|()| true)
        .map_err(|error| format!("mounting it failed: {error}"))
}

/// Unmounts the overlay on `path`, if there is one (lazily: a process still inside keeps its
/// view until it leaves).
pub fn detach(path: &Path) {
    if is_mounted(path)
        && let Err(error) = umount2(path, MntFlags::MNT_DETACH)
    {
        tracing::warn!(path = %path.display(), %error, "could not unmount a workspace overlay");
    }
}

/// Halves of golden trees another process began and never finished (a daemon stopped while
/// making one): `.tmp-<sha>-<pid>` and its `.index`. Only one daemon uses a state directory,
/// so any pid but ours is gone.
pub(crate) fn unfinished_goldens(settings: &OverlaySettings) -> Vec<PathBuf> {
    let ours = std::process::id().to_string();
    fs_err::read_dir(settings.dir.join("golden"))
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| {
                    let name = path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let stem = name.strip_suffix(".index").unwrap_or(&name);
                    name.starts_with(".tmp-") && stem.rsplit('-').next() != Some(ours.as_str())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Golden trees no task overlay uses, except the newest (the next task likely starts there).
pub(crate) fn unused_goldens(settings: &OverlaySettings) -> Vec<PathBuf> {
    let used: std::collections::HashSet<String> = fs_err::read_dir(settings.dir.join("tasks"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| fs_err::read_to_string(e.path().join("lower")).ok())
                .map(|sha| sha.trim().to_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut goldens: Vec<(std::time::SystemTime, PathBuf, String)> =
        fs_err::read_dir(settings.dir.join("golden"))
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.path().is_dir())
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let at = e.metadata().and_then(|m| m.modified()).ok()?;
                        (!name.starts_with('.')).then(|| (at, e.path(), name))
                    })
                    .collect()
            })
            .unwrap_or_default();
    goldens.sort();
    goldens.pop();
    goldens
        .into_iter()
        .filter(|(_, _, sha)| !used.contains(sha))
        .map(|(_, path, _)| path)
        .collect()
}

/// Gives `path` and everything below it to `uid`/`gid`, without following symlinks.
fn chown_tree(path: &Path, uid: u32, gid: u32) {
    let _ = nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        path,
        Some(uid.into()),
        Some(gid.into()),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    );
    if let Ok(meta) = fs_err::symlink_metadata(path)
        && meta.is_dir()
        && let Ok(entries) = fs_err::read_dir(path)
    {
        for entry in entries.flatten() {
            chown_tree(&entry.path(), uid, gid);
        }
    }
}
