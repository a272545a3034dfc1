//! The sandbox's file tree, laid out by a root supervisor.
//!
//! bubblewrap runs as the unprivileged agent user. Laying out the tree itself it would
//! resolve every bind source with that user's permissions (a workspace below a `0700` HOME
//! could not be bound), and it pays for every entry a bind, a remount and a scan of the
//! whole mount table. The supervisor, still root and in a private mount namespace, instead
//! mounts every entry of [`crate::bwrap::tree`] into a tmpfs with direct mount calls, and
//! bubblewrap binds that one prepared root. The mounts vanish with the namespace.
//!
//! The properties are those bubblewrap gives its own entries: binds are recursive, nosuid
//! and nodev, read-only ones read-only down to every submount; what bubblewrap would create
//! (directories, files to bind over, symlinks, tmpfs roots) is owned by the agent user. And
//! because these mounts are made by root outside bubblewrap's user namespace, the kernel locks
//! them there: the agent cannot remount a read-only one writable or unmount one to look
//! below it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use rustix::fs::{AtFlags, Gid, Mode, OFlags, Uid};
use rustix::io::Errno;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags, fsconfig_create,
    fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount, open_tree,
};

use crate::bwrap::Node;

pub(crate) struct Stage {
    root: PathBuf,
    root_fd: Rc<OwnedFd>,
    uid: u32,
    gid: u32,
    /// Directories of the tree already walked to, by their path inside it: most entries
    /// share their first components, and walking each anew cost hundreds of system calls
    /// per launch. A handle keeps naming the directory it was opened on even after
    /// something is mounted over it, so every mount drops the handles at and below its
    /// mount point.
    walked: RefCell<HashMap<PathBuf, Rc<OwnedFd>>>,
}

impl Stage {
    /// Enters a private mount namespace and mounts the tmpfs that becomes the sandbox's root,
    /// owned by the agent user (`uid`, `gid`) as bubblewrap's own root would be. Must run
    /// before the process starts any thread.
    pub(crate) fn create(uid: u32, gid: u32) -> Result<Stage, String> {
        let root = mount_point_dir()?;
        unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare(mount namespace): {e}"))?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| format!("making mounts private: {e}"))?;
        mount(
            Some("tmpfs"),
            &root,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(format!("mode=0755,uid={uid},gid={gid}").as_str()),
        )
        .map_err(|e| format!("mounting the sandbox root: {e}"))?;
        let root_fd = rustix::fs::open(
            &root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("{}: {e}", root.display()))?;
        Ok(Stage {
            root,
            root_fd: Rc::new(root_fd),
            uid,
            gid,
            walked: RefCell::new(HashMap::new()),
        })
    }

    /// The prepared root, for bubblewrap to bind as `/`.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Lays out `nodes` in order; `/proc` gets only its (empty) mount point, as bubblewrap
    /// mounts it last (the pid namespace is bubblewrap's). Nothing may be placed below `/proc`
    /// or `/dev`, which would cover what they show.
    pub(crate) fn lay_out(&self, nodes: &[Node]) -> Result<(), String> {
        let late: Vec<&Path> = nodes
            .iter()
            .filter(|node| matches!(node, Node::Proc(_) | Node::Dev(_)))
            .map(Node::dest)
            .collect();
        for node in nodes {
            let dest = node.dest();
            if late.iter().any(|l| dest.starts_with(l) && dest != *l) {
                return Err(format!(
                    "{} lies below a file system only bubblewrap mounts",
                    dest.display()
                ));
            }
            self.place(node)
                .map_err(|e| format!("sandbox tree, {}: {e}", dest.display()))?;
        }
        Ok(())
    }

