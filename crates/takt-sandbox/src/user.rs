//! The unprivileged user agents run as when the daemon runs as root.
//!
//! A root daemon that starts bubblewrap is still host root inside the sandbox (it can read
//! `/etc/shadow`), so the supervisor drops to this user before bubblewrap starts.

use nix::unistd::{Uid, User};

use crate::SandboxError;

/// The user created on first use when `sandbox.user` is not set.
pub const DEFAULT_AGENT_USER: &str = "takt-agent";

/// A resolved agent user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AgentUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// Whether this process runs as root (and must drop to an agent user).
pub fn running_as_root() -> bool {
    Uid::effective().is_root()
}

/// Looks `name` up.
pub fn lookup(name: &str) -> Result<Option<AgentUser>, SandboxError> {
    let user = User::from_name(name).map_err(|error| SandboxError::AgentUser {
        user: name.to_owned(),
        reason: format!("cannot read the user database: {error}"),
    })?;
    Ok(user.map(|user| AgentUser {
        name: user.name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
    }))
}

/// Finds `name`, creating it as a system user without a home or login shell when it does not
/// exist yet (root only). A user that resolves to root is refused: it would defeat the point.
pub fn ensure(name: &str) -> Result<AgentUser, SandboxError> {
    let user = match lookup(name)? {
        Some(user) => user,
        None => {
            create(name)?;
            lookup(name)?.ok_or_else(|| SandboxError::AgentUser {
                user: name.to_owned(),
                reason: "useradd succeeded but the user cannot be found".into(),
            })?
        }
    };
    if user.uid == 0 || user.gid == 0 {
        return Err(SandboxError::AgentUser {
            user: name.to_owned(),
            reason: "it has uid or gid 0; agents must not run as root".into(),
        });
    }
    Ok(user)
}

fn create(name: &str) -> Result<(), SandboxError> {
    let failure = |reason: String| SandboxError::AgentUser {
        user: name.to_owned(),
        reason: format!(
            "{reason}; create it yourself with `useradd --system --no-create-home --shell /usr/sbin/nologin {name}`"
        ),
    };
    let output = std::process::Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "--user-group",
            name,
        ])
        .output()
        .map_err(|error| failure(format!("cannot run useradd: {error}")))?;
    // Exit 9: another daemon created it concurrently.
    if output.status.success() || output.status.code() == Some(9) {
        tracing::info!(user = name, "created the sandbox agent user");
        return Ok(());
    }
    Err(failure(format!(
        "useradd failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}
