//! A source repository with an initial commit on `main`, a workspace root and a mirror path in
//! one temporary directory, and helpers to run git synchronously from tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use takt_workspace::{BaseRef, Hooks, RepoSource, WorkspaceManager, WorkspaceSettings};
use tempfile::TempDir;

pub struct Fixture {
    pub dir: TempDir,
    pub source: PathBuf,
    pub root: PathBuf,
    pub mirror: PathBuf,
}

impl Fixture {
    /// A source repo at `<tmp>/source` with `README.md` committed on `main`.
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fs_err::create_dir(&source).unwrap();
        git(&source, &["init", "--quiet", "--initial-branch=main"]);
        write(&source, "README.md", "hello\n");
        commit_all(&source, "initial commit");
        Fixture {
            root: dir.path().join("workspaces"),
            mirror: dir.path().join("state").join("mirror.git"),
            source,
            dir,
        }
    }

    pub fn settings(&self) -> WorkspaceSettings {
        WorkspaceSettings {
            root: self.root.clone(),
            mirror_dir: self.mirror.clone(),
            source: RepoSource::Path(self.source.clone()),
            base_branch: None,
            branch_prefix: "takt/".into(),
            hooks: Hooks::default(),
            hook_timeout: Duration::from_secs(60),
            overlay: None,
        }
    }

    pub fn manager(&self) -> WorkspaceManager {
        WorkspaceManager::new(self.settings()).unwrap()
    }

    pub fn manager_with_hooks(&self, hooks: Hooks) -> WorkspaceManager {
        WorkspaceManager::new(WorkspaceSettings {
            hooks,
            ..self.settings()
        })
        .unwrap()
    }

    /// A path in the temporary directory, outside the source, root and mirror.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Syncs the mirror and ensures the workspace of `identifier`.
pub async fn workspace(
    manager: &WorkspaceManager,
    identifier: &str,
) -> (BaseRef, takt_workspace::Workspace) {
    let base = manager.sync_mirror().await.unwrap();
    let ws = manager.ensure(identifier, &base).await.unwrap();
    (base, ws)
}

/// Runs git in `cwd` with a fixed identity; panics with stderr on failure; returns trimmed
/// stdout.
pub fn git(cwd: &Path, args: &[&str]) -> String {
    let out = git_output(cwd, args);
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        cwd.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Runs git in `cwd` with a fixed identity and returns whatever happened.
pub fn git_output(cwd: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args([
            "-c",
            "user.name=Fixture",
            "-c",
            "user.email=fixture@example.com",
        ])
        .args([
            "-c",
            "commit.gpgSign=false",
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "maintenance.autoDetach=false",
            "-c",
            "gc.autoDetach=false",
        ])
        .args(args)
        .current_dir(cwd)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .unwrap()
}

pub fn write(dir: &Path, file: &str, content: &str) {
    let path = dir.join(file);
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent).unwrap();
    }
    fs_err::write(path, content).unwrap();
}

pub fn read(dir: &Path, file: &str) -> String {
    fs_err::read_to_string(dir.join(file)).unwrap()
}

/// `git add -A && git commit -m <message>`; returns the new HEAD.
pub fn commit_all(repo: &Path, message: &str) -> String {
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "--quiet", "-m", message]);
    head(repo)
}

pub fn head(repo: &Path) -> String {
    git(repo, &["rev-parse", "HEAD"])
}

pub fn rev(repo: &Path, rev: &str) -> String {
    git(repo, &["rev-parse", rev])
}

/// Whether process `pid` is gone (or a zombie: dead, waiting to be reaped by its new parent).
pub fn process_is_dead(pid: u32) -> bool {
    match fs_err::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            // Field 3 (after the parenthesized command name) is the state.
            let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
            matches!(state.and_then(|s| s.chars().next()), Some('Z' | 'X'))
        }
    }
}
