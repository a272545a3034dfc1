//! Workspace lifecycle hooks (R-103, R-104, R-141).
//!
//! A hook is a trusted shell script from WORKFLOW.md, run as `sh -lc <script>` with the
//! workspace as its working directory, stdout and stderr merged into one stream (truncated to
//! [`HOOK_OUTPUT_CAP`] bytes for logs), and a required timeout. The script runs in its own
//! process group; on timeout the whole group is killed, so `cmd &` children die with it.
//! It receives `TAKT_WORKSPACE`, `TAKT_ISSUE_IDENTIFIER` and `TAKT_WORKSPACE_KEY` on top of the
//! daemon's environment. What a failure means is the caller's decision; [`HookKind::is_fatal`]
//! gives the spec's answer.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

use crate::process::{GroupKillGuard, capped_text, kill_process_group};

/// Bytes of hook output kept for logs and errors (R-103).
pub const HOOK_OUTPUT_CAP: usize = 2048;

/// How long to keep reading output after the hook's shell exited, for children that still hold
/// the pipe (a `cmd &` left running). The hook's result does not wait for them longer.
const DRAIN_GRACE: Duration = Duration::from_millis(250);

/// The four lifecycle hooks (R-104).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookKind {
    /// After a workspace directory is newly created. Failure is fatal to the creation.
    AfterCreate,
    /// Before every attempt. Failure is fatal to the attempt.
    BeforeRun,
    /// After every attempt once the workspace exists. Failure is logged and ignored.
    AfterRun,
    /// Before a workspace is removed, when its directory exists. Failure is logged and ignored.
    BeforeRemove,
}

impl HookKind {
    /// The WORKFLOW.md key: `after_create`, `before_run`, `after_run`, `before_remove`.
    pub fn name(self) -> &'static str {
        match self {
            HookKind::AfterCreate => "after_create",
            HookKind::BeforeRun => "before_run",
            HookKind::AfterRun => "after_run",
            HookKind::BeforeRemove => "before_remove",
        }
    }

    /// Whether a failure or timeout of this hook must stop what it guards (R-104):
    /// `after_create` and `before_run` are fatal; `after_run` and `before_remove` are logged
    /// and ignored.
    pub fn is_fatal(self) -> bool {
        matches!(self, HookKind::AfterCreate | HookKind::BeforeRun)
    }
}

impl fmt::Display for HookKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The configured hook scripts (`hooks.*` in WORKFLOW.md); `None` means no hook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    pub after_create: Option<String>,
    pub before_run: Option<String>,
    pub after_run: Option<String>,
    pub before_remove: Option<String>,
}

impl Hooks {
    /// The script for `kind`, if one is configured (blank scripts count as none).
    pub fn script(&self, kind: HookKind) -> Option<&str> {
        let script = match kind {
            HookKind::AfterCreate => &self.after_create,
            HookKind::BeforeRun => &self.before_run,
            HookKind::AfterRun => &self.after_run,
            HookKind::BeforeRemove => &self.before_remove,
        };
        script.as_deref().filter(|s| !s.trim().is_empty())
    }
}

/// Where a hook runs and what it is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookContext {
    /// The workspace directory: the hook's working directory and `TAKT_WORKSPACE`.
    pub workspace: PathBuf,
    /// `TAKT_ISSUE_IDENTIFIER` (for `before_remove` of an orphan, the directory name).
    pub identifier: String,
    /// `TAKT_WORKSPACE_KEY`.
    pub key: String,
    /// Where a sandboxed hook sees the workspace when the agent's sandbox shows it elsewhere
    /// (warm agent builds): the same place, so what the hook makes with the path in it (a
    /// virtualenv, build outputs) is where the agent looks. `None`: at `workspace`.
    pub view: Option<takt_core::ports::WorkspaceView>,
}

