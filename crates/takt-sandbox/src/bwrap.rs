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
/// private keys) are not among them. Nor is the login profile (`/etc/profile`, see
/// [`LOGIN_PROFILE`]): it would replace the allowed PATH in every login shell, and agents'
/// shells often are (Codex runs `bash -lc`).
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
    "/etc/protocols",
    "/etc/resolv.conf",
    "/etc/services",
    "/etc/shells",
    "/etc/ssl/certs",
    "/etc/ssl/openssl.cnf",
    "/etc/terminfo",
    "/etc/timezone",
];

/// The login profile: left out of a bubblewrap sandbox (see [`ETC_ENTRIES`]), readable under
/// Landlock alone, where hiding it would make every login shell report it unreadable.
pub const LOGIN_PROFILE: &[&str] = &["/etc/profile", "/etc/profile.d"];

/// One entry of the sandbox's file tree. The tree is data so that both ways of building it
/// lay out exactly the same entries: bubblewrap's own arguments (a daemon that is not root),
/// or the root supervisor mounting them itself into a prepared root that bubblewrap binds
/// whole ([`prepared_args`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// `source` visible at `dest`, read-only unless `writable`; an `optional` one is skipped
    /// when its source does not exist.
    Bind {
        source: PathBuf,
        dest: PathBuf,
        writable: bool,
        optional: bool,
    },
    Symlink {
        target: PathBuf,
        dest: PathBuf,
    },
    /// An empty private tmpfs, owned by the agent user.
    Tmpfs(PathBuf),
    /// An empty directory, owned by the agent user.
    Dir(PathBuf),
    /// The sandbox's `/proc`: only bubblewrap can mount it (its pid namespace).
    Proc(PathBuf),
    /// The sandbox's `/dev`: a few harmless devices, the usual links, private terminals.
    Dev(PathBuf),
    Overlay(Overlay),
}

impl Node {
    pub fn dest(&self) -> &Path {
        match self {
            Node::Bind { dest, .. } | Node::Symlink { dest, .. } => dest,
            Node::Overlay(overlay) => &overlay.dest,
            Node::Tmpfs(dest) | Node::Dir(dest) | Node::Proc(dest) | Node::Dev(dest) => dest,
        }
    }

    fn args(&self) -> Vec<String> {
        let text = |path: &Path| path.display().to_string();
        match self {
            Node::Bind {
                source,
                dest,
                writable,
                optional,
            } => {
                let flag = match (writable, optional) {
                    (true, false) => "--bind",
                    (true, true) => "--bind-try",
                    (false, false) => "--ro-bind",
                    (false, true) => "--ro-bind-try",
                };
                vec![flag.into(), text(source), text(dest)]
            }
            Node::Symlink { target, dest } => vec!["--symlink".into(), text(target), text(dest)],
            Node::Tmpfs(dest) => vec!["--tmpfs".into(), text(dest)],
            Node::Dir(dest) => vec!["--dir".into(), text(dest)],
            Node::Proc(dest) => vec!["--proc".into(), text(dest)],
            Node::Dev(dest) => vec!["--dev".into(), text(dest)],
            Node::Overlay(overlay) => vec![
                "--overlay-src".into(),
                text(&overlay.lower),
                "--overlay".into(),
                text(&overlay.upper),
                text(&overlay.work),
                text(&overlay.dest),
            ],
        }
    }
}

/// `/usr` and friends read-only (or recreated as the same symlinks), and the allowed `/etc`
/// entries.
pub fn system_nodes() -> Vec<Node> {
    let mut nodes = Vec::new();
    for dir in SYSTEM_DIRS {
        let path = Path::new(dir);
        match fs_err::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                if let Ok(target) = fs_err::read_link(path) {
                    nodes.push(Node::Symlink {
                        target,
                        dest: path.into(),
                    });
                }
            }
            Ok(meta) if meta.is_dir() => nodes.push(Node::Bind {
                source: path.into(),
                dest: path.into(),
                writable: false,
                optional: false,
            }),
            _ => {}
        }
    }
    for entry in ETC_ENTRIES {
        nodes.push(Node::Bind {
            source: entry.into(),
            dest: entry.into(),
            writable: false,
            optional: true,
        });
    }
    nodes
}

/// The system part of the command line (see [`system_nodes`]).
pub fn system_args() -> Vec<String> {
    system_nodes().iter().flat_map(Node::args).collect()
}

/// One bind: where the bytes come from on the host and where they appear inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub dest: PathBuf,
    pub writable: bool,
}

