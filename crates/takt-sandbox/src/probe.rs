//! What confinement works on this host, and why not when it does not (`takt doctor`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::SandboxError;
use crate::cgroup;
use crate::policy::{Mechanism, Mode};
use crate::user::{self, AgentUser};

/// The probe's findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostReport {
    pub root: bool,
    /// The bubblewrap binary and its version, or why it cannot be used.
    pub bwrap: Result<(PathBuf, String), String>,
    /// The Landlock status (`fully enforced`), or why it cannot be used.
    pub landlock: Result<String, String>,
    pub seccomp: Result<(), String>,
    /// cgroup controllers the daemon can use for limits (`memory (v1)`, `pids (v1)`, `kill (v2)`).
    pub cgroups: Vec<String>,
    /// The agent user when running as root, or why it is unusable.
    pub agent_user: Option<Result<AgentUser, String>>,
}

/// Probes the host by really starting a sandbox with each mechanism. `helper` is the binary
/// that serves the sandbox helper stages (the daemon's own executable).
pub fn probe(helper: &Path, agent_user_name: &str) -> HostReport {
    let root = user::running_as_root();
    let agent_user = root.then(|| user::ensure(agent_user_name).map_err(|e| e.to_string()));
    let agent = agent_user.as_ref().and_then(|user| user.as_ref().ok());
    HostReport {
        root,
        bwrap: probe_bwrap(agent),
        landlock: probe_landlock(helper, agent),
        seccomp: probe_seccomp(),
        cgroups: if root { cgroup::support() } else { Vec::new() },
        agent_user,
    }
}

impl HostReport {
    /// The mechanism `mode` gets here, or why it cannot be had.
    pub fn resolve(&self, mode: Mode) -> Result<Mechanism, SandboxError> {
        if let Some(Err(reason)) = &self.agent_user
            && mode != Mode::None
        {
            return Err(SandboxError::AgentUser {
                user: "the agent user".into(),
                reason: reason.clone(),
            });
        }
        match mode {
            Mode::None => Ok(Mechanism::Unconfined),
            Mode::Bwrap => self
                .bwrap
                .as_ref()
                .map(|_| Mechanism::Bwrap)
                .map_err(|reason| SandboxError::Unavailable {
                    mechanism: "bubblewrap",
                    reason: reason.clone(),
                }),
            Mode::Landlock => {
                self.landlock
                    .as_ref()
                    .map(|_| Mechanism::Landlock)
                    .map_err(|reason| SandboxError::Unavailable {
                        mechanism: "landlock",
                        reason: reason.clone(),
                    })
            }
            Mode::Auto => match (&self.bwrap, &self.landlock) {
                (Ok(_), _) => Ok(Mechanism::Bwrap),
                (Err(_), Ok(_)) => Ok(Mechanism::Landlock),
                (Err(bwrap), Err(landlock)) => Err(SandboxError::Unavailable {
                    mechanism: "every sandbox",
                    reason: format!(
                        "bubblewrap: {bwrap}; landlock: {landlock}. Install bubblewrap \
                         (`apt-get install bubblewrap`), or set `sandbox.mode: none` to run agents \
                         unconfined on purpose"
                    ),
                }),
            },
        }
    }

    /// Human-readable lines, one per mechanism.
    pub fn lines(&self) -> Vec<(bool, String)> {
        let mut lines = Vec::new();
        lines.push(match &self.bwrap {
            Ok((path, version)) => (
                true,
                format!("bubblewrap: works ({version}, {})", path.display()),
            ),
            Err(reason) => (false, format!("bubblewrap: unusable: {reason}")),
        });
        lines.push(match &self.landlock {
            Ok(status) => (true, format!("landlock: {status}")),
            Err(reason) => (false, format!("landlock: unusable: {reason}")),
        });
        lines.push(match &self.seccomp {
            Ok(()) => (true, "seccomp: filters available".to_owned()),
            Err(reason) => (false, format!("seccomp: unusable: {reason}")),
        });
        if self.root {
            lines.push(if self.cgroups.is_empty() {
                (
                    false,
                    "cgroups: none usable; limits fall back to rlimits".to_owned(),
                )
            } else {
                (true, format!("cgroups: {}", self.cgroups.join(", ")))
            });
        } else {
            lines.push((
                true,
                "cgroups: not used (the daemon is not root); limits use rlimits".to_owned(),
            ));
        }
        match &self.agent_user {
            None => {}
            Some(Ok(user)) => lines.push((
                true,
                format!(
                    "agent user: the daemon runs as root, so agents run as `{}` (uid {}); a root \
                     process in a sandbox would still be host root",
                    user.name, user.uid
                ),
            )),
            Some(Err(reason)) => lines.push((false, format!("agent user: {reason}"))),
        }
        lines
    }
}