/// A hook that exited with status 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookOutput {
    /// Merged stdout and stderr, at most [`HOOK_OUTPUT_CAP`] bytes.
    pub output: String,
    /// Whether `output` was cut.
    pub truncated: bool,
    pub duration: Duration,
}

/// A hook that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// `sh` could not be started in the workspace (no `sh` on PATH, the workspace directory is
    /// gone). Not retryable until the environment is fixed.
    #[error("hook {kind} could not be started in {cwd}: {source}")]
    Spawn {
        kind: HookKind,
        cwd: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The script exited non-zero (or was killed by a signal). The output tail says why; a
    /// retry helps only if the cause was transient (a network download).
    #[error("hook {kind} failed in {cwd} ({}): {output}", match status { Some(code) => format!("exit status {code}"), None => "killed by a signal".to_owned() })]
    Failed {
        kind: HookKind,
        cwd: PathBuf,
        status: Option<i32>,
        /// Merged output, at most [`HOOK_OUTPUT_CAP`] bytes.
        output: String,
    },
    /// The script ran past `hooks.timeout_ms`; its whole process group was killed. Raise the
    /// timeout or make the script faster; a retry may pass if the slowness was transient.
    #[error(
        "hook {kind} timed out after {timeout:?} in {cwd} and was killed; output so far: {output}"
    )]
    TimedOut {
        kind: HookKind,
        cwd: PathBuf,
        timeout: Duration,
        output: String,
    },
}

impl HookError {
    /// Which hook failed.
    pub fn kind(&self) -> HookKind {
        match self {
            HookError::Spawn { kind, .. }
            | HookError::Failed { kind, .. }
            | HookError::TimedOut { kind, .. } => *kind,
        }
    }

    /// Whether running the hook again later may succeed on its own.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, HookError::Spawn { .. })
    }
}

/// Starts hooks somewhere other than the daemon's own user and view of the machine (the agent
/// sandbox): a hook that runs after an agent worked in the workspace runs code the agent could
/// have written (a `package.json` script, a `Makefile`).
pub trait HookLauncher: Send + Sync + std::fmt::Debug {
    /// The command that runs `script` (`sh -lc`) for hook `kind` in `ctx.workspace`, in its
    /// own process group with `TAKT_WORKSPACE`, `TAKT_ISSUE_IDENTIFIER` and
    /// `TAKT_WORKSPACE_KEY` set; `Ok(None)` runs it directly as the daemon's user.
    fn command(
        &self,
        kind: HookKind,
        ctx: &HookContext,
        script: &str,
    ) -> Result<Option<tokio::process::Command>, String>;
}

/// Runs `script` as hook `kind` in `ctx.workspace` with `sh -lc`, killing its process group
/// after `timeout`.
pub async fn run_hook(
    kind: HookKind,
    script: &str,
    ctx: &HookContext,
    timeout: Duration,
) -> Result<HookOutput, HookError> {
    run_hook_with(kind, script, ctx, timeout, None).await
}

