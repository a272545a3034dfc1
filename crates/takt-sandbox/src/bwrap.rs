//! The bubblewrap command line, built as pure data so it can be checked without running it.

use std::path::{Path, PathBuf};

/// Where the helper binary, the inner spec and the relay sockets appear inside the sandbox.
pub const IN_HELPER: &str = "/run/takt/helper";
pub const IN_SPEC: &str = "/run/takt/inner.json";
pub const IN_NET: &str = "/run/takt/net";
/// The private HOME inside (a tmpfs).
pub const IN_HOME: &str = "/home/agent";

/// System directories bound read-only (or recreated as the same symlinks): what a toolchain
/// needs, never `/` wholesale.
const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// Files and directories of `/etc` programs need; secrets (`shadow`, `sudoers`, `ssh/`, TLS
/// private keys) are not among them.
pub const ETC_ENTRIES: &[&str] = &[
    "/etc/alternatives",
    "/etc/bash.bashrc",
    "/etc/ca-certificates",
    "/etc/ca-certificates.conf",
    "/etc/debian_version",
    "/etc/environment",
    "/etc/gitconfig",
    "/etc/group",
    "/etc/host.conf",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/inputrc",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/locale.alias",
    "/etc/localtime",
    "/etc/login.defs",
    "/etc/mime.types",
    "/etc/nsswitch.conf",
    "/etc/os-release",
    "/etc/passwd",
    "/etc/profile",
    "/etc/profile.d",
    "/etc/protocols",
    "/etc/resolv.conf",
    "/etc/services",
    "/etc/shells",
    "/etc/ssl/certs",
    "/etc/ssl/openssl.cnf",
    "/etc/terminfo",
    "/etc/timezone",
];

/// The system part of the command line: `/usr` and friends read-only, the usual symlinks
/// recreated, and the allowed `/etc` entries.
pub fn system_args() -> Vec<String> {
    let mut args = Vec::new();
    for dir in SYSTEM_DIRS {
        let path = Path::new(dir);
        match fs_err::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                if let Ok(target) = fs_err::read_link(path) {
                    args.extend([
                        "--symlink".into(),
                        target.display().to_string(),
                        (*dir).into(),
                    ]);
                }
            }
            Ok(meta) if meta.is_dir() => {
                args.extend(["--ro-bind".into(), (*dir).into(), (*dir).into()]);
            }
            _ => {}
        }
    }
    for entry in ETC_ENTRIES {
        args.extend(["--ro-bind-try".into(), (*entry).into(), (*entry).into()]);
    }
    args
}

/// One bind: where the bytes come from on the host (possibly a staged copy of the path when
/// the agent user could not reach the original) and where they appear inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub dest: PathBuf,
    pub writable: bool,
}

/// Everything [`args`] needs.
#[derive(Debug, Clone)]
pub struct Plan {
    pub binds: Vec<Bind>,
    /// Host paths of the helper binary, the inner spec and the socket directory.
    pub helper: PathBuf,
    pub inner_spec: PathBuf,
    pub net_dir: Option<PathBuf>,
    pub cwd: PathBuf,
}

/// The complete bubblewrap argument list, ending with the inner stage's command.
pub fn args(plan: &Plan) -> Vec<String> {
    let mut args: Vec<String> = ["--unshare-all", "--die-with-parent", "--new-session"]
        .map(String::from)
        .to_vec();
    args.extend(["--hostname".into(), "takt-sandbox".into()]);
    args.extend(system_args());
    args.extend(
        [
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/home", "--dir",
            IN_HOME,
        ]
        .map(String::from),
    );
    // A private /run: only takt's own entries below.
    args.extend(["--tmpfs".into(), "/run".into()]);
    for bind in &plan.binds {
        let flag = if bind.writable { "--bind" } else { "--ro-bind" };
        args.extend([
            flag.into(),
            bind.source.display().to_string(),
            bind.dest.display().to_string(),
        ]);
    }
    args.extend([
        "--ro-bind".into(),
        plan.helper.display().to_string(),
        IN_HELPER.into(),
        "--ro-bind".into(),
        plan.inner_spec.display().to_string(),
        IN_SPEC.into(),
    ]);
    if let Some(net) = &plan.net_dir {
        args.extend(["--bind".into(), net.display().to_string(), IN_NET.into()]);
    }
    args.extend([
        "--chdir".into(),
        plan.cwd.display().to_string(),
        "--".into(),
        IN_HELPER.into(),
        crate::INNER_ARG.into(),
        IN_SPEC.into(),
    ]);
    args
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn plan() -> Plan {
        Plan {
            binds: vec![
                Bind {
                    source: "/stage/0".into(),
                    dest: "/work/ws/TAKT-1".into(),
                    writable: true,
                },
                Bind {
                    source: "/srv/mirror".into(),
                    dest: "/srv/mirror".into(),
                    writable: false,
                },
            ],
            helper: "/usr/local/bin/takt".into(),
            inner_spec: "/state/runs/r/sandbox/1/inner.json".into(),
            net_dir: Some("/state/runs/r/sandbox/1/net".into()),
            cwd: "/work/ws/TAKT-1".into(),
        }
    }

    #[test]
    fn never_binds_root_or_shares_the_network_by_default() {
        let args = args(&plan());
        let joined = args.join(" ");
        assert!(joined.starts_with("--unshare-all --die-with-parent --new-session"));
        assert!(!args.iter().any(|a| a == "--share-net"));
        for window in args.windows(3) {
            if window[0].contains("bind") {
                assert_ne!(window[1], "/", "binds / wholesale: {joined}");
            }
        }
        assert!(!joined.contains("/etc/shadow"));
        assert!(!joined.contains(" /root "));
    }

    #[test]
    fn workspace_is_writable_and_git_metadata_read_only() {
        let args = args(&plan()).join(" ");
        assert!(args.contains("--bind /stage/0 /work/ws/TAKT-1"));
        assert!(args.contains("--ro-bind /srv/mirror /srv/mirror"));
        assert!(args.contains("--tmpfs /tmp"));
        assert!(args.ends_with(&format!(
            "--chdir /work/ws/TAKT-1 -- {IN_HELPER} {} {IN_SPEC}",
            crate::INNER_ARG
        )));
    }
}
