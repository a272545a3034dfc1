//! The inner stage: runs as the agent user, inside bubblewrap (or directly under Landlock),
//! applies the last layers to itself and becomes (or starts) the agent.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;

use crate::rules;
use crate::spec::InnerSpec;

/// File in the launch's io directory where the inner stage records the layers it applied.
pub(crate) const LAYERS_FILE: &str = "layers";

pub(crate) fn run(spec_path: &Path) -> i32 {
    let spec: InnerSpec = match crate::spec::load(spec_path) {
        Ok(spec) => spec,
        Err(line) => {
            eprintln!("{line}");
            return 125;
        }
    };
    // A new session: the agent cannot reach the daemon's terminal (TIOCSTI) or its group.
    let _ = nix::unistd::setsid();
    // Under Landlock nothing else ties the agent to its supervisor (bubblewrap's pid
    // namespace does): a supervisor killed with SIGKILL takes the agent along. The signal
    // survives the exec of the agent, which is never set-user-ID here (`no_new_privs`).
    let supervisor = nix::unistd::getppid();
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    if nix::unistd::getppid() != supervisor {
        return 125;
    }
    let mut layers = rules::apply_rlimits(&spec.limits, false);
    layers.extend(rules::apply_nproc(&spec.limits));
    match rules::apply_landlock(
        &spec.writable,
        spec.readable.as_deref(),
        spec.connect_ports.as_deref(),
    ) {
        Ok(layer) => layers.push(layer),
        Err(reason) if spec.require_landlock => {
            eprintln!("takt sandbox: landlock could not be applied: {reason}");
            return 126;
        }
        Err(reason) => layers.push(format!("landlock unavailable ({reason})")),
    }
    match rules::apply_seccomp(spec.deny_datagram) {
        Ok(layer) => layers.push(layer),
        Err(reason) if spec.deny_datagram => {
            eprintln!("takt sandbox: the seccomp filter could not be applied: {reason}");
            return 126;
        }
        Err(reason) => layers.push(format!("seccomp unavailable ({reason})")),
    }
    layers.push("no_new_privs".into());
    if let Some(io) = &spec.io_dir {
        let _ = fs_err::write(io.join(LAYERS_FILE), layers.join("\n"));
    }
    if let Err(reason) = crate::relay::start_inside(&spec.relays) {
        eprintln!("takt sandbox: {reason}");
        return 126;
    }
    keep_path_for_login_shells();
    let mut command = std::process::Command::new(&spec.program);
    command.args(&spec.args);
    if spec.relays.is_empty() {
        let error = command.exec();
        eprintln!("takt sandbox: cannot run {}: {error}", spec.program);
        return 127;
    }
    // The relays live in this process, so it stays as the agent's parent.
    match command.status() {
        Ok(status) => status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        Err(error) => {
            eprintln!("takt sandbox: cannot run {}: {error}", spec.program);
            127
        }
    }
}

/// Writes `$HOME/.profile` (the sandbox's private home) with the allowed `PATH`, unless one
/// exists. A login shell (`sh -lc`, Codex's `bash -lc`) first runs the host's `/etc/profile`,
/// which on Debian sets `PATH` to the distribution's and so loses the toolchains; it then runs
/// `~/.profile`, which puts the allowed `PATH` back. Under bubblewrap the login profile is left
/// out of the tree, but Landlock alone cannot hide it. Runs as the agent: what it writes is
/// the agent's own, and a link planted there is never followed.
fn keep_path_for_login_shells() {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let (Some(home), Some(path)) = (std::env::var_os("HOME"), std::env::var("PATH").ok()) else {
        return;
    };
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o644)
        .open(Path::new(&home).join(".profile"))
    {
        let _ = file.write_all(login_profile(&path).as_bytes());
    }
}

/// A `.profile` that sets `PATH` to `path`, quoted for any shell.
fn login_profile(path: &str) -> String {
    let quoted = path.replace('\'', "'\\''");
    format!(
        "# Written by takt: keeps the sandbox's PATH in login shells.\nPATH='{quoted}'\nexport PATH\n"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_login_profile_sets_the_path_exactly_whatever_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join(".profile");
        for path in [
            "/usr/bin:/root/.cargo/bin",
            "/opt/it's here:/b $(x) `y`:/c\\d",
        ] {
            std::fs::write(&profile, login_profile(path)).unwrap();
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(". '{}'; printf %s \"$PATH\"", profile.display()))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), path);
        }
    }
}