/// [`run_hook`], started through `launcher` when there is one.
pub async fn run_hook_with(
    kind: HookKind,
    script: &str,
    ctx: &HookContext,
    timeout: Duration,
    launcher: Option<&dyn HookLauncher>,
) -> Result<HookOutput, HookError> {
    let cwd = ctx.workspace.clone();
    let spawn_error = |source: io::Error| HookError::Spawn {
        kind,
        cwd: cwd.clone(),
        source,
    };
    let (reader, writer) = io::pipe().map_err(spawn_error)?;
    let writer_for_stderr = writer.try_clone().map_err(spawn_error)?;

    let launched = match launcher {
        Some(launcher) => launcher
            .command(kind, ctx, script)
            .map_err(|reason| spawn_error(io::Error::other(reason)))?,
        None => None,
    };
    let mut command = match launched {
        Some(command) => command,
        None => {
            let mut command = tokio::process::Command::new("sh");
            command
                .arg("-lc")
                .arg(script)
                .current_dir(&ctx.workspace)
                .env("TAKT_WORKSPACE", &ctx.workspace)
                .env("TAKT_ISSUE_IDENTIFIER", &ctx.identifier)
                .env("TAKT_WORKSPACE_KEY", &ctx.key);
            command
        }
    };
    command
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer_for_stderr)
        .process_group(0)
        .kill_on_drop(true);

    tracing::info!(hook = kind.name(), cwd = %cwd.display(), identifier = %ctx.identifier, "hook starting");
    let started = Instant::now();
    let spawned = command.spawn();
    // Close our copies of the pipe's write end, or reading would never see end-of-file.
    drop(command);
    let mut child = spawned.map_err(spawn_error)?;
    let pgid = child.id();
    let mut group = GroupKillGuard::new(pgid);
    let mut receiver = pipe::Receiver::from_owned_fd(reader.into()).map_err(spawn_error)?;

    let mut collected = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut eof = false;
    let deadline = tokio::time::Instant::now() + timeout;

    // Phase 1: read output until the shell exits or the deadline passes.
    let status = loop {
        tokio::select! {
            status = child.wait() => break Some(status),
            read = receiver.read(&mut chunk), if !eof => match read {
                Ok(0) | Err(_) => eof = true,
                Ok(n) => keep(&mut collected, &chunk[..n]),
            },
            () = tokio::time::sleep_until(deadline) => break None,
        }
    };

    let Some(status) = status else {
        // Timed out: kill the whole group before reaping the leader (so its pid, the group id,
        // cannot have been reused), then collect what the pipe still holds.
        if let Some(pgid) = pgid {
            kill_process_group(pgid).await;
        }
        group.disarm();
        let _ = child.wait().await;
        drain(&mut receiver, &mut collected, &mut chunk, eof).await;
        let (output, _) = capped_text(&collected, HOOK_OUTPUT_CAP);
        tracing::warn!(hook = kind.name(), cwd = %cwd.display(), ?timeout, output = %output, "hook timed out; its process group was killed");
        return Err(HookError::TimedOut {
            kind,
            cwd,
            timeout,
            output,
        });
    };

    // Phase 2: the shell exited; collect the rest of its output without waiting on
    // background children that keep the pipe open (they are left alone: a hook may start a
    // service on purpose).
    group.disarm();
    drain(&mut receiver, &mut collected, &mut chunk, eof).await;
    let duration = started.elapsed();
    let (output, truncated) = capped_text(&collected, HOOK_OUTPUT_CAP);
    let status = status.map_err(spawn_error)?;
    if status.success() {
        tracing::info!(hook = kind.name(), cwd = %cwd.display(), ?duration, output = %output, "hook finished");
        Ok(HookOutput {
            output,
            truncated,
            duration,
        })
    } else {
        tracing::warn!(hook = kind.name(), cwd = %cwd.display(), ?duration, status = ?status.code(), output = %output, "hook failed");
        Err(HookError::Failed {
            kind,
            cwd,
            status: status.code(),
            output,
        })
    }
}

/// Reads what is left in the pipe until end-of-file or [`DRAIN_GRACE`] passes.
async fn drain(
    receiver: &mut pipe::Receiver,
    collected: &mut Vec<u8>,
    chunk: &mut [u8],
    eof: bool,
) {
    if eof {
        return;
    }
    let _ = tokio::time::timeout(DRAIN_GRACE, async {
        loop {
            match receiver.read(chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => keep(collected, &chunk[..n]),
            }
        }
    })
    .await;
}