/// The bubblewrap binary on PATH.
pub fn bwrap_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("bwrap"))
        .find(|candidate| candidate.is_file())
}

fn probe_bwrap(agent: Option<&AgentUser>) -> Result<(PathBuf, String), String> {
    let path = bwrap_path().ok_or("bwrap is not installed (apt-get install bubblewrap)")?;
    if agent.is_some() {
        mount_api_available(
            &fs_err::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default(),
        )?;
    }
    let version = Command::new(&path)
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .map_err(|error| format!("cannot run {}: {error}", path.display()))?;
    let mut command = Command::new(&path);
    command
        .args(["--unshare-all", "--die-with-parent", "--new-session"])
        .args(crate::bwrap::system_args())
        .args(["--proc", "/proc", "--dev", "/dev", "--", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(agent) = agent {
        use std::os::unix::process::CommandExt;
        command.uid(agent.uid).gid(agent.gid);
    }
    let output = command
        .output()
        .map_err(|error| format!("cannot run {}: {error}", path.display()))?;
    if output.status.success() {
        Ok((path, version))
    } else {
        Err(format!(
            "a test sandbox failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// A root daemon lays out the sandbox's tree with the mount API of Linux 5.12 and later
/// (`open_tree`, `move_mount`, `mount_setattr`); `release` is the kernel's.
fn mount_api_available(release: &str) -> Result<(), String> {
    let mut numbers = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let version = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    if version >= (5, 12) {
        Ok(())
    } else {
        Err(format!(
            "as root takt lays out the sandbox with the mount API of Linux 5.12 or later \
             (open_tree, move_mount, mount_setattr); this kernel is {}",
            release.trim()
        ))
    }
}

fn probe_landlock(helper: &Path, agent: Option<&AgentUser>) -> Result<String, String> {
    let mut command = Command::new(helper);
    command
        .arg(crate::PROBE_ARG)
        .arg("landlock")
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    if let Some(agent) = agent {
        use std::os::unix::process::CommandExt;
        command.uid(agent.uid).gid(agent.gid);
    }
    let output = command
        .output()
        .map_err(|error| format!("cannot run the helper {}: {error}", helper.display()))?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() && text.starts_with("fully enforced") {
        Ok(text)
    } else if text.is_empty() {
        Err(format!("the probe failed ({})", output.status))
    } else {
        Err(text)
    }
}

fn probe_seccomp() -> Result<(), String> {
    match fs_err::read_to_string("/proc/sys/kernel/seccomp/actions_avail") {
        Ok(actions) if actions.contains("errno") => Ok(()),
        Ok(actions) => Err(format!(
            "the kernel lacks the errno action ({})",
            actions.trim()
        )),
        Err(error) => Err(format!("the kernel has no seccomp filters: {error}")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_root_path_needs_linux_5_12() {
        assert!(super::mount_api_available("6.18.44-fc-v445").is_ok());
        assert!(super::mount_api_available("5.12.0").is_ok());
        let old = super::mount_api_available("5.4.0-150-generic").unwrap_err();
        assert!(
            old.contains("5.12") && old.contains("5.4.0-150-generic"),
            "{old}"
        );
        assert!(super::mount_api_available("4.18.0-513.el8.x86_64").is_err());
    }
}