    fn place(&self, node: &Node) -> Result<(), String> {
        match node {
            Node::Bind {
                source,
                dest,
                writable,
                optional,
            } => {
                let tree = match clone_tree(source, *writable) {
                    Ok(tree) => tree,
                    Err(Errno::NOENT) if *optional => return Ok(()),
                    Err(e) => return Err(format!("{}: {e}", source.display())),
                };
                let is_dir = rustix::fs::fstat(&tree).map_err(|e| e.to_string())?.st_mode
                    & libc::S_IFMT
                    == libc::S_IFDIR;
                let target = self.mount_point(dest, is_dir)?;
                self.mount_at(&tree, &target, dest)
            }
            Node::Symlink { target, dest } => {
                let (parent, name) = self.parent(dest)?;
                rustix::fs::symlinkat(target, &parent, name).map_err(|e| e.to_string())?;
                self.chown(&parent, name)
            }
            Node::Tmpfs(dest) => {
                let target = self.mount_point(dest, true)?;
                let tmpfs = self.tmpfs().map_err(|e| format!("tmpfs: {e}"))?;
                self.mount_at(&tmpfs, &target, dest)
            }
            Node::Dir(dest) | Node::Proc(dest) => self.mount_point(dest, true).map(drop),
            Node::Dev(dest) => self.dev(dest),
            Node::Overlay(layers) => {
                let target = self.mount_point(&layers.dest, true)?;
                let overlay = overlay(&layers.lower, &layers.upper, &layers.work)
                    .map_err(|e| format!("overlay: {e}"))?;
                self.mount_at(&overlay, &target, &layers.dest)
            }
        }
    }

    /// The sandbox's `/dev` as bubblewrap's `--dev` makes it: a tmpfs of the agent's holding
    /// the harmless host devices, the usual links, an empty `shm` and a private devpts
    /// instance. bubblewrap binds each device with its own scan of the mount table, which
    /// with the prepared tree beside the host's mounts cost about 3 ms per launch; here each
    /// is one `open_tree` and `move_mount`. Only the device binds and devpts may hold
    /// devices: the tmpfs is `nodev`, so nothing else placed in it can open one.
    fn dev(&self, dest: &Path) -> Result<(), String> {
        let target = self.mount_point(dest, true)?;
        let tmpfs = self.tmpfs().map_err(|e| format!("tmpfs: {e}"))?;
        self.mount_at(&tmpfs, &target, dest)?;
        for name in DEVICES {
            let host = Path::new("/dev").join(name);
            let device = open_tree(
                rustix::fs::CWD,
                &host,
                OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
            )
            .map_err(|e| format!("{}: {e}", host.display()))?;
            set_attributes(device.as_fd(), libc::MOUNT_ATTR_NOSUID)
                .map_err(|e| format!("{}: {e}", host.display()))?;
            let at = dest.join(name);
            self.mount_at(&device, &self.mount_point(&at, false)?, &at)?;
        }
        for (name, target) in DEV_LINKS {
            self.place(&Node::Symlink {
                target: target.into(),
                dest: dest.join(name),
            })?;
        }
        self.mount_point(&dest.join("shm"), true)?;
        let at = dest.join("pts");
        let pts = self.mount_point(&at, true)?;
        let devpts = devpts().map_err(|e| format!("devpts: {e}"))?;
        self.mount_at(&devpts, &pts, &at)
    }