/// Keeps output up to one byte past the cap (enough to know it was cut); discards the rest
/// while still draining the pipe so the hook never blocks on a full pipe.
fn keep(collected: &mut Vec<u8>, bytes: &[u8]) {
    let room = (HOOK_OUTPUT_CAP + 4).saturating_sub(collected.len());
    collected.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(dir: &std::path::Path) -> HookContext {
        HookContext {
            workspace: dir.to_path_buf(),
            identifier: "ABC-1".into(),
            key: "ABC-1".into(),
            view: None,
        }
    }

    #[test]
    fn r104_fatality_per_kind() {
        assert!(HookKind::AfterCreate.is_fatal());
        assert!(HookKind::BeforeRun.is_fatal());
        assert!(!HookKind::AfterRun.is_fatal());
        assert!(!HookKind::BeforeRemove.is_fatal());
        assert_eq!(HookKind::BeforeRemove.to_string(), "before_remove");
    }

    #[test]
    fn blank_scripts_count_as_none() {
        let hooks = Hooks {
            before_run: Some("  \n".into()),
            after_run: Some("echo hi".into()),
            ..Hooks::default()
        };
        assert_eq!(hooks.script(HookKind::BeforeRun), None);
        assert_eq!(hooks.script(HookKind::AfterRun), Some("echo hi"));
        assert_eq!(hooks.script(HookKind::AfterCreate), None);
    }

    #[tokio::test]
    async fn r103_runs_in_the_workspace_with_env_and_merged_output() {
        let dir = tempfile::tempdir().unwrap();
        let script = r#"echo "out $TAKT_ISSUE_IDENTIFIER $TAKT_WORKSPACE_KEY"; echo err >&2; pwd; test "$TAKT_WORKSPACE" = "$(pwd)""#;
        let out = run_hook(
            HookKind::AfterCreate,
            script,
            &ctx(dir.path()),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        let canonical = fs_err::canonicalize(dir.path()).unwrap();
        assert!(out.output.contains("out ABC-1 ABC-1"), "{}", out.output);
        assert!(out.output.contains("err"), "{}", out.output);
        assert!(
            out.output.contains(&canonical.display().to_string()),
            "{}",
            out.output
        );
        assert!(!out.truncated);
    }

    #[tokio::test]
    async fn r103_output_is_truncated_to_2048_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let script = "i=0; while [ $i -lt 2000 ]; do echo 0123456789; i=$((i+1)); done";
        let out = run_hook(
            HookKind::AfterRun,
            script,
            &ctx(dir.path()),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        assert_eq!(out.output.len(), HOOK_OUTPUT_CAP);
        assert!(out.truncated);
    }

    #[tokio::test]
    async fn r104_failure_reports_status_and_output() {
        let dir = tempfile::tempdir().unwrap();
        let err = run_hook(
            HookKind::BeforeRun,
            "echo boom; exit 3",
            &ctx(dir.path()),
            Duration::from_secs(30),
        )
        .await
        .unwrap_err();
        match &err {
            HookError::Failed {
                kind,
                status,
                output,
                ..
            } => {
                assert_eq!(*kind, HookKind::BeforeRun);
                assert_eq!(*status, Some(3));
                assert!(output.contains("boom"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("before_run"), "{err}");
    }

    #[tokio::test]
    async fn a_missing_workspace_is_a_spawn_error() {
        let dir = tempfile::tempdir().unwrap();
        let gone = ctx(&dir.path().join("gone"));
        let err = run_hook(HookKind::AfterRun, "true", &gone, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, HookError::Spawn { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_background_child_does_not_hold_the_hook_open() {
        let dir = tempfile::tempdir().unwrap();
        let script = "sleep 1000 & echo $! > bg.pid; echo done";
        // A hang guard, not a timing assertion: without the drain grace this would block until
        // the background sleep exits.
        let out = tokio::time::timeout(
            Duration::from_secs(120),
            run_hook(
                HookKind::AfterCreate,
                script,
                &ctx(dir.path()),
                Duration::from_secs(60),
            ),
        )
        .await
        .expect("the hook result must not wait for its background child")
        .unwrap();
        assert!(out.output.contains("done"));
        // Clean up the background child so the test leaves nothing running.
        let pid = fs_err::read_to_string(dir.path().join("bg.pid")).unwrap();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", pid.trim()])
            .status();
    }
}