/// Everything [`tree`] needs.
#[derive(Debug, Clone)]
pub struct Plan {
    pub binds: Vec<Bind>,
    /// Host paths of the helper binary, the inner spec and the socket directory.
    pub helper: PathBuf,
    pub inner_spec: PathBuf,
    pub net_dir: Option<PathBuf>,
    pub cwd: PathBuf,
    /// Mounted after the binds, over directories they show.
    pub overlays: Vec<Overlay>,
}

/// A kernel overlay at `dest`: `lower` read-only below, writes into `upper` (`work` beside it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    pub lower: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub dest: PathBuf,
}

/// The sandbox's whole file tree, in order (later entries cover earlier ones).
pub fn tree(plan: &Plan) -> Vec<Node> {
    let mut nodes = system_nodes();
    nodes.extend([
        Node::Proc("/proc".into()),
        Node::Dev("/dev".into()),
        Node::Tmpfs("/tmp".into()),
        Node::Tmpfs("/home".into()),
        Node::Dir(IN_HOME.into()),
        // A private /run: only takt's own entries below.
        Node::Tmpfs("/run".into()),
    ]);
    for bind in &plan.binds {
        nodes.push(Node::Bind {
            source: bind.source.clone(),
            dest: bind.dest.clone(),
            writable: bind.writable,
            optional: false,
        });
    }
    nodes.extend(plan.overlays.iter().cloned().map(Node::Overlay));
    let fixed = |source: &Path, dest: &str, writable| Node::Bind {
        source: source.to_path_buf(),
        dest: dest.into(),
        writable,
        optional: false,
    };
    nodes.push(fixed(&plan.helper, IN_HELPER, false));
    nodes.push(fixed(&plan.inner_spec, IN_SPEC, false));
    if let Some(net) = &plan.net_dir {
        nodes.push(fixed(net, IN_NET, true));
    }
    nodes
}

/// What every bubblewrap command line starts with: all namespaces, tied to the supervisor.
fn namespace_args() -> Vec<String> {
    [
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--hostname",
        "takt-sandbox",
    ]
    .map(String::from)
    .to_vec()
}

/// What every bubblewrap command line ends with: the inner stage's command.
fn command_args(cwd: &Path) -> Vec<String> {
    vec![
        "--chdir".into(),
        cwd.display().to_string(),
        "--".into(),
        IN_HELPER.into(),
        crate::INNER_ARG.into(),
        IN_SPEC.into(),
    ]
}

/// The complete bubblewrap argument list with bubblewrap laying out the whole tree, ending
/// with the inner stage's command.
pub fn args(plan: &Plan) -> Vec<String> {
    let mut args = namespace_args();
    args.extend(tree(plan).iter().flat_map(Node::args));
    args.extend(command_args(&plan.cwd));
    args
}

/// The bubblewrap argument list over a root the supervisor has already laid out (every node
/// of `nodes` but `/proc`, which only bubblewrap can mount): one bind of that root instead of
/// one bind, read-only remount and mount-table scan per entry.
pub fn prepared_args(root: &Path, nodes: &[Node], cwd: &Path) -> Vec<String> {
    let mut args = namespace_args();
    // `--dev-bind`: bubblewrap's `--bind` would make every submount `nodev`, the devices in
    // `/dev` too. Every other mount of the tree is `nodev` already, set by the supervisor and
    // locked against the agent.
    args.extend(["--dev-bind".into(), root.display().to_string(), "/".into()]);
    args.extend(
        nodes
            .iter()
            .filter(|node| matches!(node, Node::Proc(_)))
            .flat_map(Node::args),
    );
    args.extend(command_args(cwd));
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
            overlays: Vec::new(),
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

    #[test]
    fn a_prepared_root_is_bound_whole_and_only_proc_is_left_to_bubblewrap() {
        let nodes = tree(&plan());
        let args = prepared_args(
            Path::new("/run/takt-sandbox"),
            &nodes,
            Path::new("/work/ws/TAKT-1"),
        );
        let joined = args.join(" ");
        assert!(joined.starts_with("--unshare-all --die-with-parent --new-session"));
        assert!(joined.contains("--dev-bind /run/takt-sandbox / --proc /proc --chdir"));
        assert_eq!(
            args.iter().filter(|a| a.starts_with("--")).count(),
            8,
            "{joined}"
        );
        // The tree itself holds what bubblewrap's own arguments would lay out.
        assert!(nodes.contains(&Node::Bind {
            source: "/stage/0".into(),
            dest: "/work/ws/TAKT-1".into(),
            writable: true,
            optional: false,
        }));
        assert!(nodes.contains(&Node::Tmpfs("/run".into())));
        let etc = nodes
            .iter()
            .filter(|n| {
                matches!(
                    n,
                    Node::Bind {
                        optional: true,
                        writable: false,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(etc, ETC_ENTRIES.len());
    }
}