    /// An empty tmpfs as bubblewrap's `--tmpfs` makes it: mode 0755, the agent's, nosuid,
    /// nodev.
    fn tmpfs(&self) -> rustix::io::Result<OwnedFd> {
        let context = fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)?;
        fsconfig_set_string(&context, "mode", "0755")?;
        fsconfig_set_string(&context, "uid", self.uid.to_string())?;
        fsconfig_set_string(&context, "gid", self.gid.to_string())?;
        fsconfig_create(&context)?;
        fsmount(
            &context,
            FsMountFlags::FSMOUNT_CLOEXEC,
            MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
        )
    }

    /// Opens `dest` inside the root without following any symlink, creating what is missing
    /// (the agent's, as bubblewrap would create it). A bound workspace is the agent's to
    /// shape, so a symlink it planted must not lead root's mkdir or mount out of the tree.
    fn mount_point(&self, dest: &Path, is_dir: bool) -> Result<OwnedFd, String> {
        let (parent, name) = self.parent(dest)?;
        if !is_dir {
            match rustix::fs::openat(
                &parent,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            ) {
                Ok(_) => self.chown(&parent, name)?,
                Err(Errno::EXIST) => {}
                Err(e) => return Err(e.to_string()),
            }
            return rustix::fs::openat(
                &parent,
                name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| e.to_string());
        }
        self.directory(&parent, name)
    }

    /// Attaches `tree` over `target`, the opened mount point `dest`.
    fn mount_at(&self, tree: &OwnedFd, target: &OwnedFd, dest: &Path) -> Result<(), String> {
        attach(tree, target)?;
        self.walked
            .borrow_mut()
            .retain(|walked, _| !walked.starts_with(dest));
        Ok(())
    }

    /// The directory holding `dest` (created like [`Stage::mount_point`]) and `dest`'s name.
    fn parent<'a>(&self, dest: &'a Path) -> Result<(Rc<OwnedFd>, &'a OsStr), String> {
        let mut names = Vec::new();
        for component in dest.components() {
            match component {
                Component::RootDir => {}
                Component::Normal(name) => names.push(name),
                _ => return Err("not a plain absolute path".into()),
            }
        }
        let name = names.pop().ok_or("the root itself")?;
        let mut dir = self.root_fd.clone();
        let mut path = PathBuf::from("/");
        for step in names {
            path.push(step);
            let walked = self.walked.borrow().get(&path).cloned();
            dir = match walked {
                Some(walked) => walked,
                None => {
                    let opened = Rc::new(self.directory(&dir, step)?);
                    self.walked
                        .borrow_mut()
                        .insert(path.clone(), opened.clone());
                    opened
                }
            };
        }
        Ok((dir, name))
    }

    /// `name` in `parent` as a directory, created when missing; never through a symlink.
    fn directory(&self, parent: &OwnedFd, name: &OsStr) -> Result<OwnedFd, String> {
        let open = || {
            rustix::fs::openat(
                parent,
                name,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
        };
        match open() {
            Ok(dir) => Ok(dir),
            Err(Errno::NOENT) => {
                match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o755)) {
                    Ok(()) => self.chown(parent, name)?,
                    Err(Errno::EXIST) => {}
                    Err(e) => return Err(e.to_string()),
                }
                open().map_err(|e| e.to_string())
            }
            Err(Errno::NOTDIR | Errno::LOOP) => Err(format!(
                "{} is a symlink or a file, not a directory",
                Path::new(name).display()
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    fn chown(&self, parent: &OwnedFd, name: &OsStr) -> Result<(), String> {
        rustix::fs::chownat(
            parent,
            name,
            Some(Uid::from_raw(self.uid)),
            Some(Gid::from_raw(self.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| e.to_string())
    }
}

/// The host devices bound into the sandbox's `/dev`, as bubblewrap's `--dev` chooses them.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// The links bubblewrap's `--dev` makes, name and target.
const DEV_LINKS: [(&str, &str); 6] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("core", "/proc/kcore"),
    ("ptmx", "pts/ptmx"),
];

/// A private devpts instance as bubblewrap mounts it: its own pseudo-terminals only, the
/// `ptmx` open to all, new terminals readable by their owner alone.
fn devpts() -> rustix::io::Result<OwnedFd> {
    let context = fsopen("devpts", FsOpenFlags::FSOPEN_CLOEXEC)?;
    fsconfig_set_flag(&context, "newinstance")?;
    fsconfig_set_string(&context, "ptmxmode", "0666")?;
    fsconfig_set_string(&context, "mode", "0620")?;
    fsconfig_create(&context)?;
    fsmount(
        &context,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )
}

/// Where every supervisor mounts its sandbox root, each in its own mount namespace (so one
/// directory serves all launches, and nothing is ever mounted in the host's namespace). The
/// mounts go with the namespace when the supervisor exits; nothing is unmounted or removed per
/// launch, which would wait for RCU on the run's critical path. It lives in root's `/run`, not
/// a world-writable temp directory, so no other user can plant or swap it.
const MOUNT_POINT: &str = "/run/takt-sandbox";

fn mount_point_dir() -> Result<PathBuf, String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let path = PathBuf::from(MOUNT_POINT);
    if let Err(error) = std::fs::DirBuilder::new().mode(0o755).create(&path)
        && error.kind() != std::io::ErrorKind::AlreadyExists
    {
        return Err(format!("{}: {error}", path.display()));
    }
    for dir in [path.as_path(), Path::new("/run")] {
        let meta = fs_err::symlink_metadata(dir).map_err(|e| e.to_string())?;
        if !meta.is_dir() || meta.uid() != 0 || meta.mode() & 0o022 != 0 {
            return Err(format!(
                "{} must be a directory only root can change",
                dir.display()
            ));
        }
    }
    Ok(path)
}

/// A detached copy of the mount tree at `source` (following symlinks, as bubblewrap does for
/// sources), with bubblewrap's bind attributes applied down to every submount: nosuid and
/// nodev, and read-only unless `writable`.
fn clone_tree(source: &Path, writable: bool) -> rustix::io::Result<OwnedFd> {
    let tree = open_tree(
        rustix::fs::CWD,
        source,
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE,
    )?;
    let mut set = libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV;
    if !writable {
        set |= libc::MOUNT_ATTR_RDONLY;
    }
    set_attributes(tree.as_fd(), set)?;
    Ok(tree)
}

/// A detached overlay of `lower` (read-only) under `upper`, nosuid and nodev. Each layer is
/// given as one path (`lowerdir+`, Linux 6.7 and later) where the kernel has it, so no name in
/// it is ever parsed as a separator; older kernels get the classic options, refused for a path
/// holding a separator rather than misread.
fn overlay(lower: &Path, upper: &Path, work: &Path) -> Result<OwnedFd, String> {
    let context = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| e.to_string())?;
    let set = |key: &str, path: &Path| {
        fsconfig_set_string(&context, key, path.as_os_str())
            .map_err(|e| format!("{key}={}: {e}", path.display()))
    };
    if set("lowerdir+", lower).is_err() {
        for path in [lower, upper, work] {
            if path
                .as_os_str()
                .as_encoded_bytes()
                .iter()
                .any(|byte| matches!(byte, b':' | b',' | b'\\'))
            {
                return Err(format!(
                    "{} holds `:`, `,` or `\\`, which this kernel's overlay options cannot carry",
                    path.display()
                ));
            }
        }
        set("lowerdir", lower)?;
    }
    set("upperdir", upper)?;
    set("workdir", work)?;
    fsconfig_create(&context).map_err(|e| format!("creating: {e}"))?;
    fsmount(
        &context,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
    )
    .map_err(|e| format!("mounting: {e}"))
}

/// Attaches a detached mount (`tree`) over the opened mount point `target`.
fn attach(tree: &OwnedFd, target: &OwnedFd) -> Result<(), String> {
    move_mount(
        tree,
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(|e| format!("attaching: {e}"))
}

/// `mount_setattr(2)` on a whole detached tree: the one call that changes the flags of a
/// mount and all its submounts without reading the mount table (rustix and nix do not wrap
/// it yet).
#[allow(unsafe_code)]
fn set_attributes(tree: BorrowedFd<'_>, set: u64) -> rustix::io::Result<()> {
    use std::os::fd::AsRawFd;
    let attr = libc::mount_attr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: the path is a valid NUL-terminated empty string, `attr` is a valid
    // `struct mount_attr` that outlives the call, and its size is passed along.
    let result = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &raw const attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::INVAL))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::bwrap::{self, Bind, Plan};

    /// Runs `script` as the sandbox's command (in place of the inner stage) in bubblewrap over
    /// a tree this test's thread lays out in its own mount namespace (gone with the thread).
    fn in_prepared_tree(script: &str) -> Option<String> {
        if !crate::user::running_as_root() {
            return None;
        }
        let bwrap = crate::probe::bwrap_path()?;
        let agent = crate::user::ensure(crate::user::DEFAULT_AGENT_USER).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let workspace = dir.path().join("ws");
        let net = dir.path().join("net");
        fs_err::create_dir_all(&workspace).unwrap();
        fs_err::create_dir_all(&net).unwrap();
        // As the supervisor does: the writable directories are the agent's.
        for path in [&workspace, &net] {
            nix::unistd::chown(path, Some(agent.uid.into()), Some(agent.gid.into())).unwrap();
        }
        let helper = dir.path().join("probe.sh");
        fs_err::write(&helper, format!("#!/bin/sh\n{script}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let inner = dir.path().join("inner.json");
        fs_err::write(&inner, "{}").unwrap();
        let plan = Plan {
            binds: vec![Bind {
                source: workspace.clone(),
                dest: workspace.clone(),
                writable: true,
            }],
            helper,
            inner_spec: inner,
            net_dir: Some(net),
            cwd: workspace,
            overlays: Vec::new(),
        };
        let output = std::thread::spawn(move || {
            let stage = Stage::create(agent.uid, agent.gid).unwrap();
            let nodes = bwrap::tree(&plan);
            stage.lay_out(&nodes).unwrap();
            use std::os::unix::process::CommandExt;
            std::process::Command::new(bwrap)
                .args(bwrap::prepared_args(stage.root(), &nodes, &plan.cwd))
                .uid(agent.uid)
                .gid(agent.gid)
                .env_clear()
                .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
                .output()
                .unwrap()
        })
        .join()
        .unwrap();
        Some(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }

    #[test]
    fn prepared_read_only_mounts_are_locked_against_the_agent() {
        // A user namespace of the agent's own gives it every capability over its mounts:
        // the control proves that remounting works there, so only the lock can refuse.
        let Some(out) = in_prepared_tree(
            "unshare -Urm sh -c '\
             mkdir /tmp/own && mount --bind /tmp/own /tmp/own \
               && mount -o remount,bind,ro /tmp/own && mount -o remount,bind,rw /tmp/own \
               && echo CONTROL-REMOUNTED;\
             mount -o remount,bind,rw /usr && echo USR-MADE-WRITABLE;\
             mount -o remount,bind,rw /etc/passwd && echo ETC-MADE-WRITABLE;\
             mount -o remount,bind,rw /run/takt/helper && echo HELPER-MADE-WRITABLE;\
             umount /etc/passwd && echo ETC-UNMOUNTED;\
             touch /usr/pwned && echo USR-WRITTEN;\
             echo x >> /etc/passwd && echo ETC-WRITTEN' 2>&1; echo finished",
        ) else {
            return;
        };
        assert!(out.contains("CONTROL-REMOUNTED"), "{out}");
        assert!(out.contains("finished"), "{out}");
        for escape in [
            "USR-MADE-WRITABLE",
            "ETC-MADE-WRITABLE",
            "HELPER-MADE-WRITABLE",
            "ETC-UNMOUNTED",
            "USR-WRITTEN",
            "ETC-WRITTEN",
        ] {
            assert!(!out.contains(escape), "{escape}: {out}");
        }
    }

    #[test]
    fn the_prepared_tree_holds_only_the_allowed_entries() {
        let Some(out) = in_prepared_tree(
            "echo ROOT $(ls -A /); echo ETC $(ls -A /etc); echo SSL $(ls -A /etc/ssl); \
             touch /tmp/t /home/agent/t /run/t /run/takt/net/t ./t && echo PRIVATE-WRITABLE; \
             grep -E ' /(usr|etc/passwd|run/takt/helper) ' /proc/self/mountinfo",
        ) else {
            return;
        };
        let line = |tag: &str| -> Vec<String> {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("{tag} ")))
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        for entry in line("ROOT") {
            assert!(
                [
                    "bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "proc", "dev",
                    "tmp", "home", "run"
                ]
                .contains(&entry.as_str()),
                "/{entry} is visible: {out}"
            );
        }
        let allowed: Vec<&str> = bwrap::ETC_ENTRIES
            .iter()
            .filter_map(|e| e.strip_prefix("/etc/")?.split('/').next())
            .collect();
        for entry in line("ETC") {
            assert!(allowed.contains(&entry.as_str()), "/etc/{entry}: {out}");
        }
        for entry in line("SSL") {
            assert!(["certs", "openssl.cnf"].contains(&entry.as_str()), "{out}");
        }
        assert!(out.contains("PRIVATE-WRITABLE"), "{out}");
        let mounts: Vec<&str> = out.lines().filter(|l| l.contains(" - ")).collect();
        assert_eq!(mounts.len(), 3, "{out}");
        for mount in mounts {
            let options = mount.split_whitespace().nth(5).unwrap();
            for flag in ["ro", "nosuid", "nodev"] {
                assert!(options.split(',').any(|o| o == flag), "{mount}");
            }
        }
    }

    #[test]
    fn the_prepared_dev_holds_working_devices_and_private_terminals_only() {
        let Some(out) = in_prepared_tree(
            "echo DEV $(ls -A /dev); echo PTS $(ls -A /dev/pts); \
             echo x > /dev/null && echo NULL-WRITABLE; \
             test \"$(head -c 8 /dev/urandom | wc -c)\" = 8 && echo URANDOM-READ; \
             test \"$(head -c 8 /dev/zero | wc -c)\" = 8 && echo ZERO-READ; \
             touch /dev/shm/t && echo SHM-WRITABLE; \
             echo LINKS $(readlink /dev/fd /dev/stdout /dev/ptmx); \
             python3 -c 'import os; m, s = os.openpty(); print(\"PTY\", os.ttyname(s))'; \
             grep -E ' /dev(/[a-z]+)? ' /proc/self/mountinfo",
        ) else {
            return;
        };
        let listed = |tag: &str| -> Vec<String> {
            let mut names: Vec<String> = out
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{tag} ")))
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            names.sort();
            names
        };
        assert_eq!(
            listed("DEV"),
            [
                "core", "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin",
                "stdout", "tty", "urandom", "zero"
            ],
            "{out}"
        );
        assert!(listed("PTS").contains(&"ptmx".to_owned()), "{out}");
        for works in ["NULL-WRITABLE", "URANDOM-READ", "ZERO-READ", "SHM-WRITABLE"] {
            assert!(out.contains(works), "{works}: {out}");
        }
        assert!(
            out.contains("LINKS /proc/self/fd /proc/self/fd/1 pts/ptmx"),
            "{out}"
        );
        assert!(out.contains("PTY /dev/pts/"), "{out}");
        let options = |dest: &str| -> Vec<String> {
            let line = out
                .lines()
                .find(|l| l.contains(" - ") && l.split_whitespace().nth(4) == Some(dest))
                .unwrap_or_else(|| panic!("{dest} is not mounted: {out}"));
            line.split_whitespace()
                .nth(5)
                .unwrap()
                .split(',')
                .map(str::to_owned)
                .collect()
        };
        // Devices open only where they were bound: the tmpfs around them refuses any other.
        assert!(options("/dev").contains(&"nodev".to_owned()), "{out}");
        for device in ["/dev/null", "/dev/urandom", "/dev/pts"] {
            let flags = options(device);
            assert!(flags.contains(&"nosuid".to_owned()), "{device}: {out}");
            assert!(!flags.contains(&"nodev".to_owned()), "{device}: {out}");
        }
    }

    #[test]
    fn a_symlink_in_a_bound_workspace_never_leads_root_out_of_the_tree() {
        if !crate::user::running_as_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let workspace = dir.path().join("ws");
        let outside = dir.path().join("outside");
        fs_err::create_dir_all(&workspace).unwrap();
        fs_err::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, workspace.join("link")).unwrap();
        let nodes = vec![
            Node::Bind {
                source: workspace.clone(),
                dest: workspace.clone(),
                writable: true,
                optional: false,
            },
            Node::Bind {
                source: "/usr".into(),
                dest: workspace.join("link/planted"),
                writable: false,
                optional: false,
            },
        ];
        let result = std::thread::spawn(move || {
            let stage = Stage::create(65534, 65534).unwrap();
            stage.lay_out(&nodes)
        })
        .join()
        .unwrap();
        assert!(
            result.as_ref().is_err_and(|e| e.contains("symlink")),
            "{result:?}"
        );
        assert!(!outside.join("planted").exists());
    }
}
