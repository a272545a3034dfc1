//! Process-group supervision shared by every backend that runs a local process.

use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Sends `signal` to the process group `pgid`. A group that is already gone is not an error.
pub fn signal_group(pgid: u32, signal: Signal) {
    let Ok(raw) = i32::try_from(pgid) else {
        return;
    };
    if raw <= 1 {
        return;
    }
    if let Err(error) = killpg(Pid::from_raw(raw), signal)
        && error != nix::errno::Errno::ESRCH
    {
        tracing::warn!(pgid, %error, "could not signal agent process group");
    }
}

/// Whether any process of group `pgid` is still alive.
pub fn group_alive(pgid: u32) -> bool {
    let Ok(raw) = i32::try_from(pgid) else {
        return false;
    };
    raw > 1 && killpg(Pid::from_raw(raw), None).is_ok()
}

/// Stops a process group politely (SIGTERM), then by force (SIGKILL) after `grace`.
pub async fn terminate_group(pgid: u32, grace: Duration) {
    signal_group(pgid, Signal::SIGTERM);
    let deadline = tokio::time::Instant::now() + grace;
    while group_alive(pgid) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal_group(pgid, Signal::SIGKILL);
}

/// The kernel's start time of `pid` (field 22 of `/proc/<pid>/stat`), used to tell a process
/// from a later one that reused its pid.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = fs_err::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; fields resume after the
    // last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// What identifies a run's process group across a daemon restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessMark {
    pub pgid: u32,
    pub start_time: u64,
}

impl ProcessMark {
    pub fn of(pid: u32) -> Option<ProcessMark> {
        Some(ProcessMark {
            pgid: pid,
            start_time: process_start_time(pid)?,
        })
    }

    pub fn encode(&self) -> String {
        format!("{} {}\n", self.pgid, self.start_time)
    }

    pub fn decode(text: &str) -> Option<ProcessMark> {
        let mut parts = text.split_whitespace();
        Some(ProcessMark {
            pgid: parts.next()?.parse().ok()?,
            start_time: parts.next()?.parse().ok()?,
        })
    }

    /// Kills the group if its leader is still the very process that was marked. Returns whether
    /// anything was killed.
    pub fn kill_if_same(&self) -> bool {
        if process_start_time(self.pgid) != Some(self.start_time) {
            return false;
        }
        signal_group(self.pgid, Signal::SIGKILL);
        true
    }
}

/// Kills the agent processes a previous daemon left behind in `run_dir` (recorded in
/// `agent.pid`). Called on startup for every run the journal shows as live, because a daemon
/// killed with SIGKILL cannot take its children with it.
pub fn sweep_orphans(run_dir: &std::path::Path) -> bool {
    let Ok(text) = fs_err::read_to_string(run_dir.join(PID_FILE)) else {
        return false;
    };
    ProcessMark::decode(&text).is_some_and(|mark| mark.kill_if_same())
}

/// The file in a run directory that records the live agent process group.
pub const PID_FILE: &str = "agent.pid";

/// The variables every agent process gets about its run (`TAKT_TASK_ID`,
/// `TAKT_ISSUE_IDENTIFIER`, `TAKT_RUN_ID`, `TAKT_ATTEMPT`, `TAKT_WORKSPACE`).
pub fn run_env(context: &takt_core::ports::SessionContext) -> Vec<(String, String)> {
    vec![
        ("TAKT_TASK_ID".into(), context.task_id.clone()),
        ("TAKT_ISSUE_IDENTIFIER".into(), context.identifier.clone()),
        ("TAKT_RUN_ID".into(), context.run_id.clone()),
        ("TAKT_ATTEMPT".into(), context.attempt.to_string()),
        (
            "TAKT_WORKSPACE".into(),
            context.agent_workspace().display().to_string(),
        ),
    ]
}

/// The sandbox scope of a session: its workspace read-write, its git metadata read-only, its
/// run directory private.
pub fn scope(context: &takt_core::ports::SessionContext) -> takt_sandbox::RunScope {
    takt_sandbox::RunScope {
        run_id: context.run_id.clone(),
        workspace: context.workspace.clone(),
        run_dir: context.run_dir.clone(),
        git_dirs: context.git_dir.iter().cloned().collect(),
        view: context.view.clone(),
    }
}

/// The part of the run directory the agent sees (prompts, `CODEX_HOME`, Claude's config).
pub fn agent_dir(context: &takt_core::ports::SessionContext) -> std::path::PathBuf {
    takt_sandbox::launch::agent_dir(&context.run_dir)
}

/// `command` with its program, when given by a path with `.` or `..` in it, written without
/// them: inside the sandbox the directories such a path climbs through do not exist.
pub fn resolved_command(command: &str) -> String {
    let trimmed = command.trim_start();
    let Some(first) = trimmed.split_whitespace().next() else {
        return command.to_owned();
    };
    if !first.contains('/') {
        return command.to_owned();
    }
    let program = takt_sandbox::launch::without_dots(std::path::Path::new(first));
    format!("{}{}", program.display(), &trimmed[first.len()..])
}

/// What a command string's program needs to be visible read-only: a program given by path is
/// bound itself, or, inside `node_modules`, that whole directory (an npm-installed CLI and its
/// packages). A bare name is found on the sandbox's PATH.
pub fn install_paths(command: &str) -> Vec<std::path::PathBuf> {
    let Some(first) = command.split_whitespace().next() else {
        return Vec::new();
    };
    if !first.contains('/') {
        return Vec::new();
    }
    let Ok(real) = fs_err::canonicalize(first) else {
        return Vec::new();
    };
    let mut paths = vec![std::path::PathBuf::from(first)];
    let inside_node_modules = real
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == "node_modules"));
    match inside_node_modules {
        Some(dir) => paths.push(dir.to_path_buf()),
        None => paths.push(real),
    }
    if let Some(dir) = std::path::Path::new(first)
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == "node_modules"))
    {
        paths.push(dir.to_path_buf());
    }
    paths.retain(|path| path.is_absolute());
    paths.sort();
    paths.dedup();
    paths
}

/// Starts a session's process confined (stdio piped, own process group).
pub async fn confined(
    sandbox: &takt_sandbox::Sandbox,
    context: &takt_core::ports::SessionContext,
    launch: takt_sandbox::Launch,
) -> Result<takt_sandbox::Confined, takt_sandbox::SandboxError> {
    sandbox.spawn(&scope(context), launch).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_program_path_climbing_with_dots_is_written_without_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tools/node_modules/.bin")).unwrap();
        std::fs::create_dir_all(dir.path().join("crate")).unwrap();
        let dotted = format!(
            "{}/crate/../tools/node_modules/.bin/codex app-server",
            dir.path().display()
        );
        let real = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            resolved_command(&dotted),
            format!(
                "{}/tools/node_modules/.bin/codex app-server",
                real.display()
            )
        );
        assert_eq!(resolved_command("codex app-server"), "codex app-server");
        assert_eq!(resolved_command("/usr/bin/claude -p"), "/usr/bin/claude -p");
    }
}
